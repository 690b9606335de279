"""The browser checks can fail: a notebook of deliberately broken widgets, run in JupyterLab, trips
every one of them (and a working slider next to them passes), so a green run means something.

The notebook is written into the server's temporary copy of the course, never into course/.
"""
from __future__ import annotations

import json

import pytest
from driver import LabNotebook, new_page, poke, save_failure_artifacts

LESSON_SECONDS = 120

CELLS = [
    # 0: set-up
    "%matplotlib widget\nimport ipywidgets as W\nimport matplotlib.pyplot as plt\nimport traitlets\n"
    "from IPython.display import Javascript, display",
    # 1: a slider that is not connected to its plot
    "with plt.ioff():\n    fig1, ax1 = plt.subplots(figsize=(4, 3))\nax1.plot([0, 1], [0, 1])\n"
    "unwired = W.FloatSlider(value=0.5, min=0, max=1, step=0.01, description='unwired')\n"
    "W.VBox([unwired, fig1.canvas])",
    # 2: the same, connected: the control case that must pass
    "with plt.ioff():\n    fig2, ax2 = plt.subplots(figsize=(4, 3))\nline, = ax2.plot([0, 1], [0, 0.5])\n"
    "ax2.set_ylim(0, 1)\nwired = W.FloatSlider(value=0.5, min=0, max=1, step=0.01, description='wired')\n"
    "def redraw(change):\n    line.set_ydata([0, change['new']])\n    fig2.canvas.draw_idle()\n"
    "wired.observe(redraw, names='value')\nW.VBox([wired, fig2.canvas])",
    # 3: a widget whose view does not exist in the browser
    "class Unrenderable(W.DOMWidget):\n    _view_name = traitlets.Unicode('NoSuchView').tag(sync=True)\n"
    "Unrenderable()",
    # 4: an uncaught error in the page
    "display(Javascript(\"setTimeout(() => { throw new Error('deliberate uncaught error'); }, 0)\"))",
    # 5: a widget whose only figure is hidden
    "with plt.ioff():\n    fig5, ax5 = plt.subplots(figsize=(4, 3))\nax5.plot([0, 1], [1, 0])\n"
    "fig5.canvas.layout.display = 'none'\nW.VBox([W.IntSlider(description='hidden'), fig5.canvas])",
    # 6: a cell that raises
    "raise ValueError('deliberately broken cell')",
    # 7: never runs
    "print('after the error')",
]


@pytest.fixture
def broken(lab, course_copy, browser, artifacts, request):
    notebook = {"cells": [{"cell_type": "code", "metadata": {}, "source": source, "outputs": [],
                           "execution_count": None} for source in CELLS],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (course_copy / "broken_widgets.ipynb").write_text(json.dumps(notebook))
    nb = LabNotebook(new_page(browser), lab, "broken_widgets.ipynb")
    nb.open()
    nb.run_all(LESSON_SECONDS)
    yield nb
    if any(getattr(getattr(request.node, f"report_{w}", None), "failed", False) for w in ("setup", "call")):
        save_failure_artifacts(nb.page, artifacts, [lab])
    nb.close()
    (course_copy / "broken_widgets.ipynb").unlink()


def test_every_check_catches_its_broken_widget(broken, artifacts):
    nb = broken
    outputs = nb.output_problems()
    assert any("cell 6 raised ValueError: deliberately broken cell" in p for p in outputs), outputs
    assert any(p.startswith("cell 7 did not run") for p in outputs), outputs

    widgets = nb.widget_problems(seconds=10)
    assert any(p.startswith("cell 3:") and "Error displaying widget" in p for p in widgets), widgets
    assert any(p.startswith("cell 5: none of its 1 figures is shown") for p in widgets), widgets
    assert not any(p.startswith(("cell 1:", "cell 2:")) for p in widgets), widgets  # those two do render

    nb.page.wait_for_timeout(500)
    assert any("deliberate uncaught error" in e for e in nb.page.errors), nb.page.errors

    with pytest.raises(AssertionError, match="the plot did not change after moving the slider unwired"):
        poke(nb, 1, "unwired", artifacts)
    with pytest.raises(AssertionError, match="cell 5: the widget's plot is not shown"):
        poke(nb, 5, "hidden", artifacts)
    moved = poke(nb, 2, "wired", artifacts)  # the control: a connected slider passes
    assert moved.startswith("moving the slider wired from 0.50 to ")
