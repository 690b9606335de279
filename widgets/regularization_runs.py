"""The runs behind `regularization_explorer()`: one small net, trained under one `Settings`, fairly.

A fully connected net (784 -> hidden -> 10) is trained with SGD (momentum 0.9) on a few hundred
Fashion-MNIST images and validated on others, through `cnnlab.train.Trainer`. Every run starts from
the same initial weights and sees the mini-batches in the same order: each random part has its own
generator (first layer, output layer, dropout masks, shuffling, augmentation), so switching a layer
or a penalty on changes nothing else, and the difference between two runs is the knob's.

- `Settings`: one configuration (L2, L1, max-norm, dropout, drop-connect, batch norm, augmentation,
  early stopping, learning rate, epochs); `Run`: what a run produced, epoch by epoch;
- `RegularizationModel`: `start(settings)`, `step()` (one epoch), `run(settings)`, `reference(settings)`
  (the same run without regularisation, cached); plain NumPy, no widgets.

A divergence is a status ("diverged", with a message), never an exception.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.augment import Compose, RandomCrop, RandomHorizontalFlip, augmented_loader
from cnnlab.bench.threads import one_blas_thread
from cnnlab.layers import DropConnect, Linear
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import regularization_mlp
from cnnlab.optim import SGD
from cnnlab.regularizers import L1, L2, Compose as RegCompose, ElasticNet, MaxNorm
from cnnlab.train import EarlyStopping, Trainer, evaluate

__all__ = ["Settings", "Run", "RegularizationModel", "weight_sparsity", "SPARSE_BELOW", "DROPCONNECT_P_KEEP",
           "EARLY_STOPPING_PATIENCE", "DIVERGED_ABOVE"]

SPARSE_BELOW = 1e-2          # a weight with |w| below this counts as (nearly) zero
DROPCONNECT_P_KEEP = 0.5     # keep probability of the drop-connect output layer
EARLY_STOPPING_PATIENCE = 5  # epochs without a better validation loss before stopping
DIVERGED_ABOVE = 1e3         # a validation loss above this (chance level is ln 10 = 2.3) counts as diverged


@dataclass(frozen=True)
class Settings:
    """One training configuration. l2, l1 >= 0 (both > 0: an elastic net); max_norm: c, 0 = off;
    p_keep in (0, 1] (1 = no dropout); the switches; lr > 0; epochs >= 1."""

    l2: float = 0.0
    l1: float = 0.0
    max_norm: float = 0.0
    p_keep: float = 1.0
    dropconnect: bool = False
    batchnorm: bool = False
    augment: bool = False
    early_stopping: bool = False
    lr: float = 0.05
    epochs: int = 40

    def check(self) -> "Settings":
        for name in ("l2", "l1", "max_norm"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not 0.0 < self.p_keep <= 1.0:
            raise ValueError(f"p_keep (dropout keep probability) must be in (0, 1], got {self.p_keep!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        if int(self.epochs) != self.epochs or self.epochs < 1:
            raise ValueError(f"epochs must be a whole number >= 1, got {self.epochs!r}")
        return self

    def without_regularization(self) -> "Settings":
        """These settings with every regulariser switched off (the reference run)."""
        return Settings(lr=self.lr, epochs=self.epochs)

    def describe(self) -> str:
        parts = []
        if self.l1 and self.l2:
            parts.append(f"elastic net (L1 {self.l1:g}, L2 {self.l2:g})")
        elif self.l2:
            parts.append(f"L2 λ={self.l2:g}")
        elif self.l1:
            parts.append(f"L1 λ={self.l1:g}")
        if self.max_norm:
            parts.append(f"max-norm c={self.max_norm:g}")
        if self.p_keep < 1:
            parts.append(f"dropout p={self.p_keep:g}")
        parts += [name for name, on in (("drop-connect", self.dropconnect), ("batch norm", self.batchnorm),
                                         ("augmentation", self.augment), ("early stopping", self.early_stopping))
                  if on]
        return ", ".join(parts) if parts else "no regularisation"


@dataclass
class Run:
    """What one training run produced, epoch by epoch (lists grow while it trains)."""

    settings: Settings
    train_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    sparsity: list = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    status: str = "running"
    message: str = ""
    best_epoch: int | None = None

    @property
    def finished(self) -> bool:
        return self.status != "running"

    @property
    def final(self) -> int:
        """Index of the epoch whose weights the run ends with: the best one after early stopping, else the last."""
        if self.status == "early_stopping" and self.best_epoch is not None:
            return self.best_epoch - 1
        return len(self.val_loss) - 1

    @property
    def gap(self) -> float:
        """Validation loss minus training loss of the final weights (NaN before the first epoch)."""
        return self.val_loss[self.final] - self.train_loss[self.final] if self.val_loss else float("nan")


def _regularized_weights(net) -> list:
    return [m.weight for m in net.modules() if isinstance(m, (Linear, DropConnect))]


def weight_sparsity(weights, below: float = SPARSE_BELOW) -> float:
    """Share of the entries of `weights` (an array) whose magnitude is below `below`."""
    w = np.abs(np.asarray(weights))
    return float(np.mean(w < below)) if w.size else float("nan")


class RegularizationModel:
    """Trains the explorer's net under `Settings`, one epoch per `step()`.

    Inputs: X (N, 1, 28, 28) training images, y (N,) labels, X_val, y_val the validation set; hidden
    (width of the hidden layer), batch_size and seed (of every generator). After `start(settings)`:
    `current` (a Run) and `net`; `step()` trains one more epoch; `run(settings)` does a whole run.
    `reference(settings)` is the run without regularisation at the same lr and epochs (cached).
    """

    def __init__(self, X, y, X_val, y_val, hidden: int = 128, batch_size: int = 50, seed: int = 0):
        for name, images, labels in (("X", X, y), ("X_val", X_val, y_val)):
            if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[1:] != (1, 28, 28):
                raise ValueError(f"{name} must be images of shape (N, 1, 28, 28), got {np.shape(images)}")
            if np.shape(labels) != (len(images),) or np.asarray(labels).dtype.kind not in "iu":
                raise ValueError(f"labels for {name} must be integers of shape ({len(images)},), got "
                                 f"{np.shape(labels)} {np.asarray(labels).dtype}")
        if int(hidden) < 1 or int(batch_size) < 1:
            raise ValueError(f"hidden and batch_size must be >= 1, got {hidden} and {batch_size}")
        self.X, self.y = X.astype(np.float32, copy=False), np.asarray(y)
        self.X_val, self.y_val = X_val.astype(np.float32, copy=False), np.asarray(y_val)
        self.hidden, self.batch_size, self.seed = int(hidden), int(batch_size), int(seed)
        self.current: Run | None = None
        self.net = self.trainer = self._early = None
        self.loss_fn = CrossEntropyLoss()
        self._references: dict = {}

    # --- building one run --------------------------------------------------------------------------
    def build(self, s: Settings):
        """The net for `s` (`cnnlab.models.regularization_mlp`: each layer has its own seed, so switching a
        layer on leaves the others' weights)."""
        return regularization_mlp(p_keep=s.p_keep, batchnorm=s.batchnorm, dropconnect=s.dropconnect, seed=self.seed,
                                  hidden=self.hidden, dropconnect_p_keep=DROPCONNECT_P_KEEP)

    @staticmethod
    def regularizer(s: Settings):
        members = []
        if s.l1 and s.l2:
            members.append(ElasticNet(s.l1, s.l2))
        elif s.l2:
            members.append(L2(s.l2))
        elif s.l1:
            members.append(L1(s.l1))
        if s.max_norm:
            members.append(MaxNorm(s.max_norm))
        return None if not members else members[0] if len(members) == 1 else RegCompose(members)

    def start(self, settings: Settings) -> Run:
        s = settings.check()
        self.net = self.build(s)
        self._early = EarlyStopping(EARLY_STOPPING_PATIENCE, restore_best=True) if s.early_stopping else None
        # the probe records each epoch before early stopping may restore older weights
        callbacks = [self] + ([self._early] if self._early else [])
        self.trainer = Trainer(self.net, self.loss_fn, SGD(self.net.parameters(), lr=s.lr, momentum=0.9),
                               self.X, self.y, batch_size=self.batch_size, X_val=self.X_val, y_val=self.y_val,
                               rng=self.seed + 1, regularizer=self.regularizer(s), callbacks=callbacks)
        if s.augment:  # its own generator: the shuffling order stays that of every other run
            augment = Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()])
            self.trainer.loader = augmented_loader(self.trainer.loader, augment, rng=self.seed + 14)
        self.current = Run(s)
        self._record()
        return self.current

    def on_epoch_end(self, trainer, info) -> None:
        """Trainer callback: the epoch's losses (the training set evaluated like the validation set, in
        eval mode on the un-augmented images, so that the gap compares like with like) and sparsity."""
        run = self.current
        run.train_loss.append(evaluate(self.net, self.loss_fn, self.X, self.y)[0])
        run.val_loss.append(info["val_loss"])
        run.val_accuracy.append(info["val_accuracy"])
        run.sparsity.append(weight_sparsity(np.concatenate([p.data.ravel() for p in _regularized_weights(self.net)])))

    def _record(self) -> None:
        w = np.concatenate([p.data.ravel() for p in _regularized_weights(self.net)])
        self.current.weights = w[np.isfinite(w)]

    def step(self) -> bool:
        """Train one more epoch of the current run; True when the run is over."""
        run, trainer = self.current, self.trainer
        if run is None:
            raise RuntimeError("call start(settings) before step()")
        if run.finished:
            return True
        # a divergence is reported, not raised; one BLAS thread is much faster for these small products on a
        # busy 2-core machine (see cnnlab.bench.threads.one_blas_thread; a no-op without threadpoolctl)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), one_blas_thread():
            try:
                history = trainer.run(epochs=trainer.epoch + 1)
            except ValueError as error:
                # the Trainer reports a non-finite training loss, but its end-of-epoch evaluation refuses
                # logits that overflowed to inf: that too is a divergence
                if "NaN/inf" not in str(error):
                    raise
                history = trainer.history
                trainer.stop("diverged", f"diverged in epoch {trainer.epoch}: the weights grew until the "
                                         "outputs overflowed; try a smaller learning rate")
        self._record()
        bad = [i for i, v in enumerate(run.val_loss) if not np.isfinite(v) or v > DIVERGED_ABOVE]
        if bad and not trainer.stopped:
            trainer.stop("diverged", f"diverged: the validation loss reached {run.val_loss[bad[0]]:.3g} at epoch "
                                     f"{bad[0] + 1}; try a smaller learning rate")
        if self._early is not None and self._early.best_epoch is not None:
            run.best_epoch = self._early.best_epoch
        if trainer.stopped:  # early stopping, a divergence: the Trainer ended the run
            run.status, run.message = history.status, history.message
        if not run.finished and trainer.epoch >= run.settings.epochs:
            run.status, run.message = "completed", f"finished {trainer.epoch} epochs"
        if run.finished and run.status != "stopped" and run.settings == run.settings.without_regularization():
            self._references.setdefault(run.settings, run)  # a run without regularisation is its own reference
        return run.finished

    def stop(self) -> None:
        if self.current is not None and not self.current.finished:
            self.current.status, self.current.message = "stopped", "stopped by the Stop button"

    def run(self, settings: Settings) -> Run:
        self.start(settings)
        while not self.step():
            pass
        return self.current

    def cached_reference(self, settings: Settings) -> Run | None:
        """The reference run for `settings` if it has been trained already, else None."""
        return self._references.get(settings.without_regularization())

    def reference(self, settings: Settings) -> Run:
        """The run without regularisation for these lr and epochs (trained once, then cached)."""
        key = settings.without_regularization()
        if key not in self._references:
            saved = self.current, self.net, self.trainer, self._early
            self._references[key] = self.run(key)
            self.current, self.net, self.trainer, self._early = saved
        return self._references[key]
