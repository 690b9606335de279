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

__all__ = ["FigureView", "install_figure_hook", "new_figure", "send_png_frames_only"]


def new_figure(*args, **kwargs):
    """`plt.subplots(*args, **kwargs)` without showing the figure in the cell that creates it.

    It applies `send_png_frames_only` itself rather than relying on the figure hook alone:
    `plt.style.use("default")` or `plt.rcdefaults()` in a notebook clear matplotlib's `figure.hooks`.
    """
    with plt.ioff():
        fig, axes = plt.subplots(*args, **kwargs)
    send_png_frames_only(fig)
    return fig, axes


def send_png_frames_only(fig) -> None:
    """Make a figure's ipympl canvas send the browser PNG frames from the start (no-op otherwise).

    Until its browser view says "initialized", an ipympl 0.10 canvas also keeps a copy of each frame in
    its `_data_url` trait, and in that mode it sends the raw RGBA pixels where the browser expects a
    PNG. A browser view can ask for a frame before it says "initialized" (seen in JupyterLab when cells
    create figures quickly): the browser then holds a broken image, and its next resize fails with the
    console error "Error setting state: Failed to execute 'drawImage' ... 'broken' state". The copy
    only serves static exports of widget state, which the course does not use.
    """
    canvas = fig.canvas
    if getattr(canvas, "syncing_data_url", None) is True:
        canvas.syncing_data_url = False


HOOK = f"{__name__}:send_png_frames_only"


def install_figure_hook() -> None:
    """Apply `send_png_frames_only` to every figure pyplot creates from now on, the notebooks' own
    figures included (matplotlib's `figure.hooks` setting; `import widgets` calls this)."""
    hooks = plt.rcParams["figure.hooks"]
    if HOOK not in hooks:
        plt.rcParams["figure.hooks"] = [*hooks, HOOK]


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
