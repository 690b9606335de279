"""`widgets._figure`: the figures of the widgets, with the interactive backend (ipympl) and without.

ipympl 0.10 answers a frame request that comes before the browser's "initialized" message with raw
RGBA pixels where the browser expects a PNG (a broken image and a console error, seen in the browser
tests). These tests drive a real ipympl canvas with the messages its browser view would send.
"""
import json
import warnings

import matplotlib
import matplotlib.pyplot as plt
import pytest

import widgets  # noqa: F401  (installs the figure hook, as the notebooks' `import widgets` does)
from widgets._figure import HOOK, FigureView, new_figure

_backend = matplotlib.get_backend()
import ipympl.backend_nbagg  # noqa: E402, F401  (importing it makes it pyplot's backend)

plt.switch_backend(_backend)  # the other tests keep Agg
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def ipympl_figure(make):
    """`make()`'s figure, made with the ipympl backend."""
    plt.switch_backend("module://ipympl.backend_nbagg")
    try:
        with warnings.catch_warnings():  # ipympl's toolbar passes traitlets an argument it deprecates
            warnings.simplefilter("ignore", DeprecationWarning)
            return make()
    finally:
        plt.switch_backend(_backend)


@pytest.fixture(params=["new_figure", "plt.subplots"])
def interactive_figure(request):
    """An ipympl figure made by the widgets' `new_figure` or by a notebook's own `plt.subplots` (after
    `import widgets`), with its outgoing comm messages recorded as (type, first 8 bytes of the binary
    buffer or None)."""
    make = new_figure if request.param == "new_figure" else plt.subplots
    fig, _ = ipympl_figure(lambda: make(figsize=(2, 1.5), dpi=50))
    messages = []

    def record(content, buffers=None):
        messages.append((json.loads(content["data"])["type"], bytes(buffers[0][:8]) if buffers else None))

    fig.canvas.send = record
    yield fig, messages
    plt.close(fig)


def browser_says(canvas, kind: str) -> None:
    canvas._handle_message(canvas, {"type": kind}, [])


def frames(messages) -> list:
    return [first for kind, first in messages if kind == "binary"]


def test_a_frame_asked_for_before_initialized_is_a_png(interactive_figure):
    fig, messages = interactive_figure
    FigureView(fig).refresh()
    browser_says(fig.canvas, "draw")  # the browser view asks for a frame before "initialized"
    assert frames(messages) and all(first == PNG_SIGNATURE for first in frames(messages))


def test_frames_after_initialized_are_pngs(interactive_figure):
    fig, messages = interactive_figure
    view = FigureView(fig)
    browser_says(fig.canvas, "initialized")
    messages.clear()
    view.refresh()
    assert messages == [("draw", None)]  # a refresh asks the browser to request a frame
    browser_says(fig.canvas, "draw")
    assert frames(messages) == [PNG_SIGNATURE]


def test_a_non_interactive_figure_is_rendered_to_png_in_an_image_widget():
    fig, _ = new_figure(figsize=(2, 1.5), dpi=50)  # Agg in tests
    try:
        view = FigureView(fig)
        assert not view.interactive
        assert view.widget.value[:8] == PNG_SIGNATURE
    finally:
        plt.close(fig)


def test_importing_widgets_installs_the_hook_once():
    import importlib

    importlib.reload(widgets)
    assert plt.rcParams["figure.hooks"].count(HOOK) == 1


def test_widget_figures_keep_png_frames_after_a_style_reset_clears_the_hook():
    with plt.rc_context():
        plt.style.use("default")  # a notebook resetting its style also clears figure.hooks
        assert HOOK not in plt.rcParams["figure.hooks"]
        fig, _ = ipympl_figure(lambda: new_figure(figsize=(2, 1.5), dpi=50))
    try:
        assert fig.canvas.syncing_data_url is False
    finally:
        plt.close(fig)


