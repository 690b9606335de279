"""`lr_explorer()`: train a small network live and watch what the learning rate, momentum and batch size do.

The model is a `TrainingRun` (see `widgets.training_run`): one seeded run of `cnnlab.models.tiny_mlp` on
`cnnlab.data.small_fashion_mnist`, stepped in chunks with `Trainer.run(steps=...)`, recording E(w) on the whole
training set and the validation loss; every run starts from the same weights and sees the examples in
the same order, so two runs differ only by the knob that was turned, and `judge_regime` names the regime
(diverged, too large, too small, good) from the recorded curve.

`LRExplorer` is the widget: controls, a Train and a Stop button, the loss curves (with the previous run
in grey) and a learning-rate sweep of every finished run with the same other settings. Inside a kernel
(an asyncio loop is running) a run trains in the background, one chunk at a time, and the figure is
redrawn between chunks, so the curves grow live and Stop is heard; anywhere else (plain pytest, a
script) a run trains synchronously. `await explorer.finished()` waits for the current run.
"""
from __future__ import annotations

import asyncio
import logging
import time

import ipywidgets as W
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cnnlab.data import small_fashion_mnist
from widgets._controls import log_spanning, spanning
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView, running_loop
from widgets.training_run import LOSSES, TrainingRun, judge_regime

__all__ = ["BATCH_SIZES", "REGIMES", "LRExplorer", "lr_explorer", "TrainingRun", "judge_regime"]

log = logging.getLogger("widgets")

# (label, value) of the batch-size menu; 0 stands for the full batch (Trainer's batch_size=None)
BATCH_SIZES = [("1 (online)", 1), ("16", 16), ("64", 64), ("256", 256), ("full batch", 0)]
REGIMES = {"good": "#1a7f37", "too small": "#9a6700", "too large": "#d1242f", "diverged": "#82071e",
           "stopped": "#444"}


def _plain_log_ticks(ax) -> None:
    """Log-scale y ticks at 1, 2, 5 x 10^k written as plain numbers (0.05, 2, 500), no minor labels."""
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


