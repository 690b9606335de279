"""The optimizers as the widgets show them: by label ("RMSprop"), in the colour every widget gives them.

What each optimizer is (class, hyper-parameters, default learning rates) lives in one place,
`cnnlab.optim.OPTIMIZERS`; this module adds only what is the visualiser's own: a colour and a line style
per optimizer, `to_labels(names)`, which turns what a user typed (names or labels, any case) into the labels the races
key their runs by, the races' two uses of the registry (their learning rates and their optimizers) and the
races' runner rows (a tick box and a learning-rate slider per optimizer).
"""
from __future__ import annotations

import math
import numbers

import ipywidgets as W

from cnnlab.optim import OPTIMIZERS, optimizer_spec
from widgets._controls import log_spanning

__all__ = ["LABELS", "COLORS", "LINESTYLES", "color", "linestyle", "to_labels", "race_lrs", "race_optimizer", "runner_controls"]

LABELS = tuple(s.label for s in OPTIMIZERS.values())  # the races' runners, in the registry's order

# registry name -> colour (matplotlib's tab10 order, so SGD is the default first colour "C0"; tab10's grey,
# C7, would vanish on the grey contour maps, so AdamW takes C9, cyan)
COLORS = {"sgd": "#1f77b4", "momentum": "#ff7f0e", "nesterov": "#2ca02c", "adagrad": "#d62728",
          "adadelta": "#9467bd", "rmsprop": "#8c564b", "adam": "#e377c2", "adamw": "#17becf"}
# registry name -> matplotlib line style, "-" unless listed: AdamW's path often lies on Adam's (on a surface
# they differ only by the small decay), and a dashed line lets Adam's show through
LINESTYLES = {"adamw": "--"}


def color(name) -> str:
    """The colour of the optimizer called `name` (a name or label, any case)."""
    return COLORS[optimizer_spec(name).name]


def linestyle(name) -> str:
    """The line style of the optimizer called `name` (a name or label, any case) in the races' plots."""
    return LINESTYLES.get(optimizer_spec(name).name, "-")


def to_labels(names, what: str = "unknown optimizers") -> list[str]:
    """The labels of `names` (names or labels, any case), in the registry's order.

    ValueError "<what> [...]; choose from [...]" listing every name that is not an optimizer's.
    """
    names = [names] if isinstance(names, str) else list(names)
    unknown = sorted(str(n) for n in names if not (isinstance(n, str) and n.lower() in OPTIMIZERS))
    if unknown:
        raise ValueError(f"{what} {unknown}; choose from {list(LABELS)}")
    wanted = {n.lower() for n in names}
    return [s.label for s in OPTIMIZERS.values() if s.name in wanted]


def race_lrs(which: str, overrides=None) -> dict:
    """label -> learning rate: every optimizer's default `which` ("lr_surface" or "lr_cnn"), then `overrides`
    (names or labels -> lr; ValueError "lrs names unknown optimizers [...]" for a name that is none, and
    for a rate that is not a positive finite number: a race's log slider cannot show it)."""
    overrides = dict(overrides or {})
    to_labels(overrides, "lrs names unknown optimizers")
    bad = {name: lr for name, lr in overrides.items()
           if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not (math.isfinite(lr) and lr > 0)}
    if bad:
        raise ValueError(f"learning rates must be positive numbers, got {bad}")
    lrs = {s.label: getattr(s, which) for s in OPTIMIZERS.values()}
    lrs.update({optimizer_spec(name).label: lr for name, lr in overrides.items()})
    return lrs


def race_optimizer(name, params, lr: float, momentum: float):
    """The optimizer `name` on `params` at `lr`; the race's `momentum` reaches the optimizers that use one."""
    spec = optimizer_spec(name)
    return spec.build(params, lr, **({"momentum": momentum} if spec.uses_momentum else {}))


def runner_controls(enabled, lrs: dict, exponents: tuple[int, int], step: float):
    """A race's runners as controls: per label of LABELS a colour swatch, a tick box and a learning-rate slider.

    Inputs: enabled, the labels ticked; lrs, label -> learning rate; exponents, (low, high) of the sliders'
    range 10**low .. 10**high, widened to hold every rate of `lrs` (the sliders show the model's rates, never
    clamp them); step, the sliders' step in exponent.
    Returns (enable, lr, rows): label -> Checkbox, label -> FloatLogSlider, one HBox per label.
    """
    low, high = log_spanning(*exponents, *lrs.values())
    enable, lr, rows = {}, {}, []
    for name in LABELS:
        enable[name] = W.Checkbox(value=name in enabled, description=name, indent=False,
                                  layout=W.Layout(width="100px"))
        lr[name] = W.FloatLogSlider(value=lrs[name], base=10, min=low, max=high, step=step, description="lr",
                                    readout_format=".1e", continuous_update=False, layout=W.Layout(width="300px"),
                                    style={"description_width": "20px"})
        swatch = W.HTML(f'<span style="color:{color(name)};font-size:20px">&#9632;</span>')
        rows.append(W.HBox([swatch, enable[name], lr[name]]))
    return enable, lr, rows
