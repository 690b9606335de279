"""Every widget fits a 1366x768 laptop screen in JupyterLab with the file browser open: nothing wider than
the notebook's output column, no truncated label, every figure shown once scrolled into view.

All widgets are shown in one small notebook written into the served copy of the course (one widget per
cell, small data so the notebook runs quickly; a widget's layout does not depend on its data size). A
screenshot of each widget goes to the test's artefacts folder, and into course/screenshots/laptop/ when
CNNLAB_SCREENSHOTS=1.
"""
from __future__ import annotations

import json
import os

import pytest
from driver import COURSE, LabNotebook, figure_problems, layout_problems, new_page, save_failure_artifacts
from screenshots import save_png

LAPTOP = {"width": 1366, "height": 768}
SCREENSHOTS = COURSE / "screenshots" / "laptop"

# widget factory -> the call that shows it (small data, no training started by itself)
WIDGETS = {
    "optimizer_race": "widgets.optimizer_race(steps=30)",
    "lr_explorer": "widgets.lr_explorer(n_train=300, n_val=100, epochs=1)",
    "momentum_explorer": "widgets.momentum_explorer()",
    "init_explorer": "widgets.init_explorer(depth=5, batch=32)",
    "loss_explorer": "widgets.loss_explorer()",
    "conv_explorer": "widgets.conv_explorer()",
    "filter_viewer": "widgets.filter_viewer()",
    "jacobian_viewer": "widgets.jacobian_viewer(n_images=4)",
    "backprop_stepper": "widgets.backprop_stepper()",
    "gradcheck_table": "widgets.gradcheck_table()",
    "step_size_explorer": "widgets.step_size_explorer()",
    "dataset_gallery": "widgets.dataset_gallery()",
    "cnn_race": "widgets.cnn_race(epochs=1, n_train=64, n_val=32, autostart=False)",
    "regularization_explorer": "widgets.regularization_explorer(n_train=50, n_val=50, hidden=16)",
    "training_dashboard": "widgets.training_dashboard(epochs=1, train_size=300)",
}




def layout_notebook(folder) -> str:
    cells = ["%matplotlib widget\nimport widgets"] + list(WIDGETS.values())
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": src}
                          for src in cells],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    path = folder / "layout_all_widgets.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path.name


@pytest.fixture(scope="module")
def laptop(lab, course_copy, browser):
    """The notebook of every widget, run in a 1366x768 page with JupyterLab's file browser open."""
    page = new_page(browser)
    page.set_viewport_size(LAPTOP)
    nb = LabNotebook(page, lab, layout_notebook(course_copy))
    nb.open()
    page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
    nb.run_all(600)
    yield nb
    nb.close()


@pytest.mark.parametrize("factory", WIDGETS)
def test_widget_fits_a_laptop_screen_in_jupyterlab(factory, laptop, artifacts):
    nb, index = laptop, 1 + list(WIDGETS).index(factory)
    try:
        assert nb.page.evaluate("() => document.querySelector('#filebrowser').offsetWidth") > 100, \
            "the file browser is not open"
        assert not (problems := nb.output_problems()), "\n".join(problems)
        cell = nb.cell(index)
        output = cell.locator(".jp-OutputArea-output").first
        output.scroll_into_view_if_needed()
        problems = figure_problems(cell) + layout_problems(nb.page, f'[data-cnnlab-cell="{index}"] '
                                                                     '.jp-OutputArea-output')
        target = SCREENSHOTS if os.environ.get("CNNLAB_SCREENSHOTS") == "1" else artifacts
        save_png(output.screenshot(), target / f"{factory}.png")
        assert not problems, f"{factory} at 1366x768 with the file browser open:\n" + "\n".join(problems)
    except BaseException:
        save_failure_artifacts(nb.page, artifacts, [nb.lab])
        raise
