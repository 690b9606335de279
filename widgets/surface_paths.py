"""`surface_paths()`: a static figure of optimizer runs on a 2-D surface, for the lessons' one-off demos.

Left: the surface's contours with each run's path (start ★, end ●, a ✕ where a run diverged).
Right: f against the step. The live, interactive version of this picture is `widgets.optimizer_race`.
"""
from __future__ import annotations

import numpy as np

from cnnlab.surfaces import Surface, Trajectory
from widgets._new_figure import new_figure
from widgets._optimizers import LABELS, color, linestyle

__all__ = ["surface_paths"]

_CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _optimizer_color(label) -> str | None:
    words = str(label).split()
    return color(words[0]) if words and words[0] in LABELS else None


def _colors(labels) -> list[str]:
    """The optimizer's colour for a label that starts with its name (the first such label only); the
    other labels get cycle colours that no optimizer label in this figure uses."""
    reserved = {_optimizer_color(label) for label in labels}
    free = iter([c for c in _CYCLE if c not in reserved] + list(_CYCLE))
    chosen: list[str] = []
    for label in labels:
        own = _optimizer_color(label)
        chosen.append(own if own is not None and own not in chosen else next(free))
    return chosen


def surface_paths(surface: Surface, runs: dict, title: str | None = None, yscale: str = "linear",
                  bounds=None, figsize=(9.5, 3.6)):
    """Draw `runs` (label -> cnnlab.surfaces.Trajectory, or an array of points (k, 2)) on `surface`.

    A label that starts with an optimizer's label ("Adam", "SGD lr=0.1") gets that optimizer's colour and line
    style, as in the races (the first such label; the others get solid lines in colours no label uses).
    yscale: "linear", "log" (f > 0, e.g. a bowl) or "symlog" (f of any sign, e.g. a saddle).
    bounds: ((x0, x1), (y0, y1)), default the surface's own.
    Returns the matplotlib Figure (not shown: display it by ending a cell with it).
    """
    if not isinstance(surface, Surface):
        raise TypeError(f"surface must be a cnnlab.surfaces.Surface, got {type(surface).__name__}")
    if not runs:
        raise ValueError("runs is empty: give at least one label -> trajectory")
    if yscale not in ("linear", "log", "symlog"):
        raise ValueError(f"yscale must be 'linear', 'log' or 'symlog', got {yscale!r}")
    paths = {}
    for label, run in runs.items():
        points = run.points if isinstance(run, Trajectory) else np.asarray(run, dtype=float)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) == 0:
            raise ValueError(f"run {label!r} must be a Trajectory or points of shape (k, 2), got {points.shape}")
        paths[label] = points
    (x0, x1), (y0, y1) = surface.bounds if bounds is None else bounds
    fig, (ax_map, ax_f) = new_figure(1, 2, figsize=figsize, gridspec_kw={"width_ratios": (1, 1.25)})
    xs, ys = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    z = surface(np.stack([xs, ys], axis=-1))
    ax_map.contourf(xs, ys, np.clip(z, *np.percentile(z, [1, 99])), levels=20, cmap="Greys", alpha=0.5)
    for m in surface.minima:
        ax_map.plot(*m, "w*", ms=11, mec="k")
    for (label, run), line_color in zip(runs.items(), _colors(list(runs))):
        diverged = isinstance(run, Trajectory) and run.diverged
        points = paths[label]
        values = surface(points)
        own = _optimizer_color(label) == line_color  # drawn as the races draw that optimizer
        style = linestyle(str(label).split()[0]) if own else "-"
        ax_map.plot(points[:, 0], points[:, 1], style, color=line_color, lw=1.4, label=label)
        ax_map.plot(*points[0], "*", color="k", ms=9)
        ax_map.plot(*points[-1], "x" if diverged else "o", color=line_color, ms=8 if diverged else 5, mew=2)
        ax_f.plot(np.arange(len(values)), values, style, color=line_color, lw=1.4, label=label)
    ax_map.set_xlim(x0, x1), ax_map.set_ylim(y0, y1)
    ax_map.set_xlabel("x"), ax_map.set_ylabel("y")
    ax_map.set_title(surface.name, fontsize=10)
    ax_f.set_yscale(yscale)
    ax_f.set_xlabel("step"), ax_f.set_ylabel("f(x, y)")
    ax_f.legend(fontsize=8)
    ax_f.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
