"""The student edition: a copy of the course without the `solution` cells.

Exercise cells (tag `exercise`) and their self-check cells stay; every cell tagged `solution` is removed,
and so are outputs. The result is a folder of .ipynb files that students open in JupyterLab, with the
self-checks' package beside them (course/checks/*.py copied unchanged to checks/), which the notebooks
import as `checks` because a notebook's kernel runs in the notebook's folder.

The edition never destroys anything it did not write. It goes into a new folder, an empty one, or a
folder it wrote earlier, recognised by its manifest `.cnnlab-student-edition.json` (the name and
SHA-256 of every file it wrote: the notebooks and checks/*.py). Updating such a folder replaces or
removes only the files the manifest lists, and only while they are unchanged: a file added since, or
a listed file edited since (a student's work), is never overwritten or removed (an edited one stops
the update with an error naming it). The course folder, and any folder containing it (the repository
root), are refused. The files are prepared in a fresh temporary folder next to the target, always
removed afterwards, and each one is moved into place atomically.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

__all__ = ["strip_solutions", "write_student_edition", "MANIFEST"]

MANIFEST = ".cnnlab-student-edition.json"
FORMAT = "cnnlab-student-edition-1"
CHECKS = "checks"  # the self-checks' package: course/checks/*.py, shipped as checks/*.py


def strip_solutions(notebook: dict) -> tuple[dict, int]:
    """Return a copy of the notebook (nbformat JSON) without solution cells or outputs, and how many went."""
    cells, removed = [], 0
    for cell in notebook["cells"]:
        if "solution" in cell.get("metadata", {}).get("tags", []):
            removed += 1
            continue
        cell = dict(cell)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    return {**notebook, "cells": cells}, removed


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_edition_name(name) -> bool:
    """Whether `name` is one the edition writes: a plain notebook name `X.ipynb`, or `checks/X.py`."""
    if not isinstance(name, str) or "\\" in name:
        return False
    parts = PurePosixPath(name).parts
    if str(PurePosixPath(*parts)) != name or any(part.startswith(".") for part in parts):
        return False
    return (len(parts) == 1 and name.endswith(".ipynb")) or (
        len(parts) == 2 and parts[0] == CHECKS and parts[1].endswith(".py"))


def _read_manifest(out_dir: Path) -> dict[str, list[str]]:
    """{file name: SHA-256s it may have} from the manifest of a folder this module wrote.

    Raises ValueError when the manifest is not one this module writes (never trusted blindly: a
    listed name must be a plain .ipynb file name inside the folder, or checks/X.py).
    """
    path = out_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"] if manifest.get("format") == FORMAT else None
        ok = isinstance(files, dict) and all(
            _is_edition_name(name) and isinstance(digests, list)
            and all(isinstance(d, str) for d in digests) for name, digests in files.items())
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(f"{path} is not a valid student-edition manifest (expected JSON with format "
                         f"{FORMAT!r} and the notebooks it wrote), so nothing in {out_dir} was changed. "
                         "Delete that folder yourself if it is yours, or choose another folder.")
    return files


def _check_target(course_dir: Path, out_dir: Path) -> dict[str, list[str]]:
    """Refuse a target that could hold the course or files the edition did not write; its manifest ({} if new)."""
    course, target = course_dir.resolve(), out_dir.resolve()
    if target == course or course in target.parents:
        raise ValueError(f"the student edition must go outside the course folder {course}, got {target}; "
                         "choose another folder, e.g. student-edition")
    if target in course.parents:
        raise ValueError(f"{target} contains the course folder {course} (the repository root or above): "
                         "the student edition must go to a folder of its own, e.g. student-edition")
    if not target.exists():
        return {}
    if not target.is_dir():
        raise ValueError(f"{target} exists and is not a folder; choose a new folder for the student edition")
    if (target / MANIFEST).exists():
        return _read_manifest(target)
    if any(target.iterdir()):
        raise ValueError(f"{target} is not empty and was not written by the student edition (no {MANIFEST} in "
                         "it); its files are left alone. Choose a new or empty folder, e.g. student-edition")
    return {}


def _write_manifest(out_dir: Path, staging: Path, files: dict[str, list[str]]) -> None:
    tmp = staging / MANIFEST
    tmp.write_text(json.dumps({"format": FORMAT, "files": files}, indent=1, sort_keys=True) + "\n",
                   encoding="utf-8")
    os.replace(tmp, out_dir / MANIFEST)


def _blocked(out_dir: Path, name: str, listed: bool) -> bool:
    """Whether the edition's file `name` cannot go into out_dir without touching what it did not write:
    something not listed in the manifest stands there, or a file or a link stands where its folder goes."""
    path, folder = out_dir / name, (out_dir / name).parent
    if folder != out_dir and (folder.is_symlink() or (folder.exists() and not folder.is_dir())):
        return True
    return not listed and (path.exists() or path.is_symlink())


def write_student_edition(course_dir, out_dir) -> dict:
    """Write every course_dir/*.ipynb without solutions, and the self-checks course_dir/checks/*.py, into
    out_dir; returns {notebook name: cells removed}.

    Inputs:
    - course_dir: the folder of the lesson notebooks (course/).
    - out_dir: a new folder, an empty one, or one an earlier call wrote (see the module docstring):
      its listed files are updated, files no longer in the course removed, other files kept.

    Raises FileNotFoundError when course_dir has no notebooks, and ValueError, before anything is
    written, for a target inside or containing the course, a non-empty folder without a manifest, a
    foreign file where a notebook or a check module goes, or a listed file changed since it was written.
    """
    course_dir, out_dir = Path(course_dir), Path(out_dir).resolve()
    notebooks = sorted(course_dir.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {course_dir}")
    checks = sorted((course_dir / CHECKS).glob("*.py"))
    old = _check_target(course_dir, out_dir)
    names = [path.name for path in notebooks] + [f"{CHECKS}/{path.name}" for path in checks]
    foreign = [n for n in sorted(set(names) | set(old)) if _blocked(out_dir, n, listed=n in old)]
    if foreign:
        raise ValueError(f"{out_dir} holds {foreign}, not written by the student edition; it would be "
                         "overwritten, so nothing was changed. Move it away and run again.")
    edited = [n for n, digests in old.items()
              if (out_dir / n).exists() and ((out_dir / n).is_dir() or _sha256(out_dir / n) not in digests)]
    if edited:
        raise ValueError(f"{sorted(edited)} in {out_dir} changed since the student edition wrote them (someone's "
                         "work?), so nothing was changed. Move them away (or delete them) and run again.")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.", suffix=".tmp"))
    try:
        report, written = {}, {}
        for path in notebooks:
            stripped, removed = strip_solutions(json.loads(path.read_text(encoding="utf-8")))
            (staging / path.name).write_text(json.dumps(stripped, indent=1, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
            report[path.name], written[path.name] = removed, [_sha256(staging / path.name)]
        for path in checks:  # the self-checks, unchanged
            name = f"{CHECKS}/{path.name}"
            (staging / CHECKS).mkdir(exist_ok=True)
            (staging / name).write_bytes(path.read_bytes())
            written[name] = [_sha256(staging / name)]
        out_dir.mkdir(exist_ok=True)
        if checks:
            (out_dir / CHECKS).mkdir(exist_ok=True)
        # First list old and new contents, so that an interrupted update is still recognised as ours.
        _write_manifest(out_dir, staging, {n: sorted(set(old.get(n, []) + written.get(n, [])))
                                           for n in set(old) | set(written)})
        for name in names:
            os.replace(staging / name, out_dir / name)  # atomic: a file is either old or new
        for name in sorted(set(old) - set(written)):
            (out_dir / name).unlink(missing_ok=True)  # a lesson (or check module) no longer in the course
        _write_manifest(out_dir, staging, written)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report
