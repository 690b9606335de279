"""Lecture mode: the course's widgets in named, lecture-ready presets, enlarged for a projector.

The presets live in a data file, `widgets/lecture_presets.json`, that instructors extend without
touching code. Its shape:

    {"demos": {
        "<demo name>": {
            "title": "The optimizer race",            # shown above the widget
            "lesson": "07_optimizers",                # where the widget is taught
            "factory": "widgets.optimizer_race:optimizer_race",   # module:function
            "scale": 1.5,                             # optional: figure enlargement (1 to 3)
            "max_width": 1240,                        # optional: widest figure in px (default MAX_FIGURE_WIDTH_PX)
            "presets": {"<preset name>": {<keyword arguments of the factory>}, ...}}}}

A preset is nothing but a factory call: `build("optimizer_race", "saddle: momentum overshoots")` is
`optimizer_race(**kwargs)` with that preset's keyword arguments, then enlarged for a projector
(`enlarge`) and its controls zoomed through CSS. `demo(name)` wraps this in a `LectureDemo`: a title, a
menu of the demo's presets and the widget itself, rebuilt when another preset is picked.

The projector rule. A demo is shown by Voila on a 1920x1080 projector, and must read from the back rows:

- Every text of its figures is at least MIN_TEXT_PX = 18 screen pixels tall (its font size: points x dpi
  / 72). Where that comes from: a 7.5-inch slide shown on 1080 lines has 2 px per point, and the usual slide
  rules ask 24 pt (48 px) for body text and 18 pt (36 px) at the least. Figures cannot meet those: a tick
  label is not body text, and at 36 px a widget's tick labels no longer fit a 1920 px row. The audio-visual
  sizing standard (AVIXA DISCAS V202.01, "basic decision making") lets a viewer read an element from at most
  200 times its height; DejaVu Sans' capitals are 0.73 of the font size, so 18 px text (capitals 13 px,
  1.2 % of the image height) reads from 2.4 image heights, and the rule of thumb "4 mm of letter height per
  metre of distance" gives 3 image heights. The laptop figures (7-8 pt at 72-100 dpi: 7-11 px) read from
  about one. 18 px is the largest whole floor that every preset of every demo meets with its figures' layout
  kept: at 20 px the backprop stepper's colour-bar labels already run into the text below them. A room
  whose back row sits further than 2.4 screen heights needs a larger screen, not smaller text.
- Every drawn line (plot lines, grid and 3-D axis lines, contours) is at least MIN_LINE_PX = 2 px wide: a
  projector's optics blur a single pixel into the background, and a 1-px line all but disappears.
- Every figure is at most MAX_FIGURE_WIDTH_PX = 1865 px wide: Voila's output column at 1920x1080 measures
  1890 px (Voila 0.5.13's lab template, 15 px margins each side, in Chromium, whose scrollbars overlay the
  page), less a classic 17 px scrollbar and the canvas' 4 px frame on each side. A demo that puts its
  figure beside its controls gives the width left beside them (`max_width` in the presets file: the
  optimizer race's controls take 593 px at lecture zoom, so its figure gets 1240). A figure is at most MAX_FIGURE_HEIGHT_PX = 1000 px tall, so that it can
  be seen whole on 1080 lines.
- Nothing is cut: every text lies inside its figure, and no two texts overlap.

`enlarge` meets the rule: it redraws each figure at its designed size (the dpi it was made for, before
`new_figure` capped it for a laptop's column) times the demo's scale, capped by the width and height above,
then raises every text smaller than MIN_TEXT_PX and every line thinner than MIN_LINE_PX to those sizes (and
again before every refresh: widgets make new texts as they update), and moves the axes inwards as far as
the larger text needs. The laptop sizes (JupyterLab, 1366x768) are untouched: only lecture mode calls
`enlarge`.
tests/test_lecture_projector.py checks the rule for every preset of every demo, without a browser.
"""
from __future__ import annotations

import html
import importlib
import json
import numbers
import weakref
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Text

