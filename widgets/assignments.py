"""The course as nbgrader assignments: one assignment per lesson, released by nbgrader itself.

Every exercise of a lesson is a triple (see README, 'Writing a lesson'): the `exercise` cell the student edits,
its `solution` cell (an nbgrader autograded-answer cell) and the self-check cell after it (a locked nbgrader
autograder test). `write_assignments` builds an nbgrader course folder:

    nbgrader_config.py            the course's nbgrader settings (written once, then yours to edit)
    source/NN_topic/NN_topic.ipynb   the lesson as it is in course/, with its self-checks in checks/
    release/NN_topic/...          what students get: `nbgrader generate_assignment` of every lesson
    gradebook.db                  nbgrader's database (created and updated by nbgrader only)

nbgrader replaces a solution cell without `### BEGIN SOLUTION` delimiters entirely by `CODE_STUB`, so the
release keeps each exercise cell as it is (the student answers there) and shows, where the solution was, a
one-line comment pointing back to it. Locked test cells are restored from the gradebook when autograding.

The folder is written as the student edition is (widgets._owned_folder): a new or empty folder, or one written
earlier, recognised by its manifest `.cnnlab-assignments.json`; only listed, unchanged files are replaced, and
anything else (submissions, grades, the gradebook, your own files) is never touched. nbgrader runs in a
temporary course folder beside it (only the gradebook is the real one), and its release is then moved in
atomically, file by file; nbgrader itself never deletes anything in the folder.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path, PurePosixPath

from widgets._owned_folder import Product, claim, plan, write_files

__all__ = ["write_assignments", "nbgrader_config", "CODE_STUB", "MANIFEST", "CONFIG"]

MANIFEST = ".cnnlab-assignments.json"
CONFIG = "nbgrader_config.py"
CHECKS = "checks"  # the self-checks' package, beside every lesson notebook
CODE_STUB = "# The solution was here: write your answer in the exercise cell above."
# Seconds per cell when autograding (nbgrader's default is 30): the slowest cell of a solved lesson takes a few
# seconds, but a student's answer may be far slower than the solution (loops where it vectorises).
CELL_TIMEOUT = 300
NBGRADER_MISSING = ("nbgrader is not installed in this Python ({python}): install the course's instructor extra, "
                    "`pip install -e '.[instructor]'` (`make assignments` does it)")


def nbgrader_config(course_id: str = "cnnlab") -> str:
    """The text of the course's nbgrader_config.py."""
    return f'''# nbgrader's settings for the cnnlab course, written by `make assignments` (python -m widgets assignments)
# This file is yours to edit: later runs never change it, and they generate the release with it.
c = get_config()  # noqa: F821 (nbgrader defines it)
c.CourseDirectory.course_id = {course_id!r}
# A lesson's solution cells have no BEGIN/END SOLUTION delimiters: nbgrader replaces each one entirely by this
# stub. The student's answer goes in the exercise cell above it, which the release keeps as it is.
c.ClearSolutions.code_stub = {{"python": {CODE_STUB!r}}}
# A student's answer may be far slower than the solution (loops where it vectorises): allow {CELL_TIMEOUT} s
# per cell when autograding (nbgrader's default is 30 s).
c.Execute.timeout = {CELL_TIMEOUT}
'''


def _is_assignment_name(name: str) -> bool:
    """source|release/ID/ID.ipynb or source|release/ID/checks/X.py, the files written besides nbgrader_config.py."""
    parts = PurePosixPath(name).parts
    if len(parts) < 3 or parts[0] not in ("source", "release"):
        return False
    return (len(parts) == 3 and parts[2] == f"{parts[1]}.ipynb") or (
        len(parts) == 4 and parts[2] == CHECKS and parts[3].endswith(".py"))


ASSIGNMENTS = Product(title="the nbgrader course folder", writer="make assignments", manifest=MANIFEST,
                      format="cnnlab-assignments-1", kind="assignments", example="assignments",
                      allows=_is_assignment_name)


def _source_files(course_dir: Path) -> dict[str, bytes]:
    """{source/ID/ID.ipynb: the lesson, source/ID/checks/X.py: a self-check module} for every lesson NN_*.ipynb."""
    lessons = sorted(course_dir.glob("[0-9][0-9]_*.ipynb"))
    if not lessons:
        raise FileNotFoundError(f"no lessons (NN_*.ipynb) in {course_dir}")
    checks = {path.name: path.read_bytes() for path in sorted((course_dir / CHECKS).glob("*.py"))}
    files = {}
    for lesson in lessons:
        json.loads(lesson.read_text(encoding="utf-8"))  # a broken notebook stops here, before anything is written
        files[f"source/{lesson.stem}/{lesson.name}"] = lesson.read_bytes()
        files.update({f"source/{lesson.stem}/{CHECKS}/{name}": text for name, text in checks.items()})
    return files


