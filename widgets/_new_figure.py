"""Making the widgets' figures: `new_figure` (a figure sized for a laptop's notebook column, not shown by the
cell that makes it), `design_dpi`, `nice_ceil` (limits a small change of the data keeps, so a redraw can blit),
and the PNG-frames fix for ipympl canvases (`send_png_frames_only`, `install_figure_hook`). The figure's
widget is `widgets._figure.FigureView`.
"""
from __future__ import annotations

import weakref

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["HOOK", "MAX_WIDTH_PX", "design_dpi", "install_figure_hook", "new_figure", "nice_ceil",
           "send_png_frames_only"]


MAX_WIDTH_PX = 900  # JupyterLab's output column at 1366x768 with the file browser open is 935 px wide
_DESIGN_DPI = weakref.WeakKeyDictionary()  # figure -> the dpi it was designed at, before the laptop cap


def new_figure(*args, **kwargs):
    """`plt.subplots(*args, **kwargs)` without showing the figure in the cell that creates it, at most
    MAX_WIDTH_PX wide on screen: a wider figure gets a lower dpi (the same layout, scaled down), so it fits
    the notebook column of a laptop. The dpi is set when the figure is made, so ipympl keeps it on a HiDPI
    screen (it scales the figure's first dpi by the device pixel ratio).

    It applies `send_png_frames_only` itself rather than relying on the figure hook alone:
    `plt.style.use("default")` or `plt.rcdefaults()` in a notebook clear matplotlib's `figure.hooks`.
    """
    width = (kwargs.get("figsize") or plt.rcParams["figure.figsize"])[0]
    dpi = kwargs.get("dpi") or plt.rcParams["figure.dpi"]
    kwargs["dpi"] = min(dpi, MAX_WIDTH_PX / width)
    with plt.ioff():
        fig, axes = plt.subplots(*args, **kwargs)
    _DESIGN_DPI[fig] = dpi
    send_png_frames_only(fig)
    return fig, axes


def design_dpi(fig) -> float:
    """The dpi a figure was designed at: what `new_figure` was asked for, before the laptop cap lowered it
    (a figure made elsewhere: its dpi now). Lecture mode enlarges figures relative to this size."""
    return _DESIGN_DPI.get(fig, fig.dpi)


def nice_ceil(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten that is >= |value| (1e-300 for 0): a limit or colour
    scale that a small change of the data keeps, so the next update can blit (see FigureView)."""
    size = max(abs(float(value)), 1e-300)
    decade = 10.0 ** np.floor(np.log10(size))
    return next(f * decade for f in (1, 2, 5, 10) if f * decade >= size * (1 - 1e-12))


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
