"""How long every control of every widget makes a student wait: `python -m widgets bench`.

Each widget is built headless (matplotlib's Agg; its figures are shown as PNG images, so a redraw renders
the figure with Agg and encodes it, as ipympl does in the kernel before it sends a frame). Every control
found in the widget's layout is then moved as a student would move it (a slider a few steps, a menu to the
next entry, a checkbox toggled, a button clicked), `repeats` times back and forth, and the time from the
change to the return of the widget's callbacks is recorded: the recompute and the render of every figure
the control touched. Each control is then set back (untimed), so every control is measured from the
widget's own starting settings. A figure with an interactive canvas (ipympl) is drawn (`fig.canvas.draw()`) inside
the measured time too.

A control that starts training (a Train button, a setting that starts a run) or a measurement in the
background (the initialisation explorer's settings not measured before) is measured until it has answered
(status shown, buttons set, the work running in the background); its row's kind is "answer".
The row "<control> -> 1st frame" times it until a figure of the widget was first redrawn (the picture
streaming in), and "<control> -> Stop" the Stop button until the background work has halted.

The whole bench runs inside an asyncio loop, as in a kernel: the learning-rate explorer then trains live
(one chunk at a time on the loop) and the training widgets use their background threads. After every move
the loop runs once, untimed, as a kernel's does between two messages (a figure measures its parts there,
after its frame has gone out; see widgets._figure.FigureView).
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")

import ipywidgets as W  # noqa: E402

from widgets._background import ChunkRunner  # noqa: E402
from widgets._figure import FigureView  # noqa: E402

__all__ = ["WIDGETS", "controls_of", "bench_widget", "run_bench", "format_table"]

_CHOICES = (W.Dropdown, W.ToggleButtons, W.SelectionSlider, W.RadioButtons, W.Select)
_NUMBERS = (W.IntSlider, W.FloatSlider, W.FloatLogSlider, W.BoundedIntText, W.BoundedFloatText)


def _widgets(tiny: bool) -> dict:
    """factory name -> builder of the widget (full size: what the course shows; tiny: for the tests)."""
    import widgets as w

    n = 200 if tiny else 2000
    return {
        "optimizer_race": lambda: w.optimizer_race(steps=30 if tiny else 300),
        "lr_explorer": lambda: w.lr_explorer(n_train=300 if tiny else 2000, n_val=100 if tiny else 500,
                                             epochs=1 if tiny else 3),
        "init_explorer": lambda: w.init_explorer(depth=5 if tiny else 20, batch=32 if tiny else 256),
        "loss_explorer": lambda: w.loss_explorer(),
        "conv_explorer": lambda: w.conv_explorer(),
        "filter_viewer": lambda: w.filter_viewer(),
        "jacobian_viewer": lambda: w.jacobian_viewer(n_images=4 if tiny else 20),
        "backprop_stepper": lambda: w.backprop_stepper(),
        "gradcheck_table": lambda: w.gradcheck_table(),
        "momentum_explorer": lambda: w.momentum_explorer(),
        "step_size_explorer": lambda: w.step_size_explorer(),
        "dataset_gallery": lambda: w.dataset_gallery(),
        "cnn_race": lambda: w.cnn_race(epochs=1, n_train=64 if tiny else 2000, n_val=32 if tiny else 500,
                                       background=True, autostart=False),
        "regularization_explorer": lambda: w.regularization_explorer(n_train=50 if tiny else 500,
                                                                     n_val=50 if tiny else 1000,
                                                                     hidden=16 if tiny else 128, background=True),
        "training_dashboard": lambda: w.training_dashboard(epochs=1, train_size=300 if tiny else None),
    }


WIDGETS = tuple(_widgets(True))


# --- what the bench drives --------------------------------------------------------------------------------
def controls_of(view) -> list[tuple[str, W.Widget]]:
    """(name, control) of every control a student can move in `view.widget`, in layout order. The name is
    the view's attribute holding it (`lr[Adam]` for an entry of a dict attribute), else its description.
    A Play button is left out: in the browser it moves the slider it is linked to, which is measured."""
    names = {}
    for attr, value in vars(view).items():
        if isinstance(value, W.Widget):
            names.setdefault(id(value), attr)
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, W.Widget):
                    names.setdefault(id(item), f"{attr}[{key}]")
    found, stack = [], [view.widget]
    while stack:
        node = stack.pop(0)
        if isinstance(node, W.Box):
            stack[:0] = list(node.children)
        elif isinstance(node, (W.Button, W.Checkbox, W.ToggleButton, *_CHOICES, *_NUMBERS)):
            found.append((names.get(id(node)) or node.description or type(node).__name__, node))
    return found


def _moved(control):
    """The value a student would move `control` to from where it is (None for a button)."""
    if isinstance(control, W.Button):
        return None
    if isinstance(control, (W.Checkbox, W.ToggleButton)):
        return not control.value
    if isinstance(control, _CHOICES):
        options = list(control._options_values)
        index = control.index  # None when the value is a placeholder such as "choose..." (value None)
        if index is None:
            index = options.index(control.value) if control.value in options else -1
        return options[(index + 1) % len(options)]
    if isinstance(control, W.FloatLogSlider):
        exponent = __import__("math").log(control.value, control.base)
        moved = exponent + 5 * control.step
        moved = moved if moved <= control.max else exponent - 5 * control.step
        return control.base ** min(max(moved, control.min), control.max)
    value, step = control.value, control.step or 1
    moved = value + 5 * step if value + 5 * step <= control.max else value - 5 * step
    moved = min(max(moved, control.min), control.max)
    if moved == value:
        moved = control.max if value != control.max else control.min
    return type(value)(moved)


def _runners(view) -> list:
    return [v for v in vars(view).values() if isinstance(v, ChunkRunner)]


def _busy(view) -> bool:
    task = getattr(view, "_task", None)
    return any(r.running for r in _runners(view)) or (task is not None and not task.done())


async def _idle(view, timeout: float = 120.0) -> float:
    """Wait (letting the loop run) until the view's background work has ended; seconds waited."""
    t0 = time.perf_counter()
    while _busy(view) and time.perf_counter() - t0 < timeout:
        await asyncio.sleep(0.002)
    return time.perf_counter() - t0


