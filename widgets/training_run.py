"""`TrainingRun`: one seeded, recorded training run of the small task, stepped in chunks.

The model behind `lr_explorer` (and lesson 06's experiments), plain NumPy, no widgets:
`cnnlab.models.tiny_mlp` on `cnnlab.data.small_fashion_mnist` with `cnnlab.optim.SGD` and
`cnnlab.train.Trainer`, advanced a chunk of updates at a time with `Trainer.run(steps=...)`. After every
chunk it records the training error E(w) on the *whole* training set and the validation loss, against
epochs (examples seen / N) and against updates.
Every run starts from the same weights (seed) and sees the examples in the same order (seed + 1), so two
runs differ only by their settings. `judge_regime` names the learning-rate regime of a recorded curve:
diverged, too large, too small or good.
"""
from __future__ import annotations

import numpy as np

from cnnlab.bench.threads import one_blas_thread
from cnnlab.losses import CrossEntropyLoss, MSELoss, one_hot
from cnnlab.metrics import predict
from cnnlab.models import tiny_mlp
from cnnlab.optim import SGD
from cnnlab.train import Trainer

__all__ = ["LOSSES", "judge_regime", "TrainingRun"]

LOSSES = {"cross-entropy": CrossEntropyLoss, "squared error": MSELoss}


def judge_regime(losses, diverged_at=None, updates: int | None = None) -> tuple[str, str]:
    """Name the learning-rate regime of a run from its training-error curve.

    Inputs: losses, E(w) at the recorded points (evenly spaced in examples seen), starting with the error
    before the first update; diverged_at, the step at which the loss stopped being finite (None if it
    never did); updates, how many updates the run made (for the message). Returns (regime, reason):
    - "diverged": the loss became infinite or NaN;
    - "too large": the error ended above where it started, shot above 1.5 times its start on the way,
      or zigzagged: the rises between recorded points add up to more than the net decrease
      (overshooting steps, Tomasi §2; "may oscillate around a minimum", Veta);
    - "too small": it fell steadily but by less than a quarter of its starting value (slow progress);
    - "good": otherwise.
    The thresholds are rules of thumb for a few epochs of training, not laws.
    """
    if diverged_at is not None:
        return "diverged", f"the loss became infinite at update {diverged_at}"
    E = np.asarray(losses, dtype=float)
    if E.ndim != 1 or E.size < 2:
        raise ValueError(f"judge_regime needs the error before and after training (at least 2 values), "
                         f"got shape {E.shape}")
    if not np.all(np.isfinite(E)):
        return "diverged", "the loss became infinite"
    start, end, high = E[0], E[-1], E.max()
    rises = float(np.clip(np.diff(E), 0, None).sum())
    in_updates = f" in {updates} updates" if updates is not None else ""
    if end >= start:
        return "too large", f"the error ended above where it started ({start:.4g} → {end:.4g}): steps overshoot"
    if high > 1.5 * start:
        return "too large", f"the error shot up to {high:.3g} (start {start:.3g}) before coming down"
    if rises > start - end:
        return "too large", (f"the error zigzags: it climbed {rises:.3g} in total on the way, more than its net "
                             f"decrease {start - end:.3g}: steps overshoot")
    drop = (start - end) / start
    if drop < 0.25:
        return "too small", f"the error fell only {drop:.0%}{in_updates} ({start:.3g} → {end:.3g}): slow"
    return "good", f"the error fell {drop:.0%}{in_updates} ({start:.3g} → {end:.3g})"


