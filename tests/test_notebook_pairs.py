"""Every lesson is a pair course/NN_topic.py + course/NN_topic.ipynb that agree, and the .ipynb has no outputs.

The drift check is the one from the tooling notes: convert the .ipynb to py:percent with the repository's
jupytext.toml and compare with the committed .py, line by line.
"""
import difflib
import json
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