def _figure_views(view) -> list[FigureView]:
    return [v for v in vars(view).values() if isinstance(v, FigureView)]


def _act(view, control, value) -> None:
    """Move the control (or click it) and render every interactive figure it changed."""
    views = _figure_views(view)
    before = [v.draws for v in views]
    if isinstance(control, W.Button):
        control.click()
    else:
        control.value = value
    for v, n in zip(views, before):
        if v.interactive and v.draws != n:
            v.fig.canvas.draw()


async def _first_frame(view, before, t0, timeout: float = 10.0) -> float:
    """Seconds from t0 until a figure of `view` has been redrawn after a control started work."""
    while time.perf_counter() - t0 < timeout:
        if [v.draws for v in _figure_views(view)] != before:
            break
        await asyncio.sleep(0.001)
    return time.perf_counter() - t0


def _status_text(view) -> str:
    """The status line's text without its markup (what a student reads), shortened."""
    import re

    return re.sub(r"<[^>]+>", "", str(getattr(view.status.widget, "value", "")))[:300]


def _stop_button(view):
    button = getattr(view, "stop_button", None)
    return button if isinstance(button, W.Button) else None


async def bench_widget(view, repeats: int = 5) -> list[dict]:
    """Rows {control, kind, median_ms, worst_ms, n, errors} for every control of `view` (see the module docstring)."""
    rows = []
    await _idle(view)
    for name, control in controls_of(view):
        if control.disabled:
            continue
        times, stops, frames, kind, errors, message = [], [], [], "redraw", 0, ""
        start = None if isinstance(control, W.Button) else control.value
        moved = _moved(control)
        for _ in range(repeats):
            value = moved if isinstance(control, W.Button) or control.value == start else start
            before = [v.draws for v in _figure_views(view)]
            t0 = time.perf_counter()
            _act(view, control, value)
            times.append(time.perf_counter() - t0)
            await asyncio.sleep(0)  # untimed: the loop runs what the move left for it, as between two messages
            if view.status.kind == "error":
                errors += 1
                message = message or _status_text(view)
            if _busy(view):
                kind = "answer"
                frames.append(await _first_frame(view, before, t0))
                stop = _stop_button(view)
                if stop is not None and not stop.disabled:
                    await asyncio.sleep(0.05)  # let the run get going
                    t0 = time.perf_counter()
                    stop.click()
                    await _idle(view)
                    stops.append(time.perf_counter() - t0)
            await _idle(view)
        if start is not None and control.value != start:  # back where it was, untimed: the next control
            _act(view, control, start)                    # is measured from the widget's own settings
            if _busy(view) and _stop_button(view) is not None:
                _stop_button(view).click()
            await _idle(view)
        rows.append({**_row(name, kind, times), "errors": errors, **({"error": message} if message else {})})
        if frames:
            rows.append(_row(f"{name} -> 1st frame", "frame", frames))
        if stops:
            rows.append(_row(f"{name} -> Stop", "halt", stops))
    return rows


