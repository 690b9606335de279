"""Every notebook of the course, opened in JupyterLab and run as a student would (Run All Cells), in
Chromium: no error output, no uncaught error in the browser console, every widget rendered with its
figures drawn, and one slider per lesson moved with the mouse, after which its plot must change.

Data-driven: the notebooks are discovered (course/*.ipynb), so lessons that land later are covered
without touching this file. Which widget a lesson calls is read from its code cells; `SLIDERS` says
which slider to move in which widget (a widget not in the table: its first slider, the fallback).

Three widgets whose sliders are the point of their lesson (`KEY_WIDGETS`: the optimizer race, the
learning-rate explorer, the init explorer) have their own test, which moves their slider in the lesson
that calls them. While the lesson planned for one of them does not exist yet, that test
is skipped and says so; once the lesson exists it must call the widget, and the test runs.
"""
from __future__ import annotations

import ast
import json
import re

import pytest
from driver import (COURSE, ROOT, LabNotebook, assert_race_shows_the_whole_run, new_page, poke,
                    save_failure_artifacts)

LESSON_SECONDS = 420  # Run All Cells of one notebook

# widget factory -> the label of the slider to move (None: its first slider; False: do not move one,
# because the widget trains in the background and its plot changes on its own)
SLIDERS = {
    "dataset_gallery": "first image",
    "loss_explorer": None,
    "backprop_stepper": None,
    "jacobian_viewer": None,
    "conv_explorer": "kernel K",
    "step_size_explorer": "x",
    "optimizer_race": "momentum μ",
    "lr_explorer": "learning rate",
    "momentum_explorer": "momentum μ",
    "init_explorer": "depth",
    "filter_viewer": "image",
    "cnn_race": False,
    "training_dashboard": False,
    "regularization_explorer": False,
}
# the widgets whose slider gets its own test, and the lesson planned to show each (README's lesson table)
KEY_WIDGETS = {"optimizer_race": "07", "lr_explorer": "06", "init_explorer": "08"}


def _exported_factories() -> set[str]:
    tree = ast.parse((ROOT / "widgets" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return set()


FACTORIES = _exported_factories() | set(SLIDERS)
NOTEBOOKS = sorted(COURSE.glob("*.ipynb"))


def widget_calls(notebook) -> list[tuple[int, str]]:
    """(cell index, factory) for every call of a widget factory in the notebook's code cells."""
    calls = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        calls += [(index, name) for name in re.findall(r"\b(\w+)\(", source) if name in FACTORIES]
    return calls


def lesson_calling(factory: str):
    return next((nb for nb in NOTEBOOKS if any(name == factory for _, name in widget_calls(nb))), None)


@pytest.fixture(scope="session")
def opened(browser):
    """Notebooks already run in this session (name -> LabNotebook), kept for the slider tests."""
    notebooks: dict[str, LabNotebook] = {}
    yield notebooks
    for notebook in notebooks.values():
        notebook.close()


def run_notebook(browser, lab, name: str, artifacts) -> LabNotebook:
    notebook = LabNotebook(new_page(browser), lab, name)
    try:
        notebook.open()
        notebook.run_all(LESSON_SECONDS)
    except BaseException:
        keep_artifacts(notebook, lab, artifacts)
        raise
    return notebook


def keep_artifacts(nb: LabNotebook, lab, artifacts) -> None:
    """A screenshot of the notebook's page, its console and the server log, then close it."""
    save_failure_artifacts(nb.page, artifacts, [lab])
    nb.close()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(notebook, lab, browser, opened, artifacts):
    """Run All Cells; no error output, no console error, every widget rendered; one slider moved."""
    nb = run_notebook(browser, lab, notebook.name, artifacts)
    try:
        problems = nb.output_problems() + nb.widget_problems()
        assert not problems, f"{notebook.name}:\n" + "\n".join(problems)
        code = [c for c in nb.cells if c.type == "code" and c.source.strip()]
        assert code and all(c.count is not None for c in code), f"{notebook.name}: not every code cell ran"
        shown = sum(c.widget_views for c in nb.cells)
        calls = widget_calls(notebook)
        assert shown >= len({i for i, _ in calls}), f"{notebook.name}: widget calls in cells {calls}, {shown} shown"
        # the fallback: one slider of one widget that is not tested separately below
        for index, factory in calls:
            label = SLIDERS.get(factory)
            if factory in KEY_WIDGETS or label is False:
                continue
            widget = nb.cell(index).locator(".jp-OutputArea-output .jupyter-widgets").first
            if widget.locator(".widget-slider").count() == 0:
                continue
            poke(nb, index, label, artifacts)
            break
        assert not nb.page.errors, f"{notebook.name}: browser console:\n" + "\n".join(nb.page.errors)
    except BaseException:
        keep_artifacts(nb, lab, artifacts)
        raise
    if any(factory in KEY_WIDGETS for _, factory in calls):
        opened[notebook.name] = nb  # its slider test follows
    else:
        nb.close()


@pytest.mark.parametrize("factory", KEY_WIDGETS)
def test_key_widget_slider_changes_its_plot(factory, lab, browser, opened, artifacts):
    """The optimizer race, the learning-rate explorer and the init explorer, in their lesson."""
    notebook = lesson_calling(factory)
    number = KEY_WIDGETS[factory]
    if notebook is None:
        planned = sorted(COURSE.glob(f"{number}_*.ipynb"))
        if not planned:
            pytest.skip(f"pending: lesson {number} (course/{number}_*.ipynb), planned to show {factory}, "
                        "does not exist yet; this test runs as soon as it does")
        pytest.fail(f"{planned[0].name} exists but none of its cells calls {factory}(...)")
    nb = opened.pop(notebook.name, None) or run_notebook(browser, lab, notebook.name, artifacts)
    try:
        assert not nb.output_problems(), nb.output_problems()
        index = next(i for i, name in widget_calls(notebook) if name == factory)
        if factory == "optimizer_race":
            assert_race_shows_the_whole_run(nb.cell(index), notebook.name)
        poke(nb, index, SLIDERS[factory], artifacts, how="mouse")
        assert not nb.page.errors, f"{notebook.name}: browser console:\n" + "\n".join(nb.page.errors)
    except BaseException:
        keep_artifacts(nb, lab, artifacts)
        raise
    nb.close()
