"""The student edition keeps every exercise and self-check and drops every solution."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from widgets.__main__ import main
from widgets.edition import MANIFEST, strip_solutions, write_student_edition

REPO = Path(__file__).resolve().parents[1]
COURSE = REPO / "course"


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
    # the self-checks ship beside the notebooks, unchanged, and nothing else of course/checks/ (no caches)
    shipped = {p.name: p.read_bytes() for p in (out / "checks").iterdir()}
    assert shipped == {p.name: p.read_bytes() for p in (COURSE / "checks").glob("*.py")}
    assert "__init__.py" in shipped and len(shipped) > 1
    everything_shipped = b"".join(shipped.values()).decode()
    for source in COURSE.glob("*.ipynb"):
        for cell in json.loads(source.read_text())["cells"]:
            if "solution" in tags(cell):
                assert "".join(cell["source"]).strip() not in everything_shipped, f"{source.name}: solution in checks/"


def test_the_editions_notebooks_import_the_editions_checks(tmp_path):
    """A notebook's kernel runs in the notebook's folder: there `checks` must be the edition's own copy."""
    out = tmp_path / "student"
    write_student_edition(COURSE, out)
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")  # widgets and cnnlab, but not course/
    run = subprocess.run([sys.executable, "-c", "import checks.conv_layers as m, checks; "
                          "print(m.__file__); print(checks.CheckFailed.__mro__[1].__name__)"],
                         capture_output=True, text=True, env=env, cwd=out)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(out / "checks" / "conv_layers.py"), "AssertionError"]


def test_strip_solutions_drops_outputs_and_counts():
    nb = {"cells": [{"cell_type": "code", "metadata": {"tags": ["exercise"]}, "source": "x = ...",
                     "outputs": [{"output_type": "stream"}], "execution_count": 3},
                    {"cell_type": "code", "metadata": {"tags": ["solution"]}, "source": "x = 1",
                     "outputs": [], "execution_count": None}], "metadata": {}}
    stripped, removed = strip_solutions(nb)
    assert removed == 1 and len(stripped["cells"]) == 1
    assert stripped["cells"][0]["outputs"] == [] and stripped["cells"][0]["execution_count"] is None
    assert len(nb["cells"]) == 2  # the input is not modified


