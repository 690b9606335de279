"""Fashion-MNIST: 28x28 grey-scale images of clothing in ten classes (Xiao, Rasul & Vollgraf, 2017).

Two copies can be loaded:
- the full set (60,000 training and 10,000 test images), looked for in this order: an explicit
  `root`, `$CNNLAB_DATA`, `~/.cache/cnnlab/fashion-mnist` (where `download_fashion_mnist` puts
  it) and `/usr/share/datasets/fashion-mnist` (Debian's package `dataset-fashion-mnist`);
- a class-balanced subset shipped with the course in `data/fashion-mnist-subset/` (see
  `data/README.md`), so that every notebook runs on a fresh machine without a download.

Steering the search:
- `root=` (a folder) is the only place searched; missing files are an error.
- `$CNNLAB_DATA`, when set to a non-empty string (and no `root` is given), is likewise the only
  place searched: if that folder is missing or lacks one of the four files, loading the full or
  "auto" set raises FileNotFoundError naming the folder and the missing files (never a silent
  fall-back to another copy). Unset it (`unset CNNLAB_DATA`) to search the default places.
- Debian's system-wide copy is skipped with `system=False` (a keyword of `locate_fashion_mnist`
  and `load_fashion_mnist`) or with the environment variable `CNNLAB_SYSTEM_DATA=0` (also
  `false`, `no`, `off`; `1`, `true`, `yes`, `on` or unset: searched). The keyword wins over the
  variable; any other value of the variable is a ValueError.

Every file is checked against the SHA-256 of its decompressed content before it is used; decoded
arrays are kept in memory, so loading twice in a notebook is instant.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnlab.data.idx import DataError, read_idx

__all__ = ["CLASSES", "FashionMNIST", "load_fashion_mnist", "locate_fashion_mnist",
           "download_fashion_mnist", "default_cache_dir", "subset_dir"]

CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
SPLITS = ("train", "test")
SOURCES = ("auto", "full", "subset")
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
ALL_FILES = FILES["train"] + FILES["test"]
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# SHA-256 of the decompressed content of each file (see read_idx): "full" computed from Debian's
# dataset-fashion-mnist 0.0~git20200523.55506a9-1, "subset" written by data/build_subset.py.
SHA256 = {
    "full": {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    "subset": {
        "train-images-idx3-ubyte.gz": "dddb6d0bf4d99d0d62d93b8e1a218f9ef020acda439333a5b152a423322b1e64",
        "train-labels-idx1-ubyte.gz": "60102d2852802c72223e0162cdbd9e4abeb2be543f3a2705fd605b1da346dfae",
        "t10k-images-idx3-ubyte.gz": "6c7c35fb2bfa0d22eb37d1c83c2c8c7166f2b3454371250e00ae3f7a394eff65",
        "t10k-labels-idx1-ubyte.gz": "95da563488f4f8d460ffd31bd224a1ae807d9555859656cc2689da8d61010330",
    },
}

_HOW_TO_GET = (f"To get the full set: `sudo apt-get install dataset-fashion-mnist`; or download the "
               f"four files from {URL}/ into ~/.cache/cnnlab/fashion-mnist; or call "
               f"load_fashion_mnist(..., download=True). Or use source='subset' (shipped with the course).")


class FashionMNIST(NamedTuple):
    """One split of Fashion-MNIST.

    - X: float32 array of shape (N, 1, 28, 28), pixel values in [0, 1] (0 = black background).
    - y: int64 array of shape (N,), class indices in 0..9.
    - classes: the ten class names; `classes[y[i]]` names image i.
    """
    X: np.ndarray
    y: np.ndarray
    classes: tuple


def default_cache_dir() -> Path:
    """Where `download_fashion_mnist` puts the full set: ~/.cache/cnnlab/fashion-mnist."""
    return Path.home() / ".cache" / "cnnlab" / "fashion-mnist"


def subset_dir() -> Path:
    """The directory of the shipped subset: `$CNNLAB_SUBSET_DIR`, else `<repository>/data/fashion-mnist-subset`."""
    override = os.environ.get("CNNLAB_SUBSET_DIR")
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parents[2] / "data" / "fashion-mnist-subset"


def _env_dir() -> Path | None:
    """The folder named by $CNNLAB_DATA, or None when it is unset or empty."""
    env = os.environ.get("CNNLAB_DATA")
    return Path(env).expanduser() if env else None


_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _use_system(system) -> bool:
    """Whether Debian's copy is searched: the `system` keyword, else $CNNLAB_SYSTEM_DATA (default yes)."""
    if system is not None:
        if not isinstance(system, bool):
            raise TypeError(f"system must be True, False or None (follow $CNNLAB_SYSTEM_DATA), got {system!r}")
        return system
    value = os.environ.get("CNNLAB_SYSTEM_DATA", "").strip().lower()
    if value in _NO:
        return False
    if value in _YES + ("",):
        return True
    raise ValueError(f"$CNNLAB_SYSTEM_DATA must be 0 (do not use {SYSTEM_DIR}) or 1 (use it; the default), "
                     f"got {os.environ['CNNLAB_SYSTEM_DATA']!r}")


