"""The student edition: a copy of the course without the `solution` cells.

Exercise cells (tag `exercise`) and their self-check cells stay; every cell tagged `solution` is removed,
and so are outputs. The result is a folder of .ipynb files that students open in JupyterLab, with the
self-checks' package beside them (course/checks/*.py copied unchanged to checks/), which the notebooks
import as `checks` because a notebook's kernel runs in the notebook's folder.

The edition never destroys anything it did not write (see widgets._owned_folder). It goes into a new folder, an
empty one, or a folder it wrote earlier, recognised by its manifest `.cnnlab-student-edition.json` (the name and
SHA-256 of every file it wrote: the notebooks and checks/*.py). Updating such a folder replaces or removes only
the files the manifest lists, and only while they are unchanged: a file added since, or a listed file edited
since (a student's work), is never overwritten or removed (an edited one stops the update with an error naming
it). The course folder, and any folder containing it (the repository root), are refused. Each file is moved into
place atomically.

For a course graded with nbgrader, widgets.assignments writes nbgrader's release versions instead.
"""
from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from widgets._owned_folder import Product, write_files

__all__ = ["strip_solutions", "write_student_edition", "MANIFEST"]

MANIFEST = ".cnnlab-student-edition.json"
CHECKS = "checks"  # the self-checks' package: course/checks/*.py, shipped as checks/*.py


def _is_edition_name(name: str) -> bool:
    """Whether `name` is one the edition writes: a plain notebook name `X.ipynb`, or `checks/X.py`."""
    parts = PurePosixPath(name).parts
    return (len(parts) == 1 and name.endswith(".ipynb")) or (
        len(parts) == 2 and parts[0] == CHECKS and parts[1].endswith(".py"))


EDITION = Product(title="the student edition", writer="the student edition", manifest=MANIFEST,
                  format="cnnlab-student-edition-1", kind="student-edition", example="student-edition",
                  allows=_is_edition_name)


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
    course_dir = Path(course_dir)
    notebooks = sorted(course_dir.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {course_dir}")
    report, files = {}, {}
    for path in notebooks:
        stripped, report[path.name] = strip_solutions(json.loads(path.read_text(encoding="utf-8")))
        files[path.name] = (json.dumps(stripped, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    for path in sorted((course_dir / CHECKS).glob("*.py")):  # the self-checks, unchanged
        files[f"{CHECKS}/{path.name}"] = path.read_bytes()
    write_files(course_dir, out_dir, EDITION, files)
    return report
