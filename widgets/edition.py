"""The student edition: a copy of the course without the `solution` cells.

Exercise cells (tag `exercise`) and their self-checks stay; every cell tagged `solution` is removed, and
so are outputs. The result is a folder of .ipynb files that students open in JupyterLab.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

__all__ = ["strip_solutions", "write_student_edition"]


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
    """Write every course/*.ipynb without solutions into out_dir (replaced if it exists); name -> removed."""
    course_dir, out_dir = Path(course_dir), Path(out_dir)
    notebooks = sorted(course_dir.glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebooks (*.ipynb) in {course_dir}")
    if out_dir.resolve() == course_dir.resolve():
        raise ValueError("the student edition must go to another folder than the course itself")
    staging = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    report = {}
    for path in notebooks:
        stripped, removed = strip_solutions(json.loads(path.read_text(encoding="utf-8")))
        (staging / path.name).write_text(json.dumps(stripped, indent=1, ensure_ascii=False) + "\n",
                                         encoding="utf-8")
        report[path.name] = removed
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)  # the finished folder appears at once
    return report
