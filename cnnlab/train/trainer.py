"""`Trainer`: the training loop of the course, in batch, online or mini-batch mode (Tomasi §2).

    for each epoch:
        for each mini-batch (xb, yb) in a fresh random order:
            out = net(xb); loss = loss_fn(out, yb)             # forward
            net.backward(loss_fn.backward())                   # back-propagation
            optimizer.step()                                   # update (and the scheduler, per step)
        evaluate on the validation set; scheduler (per epoch) and callbacks

batch_size=None uses the whole training set per step (batch gradient descent), batch_size=1 is online
learning, anything between is mini-batch. A loss that stops being finite ends the run with
`history.status == "diverged"` and a message naming the step; it never raises.
"""
from __future__ import annotations

import time

import numpy as np

from cnnlab.data.batches import DataLoader
from cnnlab.metrics import EVAL_BATCH_SIZE, accuracy, accuracy_or_none
from cnnlab.module import eval_mode, no_input_grad
from cnnlab.optim import clip_grad_norm_
from cnnlab.rng import as_generator
from cnnlab.train.checkpoint_state import load_trainer, save_trainer
from cnnlab.train.history import History

__all__ = ["Trainer", "accuracy", "evaluate"]


def evaluate(net, loss_fn, X, y, batch_size: int = EVAL_BATCH_SIZE):
    """Mean loss and accuracy of `net` on (X, y) in eval mode (restores each sub-module's mode), in batches
    of `batch_size` images: the memory it needs does not grow with len(X)."""
    total, correct, n = 0.0, 0.0, len(X)
    with eval_mode(net), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for start in range(0, n, batch_size):
            xb, yb = X[start:start + batch_size], y[start:start + batch_size]
            out = net.forward(xb)
            loss = loss_fn.forward(out, yb) if np.all(np.isfinite(out)) else float("nan")
            if not np.isfinite(loss):  # a diverged net: report it, do not raise
                return float("nan"), None
            total += loss * len(xb)
            acc = accuracy_or_none(out, yb)
            correct = None if acc is None or correct is None else correct + acc * len(xb)
    return total / n, (None if correct is None else correct / n)


