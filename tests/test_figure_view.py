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
from widgets._figure import FigureView
from widgets._new_figure import HOOK, new_figure

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


def test_a_content_key_seen_before_in_the_same_state_blits_its_saved_picture_and_equals_a_full_draw():
    """An axes whose content changed (`set_content`) is drawn again; back to a content shown before with the
    same state of the figure, the saved picture serves: no drawing, and the same pixels as a full draw."""
    fig, axes = new_figure(1, 2, figsize=(6, 2.5), dpi=50)
    try:
        fig.subplots_adjust(wspace=0.5)
        lines = [ax.plot([0, 1], [0, 1])[0] for ax in axes]
        view = FigureView(fig, animated=lines, pictures=2)
        pictures, drawn = {}, []
        for content, top in (("a", 1), ("b", 1000), ("a", 1)):  # "b": other limits, a wider tick label
            axes[0].set_ylim(0, top), axes[0].set_title(content)
            view.set_content(axes[0], content)
            before = view.full_draws + view.partial_draws
            view.refresh()
            drawn.append(view.full_draws + view.partial_draws - before)
            pictures.setdefault(content, view.widget.value)
        assert drawn == [1, 1, 0] and view.full_draws == 1  # "a" again: its saved picture, nothing drawn
        assert view.widget.value == pictures["a"]
        view.invalidate()
        view.refresh()
        assert view.full_draws == 2 and view.widget.value == pictures["a"]  # the same picture as a full draw
    finally:
        plt.close(fig)


def test_a_content_seen_before_with_another_axes_changed_meanwhile_is_drawn_again():
    """The saved pictures are of the whole figure: a neighbour's tick labels changed since (reaching into the
    axes' area) make another state, which is drawn, and equals a full draw."""
    fig, axes = new_figure(1, 2, figsize=(4, 2), dpi=50)
    try:
        fig.subplots_adjust(wspace=0.05)  # the right axes' tick labels lie over the left axes
        lines = [ax.plot([0, 1], [0, 1])[0] for ax in axes]
        view = FigureView(fig, animated=lines, pictures=4)
        drawn = []
        for content, top in (("a", 1), ("b", 1), ("a", 1000)):  # the neighbour's labels change meanwhile
            axes[0].set_title(content)
            axes[1].set_ylim(0, top)
            view.set_content(axes[0], content)
            before = view.full_draws + view.partial_draws
            view.refresh()
            drawn.append(view.full_draws + view.partial_draws - before)
        assert drawn == [1, 1, 1]
        partial = view.widget.value
        view.invalidate()
        view.refresh()
        assert view.widget.value == partial
    finally:
        plt.close(fig)


def test_a_saved_picture_of_a_3d_axes_projects_its_animated_artists_with_its_own_view():
    def make():
        fig = plt.figure(figsize=(6, 2.5), dpi=50)
        fig.subplots_adjust(wspace=0.4)
        return fig, fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, projection="3d")

    fig, ax, ax3d = make()
    try:
        line, = ax.plot([0, 1], [0, 1])
        line3d, = ax3d.plot([0, 1], [0, 1], [0, 1])
        view = FigureView(fig, animated=[line, line3d], pictures=2)
        shown, drawn = [], []
        for top in (1, 5, 1):  # another z range projects the 3-D line elsewhere
            ax3d.set_zlim(0, top)
            view.set_content(ax3d, "surface")
            draws = view.full_draws + view.partial_draws
            view.refresh()
            drawn.append(view.full_draws + view.partial_draws - draws)
            shown.append(view.widget.value)
        assert drawn[2] == 0, "the first state again: its saved picture, nothing drawn"
        assert shown[0] != shown[1] and shown[2] == shown[0], "... and the 3-D line projected with that state's view"
        draws = view.full_draws + view.partial_draws
        view.invalidate()
        view.refresh()
        assert view.full_draws + view.partial_draws == draws + 1 and view.widget.value == shown[2]
    finally:
        plt.close(fig)