def test_refuses_an_empty_course(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no notebooks"):
        write_student_edition(tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- never destroys what it did not write ---------------------------------------------------------------
# Every target below is under tmp_path, never the real repository: a regression must not be able to
# delete a checkout.
def notebook(*sources, tags=("solution",)):
    """A minimal notebook: one plain code cell per source, then one cell with `tags`."""
    cells = [{"cell_type": "code", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
             for src in sources]
    cells.append({"cell_type": "code", "metadata": {"tags": list(tags)}, "source": "answer = 42",
                  "outputs": [], "execution_count": None})
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def make_course(root: Path, lessons: dict, checks: dict | None = None) -> Path:
    """A course folder holding one notebook per {file name: first cell source}, and checks/ holding
    {module file name: text} when `checks` is given."""
    course = root / "course"
    course.mkdir(parents=True, exist_ok=True)
    for path in [*course.glob("*.ipynb"), *course.glob("checks/*.py")]:
        path.unlink()
    for name, source in lessons.items():
        (course / name).write_text(json.dumps(notebook(source)))
    for name, text in (checks or {}).items():
        (course / "checks").mkdir(exist_ok=True)
        (course / "checks" / name).write_text(text)
    return course


def sources(path: Path) -> list[str]:
    return [c["source"] for c in json.loads(path.read_text())["cells"]]


def snapshot(folder: Path) -> dict:
    """Every file under folder (relative path -> bytes): to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_second_run_updates_in_place_and_keeps_foreign_files(tmp_path):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1", "02_b.ipynb": "b = 1"})
    out = tmp_path / "student"
    assert write_student_edition(course, out) == {"01_a.ipynb": 1, "02_b.ipynb": 1}
    (out / "notes.txt").write_text("my notes")                    # added by a person since
    (out / "mine").mkdir()
    (out / "mine" / "work.ipynb").write_text("{}")
    make_course(tmp_path, {"01_a.ipynb": "a = 2", "02_b.ipynb": "b = 1"})
    write_student_edition(course, out)
    assert sources(out / "01_a.ipynb") == ["a = 2"]                # updated
    assert sources(out / "02_b.ipynb") == ["b = 1"]
    assert (out / "notes.txt").read_text() == "my notes"           # foreign files kept
    assert (out / "mine" / "work.ipynb").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course", "student"]  # no staging folder left


def test_a_removed_lesson_is_removed_only_if_the_manifest_lists_it(tmp_path):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1", "02_b.ipynb": "b = 1"})
    out = tmp_path / "student"
    write_student_edition(course, out)
    (out / "03_c.ipynb").write_text("a student's own notebook")    # same pattern, not ours
    make_course(tmp_path, {"01_a.ipynb": "a = 1"})                  # lesson 02 left the course
    assert write_student_edition(course, out) == {"01_a.ipynb": 1}
    assert not (out / "02_b.ipynb").exists()
    assert (out / "03_c.ipynb").read_text() == "a student's own notebook"
    assert sorted(json.loads((out / MANIFEST).read_text())["files"]) == ["01_a.ipynb"]


def test_refuses_a_non_empty_folder_it_did_not_create(tmp_path):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1"})
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    with pytest.raises(ValueError, match=r"thesis is not empty and was not written by the student edition"):
        write_student_edition(course, out)
    assert snapshot(out) == {"chapter1.tex": b"precious"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course", "thesis"]
    (out / "chapter1.tex").unlink()                                 # an empty folder is fine
    write_student_edition(course, out)
    assert sources(out / "01_a.ipynb") == ["a = 1"]


@pytest.mark.parametrize("where", ["course", "course/sub", "root", "dot", "parent"])
def test_refuses_the_course_and_every_folder_containing_it(tmp_path, monkeypatch, where):
    course = make_course(tmp_path / "repo", {"01_a.ipynb": "a = 1"})
    (tmp_path / "repo" / "cnnlab").mkdir()
    (tmp_path / "repo" / "cnnlab" / "core.py").write_text("code")
    monkeypatch.chdir(tmp_path / "repo")
    target = {"course": course, "course/sub": course / "sub", "root": tmp_path / "repo", "dot": Path("."),
              "parent": tmp_path}[where]
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="course folder") as err:
        write_student_edition(course, target)
    assert str(course) in str(err.value)
    assert snapshot(tmp_path) == before and not (course / "sub").exists()


def test_refuses_to_overwrite_a_foreign_file_or_an_edited_notebook(tmp_path):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1"})
    out = tmp_path / "student"
    write_student_edition(course, out)
    (out / "02_b.ipynb").write_text("a student's own 02_b")          # where a new lesson will go
    make_course(tmp_path, {"01_a.ipynb": "a = 2", "02_b.ipynb": "b = 1"})
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"holds \['02_b.ipynb'\], not written by the student edition"):
        write_student_edition(course, out)
    assert snapshot(out) == before
    (out / "02_b.ipynb").unlink()
    edited = json.loads((out / "01_a.ipynb").read_text())
    edited["cells"][0]["source"] = "a = 'my answer'"                 # a student worked in the edition
    (out / "01_a.ipynb").write_text(json.dumps(edited))
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"\['01_a.ipynb'\] .* changed since the student edition wrote them"):
        write_student_edition(course, out)
    assert snapshot(out) == before


def test_check_modules_are_shipped_updated_removed_and_never_overwritten_when_edited(tmp_path):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1"}, {"__init__.py": "x = 1\n", "a.py": "y = 1\n"})
    out = tmp_path / "student"
    assert write_student_edition(course, out) == {"01_a.ipynb": 1}      # the report counts notebooks only
    assert snapshot(out / "checks") == {"__init__.py": b"x = 1\n", "a.py": b"y = 1\n"}
    assert sorted(json.loads((out / MANIFEST).read_text())["files"]) == ["01_a.ipynb", "checks/__init__.py",
                                                                         "checks/a.py"]
    (out / "checks" / "mine.py").write_text("my helper")                 # a student's own module: kept
    make_course(tmp_path, {"01_a.ipynb": "a = 1"}, {"__init__.py": "x = 2\n"})  # a.py left the course
    write_student_edition(course, out)
    assert snapshot(out / "checks") == {"__init__.py": b"x = 2\n", "mine.py": b"my helper"}
    (out / "checks" / "__init__.py").write_text("x = 'my change'")      # edited: the update stops
    make_course(tmp_path, {"01_a.ipynb": "a = 1"}, {"__init__.py": "x = 3\n"})
    before = snapshot(out)
    with pytest.raises(ValueError, match=r"\['checks/__init__.py'\] .* changed since the student edition wrote"):
        write_student_edition(course, out)
    assert snapshot(out) == before


@pytest.mark.parametrize("occupant", ["module", "file", "link"])
def test_refuses_when_something_foreign_stands_where_a_check_module_goes(tmp_path, occupant):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1"})
    out = tmp_path / "student"
    write_student_edition(course, out)                                    # a course without checks: none shipped
    assert not (out / "checks").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "__init__.py").write_text("precious")
    if occupant == "module":
        (out / "checks").mkdir()
        (out / "checks" / "__init__.py").write_text("a student's own")
    elif occupant == "file":
        (out / "checks").write_text("a file, not a folder")
    else:
        (out / "checks").symlink_to(elsewhere, target_is_directory=True)  # writing through it would leave out/
    make_course(tmp_path, {"01_a.ipynb": "a = 1"}, {"__init__.py": "x = 1\n"})
    before, outside = snapshot(out), snapshot(elsewhere)
    with pytest.raises(ValueError, match=r"holds \['checks/__init__.py'\], not written by the student edition"):
        write_student_edition(course, out)
    assert snapshot(out) == before and snapshot(elsewhere) == outside == {"__init__.py": b"precious"}


@pytest.mark.parametrize("manifest", ['{"format": "cnnlab-student-edition-1", "files": {"../x.ipynb": []}}',
                                      '{"format": "cnnlab-student-edition-1", "files": {"checks/../../x.py": []}}',
                                      '{"format": "cnnlab-student-edition-1", "files": {"other/x.py": []}}',
                                      '{"format": "cnnlab-student-edition-1", "files": {"checks/a/x.py": []}}',
                                      "not json", '{"format": "other", "files": {}}'])
def test_a_manifest_it_did_not_write_is_not_trusted(tmp_path, manifest):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1"})
    out = tmp_path / "student"
    out.mkdir()
    (out / MANIFEST).write_text(manifest)
    (tmp_path / "x.ipynb").write_text("outside")
    with pytest.raises(ValueError, match="not a valid student-edition manifest"):
        write_student_edition(course, out)
    assert (tmp_path / "x.ipynb").read_text() == "outside" and sorted(p.name for p in out.iterdir()) == [MANIFEST]


def test_a_broken_course_notebook_changes_nothing_and_leaves_no_staging_folder(tmp_path):
    course = make_course(tmp_path, {"01_a.ipynb": "a = 1"})
    out = tmp_path / "student"
    write_student_edition(course, out)
    before = snapshot(out)
    (course / "02_b.ipynb").write_text("{ truncated")
    with pytest.raises(ValueError):
        write_student_edition(course, out)
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course", "student"]


def test_command_runs_twice_and_refuses_with_one_line(tmp_path, capsys):
    out = tmp_path / "student-edition"
    main(["student-edition", str(out)])
    main(["student-edition", str(out)])                              # `make student-edition` twice
    assert f"wrote {len(list(COURSE.glob('*.ipynb')))} notebooks" in capsys.readouterr().out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("keep")
    with pytest.raises(SystemExit) as err:
        main(["student-edition", str(tmp_path / "other")])
    assert "not empty" in str(err.value.code) and "\n" not in str(err.value.code)
    assert snapshot(tmp_path / "other") == {"keep.txt": b"keep"}


def test_command_line_error_is_one_line_and_exit_status_1(tmp_path):
    (tmp_path / "keep.txt").write_text("keep")
    env = dict(os.environ, PYTHONPATH=str(REPO), MPLBACKEND="Agg")
    run = subprocess.run([sys.executable, "-m", "widgets", "student-edition", str(tmp_path)],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "not empty" in run.stderr and "Traceback" not in run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
