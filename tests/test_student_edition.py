"""The student edition keeps every exercise and self-check and drops every solution."""
import json
from pathlib import Path

import nbformat
import pytest

from widgets.edition import strip_solutions, write_student_edition

COURSE = Path(__file__).resolve().parents[1] / "course"


def tags(cell):
    return cell.get("metadata", {}).get("tags", [])


def test_student_edition_of_the_real_course(tmp_path):
    out = tmp_path / "student"
    report = write_student_edition(COURSE, out)
    assert sorted(report) == sorted(p.name for p in COURSE.glob("*.ipynb"))
    for source in COURSE.glob("*.ipynb"):
        original = json.loads(source.read_text())
        student = json.loads((out / source.name).read_text())
        nbformat.validate(nbformat.from_dict(student))  # still a valid notebook
        solutions = [c for c in original["cells"] if "solution" in tags(c)]
        assert report[source.name] == len(solutions)
        assert not any("solution" in tags(c) for c in student["cells"])
        kept_sources = {"".join(c["source"]) for c in student["cells"]}
        for cell in solutions:
            assert "".join(cell["source"]) not in kept_sources, f"{source.name}: solution code left"
        exercises = ["".join(c["source"]) for c in original["cells"] if "exercise" in tags(c)]
        assert exercises == ["".join(c["source"]) for c in student["cells"] if "exercise" in tags(c)]
        assert len(student["cells"]) == len(original["cells"]) - len(solutions)
    assert any(report.values()), "the course has solutions to remove"


def test_strip_solutions_drops_outputs_and_counts():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["exercise"]}, "source": "x = ...",
                     "outputs": [{"output_type": "stream"}], "execution_count": 3},
                    {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": "x = 1",
                     "outputs": [], "execution_count": None}], "metadata": {}}
    stripped, removed = strip_solutions(nb)
    assert removed == 1 and len(stripped["cells"]) == 1
    assert stripped["cells"][0]["outputs"] == [] and stripped["cells"][0]["execution_count"] is None
    assert len(nb["cells"]) == 2  # the input is not modified


def test_refuses_to_overwrite_the_course_and_an_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="another folder"):
        write_student_edition(COURSE, COURSE)
    with pytest.raises(FileNotFoundError, match=r"no notebooks"):
        write_student_edition(tmp_path, tmp_path / "out")
