"""`training_dashboard()`: train a CNN on Fashion-MNIST and watch it learn, live.

Curves of the training and validation loss and accuracy, the first- and second-layer filters and the
feature maps of a chosen image are redrawn while the network trains; the learning rate can be changed
mid-run; Stop and Resume work while training; when the run stops or ends, a confusion matrix and the
misclassified validation images appear (the test set is kept for one final evaluation, Veta's workflow).

`DashboardModel` (in `widgets.dashboard_model`) trains synchronously (`train_chunk(steps)`, no threads, no
browser): tests and notebooks drive it directly. `TrainingDashboard` adds the controls and four figures
(drawn by `widgets.dashboard_figures`); its Train and Resume buttons step the model in chunks from a
background thread (`ChunkRunner`, see `widgets._background`), so the kernel keeps handling clicks. A lock
around the trainer keeps the thread and the controls from using the network at the same time; the figures
read a copy of the network (`viz_net`) refreshed after every chunk, and a second lock keeps the thread and
the controls from drawing a figure at the same time.
"""
from __future__ import annotations

import threading
import time

import ipywidgets as W

from cnnlab.optim import OPTIMIZERS
from widgets._background import ChunkRunner
from widgets._controls import log_spanning, spanning
from widgets._figure import FigureView
from widgets._view import WidgetView
from widgets.dashboard_figures import DashboardFigures
from widgets.dashboard_model import DashboardModel, positive_int

__all__ = ["DashboardModel", "TrainingDashboard", "training_dashboard"]

def _menu_label(spec) -> str:
    """"Momentum (μ = 0.9)", "AdamW (decay 0.01)": the label, and the momentum of the entries that use one or
    the decoupled weight decay of those that have one."""
    if spec.uses_momentum:
        return f"{spec.label} (μ = {spec.hyperparameters['momentum']:g})"
    if spec.cls.decoupled_weight_decay and spec.hyperparameters["weight_decay"]:
        return f"{spec.label} (decay {spec.hyperparameters['weight_decay']:g})"
    return spec.label


