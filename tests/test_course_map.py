"""The course map (course/README.md): every topic of the source documents' list is mapped to lessons and sections
that exist, and every widget has a row with a small screenshot.

The topics are read from the source documents' README (its table: source document | what it is | what the course
takes from it, the last column a ';'-separated list). A map entry is a markdown link
`[NN § Heading](NN_topic.ipynb)`: the notebook must exist and have a markdown heading with exactly that
text. `planned: lesson NN` is accepted only while no course/NN_*.ipynb exists.
"""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "course"
MAP = COURSE / "README.md"
# The source documents live next to the repository (../shared/seeds), not in it; a fresh clone in
# CI lacks them, so their list of topics is copied here, and compared with their README wherever it
# is present.
SOURCES_README = ROOT.parent / "shared" / "seeds" / "README.md"
MAX_SCREENSHOT = 150_000
MAX_SCREENSHOTS_TOTAL = 2_000_000

SOURCE_TOPICS = [
    # Tomasi, "Training Convolutional Neural Nets" (lecture notes)
    'training error E(w)',
    ('back-propagation as Algorithm 1 (per-sample forward, backward recursion with layer Jacobians, '
     'running average of gradients)'),
    'per-layer Jacobians ∂x/∂w and ∂x/∂x_prev for point activations, ReLU and ReLU+max-pool (appendix)',
    'momentum method with the μ_t schedule of Sutskever et al.',
    'learning rate',
    'online vs batch vs mini-batch',
    'termination and early stopping',
    'dropout with keep probability p and test-time weight scaling',
    # Khan et al., "CNN Learning" (book chapter 5)
    ('initialisation: Gaussian, uniform, orthogonal, unsupervised pre-training, Xavier, He, LSUV, '
     'supervised pre-training / fine-tuning'),
    ('regularisation: data augmentation (crops, rotations, flips, scaling, translation, shearing, '
     'colour jitter incl. PCA, synthetic data), dropout, drop-connect, batch norm, '
     'ensemble averaging, L2, L1, elastic net, max-norm, early stopping'),
    'batch / stochastic / mini-batch gradient descent',
    'momentum, Nesterov, AdaGrad, AdaDelta (both forms), RMSprop, Adam with bias correction',
    'saddle points',
    ('four ways to differentiate (analytical, numerical, symbolic, '
     'automatic forward/reverse mode with a worked example)'),
    # Veta, "Training (convolutional) neural networks for classification" (slides)
    'loss = data term + λΩ',
    'softmax + cross-entropy',
    'modular back-propagation (each layer: forward, backward w.r.t. parameters and input)',
    'a linear layer as GEMM (Caffe InnerProduct)',
    'L2 / L1 gradients',
    'dropout',
    'Glorot initialisation',
    'SGD / mini-batch / momentum',
    'train/validation/test split',
    'choosing the learning rate',
    'looking at learned filters',
    'the example workflow incl. hyper-parameter search',
    # Bouvrie, "Notes on Convolutional Neural Networks"
    'squared-error loss',
    'sensitivities δ',
    "conv-layer gradients via rot180 and 'valid'/'full' convolutions",
    'subsampling layer with multiplicative β and additive bias',
    'up-sampling by Kronecker product',
    'learning combinations of feature maps (softmax weights α, L1 sparsity)',
    'making it fast',
    "LeCun's scaled tanh",
    'checking gradients with finite differences',
    # Wollowski, "Training Convolutional Neural Networks" (slides)
    'the training loop in five steps',
    'softmax',
    'the MSE exercise (target [0,0,1,0] against two outputs)',
    'gradient of MSE through an activation',
    'sigmoid and ReLU derivatives',
]

LINK = re.compile(r"\[(\d\d) § ([^\]]+)\]\(([^)]+)\)")
PLANNED = re.compile(r"planned: lesson (\d\d)")


def source_topics(text: str) -> list[str]:
    """The topics of the source documents' README: the last column of its table, split at ';'."""
    topics = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0].endswith(".txt"):
            topics += [t.strip() for t in cells[2].split(";") if t.strip()]
    return topics


