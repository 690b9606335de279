"""`init_explorer()`: what an initialisation scheme does to a deep net before any training step.

A stack of `depth` blocks [Linear(width, width), activation] at initialisation, fed unit-variance
Gaussian inputs: for every block, the histogram of its outputs and of the gradient that reached them
(one column per block), and the standard deviation of both on a log scale against what the scheme
predicts, so that vanishing and exploding are visible at a glance. The measurement and the prediction
(Khan §5.1.5's variance argument, layer by layer) are `InitModel` in `widgets.init_model`, whose names
this module also exports; `InitExplorer` adds the controls and one figure redrawn in place.
"""
from __future__ import annotations

import asyncio
import logging

import ipywidgets as W
import numpy as np

from widgets._controls import log_spanning, spanning
from widgets._figure import FigureView
from widgets._new_figure import new_figure, nice_ceil
from widgets._view import WidgetView, running_loop
from widgets.init_model import (ACTIVATIONS, EXPLODING, GAIN_SCHEMES, MAX_DEPTH, RECOMMENDED_GAIN, SCHEMES,
                                STD_SCHEMES, VANISHING, WIDTHS, InitModel, column_histograms)
from widgets.init_theory import gaussian_moments, predicted_profile

__all__ = ["ACTIVATIONS", "SCHEMES", "WIDTHS", "MAX_DEPTH", "gaussian_moments", "predicted_profile",
           "column_histograms", "InitModel", "InitExplorer", "init_explorer"]

log = logging.getLogger("widgets")


def _nice_limits(lo: float, hi: float) -> tuple[float, float]:
    """Limits holding [lo, hi] at 1, 2 or 5 times a power of ten (`nice_ceil`): (0, m) for values that are
    all >= 0, (-m, 0) for values all <= 0, else (-m, m). A small change of the data keeps them, so most
    updates redraw the histograms alone (see FigureView); the axes' background is an empty bin's colour."""
    m = nice_ceil(max(abs(lo), abs(hi)))
    return (0.0 if lo >= 0 else -m), (0.0 if hi <= 0 else m)