from widgets._figure import FigureView
from widgets._new_figure import design_dpi
from widgets._view import WidgetView

__all__ = ["PRESETS_FILE", "MIN_TEXT_PX", "MIN_LINE_PX", "MAX_FIGURE_WIDTH_PX", "MAX_FIGURE_HEIGHT_PX", "DemoSpec",
           "load_presets", "factory", "build", "enlarge", "ProjectorFloor", "fit_inside", "LectureDemo", "demo"]

PRESETS_FILE = Path(__file__).with_name("lecture_presets.json")
DEFAULT_SCALE = 1.3
MAX_SCALE = 3.0
# The projector rule (see the module's docstring), in screen pixels at 1920x1080.
MIN_TEXT_PX = 18.0
MIN_LINE_PX = 2.0
MAX_FIGURE_WIDTH_PX = 1865  # Voila's column at 1920 (1890 px) less a classic scrollbar and the canvas frame
MAX_FIGURE_HEIGHT_PX = 1000  # a 1080-line screen less the browser's margins
CONTROL_ZOOM = 1.3  # controls (sliders, menus, buttons, text) are drawn this much larger

# Every control is zoomed as a whole (its label, track and fixed widths together, so nothing gets
# truncated); figures are not zoomed but redrawn at a higher dpi (`enlarge`), so they stay sharp.
_CSS = """<style>
.cnnlab-demo .widget-inline-hbox, .cnnlab-demo .widget-toggle-buttons, .cnnlab-demo .widget-button,
.cnnlab-demo .widget-html, .cnnlab-demo .widget-play {{ zoom: {zoom}; }}
.cnnlab-demo .cnnlab-demo-title {{ font-size: 20px; font-weight: 600; margin: 4px 12px 4px 0; }}
</style>"""


class DemoSpec:
    """One entry of the presets file: `name`, `title`, `lesson`, `factory` ("module:function"), `scale`,
    `max_width` (px) and `presets` (preset name -> keyword arguments, in the file's order; the first is the
    default)."""

    def __init__(self, name: str, entry: dict, source: str = "presets"):
        where = f"{source}: demo {name!r}"
        if not isinstance(entry, dict):
            raise TypeError(f"{where} must be an object, got {type(entry).__name__}")
        missing = {"title", "lesson", "factory", "presets"} - set(entry)
        if missing:
            raise ValueError(f"{where} lacks the keys {sorted(missing)}; it has {sorted(entry)}")
        unknown = set(entry) - {"title", "lesson", "factory", "presets", "scale", "max_width"}
        if unknown:
            raise ValueError(f"{where} has unknown keys {sorted(unknown)}")
        factory_path = entry["factory"]
        if not isinstance(factory_path, str) or factory_path.count(":") != 1:
            raise ValueError(f"{where}: factory must be 'module:function', got {factory_path!r}")
        presets = entry["presets"]
        if not isinstance(presets, dict) or not presets:
            raise ValueError(f"{where}: presets must be a non-empty object of name -> arguments, got {presets!r}")
        for preset, kwargs in presets.items():
            if not isinstance(kwargs, dict):
                raise TypeError(f"{where}: preset {preset!r} must be an object of keyword arguments, "
                                f"got {type(kwargs).__name__}")
        scale = entry.get("scale", DEFAULT_SCALE)
        if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 1.0 <= scale <= MAX_SCALE:
            raise ValueError(f"{where}: scale must be a number in [1, {MAX_SCALE}], got {scale!r}")
        max_width = entry.get("max_width", MAX_FIGURE_WIDTH_PX)
        if isinstance(max_width, bool) or not isinstance(max_width, numbers.Real) \
                or not 300 <= max_width <= MAX_FIGURE_WIDTH_PX:
            raise ValueError(f"{where}: max_width must be a number of pixels in [300, {MAX_FIGURE_WIDTH_PX}], "
                             f"got {max_width!r}")
        self.name, self.title, self.lesson = name, str(entry["title"]), str(entry["lesson"])
        self.factory, self.scale, self.presets = factory_path, float(scale), dict(presets)
        self.max_width = float(max_width)

    @property
    def default(self) -> str:
        return next(iter(self.presets))

    def __repr__(self) -> str:
        return f"DemoSpec({self.name!r}, factory={self.factory!r}, presets={list(self.presets)})"


