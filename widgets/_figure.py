"""One figure shown inside a widget layout, redrawn in place (the figure made by `widgets._new_figure`).

With the interactive backend (`%matplotlib widget`, ipympl) the figure's canvas *is* a widget and a
redraw is `draw_idle()`. With any other backend (inline, Agg in tests, Voila without ipympl) the figure
is rendered to PNG into an `ipywidgets.Image`, refreshed after every update. Either way a widget
updates its artists (`set_data`, `set_text`, ...) and then calls `FigureView.refresh()`; it never
creates a new figure per update.

Blitting: the artists a widget changes on every update (its lines, markers, images, texts) are handed to
`FigureView.animate`. A full draw then renders the rest of the figure (axes, ticks, contours, a 3-D
surface), keeps that picture, and draws the animated artists on top; a later `refresh()` restores the
picture and draws only the animated artists. When an axes' state changed (limits, scale, 3-D view, visibility,
or the content key given by `set_content`), only that axes is drawn again (with whatever shares its area on the
figure: tick labels reaching a neighbour), over the saved picture of the others; a new figure size, a layout
engine or axes added or removed draw everything again. A view made with `pictures=n` keeps the pictures of the
last n states of the figure (every axes' state), so going back to one drawn before (a layer, a surface seen
before) blits. A widget that changes anything else that is not animated (a title, a static image) calls
`invalidate()` before `refresh()`, or, when the change is what one axes shows, `set_content(ax, key)`.
A full draw measures the areas of the figure's parts (a partial redraw needs them) at once, or inside a running
loop (a kernel) after the frame has gone out. With ipympl the blitted frame is sent at once (`canvas.blit`, a
diff frame as after any draw); any full draw (a resize, a rotation of a 3-D axes) keeps the animated artists,
since the view draws them after every draw.

Neither a draw nor a blit leaves the figure stale: after every kernel message (a slider moved, the
browser asking for a frame) pyplot's hook asks ipympl for a full draw of every stale figure, so a figure
that its own draw leaves stale is drawn again and again without end.
"""
from __future__ import annotations

import io
import logging
from collections import OrderedDict

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.legend import Legend
from PIL import Image

from widgets._view import running_loop

__all__ = ["FigureView"]

log = logging.getLogger("widgets")