def _generate(build: Path, db: Path, notebooks: list[str]) -> dict[str, bytes]:
    """Run `nbgrader generate_assignment` for every assignment in build/source/ (gradebook `db`); the release files
    {release/ID/...: content}, which must hold the release of every `notebooks` name (source/ID/ID.ipynb).

    Raises RuntimeError with nbgrader's errors when it fails.
    """
    # nbgrader runs the `alembic` command of its own environment when it creates a gradebook
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    run = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "*",
                          f"--CourseDirectory.root={build}", f"--CourseDirectory.db_url=sqlite:///{db}"],
                         cwd=build, env=env, capture_output=True, text=True)
    log = (run.stdout + run.stderr).strip().splitlines()
    released = {str(PurePosixPath(*path.relative_to(build).parts)): path.read_bytes()
                for path in sorted((build / "release").rglob("*")) if path.is_file()}
    missing = [name for name in (n.replace("source/", "release/", 1) for n in notebooks) if name not in released]
    if run.returncode != 0 or missing or any("| ERROR]" in line for line in log):
        raise RuntimeError(f"nbgrader generate_assignment failed (exit status {run.returncode}"
                           + (f", no {missing}" if missing else "") + "):\n" + "\n".join(_errors(log)))
    return released


def _errors(log: list[str]) -> list[str]:
    """The lines of nbgrader's log that say what went wrong: its errors and the exceptions' messages, once each
    (the end of the log if there are none)."""
    found = []
    for line in map(str.strip, log):
        if (re.match(r"[\w.]+(Error|Exception): ", line) or "| ERROR]" in line and not any(
                skip in line for skip in ("Traceback", "Please see"))) and line not in found:
            found.append(line)
    return found or log[-15:]


def write_assignments(course_dir, out_dir) -> dict[str, int]:
    """Write the nbgrader course folder out_dir for the lessons of course_dir; returns {assignment: points}.

    Inputs:
    - course_dir: the folder of the lessons (course/): NN_topic.ipynb and checks/*.py.
    - out_dir: a new folder, an empty one, or one an earlier call wrote (see the module docstring).

    Raises ModuleNotFoundError without nbgrader, FileNotFoundError when course_dir has no lessons, ValueError,
    before anything is written, for a folder it must not write into (as the student edition), and RuntimeError
    when nbgrader fails (nothing but the gradebook is then changed).
    """
    if importlib.util.find_spec("nbgrader") is None:
        raise ModuleNotFoundError(NBGRADER_MISSING.format(python=sys.executable))
    course_dir, out_dir = Path(course_dir), Path(out_dir).resolve()
    source = _source_files(course_dir)
    predicted = [*source, *(name.replace("source/", "release/", 1) for name in source)]
    plan(course_dir, out_dir, ASSIGNMENTS, predicted)  # refuse before nbgrader touches anything
    claim(course_dir, out_dir, ASSIGNMENTS)  # the gradebook is created in a folder recognised as ours
    config = out_dir / CONFIG
    config_text = config.read_text(encoding="utf-8") if config.exists() else nbgrader_config()
    with tempfile.TemporaryDirectory(prefix="cnnlab-nbgrader-") as tmp:
        build = Path(tmp)
        (build / CONFIG).write_text(config_text, encoding="utf-8")
        for name, content in source.items():
            (build / name).parent.mkdir(parents=True, exist_ok=True)
            (build / name).write_bytes(content)
        released = _generate(build, out_dir / "gradebook.db", [n for n in source if n.endswith(".ipynb")])
    write_files(course_dir, out_dir, ASSIGNMENTS, {**source, **released})
    if not config.exists():  # written once, atomically, never over a file
        handle, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{CONFIG}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(config_text)
            os.link(tmp, config)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return {name.split("/")[1]: sum(cell["metadata"].get("nbgrader", {}).get("points", 0)
                                     for cell in json.loads(content)["cells"]
                                     if cell["metadata"].get("nbgrader", {}).get("grade"))
            for name, content in released.items() if name.endswith(".ipynb")}
