"""`make assignments`: the lessons released by nbgrader, and graded by nbgrader's autograder.

On a temporary folder: the whole course goes through `nbgrader generate_assignment` (twice, as `make assignments`
run twice), then one lesson is submitted solved by one student and untouched by another and goes through
`nbgrader autograde`: the solved one gets full marks, the untouched one zero, and nbgrader reports no error.
nbgrader is the course's instructor extra; `make test` installs it, and without it these tests fail (never skip).
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from widgets.__main__ import main
from widgets.assignments import CELL_TIMEOUT, CODE_STUB, CONFIG, MANIFEST, write_assignments

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "course"
LESSONS = sorted(COURSE.glob("[0-9][0-9]_*.ipynb"))
GRADED = "01_training_problem"  # a quick lesson (about 5 s) with four exercises: a function, values, a gradient


def require_nbgrader():
    if importlib.util.find_spec("nbgrader") is None:
        pytest.fail(f"nbgrader is not installed in {sys.executable}: `pip install -e '.[instructor]'` (or run "
                    "`make test`, which installs it); the nbgrader tests cannot run without it", pytrace=False)


def cells(path: Path) -> list:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def nbgrader(cell) -> dict:
    return cell["metadata"].get("nbgrader", {})


def tags(cell) -> list:
    return cell["metadata"].get("tags", [])


def snapshot(folder: Path) -> dict:
    """Every file under folder (relative path -> bytes): to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def nbgrader_cli(*args, root: Path) -> subprocess.CompletedProcess:
    """`nbgrader ARGS` run in the course folder root, as an instructor runs it (with the venv's bin on PATH)."""
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, env=env, capture_output=True,
                          text=True)


@pytest.fixture(scope="module")
def course_folder(tmp_path_factory):
    """The nbgrader course folder of the whole course, written twice, with an instructor's own files in it."""
    require_nbgrader()
    out = tmp_path_factory.mktemp("nbgrader") / "assignments"
    first = write_assignments(COURSE, out)
    (out / "notes.txt").write_text("the instructor's notes")
    (out / "submitted" / "someone" / "00_welcome").mkdir(parents=True)
    (out / "submitted" / "someone" / "00_welcome" / "work.txt").write_text("a submission")
    second = write_assignments(COURSE, out)                 # `make assignments` twice: updated in place
    assert first == second
    return out, second


def test_every_lesson_is_released_by_nbgrader(course_folder):
    out, points = course_folder
    assert sorted(points) == [p.stem for p in LESSONS]
    assert (out / "notes.txt").read_text() == "the instructor's notes"
    assert (out / "submitted" / "someone" / "00_welcome" / "work.txt").read_text() == "a submission"
    checks = {p.name: p.read_bytes() for p in (COURSE / "checks").glob("*.py")}
    for lesson in LESSONS:
        release, source = out / "release" / lesson.stem, out / "source" / lesson.stem
        assert (source / lesson.name).read_bytes() == lesson.read_bytes()
        assert snapshot(release / "checks") == snapshot(source / "checks") == checks
        original, released = cells(lesson), cells(release / lesson.name)
        assert len(released) == len(original), f"{lesson.name}: nbgrader kept every cell"
        solutions = 0
        for i, (cell, out_cell) in enumerate(zip(original, released)):
            where = f"{lesson.name} cell {i}"
            if "solution" in tags(cell):                   # replaced whole by the stub, still collapsed
                solutions += 1
                assert "".join(out_cell["source"]) == CODE_STUB, where
                assert out_cell["metadata"]["jupyter"] == {"source_hidden": True}, where
            else:
                assert out_cell["source"] == cell["source"], f"{where} changed in the release"
            if "exercise" in tags(cell):                   # the student's cell: editable, ungraded
                assert out_cell["metadata"].get("editable", True) and not nbgrader(out_cell), where
            if i and "solution" in tags(original[i - 1]):  # the self-check: a locked test cell
                assert nbgrader(out_cell)["grade"] and out_cell["metadata"]["editable"] is False, where
        assert solutions >= 1, f"{lesson.name} has an exercise"
        graded = [c for c in original if nbgrader(c).get("grade")]
        assert len(graded) == solutions and points[lesson.stem] == sum(nbgrader(c)["points"] for c in graded)
        released_text = "".join("".join(c["source"]) for c in released) + b"".join(checks.values()).decode()
        for cell in original:
            if "solution" in tags(cell):
                assert "".join(cell["source"]).strip() not in released_text, f"{lesson.name}: solution released"


def submission(out: Path, solved: bool) -> dict:
    """The release notebook of GRADED as a student hands it in: untouched, or with every exercise cell answered
    by the source's solution (the solution written where it is asked for)."""
    nb = json.loads((out / "release" / GRADED / f"{GRADED}.ipynb").read_text())
    answers = {nbgrader(c)["grade_id"]: c["source"] for c in cells(out / "source" / GRADED / f"{GRADED}.ipynb")
               if nbgrader(c).get("solution")}
    for cell, after in zip(nb["cells"], nb["cells"][1:]):
        if solved and "exercise" in tags(cell):
            cell["source"] = answers[nbgrader(after)["grade_id"]]
    return nb


