"""`regularization_explorer()`: turn one regularisation knob and watch the train/validation gap.

A small fully connected net (784 -> hidden -> 10) is trained on a few hundred Fashion-MNIST images, a
set small enough to memorise, and validated on a thousand others (see `widgets.regularization_runs`:
every run starts from the same weights and sees the same batch order, so the difference between two
runs is the knob's). A grey reference run without any regularisation is drawn under every run.

Knobs: L2 and L1 strength (both at once: an elastic net), max-norm c, dropout keep probability,
drop-connect on the output layer, batch norm after the hidden layer, data augmentation (random
2-pixel shifts and horizontal flips), early stopping with the best weights restored, learning
rate and epochs. Panels: training and validation loss against the epoch (the gap), a histogram
of log10|w| of every weight, and the sparsity (share of weights with |w| < 1e-2) against the epoch.

`RegularizationExplorer` adds the controls and one figure redrawn in place to a `RegularizationModel`.
In a live notebook the training runs in a background thread (the widgets' `ChunkRunner`, one epoch a
chunk), so Stop works and the curves grow while it trains; without an interactive canvas (tests, static
output) the same loop runs in the calling thread.
"""
from __future__ import annotations

import textwrap
import time
from dataclasses import fields, replace

import ipywidgets as W
import numpy as np

from widgets._background import ChunkRunner
from widgets._controls import spanning
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView
from widgets.regularization_runs import (DIVERGED_ABOVE, DROPCONNECT_P_KEEP, EARLY_STOPPING_PATIENCE, SPARSE_BELOW,
                                         RegularizationModel, Run, Settings, weight_sparsity)

__all__ = ["Settings", "Run", "RegularizationModel", "RegularizationExplorer", "regularization_explorer",
           "SPARSE_BELOW", "DROPCONNECT_P_KEEP", "EARLY_STOPPING_PATIENCE", "DIVERGED_ABOVE", "weight_sparsity"]

_LOG_EDGES = np.linspace(-6.0, 0.5, 66)  # bins of log10|w|; smaller magnitudes fall in the first bin