def _row(control: str, kind: str, seconds: list[float]) -> dict:
    return {"control": control, "kind": kind, "median_ms": 1000 * statistics.median(seconds),
            "worst_ms": 1000 * max(seconds), "n": len(seconds)}


def run_bench(repeats: int = 5, only=None, tiny: bool = False) -> dict:
    """{"load_average": (1, 5, 15 min) before and after, "widgets": {name: {"build_ms", "rows"}}}."""
    builders = _widgets(tiny)
    names = list(builders) if only is None else list(only)
    unknown = [n for n in names if n not in builders]
    if unknown:
        raise ValueError(f"unknown widget(s) {unknown}; choose from {list(builders)}")

    async def main():
        import matplotlib.pyplot as plt

        out = {}
        for name in names:
            t0 = time.perf_counter()
            view = builders[name]()
            build = time.perf_counter() - t0
            rows = await bench_widget(view, repeats)
            for runner in _runners(view):
                runner.stop()
            await _idle(view)
            plt.close("all")
            out[name] = {"build_ms": 1000 * build, "rows": rows}
        return out

    load = os.getloadavg()
    result = asyncio.run(main())
    return {"load_average": {"before": load, "after": os.getloadavg()}, "cpus": os.cpu_count(), "widgets": result}


def format_table(result: dict) -> str:
    lines = [f"{'widget':24s} {'control':30s} {'kind':7s} {'median ms':>10s} {'worst ms':>9s}"]
    failed = []
    for name, entry in result["widgets"].items():
        for row in entry["rows"]:
            lines.append(f"{name:24s} {row['control'][:30]:30s} {row['kind']:7s} {row['median_ms']:10.1f} "
                         f"{row['worst_ms']:9.1f}")
            if row.get("errors"):
                failed.append(f"{name}.{row['control']}")
    load = result["load_average"]
    lines.append("load average (1, 5, 15 min): before " + ", ".join(f"{x:.2f}" for x in load["before"])
                 + "; after " + ", ".join(f"{x:.2f}" for x in load["after"]) + f"; {result['cpus']} CPUs")
    if failed:
        lines.append("controls that showed an error on the status line: " + ", ".join(failed))
    return "\n".join(lines)


def main(repeats: int = 5, only=None, as_json: bool = False, tiny: bool = False) -> None:
    result = run_bench(repeats, only, tiny)
    print(json.dumps(result, indent=1) if as_json else format_table(result))