def _search_dirs(root, system=None) -> list[Path]:
    if root is not None:
        return [Path(root).expanduser()]
    env = _env_dir()
    if env is not None:
        return [env]
    return [default_cache_dir()] + ([SYSTEM_DIR] if _use_system(system) else [])


def locate_fashion_mnist(root=None, system: bool | None = None) -> Path | None:
    """The first directory holding all four full-set files, or None.

    Inputs:
    - root: a directory; when given it is the only place searched.
    - system: whether to search Debian's copy /usr/share/datasets/fashion-mnist; None (default)
      follows $CNNLAB_SYSTEM_DATA (searched unless it is 0).
    Search order and $CNNLAB_DATA: see the module docstring. A `root` or $CNNLAB_DATA folder that
    lacks files gives None here; `load_fashion_mnist` then raises, naming the missing files.
    """
    for directory in _search_dirs(root, system):
        if all((directory / name).is_file() for name in ALL_FILES):
            return directory
    return None


def _fix(kind: str, path: Path) -> str:
    """How to repair a damaged file: a sentence for the error message."""
    if kind == "subset":
        return (f"Restore it with `git checkout -- data/fashion-mnist-subset/{path.name}` "
                "or rebuild it with `python data/build_subset.py`.")
    if path.parent == SYSTEM_DIR:
        return "Reinstall the Debian package: `sudo apt-get install --reinstall dataset-fashion-mnist`."
    return f"Delete {path} and download it again with `cnnlab.data.download_fashion_mnist()`."