def two_column_rows(text: str, part: str, header: str) -> dict[str, str]:
    """first cell -> second cell, from the two-column tables of the map's part `## {part}` (header row skipped)."""
    section = text.split(f"## {part}", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 2 and cells[0] not in (header, "---"):
            assert cells[0] not in rows, f"row listed twice in the course map: {cells[0]!r}"
            rows[cells[0]] = cells[1]
    return rows


def map_rows(text: str) -> dict[str, str]:
    """topic -> 'taught in' cell, from the two-column tables of the map's Topics part."""
    return two_column_rows(text, "Topics", "topic")


def headings(notebook: Path) -> set[str]:
    """The texts of every markdown heading of a notebook."""
    found = set()
    for cell in json.loads(notebook.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] == "markdown":
            for line in "".join(cell["source"]).splitlines():
                match = re.match(r"#{1,6}\s+(.*\S)", line)
                if match:
                    found.add(match.group(1))
    return found


def reference_problems(cell: str, course: Path = COURSE) -> list[str]:
    """What is wrong with one 'taught in' cell (empty when every reference exists)."""
    problems, references = [], 0
    for number, section, target in LINK.findall(cell):
        references += 1
        notebook = course / target
        if not re.fullmatch(rf"{number}_\w+\.ipynb", target):
            problems.append(f"link text says lesson {number} but points to {target!r}")
        elif not notebook.exists():
            problems.append(f"{target} does not exist")
        elif section not in headings(notebook):
            problems.append(f"{target} has no section {section!r}")
    for number in PLANNED.findall(cell):
        references += 1
        existing = sorted(course.glob(f"{number}_*.ipynb"))
        if existing:
            problems.append(f"lesson {number} exists now ({existing[0].name}): name its section instead of 'planned'")
    if not references:
        problems.append(f"no lesson named in {cell!r}")
    return problems


def test_the_copied_topics_are_the_source_documents_topics():
    assert len(SOURCE_TOPICS) == len(set(SOURCE_TOPICS)) == 40
    example = ("| file | what it is | topics |\n|---|---|---|\n"
               "| 000_a.txt | Tomasi | training error E(w); learning rate |\n| 001_b.txt | K | saddle points |")
    assert source_topics(example) == ["training error E(w)", "learning rate", "saddle points"]
    if SOURCES_README.exists():  # in the shared workspace (not in a fresh clone)
        assert source_topics(SOURCES_README.read_text(encoding="utf-8")) == SOURCE_TOPICS, \
            "the source documents' README changed: update SOURCE_TOPICS and the course map"


def test_every_source_topic_is_on_the_map():
    topics = SOURCE_TOPICS
    rows = map_rows(MAP.read_text(encoding="utf-8"))
    missing = [t for t in topics if t not in rows]
    assert not missing, f"topics of the source documents missing from course/README.md: {missing}"
    unknown = [t for t in rows if t not in topics]
    assert not unknown, f"course/README.md maps topics that are not in the source documents' list (typo?): {unknown}"


@pytest.mark.parametrize("topic", list(map_rows(MAP.read_text(encoding="utf-8"))))
def test_every_reference_exists(topic):
    cell = map_rows(MAP.read_text(encoding="utf-8"))[topic]
    problems = reference_problems(cell)
    assert not problems, f"{topic!r}: " + "; ".join(problems)


def test_reference_check_catches_a_wrong_section_a_missing_lesson_and_a_stale_plan(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# 01 · Title\n", "\n", "## Softmax"]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "01_a.ipynb").write_text(json.dumps(notebook))
    assert reference_problems("[01 § Softmax](01_a.ipynb)", tmp_path) == []
    assert reference_problems("[01 § 01 · Title](01_a.ipynb)", tmp_path) == []
    assert reference_problems("[01 § Softmax!](01_a.ipynb)", tmp_path) == ["01_a.ipynb has no section 'Softmax!'"]
    assert reference_problems("[02 § Softmax](02_b.ipynb)", tmp_path) == ["02_b.ipynb does not exist"]
    assert reference_problems("[02 § Softmax](01_a.ipynb)", tmp_path) == \
        ["link text says lesson 02 but points to '01_a.ipynb'"]
    assert reference_problems("planned: lesson 02", tmp_path) == []
    assert "exists now" in reference_problems("planned: lesson 01", tmp_path)[0]
    assert reference_problems("somewhere", tmp_path) == ["no lesson named in 'somewhere'"]


def widget_rows(text: str) -> dict[str, tuple[str, str]]:
    """widget -> (lesson cell, screenshot path), from the table of the map's Widgets part."""
    part = text.split("## Widgets", 1)[1]
    rows = {}
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 3 and cells[0].startswith("`"):
            image = re.search(r"!\[[^\]]*\]\(([^)]+)\)", cells[2])
            rows[cells[0].strip("`")] = (cells[1], image.group(1) if image else "")
    return rows


def exported_widgets() -> set[str]:
    tree = ast.parse((ROOT / "widgets" / "__init__.py").read_text())
    return next(set(ast.literal_eval(n.value)) for n in tree.body if isinstance(n, ast.Assign)
                and any(getattr(t, "id", None) == "__all__" for t in n.targets))


def test_every_widget_has_a_row_a_lesson_and_a_small_screenshot():
    rows = widget_rows(MAP.read_text(encoding="utf-8"))
    demos = set(json.loads((ROOT / "widgets" / "lecture_presets.json").read_text())["demos"])
    missing = sorted((exported_widgets() | demos) - set(rows))
    assert not missing, (f"widgets without a row in course/README.md's widget list: {missing} (add a lecture preset "
                         "to widgets/lecture_presets.json, a section to course/lecture_demos.py, then run "
                         "`CNNLAB_SCREENSHOTS=1 make test-browser` for the screenshot)")
    total = 0
    for widget, (lesson, image) in rows.items():
        assert image == f"screenshots/{widget}.png", f"{widget}: screenshot link {image!r}"
        path = COURSE / image
        assert path.exists(), f"{widget}: {path} is missing; run `CNNLAB_SCREENSHOTS=1 make test-browser`"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
        size = path.stat().st_size
        assert size < MAX_SCREENSHOT, f"{path} has {size} bytes (at most {MAX_SCREENSHOT})"
        total += size
        problems = reference_problems(lesson)
        assert not problems, f"{widget}: " + "; ".join(problems)
    assert total < MAX_SCREENSHOTS_TOTAL, f"the screenshots take {total} bytes (at most {MAX_SCREENSHOTS_TOTAL})"
    stray = sorted(p.name for p in (COURSE / "screenshots").glob("*.png") if p.stem not in rows)
    assert not stray, f"screenshots of no widget in the list: {stray}"


def exercise_rows(text: str) -> dict[str, str]:
    """link cell -> what the exercise asks, from the table of the map's Exercises part."""
    return two_column_rows(text, "Exercises", "exercise")


def test_every_exercise_is_on_the_map_with_what_it_asks():
    """Every exercise heading of every lesson has a row (a link that resolves, and a description), and no row
    names an exercise that is not there."""
    rows = exercise_rows(MAP.read_text(encoding="utf-8"))
    listed = set()
    for cell, asks in rows.items():
        problems = reference_problems(cell)
        assert not problems, f"{cell!r}: " + "; ".join(problems)
        assert len(asks) > 20, f"{cell!r}: say what the exercise asks"
        listed |= {(target, section) for _, section, target in LINK.findall(cell)}
    present = {(nb.name, h) for nb in sorted(COURSE.glob("[0-9][0-9]_*.ipynb")) for h in headings(nb)
               if re.search(r"\b[Ee]xercise\b", h)}
    assert not present - listed, f"exercises missing from course/README.md's Exercises table: {sorted(present - listed)}"