class InitExplorer(WidgetView):
    """The widget: `.model`, controls `.depth`, `.width`, `.activation`, `.scheme`, `.gain`, `.std` and the
    button `.recommend` (sets the gain recommended for the activation), the figure `.view`, `.status`.

    A measurement takes from a few ms (narrow, shallow) to about a second (40 layers of width 512, LSUV) and
    is kept (see InitModel): settings measured before show at once. background=None: inside a kernel (an
    asyncio loop is running) a new measurement runs in a thread, the status line answers at once and the
    picture follows, so the controls never wait; anywhere else (plain pytest, a script) it runs at once.
    `await explorer.finished()` waits for it. True/False force either way.
    """

    def __init__(self, model: InitModel, background: bool | None = None):
        self.model, self.background, self._task = model, background, None
        super().__init__()
        style = {"description_width": "80px"}
        self.depth = W.IntSlider(value=model.depth, min=1, max=MAX_DEPTH, description="depth",
                                 continuous_update=False, style=style)
        self.width = W.SelectionSlider(options=list(WIDTHS), value=model.width, description="width",
                                       continuous_update=False, style=style)
        self.activation = W.Dropdown(options=list(ACTIVATIONS), value=model.activation, description="activation",
                                     style=style)
        self.scheme = W.Dropdown(options=list(SCHEMES), value=model.scheme, description="scheme", style=style)
        # every range holds the model's value: the controls show the model's settings, never clamp them
        low, high = spanning(0.1, 3.0, model.gain)
        self.gain = W.FloatSlider(value=model.gain, min=low, max=high, step=0.05, description="gain",
                                  continuous_update=False, style=style)
        low, high = log_spanning(-4, 0, model.std)
        self.std = W.FloatLogSlider(value=model.std, base=10, min=low, max=high, step=0.1, description="std",
                                    readout_format=".1e", continuous_update=False, style=style)
        self.recommend = W.Button(description="recommended gain", tooltip="calculate_gain for the activation")
        self.recommend.on_click(self.guard(lambda _: self._recommend()))
        self.note = W.HTML()
        self._build_figure()
        # the histograms, lines and band labels redraw alone over a saved picture of the axes (FigureView)
        self.view = FigureView(self.fig, animated=[*self.images.values(), *sum(self.pred_lines.values(), ()),
                                                   *self.std_lines.values(), *self.band_labels],
                               pictures=6)
        self.observe(lambda change: self.update(), self.depth, self.width, self.activation, self.scheme, self.gain,
                     self.std)
        controls = W.VBox([self.depth, self.width, self.activation, self.scheme,
                           W.HBox([self.gain, self.recommend]), self.std, self.note])
        self.widget = W.VBox([controls, self.view.widget, self.status.widget])
        model.update()  # measured already, unless its settings were changed since
        self._show(True)

    def _recommend(self) -> None:
        self.gain.value = round(RECOMMENDED_GAIN[self.activation.value], 2)

    def _build_figure(self) -> None:
        self.fig, axes = new_figure(1, 3, figsize=(12.5, 3.8), dpi=72)
        self.ax_act, self.ax_grad, self.ax_std = axes
        blank = np.zeros((2, 2))
        self.images, self.pred_lines = {}, {}
        for key, ax, title in (("act", self.ax_act, "activations h_l (block outputs)"),
                               ("grad", self.ax_grad, "gradients ∂L/∂h_l")):
            self.images[key] = ax.imshow(blank, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=1,
                                         interpolation="nearest", extent=(0.5, 1.5, -1, 1))
            upper, = ax.plot([], [], "--", color="#4fc3f7", lw=1.4)
            lower, = ax.plot([], [], "--", color="#4fc3f7", lw=1.4)
            self.pred_lines[key] = (upper, lower)
            ax.set_facecolor(self.images[key].cmap(0.0))  # outside the histogram: no values, as an empty bin
            ax.set_title(title + "\n(dashed: predicted mean ± 1 std)", fontsize=9)
            ax.set_xlabel("layer")
        self.ax_act.set_ylabel("value (one histogram per layer)", fontsize=8)
        ax = self.ax_std
        ax.set_yscale("log")
        ax.set_ylim(1e-3, 1e3)
        ax.set_autoscaley_on(False)  # the limits follow the data in _draw; the bands must not widen them
        ax.axhspan(1e-300, VANISHING, color="#90caf9", alpha=0.35, lw=0)
        ax.axhspan(EXPLODING, 1e300, color="#ef9a9a", alpha=0.35, lw=0)
        ax.axhline(1.0, color="grey", lw=0.6, ls=":")
        self.std_lines = {
            "act": ax.plot([], [], "o-", color="C0", ms=3, lw=1.5, label="activations (measured)")[0],
            "act_pred": ax.plot([], [], "--", color="C0", lw=1.2, label="activations (predicted)")[0],
            "grad": ax.plot([], [], "s-", color="C1", ms=3, lw=1.5, label="gradients (measured)")[0],
            "grad_pred": ax.plot([], [], "--", color="C1", lw=1.2, label="gradients (predicted)")[0],
        }
        # inside their bands (x in axes, y in data coordinates), hidden when the band is out of view
        self.band_labels = (ax.text(0.01, VANISHING / 2, "vanishing", transform=ax.get_yaxis_transform(), va="top",
                                    fontsize=8, color="#1565c0", clip_on=True),
                            ax.text(0.01, EXPLODING * 2, "exploding", transform=ax.get_yaxis_transform(),
                                    va="bottom", fontsize=8, color="#c62828", clip_on=True))
        ax.set_title("standard deviation per layer\n(log scale)", fontsize=9)
        ax.set_xlabel("layer")
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
        self.fig.subplots_adjust(left=0.065, right=0.83, bottom=0.13, top=0.86, wspace=0.3)

    def update(self) -> None:
        """Read every control into the model and show its measurement: at once when it was measured before
        (or outside a kernel), else from a thread (see the class docstring)."""
        m = self.model
        for name in ("depth", "width", "activation", "scheme", "gain", "std"):
            setattr(m, name, getattr(self, name).value)
        loop = running_loop() if self.background is not False else None
        if loop is None and self.background:
            raise RuntimeError("background=True needs a running asyncio loop (a Jupyter kernel)")
        if loop is None or m.ready():
            computed = not m.ready()
            m.update()
            self._show(computed)
            return
        self.status.show(f"measuring {m.depth} layers of width {m.width} ({m.activation}, {m.scheme}) …")
        if self._task is None or self._task.done():  # else the running task measures the new settings next
            self._task = loop.create_task(self._measure_in_background())

    async def _measure_in_background(self) -> None:
        """Measure in a thread until the settings measured are the controls' (they may move meanwhile), then
        show them."""
        try:
            loop = asyncio.get_running_loop()
            while not self.model.ready():
                self.model.store(await loop.run_in_executor(None, self.model.job()))
            self.model.update()
            self._show(True)
        except Exception as error:  # noqa: BLE001 - a failed measurement must reach the student as text
            log.exception("init_explorer: measurement failed")
            self.show_error(error)

    def stop(self) -> None:
        """Drop the measurement running in the background, if any (its thread ends on its own; nothing is shown)
        — what a lecture demo does before it replaces the widget."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            self.status.show("measurement stopped: the picture shows the settings measured before", "info")

    async def finished(self) -> None:
        """Wait until the measurement running in the background (if any) is shown."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    def _show(self, computed: bool) -> None:
        self._draw()
        message, kind = self.model.verdict()
        took = f"{self.model.seconds * 1000:.0f} ms" if computed else "measured before"
        self.status.show(f"{message}  ({took})", kind)

    def _draw(self) -> None:
        m = self.model
        layers = np.arange(1, m.depth + 1)
        for key, hist, (lo, hi), ax in (("act", m.act_hist, m.act_range, self.ax_act),
                                        ("grad", m.grad_hist, m.grad_range, self.ax_grad)):
            self.images[key].set_data(hist)
            self.images[key].set_extent((0.5, m.depth + 0.5, lo, hi))
            ax.set_xlim(0.5, m.depth + 0.5)
            ax.set_ylim(*_nice_limits(lo, hi))
        upper, lower = self.pred_lines["act"]
        upper.set_data(layers, m.pred_act_mean + m.pred_act_std)
        lower.set_data(layers, m.pred_act_mean - m.pred_act_std)
        upper, lower = self.pred_lines["grad"]
        upper.set_data(layers, m.pred_grad_std)
        lower.set_data(layers, -m.pred_grad_std)
        shown = {}
        for key, values in (("act", m.act_std), ("act_pred", m.pred_act_std), ("grad", m.grad_std),
                            ("grad_pred", m.pred_grad_std)):
            positive = np.where(np.isfinite(values) & (values > 0), values, np.nan)
            self.std_lines[key].set_data(layers, positive)
            shown[key] = positive
        finite = np.concatenate([v[np.isfinite(v)] for v in shown.values()])
        if finite.size:
            lo, hi = float(finite.min()), float(finite.max())
            lo, hi = min(lo, 0.1), max(hi, 10.0)
            self.ax_std.set_ylim(10.0 ** np.floor(np.log10(lo / 3)), 10.0 ** np.ceil(np.log10(hi * 3)))  # decades
        else:
            self.ax_std.set_ylim(1e-3, 1e3)
        self.ax_std.set_xlim(0.5, m.depth + 0.5)
        if m.scheme == "lsuv":
            uses = "Every layer is rescaled to unit output variance, so neither gain nor std matters."
        elif m.scheme in STD_SCHEMES or m.scheme in GAIN_SCHEMES:
            uses = f"This scheme uses the <b>{'std' if m.scheme in STD_SCHEMES else 'gain'}</b> control."
        else:
            uses = "Neither gain nor std changes this scheme."
        self.note.value = f"<small><b>{m.scheme}</b>: {m.formula()}. {uses}</small>"
        self.view.refresh()