# --- blitting: an update redraws only the animated artists --------------------------------------------------------
def test_an_update_of_animated_artists_blits_without_a_full_draw():
    fig, ax = new_figure(figsize=(2, 1.5), dpi=50)
    try:
        line, = ax.plot([0, 1], [0, 1])
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        view = FigureView(fig, animated=[line])
        assert view.full_draws == 1 and line.get_animated()
        first = view.widget.value
        line.set_ydata([1, 0])
        view.refresh()
        assert view.full_draws == 1 and view.draws == 2  # blitted: no second full draw
        assert view.widget.value != first  # ... and the picture shows the new line
        blitted = view.widget.value
        view.invalidate()
        view.refresh()
        assert view.full_draws == 2 and view.widget.value == blitted  # a full draw gives the same picture
        ax.set_ylim(0, 2)  # limits changed: the saved picture (ticks) is stale
        view.refresh()
        assert view.full_draws == 3
    finally:
        plt.close(fig)


def test_a_blitted_update_sends_a_frame_to_the_browser_at_once():
    fig, ax = ipympl_figure(lambda: new_figure(figsize=(2, 1.5), dpi=50))
    try:
        messages = []
        fig.canvas.send = lambda content, buffers=None: messages.append(
            (json.loads(content["data"])["type"], bytes(buffers[0][:8]) if buffers else None))
        line, = ax.plot([0, 1], [0, 1])
        view = FigureView(fig, animated=[line])
        browser_says(fig.canvas, "initialized")
        browser_says(fig.canvas, "draw")  # the first full frame: the view saves the picture
        assert line in ax.lines and frames(messages) == [PNG_SIGNATURE]
        messages.clear()
        line.set_ydata([1, 0])
        view.refresh()
        assert ("draw", None) not in messages and frames(messages) == [PNG_SIGNATURE]
    finally:
        plt.close(fig)


# --- no endless redraw: a frame must not ask for the next one ------------------------------------------------------
def test_a_frame_the_browser_asked_for_does_not_make_it_ask_again():
    """After every kernel message IPython runs pyplot's hook, which calls `draw_idle()` (a "draw" message
    to the browser, which then asks for a frame) on every stale figure. A figure that its own draw leaves
    stale (reading an axes' active position applies its aspect and marks it stale) is redrawn without end;
    seen in Chromium as a figure that never stopped repainting."""
    def make():
        fig = plt.figure(figsize=(3, 1.5), dpi=50)
        return fig, fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, projection="3d")

    fig, ax, ax3d = ipympl_figure(make)
    try:
        messages = []
        fig.canvas.send = lambda content, buffers=None: messages.append(
            (json.loads(content["data"])["type"], bytes(buffers[0][:8]) if buffers else None))
        line, = ax.plot([0, 1], [0, 1])
        line3d, = ax3d.plot([0, 1], [0, 1], [0, 1])
        view = FigureView(fig, animated=[line, line3d])
        browser_says(fig.canvas, "initialized")
        messages.clear()
        for _ in range(3):
            browser_says(fig.canvas, "draw")  # the browser asks for a frame
            plt.draw_all()  # pyplot's hook after the message
        assert [kind for kind, _ in messages].count("binary") == 3 and ("draw", None) not in messages
        messages.clear()
        line.set_ydata([1, 0])
        ax.set_xlim(*ax.get_xlim())  # a widget setting the limits it already has marks the axes stale
        view.refresh()
        plt.draw_all()
        assert view.full_draws == 1 and ("draw", None) not in messages and len(frames(messages)) == 1
    finally:
        plt.close(fig)


def test_a_wide_figure_is_scaled_down_to_fit_a_laptop_notebook_column():
    wide, _ = new_figure(figsize=(12, 5), dpi=100)  # 1200 px wide: scaled by 900/1200
    narrow, _ = new_figure(figsize=(5, 3), dpi=100)  # 500 px: kept
    try:
        assert wide.dpi == pytest.approx(75) and wide.get_size_inches() == pytest.approx([12, 5])
        assert narrow.dpi == 100
        width, height = FigureView(wide).fig.canvas.get_width_height()
        assert (width, height) == (900, 375)
    finally:
        plt.close(wide), plt.close(narrow)


