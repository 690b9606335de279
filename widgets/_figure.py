"""One figure shown inside a widget layout, redrawn in place.

With the interactive backend (`%matplotlib widget`, ipympl) the figure's canvas *is* a widget and a
redraw is `draw_idle()`. With any other backend (inline, Agg in tests, Voila without ipympl) the figure
is rendered to PNG into an `ipywidgets.Image`, refreshed after every update. Either way a widget
updates its artists (`set_data`, `set_text`, ...) and then calls `FigureView.refresh()`; it never
creates a new figure per update.
"""
from __future__ import annotations

import io

import ipywidgets as W
import matplotlib.pyplot as plt

__all__ = ["FigureView", "new_figure"]


def new_figure(*args, **kwargs):
    """`plt.subplots(*args, **kwargs)` without showing the figure in the cell that creates it."""
    with plt.ioff():
        return plt.subplots(*args, **kwargs)


class FigureView:
    """The widget that shows `fig`; call `refresh()` after changing its artists."""

    def __init__(self, fig):
        self.fig = fig
        canvas = fig.canvas
        self.interactive = isinstance(canvas, W.DOMWidget)
        if self.interactive:
            canvas.header_visible = False
            canvas.toolbar_visible = False
            canvas.resizable = False
            self.widget = canvas
        else:
            self.widget = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.draws = 0  # how many times the figure was redrawn (tests read it)
        self.refresh()

    def refresh(self) -> None:
        self.draws += 1
        if self.interactive:
            self.fig.canvas.draw_idle()
            return
        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png", dpi=self.fig.dpi)
        self.widget.value = buffer.getvalue()

    def close(self) -> None:
        plt.close(self.fig)
