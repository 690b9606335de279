"""`DashboardModel`: the training run the training dashboard shows (plain NumPy and locks, no plotting).

It trains synchronously, a chunk of steps at a time (`train_chunk(steps)`): tests and notebooks drive it
directly, and `widgets.training_dashboard` steps it from a background thread (`widgets._background`).
What the figures read (curves, filters, feature maps, the confusion matrix) comes from a copy of the
network, `viz_net`, refreshed after every chunk, so drawing never races the training step.
"""
from __future__ import annotations

import copy
import numbers
import threading

import numpy as np

from cnnlab.data import load_fashion_mnist, train_val_split
from cnnlab.hooks import recording
from cnnlab.losses import CrossEntropyLoss, softmax
from cnnlab.metrics import confusion_matrix, per_class_accuracy, predict, running_mean
from cnnlab.models import default_cnn
from cnnlab.optim import OPTIMIZERS, optimizer_spec
from cnnlab.rng import as_generator
from cnnlab.train import Trainer, evaluate
from widgets._training import check_net, conv_layers

__all__ = ["DashboardModel", "positive_int"]


def positive_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not np.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr (learning rate) must be a positive finite number, got {lr!r}")
    return float(lr)


def _subsample(X, y, n, gen):
    """At most n rows of (X, y), drawn at random, kept in their original order."""
    if n is None or n >= len(y):
        return X, y
    keep = np.sort(gen.permutation(len(y))[:n])
    return X[keep], y[keep]


