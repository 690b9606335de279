"""Lecture mode: the course's widgets in named, lecture-ready presets, with large fonts.

The presets live in a data file, `widgets/lecture_presets.json`, that instructors extend without
touching code. Its shape:

    {"demos": {
        "<demo name>": {
            "title": "The optimizer race",            # shown above the widget
            "lesson": "07_optimizers",                # where the widget is taught
            "factory": "widgets.optimizer_race:optimizer_race",   # module:function
            "scale": 1.3,                             # optional: figure enlargement (1 to 3)
            "presets": {"<preset name>": {<keyword arguments of the factory>}, ...}}}}

A preset is nothing but a factory call: `build("optimizer_race", "saddle: momentum overshoots")` is
`optimizer_race(**kwargs)` with that preset's keyword arguments, then enlarged for a projector:
every figure the widget holds is redrawn at `scale` times its resolution (its text grows with it)
and the controls are zoomed through CSS. `demo(name)` wraps this in a `LectureDemo`: a title, a
menu of the demo's presets and the widget itself, rebuilt when another preset is picked.
"""
from __future__ import annotations

import html
import importlib
import json
import numbers
from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from widgets._figure import FigureView
from widgets._view import WidgetView

__all__ = ["PRESETS_FILE", "DemoSpec", "load_presets", "factory", "build", "enlarge", "LectureDemo", "demo"]

PRESETS_FILE = Path(__file__).with_name("lecture_presets.json")
DEFAULT_SCALE = 1.3
MAX_SCALE = 3.0
CONTROL_ZOOM = 1.3  # controls (sliders, menus, buttons, text) are drawn this much larger

# Every control is zoomed as a whole (its label, track and fixed widths together, so nothing gets
# truncated); figures are not zoomed but redrawn at a higher dpi (`enlarge`), so they stay sharp.
_CSS = """<style>
.cnnlab-demo .widget-inline-hbox, .cnnlab-demo .widget-toggle-buttons, .cnnlab-demo .widget-button,
.cnnlab-demo .widget-html, .cnnlab-demo .widget-play {{ zoom: {zoom}; }}
.cnnlab-demo .cnnlab-demo-title {{ font-size: 20px; font-weight: 600; margin: 4px 12px 4px 0; }}
</style>"""


class DemoSpec:
    """One entry of the presets file: `name`, `title`, `lesson`, `factory` ("module:function"), `scale`
    and `presets` (preset name -> keyword arguments, in the file's order; the first is the default)."""

    def __init__(self, name: str, entry: dict, source: str = "presets"):
        where = f"{source}: demo {name!r}"
        if not isinstance(entry, dict):
            raise TypeError(f"{where} must be an object, got {type(entry).__name__}")
        missing = {"title", "lesson", "factory", "presets"} - set(entry)
        if missing:
            raise ValueError(f"{where} lacks the keys {sorted(missing)}; it has {sorted(entry)}")
        unknown = set(entry) - {"title", "lesson", "factory", "presets", "scale"}
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
        self.name, self.title, self.lesson = name, str(entry["title"]), str(entry["lesson"])
        self.factory, self.scale, self.presets = factory_path, float(scale), dict(presets)

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


def enlarge(obj, scale: float) -> int:
    """Redraw every figure of a widget object at `scale` times its dpi (text, lines and canvas grow
    together, the layout stays as designed); returns how many figures were enlarged.

    The dpi is changed the way matplotlib itself does for a high-dpi screen (`_set_dpi` without
    forwarding a resize to the canvas, `_original_dpi` scaled too so that a later screen-ratio change
    keeps the enlargement). Forwarding the resize would send ipympl's browser model a new size before
    it holds any image, and its size handler then draws a broken image (a console error).
    """
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not 1.0 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be a number in [1, {MAX_SCALE}], got {scale!r}")
    figures = _figures(obj)
    for fig in figures:
        original = getattr(fig, "_original_dpi", fig.dpi)
        fig._set_dpi(fig.dpi * scale, forward=False)
        fig._original_dpi = original * scale
    for value in vars(obj).values():
        if isinstance(value, FigureView):
            value.refresh()  # the PNG view (no ipympl) is re-rendered at the new size
    for fig in figures:
        fig.canvas.draw_idle()
    return len(figures)


def build(name: str, preset: str | None = None, presets=None):
    """Call the demo's factory with the preset's keyword arguments (default: its first preset) and
    enlarge the result for a projector. Returns the widget object the factory returns."""
    spec = _spec(name, presets)
    preset = spec.default if preset is None else preset
    if preset not in spec.presets:
        raise ValueError(f"demo {name!r} has no preset {preset!r}; choose one of {list(spec.presets)}")
    obj = factory(spec)(**spec.presets[preset])
    enlarge(obj, spec.scale)
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