def test_nbgrader_autograde_gives_a_solved_lesson_full_marks_and_an_untouched_one_zero(course_folder):
    from nbgrader.api import Gradebook

    out, points = course_folder
    for student, solved in [("solved", True), ("untouched", False)]:
        folder = out / "submitted" / student / GRADED
        folder.mkdir(parents=True)
        (folder / f"{GRADED}.ipynb").write_text(json.dumps(submission(out, solved)))
    run = nbgrader_cli("autograde", GRADED, root=out)
    log = run.stdout + run.stderr
    assert run.returncode == 0 and "| ERROR]" not in log, log
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", "cnnlab") as gb:
        scores = {s: (gb.find_submission(GRADED, s).score, gb.find_submission(GRADED, s).max_score)
                  for s in ("solved", "untouched")}
    n_checks = sum("solution" in tags(c) for c in cells(COURSE / f"{GRADED}.ipynb"))
    assert n_checks == 4 and points[GRADED] == n_checks
    assert scores == {"solved": (n_checks, n_checks), "untouched": (0, n_checks)}
    # the solved lesson ran from the autograded folder with no error at all (data, cnnlab, checks/ found there)
    graded = {s: cells(out / "autograded" / s / GRADED / f"{GRADED}.ipynb") for s in ("solved", "untouched")}
    errors = [o for c in graded["solved"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, [e["evalue"] for e in errors]
    # each check of the untouched one failed with its diagnosis, not with a crash of its own
    failures = [[o["ename"] for o in c["outputs"] if o["output_type"] == "error"]
                for c in graded["untouched"] if nbgrader(c).get("grade")]
    assert failures == [["CheckFailed"]] * n_checks


def test_an_edited_release_stops_the_update_and_changes_nothing(course_folder, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(course_folder[0], out)
    notebook = out / "release" / GRADED / f"{GRADED}.ipynb"
    notebook.write_text(notebook.read_text().replace(CODE_STUB, "# my own answer"))
    before = snapshot(out)
    with pytest.raises(ValueError, match=rf"\['release/{GRADED}/{GRADED}.ipynb'\] .* changed since make "
                                         "assignments wrote them"):
        write_assignments(COURSE, out)
    assert snapshot(out) == before


def test_the_config_is_written_once_and_then_the_instructors(course_folder):
    out = course_folder[0]
    config = (out / CONFIG).read_text()
    assert repr(CODE_STUB) in config and f"c.Execute.timeout = {CELL_TIMEOUT}\n" in config
    assert CONFIG not in json.loads((out / MANIFEST).read_text())["files"]  # never replaced by a later run
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [MANIFEST]  # no temporary left


@pytest.mark.parametrize("where", ["foreign", "root"])
def test_refuses_a_folder_it_did_not_write_and_leaves_it_untouched(tmp_path, where):
    require_nbgrader()
    course = tmp_path / "repo" / "course"
    course.mkdir(parents=True)
    shutil.copy(COURSE / f"{GRADED}.ipynb", course)
    (tmp_path / "repo" / "README.md").write_text("the repository")
    target = {"foreign": tmp_path / "thesis", "root": tmp_path / "repo"}[where]
    target.mkdir(exist_ok=True)
    (target / "chapter1.tex").write_text("precious")
    before = snapshot(tmp_path)
    message = {"foreign": "thesis is not empty and was not written by make assignments",
               "root": "contains the course folder"}[where]
    with pytest.raises(ValueError, match=message):
        write_assignments(course, target)
    assert snapshot(tmp_path) == before                    # no file changed, and no folder or file added:
    assert sorted(p.name for p in target.iterdir()) == {"foreign": ["chapter1.tex"],
                                                        "root": ["README.md", "chapter1.tex", "course"]}[where]
    if where == "foreign":                                  # the command: one line, exit status 1
        with pytest.raises(SystemExit) as err:
            main(["assignments", str(target)])
        assert "not written by make assignments" in str(err.value.code) and "\n" not in str(err.value.code)
        assert snapshot(tmp_path) == before


def test_without_nbgrader_it_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install -e '\.\[instructor\]'"):
        write_assignments(COURSE, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_nbgrader_failure_is_reported_and_writes_nothing_but_the_gradebook(tmp_path):
    require_nbgrader()
    course = tmp_path / "course"
    course.mkdir()
    nb = json.loads((COURSE / "00_welcome.ipynb").read_text())
    graded = [c for c in nb["cells"] if nbgrader(c).get("grade")]
    nbgrader(graded[0])["grade_id"] = "00-same"       # two cells with one grade_id: nbgrader refuses the lesson
    for cell in nb["cells"]:
        if nbgrader(cell).get("solution"):
            nbgrader(cell)["grade_id"] = "00-same"
    (course / "00_welcome.ipynb").write_text(json.dumps(nb))
    out = tmp_path / "assignments"
    with pytest.raises(RuntimeError, match=r"(?s)nbgrader generate_assignment failed.*00-same"):
        write_assignments(course, out)
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "gradebook.db"]
    assert json.loads((out / MANIFEST).read_text())["files"] == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assignments", "course"]  # no temporary folder left
