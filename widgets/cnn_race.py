"""`cnn_race()`: the optimizers of the surface race, now training the same small CNN, fairly.

Every run starts from the same initial weights (one `state_dict`, loaded into each run's network) and
sees the same mini-batches in the same order (each run's `Trainer` shuffles with the same seed), so the
only difference between two curves is the optimizer and its learning rate. The names, colours and
factories come from `widgets.optimizer_race.OPTIMIZERS`: the race on the surface and the race on the CNN
step the very same `cnnlab.optim` classes.

`CNNRaceModel` is plain NumPy (drive it without a browser): `start()`, then `advance(steps)` again and
again (a chunk of steps per run, round-robin, so the curves grow side by side), or `run()` to the end.
Runs whose settings did not change are kept, so moving one learning rate retrains one run only.
`CNNRace` adds the controls (a checkbox and a log learning-rate slider per optimizer, epochs,
momentum, Race and Stop buttons), one figure redrawn in place (mini-batch loss against step,
validation accuracy against epoch) and a table of the final validation accuracies. In a Jupyter
kernel the training runs in a background thread, so Stop and the other controls stay responsive.
"""
from __future__ import annotations

import contextlib
import html
import threading
import time
from dataclasses import dataclass

import ipywidgets as W
import numpy as np

from cnnlab import Sequential
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.train import Trainer
from widgets._figure import FigureView, new_figure
from widgets._guard import StatusLine, guarded
from widgets.optimizer_race import OPTIMIZERS

__all__ = ["CNN_LRS", "BlowUp", "race_net", "CNNRun", "CNNRaceModel", "CNNRace", "cnn_race"]

# Learning rates for the CNN (the surface race's defaults are for 2-D surfaces): for each optimizer the
# lowest validation loss of a coarse sweep (steps of about 3x, bracketed on both sides) after one epoch
# on 2,000 subset images, batch 64, seed 0, momentum 0.9. Tuned for this set-up only (lesson 07).
CNN_LRS = {"SGD": 0.3, "Momentum": 0.1, "Nesterov": 0.1, "AdaGrad": 0.03, "AdaDelta": 10.0,
           "RMSprop": 3e-3, "Adam": 1e-2}
USES_MOMENTUM = ("Momentum", "Nesterov")  # the only factories that read the momentum


def _one_blas_thread():
    """The racing CNN's matrix products are small: one BLAS thread is faster than several (a training
    step took 16 ms on two threads and 3 ms on one, on a busy 2-core machine). Uses threadpoolctl when it
    is installed (it is optional); without it nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - depends on the environment
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class BlowUp:
    """A Trainer callback: end the run as "diverged" once the mean mini-batch loss of the last `window`
    steps exceeds `limit`. The Trainer itself only catches a non-finite loss; an adaptive optimizer with a
    huge learning rate takes bounded steps and can sit at a loss of 10^4 for ever without overflowing."""

    def __init__(self, limit: float, window: int = 8):
        self.limit, self.window, self.losses = float(limit), int(window), []

    def on_step_end(self, trainer, info) -> None:
        self.losses.append(info["loss"])
        recent = float(np.mean(self.losses[-self.window:]))
        if recent > self.limit:
            trainer.history.diverged_at = info["step"]
            trainer.stop("diverged", f"diverged at step {info['step']}: the mean loss of the last "
                                     f"{min(self.window, len(self.losses))} steps is {recent:.3g}, more than "
                                     f"{self.limit:.3g}")


def race_net(rng=0) -> Sequential:
    """The racing CNN: Conv2d(1, 8, 3) - ReLU - MaxPool2d(2) - Flatten - Linear(8*13*13, 10).

    Input (N, 1, 28, 28) images, output (N, 10) logits; 13,610 weights. `rng`: Generator or int seed.
    """
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return Sequential(Conv2d(1, 8, 3, rng=gen), ReLU(), MaxPool2d(2), Flatten(), Linear(8 * 13 * 13, 10, rng=gen))


@dataclass
class CNNRun:
    """One optimizer's run: its settings key, its Trainer (whose History holds the curves)."""
    name: str
    lr: float
    key: tuple
    trainer: Trainer

    @property
    def history(self):
        return self.trainer.history

    @property
    def losses(self) -> np.ndarray:
        """The mini-batch training loss of every step so far (the diverged step's loss is NaN or inf)."""
        return self.history.step_values("loss")

    @property
    def diverged_at(self):
        return self.history.diverged_at

    @property
    def val_accuracy(self) -> np.ndarray:
        return self.history.val_accuracy


