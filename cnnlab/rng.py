"""Randomness in cnnlab: one rule, as in PyTorch.

Everything random in cnnlab (a layer's initial weights, the init schemes, dropout masks, data
shuffling and splits, augmentation, the Trainer, gradient checks, random search, noisy gradients)
takes an optional `rng`:

- a `numpy.random.Generator`: used as is, so its stream continues (pass one Generator to several
  layers and they draw from it in turn);
- an int seed >= 0: a new `np.random.default_rng(seed)`, so the same seed gives the same numbers;
- None (the default): cnnlab's own library generator, like `torch.default_generator`. Each call
  that gets rng=None takes one draw from it to seed a new Generator of its own. Two layers built
  one after the other therefore start from different weights (no symmetry trap, no identical
  ensemble members), and `cnnlab.manual_seed(s)` makes everything that follows repeat exactly.

    cnnlab.manual_seed(0)          # as torch.manual_seed(0)
    net = Sequential(Linear(784, 64), ReLU(), Linear(64, 10))   # two different layers
    ...                            # the same run, bit for bit, every time this cell runs

The library generator starts from seed 0 when cnnlab is imported (PyTorch too starts from a fixed
seed), so a script or a notebook run from the top in a fresh process is reproducible even without
`manual_seed`; re-running a cell is not, unless the cell calls `manual_seed` itself.

An object that keeps drawing (Dropout, DropConnect, DataLoader, Trainer, AugmentedLoader) takes its
Generator when it is built and owns it from then on: `manual_seed` changes what is built after it,
not the masks or batch order of objects built before, and a checkpoint saves and restores each
object's own generator. Code running in another thread (the widgets train in background threads)
should pass explicit Generators: draws on the library generator from two threads interleave in an
unpredictable order, so the run could not be repeated.

NumPy's global random state (`np.random.seed`, `np.random.rand`) is never used or changed.
"""
from __future__ import annotations

import numbers
import threading

import numpy as np

__all__ = ["as_generator", "manual_seed", "initial_seed"]

_lock = threading.Lock()
_initial_seed = 0
_library_generator = np.random.default_rng(_initial_seed)


def _check_seed(seed, who: str) -> int:
    """`seed` as a Python int >= 0; TypeError for anything but an int, ValueError for a negative one."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise TypeError(f"{who}: a seed must be an int >= 0, got {type(seed).__name__}: {seed!r}")
    if seed < 0:
        raise ValueError(f"{who}: a seed must be an int >= 0, got {seed}")
    return int(seed)


def manual_seed(seed) -> None:
    """Reset cnnlab's library generator (the source of every rng=None) to `seed`, as `torch.manual_seed`.

    Input: seed, an int >= 0 (a bool, a float or a negative number is refused with TypeError or
    ValueError). Everything built or drawn with rng=None after this call repeats exactly after
    another `manual_seed(seed)`. An explicit rng= is not affected.
    """
    global _library_generator, _initial_seed
    seed = _check_seed(seed, "manual_seed")
    with _lock:
        _initial_seed, _library_generator = seed, np.random.default_rng(seed)


def initial_seed() -> int:
    """The seed the library generator was last reset to (0 from import until `manual_seed`)."""
    return _initial_seed


def _from_library() -> np.random.Generator:
    """A new Generator seeded with one draw from the library generator (what rng=None gives)."""
    with _lock:
        seed = int(_library_generator.integers(2 ** 63))
    return np.random.default_rng(seed)


def as_generator(rng=None, who: str = "cnnlab") -> np.random.Generator:
    """`rng` as a numpy Generator, by the one rule of this module.

    rng: a Generator (returned as is, its stream continues), an int seed >= 0 (a new Generator), or
    None (a new Generator seeded from the library generator, see `manual_seed`). Anything else raises
    TypeError, a negative seed ValueError; `who` names the caller in the message.
    """
    if rng is None:
        return _from_library()
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{who}: an rng seed must be a non-negative int, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{who}: rng must be a numpy.random.Generator, an int seed or None, got "
                    f"{type(rng).__name__}: {rng!r}")
