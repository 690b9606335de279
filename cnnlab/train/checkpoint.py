"""Checkpoint files: written atomically, read without ever running code from them.

A checkpoint is a NumPy `.npz` archive (a zip of `.npy` files, stored uncompressed) holding

- `header`: a uint8 array of UTF-8 JSON: {"format": FORMAT, "arrays": {key: {"shape", "dtype"}}, ...}
  with every piece of state that is not an array (history, epoch, random states, scheduler,
  optimizer hyper-parameters, the caller's `meta`);
- one array per key the header declares: "net/<name>" (the network's state_dict),
  "optimizer/<i>/<key>" (state of the optimizer's i-th parameter, e.g. Adam's exp_avg) and
  "callback/<i>/<name>" (weights kept by the trainer's i-th callback, e.g. EarlyStopping's best ones).

Reading never unpickles (`np.load(..., allow_pickle=False)`) and checks before it allocates: every
member must be stored uncompressed (no zip bombs), every array's .npy header must declare the shape
and dtype the JSON header declares, and its size must be the member's size. Anything wrong raises
`CheckpointError` naming the file and the problem.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["FORMAT", "CheckpointError", "atomic_write_bytes", "remove_stale_temporaries", "write_archive",
           "read_archive", "generator_states", "set_generator_states", "check_generator_state"]

FORMAT = "cnnlab-checkpoint-3"  # 3: callback states (EarlyStopping) beside the rest
_DTYPES = re.compile(r"^[<>|]?[fiub][1248]$")  # plain numbers and booleans: never objects or records
_KEY = re.compile(r"^(net/[A-Za-z0-9_.]+|optimizer/(0|[1-9][0-9]{0,8})/[A-Za-z_][A-Za-z0-9_]*"
                  r"|callback/(0|[1-9][0-9]{0,3})/[A-Za-z0-9_.]+)$")
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used: damaged, not a checkpoint, or not for this trainer."""


def atomic_write_bytes(path, data: bytes) -> None:
    """Write `data` to a temporary file `.<name>.<random>.tmp` next to `path`, flush it to disk, then
    rename it over `path` (a crash leaves the old file whole; see remove_stale_temporaries)."""
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


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporary files `atomic_write_bytes(path, ...)` leaves when killed mid-write.

    Only regular files named exactly `.<name>.<8 characters of tempfile's alphabet>.tmp` beside
    `path` are removed (what mkstemp creates for this target); returns their paths.
    """
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp$")
    if not path.parent.is_dir():
        return []
    removed = []
    for candidate in sorted(path.parent.iterdir()):
        if pattern.match(candidate.name) and candidate.is_file() and not candidate.is_symlink():
            candidate.unlink()
            removed.append(candidate)
    return removed


def write_archive(path, arrays: dict, header: dict) -> None:
    """Write `arrays` ({key: ndarray}, keys as in the module docstring) and the JSON-able `header`
    atomically to `path`; the header's "format" and "arrays" entries are filled in here."""
    arrays = {key: np.asarray(value, order="C") for key, value in arrays.items()}  # 0-d stays 0-d
    for key, value in arrays.items():
        if not _KEY.match(key) or not _DTYPES.match(value.dtype.str):
            raise ValueError(f"cannot store array {key!r} of dtype {value.dtype} in a checkpoint")
    header = {**header, "format": FORMAT,
              "arrays": {key: {"shape": list(v.shape), "dtype": v.dtype.str} for key, v in arrays.items()}}
    text = json.dumps(header, default=_json_default, allow_nan=True)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, header=np.frombuffer(text.encode("utf-8"), dtype=np.uint8),
             **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored in a checkpoint (JSON values only)")


def read_archive(path, check=None, max_bytes: int | None = None, with_arrays: bool = True) -> dict:
    """Read a checkpoint archive written by `write_archive` (see `read_checkpoint` for a trainer's state).

    check: optional function called with the decoded header before any array data is read; it raises
    CheckpointError (without the file name) when the header does not fit (e.g. another architecture).
    max_bytes: refuse larger files without reading them. with_arrays=False: read the header only.
    Returns the header dict with "arrays" replaced by {key: ndarray} (empty without arrays). Raises
    FileNotFoundError for a missing file and CheckpointError("<path> is not a ...: ...") for anything
    else wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        return _read(path, check, max_bytes, with_arrays)
    except CheckpointError as error:
        raise CheckpointError(f"{path} is not a usable cnnlab checkpoint: {error}") from None
    except Exception as error:  # untrusted bytes: whatever the zip or npy readers raise means "damaged"
        raise CheckpointError(f"{path} is not a readable cnnlab checkpoint ({type(error).__name__}: "
                              f"{str(error)[:200]}); it may be truncated or damaged") from None


def _read(path: Path, check, max_bytes, with_arrays: bool) -> dict:
    with path.open("rb") as f, _open_archive(f, max_bytes) as archive:  # one open file: read what was checked
        size = os.fstat(f.fileno()).st_size
        infos = {}
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size \
                    or info.file_size > size or info.flag_bits & 0x1:
                raise CheckpointError(f"member {info.filename!r} is compressed or encrypted (checkpoints store "
                                      f"arrays uncompressed)")
            if not info.filename.endswith(".npy") or info.filename[:-4] in infos:
                raise CheckpointError(f"unexpected or repeated member {info.filename!r}")
            infos[info.filename[:-4]] = info
        if "header" not in infos:
            raise CheckpointError("no header entry")
        header = _read_header(archive, infos["header"])
        if check is not None:
            check(header)
        if not with_arrays:
            header["arrays"] = {}
            return header
        declared = header["arrays"]
        present = set(infos) - {"header"}
        if set(declared) != present:
            missing, unexpected = sorted(set(declared) - present), sorted(present - set(declared))
            raise CheckpointError("; ".join(([f"arrays missing: {', '.join(missing[:10])}"] if missing else [])
                                            + ([f"arrays not in its header: {', '.join(unexpected[:10])}"]
                                               if unexpected else [])))
        arrays = {}
        for key, spec in declared.items():
            arrays[key] = _read_array(archive, infos[key], tuple(spec["shape"]), np.dtype(spec["dtype"]))
    header["arrays"] = arrays
    return header


def _open_archive(f, max_bytes) -> zipfile.ZipFile:
    size = os.fstat(f.fileno()).st_size
    if max_bytes is not None and size > max_bytes:
        raise CheckpointError(f"it holds {size} bytes, more than the {max_bytes} a checkpoint of this "
                              f"trainer can need")
    if not zipfile.is_zipfile(f):
        raise CheckpointError("not a zip (.npz) archive: truncated, damaged, or an old pickled checkpoint")
    return zipfile.ZipFile(f)


def _npy_layout(archive, info) -> tuple[tuple, np.dtype, int]:
    """Shape, dtype and header length from a member's .npy header, without reading its data."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise CheckpointError(f"member {info.filename!r} has .npy version {version}")
        return shape, dtype, f.tell()