class LRExplorer(WidgetView):
    """The widget: `.run` (the current `TrainingRun`), controls `.lr`, `.momentum`, `.batch_size`, `.loss`,
    `.epochs`, `.x_axis`, buttons `.train_button`, `.stop_button`, the figure `.view` and `.status`.

    Changing a setting (or pressing Train) starts a new run from the same seed; Stop ends the current run
    after its chunk. live=None trains in the background when an asyncio loop is running (a kernel) and
    synchronously otherwise; True/False force it. `sweep` lists every finished run (settings, final
    error, regime); the right panel shows those that share all settings but the learning rate.
    """

    def __init__(self, run: TrainingRun, live: bool | None = None, pause: float = 0.01):
        self.run, self.live, self.pause = run, live, pause
        self.sweep: list[dict] = []
        self.previous = None  # (epochs_seen, updates, train_loss, val_loss, description) of the last run
        self._generation, self._task = 0, None
        super().__init__()
        guard = self.guard
        style, wide = {"description_width": "95px"}, W.Layout(width="360px")
        # every range and menu holds the run's value: the controls show its settings, never clamp them
        low, high = log_spanning(-4, 2, run.lr)
        self.lr = W.FloatLogSlider(value=run.lr, base=10, min=low, max=high, step=0.05, description="learning rate",
                                   readout_format=".3g", continuous_update=False, style=style, layout=wide)
        self.momentum = W.FloatSlider(value=run.momentum, min=0.0, max=max(0.99, run.momentum), step=0.01,
                                      description="momentum μ", continuous_update=False, style=style, layout=wide)
        batch = 0 if run.full_batch else run.batch_size
        sizes = BATCH_SIZES if batch in dict(BATCH_SIZES).values() else \
            sorted([*BATCH_SIZES, (str(batch), batch)], key=lambda option: option[1] or float("inf"))
        self.batch_size = W.Dropdown(options=sizes, value=batch, description="batch size", style=style,
                                     layout=W.Layout(width="230px"))
        low, high = spanning(1, 10, run.epochs)
        self.epochs = W.IntSlider(value=run.epochs, min=low, max=high, description="epochs",
                                  continuous_update=False, style={"description_width": "50px"},
                                  layout=W.Layout(width="250px"))
        self.loss = W.ToggleButtons(options=list(LOSSES), value=run.loss, description="loss", style=style)
        self.x_axis = W.ToggleButtons(options=["epochs", "updates"], value="epochs", description="x axis",
                                      style={"description_width": "50px"})
        self.train_button = W.Button(description="Train", icon="play", button_style="success",
                                     tooltip="train again from the same start with these settings")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger",
                                    tooltip="stop the run after the current chunk")
        self._build_figure()
        # the curves, markers and texts redraw alone over a saved picture of the axes (see FigureView)
        self.view = FigureView(self.fig, animated=[self.prev_train, self.prev_val, self.train_line, self.val_line,
                                                   self.blowup, self.regime_text, self.ax.title,
                                                   *self.sweep_lines.values(), self.sweep_diverged,
                                                   self.sweep_current],
                               pictures=4)
        # while training live, redraw after every chunk with ipympl (cheap: the browser renders); a PNG
        # fallback (no ipympl) renders in the kernel, so there at most every 0.3 s
        self.redraw_every = 0.0 if self.view.interactive else 0.3
        self.observe(lambda change: self.start(), self.lr, self.momentum, self.batch_size, self.epochs,
                     self.loss)
        self.x_axis.observe(guard(lambda change: self._draw()), names="value")
        self.train_button.on_click(guard(lambda button: self.start()))
        self.stop_button.on_click(guard(lambda button: self.stop()))
        self.widget = W.VBox([W.HBox([self.lr, self.momentum]),
                              W.HBox([self.batch_size, self.epochs, self.loss]),
                              W.HBox([self.train_button, self.stop_button, self.x_axis]),
                              self.view.widget, self.status.widget])
        self.start()

    # --- figure ------------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        self.fig, (ax, sweep) = new_figure(1, 2, figsize=(10, 4.6), dpi=80, gridspec_kw={"width_ratios": [2.2, 1]})
        self.ax, self.ax_sweep = ax, sweep
        (self.prev_train,) = ax.plot([], [], color="0.6", lw=1.2, label="previous run: training")
        (self.prev_val,) = ax.plot([], [], color="0.6", lw=1.2, ls="--", label="previous run: validation")
        (self.train_line,) = ax.plot([], [], color="C0", lw=2, marker=".", ms=4, label="training error E(w)")
        (self.val_line,) = ax.plot([], [], color="C1", lw=1.6, ls="--", label="validation loss")
        (self.blowup,) = ax.plot([], [], "X", color=REGIMES["diverged"], ms=11, label="diverged here",
                                 transform=ax.get_xaxis_transform(), clip_on=False)
        self.regime_text = ax.text(0.98, 0.96, "", transform=ax.transAxes, ha="right", va="top", fontsize=12,
                                   fontweight="bold")
        ax.set_yscale("log")
        ax.set_ylim(0.03, 3)  # until the first record
        _plain_log_ticks(ax)
        ax.set_ylabel("loss (log scale)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=7.5, frameon=False)
        self.sweep_lines = {name: sweep.plot([], [], "o", color=color, ms=6, label=name)[0]
                            for name, color in REGIMES.items() if name not in ("diverged", "stopped")}
        self.sweep_diverged = sweep.plot([], [], "X", color=REGIMES["diverged"], ms=8, label="diverged",
                                         transform=sweep.get_xaxis_transform())[0]
        (self.sweep_current,) = sweep.plot([], [], "o", mfc="none", mec="k", ms=11, mew=1.5, label="this run")
        sweep.set_xscale("log")
        sweep.set_yscale("log")
        sweep.set_xlim(1e-4 / 1.5, 1e2 * 1.5)
        sweep.set_ylim(0.03, 3)
        _plain_log_ticks(sweep)
        sweep.set_xlabel("learning rate")
        sweep.set_ylabel("final training error")
        sweep.set_title("sweep: runs with these other settings", fontsize=9)
        sweep.grid(True, which="major", alpha=0.25)
        sweep.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=3, fontsize=7.5, frameon=False,
                     handletextpad=0.2, columnspacing=0.8)
        self.fig.subplots_adjust(left=0.07, right=0.985, bottom=0.25, top=0.92, wspace=0.3)

    def _x(self, epochs_seen, updates):
        return np.asarray(epochs_seen if self.x_axis.value == "epochs" else updates, dtype=float)

    def _draw(self) -> None:
        r, ax = self.run, self.ax
        self.train_line.set_data(self._x(r.epochs_seen, r.updates), r.train_loss)
        self.val_line.set_data(self._x(r.epochs_seen, r.updates), r.val_loss)
        if self.previous is not None:
            epochs_seen, updates, train, val, _ = self.previous
            self.prev_train.set_data(self._x(epochs_seen, updates), train)
            self.prev_val.set_data(self._x(epochs_seen, updates), val)
        step = r.trainer.history.diverged_at
        if step is not None:  # at the top edge, above the update that blew up
            at = self._x([r.examples_seen_after(step) / len(r.X_train)], [step])
            self.blowup.set_data(at, [0.97])
        else:
            self.blowup.set_data([], [])
        if r.finished:
            regime, _ = r.judge()
            self.regime_text.set_text(regime)
            self.regime_text.set_color(REGIMES[regime])
        else:
            self.regime_text.set_text(f"training… epoch {r.examples_seen / len(r.X_train):.1f} of {r.epochs}")
            self.regime_text.set_color("0.3")
        ax.set_xlabel("epochs (examples seen / N)" if self.x_axis.value == "epochs" else "updates (optimizer steps)")
        self.view.set_content(ax, self.x_axis.value)  # its label: FigureView keeps the pictures of both
        ax.set_title(r.describe(), fontsize=10)
        self._rescale()
        self._draw_sweep()
        self.view.refresh()

    def _rescale(self) -> None:
        """Axis limits: x the whole planned run (and the previous one), so they hold while it trains; y from
        the drawn curves on a grid of half decades (far above the start, a blow-up leaves the top), so
        they change only a few times per run and most redraws blit the curves alone."""
        lines = [self.train_line, self.val_line] + ([self.prev_train, self.prev_val] if self.previous else [])
        xs = np.concatenate([np.asarray(line.get_xdata(), dtype=float) for line in lines])
        ys = np.concatenate([np.asarray(line.get_ydata(), dtype=float) for line in lines])
        starts = [np.asarray(line.get_ydata(), dtype=float)[0] for line in lines if len(line.get_ydata())]
        ys = ys[np.isfinite(ys) & (ys > 0)]
        if ys.size:
            top = min(ys.max(), 30 * max(starts))
            low, high = np.log10(ys.min() / 1.3), np.log10(top * 1.3)
            self.ax.set_ylim(10 ** (np.floor(2 * low) / 2), 10 ** (np.ceil(2 * high) / 2))
        r = self.run
        planned = self._x([r.epochs], [r.epochs * len(r.trainer.loader)])[0]
        end = max(planned, xs.max() if xs.size else 0.0)
        if end > 0:
            self.ax.set_xlim(-0.02 * end, 1.02 * end)

    def _draw_sweep(self) -> None:
        r = self.run
        same = [s for s in self.sweep if s["key"] == self._key(r)]
        for name, line in self.sweep_lines.items():
            points = [(s["lr"], s["final"]) for s in same if s["regime"] == name]
            line.set_data([p[0] for p in points], [p[1] for p in points])
        lost = [s["lr"] for s in same if s["regime"] == "diverged"]
        self.sweep_diverged.set_data(lost, [0.95] * len(lost))
        finite = [s["final"] for s in same if s["regime"] != "diverged"]
        if finite:  # on a grid of half decades: a new point rarely moves them
            low, high = np.log10(min(finite) / 1.5), np.log10(max(finite) * 1.5)
            self.ax_sweep.set_ylim(10 ** (np.floor(2 * low) / 2), 10 ** (np.ceil(2 * max(high, low + 0.3)) / 2))
        mine = [s for s in same if s["id"] == self._generation and s["regime"] != "diverged"]
        self.sweep_current.set_data([s["lr"] for s in mine], [s["final"] for s in mine])

    @staticmethod
    def _key(run: TrainingRun) -> tuple:
        return (0 if run.full_batch else run.batch_size, run.momentum, run.loss, run.epochs)

    # --- runs ----------------------------------------------------------------------------------------
    def _read_controls(self) -> None:
        r = self.run
        r.lr, r.momentum, r.loss = float(self.lr.value), float(self.momentum.value), self.loss.value
        r.batch_size = None if self.batch_size.value == 0 else int(self.batch_size.value)
        r.epochs = int(self.epochs.value)

    def start(self) -> None:
        """Start a new run with the controls' settings (what every setting change and Train do)."""
        self._generation += 1
        r = self.run
        if len(r.train_loss) > 1:
            self.previous = (list(r.epochs_seen), list(r.updates), list(r.train_loss), list(r.val_loss), r.describe())
        self._read_controls()
        loop = running_loop() if self.live is not False else None
        if loop is None:
            if self.live:
                raise RuntimeError("live=True needs a running asyncio loop (a Jupyter kernel)")
            r.reset()
            r.run()
            self._finish()
            return
        # the control answers at once (status line): the run's start is recorded on the loop, which then draws
        # the first frame, and again after every chunk
        r.reset(record=False)
        self.status.show(f"training: {r.describe()} …")
        self._task = loop.create_task(self._train_live(self._generation))

    async def _train_live(self, generation: int) -> None:
        try:
            last_draw = -np.inf  # the first frame as soon as the start is recorded
            while generation == self._generation:
                more = self.run.advance()
                if not more:
                    self._finish()
                    return
                if time.perf_counter() - last_draw >= self.redraw_every:
                    self._draw()
                    last_draw = time.perf_counter()
                await asyncio.sleep(self.pause)  # let the kernel handle clicks and redraw requests
        except Exception as error:  # noqa: BLE001 - a failed run must reach the student as text
            log.exception("lr_explorer: training run failed")
            self.show_error(error)

    async def finished(self) -> None:
        """Wait until the current run (and any run started meanwhile) has ended."""
        while self._task is not None and not self._task.done():
            await asyncio.wait({self._task})

    def stop(self) -> None:
        """Stop the current run after its chunk (the Stop button)."""
        if not self.run.stop():
            self.status.show("nothing to stop: the run is over; change a setting or press Train", "info")
            return
        if self._task is None or self._task.done():  # nothing will pick the stop up: finish now
            self._finish()

    def _finish(self) -> None:
        r = self.run
        regime, reason = r.judge()
        if len(r.train_loss) > 1 or regime == "diverged":
            self.sweep = [s for s in self.sweep if not (s["key"] == self._key(r) and s["lr"] == r.lr)]
            self.sweep.append({"key": self._key(r), "lr": r.lr, "final": r.train_loss[-1] if r.train_loss else np.nan,
                               "regime": regime, "id": self._generation, "status": r.status})
        self._draw()
        stopped = " (stopped early)" if r.status == "stopped" else ""
        tail = (f"; validation loss {r.val_loss[-1]:.3g}, accuracy {r.val_accuracy[-1]:.0%}"
                if r.val_loss and regime != "diverged" else "")
        kind = {"good": "ok", "diverged": "warn", "too large": "warn"}.get(regime, "info")
        self.status.show(f"{regime}{stopped}: {reason}{tail}", kind)