class CNNRaceModel:
    """The race on the CNN: who runs, at which learning rates, for how many epochs.

    Inputs: X (N, 1, 28, 28) float images, y (N,) integer labels, X_val, y_val the same for validation.
    State: enabled (set of names of OPTIMIZERS), lrs (name -> lr), epochs, momentum (for Momentum and
    Nesterov), batch_size and seed (of the initial weights and of the shuffling). A run counts as
    diverged when its loss is not finite (the Trainer's rule) or when the mean of its last 8 mini-batch
    losses exceeds `blowup` (default 4 ln 10: four times the loss of a uniform guess over 10 classes).
    After `run()` (or `start()` + `advance()` until `done`): runs (name -> CNNRun) and `summary()`.
    """

    def __init__(self, X, y, X_val, y_val, enabled=None, lrs=None, epochs: int = 2, momentum: float = 0.9,
                 batch_size: int = 64, seed: int = 0, blowup: float = 4 * np.log(10)):
        X, X_val = np.asarray(X), np.asarray(X_val)
        y, y_val = np.asarray(y), np.asarray(y_val)
        for name, images, labels in (("X", X, y), ("X_val", X_val, y_val)):
            if images.ndim != 4 or images.shape[1:] != (1, 28, 28):
                raise ValueError(f"{name} must be images of shape (N, 1, 28, 28), got {images.shape}")
            if images.dtype.kind != "f":
                raise ValueError(f"{name} must hold float images (e.g. float32 in [0, 1]), got dtype {images.dtype}")
            if labels.shape != (len(images),) or labels.dtype.kind not in "iu":
                raise ValueError(f"labels for {name} must be integers of shape ({len(images)},), got "
                                 f"{labels.dtype} {labels.shape}")
        self.X, self.y, self.X_val, self.y_val = X.astype(np.float32, copy=False), y, X_val.astype(
            np.float32, copy=False), y_val
        self.enabled = set(OPTIMIZERS if enabled is None else enabled)
        self.lrs = dict(CNN_LRS)
        self.lrs.update(lrs or {})
        self.epochs, self.momentum, self.batch_size, self.seed = epochs, momentum, batch_size, seed
        if not blowup > 0:
            raise ValueError(f"blowup (the loss that counts as diverged) must be positive, got {blowup}")
        self.blowup = float(blowup)
        self._check()
        self.initial_state = race_net(seed).state_dict()  # the same starting weights for every run
        self.runs: dict[str, CNNRun] = {}
        self.seconds = 0.0
        self.trained: list[str] = []  # the runs the last run() had to train (the others were kept)

    def _check(self) -> None:
        unknown = (self.enabled | set(self.lrs)) - set(OPTIMIZERS)
        if unknown:
            raise ValueError(f"unknown optimizers {sorted(unknown)}; choose from {list(OPTIMIZERS)}")
        bad = {name: lr for name, lr in self.lrs.items() if not (np.isfinite(lr) and lr > 0)}
        if bad:
            raise ValueError(f"learning rates must be positive numbers, got {bad}")
        if not (isinstance(self.epochs, (int, np.integer)) and self.epochs >= 1):
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not (isinstance(self.batch_size, (int, np.integer)) and 1 <= self.batch_size <= len(self.X)):
            raise ValueError(f"batch_size must be an integer in [1, {len(self.X)}], got {self.batch_size!r}")

    def key(self, name: str) -> tuple:
        """What a run depends on besides the epochs (more epochs continue a run, they do not restart it)."""
        return (name, float(self.lrs[name]), float(self.momentum) if name in USES_MOMENTUM else None,
                int(self.batch_size), self.seed)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def _new_run(self, name: str) -> CNNRun:
        net = race_net(self.seed)
        net.load_state_dict(self.initial_state)
        factory = OPTIMIZERS[name][0]
        optimizer = factory(net.parameters(), self.lrs[name], self.momentum)
        trainer = Trainer(net, CrossEntropyLoss(), optimizer, self.X, self.y, batch_size=self.batch_size,
                          X_val=self.X_val, y_val=self.y_val, rng=self.seed, callbacks=[BlowUp(self.blowup)])
        return CNNRun(name, float(self.lrs[name]), self.key(name), trainer)

    def start(self) -> None:
        """Create a run for every enabled optimizer whose settings changed; keep the others."""
        self._check()
        runs = {}
        for name in OPTIMIZERS:
            if name not in self.enabled:
                continue
            old = self.runs.get(name)
            keep = old is not None and old.key == self.key(name) and (
                old.trainer.epoch < self.epochs or old.history.diverged
                or (old.trainer.epoch == self.epochs  # and not part-way into one epoch too many
                    and len(old.history.steps) == old.trainer.epoch * self.steps_per_epoch))
            runs[name] = old if keep else self._new_run(name)
        self.runs = runs

    def finished(self, run: CNNRun) -> bool:
        return run.history.diverged or run.trainer.epoch >= self.epochs

    @property
    def done(self) -> bool:
        return all(self.finished(run) for run in self.runs.values())

    def advance(self, steps: int = 8) -> bool:
        """`steps` more training steps for every unfinished run; returns True while some run is unfinished.

        Overflow on the way to a divergence is expected: it ends the run as "diverged" (the Trainer's
        verdict on a non-finite loss), never as an exception or a warning.
        """
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), _one_blas_thread():
            for run in self.runs.values():
                if not self.finished(run):
                    run.trainer.run(steps=steps, epochs=self.epochs)
        self.seconds += time.perf_counter() - t0
        return not self.done

    def run(self, chunk: int = 8, on_chunk=None, should_stop=None) -> None:
        """start(), then advance in chunks until done; `on_chunk()` after each, `should_stop()` ends early."""
        self.start()
        self.seconds = 0.0
        self.trained = [name for name, run in self.runs.items() if not self.finished(run)]
        while not self.done:
            if should_stop is not None and should_stop():
                return
            self.advance(chunk)
            if on_chunk is not None:
                on_chunk()

    def summary(self) -> dict:
        """name -> {"lr", "steps", "final_loss" (mean of the last epoch's mini-batch losses, or the last
        loss), "val_accuracy" (after the last finished epoch, None before), "diverged_at", "status"}."""
        table = {}
        for name, run in self.runs.items():
            h = run.history
            if h.epochs:
                final = h.epochs[-1]["train_loss"]
            else:
                final = float(run.losses[-1]) if len(run.losses) else None
            accuracy = h.epochs[-1]["val_accuracy"] if h.epochs else None
            status = "diverged" if h.diverged else ("done" if self.finished(run) else "running")
            table[name] = {"lr": run.lr, "steps": len(h.steps), "final_loss": final, "val_accuracy": accuracy,
                           "diverged_at": h.diverged_at, "status": status}
        return table


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` values at each step (fewer at the start): a readable loss curve."""
    if len(values) == 0:
        return values
    c = np.concatenate([[0.0], np.cumsum(values)])
    k = np.arange(1, len(values) + 1)
    lo = np.maximum(k - window, 0)
    return (c[k] - c[lo]) / (k - lo)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipywidgets
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class CNNRace:
    """The widget: `.model`, controls (`.enable[name]`, `.lr[name]`, `.epochs`, `.momentum`, `.race_button`,
    `.stop_button`), the figure `.view` and the results table `.table`.

    `background`: train in a thread (default: when running in a Jupyter kernel), so Stop works; else every
    control change trains synchronously (tests, scripts). `run()` always trains synchronously; `wait()`
    blocks until a background race has finished.
    """

    CHUNK = 8           # steps per run between two looks at the Stop button
    REDRAW_EVERY = 0.3  # seconds between redraws while training (the last chunk is always drawn)

    def __init__(self, model: CNNRaceModel, background: bool | None = None, autostart: bool = True):
        self.model = model
        self.background = _in_kernel() if background is None else bool(background)
        self.status = StatusLine()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._holding = False
        guard = guarded(self.status)
        style = {"description_width": "70px"}
        self.enable, self.lr, rows = {}, {}, []
        for name, (_, _, colour) in OPTIMIZERS.items():
            self.enable[name] = W.Checkbox(value=name in model.enabled, description=name, indent=False,
                                           layout=W.Layout(width="100px"))
            self.lr[name] = W.FloatLogSlider(value=model.lrs[name], base=10, min=-5, max=1, step=0.1,
                                             description="lr", readout_format=".1e", continuous_update=False,
                                             layout=W.Layout(width="300px"), style={"description_width": "20px"})
            swatch = W.HTML(f'<span style="color:{colour};font-size:20px">&#9632;</span>')
            rows.append(W.HBox([swatch, self.enable[name], self.lr[name]]))
        self.epochs = W.IntSlider(value=model.epochs, min=1, max=5, description="epochs", continuous_update=False,
                                  style=style)
        self.momentum = W.FloatSlider(value=model.momentum, min=0.0, max=0.99, step=0.01, description="momentum μ",
                                      continuous_update=False, style=style)
        self.race_button = W.Button(description="Race", button_style="success", icon="play")
        self.stop_button = W.Button(description="Stop", button_style="warning", icon="stop")
        self.table = W.HTML()
        self._build_figure()
        self.view = FigureView(self.fig)

        for control in [self.epochs, self.momentum, *self.enable.values(), *self.lr.values()]:
            control.observe(guard(self._on_control), names="value")
        self.race_button.on_click(guard(lambda button: self.start()))
        self.stop_button.on_click(guard(lambda button: self.stop()))
        n, n_val = len(model.X), len(model.X_val)
        about = W.HTML(f"<small>{n} training images, batch {model.batch_size}, {model.steps_per_epoch} steps "
                       f"per epoch; validation on {n_val} images; same initial weights and batch order for "
                       f"everyone</small>")
        controls = W.VBox([W.HBox([self.race_button, self.stop_button]), self.epochs, self.momentum,
                           W.HTML("<b>runners</b>"), *rows, about])
        self.widget = W.VBox([W.HBox([controls, self.view.widget]), self.table, self.status.widget])
        self._draw()
        if autostart:
            self.start()

    # --- figure ----------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        self.fig, (self.ax_loss, self.ax_acc) = new_figure(1, 2, figsize=(9.5, 3.8), dpi=72,
                                                           gridspec_kw={"width_ratios": (1.7, 1)})
        self.raw, self.smooth, self.acc_lines, self.crosses = {}, {}, {}, {}
        for name, (_, _, colour) in OPTIMIZERS.items():
            self.raw[name], = self.ax_loss.plot([], [], "-", color=colour, lw=0.6, alpha=0.3)
            self.smooth[name], = self.ax_loss.plot([], [], "-", color=colour, lw=1.8, label=name)
            self.crosses[name], = self.ax_loss.plot([], [], "x", color=colour, ms=10, mew=2.5, clip_on=False)
            self.acc_lines[name], = self.ax_acc.plot([], [], "o-", color=colour, lw=1.5, ms=4)
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
        for name in OPTIMIZERS:
            run = m.runs.get(name)
            losses = run.losses if run is not None else np.empty(0)
            finite = np.isfinite(losses)
            steps = np.arange(1, len(losses) + 1)
            self.raw[name].set_data(steps[finite], losses[finite])
            smooth = _smooth(losses[finite], 8) if finite.all() else _smooth(losses[:np.argmin(finite)], 8)
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
        self.ax_loss.set_ylim(0, top)
        for cross in self.crosses.values():
            x = cross.get_xdata()
            if len(x):
                cross.set_data(x, [top])
        self.ax_acc.set_xlim(0.5, m.epochs + 0.5)
        self.ax_acc.set_xticks(range(1, m.epochs + 1))
        self.view.refresh()
        self._table()

    def _table(self) -> None:
        rows = []
        for name, s in self.model.summary().items():
            colour = OPTIMIZERS[name][2]
            acc = "–" if s["val_accuracy"] is None else f"{s['val_accuracy']:.1%}"
            loss = "–" if s["final_loss"] is None else f"{s['final_loss']:.3f}"
            state = (f'<b style="color:#cf222e">diverged at step {s["diverged_at"]}</b>' if s["diverged_at"]
                     else s["status"])
            rows.append(f'<tr><td style="color:{colour}"><b>{html.escape(name)}</b></td><td>{s["lr"]:.1e}</td>'
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
            if not self.enable[name].value:
                self._holding = True
                try:
                    self.enable[name].value = True
                finally:
                    self._holding = False
        if not self._holding:
            self.start()

    def run(self) -> None:
        """Read the controls and train every enabled run to the end (or until Stop), redrawing as it goes."""
        self._read_controls()
        if not self.model.enabled:
            self.model.start()
            self._draw()
            self.status.show("tick at least one optimizer to start the race", "warn")
            return
        self.status.show("training …")
        last = [time.perf_counter()]

        def on_chunk():
            if time.perf_counter() - last[0] >= self.REDRAW_EVERY:
                self._draw()
                self._progress()
                last[0] = time.perf_counter()

        self.model.run(self.CHUNK, on_chunk=on_chunk, should_stop=self._stop.is_set)
        self._draw()
        self._report(stopped=not self.model.done)

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
            return
        self._thread = threading.Thread(target=guarded(self.status)(self.run), name="cnn_race", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ask a background race to stop after its current chunk and wait for it."""
        if self._thread is not None and self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        self._stop.clear()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background race has finished (the notebook does this before asserting)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def cnn_race(optimizers=None, lrs: dict | None = None, epochs: int = 2, momentum: float = 0.9,
             n_train: int = 2000, n_val: int = 500, batch_size: int = 64, seed: int = 0, data=None,
             background: bool | None = None, autostart: bool = True) -> CNNRace:
    """The race on the real CNN.

    optimizers: a subset of OPTIMIZERS' names (default all seven); lrs: overrides of CNN_LRS, e.g.
    {"SGD": 0.05}; data: (X, y, X_val, y_val), default n_train training and n_val test images of the
    shipped Fashion-MNIST subset, drawn with `seed`. The race starts at once (autostart).
    """
    if data is None:
        from cnnlab.data import load_fashion_mnist

        X, y, _ = load_fashion_mnist("train", source="subset")
        X_val, y_val, _ = load_fashion_mnist("test", source="subset")
        for name, n, limit in (("n_train", n_train, len(X)), ("n_val", n_val, len(X_val))):
            if not (isinstance(n, (int, np.integer)) and 1 <= n <= limit):
                raise ValueError(f"{name} must be an integer in [1, {limit}], got {n!r}")
        rng = np.random.default_rng(seed)
        train, val = rng.permutation(len(X))[:n_train], rng.permutation(len(X_val))[:n_val]
        data = (X[train], y[train], X_val[val], y_val[val])
    if len(data) != 4:
        raise ValueError(f"data must be (X, y, X_val, y_val), got {len(data)} items")
    model = CNNRaceModel(*data, enabled=optimizers, lrs=lrs, epochs=epochs, momentum=momentum,
                         batch_size=batch_size, seed=seed)
    return CNNRace(model, background=background, autostart=autostart)