def init_explorer(depth: int = 20, width: int = 256, activation: str = "tanh", scheme: str = "xavier_normal",
                  gain: float = 1.0, std: float = 0.01, batch: int = 256, seed: int = 0,
                  background: bool | None = None) -> InitExplorer:
    """The initialisation explorer. depth in [1, MAX_DEPTH]; width one of WIDTHS; activation one of
    ACTIVATIONS ("tanh", "ReLU", "sigmoid", "linear", "LeCun tanh"); scheme one of SCHEMES (cnnlab.init's);
    gain in [0.1, 3]; std in [1e-4, 1]; batch: examples in the measured batch; seed: data, weights and the
    upstream gradient all follow from it; background: see InitExplorer (None: in a kernel)."""
    if width not in WIDTHS:
        raise ValueError(f"width must be one of {list(WIDTHS)}, got {width!r}")
    if not (isinstance(gain, (int, float)) and 0.1 <= gain <= 3.0):
        raise ValueError(f"gain must be a number in [0.1, 3], got {gain!r}")
    if not (isinstance(std, (int, float)) and 1e-4 <= std <= 1.0):
        raise ValueError(f"std must be a number in [1e-4, 1], got {std!r}")
    return InitExplorer(InitModel(depth, width, activation, scheme, gain, std, batch, seed), background)