class Trainer:
    """Train `net` with `loss_fn` and `optimizer` on (X, y).

    batch_size: None (batch), 1 (online) or B (mini-batch); rng: Generator, int seed or None (cnnlab's
    library generator, see `cnnlab.manual_seed`) for the shuffling; X_val, y_val: evaluated after every epoch; scheduler: stepped after
    every epoch, or after every optimizer step with scheduler_interval="step" (PyTorch Lightning's word;
    a one-cycle or warm-up schedule then counts steps; a checkpoint does not record the interval: resume
    with the same one); callbacks: see cnnlab.train.callbacks; clip_grad_norm: cap on the joint gradient norm;
    regularizer: an object with penalty(net) -> float, backward(net) (adds the penalty's gradient to the
    parameters' .grad) and after_step(net) (e.g. a max-norm projection), see cnnlab.regularizers. The
    penalty is recorded separately ("penalty") from the data loss ("loss"); augment: a transform
    t(images, rng) -> images (see cnnlab.augment) applied to every training batch, with its own random
    generator (a child of the shuffling generator, saved in checkpoints); diverge_above: a loss level
    that counts as divergence: the run ends as "diverged" at the first step after which the mean
    mini-batch loss of the last `diverge_window` steps (fewer at the start of the run) is above it.
    Adaptive optimizers at huge rates take bounded steps and can sit at a loss of 10^4 for ever
    without producing NaN, which is all the Trainer catches without it.
    """

    def __init__(self, net, loss_fn, optimizer, X, y, *, batch_size: int | None = 64, X_val=None,
                 y_val=None, rng=None, shuffle: bool = True, scheduler=None, callbacks=(),
                 clip_grad_norm: float | None = None, regularizer=None, augment=None,
                 diverge_above: float | None = None, diverge_window: int = 8, scheduler_interval: str = "epoch"):
        if (X_val is None) != (y_val is None):
            raise ValueError("give both X_val and y_val, or neither")
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        if isinstance(diverge_window, bool) or not isinstance(diverge_window, (int, np.integer)) \
                or diverge_window < 1:
            raise ValueError(f"diverge_window must be a whole number of steps >= 1, got {diverge_window!r}")
        self.net, self.loss_fn, self.optimizer = net, loss_fn, optimizer
        self.loader = DataLoader(X, y, len(X) if batch_size is None else batch_size, shuffle=shuffle, rng=rng)
        self.X_val, self.y_val = X_val, y_val
        self.scheduler, self.clip_grad_norm, self.regularizer = scheduler, clip_grad_norm, regularizer
        self.scheduler_interval = scheduler_interval
        self.augment, self.diverge_above, self.diverge_window = augment, diverge_above, int(diverge_window)
        # a child generator: switching augmentation on does not change the batch order
        self.augment_rng = None
        if augment is not None:
            rng = self.loader.rng
            self.augment_rng = rng.spawn(1)[0] if rng is not None else as_generator(None, "Trainer")
        self.callbacks = list(callbacks)
        self.history = History()
        self.epoch, self.global_step = 0, 0
        self._batches, self._epoch_losses, self._epoch_accs, self._epoch_start = None, [], [], None

    # --- control -------------------------------------------------------------------------------
    def stop(self, status: str, message: str) -> None:
        """Ask the loop to stop after the current step (used by callbacks and Stop buttons)."""
        self.history.status, self.history.message = status, message

    @property
    def stopped(self) -> bool:
        return self.history.status not in ("running", "completed")

    # --- one step --------------------------------------------------------------------------------
    def train_step(self, xb, yb) -> dict:
        """Forward, backward and update on one mini-batch; returns the step's record.

        Overflow on the way to a divergence is expected, not an error: NumPy's warnings are silenced
        here and the non-finite loss is reported in the history instead.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._train_step(xb, yb)

    def _train_step(self, xb, yb) -> dict:
        self.net.train()
        if self.augment is not None:
            xb = self.augment(xb, self.augment_rng)
        out = self.net(xb)
        loss = self.loss_fn.forward(out, yb) if np.all(np.isfinite(out)) else float("nan")
        self.global_step += 1
        penalty = self.regularizer.penalty(self.net) if self.regularizer is not None else 0.0
        info = {"step": self.global_step, "epoch": self.epoch + 1, "loss": float(loss),
                "penalty": float(penalty), "accuracy": accuracy_or_none(out, yb),
                "lr": self.optimizer.param_groups[0]["lr"]}
        if not np.isfinite(loss):
            self.history.diverged_at = self.global_step
            self.stop("diverged", f"diverged at step {self.global_step}: the loss became {loss}; "
                                  f"try a smaller learning rate")
            self.history.steps.append(info)
            return info
        with no_input_grad(self.net):                  # nobody uses dL/d(images)
            self.net.backward(self.loss_fn.backward())
        if self.regularizer is not None:
            self.regularizer.backward(self.net)
        if self.clip_grad_norm is not None:
            clip_grad_norm_(self.net.parameters(), self.clip_grad_norm)
        self.optimizer.step()
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        if self.regularizer is not None:
            self.regularizer.after_step(self.net)
        self.history.steps.append(info)
        if self._blew_up():
            return info
        for callback in self.callbacks:
            hook = getattr(callback, "on_step_end", None if hasattr(callback, "on_epoch_end") else callback)
            if hook is not None:
                hook(self, info)
        return info

    def _blew_up(self) -> bool:
        """The diverge_above rule, after every step: stop as "diverged" when the mean loss of the last
        diverge_window steps (fewer at the start) exceeds diverge_above; True when it did."""
        if self.diverge_above is None:
            return False
        recent = [s["loss"] for s in self.history.steps[-self.diverge_window:]]
        mean = float(np.mean(recent))
        if not mean > self.diverge_above:
            return False
        self.history.diverged_at = self.global_step
        self.stop("diverged", f"diverged at step {self.global_step}: the mean loss of the last {len(recent)} "
                              f"steps is {mean:.3g}, more than {self.diverge_above:.3g}; try a smaller "
                              f"learning rate")
        return True

    # --- epochs ------------------------------------------------------------------------------------
    def _finish_epoch(self) -> None:
        self.epoch += 1
        val_loss = val_acc = None
        if self.X_val is not None:
            val_loss, val_acc = evaluate(self.net, self.loss_fn, self.X_val, self.y_val)
        accs = [a for a in self._epoch_accs if a is not None]
        info = {"epoch": self.epoch, "train_loss": float(np.mean(self._epoch_losses)),
                "train_accuracy": float(np.mean(accs)) if accs else None, "val_loss": val_loss,
                "val_accuracy": val_acc, "lr": self.optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - self._epoch_start}
        self.history.epochs.append(info)
        self._batches = None
        if val_loss is not None and not np.isfinite(val_loss):
            self.history.diverged_at = self.global_step
            self.stop("diverged", f"diverged by step {self.global_step}: the network's outputs on the "
                                  f"validation set are no longer finite; try a smaller learning rate")
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        for callback in self.callbacks:
            hook = getattr(callback, "on_epoch_end", None)
            if hook is not None:
                hook(self, info)

    def run(self, steps: int | None = None, epochs: int | None = None, progress=False) -> History:
        """Train for `steps` more steps, or until `epochs` epochs in total are done, whichever comes first.

        Stepping in chunks (`run(steps=20)` again and again) is how a widget trains while staying
        responsive; a finished epoch is evaluated as soon as its last batch is done.
        """
        if steps is None and epochs is None:
            raise ValueError("give steps= or epochs=")
        if self.history.status in ("completed", "stopped"):  # more epochs, or go on after a Stop button
            self.history.status, self.history.message = "running", ""
        if self._batches is not None and len(self._epoch_losses) == len(self.loader) and not self.history.diverged:
            self._finish_epoch()  # a stop came right after an epoch's last step: its end-of-epoch work is due
        budget = np.inf if steps is None else steps
        bar = None
        if progress:
            from tqdm.auto import tqdm
            total = steps if steps is not None else (epochs - self.epoch) * len(self.loader)
            bar = tqdm(total=total, desc="training", unit="step", leave=True)
        done = 0
        try:
            while done < budget and not self.stopped and (epochs is None or self.epoch < epochs):
                if self._batches is None:
                    self._batches = iter(self.loader)
                    self._epoch_losses, self._epoch_accs = [], []
                    self._epoch_start = time.perf_counter()
                info = self.train_step(*next(self._batches))
                self._epoch_losses.append(info["loss"])
                self._epoch_accs.append(info["accuracy"])
                done += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(epoch=self.epoch + 1, loss=f"{info['loss']:.4f}")
                if not self.stopped and len(self._epoch_losses) == len(self.loader):
                    self._finish_epoch()
        finally:
            if bar is not None:
                bar.close()
        if not self.stopped and epochs is not None and self.epoch >= epochs:
            self.history.status = "completed"
            self.history.message = f"finished {self.epoch} epochs ({self.global_step} steps)"
        return self.history

    def fit(self, epochs: int, progress=True) -> History:
        """Train until `epochs` epochs in total are done (or a callback stops it); returns the History."""
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        return self.run(epochs=epochs, progress=progress)

    # --- checkpoints (format and checks: cnnlab.train.checkpoint, cnnlab.train.checkpoint_state) ----
    def save(self, path, meta=None) -> None:
        """Write weights, optimizer state, random states, scheduler, history and `meta` (a dict of JSON
        values describing the run) to `path` atomically, as an .npz with a JSON header: no pickle."""
        save_trainer(self, path, meta)

    def load(self, path) -> "Trainer":
        """Restore a checkpoint written by `save`; training then continues exactly as it would have.

        The file must fit this trainer (architecture, optimizer, random generators, scheduler): else
        CheckpointError (a ValueError) names the file and each difference, and nothing is changed.
        The saved `meta` is in `read_checkpoint(path)["meta"]`.
        """
        return load_trainer(self, path)