class DashboardModel:
    """A training run the dashboard shows: data, network, optimizer, Trainer, and what to draw.

    Inputs (as `training_dashboard`): net (None: `default_cnn`), optimizer (a name of cnnlab.optim.OPTIMIZERS,
    any case, built with the registry's hyper-parameters; kept as its name in `optimizer_name`), lr, epochs,
    batch_size, train_size (cap on the training images), rng (Generator or seed: initial weights of the
    default net, the split, the caps and the shuffling; same seed, same run). Keyword-only: val_size (cap
    on the validation images, 10% of the training split), eval_every (steps between evaluations on
    them), data ((X, y) or (X, y, classes) instead of Fashion-MNIST; X (N, C, H, W)), source (of
    Fashion-MNIST, see `load_fashion_mnist`), divergence_factor (a loss that exceeds this multiple of
    the first step's loss, or of ln K for K classes if that is larger, or is not finite, ends the run as
    "diverged"; it never raises).

    Driving it: `train_chunk(steps)` (synchronous; returns True while there is more to do), `stop()`,
    `resume()`, `reset()` (initial weights, a fresh optimizer: a new run), `set_lr(lr)` (reaches the
    running optimizer at once), `set_epochs(n)`. Reading it: `step`, `state` ("ready", "running",
    "paused", "completed", "diverged"), `message`, `curves()`, `filters()`, `feature_maps(i)`, `results()`.
    """

    def __init__(self, net=None, optimizer: str = "adam", lr: float = 1e-3, epochs: int = 3,
                 batch_size: int = 64, train_size: int | None = None, rng=0, *, val_size: int = 1000,
                 eval_every: int = 50, data=None, source: str = "auto", divergence_factor: float = 4.0):
        self.optimizer_name = self._check_optimizer(optimizer)
        self.lr, self.epochs = _check_lr(lr), positive_int(epochs, "epochs")
        self.batch_size = positive_int(batch_size, "batch_size")
        train_size = None if train_size is None else positive_int(train_size, "train_size", 2)
        val_size = positive_int(val_size, "val_size")
        self.eval_every = positive_int(eval_every, "eval_every")
        if not divergence_factor > 1:
            raise ValueError(f"divergence_factor must be > 1, got {divergence_factor!r}")
        self.divergence_factor = float(divergence_factor)
        gen = as_generator(rng, "DashboardModel")
        if data is None:
            X, y, classes = load_fashion_mnist("train", source=source)
        else:
            if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
                raise ValueError("data must be (X, y) or (X, y, classes)")
            X, y = np.asarray(data[0]), np.asarray(data[1])
            if X.ndim != 4 or X.dtype.kind != "f":
                raise ValueError(f"data images must be a float array (N, C, H, W), got {X.dtype} {X.shape}")
            if y.shape != (len(X),) or y.dtype.kind not in "iu" or y.min() < 0:
                raise ValueError(f"data labels must be {len(X)} class indices >= 0 (integers, shape ({len(X)},)), "
                                 f"got {y.dtype} of shape {y.shape}")
            classes = tuple(data[2]) if len(data) == 3 else tuple(f"class {k}" for k in range(int(y.max()) + 1))
        X_train, y_train, X_val, y_val = train_val_split(X, y, 0.1, rng=gen)
        self.X_train, self.y_train = _subsample(X_train, y_train, train_size, gen)
        self.X_val, self.y_val = _subsample(X_val, y_val, val_size, gen)
        self.classes = tuple(classes)
        self.net = default_cnn(gen) if net is None else net
        check_net(self.net, "training_dashboard")
        if not conv_layers(self.net):
            raise ValueError("training_dashboard shows convolution filters: the net needs at least one "
                             "cnnlab.layers.Conv2d layer")
        dtype = self.net.parameters()[0].dtype if self.net.parameters() else np.float32
        self.X_train, self.X_val = self.X_train.astype(dtype, copy=False), self.X_val.astype(dtype, copy=False)
        try:
            out = predict(self.net, self.X_train[:2])
        except Exception as error:  # noqa: BLE001 - any failure here means the images do not fit the net
            raise ValueError(f"the net cannot process images of shape {self.X_train.shape[1:]}: {error}") from None
        if out.shape != (len(self.X_train[:2]), len(self.classes)):
            raise ValueError(f"the net must map images {self.X_train.shape[1:]} to {len(self.classes)} class "
                             f"scores, shape (N, {len(self.classes)}); it returned shape {out.shape}")
        self._shuffle_seed = int(gen.integers(2**63))
        self._initial = self.net.state_dict()
        self.viz_net = copy.deepcopy(self.net).eval()
        self._viz_convs = [m for _, m in conv_layers(self.viz_net)]
        self.lock, self.viz_lock = threading.RLock(), threading.Lock()
        self.loss_fn = CrossEntropyLoss()
        self.reset()

    @staticmethod
    def _check_optimizer(name) -> str:
        try:
            return optimizer_spec(name).name
        except ValueError:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}") from None

    # --- the run ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Back to the initial weights with a fresh optimizer and Trainer: the next chunk starts a new run."""
        with self.lock:
            self.net.load_state_dict(self._initial)
            self.optimizer = optimizer_spec(self.optimizer_name).build(self.net.parameters(), self.lr)
            self.trainer = Trainer(self.net, self.loss_fn, self.optimizer, self.X_train, self.y_train,
                                   batch_size=self.batch_size, rng=self._shuffle_seed,
                                   callbacks=[self._divergence_guard])
            self.evals: list[dict] = []
            self.paused, self._last_eval = False, 0
            self._sync_viz()

    def _divergence_guard(self, trainer, info) -> None:
        """Stop the run as diverged when the loss exceeds divergence_factor x max(first loss, ln K), K classes
        (ln K: the loss of a net that guesses uniformly). Trainer itself catches non-finite losses."""
        reference = max(trainer.history.steps[0]["loss"], np.log(len(self.classes)))
        if info["loss"] > self.divergence_factor * reference:
            trainer.history.diverged_at = info["step"]
            trainer.stop("diverged", f"diverged at step {info['step']}: the loss jumped to {info['loss']:.3g}, "
                                     f"more than {self.divergence_factor:g}x {reference:.3g} (the first loss, or "
                                     "the loss of uniform guessing); try a smaller learning rate and press Train")

    @property
    def steps_per_epoch(self) -> int:
        return len(self.trainer.loader)

    @property
    def step(self) -> int:
        return self.trainer.global_step

    @property
    def diverged(self) -> bool:
        return self.trainer.history.status == "diverged"

    @property
    def finished(self) -> bool:
        return self.diverged or self.trainer.epoch >= self.epochs

    @property
    def state(self) -> str:
        if self.diverged:
            return "diverged"
        if self.finished:
            return "completed"
        if self.step == 0 and not self.paused:
            return "ready"
        return "paused" if self.paused else "running"

    @property
    def message(self) -> str:
        return self.trainer.history.message

    def train_chunk(self, steps: int) -> bool:
        """Train up to `steps` more steps (fewer when the run ends or is stopped); True while more is to do."""
        steps = positive_int(steps, "steps")
        with self.lock:
            if self.paused or self.finished:
                return False
            before, epoch = self.step, self.trainer.epoch
            self.trainer.run(steps=steps, epochs=self.epochs)
            done = self.step - self._last_eval >= self.eval_every or self.trainer.epoch != epoch or self.finished
            if self.step > before and done and not self.diverged:
                val_loss, val_acc = evaluate(self.net, self.loss_fn, self.X_val, self.y_val)
                self.evals.append({"step": self.step, "val_loss": val_loss, "val_accuracy": val_acc})
                self._last_eval = self.step
            self._sync_viz()
            return not (self.paused or self.finished)

    def stop(self) -> None:
        """Pause: the current step finishes, then nothing more happens until `resume()`. Never blocks."""
        self.paused = True
        if self.trainer.history.status == "running":
            self.trainer.stop("stopped", "stopped by the Stop button")

    def resume(self) -> None:
        self.paused = False

    def set_lr(self, lr) -> None:
        """Change the learning rate of the running optimizer (from the next step on)."""
        self.lr = _check_lr(lr)
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr

    def set_epochs(self, epochs) -> None:
        self.epochs = positive_int(epochs, "epochs")

    def set_optimizer(self, name) -> None:
        """Choose another optimizer: a new run (see `reset`)."""
        self.optimizer_name = self._check_optimizer(name)
        self.reset()

    def set_batch_size(self, batch_size) -> None:
        """Choose another mini-batch size: a new run (see `reset`)."""
        self.batch_size = positive_int(batch_size, "batch_size")
        self.reset()

    # --- what the figures show -------------------------------------------------------------------
    def _sync_viz(self) -> None:
        with self.viz_lock:
            self.viz_net.load_state_dict(self.net.state_dict())

    def curves(self, window: int = 20) -> dict:
        """Per-step training loss/accuracy (raw, and running means over `window` steps), the lr of every
        step, and the validation evaluations (step, loss, accuracy)."""
        steps = list(self.trainer.history.steps)  # a snapshot: the training thread appends to the list
        loss = np.array([s["loss"] for s in steps], dtype=float)
        acc = np.array([np.nan if s["accuracy"] is None else s["accuracy"] for s in steps], dtype=float)
        lr = np.array([s["lr"] for s in steps], dtype=float)
        evals = list(self.evals)

        return {"step": np.arange(1, len(steps) + 1), "loss": loss, "accuracy": acc, "lr": lr,
                "loss_smooth": running_mean(loss, window), "accuracy_smooth": running_mean(acc, window),
                "eval_step": np.array([e["step"] for e in evals], dtype=float),
                "val_loss": np.array([e["val_loss"] for e in evals], dtype=float),
                "val_accuracy": np.array([e["val_accuracy"] for e in evals], dtype=float)}

    def filters(self) -> list[np.ndarray]:
        """Copies of every Conv2d weight (out, in, kh, kw), as of the last chunk."""
        with self.viz_lock:
            return [m.weight.data.copy() for m in self._viz_convs]

    def feature_maps(self, index: int):
        """Feature maps of validation image `index`: (list of (C_k, H_k, W_k) Conv2d outputs, class probabilities)."""
        if not 0 <= index < len(self.X_val):
            raise ValueError(f"image index must be in [0, {len(self.X_val)}), got {index}")
        with self.viz_lock, recording(self._viz_convs) as (outputs, _), np.errstate(all="ignore"):
            logits = self.viz_net(self.X_val[index:index + 1])
            maps = [outputs[i][0].copy() for i in range(len(self._viz_convs))]
        return maps, softmax(logits.astype(np.float64))[0]

    def results(self) -> dict:
        """The net on the validation images: accuracy, confusion matrix, per-class accuracy, and the
        misclassified images (indices into X_val, their true and predicted labels)."""
        with self.viz_lock, np.errstate(all="ignore"):
            scores = predict(self.viz_net, self.X_val)
        pred = np.where(np.isfinite(scores).all(axis=1), scores.argmax(axis=1), -1)
        pred_cm = np.where(pred < 0, 0, pred)
        confusion = confusion_matrix(self.y_val, pred_cm, len(self.classes))
        wrong = np.flatnonzero(pred != self.y_val)
        return {"step": self.step, "accuracy": float(np.mean(pred == self.y_val)), "confusion": confusion,
                "per_class": per_class_accuracy(confusion), "wrong": wrong, "true": self.y_val[wrong],
                "pred": pred[wrong]}
