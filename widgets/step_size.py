"""`step_size_explorer()`: how the error of a finite difference depends on the step h.

The model (`StepSizeModel`) sweeps the forward difference (Khan eq. 5.35) and the central difference
over many steps h with `cnnlab.numdiff.step_size_sweep`, at a point x and in a chosen precision
(float64 or float32). The widget (`StepSizeExplorer`) plots both error curves on log-log axes, with
the two error models that explain their V shapes,

    forward:  |f''(x)| h / 2    + eps |f(x)| / h      (truncation O(h)   + round-off)
    central:  |f'''(x)| h^2 / 6 + eps |f(x)| / h      (truncation O(h^2) + round-off)

and marks sqrt(eps) and cbrt(eps), the rule-of-thumb best steps. A slider moves x, a toggle
switches the precision; the figure is redrawn in place.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from cnnlab.numdiff import central_difference, step_size_sweep
from widgets._controls import spanning
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView

__all__ = ["khan_f", "khan_df", "StepSizeModel", "StepSizeExplorer", "step_size_explorer", "PRECISIONS"]

PRECISIONS = {"float64": np.float64, "float32": np.float32}
_FLOOR = 1e-18  # errors that are exactly 0 are drawn here on the log axis


def khan_f(x):
    """Khan's worked example (eq. 5.36): exp(sin x + sin^2 x) + sin(e^x + e^2x), elementwise."""
    s, e = np.sin(x), np.exp(x)
    return np.exp(s + s * s) + np.sin(e + e * e)


def khan_df(x):
    """Its derivative, Khan's eq. 5.37, elementwise."""
    s, c, e = np.sin(x), np.cos(x), np.exp(x)
    return np.cos(e * e + e) * (2 * e * e + e) + np.exp(s * s + s) * (c + 2 * c * s)


