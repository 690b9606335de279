"""`cnn_race()`: the optimizers of the surface race, now training the same small CNN, fairly.

The race itself (the racing network, one Trainer per optimizer, same weights and same batches for
everyone) is `CNNRaceModel` in `widgets.cnn_race_model`, plain NumPy. `CNNRace` adds the controls (a
checkbox and a log learning-rate slider per optimizer, epochs, momentum, Race and Stop buttons), one
figure redrawn in place (mini-batch loss against step, validation accuracy against epoch) and a table of
the final validation accuracies. In a Jupyter kernel the training runs in a background thread (the
widgets' `ChunkRunner`), so Stop and the other controls stay responsive; Race after Stop goes on with the
runs whose settings did not change.
"""
from __future__ import annotations

import html
import time

import ipywidgets as W
import numpy as np

from cnnlab.metrics import running_mean
from widgets._background import ChunkRunner
from widgets._controls import spanning
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._optimizers import LABELS, color, linestyle, runner_controls
from widgets._view import WidgetView
from widgets.cnn_race_model import CNNRaceModel, CNNRun, race_data

__all__ = ["CNNRun", "CNNRaceModel", "CNNRace", "cnn_race"]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class CNNRace(WidgetView):
    """The widget: `.model`, controls (`.enable[name]`, `.lr[name]`, `.epochs`, `.momentum`, `.race_button`,
    `.stop_button`), the figure `.view` and the results table `.table`.

    `background`: train in a thread (default: when running in a Jupyter kernel), so Stop works; else every
    control change trains synchronously (tests, scripts). Either way `.runner` (a ChunkRunner) steps the
    race CHUNK steps at a time; `run()` always trains synchronously; `wait()` blocks until a background
    race has finished.
    """

    CHUNK = 8           # steps of one run between two looks at the Stop button
    REDRAW_EVERY = 0.3  # seconds between redraws while training (the last chunk is always drawn)

    def __init__(self, model: CNNRaceModel, background: bool | None = None, autostart: bool = True):
        self.model = model
        self.background = _in_kernel() if background is None else bool(background)
        super().__init__()
        self._last_draw = 0.0
        self.runner = ChunkRunner(self._work, on_done=self.guard(self._finish), on_error=self.show_error,
                                  name="cnn_race")
        style = {"description_width": "95px"}
        # every range holds the model's value: the controls show the model's settings, never clamp them
        self.enable, self.lr, rows = runner_controls(model.enabled, model.lrs, (-5, 1), step=0.1)
        low, high = spanning(1, 5, model.epochs)
        self.epochs = W.IntSlider(value=model.epochs, min=low, max=high, description="epochs",
                                  continuous_update=False, style=style)
        self.momentum = W.FloatSlider(value=model.momentum, min=0.0, max=max(0.99, model.momentum), step=0.01,
                                      description="momentum μ", continuous_update=False, style=style)
        self.race_button = W.Button(description="Race", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop")
        self.table = W.HTML()
        self._build_figure()
        # the curves redraw alone over a saved picture of the axes while the race streams (see FigureView)
        self.view = FigureView(self.fig, animated=[*self.raw.values(), *self.smooth.values(), *self.crosses.values(),
                                                   *self.acc_lines.values()],
                               pictures=4)  # only the panels' limits change: the last 4 states' pictures serve
                                           # (a restart blits its first frame when those limits are among them)

        self.observe(self._on_control, self.epochs, self.momentum, *self.enable.values(), *self.lr.values())
        self.race_button.on_click(self.guard(lambda button: self.start()))
        self.stop_button.on_click(self.guard(lambda button: self.stop()))
        n, n_val = len(model.X), len(model.X_val)
        about = W.HTML(f"<small>{n} training images, batch {model.batch_size}, {model.steps_per_epoch} steps "
                       f"per epoch; validation on {n_val} images; same initial weights and batch order for "
                       f"everyone</small>")
        controls = W.VBox([W.HBox([self.race_button, self.stop_button]), self.epochs, self.momentum,
                           W.HTML("<b>runners</b>"), *rows])
        # the note goes under the figure, not in the controls' column, which its one long line would widen
        self.widget = W.VBox([W.HBox([controls, self.view.widget]), about, self.table, self.status.widget])
        self._draw()
        if autostart:
            self.start()

    # --- figure ----------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        self.fig, (self.ax_loss, self.ax_acc) = new_figure(1, 2, figsize=(8.4, 3.8), dpi=72,
                                                           gridspec_kw={"width_ratios": (1.7, 1)})
        self.raw, self.smooth, self.acc_lines, self.crosses = {}, {}, {}, {}
        for name in LABELS:
            c, ls = color(name), linestyle(name)
            self.raw[name], = self.ax_loss.plot([], [], "-", color=c, lw=0.6, alpha=0.3)
            self.smooth[name], = self.ax_loss.plot([], [], ls, color=c, lw=1.8, label=name)
            self.crosses[name], = self.ax_loss.plot([], [], "x", color=c, ms=10, mew=2.5, clip_on=False)
            self.acc_lines[name], = self.ax_acc.plot([], [], "o", ls=ls, color=c, lw=1.5, ms=4)
        self.ax_loss.set_xlabel("training step (mini-batch)")
        self.ax_loss.set_ylabel("cross-entropy loss")
        self.ax_loss.set_title("training loss (thick: mean of the last 8 steps; ✕: diverged)", fontsize=10)
        self.ax_acc.axhline(0.1, color="grey", lw=0.8, ls=":")
        self.ax_acc.text(1.0, 0.11, "chance", color="grey", fontsize=8)
        self.ax_acc.set_xlabel("epoch")
        self.ax_acc.set_ylabel("validation accuracy")
        self.ax_acc.set_title("validation accuracy after each epoch", fontsize=10)
        self.ax_acc.set_ylim(0, 1)
        self.ax_acc.legend(handles=list(self.smooth.values()), fontsize=8, ncol=2, loc="center",
                           bbox_to_anchor=(0.5, 0.4))
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.25)

    def _draw(self) -> None:
        m = self.model
        total = m.epochs * m.steps_per_epoch
        top = 0.0
        for name in LABELS:
            run = m.runs.get(name)
            losses = run.losses if run is not None else np.empty(0)
            finite = np.isfinite(losses)
            steps = np.arange(1, len(losses) + 1)
            self.raw[name].set_data(steps[finite], losses[finite])
            smooth = running_mean(losses[finite], 8) if finite.all() else running_mean(losses[:np.argmin(finite)], 8)
            self.smooth[name].set_data(steps[:len(smooth)], smooth)
            if len(smooth):
                top = max(top, float(np.max(smooth)))
            if run is not None and run.diverged_at is not None:
                self.crosses[name].set_data([run.diverged_at], [np.nan])  # y is set below, at the top edge
            else:
                self.crosses[name].set_data([], [])
            acc = run.val_accuracy if run is not None else np.empty(0)
            self.acc_lines[name].set_data(np.arange(1, len(acc) + 1), acc)
        top = min(max(top, np.log(10)) * 1.1, 4 * np.log(10))  # ln 10: the loss of a uniform guess
        self.ax_loss.set_xlim(0, max(total, 2))
        self.ax_loss.set_ylim(0, np.ceil(top * 2) / 2)  # on a grid of 0.5: the axis rarely moves while it trains
        for cross in self.crosses.values():
            x = cross.get_xdata()
            if len(x):
                cross.set_data(x, [self.ax_loss.get_ylim()[1]])
        self.ax_acc.set_xlim(0.5, m.epochs + 0.5)
        self.ax_acc.set_xticks(range(1, m.epochs + 1))
        self.view.refresh()
        self._table()

    def _table(self) -> None:
        rows = []
        for name, s in self.model.summary().items():
            acc = "–" if s["val_accuracy"] is None else f"{s['val_accuracy']:.1%}"
            loss = "–" if s["final_loss"] is None else f"{s['final_loss']:.3f}"
            state = (f'<b style="color:#cf222e">diverged at step {s["diverged_at"]}</b>' if s["diverged_at"]
                     else s["status"])
            rows.append(f'<tr><td style="color:{color(name)}"><b>{html.escape(name)}</b></td><td>{s["lr"]:.1e}</td>'
                        f'<td>{s["steps"]}</td><td>{loss}</td><td>{acc}</td><td>{state}</td></tr>')
        head = ("<tr><th>optimizer</th><th>lr</th><th>steps</th><th>train loss (last epoch)</th>"
                "<th>validation accuracy</th><th></th></tr>")
        self.table.value = (f'<table style="font-size:12px;border-spacing:10px 1px">{head}{"".join(rows)}</table>'
                            if rows else "")

    # --- training ----------------------------------------------------------------------------------
    def _read_controls(self) -> None:
        m = self.model
        m.enabled = {name for name, box in self.enable.items() if box.value}
        m.lrs = {name: float(slider.value) for name, slider in self.lr.items()}
        m.epochs, m.momentum = int(self.epochs.value), float(self.momentum.value)

    def _on_control(self, change) -> None:
        if change["owner"] in self.lr.values():  # moving a learning rate means: race this optimizer
            name = next(n for n, s in self.lr.items() if s is change["owner"])
            with self.syncing():
                self.enable[name].value = True
        self.start()

    def _begin(self) -> bool:
        """Read the controls and set up the runs; False (with a message) when no optimizer is ticked."""
        self._read_controls()
        self.model.start()
        if not self.model.enabled:
            self._draw()
            self.status.show("tick at least one optimizer to start the race", "warn")
            return False
        self.status.show("training …")
        self._last_draw = None  # the runner's first chunk draws the race at once, before it trains
        return True

    def _work(self) -> bool:
        """The runner's chunk: CHUNK more steps of the unfinished run that is furthest behind (round-robin, so
        Stop is heard after one run's chunk), redrawn now and then (and once before the first chunk: the first
        frame, with the runs that start again cleared); True while some run is unfinished."""
        if self.model.done:
            return False
        if self._last_draw is None:
            self._draw()
            self._progress()
            self._last_draw = time.perf_counter()
        runs = {name: run for name, run in self.model.runs.items() if not self.model.finished(run)}
        behind = min(runs, key=lambda name: len(runs[name].history.steps))  # the first of equals: registry order
        more = self.model.advance(self.CHUNK, names={behind})
        if time.perf_counter() - self._last_draw >= self.REDRAW_EVERY:
            self._draw()
            self._progress()
            self._last_draw = time.perf_counter()
        return more

    def _finish(self) -> None:
        """The race ended (done, stopped or failed): the last picture, and the verdict unless an error is
        on the status line."""
        self._draw()
        if self.runner.error is None:
            self._report(stopped=not self.model.done)

    def run(self) -> None:
        """Read the controls and train every enabled run to the end (or until Stop), redrawing as it goes,
        in this thread."""
        if self._begin():
            self.runner.run()

    def _progress(self) -> None:
        m = self.model
        done = sum(len(r.history.steps) for r in m.runs.values())
        total = len(m.runs) * m.epochs * m.steps_per_epoch
        self.status.show(f"training … {done} of {total} steps")

    def _report(self, stopped: bool = False) -> None:
        summary = self.model.summary()
        diverged = [n for n, s in summary.items() if s["diverged_at"]]
        finished = {n: s for n, s in summary.items() if s["val_accuracy"] is not None and not s["diverged_at"]}
        parts = []
        if finished:
            best = max(finished, key=lambda n: finished[n]["val_accuracy"])
            parts.append(f"best validation accuracy: {best} ({finished[best]['val_accuracy']:.1%})")
        if diverged:
            parts.append("diverged: " + ", ".join(f"{n} at step {summary[n]['diverged_at']}" for n in diverged))
        if stopped:
            parts.insert(0, "stopped (press Race to go on)")
        trained, kept = self.model.trained, len(summary) - len(self.model.trained)
        if kept and trained:
            parts.append(f"trained {', '.join(trained)} in {self.model.seconds:.2f} s; {kept} unchanged "
                         f"run{'s' if kept > 1 else ''} kept")
        else:
            parts.append(f"{self.model.seconds:.1f} s of training")
        self.status.show(" · ".join(parts), "warn" if diverged or stopped else "ok")

    def start(self) -> None:
        """Stop a race in progress, then race with the current settings (in a thread in a kernel)."""
        self.stop()
        if not self.background:
            self.run()
        elif self._begin():
            self.runner.start()

    def stop(self) -> None:
        """Ask a background race to stop after its current chunk and wait for it."""
        self.runner.stop()
        self.runner.join()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background race has finished (the notebook does this before asserting)."""
        self.runner.join(timeout)


def cnn_race(optimizers=None, lrs: dict | None = None, epochs: int = 2, momentum: float = 0.9,
             n_train: int = 2000, n_val: int = 500, batch_size: int = 64, seed: int = 0, data=None,
             background: bool | None = None, autostart: bool = True) -> CNNRace:
    """The race on the real CNN.

    optimizers: names or labels of cnnlab.optim.OPTIMIZERS (default all of them); lrs: overrides of their
    learning rates for this CNN (`lr_cnn`), e.g. {"SGD": 0.05}; data: (X, y, X_val, y_val), default
    `race_data(n_train, n_val, seed)`: images of the shipped Fashion-MNIST subset, drawn with `seed`. The race starts at once (autostart).
    """
    if data is None:
        data = race_data(n_train, n_val, seed)
    if len(data) != 4:
        raise ValueError(f"data must be (X, y, X_val, y_val), got {len(data)} items")
    model = CNNRaceModel(*data, enabled=optimizers, lrs=lrs, epochs=epochs, momentum=momentum,
                         batch_size=batch_size, seed=seed)
    return CNNRace(model, background=background, autostart=autostart)