class FigureView:
    """The widget that shows `fig`; call `refresh()` after changing its artists.

    Inputs:
    - fig: a matplotlib Figure (made by `new_figure`).
    - animated: artists that change on updates (see `animate`).
    - pictures: how many saved pictures to keep, by the states of the axes they show (limits, scales, views,
      visibility, content keys), so that going back to a state drawn before (a layer seen before) blits;
      0 (the default) keeps the last only. Only for a widget whose every non-animated change shows in those
      states or calls `invalidate()` (which forgets them all).
    `.draws` counts refreshes (once their frame is ready), `.full_draws` those that drew the whole figure,
    `.partial_draws` those that drew some axes again; tests read them.
    `.before_refresh`: callables `hook(fig) -> bool` run first on every refresh, True when they changed what is
    not animated (lecture mode raises the texts and lines a widget made small, `widgets.lecture`).
    """

    PNG_COMPRESS_LEVEL = 1  # the PNG fallback: zlib's fastest level (a frame is encoded on every update)

    def __init__(self, fig, animated=(), pictures: int = 0):
        self.fig, self.pictures = fig, int(pictures)
        canvas = fig.canvas
        self.interactive = isinstance(canvas, W.DOMWidget)
        if self.interactive:
            canvas.header_visible = False
            canvas.footer_visible = False  # the cursor's coordinates, a line wider than the figure
            canvas.toolbar_visible = False
            canvas.resizable = False
            self.widget = canvas
        else:
            self.widget = W.Image(format="png", layout=W.Layout(max_width="100%"))
        self.before_refresh: list = []
        self.draws = 0  # how many times the figure was redrawn (tests read it)
        self.full_draws = 0  # how many of them drew the whole figure
        self._animated: list = []
        self._background = None  # the saved picture of the static part (None: the next refresh draws all)
        self._size, self._states = None, {}  # figure size, axes -> _state(axes) when it was saved
        self._extents = {}  # part of the figure (axes, figure text, legend) -> its area when it was saved
        self.partial_draws = 0  # how many refreshes drew some axes again, not the whole figure
        self._contents = {}  # axes -> key of what it shows (set_content)
        self._pictures = OrderedDict()  # (size, axes states) -> (saved picture, extents), the last `pictures`
        self._unmeasured: list = []  # parts drawn whose area is measured later (after the frame, see _on_draw)
        canvas.mpl_connect("draw_event", self._on_draw)
        self.animate(*animated)
        self.refresh()

    def animate(self, *artists, new: bool = False) -> None:
        """Redraw `artists` alone on later refreshes (blitting), over a saved picture of the rest.

        new=True: the artists were made since the last refresh (so the saved picture does not hold them)
        and the next refresh can still blit; an artist removed later (`artist.remove()`) is dropped."""
        for artist in artists:
            if artist is not None and artist not in self._animated:
                artist.set_animated(True)
                self._animated.append(artist)
        if not new:
            self.invalidate()

    def invalidate(self) -> None:
        """Something that is not animated changed (a title, a static image): the next `refresh()` draws the
        whole figure (and the pictures saved before are forgotten). Axis limits, scales, 3-D views and the
        visibility of axes and their axis lines are watched without this call."""
        self._background = None
        self._pictures.clear()
        self._unmeasured = []

    def set_content(self, ax, key) -> None:
        """`ax` now shows the content named `key` (hashable; e.g. a surface's name): its static picture (all
        but the animated artists) is fixed by `key` with its limits, scales, place and 3-D view. The next
        `refresh()` draws ax again, or blits a saved picture of the figure in this state (see `pictures`)."""
        self._contents[ax] = key

    def refresh(self) -> None:
        self._render()
        self.draws += 1  # counted once the frame is ready: a reader in another thread sees only finished draws

    def _render(self) -> None:
        self._measure()  # what the last full draw left unmeasured (in a kernel), before anything changes it
        if [hook(self.fig) for hook in self.before_refresh].count(True):  # every hook runs
            self.invalidate()
        canvas = self.fig.canvas
        stale = self._stale_axes()
        if stale and self._restore_saved():  # back to a state drawn before: its picture serves
            stale = []
        if stale is not None and (not stale or self._redraw(stale)):
            if not stale:
                canvas.restore_region(self._background)
            self._draw_animated()
            # The picture is up to date: the static part is the saved one (limits, size and views checked),
            # the rest was just drawn. Setters called with the values shown (set_xlim, set_title) marked the
            # figure stale; left so, pyplot's hook after the kernel message (IPython's post_execute) would
            # ask ipympl for a full draw after every blit.
            self.fig.stale = False
            if self.interactive:
                canvas.blit(self.fig.bbox)  # ipympl: sends the new frame (a diff) now
                return
        elif self.interactive:
            self.full_draws += 1
            canvas.draw_idle()  # the browser asks for the frame; the draw keeps the animated artists
            return
        else:
            self.full_draws += 1
            canvas.draw()  # _on_draw saves the picture and draws the animated artists
        self._send_png()

    def _send_png(self) -> None:
        pixels = np.asarray(self.fig.canvas.buffer_rgba())
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGBA").save(buffer, format="png", compress_level=self.PNG_COMPRESS_LEVEL)
        self.widget.value = buffer.getvalue()

    # --- blitting ----------------------------------------------------------------------------------------
    @staticmethod
    def _axes_state(ax) -> tuple:
        """What the saved picture of an axes depends on besides its static artists: limits, scales, place,
        and for a 3-D axes its z limits and view."""
        # original=True: the place set by the layout. get_position() would apply the axes' aspect first, which
        # marks the axes (and the figure) stale: then pyplot's hook after every kernel message would ask the
        # browser for another full draw, after each draw, without end (ipympl). Limits and the figure size,
        # which the active place follows, are in the state already.
        state = (ax.get_xlim(), ax.get_ylim(), ax.get_xscale(), ax.get_yscale(),
                 tuple(ax.get_position(original=True).bounds), ax.get_visible(), ax.xaxis.get_visible(),
                 ax.yaxis.get_visible())
        if hasattr(ax, "get_zlim"):
            state += (ax.get_zlim(), ax.elev, ax.azim, ax.roll)
        return state

    def _state(self, ax) -> tuple:
        return self._contents.get(ax), self._axes_state(ax)

    def _stale_axes(self) -> list | None:
        """The axes whose state (see `_axes_state`) or content key changed since the picture was saved ([]:
        none), or None when the saved picture cannot serve at all (none saved, another size, axes added or removed)."""
        if (self._background is None or self._size != tuple(self.fig.bbox.bounds)
                or list(self._states) != self.fig.axes):
            return None
        return [ax for ax, state in self._states.items() if self._state(ax) != state]

    def _parts(self) -> list:
        """What a figure draws besides its background: axes, figure texts, legends, images, lines, patches."""
        fig = self.fig
        return [a for a in (*fig.axes, *fig.texts, *fig.legends, *fig.images, *fig.lines, *fig.patches)
                if not a.get_animated()]

    @staticmethod
    def _extent(part, renderer):
        """The area `part` draws on (a Bbox in pixels), None if unknown. An axes: its frame, ticks, labels
        and title, and the children it does not clip, but not a legend it places inside itself (measuring a
        legend costs as much as drawing it)."""
        if isinstance(part, Axes):
            extra = [a for a in part.get_children() if not a.get_clip_on() and a.get_visible()
                     and not (isinstance(a, Legend) and a._bbox_to_anchor is None)]
            box = part.get_tightbbox(renderer, bbox_extra_artists=extra)
        else:
            box = part.get_window_extent(renderer)
        return box if box is not None and np.all(np.isfinite(box.bounds)) else None

    def _redraw(self, stale: list) -> bool:
        """Draw the `stale` axes again, and the saved picture for the rest: within the areas they had and have
        now, the figure is drawn afresh (the stale axes and every part that meets those areas, on a blank
        figure) and pasted over the saved picture, which is then saved again. False, drawing nothing, when that
        would be the whole figure or a layout engine may move the axes (then a full draw is due)."""
        fig, canvas = self.fig, self.fig.canvas
        if fig.get_layout_engine() is not None or all(ax in stale for ax in fig.axes):
            return False
        renderer = canvas.get_renderer()
        parts, areas, extents = self._parts(), [], {}
        for ax in stale:
            extents[ax], old = self._extent(ax, renderer), self._extents.get(ax)
            if extents[ax] is None or old is None:
                return False
            areas += [extents[ax], old]
        if any(p not in self._extents for p in parts):
            return False
        redraw = [p for p in parts if p in stale or
                  (self._extents[p] is not None and any(self._extents[p].overlaps(box) for box in areas))]
        if all(ax in redraw for ax in fig.axes):
            return False
        renderer.clear()
        fig.patch.draw(renderer)
        for part in sorted(redraw, key=lambda p: p.get_zorder()):  # stable: the figure's own order on ties
            part.draw(renderer)
        fresh = canvas.copy_from_bbox(fig.bbox)
        canvas.restore_region(self._background)
        height = fig.bbox.height
        for box in areas:  # the areas from the fresh picture (restore_region counts rows from the top)
            x0, x1 = max(np.floor(box.x0) - 1, 0), min(np.ceil(box.x1) + 1, fig.bbox.width)
            top, bottom = max(np.floor(height - box.y1) - 1, 0), min(np.ceil(height - box.y0) + 1, height)
            canvas.restore_region(fresh, bbox=(x0, top, x1, bottom), xy=(0, 0))  # xy: the offset
        self.partial_draws += 1
        self._save(extents)  # the other parts kept their areas
        return True

    def _save(self, extents: dict) -> None:
        """Keep the picture drawn so far (the static part) and what it depends on; `extents`: the areas of
        the parts that were drawn (part -> Bbox)."""
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._size = tuple(self.fig.bbox.bounds)
        self._states = {ax: self._state(ax) for ax in self.fig.axes}
        self._extents.update(extents)
        key = (self._size, tuple(self._states.items()))
        self._pictures[key] = (self._background, dict(self._extents))
        self._pictures.move_to_end(key)
        while len(self._pictures) > self.pictures:
            self._pictures.popitem(last=False)

    def _restore_saved(self) -> bool:
        """Make the saved picture of the figure's present state (same size, same axes, same states) the one
        to blit over; False when none was saved since the last `invalidate()`."""
        states = {ax: self._state(ax) for ax in self.fig.axes}
        saved = self._pictures.get((tuple(self.fig.bbox.bounds), tuple(states.items())))
        if saved is None:
            return False
        for ax in self.fig.axes:  # what a draw sets up for the animated artists: a 3-D axes' projection
            if hasattr(ax, "get_proj") and states[ax] != self._states[ax]:
                ax.apply_aspect()
                ax.M = ax.get_proj()
                ax.invM = np.linalg.inv(ax.M)
        self._background, self._extents = saved[0], dict(saved[1])
        self._states = states
        # areas left unmeasured when it was drawn (changed before the loop ran): the figure is in that state again
        self._unmeasured = [part for part in self._parts() if part not in self._extents]
        if self._unmeasured:
            self._measure_soon()
        return True

    def _on_draw(self, event) -> None:
        """After every full draw: save the picture of the static part, then draw the animated artists. The areas
        of the parts (a partial redraw needs them; measuring costs 20-40% of a full draw) are measured at once,
        or when a loop runs (a kernel) after the frame has gone out: on the loop's next turn, or at the start of
        the next refresh if that comes first."""
        canvas = self.fig.canvas
        if not self._animated or canvas.is_saving():
            return
        self._extents = {}
        self._save({})
        self._unmeasured = self._parts()
        self._measure_soon(event.renderer)
        self._draw_animated()
        self.fig.stale = False  # a tight box applies the axes' aspect, which marks them stale (see _axes_state)

    def _measure_soon(self, renderer=None) -> None:
        loop = running_loop()
        if loop is None:
            self._measure(renderer)
        else:
            loop.call_soon(self._measure_later)

    def _measure(self, renderer=None) -> None:
        """Measure the parts the last full draw (or restored picture) left unmeasured, those still as drawn (an
        axes whose state changed since stays unknown: its next change draws the whole figure), for that picture."""
        if not self._unmeasured:
            return
        fig, parts, self._unmeasured = self.fig, self._unmeasured, []
        if self._background is None or self._size != tuple(fig.bbox.bounds):
            return
        if renderer is None and not hasattr(fig.canvas, "get_renderer"):  # a figure detached from its canvas
            return
        stale, renderer = fig.stale, renderer or fig.canvas.get_renderer()
        for part in parts:
            if not isinstance(part, Axes) or self._states.get(part) == self._state(part):
                self._extents[part] = self._extent(part, renderer)
        key = (self._size, tuple(self._states.items()))
        if key in self._pictures:
            self._pictures[key] = (self._background, dict(self._extents))
        fig.stale = stale  # measuring applies the axes' aspect, which marks them stale (see _axes_state)

    def _measure_later(self) -> None:
        try:
            self._measure()
        except Exception:  # noqa: BLE001 - unmeasured parts only cost a full draw later; a student sees nothing
            log.debug("measuring the figure's parts failed", exc_info=True)
            self._unmeasured = []

    def _draw_animated(self) -> None:
        self._animated = [a for a in self._animated if a.get_figure(root=True) is self.fig]  # drop removed ones
        for artist in sorted(self._animated, key=lambda a: a.get_zorder()):
            if artist.get_visible() and (artist.axes is None or artist.axes.get_visible()):
                self.fig.draw_artist(artist)

    def close(self) -> None:
        plt.close(self.fig)
