"""`gradcheck_table()`: the per-layer gradient check of a small network, as a readable table.

Bouvrie (section 4.4) insists on comparing a hand-written backward pass with centred finite
differences before trusting it. `cnnlab.gradcheck.gradcheck_network` does that layer by layer in
float64; this widget shows its report as a coloured HTML table (layer, tensor, shape, largest
relative error, pass or fail), for a menu of example networks, two of which carry a deliberate bug
in one backward pass, and one whose failure is a false alarm (a tie in max pooling).

A float32/float64 toggle shows *why* checks are done in float64: in float32 the rounding error of
f(w + eps) - f(w - eps), about 1e-7 |f| / eps, is so large that correct layers fail the same
tolerance as the buggy one. cnnlab refuses to gradient-check in float32 (on purpose), so the
float32 report is computed here from the same pieces (`numerical_gradient`, `rel_error`).
"""
from __future__ import annotations

import html
from typing import Callable, NamedTuple

import ipywidgets as W
import numpy as np

from cnnlab import Sequential
from cnnlab.gradcheck import GradcheckReport, GradcheckRow, gradcheck_network, numerical_gradient, rel_error
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from cnnlab.losses import CrossEntropyLoss
from cnnlab.rng import as_generator
from widgets._view import WidgetView

__all__ = ["TanhFromInput", "LinearMeanBias", "Example", "EXAMPLES", "build_example", "check_network",
           "report_html", "GradcheckTableModel", "GradcheckTable", "gradcheck_table", "DEFAULT_EPS"]

RTOL = 1e-5
DEFAULT_EPS = {"float64": 1e-6, "float32": 1e-3}  # near the best step of each precision
_DTYPES = {"float64": np.float64, "float32": np.float32}


# ---------------------------------------------------------------------------------------------
# two deliberately wrong layers (typical mistakes in a hand-written backward)
# ---------------------------------------------------------------------------------------------

class TanhFromInput(Tanh):
    """A BUGGY Tanh: backward uses the input x where the formula needs the output tanh(x).

    Correct: dx = dout * (1 - tanh(x)^2). Here: dx = dout * (1 - x^2), a classic slip when the
    derivative is written "1 - y^2" and y is read as the wrong variable.
    """

    def forward(self, x):
        self._x = x
        return super().forward(x)

    def backward(self, dout):
        return dout * (1 - self._x * self._x)


class LinearMeanBias(Linear):
    """A BUGGY Linear: the bias gradient is averaged over the batch instead of summed.

    Correct: bias.grad = sum_n dout[n]. Here it is divided by N, as if the loss were averaged a
    second time. Input and weight gradients are right, so only one row of the check fails.
    """

    def backward(self, dout):
        dx = super().backward(dout)
        if self.bias is not None:
            self.bias.grad[...] /= dout.reshape(-1, self.out_features).shape[0]
        return dx


# ---------------------------------------------------------------------------------------------
# the example networks
# ---------------------------------------------------------------------------------------------

class Example(NamedTuple):
    """A network to check: `net` (float32 as built), input `x`, loss and target, and a one-line note."""

    net: Sequential
    x: np.ndarray
    loss_fn: object
    target: np.ndarray
    note: str


def _cnn(rng, tanh=Tanh, relu_first=False) -> tuple[Sequential, np.ndarray, np.ndarray]:
    gen = as_generator(rng, "gradcheck_table")
    conv = Conv2d(1, 2, 3, rng=gen)
    features = [ReLU(), MaxPool2d(2)] if relu_first else [MaxPool2d(2), ReLU()]
    net = Sequential([conv, *features, Flatten(), Linear(8, 6, rng=gen), tanh(), Linear(6, 3, rng=gen)])
    x = gen.standard_normal((2, 1, 6, 6)).astype(np.float32)
    return net, x, gen.integers(0, 3, 2)


def _small_cnn(rng) -> Example:
    net, x, t = _cnn(rng)
    return Example(net, x, CrossEntropyLoss(), t,
                   "a correct CNN: every layer and the whole chain agree with finite differences")


def _buggy_tanh(rng) -> Example:
    net, x, t = _cnn(rng, tanh=TanhFromInput)
    return Example(net, x, CrossEntropyLoss(), t,
                   "layer 5 is a Tanh whose backward uses its input instead of its output")


def _buggy_linear(rng) -> Example:
    gen = as_generator(rng, "gradcheck_table")
    net = Sequential([Linear(5, 4, rng=gen), Tanh(), LinearMeanBias(4, 3, rng=gen)])
    x = gen.standard_normal((4, 5)).astype(np.float32)
    return Example(net, x, CrossEntropyLoss(), gen.integers(0, 3, 4),
                   "layer 2 is a Linear whose bias gradient is averaged over the batch instead of summed")