def lr_explorer(n_train: int = 2000, n_val: int = 500, *, lr: float = 0.1, momentum: float = 0.0,
                batch_size: int | None = 64, loss: str = "cross-entropy", epochs: int = 3, hidden: int = 32,
                seed: int = 0, data=None, live: bool | None = None) -> LRExplorer:
    """The learning-rate explorer on `small_fashion_mnist(n_train, n_val)` (or `data` = (X_train, y_train,
    X_val, y_val)); the keyword arguments are the starting settings (see `TrainingRun`)."""
    choices = [value for _, value in BATCH_SIZES]
    if (0 if batch_size is None else batch_size) not in choices:
        raise ValueError(f"batch_size must be one of the menu's choices {[None] + choices[:-1]}, got {batch_size!r}")
    if not 1e-4 <= lr <= 1e2:
        raise ValueError(f"lr must lie in the slider's range [1e-4, 100], got {lr}")
    if not 1 <= epochs <= 10:
        raise ValueError(f"epochs must lie in the slider's range [1, 10], got {epochs}")
    if data is None:
        data = small_fashion_mnist(n_train, n_val)  # a fixed sample; seed sets the weights and the order
    elif len(data) != 4:
        raise ValueError(f"data must be (X_train, y_train, X_val, y_val), got {len(data)} items")
    run = TrainingRun(*data, lr=lr, momentum=momentum, batch_size=batch_size, loss=loss, epochs=epochs,
                      hidden=hidden, seed=seed)
    return LRExplorer(run, live=live)
