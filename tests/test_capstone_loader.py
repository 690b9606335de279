"""Lesson 10's capstone helpers: from_lesson reads a student's saved lesson notebook; check_speed stops a
run that would take too long."""
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cnnlab import Module, Sequential
from cnnlab.layers import Linear
from cnnlab.losses import CrossEntropyLoss

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "course"))
from checks import CheckFailed  # noqa: E402
from checks.capstone import check_speed, from_lesson  # noqa: E402

EXERCISE = "def double(x):\n    \"\"\"2 x.\"\"\"\n    ...\n"
SOLUTION = "def double(x):\n    \"\"\"2 x.\"\"\"\n    return np.multiply(x, 2)\n"


def write(folder: Path, stem: str, *sources: str) -> Path:
    """A notebook `stem`.ipynb in `folder` with one code cell per source (a markdown cell first)."""
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# a lesson")] + [nbformat.v4.new_code_cell(s) for s in sources]
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


def test_the_last_definition_wins_and_imports_run(tmp_path):
    write(tmp_path, "02_x", "import numpy as np", EXERCISE, SOLUTION, "print('other cells never run')")
    (double,) = from_lesson("02_x", "double", folder=tmp_path)
    assert double(3) == 6 and double(np.array([1.5]))[0] == 3.0


def test_a_students_own_code_in_the_exercise_cell_is_used(tmp_path):
    write(tmp_path, "02_x", "import numpy as np", "def double(x):\n    return x + x\n")
    (double,) = from_lesson("02_x", "double", folder=tmp_path)
    assert double(21) == 42


def test_only_imports_and_the_asked_definitions_run(tmp_path):
    marker = tmp_path / "ran.txt"
    write(tmp_path, "02_x", "import numpy as np", SOLUTION, f"open({str(marker)!r}, 'w').write('trained')",
          "def other():\n    raise RuntimeError\n", "x = 1\nif x:\n    def double(x):\n        return 0\n")
    (double,) = from_lesson("02_x", "double", folder=tmp_path)
    assert not marker.exists(), "a cell that is not a definition ran"
    assert double(2) == 4, "a definition inside an if-block is not top level"


def test_a_placeholder_is_named(tmp_path):
    write(tmp_path, "04_x", "import numpy as np", EXERCISE)
    with pytest.raises(CheckFailed, match=r"lesson 04's double is still the exercise placeholder: solve it there "
                                          r"and save the notebook"):
        from_lesson("04_x", "double", folder=tmp_path)


def test_a_class_with_a_placeholder_method_is_named(tmp_path):
    layer = ("from cnnlab import Module\n\nclass MyLayer(Module):\n    def forward(self, x):\n        return x\n\n"
             "    def backward(self, dout):\n        return ...\n")
    write(tmp_path, "09_x", layer)
    with pytest.raises(CheckFailed, match=r"lesson 09's MyLayer is still the exercise placeholder"):
        from_lesson("09_x", "MyLayer", folder=tmp_path)
    write(tmp_path, "09_x", layer, layer.replace("return ...", "return dout"))
    (MyLayer,) = from_lesson("09_x", "MyLayer", folder=tmp_path)
    assert issubclass(MyLayer, Module) and MyLayer().backward(5) == 5


def test_a_missing_definition_is_named(tmp_path):
    write(tmp_path, "02_x", "import numpy as np", SOLUTION)
    with pytest.raises(CheckFailed, match=r"lesson 02's notebook .*02_x.ipynb defines no triple, half: solve"):
        from_lesson("02_x", "double", "triple", "half", folder=tmp_path)


def test_a_missing_notebook_names_where_it_looked(tmp_path):
    folder = tmp_path / "10_cnn"
    folder.mkdir()
    with pytest.raises(CheckFailed) as error:
        from_lesson("04_conv_layers", "conv2d_forward", folder=folder)
    message = str(error.value)
    assert str(folder / "04_conv_layers.ipynb") in message and str(tmp_path / "*" / "04_conv_layers.ipynb") in message


def test_a_sibling_folder_is_searched_as_nbgrader_lays_out_assignments(tmp_path, monkeypatch, capsys):
    write(tmp_path / "04_conv_layers", "04_conv_layers", "import numpy as np", SOLUTION)
    here = tmp_path / "10_cnn_workflow"
    here.mkdir()
    monkeypatch.chdir(here)  # the default folder is the current one, as in a notebook's kernel
    (double,) = from_lesson("04_conv_layers", "double")
    assert double(1) == 2
    assert f"read double from {tmp_path / '04_conv_layers' / '04_conv_layers.ipynb'}" in capsys.readouterr().out


def test_the_current_folder_comes_before_siblings(tmp_path):
    write(tmp_path / "here", "02_x", "def double(x):\n    return 'here'\n")
    write(tmp_path / "sibling", "02_x", "def double(x):\n    return 'sibling'\n")
    assert from_lesson("02_x", "double", folder=tmp_path / "here")[0](1) == "here"


def test_magics_shell_lines_and_unparsable_cells_are_skipped(tmp_path):
    write(tmp_path, "02_x", "%matplotlib widget\nimport numpy as np\n!ls\n", "def broken(:\n", "%%time\nx = 1",
          SOLUTION + "  %timeit double(3)\n")
    (double,) = from_lesson("02_x", "double", folder=tmp_path)
    assert double(4) == 8


def test_a_definition_that_fails_to_run_is_named(tmp_path):
    write(tmp_path, "02_x", "@no_such_decorator\ndef double(x):\n    return 2 * x\n")
    with pytest.raises(CheckFailed, match=r"lesson 02's definition of double raised NameError"):
        from_lesson("02_x", "double", folder=tmp_path)


def test_a_file_that_is_no_notebook_is_named(tmp_path):
    (tmp_path / "02_x.ipynb").write_text("{ not json")
    with pytest.raises(CheckFailed, match=r"02_x.ipynb is not a readable notebook"):
        from_lesson("02_x", "double", folder=tmp_path)


class Slow(Module):
    """A net whose forward pass takes `seconds`."""

    def __init__(self, seconds):
        self.seconds, self.inner = seconds, Linear(3, 2, rng=0)

    def forward(self, x):
        time.sleep(self.seconds)
        return self.inner(x)

    def backward(self, dout):
        return self.inner.backward(dout)


def test_check_speed_stops_a_run_that_would_take_too_long():
    X, y = np.ones((4, 3), dtype=np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(CheckFailed, match=r"one training step of 4 images took \d+\.\d\d s, so the 10000 steps .* about "
                                          r"\d+ minutes\. Make your lesson-04 kernels fast: loop over the KH x KW"):
        check_speed(Slow(0.05), CrossEntropyLoss(), X, y, steps=10_000, limit=60)


def test_check_speed_returns_the_estimate_and_leaves_the_net_alone():
    net = Sequential([Linear(3, 2, rng=0)])
    before = net.state_dict()
    X, y = np.ones((4, 3), dtype=np.float32), np.array([0, 1, 0, 1])
    estimate = check_speed(net, CrossEntropyLoss(), X, y, steps=10)
    assert 0 < estimate < 60
    assert all(np.array_equal(before[k], v) for k, v in net.state_dict().items())
    assert not np.any(net[0].weight.grad), "the timing step ran on a copy"