def test_new_limits_of_one_axes_redraw_that_axes_alone_and_the_picture_equals_a_full_draw():
    fig, axes = new_figure(2, 2, figsize=(6, 4.5), dpi=50)
    try:
        fig.subplots_adjust(wspace=0.5, hspace=0.5)
        lines = [ax.plot([0, 1], [0, 1])[0] for ax in axes.ravel()]
        for ax in axes.ravel():
            ax.set_xlim(0, 1), ax.set_ylim(0, 1), ax.set_ylabel("y")
        view = FigureView(fig, animated=lines)
        axes[1, 1].set_ylim(0, 1000)  # wider tick labels, reaching towards the neighbour's label
        lines[3].set_ydata([0, 500])
        view.refresh()
        assert (view.full_draws, view.partial_draws) == (1, 1) and not fig.stale
        partial = view.widget.value
        view.invalidate()
        view.refresh()
        assert view.full_draws == 2 and view.widget.value == partial  # the same picture as a full draw
        for ax in axes.ravel():
            ax.set_ylim(0, 2)  # every axes changed: a full draw
        view.refresh()
        assert (view.full_draws, view.partial_draws) == (3, 1)
    finally:
        plt.close(fig)


def test_a_state_drawn_before_blits_from_its_saved_picture_and_equals_a_full_draw():
    fig, axes = new_figure(1, 2, figsize=(5, 2.5), dpi=50)
    try:
        lines = [ax.plot([0, 1], [0, 1])[0] for ax in axes]
        for ax in axes:
            ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        view = FigureView(fig, animated=lines, pictures=2)
        first = view.widget.value
        for ax in axes:  # every axes changed: a full draw
            ax.set_ylim(0, 1000)
        axes[1].xaxis.set_visible(False)  # an axis line hidden is a change of state too
        view.refresh()
        assert view.full_draws == 2 and view.widget.value != first
        for ax in axes:  # back to the first state: its picture was kept
            ax.set_ylim(0, 1)
        axes[1].xaxis.set_visible(True)
        view.refresh()
        assert view.full_draws == 2 and view.widget.value == first and not fig.stale
        view.invalidate()  # forgets the saved pictures
        for ax in axes:
            ax.set_ylim(0, 1000)
        view.refresh()
        assert view.full_draws == 3
    finally:
        plt.close(fig)


def test_in_a_kernel_the_areas_are_measured_after_the_picture_went_out_and_only_for_the_picture_drawn():
    import asyncio

    async def scenario():
        fig, axes = new_figure(2, 2, figsize=(6, 4.5), dpi=50)
        fig.subplots_adjust(wspace=0.5, hspace=0.5)
        axes = list(axes.ravel())
        lines = [ax.plot([0, 1], [0, 1])[0] for ax in axes]
        for ax in axes:
            ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        view = FigureView(fig, animated=lines)
        assert view.full_draws == 1 and not view._extents  # measured on the loop's next turn
        await asyncio.sleep(0)
        assert set(axes) <= set(view._extents)
        axes[3].set_ylim(0, 1000)
        view.refresh()
        assert (view.full_draws, view.partial_draws) == (1, 1)  # one axes drawn again, with the areas measured
        partial = view.widget.value
        view.invalidate()
        view.refresh()
        assert view.full_draws == 2 and view.widget.value == partial
        axes[0].set_ylim(0, 5)  # changed before the areas of the last picture were measured ...
        await asyncio.sleep(0)
        assert not view._extents  # ... so they are not: they would be those of another figure
        view.refresh()
        assert (view.full_draws, view.partial_draws) == (3, 1) and not fig.stale  # a full draw instead
        return fig

    plt.close(asyncio.run(scenario()))