def load_presets(path=None) -> dict[str, DemoSpec]:
    """Read and check the presets file (default `PRESETS_FILE`); returns demo name -> DemoSpec."""
    path = Path(PRESETS_FILE if path is None else path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("demos"), dict) or not data["demos"]:
        raise ValueError(f"{path} must hold an object with a non-empty 'demos' object, got keys "
                         f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    return {name: DemoSpec(name, entry, source=path.name) for name, entry in data["demos"].items()}


def factory(spec: DemoSpec):
    """The widget factory a DemoSpec names ("module:function"), imported."""
    module_name, function_name = spec.factory.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ValueError(f"demo {spec.name!r}: cannot import module {module_name!r} ({error})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"demo {spec.name!r}: {module_name} has no function {function_name!r}")
    return function


def _spec(name: str, presets) -> DemoSpec:
    specs = load_presets() if presets is None else presets
    if name not in specs:
        raise ValueError(f"unknown demo {name!r}; the presets file has {sorted(specs)}")
    return specs[name]


def _figures(obj) -> list:
    """The figures a widget object holds as attributes (directly or through a FigureView), each once."""
    found = []
    for value in vars(obj).values():
        fig = value.fig if isinstance(value, FigureView) else value
        if isinstance(fig, Figure) and all(fig is not f for f in found):
            found.append(fig)
    return found


def enlarge(obj, scale: float, max_width: float = MAX_FIGURE_WIDTH_PX) -> int:
    """Redraw every figure of a widget object for a projector, to the projector rule (module docstring).

    Inputs:
    - obj: a widget object; its figures are its attributes (Figures, or FigureViews).
    - scale: enlargement of each figure over its designed size (`design_dpi`), 1 to MAX_SCALE.
    - max_width: the widest a figure may be, in pixels (at most MAX_FIGURE_WIDTH_PX).
    Returns how many figures were enlarged.

    A figure's layout in inches stays as designed: its dpi becomes design dpi x scale, lowered to fit
    max_width x MAX_FIGURE_HEIGHT_PX, so text, lines and canvas grow together. Then a `ProjectorFloor` raises
    the texts and lines still under MIN_TEXT_PX and MIN_LINE_PX, now and before every later refresh of the
    figure's FigureView (a widget makes new titles, texts and axes as it updates), and the axes are moved
    inwards as far as the larger text needs (`fit_inside`). The dpi is changed the way matplotlib itself
    does for a high-dpi screen (`_set_dpi` without forwarding a resize to the canvas, `_original_dpi` scaled
    too so that a later screen-ratio change keeps the enlargement). Forwarding the resize would send ipympl's
    browser model a new size before it holds any image, and its size handler then draws a broken image.
    """
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 1.0 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be a number in [1, {MAX_SCALE}], got {scale!r}")
    if isinstance(max_width, bool) or not isinstance(max_width, numbers.Real) \
            or not 0 < max_width <= MAX_FIGURE_WIDTH_PX:
        raise ValueError(f"max_width must be a number of pixels in (0, {MAX_FIGURE_WIDTH_PX}], got {max_width!r}")
    figures = _figures(obj)
    floors = {}
    for fig in figures:
        width, height = fig.get_size_inches()
        dpi = min(design_dpi(fig) * scale, max_width / width, MAX_FIGURE_HEIGHT_PX / height)
        fig._original_dpi = fig._original_dpi * dpi / fig.dpi
        fig._set_dpi(dpi, forward=False)
        floors[fig] = ProjectorFloor(dpi)
        floors[fig](fig)
        fit_inside(fig)
    for value in vars(obj).values():
        if isinstance(value, FigureView):
            value.before_refresh.append(floors[value.fig])
            value.invalidate()  # fonts and line widths changed: no saved picture holds them
            value.refresh()  # the PNG view (no ipympl) is re-rendered at the new size
    for fig in figures:
        fig.canvas.draw_idle()
    return len(figures)


class ProjectorFloor:
    """`floor(fig) -> bool`: raise every text of `fig` under MIN_TEXT_PX and every drawn line (Line2D with a
    line style, line collections, contour lines) under MIN_LINE_PX, at `dpi`; True when anything changed.

    Tick labels are raised through `tick_params`, so that ticks made later (new limits) get the same size;
    each axes is looked at once, which keeps the check cheap enough to run before every refresh.
    """

    def __init__(self, dpi: float):
        self.text_pt, self.line_pt = MIN_TEXT_PX * 72 / dpi, MIN_LINE_PX * 72 / dpi
        self._axes = weakref.WeakSet()  # the axes whose ticks and grid are set already

    def __call__(self, fig) -> bool:
        changed = False
        for ax in fig.axes:
            if ax not in self._axes:
                self._axes.add(ax)
                changed |= self._raise_ticks(ax)
        for artist in fig.findobj(lambda a: isinstance(a, (Text, Line2D)) or _is_line_collection(a)):  # one walk
            if isinstance(artist, Text):
                if artist.get_fontsize() < self.text_pt:
                    artist.set_fontsize(self.text_pt)
                    changed = True
            elif isinstance(artist, Line2D):
                if artist.get_linestyle() not in ("None", "", " ") and artist.get_linewidth() < self.line_pt:
                    artist.set_linewidth(self.line_pt)
                    changed = True
            else:
                widths = np.asarray(artist.get_linewidths(), dtype=float)
                if widths.size and widths.min() < self.line_pt:
                    artist.set_linewidths(np.maximum(widths, self.line_pt))
                    changed = True
        return changed

    def _raise_ticks(self, ax) -> bool:
        changed = False
        for name in "xyz":
            axis = getattr(ax, f"{name}axis", None)
            if axis is None:
                continue
            for which in ("major", "minor"):
                sizes = [label.get_fontsize() for label in axis.get_ticklabels(which=which)]
                if sizes and min(sizes) < self.text_pt:
                    ax.tick_params(axis=name, which=which, labelsize=self.text_pt)
                    changed = True
            grid = [line.get_linewidth() for line in axis.get_gridlines()]
            if grid and min(grid) < self.line_pt:
                ax.tick_params(axis=name, which="both", grid_linewidth=self.line_pt)
                changed = True
            # a 3-D axis styles its grid and tick lines from here on every draw (ticks: {major?: width}), and
            # its edge line (not one of its children) from here when made
            style = getattr(axis, "_axinfo", {})
            for part in ("grid", "axisline", "tick"):
                if part in style:
                    old = style[part]["linewidth"]
                    new = ({key: max(w, self.line_pt) for key, w in old.items()} if isinstance(old, dict)
                           else max(old, self.line_pt))
                    changed |= new != old
                    style[part]["linewidth"] = new
            edge = getattr(axis, "line", None)
            if isinstance(edge, Line2D) and edge.get_linewidth() < self.line_pt:
                edge.set_linewidth(self.line_pt)
                changed = True
        return changed


def _is_line_collection(artist) -> bool:
    """Whether an artist draws lines as a collection: a LineCollection, or contour lines (not filled)."""
    return isinstance(artist, LineCollection) or (isinstance(artist, ContourSet) and not artist.filled)


def fit_inside(fig, margin: float = 2.0, rounds: int = 3) -> None:
    """Move and shrink the axes of `fig` together (one affine map: the design's arrangement kept) until every
    axes with its labels, ticks and title lies `margin` px inside the figure: larger text must not be cut."""
    width, height = fig.bbox.width, fig.bbox.height
    for _ in range(rounds):
        renderer = fig.canvas.get_renderer()
        boxes = [box for ax in fig.axes if ax.get_visible() and (box := ax.get_tightbbox(renderer)) is not None]
        if not boxes:
            return
        left = max(0.0, margin - min(b.x0 for b in boxes))
        bottom = max(0.0, margin - min(b.y0 for b in boxes))
        right = max(0.0, max(b.x1 for b in boxes) - width + margin)
        top = max(0.0, max(b.y1 for b in boxes) - height + margin)
        if left + bottom + right + top < 0.5:
            return
        sx, sy = 1 - (left + right) / width, 1 - (bottom + top) / height
        for ax in fig.axes:
            x0, y0, w, h = ax.get_position(original=True).bounds
            ax.set_position([left / width + x0 * sx, bottom / height + y0 * sy, w * sx, h * sy])


def build(name: str, preset: str | None = None, presets=None):
    """Call the demo's factory with the preset's keyword arguments (default: its first preset) and
    enlarge the result for a projector. Returns the widget object the factory returns."""
    spec = _spec(name, presets)
    preset = spec.default if preset is None else preset
    if preset not in spec.presets:
        raise ValueError(f"demo {name!r} has no preset {preset!r}; choose one of {list(spec.presets)}")
    obj = factory(spec)(**spec.presets[preset])
    enlarge(obj, spec.scale, spec.max_width)
    return obj


def _dispose(obj) -> None:
    """Stop a widget's background work and free its figures before it is replaced."""
    stop = getattr(obj, "stop", None)
    if callable(stop):
        stop()
    for fig in _figures(obj):
        plt.close(fig)


class LectureDemo(WidgetView):
    """A demo on a projector: title, preset menu (`.picker`) and the widget built from the preset.

    `.current` is the widget object of the current preset, `.preset` its name; `.widget` the layout,
    which carries the CSS classes `cnnlab-demo` and `cnnlab-demo-<name>` (browser tests find it so).
    Picking another preset in the menu, or `select(preset)`, rebuilds the widget; a preset that fails
    to build leaves the previous widget in place and says why on the status line (`.status`).
    """

    def __init__(self, spec: DemoSpec, preset: str | None = None):
        self.spec = spec
        self.picker = W.Dropdown(options=list(spec.presets), value=preset or spec.default,
                                 description="preset", layout=W.Layout(width="auto"))
        self.preset = self.picker.value
        self.current = build(spec.name, self.preset, {spec.name: spec})
        self.holder = W.Box([self._view(self.current)])
        style = W.HTML(_CSS.format(zoom=CONTROL_ZOOM))
        title = W.HTML(f'<div class="cnnlab-demo-title">{html.escape(spec.title)}</div>')
        super().__init__()
        self.widget = W.VBox([style, W.HBox([title, self.picker]), self.holder, self.status.widget])
        self.widget.add_class("cnnlab-demo")
        self.widget.add_class(f"cnnlab-demo-{spec.name}")
        self.picker.observe(self.guard(self._on_pick), names="value")

    @staticmethod
    def _view(obj):
        return obj.widget if hasattr(obj, "widget") else obj

    def select(self, preset: str) -> None:
        """Show the demo in another preset (the same as picking it in the menu)."""
        if preset not in self.spec.presets:
            raise ValueError(f"demo {self.spec.name!r} has no preset {preset!r}; choose one of "
                             f"{list(self.spec.presets)}")
        self.picker.value = preset

    def _on_pick(self, change) -> None:
        """Build the new preset first: if that fails, the old widget stays and the status says why."""
        new = build(self.spec.name, change["new"], {self.spec.name: self.spec})
        old, self.current, self.preset = self.current, new, change["new"]
        self.holder.children = [self._view(new)]
        self.status.clear()
        _dispose(old)


def demo(name: str, preset: str | None = None, presets=None) -> LectureDemo:
    """The lecture demo `name` of the presets file (or of `presets`, a dict from `load_presets`),
    showing `preset` (default: the demo's first preset)."""
    spec = _spec(name, presets)
    if preset is not None and preset not in spec.presets:
        raise ValueError(f"demo {name!r} has no preset {preset!r}; choose one of {list(spec.presets)}")
    return LectureDemo(spec, preset)