class RegularizationExplorer(WidgetView):
    """The widget: `.model`, the controls (`.l2`, `.l1`, `.max_norm`, `.p_keep`, `.dropconnect`,
    `.batchnorm`, `.augment`, `.early_stopping`, `.lr`, `.epochs`, `.auto`, `.train_button`,
    `.stop_button`), the figure `.view`, the `.status` line and `.runner` (the ChunkRunner that trains).
    `wait()` waits for a background run."""

    def __init__(self, model: RegularizationModel, settings: Settings, background: bool | None = None):
        self.model = model
        super().__init__()
        style, wide = {"description_width": "110px"}, W.Layout(width="330px")

        def choice(options, value, description, fmt="{:g}", off=None):
            if value not in options:  # a starting value between the stops: put it in its place
                options = sorted([*options, value], key=lambda v: (v != 0, -v if description.startswith("max") else v))
            labels = [(off if (off and v == 0) else fmt.format(v), v) for v in options]
            return W.SelectionSlider(options=labels, value=value, description=description, style=style,
                                     layout=wide, continuous_update=False)

        self.l2 = choice([0, 1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0], settings.l2, "L2 λ", off="off")
        self.l1 = choice([0, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 0.01], settings.l1, "L1 λ", off="off")
        self.max_norm = choice([0, 8.0, 4.0, 2.0, 1.0, 0.5, 0.25], settings.max_norm, "max-norm c", off="off")
        # the sliders' ranges hold the settings' values: the controls show them, never clamp them
        low, high = spanning(0.1, 1.0, settings.p_keep)
        self.p_keep = W.FloatSlider(value=settings.p_keep, min=low, max=high, step=0.05, description="dropout p_keep",
                                    style=style, layout=wide, continuous_update=False)
        self.lr = choice([1e-3, 3e-3, 0.01, 0.03, 0.05, 0.1, 0.3, 1.0, 3.0], settings.lr, "learning rate")
        low, high = spanning(5, 80, settings.epochs)
        self.epochs = W.IntSlider(value=settings.epochs, min=low, max=high, step=5, description="epochs", style=style,
                                  layout=wide, continuous_update=False)
        box = {"indent": False, "layout": W.Layout(width="210px")}
        self.dropconnect = W.Checkbox(value=settings.dropconnect, description=f"drop-connect (p={DROPCONNECT_P_KEEP})",
                                      **box)
        self.batchnorm = W.Checkbox(value=settings.batchnorm, description="batch norm", **box)
        self.augment = W.Checkbox(value=settings.augment, description="augmentation", **box)
        self.early_stopping = W.Checkbox(value=settings.early_stopping, description="early stopping", **box)
        self.auto = W.Checkbox(value=True, description="train on every change", **box)
        self.train_button = W.Button(description="Train", button_style="primary", layout=W.Layout(width="90px"))
        self.stop_button = W.Button(description="Stop", layout=W.Layout(width="90px"))
        self.controls = [self.l2, self.l1, self.max_norm, self.p_keep, self.lr, self.epochs, self.dropconnect,
                         self.batchnorm, self.augment, self.early_stopping]

        self._build_figure()
        # curves, histograms and texts redraw alone over a saved picture of the axes (see FigureView)
        self.view = FigureView(self.fig, animated=[
            self.ref_train, self.ref_val, self.train_line, self.val_line, self.end_marker, self.best_line, self.note,
            self.ref_hist, self.hist, self.ref_sparse, self.sparse_line, self.title,
            *(ax.title for ax in (self.ax_loss, self.ax_hist, self.ax_sparse))])
        self.background = self.view.interactive if background is None else bool(background)
        self._pending, self._last_draw, self._live = None, 0.0, np.inf
        guard = self.guard
        self.runner = ChunkRunner(self._work, on_done=guard(self._finish),
                                  on_error=self.show_error, name="regularization_explorer")
        self.observe(self._on_change, *self.controls)
        self.train_button.on_click(guard(lambda _: self.train()))
        self.stop_button.on_click(guard(lambda _: self.stop()))
        left = W.VBox([self.l2, self.l1, self.max_norm, self.p_keep, self.lr, self.epochs])
        right = W.VBox([self.dropconnect, self.batchnorm, self.augment, self.early_stopping, self.auto,
                        W.HBox([self.train_button, self.stop_button])])
        self.widget = W.VBox([W.HBox([left, right]), self.view.widget, self.status.widget])
        self.train()

    # --- figure -------------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        self.fig, (self.ax_loss, self.ax_hist, self.ax_sparse) = new_figure(1, 3, figsize=(11.5, 3.8), dpi=80)
        gray = {"color": "0.6", "lw": 1.2, "ls": "--"}
        self.ref_train, = self.ax_loss.plot([], [], **gray, label="reference: training")
        self.ref_val, = self.ax_loss.plot([], [], color="0.6", lw=1.2, ls=":", label="reference: validation")
        self.train_line, = self.ax_loss.plot([], [], "C0-", lw=1.8, label="training")
        self.val_line, = self.ax_loss.plot([], [], "C1-", lw=1.8, label="validation")
        self.end_marker, = self.ax_loss.plot([], [], "rx", ms=10, mew=2)
        self.best_line = self.ax_loss.axvline(0, color="C2", lw=1, ls="-.", visible=False)
        self.note = self.ax_loss.text(0.5, 0.5, "", transform=self.ax_loss.transAxes, ha="center", va="center",
                                      color="C3", fontsize=11, fontweight="bold")
        self.ax_loss.set_xlabel("epoch"), self.ax_loss.set_ylabel("cross-entropy loss")
        self.ax_loss.legend(fontsize=7, loc="best")
        zeros = np.zeros(len(_LOG_EDGES) - 1)
        self.ref_hist = self.ax_hist.stairs(zeros, _LOG_EDGES, color="0.6", lw=1.2, label="reference")
        self.hist = self.ax_hist.stairs(zeros, _LOG_EDGES, color="C0", lw=1.6, label="this run")
        self.ax_hist.axvline(np.log10(SPARSE_BELOW), color="C3", lw=1, ls=":")
        self.ax_hist.set_xlabel(r"$\log_{10}|w|$ (all weights; $\leq 10^{-6}$ in the first bin)")
        self.ax_hist.set_ylabel("share of weights per bin")
        self.ax_hist.legend(fontsize=7, loc="upper left")
        self.ref_sparse, = self.ax_sparse.plot([], [], **gray, label="reference")
        self.sparse_line, = self.ax_sparse.plot([], [], "C0-", lw=1.8, label="this run")
        self.ax_sparse.set_ylim(0, 1)
        self.ax_sparse.set_xlabel("epoch"), self.ax_sparse.set_ylabel(f"share of weights with |w| < {SPARSE_BELOW:g}")
        self.ax_sparse.legend(fontsize=7, loc="best")
        self.title = self.fig.suptitle("", fontsize=10)
        self.fig.subplots_adjust(left=0.055, right=0.99, bottom=0.15, top=0.84, wspace=0.25)

    @staticmethod
    def _histogram(weights) -> np.ndarray:
        logs = np.log10(np.maximum(np.abs(weights), 10.0 ** _LOG_EDGES[0]))
        counts, _ = np.histogram(np.minimum(logs, _LOG_EDGES[-1]), bins=_LOG_EDGES)
        return counts / max(len(weights), 1)

    def _draw(self) -> None:
        run, ref = self.model.current, self.reference
        def epochs_of(values):
            return np.arange(1, len(values) + 1)

        for line, values in ((self.ref_train, ref.train_loss), (self.ref_val, ref.val_loss),
                             (self.train_line, run.train_loss), (self.val_line, run.val_loss),
                             (self.ref_sparse, ref.sparsity), (self.sparse_line, run.sparsity)):
            line.set_data(epochs_of(values), values)
        self.ref_hist.set_data(self._histogram(ref.weights))
        self.hist.set_data(self._histogram(run.weights))
        shown = [v for v in (*ref.train_loss, *ref.val_loss, *run.train_loss, *run.val_loss) if np.isfinite(v)]
        # limits on a grid (0.5 of loss, 0.1 of share): most redraws while training blit the curves alone
        self.ax_loss.set_ylim(0, np.ceil(2 * min(max(shown, default=2.5), 5.0) * 1.08) / 2)
        for ax in (self.ax_loss, self.ax_sparse):
            ax.set_xlim(0.5, run.settings.epochs + 0.5)
        tallest = max(self.hist.get_data().values.max(), self.ref_hist.get_data().values.max(), 0.05)
        self.ax_hist.set_ylim(0, np.ceil(10 * tallest * 1.1) / 10)
        diverged = run.status == "diverged"
        finite = [(i + 1, v) for i, v in enumerate(run.val_loss) if np.isfinite(v)]
        self.end_marker.set_data(([finite[-1][0]], [finite[-1][1]]) if diverged and finite else ([], []))
        self.note.set_text("diverged" if diverged else "")
        self.best_line.set_visible(run.best_epoch is not None)
        if run.best_epoch is not None:
            self.best_line.set_xdata([run.best_epoch, run.best_epoch])
        epoch = len(run.train_loss)
        self.title.set_text(textwrap.shorten(f"{run.settings.describe()} · lr {run.settings.lr:g}", 150,
                                             placeholder=" ..."))
        self.ax_loss.set_title(f"loss, epoch {epoch} of {run.settings.epochs}", fontsize=9)
        self.ax_hist.set_title("magnitudes of the weights", fontsize=9)
        self.ax_sparse.set_title(f"sparsity: {weight_sparsity(run.weights):.0%} (reference "
                                 f"{weight_sparsity(ref.weights):.0%})", fontsize=9)
        self.view.refresh()
        self._last_draw = time.perf_counter()
        self._report()

    def _report(self) -> None:
        run, ref = self.model.current, self.reference
        if run.status == "diverged":
            self.status.show(f"{run.settings.describe()}, lr {run.settings.lr:g}: {run.message}", "warn")
            return
        if not run.val_loss:
            self.status.show(f"{run.settings.describe()}: training...")
            return
        k = run.final
        text = (f"{run.settings.describe()}: epoch {k + 1}, training loss {run.train_loss[k]:.3f}, "
                f"validation loss {run.val_loss[k]:.3f} (gap {run.gap:+.3f}; reference {ref.gap:+.3f}), "
                f"validation accuracy {run.val_accuracy[k]:.1%}")
        if run.status == "early_stopping":
            text += f"; stopped early, weights of epoch {run.best_epoch} restored"
        elif run.status == "stopped":
            text += "; stopped"
        self.status.show(text, "ok" if run.finished else "info")

    # --- training -----------------------------------------------------------------------------------
    def settings(self) -> Settings:
        return Settings(l2=self.l2.value, l1=self.l1.value, max_norm=self.max_norm.value, p_keep=self.p_keep.value,
                        dropconnect=self.dropconnect.value, batchnorm=self.batchnorm.value, augment=self.augment.value,
                        early_stopping=self.early_stopping.value, lr=self.lr.value, epochs=self.epochs.value)

    def _on_change(self, change=None) -> None:
        if self.auto.value:
            self.train()

    def train(self) -> None:
        """Stop a run in progress, then train the controls' settings from scratch (in the background
        when the figure is interactive, else right here)."""
        self.stop()
        self._pending = self.settings()
        self.status.show(f"{self._pending.describe()}: training...")
        if self.background:
            self.runner.start()
        else:
            self.runner.run()

    def _work(self) -> bool:
        """The runner's chunk: first the run's set-up, then one epoch at a time; True while the run goes on."""
        if self._pending is not None:
            settings, self._pending = self._pending, None
            self._begin(settings)
            return True
        finished = self.model.step()
        if not finished and time.perf_counter() - self._last_draw > self._live:
            self._draw()
        return not finished

    def _begin(self, settings: Settings) -> None:
        """The reference run for these settings (trained once, then cached), the new run, its first picture."""
        unregularized = settings == settings.without_regularization()
        self.reference = self.model.cached_reference(settings)
        if self.reference is None and not unregularized:
            self.reference = self.model.reference(settings)
        run = self.model.start(settings)
        if self.reference is None:
            self.reference = run  # this run is the reference: draw it against itself
        # live curves on an interactive canvas (a redraw costs little there); a PNG is rendered once at the end
        self._live = 0.3 if self.view.interactive else np.inf
        self._draw()

    def _finish(self) -> None:
        """The run ended (finished, stopped or failed): a run cut short is marked stopped and drawn; an
        error stays on the status line."""
        if self.runner.error is not None:
            return
        if self._pending is not None:  # stopped before the run began: the last picture stays
            self._pending = None
            self.status.show("stopped before training began; press Train to train", "info")
            return
        self.model.stop()  # a no-op for a run that finished
        self._draw()

    def stop(self) -> None:
        """Stop the background run (if any) and wait until it has ended."""
        self.runner.stop()
        self.runner.join()

    def wait(self, timeout: float | None = 120.0) -> Run:
        """Wait for a background run to finish; returns the current Run."""
        if not self.runner.join(timeout):
            raise TimeoutError(f"the training run did not finish within {timeout} s")
        return self.model.current


