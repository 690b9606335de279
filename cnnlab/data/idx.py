"""The IDX file format of (Fashion-)MNIST, gzip-compressed: read defensively, write reproducibly.

An IDX file is a 4-byte magic number, then one big-endian uint32 per dimension, then the data:

    bytes 0-1  zero
    byte  2    the element type (0x08 = unsigned byte, the only type (Fashion-)MNIST uses)
    byte  3    the number of dimensions d (3 for images (N, 28, 28), 1 for labels (N,))
    d x 4      the size of each dimension, big-endian
    ...        the elements, row-major

The same reader serves the full Fashion-MNIST files and the subset shipped in `data/`. Every way a
file can be broken (not gzip, cut short, wrong magic, wrong shape, wrong checksum) raises
`DataError`, a `ValueError` whose message names the file and says how to repair it.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

__all__ = ["DataError", "read_idx", "write_idx", "payload_sha256"]

_UBYTE = 0x08


class DataError(ValueError):
    """A data file exists but is damaged or is not the file we expected."""


def payload_sha256(path) -> str:
    """SHA-256 (hex) of the *decompressed* content of a gzip file.

    Hashing the payload rather than the .gz bytes accepts any recompressed copy of the same data:
    Debian's files and Zalando's downloads hold the same bytes but compress them differently.
    """
    return hashlib.sha256(_gunzip(Path(path), fix="")).hexdigest()


def _gunzip(path: Path, fix: str) -> bytes:
    raw = path.read_bytes()  # a missing file is a FileNotFoundError, not a DataError
    try:
        return gzip.decompress(raw)
    except EOFError as err:
        raise DataError(f"{path} is truncated (the gzip stream ends early: {err}). {fix}") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as err:
        raise DataError(f"{path} is not a valid gzip file ({err}). {fix}") from None


def read_idx(path, ndim: int, sha256: str | None = None, fix: str = "") -> np.ndarray:
    """Read a gzip-compressed IDX file of unsigned bytes.

    Inputs:
    - path: str or Path of an `*-ubyte.gz` file.
    - ndim: the number of dimensions expected (3 for images, 1 for labels).
    - sha256: expected SHA-256 (hex) of the decompressed content; None skips the check.
    - fix: a sentence telling the user how to repair the file; appended to every error message.

    Returns:
    - array of dtype uint8 and shape given by the header, e.g. (N, 28, 28) or (N,).

    Raises DataError (a ValueError) when the file is not gzip, is truncated, has a wrong magic
    number or number of dimensions, a payload whose length disagrees with its header, or a
    checksum other than `sha256`.
    """
    path = Path(path)
    data = _gunzip(path, fix)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UBYTE:
        raise DataError(f"{path} is not an IDX file of unsigned bytes: expected magic number "
                        f"00 00 08 {ndim:02x}, found {data[:4].hex(' ') or 'nothing'}. {fix}")
    if data[3] != ndim:
        raise DataError(f"{path} holds an array of {data[3]} dimension(s), expected {ndim}. {fix}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: its header needs {header} bytes, found {len(data)}. {fix}")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "longer than its header says"
        raise DataError(f"{path} is {kind}: header shape {shape} needs {expected} bytes, "
                        f"found {len(data)}. {fix}")
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise DataError(f"{path} has the wrong content: SHA-256 of the decompressed data is "
                            f"{digest}, expected {sha256}. {fix}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def write_idx(path, array) -> None:
    """Write a uint8 array as a gzip-compressed IDX file, reproducibly and atomically.

    The gzip header carries no time stamp and no file name (mtime=0), so the same array always
    gives the same bytes (and the same checksum). The file is written to a temporary file in the
    same directory and then renamed over `path`, so a crash never leaves half a file behind.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"write_idx expects a uint8 array, got dtype {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"write_idx expects 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    blob = gzip.compress(header + np.ascontiguousarray(array).tobytes(), compresslevel=9, mtime=0)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; data files are for everyone to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