class TrainingDashboard(DashboardFigures, WidgetView):
    """The dashboard widget: `.model`, the controls (`.optimizer`, `.batch_size`, `.epochs`, `.lr`, `.image`,
    `.train_button`, `.stop_button`, `.resume_button`), four figures (`.curves_view`, `.filters_view`,
    `.maps_view`, `.results_view`), `.status` and the training thread `.runner`.

    chunk_steps: steps per chunk of the training thread; min_redraw_seconds: the thread redraws at most
    this often (and always when it ends). `train_chunk(steps)` trains and redraws without a thread.
    """

    def __init__(self, model: DashboardModel, chunk_steps: int = 5, min_redraw_seconds: float = 1.0):
        self.model, self.chunk_steps = model, positive_int(chunk_steps, "chunk_steps")
        self.min_redraw_seconds = float(min_redraw_seconds)
        super().__init__()
        self._draw_lock, self._last_draw, self._busy, self._restart = threading.RLock(), 0.0, False, False
        self._draw_first = False  # the thread draws the new run's figures before its first chunk (see train)
        self.runner = ChunkRunner(self._work, on_done=self.guard(self._on_thread_done), on_error=self.show_error)
        style = {"description_width": "90px"}
        # every control shows the model's setting (ranges and menus hold it)
        self.optimizer = W.Dropdown(options=[(_menu_label(spec), name) for name, spec in OPTIMIZERS.items()],
                                    value=model.optimizer_name, description="optimizer", style=style)
        sizes = sorted({16, 32, 64, 128, 256, model.batch_size})
        self.batch_size = W.Dropdown(options=sizes, value=model.batch_size, description="batch size", style=style)
        low, high = spanning(1, 30, model.epochs)
        self.epochs = W.IntSlider(value=model.epochs, min=low, max=high, description="epochs",
                                  continuous_update=False, style=style)
        low, high = log_spanning(-5, 1, model.lr)
        self.lr = W.FloatLogSlider(value=model.lr, base=10, min=low, max=high, step=0.1, description="learning rate",
                                   readout_format=".1e", continuous_update=False, style=style)
        self.image = W.IntSlider(value=0, min=0, max=len(model.X_val) - 1, description="image",
                                 continuous_update=False, style=style)
        self.train_button = W.Button(description="Train", icon="play", button_style="success",
                                     tooltip="start a new run from the initial weights")
        self.stop_button = W.Button(description="Stop", icon="stop", button_style="danger", disabled=True)
        self.resume_button = W.Button(description="Resume", icon="forward", disabled=True,
                                      tooltip="continue the stopped run")
        self._build_figures()
        self.update()  # sets every artist; the views below render the figures once
        # what changes redraws alone over a saved picture of the rest of its figure (see FigureView)
        # its static picture is fixed by the axes' limits: menus moved back and forth blit (pictures)
        self.curves_view = FigureView(self.fig_curves, animated=[*self.lines.values(), *self.diverged_marks],
                                      pictures=8)
        self.filters_view = FigureView(self.fig_filters, animated=[
            *(t for t in self.filter_images if t is not None), *(ax.title for ax in self.filter_axes)])
        self.maps_view = FigureView(self.fig_maps, animated=[
            *(t for t in self.map_images if t is not None), self.image_tile,
            *(ax.title for ax in [*self.map_axes, self.ax_image])])
        self.results_view = FigureView(self.fig_results, animated=[
            self.confusion_image, self.wrong_image, *self.wrong_labels, self.ax_confusion.title, self.ax_wrong.title])
        self.observe(lambda c: self._new_run(self.model.set_optimizer, c["new"]), self.optimizer)
        self.observe(lambda c: self._new_run(self.model.set_batch_size, c["new"]), self.batch_size)
        self.observe(self._on_epochs, self.epochs)
        self.observe(self._on_lr, self.lr)
        self.observe(lambda c: self._draw_maps(), self.image)
        self.train_button.on_click(self.guard(self.train))
        self.stop_button.on_click(self.guard(self.stop))
        self.resume_button.on_click(self.guard(self.resume))
        buttons = W.HBox([self.train_button, self.stop_button, self.resume_button])
        controls = W.VBox([buttons, W.HBox([self.optimizer, self.batch_size]), W.HBox([self.lr, self.epochs])])
        self.widget = W.VBox([controls, self.status.widget, self.curves_view.widget, self.filters_view.widget,
                              self.image, self.maps_view.widget, self.results_view.widget])

    def _draw_progress(self) -> None:
        with self._draw_lock:
            self._draw_curves()
            self._draw_filters()
            self._draw_maps()
            self._drawn_weights = self._weights_key()
            self._report()

    def _weights_key(self) -> tuple:
        """What the filters, maps and results are drawn from: the net's parameters (as bytes) and the step."""
        return (self.model.step, hash(b"".join(p.data.tobytes() for p in self.model.net.parameters())))

    def update(self) -> None:
        """Redraw the figures and the status from the model (what the end of a run does). The filters, maps
        and results are redrawn only when the weights (or, for the results, whether a run is going on)
        changed since they were drawn: a new setting before any training redraws the curves alone."""
        with self._draw_lock:
            weights = self._weights_key()
            self._draw_curves()
            if weights != getattr(self, "_drawn_weights", None):
                self._draw_filters()
                self._draw_maps()
                self._drawn_weights = weights
            self._report()
            results = (weights, self.model.step > 0 and not self._busy)
            if results != getattr(self, "_drawn_results", None):
                self._draw_results()
                self._drawn_results = results
            self._set_buttons()

    # --- status and buttons ------------------------------------------------------------------------------
    def _report(self) -> None:
        m = self.model
        if self.runner.error is not None and not self._busy:
            self.show_error(self.runner.error)
            return
        e = m.evals[-1] if m.evals else None
        val = f" · validation accuracy {e['val_accuracy']:.1%}" if e else ""
        epoch = min(m.trainer.epoch + 1, m.epochs)
        where = f"step {m.step} of {m.epochs * m.steps_per_epoch}, epoch {epoch}/{m.epochs}"
        if m.state == "diverged":
            self.status.show(m.message, "warn")
        elif m.state == "completed":
            self.status.show(f"finished {m.epochs} epochs ({m.step} steps){val}; raise epochs and press Resume "
                             "to go on", "ok")
        elif self._busy and not m.paused and m.step == 0:
            self.status.show(f"training: starting, {m.epochs * m.steps_per_epoch} steps · lr {m.lr:.1e}")
        elif m.state == "ready":
            self.status.show(f"press Train: {len(m.X_train)} training and {len(m.X_val)} validation images, "
                             f"{m.steps_per_epoch} steps per epoch")
        elif self._busy and not m.paused:
            last = m.trainer.history.steps[-1]["loss"]
            self.status.show(f"training: {where} · loss {last:.3f}{val} · lr {m.lr:.1e}")
        else:
            self.status.show(f"stopped at {where}{val}; Resume continues, Train starts again")

    def _set_buttons(self) -> None:
        running = self._busy
        self.stop_button.disabled = not running
        self.resume_button.disabled = running or self.model.finished or self.model.step == 0

    # --- actions -------------------------------------------------------------------------------------------
    def _work(self) -> bool:
        if self._draw_first:  # Train has answered already; the new run's figures are drawn here, off the click
            self._draw_first = False
            self.update()
        more = self.model.train_chunk(self.chunk_steps)
        now = time.monotonic()
        if now - self._last_draw >= self.min_redraw_seconds:
            self._last_draw = now
            self._draw_progress()
        return more

    def _on_thread_done(self) -> None:
        self._busy, self._last_draw, self._draw_first = False, 0.0, False
        self.update()

    def _restart_when_ended(self) -> None:
        """In a waiting thread: once the stopped run's thread has ended, start the new run that Train asked for,
        unless Stop cancelled it or another Train started it meanwhile."""
        self.runner.join(60)
        if self._restart:
            self.train()

    def _halt(self, timeout: float = 60.0) -> None:
        if self.runner.running:
            self.model.stop()
            self.runner.stop()
            self.runner.join(timeout)

    def _start(self) -> None:
        self.model.resume()
        self._busy = True
        if self.runner.start():
            self._set_buttons()
            self._report()

    def train(self, _=None) -> None:
        """The Train button: a new run from the initial weights, trained in the background. It answers at once
        (status and buttons); the thread draws the new run's figures before its first steps. Pressed during a
        run, the run stops after its current step, and the new one starts when it has."""
        if self.runner.running:
            self._restart = True
            self.model.stop()
            self.runner.stop()
            self.status.show(f"stopping at step {self.model.step}; a new run starts next ...")
            threading.Thread(target=self.guard(self._restart_when_ended), name="cnnlab-widget-restart",
                             daemon=True).start()
            return
        self._restart = False
        self.model.reset()
        self._draw_first = True
        self._start()

    def stop(self, _=None) -> None:
        """The Stop button: the thread ends after the current step; the results appear."""
        self._restart = False
        self.model.stop()
        self.runner.stop()
        self.status.show(f"stopping after step {self.model.step} ...")

    def resume(self, _=None) -> None:
        """The Resume button: continue the stopped run in the background."""
        if not self.runner.running:
            self._start()

    def train_chunk(self, steps: int) -> bool:
        """Train `steps` steps in this thread (no background thread) and redraw everything."""
        more = self.model.train_chunk(steps)
        self.update()
        return more

    def _new_run(self, setter, value) -> None:
        was_running = self.runner.running
        self._halt()
        setter(value)
        self.update()
        if was_running:
            self._start()

    def _on_epochs(self, change) -> None:
        self.model.set_epochs(change["new"])
        self.update()

    def _on_lr(self, change) -> None:
        self.model.set_lr(change["new"])
        with self._draw_lock:
            self._draw_curves()


def training_dashboard(net=None, optimizer: str = "adam", lr: float = 1e-3, epochs: int = 3, batch_size: int = 64,
                       train_size: int | None = None, rng=0, **options) -> TrainingDashboard:
    """The live training dashboard (see the module docstring); press Train to start.

    net: a cnnlab net with at least one Conv2d mapping (N, 1, 28, 28) images to 10 class scores (default
    `default_cnn`); optimizer: a name of cnnlab.optim.OPTIMIZERS ("sgd", "momentum", "nesterov", "adagrad",
    "adadelta", "rmsprop", "adam", "adamw"); lr: the learning rate (changeable while training); epochs, batch_size;
    train_size: cap on the training images (the full Fashion-MNIST training set when present, else the shipped subset; 10% go to validation);
    rng: seed or Generator. options: DashboardModel's keyword-only options (val_size, eval_every, data,
    source, divergence_factor) and TrainingDashboard's (chunk_steps, min_redraw_seconds).
    """
    view_keys = {"chunk_steps", "min_redraw_seconds"}
    view_options = {k: options.pop(k) for k in list(options) if k in view_keys}
    model = DashboardModel(net, optimizer, lr, epochs, batch_size, train_size, rng, **options)
    return TrainingDashboard(model, **view_options)