def test_in_a_running_loop_a_full_draw_measures_its_parts_after_the_frame():
    """In a kernel the frame goes out first; the areas a partial redraw needs are measured when the loop runs
    next. A change before that (nothing measured for the changed axes) draws the whole figure instead."""
    import asyncio

    measured = []
    extent = FigureView._extent

    def counting(part, renderer):
        measured.append(part)
        return extent(part, renderer)

    async def scenario(yield_first: bool):
        fig, axes = new_figure(1, 2, figsize=(6, 2.5), dpi=50)
        fig.subplots_adjust(wspace=0.5)
        lines = [ax.plot([0, 1], [0, 1])[0] for ax in axes]
        view = FigureView(fig, animated=lines)
        counts = [len(measured)]
        if yield_first:
            await asyncio.sleep(0)
        counts.append(len(measured))
        axes[1].set_ylim(0, 1000)
        view.refresh()
        partial = view.widget.value
        view.invalidate()
        view.refresh()
        try:
            return counts, (view.full_draws, view.partial_draws), partial == view.widget.value
        finally:
            plt.close(fig)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FigureView, "_extent", staticmethod(counting))
        counts, draws, same = asyncio.run(scenario(yield_first=True))
        assert counts[0] == 0 and counts[1] >= 2, "measured once the loop ran, not during the refresh"
        assert draws == (2, 1) and same, "then a partial redraw, the same picture as a full draw"
        measured.clear()
        counts, draws, same = asyncio.run(scenario(yield_first=False))
        assert counts == [0, 0] and draws == (3, 0) and same, "changed before it was measured: a full draw"


def test_a_figure_detached_from_its_canvas_before_the_loop_runs_is_left_unmeasured_quietly(caplog):
    """The deferred measuring runs when the loop runs next; by then the figure may have lost its drawing canvas
    (closed, replaced by a demo switch). Nothing is raised or logged where a student would see it."""
    import asyncio
    import logging

    from matplotlib.backend_bases import FigureCanvasBase

    async def scenario():
        fig, ax = new_figure(figsize=(3, 2), dpi=50)
        view = FigureView(fig, animated=ax.plot([0, 1], [0, 1]))
        assert view._unmeasured, "a full draw in a running loop leaves its parts to measure later"
        FigureCanvasBase(fig)  # the figure now has a canvas that cannot draw
        await asyncio.sleep(0)
        return view

    with caplog.at_level(logging.WARNING, logger="widgets"):
        view = asyncio.run(scenario())
    assert not view._unmeasured and not caplog.records


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
        assert axes[0] not in view._extents  # ... so its area is not: it would be that of another figure
        assert set(axes[1:]) <= set(view._extents)  # the others are as drawn
        view.refresh()
        assert (view.full_draws, view.partial_draws) == (3, 1) and not fig.stale  # a full draw instead
        return fig

    plt.close(asyncio.run(scenario()))


def test_a_saved_picture_left_unmeasured_is_measured_when_it_is_shown_again():
    """A state drawn and changed before the loop ran keeps no areas; shown again from its saved picture, it is
    measured then, so its next change draws one axes, not the whole figure."""
    import asyncio

    async def scenario():
        fig, axes = new_figure(1, 2, figsize=(6, 2.5), dpi=50)
        fig.subplots_adjust(wspace=0.5)
        lines = [ax.plot([0, 1], [0, 1])[0] for ax in axes]
        for ax in axes:
            ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        view = FigureView(fig, animated=lines, pictures=4)
        for ax in axes:  # changed before the loop ran: the first state's areas are not measured
            ax.set_ylim(0, 1000)
        view.refresh()
        await asyncio.sleep(0)
        for ax in axes:  # the first state again: its saved picture, then its areas measured
            ax.set_ylim(0, 1)
        view.refresh()
        counts = [(view.full_draws, view.partial_draws)]
        await asyncio.sleep(0)
        axes[1].set_ylim(0, 5)
        view.refresh()
        counts.append((view.full_draws, view.partial_draws))
        partial = view.widget.value
        view.invalidate()
        view.refresh()
        plt.close(fig)
        return counts, partial == view.widget.value

    counts, same = asyncio.run(scenario())
    assert counts == [(2, 0), (2, 1)] and same