def _read_array(archive, info, shape: tuple, dtype: np.dtype) -> np.ndarray:
    found_shape, found_dtype, offset = _npy_layout(archive, info)
    if found_shape != shape or found_dtype != dtype:
        raise CheckpointError(f"array {info.filename[:-4]!r} is {found_dtype} {found_shape}, its header "
                              f"says {dtype} {shape}")
    if offset + math.prod(shape) * dtype.itemsize != info.file_size:
        raise CheckpointError(f"array {info.filename[:-4]!r} has {info.file_size - offset} bytes of data, "
                              f"its shape {shape} needs {math.prod(shape) * dtype.itemsize}")
    array = np.load(io.BytesIO(archive.read(info)), allow_pickle=False)  # read() checks the CRC
    if not isinstance(array, np.ndarray) or array.shape != shape or array.dtype != dtype:
        raise CheckpointError(f"array {info.filename[:-4]!r} does not match its header")
    return array


def _read_header(archive, info) -> dict:
    shape, dtype, _ = _npy_layout(archive, info)
    if dtype != np.uint8 or len(shape) != 1:
        raise CheckpointError(f"the header entry is {dtype} {shape}, expected 1-D uint8 (UTF-8 JSON)")
    raw = _read_array(archive, info, shape, dtype)
    try:
        header = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CheckpointError(f"the header is not UTF-8 JSON ({type(error).__name__})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"the header is a JSON {type(header).__name__}, expected an object")
    if header.get("format") != FORMAT:
        raise CheckpointError(f"format {str(header.get('format'))[:60]!r}, expected {FORMAT!r}")
    arrays = header.get("arrays")
    if not isinstance(arrays, dict):
        raise CheckpointError("the header has no 'arrays' object")
    for key, spec in arrays.items():
        if not _KEY.match(key):
            raise CheckpointError(f"unexpected array name {key[:60]!r}")
        if not (isinstance(spec, dict) and set(spec) == {"shape", "dtype"} and isinstance(spec["dtype"], str)
                and _DTYPES.match(spec["dtype"]) and isinstance(spec["shape"], list) and len(spec["shape"]) <= 8
                and all(type(n) is int and 0 <= n < 2 ** 31 for n in spec["shape"])):
            raise CheckpointError(f"array {key!r} is declared as {str(spec)[:80]}, expected "
                                  f"{{'shape': [ints], 'dtype': a number type}}")
    return header


# --- random generators: their states are JSON (PCG64's are 128-bit integers) ---------------------------
def _generators(net) -> dict:
    return {f"{name}:{attr}": value for name, module in net.named_modules()
            for attr, value in vars(module).items() if isinstance(value, np.random.Generator)}


def generator_states(net) -> dict:
    """The state of every numpy Generator held by a module of `net` (dropout masks, ...), by name."""
    return {key: gen.bit_generator.state for key, gen in _generators(net).items()}


def check_generator_state(state, like: np.random.Generator | None = None) -> None:
    """Raise CheckpointError unless `state` can be the state of a bit generator (of `like`'s kind)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise CheckpointError(f"a random generator state names {str(name)[:40]!r}, expected one of "
                              f"{', '.join(_BIT_GENERATORS)}")
    if like is not None and name != type(like.bit_generator).__name__:
        raise CheckpointError(f"a random generator is {name}, this trainer's is "
                              f"{type(like.bit_generator).__name__}")
    trial = getattr(np.random, name)()
    try:
        trial.state = state  # try it on a throw-away generator, and read it back: it must be the same
        same = json.dumps(trial.state, sort_keys=True, default=_json_default) == json.dumps(state, sort_keys=True)
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise CheckpointError(f"a {name} random state is malformed ({type(error).__name__})") from None
    if not same:
        raise CheckpointError(f"a {name} random state is malformed (it does not read back as it was written)")


def set_generator_states(net, states: dict) -> None:
    """Restore `generator_states(net)`; checks every state first (CheckpointError), then sets them all."""
    current = _generators(net)
    if not isinstance(states, dict) or set(current) != set(states):
        names = sorted(states)[:10] if isinstance(states, dict) else type(states).__name__
        raise CheckpointError(f"the checkpoint's random generators {names} do not match the "
                              f"network's {sorted(current)}: is it the same architecture?")
    for key, state in states.items():
        check_generator_state(state, current[key])
    for key, state in states.items():
        current[key].bit_generator.state = state