def regularization_explorer(X=None, y=None, X_val=None, y_val=None, *, n_train: int = 500, n_val: int = 1000,
                            hidden: int = 128, batch_size: int = 50, seed: int = 0, background: bool | None = None,
                            **settings) -> RegularizationExplorer:
    """The regularisation explorer.

    Without data it takes n_train training and n_val validation images at random (seeded) from the
    shipped Fashion-MNIST subset's training split. `settings`: starting values of the knobs, any field
    of `Settings` (l2, l1, max_norm, p_keep, dropconnect, batchnorm, augment, early_stopping, lr, epochs).
    background: train in a thread (default: when the figure is interactive, i.e. under ipympl).
    """
    unknown = set(settings) - {f.name for f in fields(Settings)}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}; choose from {[f.name for f in fields(Settings)]}")
    start = replace(Settings(), **settings).check()
    if X is None:
        if y is not None or X_val is not None or y_val is not None:
            raise ValueError("give the data X, y, X_val, y_val all together, or none of them")
        if n_train < 1 or n_val < 1:
            raise ValueError(f"n_train and n_val must be >= 1, got {n_train} and {n_val}")
        from cnnlab.data import load_fashion_mnist

        X_all, y_all, _ = load_fashion_mnist("train", source="subset")
        if n_train + n_val > len(X_all):
            raise ValueError(f"n_train + n_val = {n_train + n_val} exceeds the {len(X_all)} images of the subset")
        order = np.random.default_rng(seed).permutation(len(X_all))
        X, y = X_all[order[:n_train]], y_all[order[:n_train]]
        X_val, y_val = X_all[order[n_train:n_train + n_val]], y_all[order[n_train:n_train + n_val]]
    elif y is None or X_val is None or y_val is None:
        raise ValueError("give the data X, y, X_val, y_val all together, or none of them")
    model = RegularizationModel(X, y, X_val, y_val, hidden=hidden, batch_size=batch_size, seed=seed)
    return RegularizationExplorer(model, start, background=background)
