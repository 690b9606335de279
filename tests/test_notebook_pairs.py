"""Every lesson is a pair course/NN_topic.py + course/NN_topic.ipynb that agree, and the .ipynb has no outputs.

The drift check is the one from the tooling notes: convert the .ipynb to py:percent with the repository's
jupytext.toml and compare with the committed .py, line by line.
"""
import difflib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
NOTEBOOKS = sorted(COURSE.glob("*.ipynb"))
TEXTS = sorted(COURSE.glob("*.py"))
# exercise: the student's cell; solution: its answer (CI runs it, the student edition drops it);
# nbval-skip + skip-execution: deliberately not run in CI (both, so nbval and nbmake agree).
KNOWN_TAGS = {"exercise", "solution", "nbval-skip", "skip-execution", "raises-exception"}


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_the_course_has_lessons():
    assert any(p.name.startswith("00_") for p in NOTEBOOKS), f"no lesson 00 among {NOTEBOOKS}"


@pytest.mark.parametrize("path", TEXTS + NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_has_its_twin(path):
    twin = path.with_suffix(".ipynb" if path.suffix == ".py" else ".py")
    assert twin.exists(), f"{path.name} has no paired {twin.name}; run `make sync-notebooks`"


def pair_diff(notebook: Path) -> str:
    """The unified diff between NN_topic.py and NN_topic.ipynb converted to py:percent ("" when in sync)."""
    text = notebook.with_suffix(".py")
    converted = subprocess.run(
        [sys.executable, "-m", "jupytext", "--to", "py:percent", "-o", "-", str(notebook)],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout
    committed = text.read_text(encoding="utf-8")
    return "".join(difflib.unified_diff(committed.splitlines(True), converted.splitlines(True),
                                        f"{text.name} (committed)", f"{notebook.name} (as py:percent)"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_pair_has_not_drifted(notebook):
    diff = pair_diff(notebook)
    assert not diff, f"{notebook.name} and {notebook.with_suffix('.py').name} differ; run `make sync-notebooks`:\n{diff}"


def test_the_drift_check_notices_a_one_character_change(tmp_path):
    (tmp_path / "jupytext.toml").write_text((ROOT / "jupytext.toml").read_text())
    source = NOTEBOOKS[0]
    notebook = tmp_path / source.name
    notebook.write_text(source.read_text())
    text = notebook.with_suffix(".py")
    text.write_text(source.with_suffix(".py").read_text())
    assert pair_diff(notebook) == ""
    text.write_text(text.read_text().replace("import numpy as np", "import numpy as mp", 1))
    assert "-import numpy as mp" in pair_diff(notebook)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(notebook):
    dirty = [i for i, c in enumerate(cells(notebook))
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{notebook.name}: cells {dirty} carry outputs; run `make sync-notebooks`"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_cell_tags_follow_the_course_conventions(notebook):
    nb_cells = cells(notebook)
    seen_exercise = False
    for i, cell in enumerate(nb_cells):
        tags = set(cell.get("metadata", {}).get("tags", []))
        assert tags <= KNOWN_TAGS, f"{notebook.name} cell {i}: unknown tags {sorted(tags - KNOWN_TAGS)}"
        assert ("nbval-skip" in tags) == ("skip-execution" in tags), \
            f"{notebook.name} cell {i}: tag nbval-skip and skip-execution together, or neither"
        if "exercise" in tags:
            seen_exercise = True
        if "solution" in tags:
            assert seen_exercise, f"{notebook.name} cell {i}: a solution with no exercise cell before it"
            assert cell.get("metadata", {}).get("jupyter", {}).get("source_hidden"), \
                f"{notebook.name} cell {i}: solution cells are collapsed (jupyter.source_hidden)"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_the_python3_kernel(notebook):
    meta = json.loads(notebook.read_text(encoding="utf-8"))["metadata"]
    assert meta.get("kernelspec", {}).get("name") == "python3", f"{notebook.name}: kernelspec {meta.get('kernelspec')}"


def test_notebooks_keep_the_metadata_filter_of_jupytext_toml():
    """jupytext stores the cell metadata filter in each .ipynb and prefers it to jupytext.toml's: a stale one
    would silently drop the nbgrader metadata from the .py twin."""
    wanted = re.search(r'^cell_metadata_filter = "(.*)"$', (ROOT / "jupytext.toml").read_text(), re.M).group(1)
    assert "nbgrader" in wanted.split(","), "jupytext.toml's cell_metadata_filter must keep nbgrader"
    stale = [p.name for p in NOTEBOOKS
             if json.loads(p.read_text())["metadata"].get("jupytext", {}).get("cell_metadata_filter") != wanted]
    assert not stale, f"{stale}: set metadata.jupytext.cell_metadata_filter to {wanted!r} in the .ipynb, then re-sync"


# --- nbgrader: every exercise is an autograded answer with an autograder test --------------------------------
# The triple exercise / solution / self-check: the `exercise` cell stays a plain cell the student edits; the
# `solution` cell is an nbgrader autograded-answer cell (nbgrader replaces it by a one-line stub in the
# release); the self-check cell right after it is a locked autograder test worth `points`. grade_ids are
# NN-<stem>-solution and NN-<stem>-check, with one stem per exercise, unique in the course.
GRADE_ID = re.compile(r"(?P<lesson>\d\d)-(?P<stem>[a-z0-9]+(?:-[a-z0-9]+)*)-(?P<role>solution|check)")


def nbgrader_solution(grade_id: str) -> dict:
    return {"grade": False, "grade_id": grade_id, "locked": False, "schema_version": 3, "solution": True,
            "task": False}


def nbgrader_check(grade_id: str, points: int = 1) -> dict:
    return {"grade": True, "grade_id": grade_id, "locked": True, "points": points, "schema_version": 3,
            "solution": False, "task": False}


def cell_header(metadata: dict) -> str:
    """The `# %%` line jupytext writes for a code cell with this metadata: the keys jupytext.toml keeps, sorted,
    values as JSON."""
    kept = {"jupyter", "nbgrader", "tags"}
    return " ".join(["# %%"] + [f"{key}={json.dumps(value)}" for key, value in sorted(metadata.items()) if key in kept])


def suggested_stem(nb_cells: list, solution_index: int) -> str:
    """A stem for an exercise's grade_ids: the name of the check its self-check cell calls (check_foo_bar ->
    foo-bar), else the first name its solution defines, else its position."""
    after = nb_cells[solution_index + 1] if solution_index + 1 < len(nb_cells) else {"source": ""}
    found = (re.search(r"^\s*check_(\w+)\(", "".join(after["source"]), re.M)
             or re.search(r"^(?:def|class)\s+(\w+)|^(\w+)\s*=", "".join(nb_cells[solution_index]["source"]), re.M))
    name = next((g for g in found.groups() if g), "") if found else ""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or f"exercise-{solution_index}"


def nbgrader_problems(notebook: Path) -> list[str]:
    """What is missing or wrong in the notebook's nbgrader metadata, each saying exactly what to write."""
    nb_cells, problems, expected = cells(notebook), [], {}
    lesson, text = notebook.name[:2], notebook.with_suffix(".py").name
    for i, cell in enumerate(nb_cells):
        if "solution" not in cell.get("metadata", {}).get("tags", []):
            continue
        meta = cell["metadata"]
        grade_id = meta.get("nbgrader", {}).get("grade_id", "")
        match = GRADE_ID.fullmatch(grade_id)
        stem = match["stem"] if match and match["lesson"] == lesson else suggested_stem(nb_cells, i)
        solution = nbgrader_solution(f"{lesson}-{stem}-solution")
        expected[i] = solution
        if meta.get("nbgrader") != solution:
            problems.append(f"cell {i} (tag solution) is an nbgrader autograded-answer cell: in {text} its line "
                            f"must read\n  {cell_header({**meta, 'nbgrader': solution})}")
        if i + 1 >= len(nb_cells) or nb_cells[i + 1]["cell_type"] != "code" or "check_" not in "".join(
                nb_cells[i + 1]["source"]):
            problems.append(f"cell {i} (tag solution) must be followed by its self-check cell (a code cell "
                            "calling a check_... function from checks/)")
            continue
        after = nb_cells[i + 1]["metadata"]
        points = after.get("nbgrader", {}).get("points", 1)
        points = points if isinstance(points, int) and not isinstance(points, bool) and points >= 1 else 1
        check = nbgrader_check(f"{lesson}-{stem}-check", points)
        expected[i + 1] = check
        if after.get("nbgrader") != check:
            problems.append(f"cell {i + 1} (the self-check after cell {i}) is an nbgrader autograder test worth "
                            f"points >= 1 (1 unless an exercise weighs more): in {text} its line must read\n  "
                            f"{cell_header({**after, 'nbgrader': check})}")
    for i, cell in enumerate(nb_cells):
        if "nbgrader" in cell.get("metadata", {}) and i not in expected:
            problems.append(f"cell {i} carries nbgrader metadata but is neither a solution cell nor the self-check "
                            f"right after one: remove nbgrader={{...}} from its line in {text}")
        if "exercise" in cell.get("metadata", {}).get("tags", []) and (
                i + 1 >= len(nb_cells) or "solution" not in nb_cells[i + 1].get("metadata", {}).get("tags", [])):
            problems.append(f"cell {i} (tag exercise) must be followed by its solution cell (tag solution), "
                            "then its self-check cell")
    return problems


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_carries_its_nbgrader_metadata(notebook):
    problems = nbgrader_problems(notebook)
    assert not problems, (f"{notebook.name}: " + "\n".join(problems)
                          + "\nthen run `make sync-notebooks` (see README, 'Writing a lesson')")


def test_grade_ids_are_unique_in_the_course():
    ids = [c["metadata"]["nbgrader"]["grade_id"] for nb in NOTEBOOKS for c in cells(nb)
           if "grade_id" in c.get("metadata", {}).get("nbgrader", {})]
    assert len(ids) > 2 * len(NOTEBOOKS) - 4, f"only {len(ids)} grade_ids in the course"
    twice = sorted({g for g in ids if ids.count(g) > 1})
    assert not twice, f"grade_ids used twice: {twice}; give each exercise its own stem"


def test_the_nbgrader_check_names_what_to_add(tmp_path):
    """A lesson whose exercise has no nbgrader metadata (a new one) gets the exact lines to write; one whose
    self-check lost its points, or a stray nbgrader cell, is named too."""
    code = lambda source, **meta: {"cell_type": "code", "metadata": meta, "source": source, "outputs": [],
                                   "execution_count": None}
    nb = {"cells": [code("x = ...", tags=["exercise"]),
                    code("x = 1", tags=["solution"], jupyter={"source_hidden": True}),
                    code("from checks.a import check_the_x\n\ncheck_the_x(x)"),
                    code("y = 2", nbgrader=nbgrader_check("07-y-check"))], "metadata": {}}
    path = tmp_path / "07_new.ipynb"
    path.write_text(json.dumps(nb))
    problems = nbgrader_problems(path)
    assert problems[0] == ('cell 1 (tag solution) is an nbgrader autograded-answer cell: in 07_new.py its line must '
                           'read\n  # %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": '
                           '"07-the-x-solution", "locked": false, "schema_version": 3, "solution": true, "task": '
                           'false} tags=["solution"]')
    assert problems[1].endswith('\n  # %% nbgrader={"grade": true, "grade_id": "07-the-x-check", "locked": true, '
                                '"points": 1, "schema_version": 3, "solution": false, "task": false}')
    assert problems[2].startswith("cell 3 carries nbgrader metadata but is neither")
    assert len(problems) == 3
    nb["cells"][1]["metadata"]["nbgrader"] = nbgrader_solution("07-the-x-solution")
    nb["cells"][2]["metadata"]["nbgrader"] = nbgrader_check("07-the-x-check", points=0)
    del nb["cells"][3]
    path.write_text(json.dumps(nb))
    assert [p.split(":")[0] for p in nbgrader_problems(path)] == [
        "cell 2 (the self-check after cell 1) is an nbgrader autograder test worth points >= 1 (1 unless an "
        "exercise weighs more)"]
    nb["cells"][2]["metadata"]["nbgrader"]["points"] = 3                  # a heavier exercise: fine
    path.write_text(json.dumps(nb))
    assert nbgrader_problems(path) == []


def test_cell_headers_are_the_lines_jupytext_writes():
    """The lines the nbgrader check asks for are the ones in the .py twins (so they can be pasted)."""
    for notebook in NOTEBOOKS:
        text = notebook.with_suffix(".py").read_text(encoding="utf-8").splitlines()
        for cell in cells(notebook):
            if "nbgrader" in cell.get("metadata", {}):
                assert cell_header(cell["metadata"]) in text, f"{notebook.name}: {cell_header(cell['metadata'])}"
