"""One figure shown inside a widget layout, redrawn in place.

With the interactive backend (`%matplotlib widget`, ipympl) the figure's canvas *is* a widget and a
redraw is `draw_idle()`. With any other backend (inline, Agg in tests, Voila without ipympl) the figure
is rendered to PNG into an `ipywidgets.Image`, refreshed after every update. Either way a widget
updates its artists (`set_data`, `set_text`, ...) and then calls `FigureView.refresh()`; it never
creates a new figure per update.

Blitting: the artists a widget changes on every update (its lines, markers, images, texts) are handed to
`FigureView.animate`. A full draw then renders the rest of the figure (axes, ticks, contours, a 3-D
surface), keeps that picture, and draws the animated artists on top; a later `refresh()` restores the
picture and draws only the animated artists. When an axes' limits, scale or 3-D view changed, only that
axes is drawn again (with whatever shares its area on the figure: tick labels reaching a neighbour), over
the saved picture of the others; a new figure size, a layout engine or axes added or removed draw
everything again. A widget that changes anything else that is not animated (a title, a static image) calls
`invalidate()` before `refresh()`, or, when the change is the content of one axes, `set_content(ax, key)`:
the key names what that axes shows (the surface of a contour map). The view keeps the pictures of such axes
per key, limits and view, and pastes a kept one back instead of drawing the axes again (the same pixels: only
an axes whose area no other part of the figure reaches is kept), so going back to a content seen before costs
no drawing; it also keeps their areas, so a full draw measures only the axes shown with a key and limits not
seen before. With ipympl the blitted frame is sent at once (`canvas.blit`, a diff frame as after any draw);
any full draw (a resize, a rotation of a 3-D axes) keeps the animated artists, since the view draws them
after every draw.

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

__all__ = ["MAX_WIDTH_PX", "FigureView", "install_figure_hook", "new_figure", "nice_ceil", "send_png_frames_only"]


MAX_WIDTH_PX = 900  # JupyterLab's output column at 1366x768 with the file browser open is 935 px wide


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
    send_png_frames_only(fig)
    return fig, axes


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


log = logging.getLogger("widgets")

HOOK = f"{__name__}:send_png_frames_only"


def install_figure_hook() -> None:
    """Apply `send_png_frames_only` to every figure pyplot creates from now on, the notebooks' own
    figures included (matplotlib's `figure.hooks` setting; `import widgets` calls this)."""
    hooks = plt.rcParams["figure.hooks"]
    if HOOK not in hooks:
        plt.rcParams["figure.hooks"] = [*hooks, HOOK]


class FigureView:
    """The widget that shows `fig`; call `refresh()` after changing its artists.

    Inputs:
    - fig: a matplotlib Figure (made by `new_figure`).
    - animated: artists that change on updates (see `animate`).
    `.draws` counts refreshes, `.full_draws` the refreshes that drew the whole figure, `.partial_draws` those that
    drew some axes again, `.reused` the axes pasted from a kept picture (see `set_content`); tests read them.
    """

    PNG_COMPRESS_LEVEL = 1  # the PNG fallback: zlib's fastest level (a frame is encoded on every update)
    KEPT_PICTURES = 32  # pictures of axes with a content key kept for reuse (the least recently used go first)

    def __init__(self, fig, animated=()):
        self.fig = fig
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
        self.draws = 0  # how many times the figure was redrawn (tests read it)
        self.full_draws = 0  # how many of them drew the whole figure
        self._animated: list = []
        self._background = None  # the saved picture of the static part (None: the next refresh draws all)
        self._size, self._states = None, {}  # figure size, axes -> _axes_state(axes) when it was saved
        self._extents = {}  # part of the figure (axes, figure text, legend) -> its area when it was saved
        self.partial_draws = 0  # how many refreshes drew some axes again, not the whole figure
        self.reused = 0  # how many times a kept picture of an axes was pasted instead of drawing the axes
        self._contents = {}  # axes -> key of what it shows (set_content)
        self._kept = OrderedDict()  # (axes, key, state, size) -> (area, picture of the area or None)
        self._unmeasured: list = []  # parts drawn whose area is measured later (after the frame, see _on_draw)
        self._static = None  # meanwhile, the pixels of the static part they were drawn in
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
        whole figure (and forgets the kept pictures of axes). Axis limits, scales and 3-D views are watched
        without this call."""
        self._background = None
        self._kept.clear()
        self._unmeasured, self._static = [], None

    def set_content(self, ax, key) -> None:
        """`ax` now shows the content named `key` (hashable; e.g. a surface's name): its static picture (all
        but the animated artists) is fixed by `key` with its limits, scales, place and 3-D view. The next
        `refresh()` draws ax again, or pastes the picture it had with this key and state if one was kept."""
        self._contents[ax] = key

    def refresh(self) -> None:
        self._render()
        self.draws += 1  # counted once the frame is ready: a reader in another thread sees only finished draws

    def _render(self) -> None:
        self._measure()  # what the last full draw left unmeasured and has not changed since
        canvas = self.fig.canvas
        stale = self._stale_axes()
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
                 tuple(ax.get_position(original=True).bounds), ax.get_visible())
        if hasattr(ax, "get_zlim"):
            state += (ax.get_zlim(), ax.elev, ax.azim, ax.roll)
        return state

    def _state(self, ax) -> tuple:
        return self._contents.get(ax), self._axes_state(ax)

    def _kept_key(self, ax) -> tuple | None:
        """The key of ax's kept picture and area (None: ax has no content key, nothing is kept)."""
        if ax not in self._contents:
            return None
        return ax, self._contents[ax], self._axes_state(ax), tuple(self.fig.bbox.bounds)

    def _stale_axes(self) -> list | None:
        """The axes whose limits, scales, place or view changed since the picture was saved ([]: none), or
        None when the saved picture cannot serve at all (none saved, another size, axes added or removed)."""
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
        and title, and the static children it does not clip, but not a legend it places inside itself
        (measuring a legend costs as much as drawing it)."""
        if isinstance(part, Axes):
            extra = [a for a in part.get_children() if not a.get_clip_on() and a.get_visible()
                     and not a.get_animated() and not (isinstance(a, Legend) and a._bbox_to_anchor is None)]
            box = part.get_tightbbox(renderer, bbox_extra_artists=extra)
        else:
            box = part.get_window_extent(renderer)
        return box if box is not None and np.all(np.isfinite(box.bounds)) else None

    def _redraw(self, stale: list) -> bool:
        """Draw the `stale` axes again, and the saved picture for the rest: within the areas they had and have
        now, the figure is drawn afresh (the stale axes and every part that meets those areas, on a blank
        figure) and pasted over the saved picture, which is then saved again. A stale axes with a kept picture
        (see `set_content`) that is alone in its area is pasted from it instead of being drawn. False, drawing
        nothing, when that would be the whole figure or a layout engine may move the axes (then a full draw
        is due)."""
        fig, canvas = self.fig, self.fig.canvas
        if fig.get_layout_engine() is not None:
            return False
        kept = {ax: self._kept[key] for ax in stale if (key := self._kept_key(ax)) in self._kept}
        if all(ax in stale for ax in fig.axes) and not any(picture is not None for _, picture in kept.values()):
            return False
        renderer = canvas.get_renderer()
        parts, extents = self._parts(), {}
        if any(p not in self._extents for p in parts):
            return False
        for ax in stale:
            extents[ax] = kept[ax][0] if ax in kept else self._extent(ax, renderer)
            if extents[ax] is None or self._extents.get(ax) is None:
                return False
        now = {**{p: self._extents[p] for p in parts}, **extents}  # every part's area as it is now
        pasted = {ax: kept[ax][1] for ax in stale if ax in kept and kept[ax][1] is not None and self._alone(ax, now)}
        areas = [box for ax in stale for box in (extents[ax], self._extents[ax])]
        redraw = [p for p in parts if p not in pasted and (p in stale or (
            self._extents[p] is not None and any(self._extents[p].overlaps(box) for box in areas)))]
        if not pasted and all(ax in redraw for ax in fig.axes):
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
        if pasted:
            pixels = np.asarray(canvas.buffer_rgba())
            for ax, picture in pasted.items():  # alone in its area: the picture holds all that is drawn there
                rows, cols = self._pixels(extents[ax])
                pixels[rows, cols] = picture
                if hasattr(ax, "get_proj"):  # what a draw sets up for the animated artists: the 3-D projection
                    ax.apply_aspect()
                    ax.M = ax.get_proj()
                    ax.invM = np.linalg.inv(ax.M)
        self.partial_draws += 1
        self.reused += len(pasted)
        self._save(extents)  # the other parts kept their areas
        self._keep([ax for ax in stale if ax not in pasted], now)
        return True

    def _pixels(self, box) -> tuple[slice, slice]:
        """The rows and columns of the canvas that the area `box` (a Bbox in pixels, y up) can touch: rounded
        out, 2 px wider (antialiased edges; a figure's height that is not a whole number of pixels)."""
        width, height = self.fig.bbox.width, self.fig.bbox.height
        rows = slice(int(max(np.floor(height - box.y1) - 2, 0)), int(min(np.ceil(height - box.y0) + 2, int(height))))
        cols = slice(int(max(np.floor(box.x0) - 2, 0)), int(min(np.ceil(box.x1) + 2, int(width))))
        return rows, cols

    def _alone(self, ax, areas: dict) -> bool:
        """True when the pixels of ax's area show ax alone on the figure's background: no other part's area
        (areas: part -> Bbox or None, unknown) comes near it."""
        rows, cols = self._pixels(areas[ax])
        for part, area in areas.items():
            if part is ax:
                continue
            if area is None:
                return False
            r, c = self._pixels(area)
            if r.start < rows.stop and rows.start < r.stop and c.start < cols.stop and cols.start < c.stop:
                return False
        return True

    def _keep(self, axes, areas: dict, pixels=None) -> None:
        """Remember the area of each of `axes` that has a content key, with its picture when it is alone in that
        area; `areas`: every part's area now; `pixels`: the static part (default: the canvas, which holds the
        static part just drawn)."""
        for ax in axes:
            key = self._kept_key(ax)
            if key is None or areas.get(ax) is None:
                continue
            if self._kept.get(key, (None, None))[1] is None:
                picture = None
                if self._alone(ax, areas):
                    pixels = np.asarray(self.fig.canvas.buffer_rgba()) if pixels is None else pixels
                    picture = pixels[self._pixels(areas[ax])].copy()
                self._kept[key] = (areas[ax], picture)
            self._kept.move_to_end(key)
        while len(self._kept) > self.KEPT_PICTURES:
            self._kept.popitem(last=False)

    def _save(self, extents: dict) -> None:
        """Keep the picture drawn so far (the static part) and what it depends on; `extents`: the areas of
        the parts that were drawn (part -> Bbox)."""
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._size = tuple(self.fig.bbox.bounds)
        self._states = {ax: self._state(ax) for ax in self.fig.axes}
        self._extents.update(extents)

    def _on_draw(self, event) -> None:
        """After every full draw: save the picture of the static part, then draw the animated artists. The areas
        of axes with a content key and a state seen before are known already; the other parts are measured
        (a partial redraw needs them) after the frame has gone out when a loop runs (a kernel: the measure
        waits for the kernel to be idle), else at once."""
        canvas = self.fig.canvas
        if not self._animated or canvas.is_saving():
            return
        areas, unmeasured = {}, []
        for part in self._parts():
            kept = self._kept.get(self._kept_key(part)) if isinstance(part, Axes) else None
            if kept is None:
                unmeasured.append(part)
            else:
                areas[part] = kept[0]
        self._extents = {}
        self._save(areas)
        self._unmeasured, self._static = unmeasured, None
        loop = running_loop() if unmeasured else None
        if loop is None:
            self._measure(event.renderer)
        else:
            self._static = np.asarray(canvas.buffer_rgba()).copy()
            loop.call_soon(self._measure_later)
        self._draw_animated()
        self.fig.stale = False  # a tight box applies the axes' aspect, which marks them stale (see _axes_state)

    def _measure(self, renderer=None) -> None:
        """Measure the parts the last full draw left unmeasured, those still as drawn (an axes whose state
        changed since stays unknown: its next change draws the whole figure), then keep the pictures of axes
        with a content key."""
        if not self._unmeasured:
            return
        fig, canvas = self.fig, self.fig.canvas
        parts, self._unmeasured = self._unmeasured, []
        if self._background is None or self._size != tuple(fig.bbox.bounds):
            self._static = None
            return
        stale, renderer = fig.stale, renderer or canvas.get_renderer()
        for part in parts:
            if not isinstance(part, Axes) or self._states.get(part) == self._state(part):
                self._extents[part] = self._extent(part, renderer)
        areas = {part: self._extents.get(part) for part in self._parts()}
        self._keep([part for part in areas if isinstance(part, Axes)], areas, self._static)
        self._static = None
        fig.stale = stale  # measuring applies the axes' aspect, which marks them stale (see _axes_state)

    def _measure_later(self) -> None:
        try:
            self._measure()
        except Exception:  # noqa: BLE001 - unmeasured parts only cost a full draw later
            log.exception("measuring the figure's parts failed")
            self._unmeasured, self._static = [], None

    def _draw_animated(self) -> None:
        self._animated = [a for a in self._animated if a.get_figure(root=True) is self.fig]  # drop removed ones
        for artist in sorted(self._animated, key=lambda a: a.get_zorder()):
            if artist.get_visible() and (artist.axes is None or artist.axes.get_visible()):
                self.fig.draw_artist(artist)

    def close(self) -> None:
        plt.close(self.fig)
