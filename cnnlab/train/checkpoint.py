"""Saving and restoring a whole training state, atomically (a crash never leaves a half-written file)."""
from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write_bytes", "generator_states", "set_generator_states", "read_checkpoint", "FORMAT"]

FORMAT = "cnnlab-checkpoint-1"


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to a temporary file next to `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def generator_states(net) -> dict:
    """The state of every numpy Generator held by a module of `net` (dropout masks, ...), by name."""
    return {f"{name}:{attr}": value.bit_generator.state
            for name, module in net.named_modules() for attr, value in vars(module).items()
            if isinstance(value, np.random.Generator)}


def set_generator_states(net, states: dict) -> None:
    current = {f"{name}:{attr}": value for name, module in net.named_modules()
               for attr, value in vars(module).items() if isinstance(value, np.random.Generator)}
    if set(current) != set(states):
        raise ValueError(f"the checkpoint's random generators {sorted(states)} do not match the "
                         f"network's {sorted(current)}: is it the same architecture?")
    for key, state in states.items():
        current[key].bit_generator.state = state


def read_checkpoint(path) -> dict:
    """Read a checkpoint written by `Trainer.save` (only open checkpoints you made: this unpickles)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with path.open("rb") as f:
            state = pickle.load(f)
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as error:
        raise ValueError(f"{path} is not a readable cnnlab checkpoint ({error}); it may be truncated") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a cnnlab checkpoint (expected format {FORMAT!r})")
    return state