class StepSizeModel:
    """Errors of forward and central differences of f at x over a range of steps.

    Inputs: f (elementwise function), df (its exact derivative, a callable), x (float), precision
    ("float64" or "float32": the dtype x and every f(x +- h) is computed in), hs (the steps, 1-D).
    After `update()`: `sweep` (a `cnnlab.numdiff.StepSizeSweep`: h, forward_error, central_error),
    `eps` (machine epsilon of the precision), `best_forward_h`, `best_central_h`, and the error
    models `forward_model`, `central_model` (arrays like h) built from f(x), f''(x) and f'''(x).
    """

    def __init__(self, f=None, df=None, x: float = -1.0, precision: str = "float64", hs=None):
        if (f is None) != (df is None):
            raise ValueError("step_size_explorer needs both f and its exact derivative df, or neither "
                             "(then Khan's example eq. 5.36 is used)")
        if f is not None and not (callable(f) and callable(df)):
            raise TypeError(f"f and df must be callables, got {type(f).__name__} and {type(df).__name__}")
        self.f, self.df = (khan_f, khan_df) if f is None else (f, df)
        hs = np.logspace(-16, 0, 161) if hs is None else np.asarray(hs, dtype=np.float64)
        if hs.ndim != 1 or hs.size < 2 or not np.all(hs > 0):
            raise ValueError(f"hs must be a 1-D array of at least 2 positive steps, got shape {hs.shape}")
        self.hs = hs
        self.x, self.precision = x, precision
        self.update()

    def update(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {self.precision!r}")
        if not np.isfinite(self.x):
            raise ValueError(f"x must be a finite number, got {self.x}")
        dtype = PRECISIONS[self.precision]
        x = dtype(self.x)
        x64 = np.float64(x)  # the point actually used, exactly, for the reference values
        exact = float(self.df(x64))
        if not np.isfinite(exact):
            raise ValueError(f"the derivative at x = {self.x:g} is not finite ({exact})")
        self.eps = float(np.finfo(dtype).eps)
        self.sweep = step_size_sweep(self.f, exact, x, self.hs)
        # f'' and f''' for the error models: central differences of the exact derivative in float64
        d2 = central_difference(self.df, x64, h=1e-4)
        d3 = (self.df(x64 + 1e-3) - 2 * self.df(x64) + self.df(x64 - 1e-3)) / 1e-6
        roundoff = self.eps * abs(float(self.f(x64))) / self.hs
        self.forward_model = abs(d2) * self.hs / 2 + roundoff
        self.central_model = abs(d3) * self.hs ** 2 / 6 + roundoff
        self.best_forward_h = self.sweep.best_forward_h
        self.best_central_h = self.sweep.best_central_h


class StepSizeExplorer(WidgetView):
    """The widget: `.model`, controls `.x` (slider) and `.precision` (toggle), figure `.view`."""

    def __init__(self, f=None, df=None, x: float = -1.0, precision: str = "float64", hs=None):
        self.model = StepSizeModel(f, df, x, precision, hs)
        super().__init__()
        low, high = spanning(-2.0, 2.0, self.model.x)  # the slider holds the model's x, never clamps it
        self.x = W.FloatSlider(value=self.model.x, min=low, max=high, step=0.05, description="x",
                               continuous_update=False, readout_format=".2f")
        self.precision = W.ToggleButtons(options=list(PRECISIONS), value=self.model.precision,
                                       description="precision")
        self.fig, self.ax = new_figure(figsize=(7.2, 4.2))
        ax, h = self.ax, self.model.hs
        (self.fwd_line,) = ax.loglog(h, h, "o-", ms=2.5, lw=1, color="C0", label="forward difference")
        (self.cen_line,) = ax.loglog(h, h, "o-", ms=2.5, lw=1, color="C1", label="central difference")
        (self.fwd_model,) = ax.loglog(h, h, "--", lw=1.2, color="C0", alpha=0.6,
                                      label=r"model $|f''|h/2 + \epsilon|f|/h$")
        (self.cen_model,) = ax.loglog(h, h, "--", lw=1.2, color="C1", alpha=0.6,
                                      label=r"model $|f'''|h^2/6 + \epsilon|f|/h$")
        self.sqrt_line = ax.axvline(1.0, color="C0", ls=":", lw=1)
        self.cbrt_line = ax.axvline(1.0, color="C1", ls=":", lw=1)
        self.sqrt_text = ax.text(1.0, 0, r"$\sqrt{\epsilon}$", color="C0", ha="center", va="bottom",
                                 transform=ax.get_xaxis_transform())
        self.cbrt_text = ax.text(1.0, 0, r"$\sqrt[3]{\epsilon}$", color="C1", ha="center", va="bottom",
                                 transform=ax.get_xaxis_transform())
        ax.set_xlabel("step h")
        ax.set_ylabel("absolute error of the derivative")
        ax.set_xlim(h.min(), h.max())
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(loc="upper right", fontsize=8, ncol=2, framealpha=0.9)
        ax.set_title("Khan's example", fontsize=10)  # placeholder so that tight_layout leaves room
        self.fig.tight_layout()
        # the curves, markers and the title redraw alone over a saved picture of the axes (see FigureView);
        # the rest changes with the y limits alone, so the pictures of a few limits are kept (pictures)
        self.view = FigureView(self.fig, animated=[self.fwd_line, self.cen_line, self.fwd_model, self.cen_model,
                                                   self.sqrt_line, self.cbrt_line, self.sqrt_text, self.cbrt_text,
                                                   ax.title], pictures=8)

        self.observe(self._on_change, self.x, self.precision)
        self.widget = W.VBox([W.HBox([self.x, self.precision]), self.view.widget, self.status.widget])
        self._draw()

    def _on_change(self, change=None) -> None:
        self.update()

    def update(self) -> None:
        """Read the controls, recompute the sweep and redraw (what every control change does)."""
        self.model.x, self.model.precision = float(self.x.value), self.precision.value
        self.model.update()
        self._draw()

    def _draw(self) -> None:
        m, ax = self.model, self.ax
        s = m.sweep
        self.fwd_line.set_ydata(np.maximum(s.forward_error, _FLOOR))
        self.cen_line.set_ydata(np.maximum(s.central_error, _FLOOR))
        self.fwd_model.set_ydata(m.forward_model)
        self.cen_model.set_ydata(m.central_model)
        for line, text, h in ((self.sqrt_line, self.sqrt_text, m.eps ** 0.5),
                              (self.cbrt_line, self.cbrt_text, m.eps ** (1 / 3))):
            line.set_xdata([h, h])
            text.set_x(h)
        low = max(min(s.central_error[s.central_error > 0].min(initial=1.0), 1e-3) / 10, 1e-16)
        ax.set_ylim(10.0 ** np.floor(np.log10(low)), 1e8)  # on a decade: a new x rarely moves it
        ax.set_title(f"Khan's example at x = {m.x:.2f} in {m.precision}" if m.f is khan_f
                     else f"f at x = {m.x:.2f} in {m.precision}", fontsize=10)
        self.view.refresh()
        self.status.show(
            f"{m.precision} (eps = {m.eps:.1e}): best forward step h = {m.best_forward_h:.1e} "
            f"(error {s.forward_error.min():.1e}), best central step h = {m.best_central_h:.1e} "
            f"(error {s.central_error.min():.1e})")


def step_size_explorer(f=None, df=None, x: float = -1.0, precision: str = "float64", hs=None) -> StepSizeExplorer:
    """Error of forward and central differences against the step h; Khan's example by default.

    f, df: an elementwise function and its exact derivative (both, or neither); x: the starting
    point (the slider covers [-2, 2]); precision: "float64" or "float32"; hs: the steps to sweep.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if not -2.0 <= x <= 2.0:
        raise ValueError(f"x must lie in the slider's range [-2, 2], got {x}")
    return StepSizeExplorer(f, df, x, precision, hs)
