"""A folder a command writes and owns, recognised by its manifest: never destroys what the command did not write.

The student edition and the nbgrader assignments are written through it. A product (`Product`) names its manifest
and the file names it may write. `write_files` puts files into a new folder, an empty one, or a folder the same
product wrote earlier, recognised by its manifest (the name and SHA-256 of every file it wrote). Updating such a
folder replaces or removes only the files the manifest lists, and only while they are unchanged: a file added
since, or a listed file edited since (someone's work), is never overwritten or removed (an edited one stops the
update with an error naming it). The course folder, and any folder containing it (the repository root), are
refused. The files are prepared in a fresh temporary folder next to the target, always removed afterwards, and
each one is moved into place atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

__all__ = ["Product", "is_plain_name", "check_target", "plan", "claim", "write_files"]


@dataclass(frozen=True)
class Product:
    """What a command writes. Inputs:
    - title: how messages name the product ("the student edition"), and writer: who wrote it ("the student
      edition", "make assignments").
    - manifest: its manifest's file name; format: the format tag inside it; kind: the manifest's name in messages.
    - example: a folder name to suggest; allows(name) -> bool: whether a file name is one it may write.
    """
    title: str
    writer: str
    manifest: str
    format: str
    kind: str
    example: str
    allows: Callable[[str], bool]


def is_plain_name(name) -> bool:
    """Whether `name` is a relative POSIX path inside a folder: no `..`, no hidden part, no backslash."""
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    parts = PurePosixPath(name).parts
    return (str(PurePosixPath(*parts)) == name and not PurePosixPath(name).is_absolute()
            and not any(part.startswith(".") for part in parts))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(out_dir: Path, product: Product) -> dict[str, list[str]]:
    """{file name: SHA-256s it may have} from the manifest of a folder the product wrote.

    Raises ValueError when the manifest is not one the product writes (never trusted blindly: a listed name
    must be one the product may write, inside the folder).
    """
    path = out_dir / product.manifest
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"] if manifest.get("format") == product.format else None
        ok = isinstance(files, dict) and all(
            is_plain_name(name) and product.allows(name) and isinstance(digests, list)
            and all(isinstance(d, str) for d in digests) for name, digests in files.items())
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"{path} is not a valid {product.kind} manifest (expected JSON with format "
                         f"{product.format!r} and the files it wrote), so nothing in {out_dir} was changed. "
                         "Delete that folder yourself if it is yours, or choose another folder.")
    return files


def check_target(course_dir, out_dir, product: Product) -> dict[str, list[str]]:
    """Refuse a target that could hold the course or files the product did not write; its manifest ({} if new)."""
    course, target = Path(course_dir).resolve(), Path(out_dir).resolve()
    if target == course or course in target.parents:
        raise ValueError(f"{product.title} must go outside the course folder {course}, got {target}; "
                         f"choose another folder, e.g. {product.example}")
    if target in course.parents:
        raise ValueError(f"{target} contains the course folder {course} (the repository root or above): "
                         f"{product.title} must go to a folder of its own, e.g. {product.example}")
    if not target.exists():
        return {}
    if not target.is_dir():
        raise ValueError(f"{target} exists and is not a folder; choose a new folder for {product.title}")
    if (target / product.manifest).exists():
        return _read_manifest(target, product)
    if any(target.iterdir()):
        raise ValueError(f"{target} is not empty and was not written by {product.writer} (no {product.manifest} "
                         f"in it); its files are left alone. Choose a new or empty folder, e.g. {product.example}")
    return {}


def _blocked(out_dir: Path, name: str, listed: bool) -> bool:
    """Whether the file `name` cannot go into out_dir without touching what the product did not write: something
    not listed in the manifest stands there, or a file or a link stands where one of its folders goes."""
    path = out_dir / name
    for folder in path.parents:
        if folder == out_dir:
            break
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            return True
    return not listed and (path.exists() or path.is_symlink())


def plan(course_dir, out_dir, product: Product, names) -> dict[str, list[str]]:
    """Check, changing nothing, that the files `names` can be written into out_dir; returns its manifest.

    Raises ValueError for a target inside or containing the course, a non-empty folder without the product's
    manifest, a foreign file where one of `names` goes, or a listed file changed since it was written.
    """
    out_dir = Path(out_dir).resolve()
    old = check_target(course_dir, out_dir, product)
    foreign = [n for n in sorted(set(names) | set(old)) if _blocked(out_dir, n, listed=n in old)]
    if foreign:
        raise ValueError(f"{out_dir} holds {foreign}, not written by {product.writer}; it would be "
                         "overwritten, so nothing was changed. Move it away and run again.")
    edited = [n for n, digests in old.items()
              if (out_dir / n).exists() and ((out_dir / n).is_dir() or _sha256(out_dir / n) not in digests)]
    if edited:
        raise ValueError(f"{sorted(edited)} in {out_dir} changed since {product.writer} wrote them (someone's "
                         "work?), so nothing was changed. Move them away (or delete them) and run again.")
    return old


def _write_manifest(out_dir: Path, staging: Path, product: Product, files: dict[str, list[str]]) -> None:
    tmp = staging / product.manifest
    tmp.write_text(json.dumps({"format": product.format, "files": files}, indent=1, sort_keys=True) + "\n",
                   encoding="utf-8")
    os.replace(tmp, out_dir / product.manifest)


def claim(course_dir, out_dir, product: Product) -> None:
    """Make out_dir a folder of the product's (an empty manifest) unless it is one already; refuse as
    `check_target` does. For a command whose tools write into the folder before `write_files` does."""
    out_dir = Path(out_dir).resolve()
    if check_target(course_dir, out_dir, product) or (out_dir / product.manifest).exists():
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        _write_manifest(out_dir, staging, product, {})
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_files(course_dir, out_dir, product: Product, files: dict[str, bytes]) -> None:
    """Write {name: content} into out_dir (see the module docstring): listed files are updated, files the
    manifest lists but `files` does not are removed, other files kept. Raises as `plan` does, before writing."""
    out_dir = Path(out_dir).resolve()
    bad = [n for n in files if not (is_plain_name(n) and product.allows(n))]
    if bad:
        raise ValueError(f"{product.writer} does not write files named {sorted(bad)}")
    old = plan(course_dir, out_dir, product, files)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        written = {}
        for name, content in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(content)
            written[name] = [_sha256(staging / name)]
        out_dir.mkdir(exist_ok=True)
        for name in files:
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        # First list old and new contents, so that an interrupted update is still recognised as the product's.
        _write_manifest(out_dir, staging, product, {n: sorted(set(old.get(n, []) + written.get(n, [])))
                                                    for n in set(old) | set(written)})
        for name in files:
            os.replace(staging / name, out_dir / name)  # atomic: a file is either old or new
        for name in sorted(set(old) - set(written)):
            (out_dir / name).unlink(missing_ok=True)  # no longer in the course
            for folder in (out_dir / name).parents:  # and its folders, if that left them empty
                if folder == out_dir:
                    break
                try:
                    folder.rmdir()
                except OSError:  # not empty (or gone): kept
                    break
        _write_manifest(out_dir, staging, product, written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