def _ties(rng) -> Example:
    net, x, t = _cnn(rng, relu_first=True)
    return Example(net, x, CrossEntropyLoss(), t,
                   "no bug: ReLU before max pooling leaves windows of tied zeros, where the max has no "
                   "derivative; finite differences disagree there (a false alarm)")


EXAMPLES: dict[str, Callable[..., Example]] = {
    "small CNN (correct)": _small_cnn,
    "small CNN with a buggy Tanh": _buggy_tanh,
    "MLP with a buggy Linear bias": _buggy_linear,
    "small CNN, ReLU before max-pool (ties)": _ties,
}


def build_example(name: str, rng=0) -> Example:
    """A fresh example network by name (see `EXAMPLES`), initialised from `rng`."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example network {name!r}; choose one of {list(EXAMPLES)}")
    return EXAMPLES[name](rng)


# ---------------------------------------------------------------------------------------------
# the check in either precision
# ---------------------------------------------------------------------------------------------

def _row(name, analytic, numeric, layer) -> GradcheckRow:
    analytic = np.asarray(analytic, dtype=np.float64)
    err = rel_error(analytic, numeric)
    abs_err = float(np.max(np.abs(analytic - numeric))) if analytic.size else 0.0
    return GradcheckRow(name, tuple(analytic.shape), err, abs_err, err <= RTOL, layer)


def _float32_report(net, x, loss_fn, target, eps, rng) -> GradcheckReport:
    """What `gradcheck_network` computes, but in float32 (which cnnlab refuses on purpose)."""
    gen = as_generator(rng, "gradcheck_table")
    rows = []
    h = np.array(x, dtype=np.float32)
    for i, layer in enumerate(net):
        out = layer.forward(h)
        g = gen.standard_normal(out.shape).astype(np.float32)  # random upstream gradient, as in cnnlab

        def scalar(layer=layer, h=h, g=g):
            return np.sum(layer.forward(h) * g)

        dx = np.array(layer.backward(g), copy=True)
        analytic = [("input", dx, h)] + [(n, p.grad.copy(), p.data) for n, p in layer.named_parameters()]
        label = f"{i}: {type(layer).__name__}"
        rows += [_row(n, a, numerical_gradient(scalar, arr, eps), label) for n, a, arr in analytic]
        h = layer.forward(h)
    if loss_fn is not None:
        x = np.array(x, dtype=np.float32)

        def loss():
            return loss_fn.forward(net.forward(x), target)

        loss()
        dx = np.array(net.backward(loss_fn.backward()), copy=True)
        analytic = [("input", dx, x)] + [(n, p.grad.copy(), p.data) for n, p in net.named_parameters()]
        rows += [_row(n, a, numerical_gradient(loss, arr, eps), "network+loss") for n, a, arr in analytic]
    return GradcheckReport(tuple(rows), eps, RTOL, title=f"network of {len(net)} layers in float32")


def check_network(net, x, loss_fn=None, target=None, precision: str = "float64", eps: float | None = None,
                  rng=0) -> GradcheckReport:
    """Gradient-check every layer of `net` (and net + loss) in the chosen precision.

    Inputs: net (a cnnlab Sequential; cast in place to the precision), x (its input), loss_fn and
    target (optional, for the end-to-end rows), precision "float64" or "float32", eps (the
    finite-difference step; None: `DEFAULT_EPS[precision]`), rng (the random upstream gradients).
    Returns a `cnnlab.gradcheck.GradcheckReport` (tolerance rtol = 1e-5 on the max relative error).
    float64 is exactly `cnnlab.gradcheck.gradcheck_network`.
    """
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {list(_DTYPES)}, got {precision!r}")
    eps = DEFAULT_EPS[precision] if eps is None else float(eps)
    if not eps > 0:
        raise ValueError(f"eps must be a positive step, got {eps}")
    net.astype(_DTYPES[precision])
    if precision == "float64":
        return gradcheck_network(net, np.asarray(x, dtype=np.float64), loss_fn, target, rng=rng, eps=eps,
                                 rtol=RTOL)
    return _float32_report(net, x, loss_fn, target, eps, rng)


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------

_PASS, _FAIL = "#1a7f37", "#cf222e"


def report_html(report: GradcheckReport) -> str:
    """The report as an HTML table: layer, tensor, shape, max relative error, pass/fail (coloured)."""
    cells = "padding:2px 10px;text-align:left"
    head = "".join(f'<th style="{cells}">{h}</th>'
                   for h in ("layer", "tensor", "shape", "max relative error", "check"))
    body = []
    previous = None
    for row in report.rows:
        color = _PASS if row.passed else _FAIL
        verdict = "\u2713 pass" if row.passed else "\u2717 FAIL"
        layer = "" if row.layer == previous else html.escape(row.layer)
        border = "border-top:1px solid #ccc;" if layer else ""
        previous = row.layer
        body.append(
            f'<tr style="{border}"><td style="{cells}"><b>{layer}</b></td>'
            f'<td style="{cells}"><code>{html.escape(row.name)}</code></td>'
            f'<td style="{cells}">{row.shape}</td>'
            f'<td style="{cells};color:{color};font-family:monospace">{row.max_rel_error:.1e}</td>'
            f'<td style="{cells};color:{color};font-weight:bold">{verdict}</td></tr>')
    failed = [r for r in report.rows if not r.passed]
    summary = (f'<span style="color:{_PASS}">all {len(report.rows)} tensors pass</span>' if not failed else
               f'<span style="color:{_FAIL}">{len(failed)} of {len(report.rows)} tensors FAIL</span>')
    caption = (f"{summary}: largest relative error {report.max_rel_error:.1e}, tolerance {report.rtol:g}, "
               f"step eps = {report.eps:g}")
    return (f'<div style="font-size:13px"><p>{caption}</p>'
            f'<table style="border-collapse:collapse"><thead><tr style="border-bottom:2px solid #888">{head}'
            f'</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


class GradcheckTableModel:
    """Which network is checked and how; `update()` rebuilds it and runs the check.

    State: `network` (a key of EXAMPLES), `precision` ("float64"/"float32"), `eps` (None: the
    precision's default), `rng`. After `update()`: `example`, `report` (GradcheckReport),
    `failed_layers` (layers, in order, with a failing tensor, the end-to-end "network+loss" last)
    and `html` (the table).
    """

    def __init__(self, network: str = "small CNN (correct)", precision: str = "float64", eps=None, rng=0):
        self.network, self.precision, self.eps, self.rng = network, precision, eps, rng
        self.update()

    def update(self) -> None:
        self.example = build_example(self.network, self.rng)
        ex = self.example
        self.report = check_network(ex.net, ex.x, ex.loss_fn, ex.target, self.precision, self.eps, self.rng)
        layers = [r.layer for r in self.report.rows if not r.passed]
        self.failed_layers = list(dict.fromkeys(layers))
        self.html = report_html(self.report)


class GradcheckTable(WidgetView):
    """The widget: `.model`, controls `.network`, `.precision`, `.eps`, the table `.table` (HTML)."""

    def __init__(self, network: str = "small CNN (correct)", precision: str = "float64", rng=0):
        self.model = GradcheckTableModel(network, precision, None, rng)
        super().__init__()
        self.network = W.Dropdown(options=list(EXAMPLES), value=self.model.network, description="network",
                                  layout=W.Layout(width="380px"))
        self.precision = W.ToggleButtons(options=list(_DTYPES), value=self.model.precision, description="precision")
        self.eps = W.Dropdown(options=[("default", None)] + [(f"{e:g}", e) for e in (1e-2, 1e-3, 1e-4, 1e-6, 1e-8)],
                              value=self.model.eps, description="step eps", layout=W.Layout(width="180px"))
        self.table = W.HTML()
        self.observe(lambda change: self.update(), self.network, self.precision, self.eps)
        self.widget = W.VBox([W.HBox([self.network, self.eps]), self.precision, self.table, self.status.widget])
        self._show()

    def update(self) -> None:
        """Read the controls, rebuild the network, run the check and redraw the table."""
        self.push_to_model(network=self.network, precision=self.precision, eps=self.eps)
        self._show()

    def _show(self) -> None:
        m = self.model
        self.table.value = m.html
        verdict = ("every tensor passes" if not m.failed_layers
                   else "failing: " + ", ".join(m.failed_layers))
        self.status.show(f"{m.example.note}. {m.precision}: {verdict}.", "ok" if not m.failed_layers else "warn")


def gradcheck_table(network: str = "small CNN (correct)", precision: str = "float64", rng=0) -> GradcheckTable:
    """The per-layer gradient check of an example network as a table (see `EXAMPLES` for the menu)."""
    if network not in EXAMPLES:
        raise ValueError(f"unknown example network {network!r}; choose one of {list(EXAMPLES)}")
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {list(_DTYPES)}, got {precision!r}")
    return GradcheckTable(network, precision, rng)