class TrainingRun:
    """One seeded training run of `tiny_mlp`, recorded as it goes.

    Inputs: X_train (N, D) float32, y_train (N,) int labels, X_val, y_val likewise; lr > 0;
    momentum in [0, 1); batch_size (1 = online, None or 0 = full batch, else mini-batch B); loss
    ("cross-entropy" or "squared error" on one-hot targets); epochs >= 1; hidden units; seed (weights;
    the shuffling uses seed + 1); points_per_epoch (how often E(w) is recorded, i.e. the chunk size);
    record_every (record every this many updates instead); max_updates (end the run after this many
    updates even if epochs remain; None: no limit).

    `run()` trains to the end; `advance()` trains one chunk and returns whether more is to come.
    `reset(record=False)` starts a run without recording its start: the first `advance()` then records it
    (E(w) before any update) instead of training, so a widget can start a run at once and compute later.
    Curves, one entry per recorded point, the first before any update: `updates`, `epochs_seen`
    (examples seen / N), `train_loss` (E(w) on all N training examples), `val_loss`, `val_accuracy`.
    `trainer.history` has the per-step record; `status` is "running", "completed", "stopped" or
    "diverged"; `regime, reason = run.judge()`.
    """

    def __init__(self, X_train, y_train, X_val, y_val, *, lr: float = 0.1, momentum: float = 0.0,
                 batch_size: int | None = 64, loss: str = "cross-entropy", epochs: int = 3,
                 hidden: int = 32, seed: int = 0, points_per_epoch: int = 10, max_updates: int | None = None,
                 record_every: int | None = None):
        X_train, X_val = np.asarray(X_train), np.asarray(X_val)
        y_train, y_val = np.asarray(y_train), np.asarray(y_val)
        for name, X, y in (("train", X_train, y_train), ("val", X_val, y_val)):
            if X.ndim != 2 or X.dtype.kind != "f":
                raise ValueError(f"X_{name} must be a float array of shape (N, features), got {X.dtype} {X.shape}")
            if y.shape != (len(X),) or y.dtype.kind not in "iu":
                raise ValueError(f"y_{name} must be integer labels of shape ({len(X)},), got {y.dtype} {y.shape}")
        if X_val.shape[1] != X_train.shape[1]:
            raise ValueError(f"X_val has {X_val.shape[1]} features, X_train {X_train.shape[1]}")
        self.X_train, self.y_train, self.X_val, self.y_val = X_train, y_train, X_val, y_val
        self.num_classes = int(max(y_train.max(), y_val.max())) + 1
        self.hidden, self.seed, self.points_per_epoch = int(hidden), int(seed), int(points_per_epoch)
        self.lr, self.momentum, self.batch_size, self.loss, self.epochs = lr, momentum, batch_size, loss, epochs
        self.max_updates, self.record_every = max_updates, record_every
        self.reset()

    # --- settings and start ----------------------------------------------------------------------
    def _check_settings(self) -> None:
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"the learning rate must be a positive number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if not (isinstance(self.epochs, (int, np.integer)) and self.epochs >= 1):
            raise ValueError(f"epochs must be an integer >= 1, got {self.epochs!r}")
        if self.max_updates is not None and not (isinstance(self.max_updates, (int, np.integer))
                                                 and self.max_updates >= 1):
            raise ValueError(f"max_updates must be None or an integer >= 1, got {self.max_updates!r}")
        if self.record_every is not None and not (isinstance(self.record_every, (int, np.integer))
                                                  and self.record_every >= 1):
            raise ValueError(f"record_every must be None or an integer >= 1, got {self.record_every!r}")
        if self.batch_size is not None and not (isinstance(self.batch_size, (int, np.integer))
                                                and 0 <= self.batch_size <= len(self.X_train)):
            raise ValueError(f"batch_size must be None or 0 (full batch) or an integer in [1, "
                             f"{len(self.X_train)}], got {self.batch_size!r}")

    @property
    def full_batch(self) -> bool:
        return not self.batch_size or self.batch_size >= len(self.X_train)

    def reset(self, record: bool = True) -> None:
        """A fresh network (the same start every time) and an empty record, with the current settings; with
        record=True the record holds the start (E(w) before any update), else the first `advance()` adds it."""
        self._check_settings()
        self.net = tiny_mlp(self.X_train.shape[1], self.hidden, self.num_classes, rng=self.seed)
        self.loss_fn = LOSSES[self.loss]()
        if self.loss == "cross-entropy":
            self.targets, self.val_targets = self.y_train, self.y_val
        else:
            self.targets = one_hot(self.y_train, self.num_classes)
            self.val_targets = one_hot(self.y_val, self.num_classes)
        self.optimizer = SGD(self.net.parameters(), lr=self.lr, momentum=self.momentum)
        self.trainer = Trainer(self.net, self.loss_fn, self.optimizer, self.X_train, self.targets,
                               batch_size=None if self.full_batch else int(self.batch_size), rng=self.seed + 1)
        steps_per_epoch = len(self.trainer.loader)
        self.chunk = (int(self.record_every) if self.record_every
                      else max(1, round(steps_per_epoch / self.points_per_epoch)))
        self.updates, self.epochs_seen = [], []
        self.train_loss, self.val_loss, self.val_accuracy = [], [], []
        self._start_recorded = False
        if record:
            self._record_start()

    def _record_start(self) -> None:
        self._start_recorded = True
        with one_blas_thread():  # as every later record (advance): the same numbers whoever records the start
            self._record()

    # --- training ----------------------------------------------------------------------------------
    def _loss_on(self, X, targets):
        with np.errstate(over="ignore", invalid="ignore"):
            out = predict(self.net, X)
        if not np.all(np.isfinite(out)):
            return float("inf"), out
        with np.errstate(over="ignore"):
            return self.loss_fn.forward(out, targets), out

    def _record(self) -> None:
        E, _ = self._loss_on(self.X_train, self.targets)
        V, out = self._loss_on(self.X_val, self.val_targets)
        if not (np.isfinite(E) and np.isfinite(V)):
            self.trainer.history.diverged_at = self.trainer.global_step
            self.trainer.stop("diverged", f"diverged at step {self.trainer.global_step}: the error on the "
                                          f"training or validation set became infinite")
            return
        self.updates.append(self.trainer.global_step)
        self.epochs_seen.append(self.examples_seen / len(self.X_train))
        self.train_loss.append(E)
        self.val_loss.append(V)
        self.val_accuracy.append(float(np.mean(out.argmax(axis=1) == self.y_val)))

    @property
    def examples_seen(self) -> int:
        return self.examples_seen_after(self.trainer.global_step)

    def examples_seen_after(self, updates: int) -> int:
        """How many examples `updates` updates have used (the last batch of an epoch may be smaller)."""
        n, b = len(self.X_train), len(self.X_train) if self.full_batch else int(self.batch_size)
        done_epochs, rest = divmod(updates, len(self.trainer.loader))
        return done_epochs * n + min(rest * b, n)

    @property
    def status(self) -> str:
        return self.trainer.history.status

    @property
    def finished(self) -> bool:
        return (self.trainer.stopped or self.trainer.epoch >= self.epochs
                or (self.max_updates is not None and self.trainer.global_step >= self.max_updates))

    def advance(self) -> bool:
        """Train one chunk of updates and record the errors (or, after `reset(record=False)`, record the start
        first, training nothing); False once the run is over."""
        if self.finished:
            return False
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), one_blas_thread():
            if not self._start_recorded:
                self._record_start()
                return not self.finished
            steps = self.chunk if self.max_updates is None else min(
                self.chunk, self.max_updates - self.trainer.global_step)
            self.trainer.run(steps=steps, epochs=self.epochs)
            if self.trainer.history.diverged_at is None:
                self._record()
        return not self.finished

    def run(self) -> "TrainingRun":
        """Train until the last epoch (or a divergence); returns self."""
        while self.advance():
            pass
        return self

    def stop(self) -> bool:
        """Stop after the current chunk, as the Stop button does; False if the run was already over."""
        if self.finished:
            return False
        self.trainer.stop("stopped", f"stopped at update {self.trainer.global_step}, epoch "
                                     f"{self.examples_seen / len(self.X_train):.1f} of {self.epochs}")
        return True

    def judge(self) -> tuple[str, str]:
        """(regime, reason): see `judge_regime`; a stopped run is judged on the part it trained."""
        if len(self.train_loss) < 2 and self.trainer.history.diverged_at is None:
            return "stopped", "stopped before the first record"
        return judge_regime(self.train_loss, self.trainer.history.diverged_at, self.trainer.global_step)

    def describe(self) -> str:
        batch = "full batch" if self.full_batch else ("online" if self.batch_size == 1 else f"batch {self.batch_size}")
        return f"lr {self.lr:.3g}, {batch}, momentum {self.momentum:g}, {self.loss}"