def _read_split(directory: Path, split: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Read, verify and sanity-check one split: uint8 images (N, 28, 28) and uint8 labels (N,)."""
    image_path, label_path = (directory / name for name in FILES[split])
    images = read_idx(image_path, 3, SHA256[kind][image_path.name], _fix(kind, image_path))
    labels = read_idx(label_path, 1, SHA256[kind][label_path.name], _fix(kind, label_path))
    if images.shape[1:] != (28, 28):
        raise DataError(f"{image_path} holds images of shape {images.shape[1:]}, expected (28, 28). "
                        + _fix(kind, image_path))
    if labels.size and labels.max() >= len(CLASSES):
        raise DataError(f"{label_path} holds label {labels.max()}, expected values in 0..9. "
                        + _fix(kind, label_path))
    if len(images) != len(labels):
        raise DataError(f"{image_path} holds {len(images)} images but {label_path} holds "
                        f"{len(labels)} labels; they must match. " + _fix(kind, image_path))
    return images, labels


_CACHE: dict = {}  # (directory, split, kind) -> (file stamps, (images, labels))


def _load_cached(directory: Path, split: str, kind: str):
    """`_read_split`, remembered until one of the two files changes (size or modification time)."""
    key = (str(directory.resolve()), split, kind)
    stamp = tuple((s.st_size, s.st_mtime_ns) for s in ((directory / n).stat() for n in FILES[split]))
    hit = _CACHE.get(key)
    if hit is None or hit[0] != stamp:
        hit = _CACHE[key] = (stamp, _read_split(directory, split, kind))
    return hit[1]


def load_fashion_mnist(split: str = "train", root=None, source: str = "auto",
                       download: bool = False, system: bool | None = None) -> FashionMNIST:
    """Load one split of Fashion-MNIST as float images in [0, 1] and integer labels.

    Inputs:
    - split: "train" or "test".
    - root: a directory holding the four full-set files; when given, it is the only place searched
      and missing files are an error (never a silent fall-back to the subset). Without `root`, a
      non-empty $CNNLAB_DATA acts the same way (see the module docstring).
    - source: "auto" (the full set when found, else the shipped subset), "full" (the full set, or
      FileNotFoundError listing every place searched) or "subset" (the shipped subset).
    - download: when True and the full set is not found, download it first (`download_fashion_mnist`,
      into `root`, else $CNNLAB_DATA, else ~/.cache/cnnlab/fashion-mnist).
    - system: whether Debian's copy /usr/share/datasets/fashion-mnist may be used; None (default)
      follows $CNNLAB_SYSTEM_DATA (used unless it is 0).

    Returns a FashionMNIST(X, y, classes): X float32 (N, 1, 28, 28) in [0, 1], y int64 (N,). The
    arrays are fresh copies: changing them in place does not affect the next load.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if source == "subset" and (root is not None or download or system is not None):
        raise ValueError("root, download and system apply to the full set; with source='subset' leave them "
                         f"unset (got root={root!r}, download={download!r}, system={system!r})")
    directory, kind = None, "full"
    if source != "subset":
        directory = locate_fashion_mnist(root, system)
        explicit = root if root is not None else _env_dir()  # the only place searched, if any
        if directory is None and download:
            directory = download_fashion_mnist(explicit)
        if directory is None and (explicit is not None or source == "full"):
            raise FileNotFoundError(_not_found_message(root, system))
    if directory is None:
        directory, kind = subset_dir(), "subset"
        missing = [name for name in FILES[split] if not (directory / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"the shipped Fashion-MNIST subset is missing {missing} in {directory}. Restore it "
                "with `git checkout -- data/fashion-mnist-subset` or rebuild it with "
                f"`python data/build_subset.py`. {_HOW_TO_GET}")
    images, labels = _load_cached(directory, split, kind)
    X = images[:, None, :, :].astype(np.float32)  # a fresh copy, (N, 1, 28, 28)
    X /= 255.0
    return FashionMNIST(X, labels.astype(np.int64), CLASSES)


def _not_found_message(root, system=None) -> str:
    explicit = Path(root).expanduser() if root is not None else _env_dir()
    if explicit is not None:  # one place was named: say what is wrong with it
        named = f"root={str(explicit)!r}" if root is not None else f"$CNNLAB_DATA is set to {explicit}"
        if not explicit.is_dir():
            problem = "that folder does not exist"
        else:
            problem = f"that folder lacks {[n for n in ALL_FILES if not (explicit / n).is_file()]}"
        message = (f"the full Fashion-MNIST set was not found: {named}, but {problem}. It is the only place "
                   f"searched and must hold the four files {', '.join(ALL_FILES)}.")
        if root is None:
            message += (" To search the default places and fall back to the shipped subset instead, unset "
                        "the variable (`unset CNNLAB_DATA` in the shell, `del os.environ['CNNLAB_DATA']` in Python).")
        return message + "\n" + _HOW_TO_GET
    places = [f"  - {d}" for d in _search_dirs(None, system)]
    places.insert(0, "  - $CNNLAB_DATA (not set)")
    if not _use_system(system):
        why = "system=False" if system is not None else "$CNNLAB_SYSTEM_DATA=" + os.environ["CNNLAB_SYSTEM_DATA"]
        places.append(f"  - {SYSTEM_DIR} (not searched: {why})")
    return ("the full Fashion-MNIST set was not found. Searched, in order:\n" + "\n".join(places)
            + f"\nEach place must hold the four files {', '.join(ALL_FILES)}.\n" + _HOW_TO_GET)


def download_fashion_mnist(root=None, base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Download the four full-set files into `root` (default ~/.cache/cnnlab/fashion-mnist).

    Each file is fetched into a temporary file, its decompressed content is checked against the
    known SHA-256 and only then renamed into place: an interrupted or wrong download leaves nothing
    behind. Files already present and correct are not fetched again.

    Inputs:
    - root: the target directory (created if needed).
    - base_url: where the files are, `<base_url>/<file name>`; None means Zalando's official
      location (`URL`). A `file://` URL works too, e.g. for a local mirror.
    - timeout: seconds to wait for the server.

    Returns the directory. Raises ConnectionError when a file cannot be fetched and DataError
    when a fetched file is not the expected one.
    """
    directory = Path(root).expanduser() if root is not None else default_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for name in ALL_FILES:
        ndim, target = (3 if "images" in name else 1), directory / name
        if target.is_file():
            try:
                read_idx(target, ndim, SHA256["full"][name])
                continue
            except DataError:
                pass  # a damaged copy: fetch it again
        url = f"{(base_url or URL).rstrip('/')}/{name}"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
        try:
            try:
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, out)
            except OSError as err:  # urllib.error.URLError, timeouts and disk errors are all OSErrors
                raise ConnectionError(f"could not download {url}: {err}. Check the network "
                                      f"connection and try again. {_HOW_TO_GET}") from err
            try:
                read_idx(tmp, ndim, SHA256["full"][name])
            except DataError as err:
                raise DataError(f"the file downloaded from {url} is not the expected Fashion-MNIST "
                                f"file, so it was not kept ({err}). Try again later, or install "
                                "`dataset-fashion-mnist`.") from None
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    return directory
