"""Callbacks: early stopping, checkpoints, Tomasi's termination tests, a one-line-per-epoch log, and per-step hooks.

A callback is any object with `on_step_end(trainer, info)` and/or `on_epoch_end(trainer, info)`; a
plain function is called after every step. A callback stops training with `trainer.stop(status, msg)`.
"""
from __future__ import annotations

import time

import numpy as np

__all__ = ["EarlyStopping", "ModelCheckpoint", "TerminationTest", "EpochLog", "small_step", "small_decrease"]


def small_step(w_new, w_old, tol: float) -> bool:
    """Tomasi §2: the step made little progress, ||w_t - w_(t-1)|| < tol."""
    return float(np.linalg.norm(np.asarray(w_new) - np.asarray(w_old))) < tol


def small_decrease(E_new: float, E_old: float, tol: float) -> bool:
    """Tomasi §2: the error hardly changed, |E(w_t) - E(w_(t-1))| < tol."""
    return abs(E_new - E_old) < tol


class EarlyStopping:
    """Stop when the validation loss has not improved by `min_delta` for `patience` epochs.

    With restore_best=True the weights of the best epoch are put back when training stops (Tomasi §2:
    descent is stopped early to generalise better; Khan 5.2.9).
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.0, restore_best: bool = True):
        if patience < 1:
            raise ValueError(f"patience must be >= 1 epoch, got {patience}")
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best
        self.best, self.best_epoch, self.best_state, self.wait = np.inf, None, None, 0

    def on_epoch_end(self, trainer, info) -> None:
        loss = info["val_loss"]
        if loss is None:
            raise ValueError("EarlyStopping monitors the validation loss: pass validation data to the Trainer")
        if loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = loss, info["epoch"], 0
            if self.restore_best:
                self.best_state = trainer.net.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            if self.restore_best and self.best_state is not None:
                trainer.net.load_state_dict(self.best_state)
            trainer.stop("early_stopping", f"validation loss has not improved for {self.patience} epochs; "
                         f"best {self.best:.4f} at epoch {self.best_epoch}"
                         + (" (weights restored)" if self.restore_best else ""))

    # --- kept in checkpoints, so that a resumed run stops where the uninterrupted one would ----------
    def _settings(self) -> dict:
        return {"patience": self.patience, "min_delta": self.min_delta, "restore_best": self.restore_best}

    def checkpoint_state(self) -> tuple[dict, dict]:
        """(JSON state: settings and counters, {weight name: array}: the best weights so far)."""
        best = None if self.best_epoch is None else float(self.best)
        return ({**self._settings(), "best": best, "best_epoch": self.best_epoch, "wait": self.wait},
                dict(self.best_state or {}))

    def check_checkpoint_state(self, state: dict, epoch: int, has_weights: bool) -> None:
        """ValueError unless `state` is what an EarlyStopping with these settings saves after `epoch`
        epochs (with best weights exactly when it keeps them and an epoch improved)."""
        counters = {"best", "best_epoch", "wait"}
        if set(state) != set(self._settings()) | counters:
            raise ValueError(f"entries {sorted(state)}, expected {sorted(set(self._settings()) | counters)}")
        changed = [f"{k} {state[k]!r} saved, {v!r} here" for k, v in self._settings().items()
                   if type(state[k]) is not type(v) or state[k] != v]
        if changed:
            raise ValueError("; ".join(changed))
        best, best_epoch, wait = state["best"], state["best_epoch"], state["wait"]
        improved = best_epoch is not None
        if not (type(wait) is int and (type(best_epoch) is int if improved else best is None)
                and (not improved or type(best) in (int, float) and np.isfinite(best))
                and (best_epoch if improved else 0) + wait == epoch and (not improved or best_epoch >= 1)):
            raise ValueError(f"best {best!r} at epoch {best_epoch!r} and {wait!r} epochs since are not the "
                             f"counters of a run at epoch {epoch}")
        if has_weights != (improved and self.restore_best):
            raise ValueError("it holds best weights where there are none to keep" if has_weights
                             else "its best weights are missing")

    def load_checkpoint_state(self, state: dict, weights: dict) -> None:
        self.best = np.inf if state["best"] is None else state["best"]
        self.best_epoch, self.wait = state["best_epoch"], state["wait"]
        self.best_state = dict(weights) if weights else None


class ModelCheckpoint:
    """Save the whole training state (see `Trainer.save`, with `meta`) to `path` every `every` epochs,
    atomically. A diverged run is never saved: the last good checkpoint stays as it was.
    `last_saved` is the epoch of the last save (None before the first)."""

    def __init__(self, path, every: int = 1, meta=None):
        if every < 1:
            raise ValueError(f"every must be >= 1 epoch, got {every}")
        self.path, self.every, self.meta, self.last_saved = path, every, meta, None

    def on_epoch_end(self, trainer, info) -> None:
        if info["epoch"] % self.every == 0 and not trainer.history.diverged:
            trainer.save(self.path, meta=self.meta)
            self.last_saved = info["epoch"]


class TerminationTest:
    """Tomasi's termination tests, checked after every step on the mini-batch loss and the weights.

    Stops when the weights moved less than `step_tol` (small step) or the loss changed by less than
    `loss_tol` (small decrease) for `patience` consecutive steps. Either tolerance may be None.
    """

    def __init__(self, step_tol: float | None = None, loss_tol: float | None = None, patience: int = 1):
        if step_tol is None and loss_tol is None:
            raise ValueError("give step_tol, loss_tol or both")
        self.step_tol, self.loss_tol, self.patience = step_tol, loss_tol, patience
        self.previous_w = self.previous_loss = None
        self.count = 0

    def on_step_end(self, trainer, info) -> None:
        w = np.concatenate([p.data.ravel() for p in trainer.net.parameters()])
        hit = []
        if self.previous_w is not None:
            if self.step_tol is not None and small_step(w, self.previous_w, self.step_tol):
                hit.append(f"step smaller than {self.step_tol:g}")
            if self.loss_tol is not None and small_decrease(info["loss"], self.previous_loss, self.loss_tol):
                hit.append(f"loss change smaller than {self.loss_tol:g}")
        self.count = self.count + 1 if hit else 0
        self.previous_w, self.previous_loss = w, info["loss"]
        if self.count >= self.patience:
            trainer.stop("terminated", f"{' and '.join(hit)} at step {info['step']}")


def _clock_text(seconds: float) -> str:
    """1:04 (minutes:seconds), 1:02:03 past an hour."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class EpochLog:
    """One line per epoch: losses, validation accuracy, the time so far and an estimate of the time left.

    For output that is not a terminal (a log file, CI, a notebook's `!` command), where a progress bar's
    carriage-return updates would pile up by the thousand. `epochs`: the planned total (the estimate
    assumes the epochs still to come take as long as those done in this run); `log`: where the lines
    go; `clock`: seconds, monotonic (tests pass their own). The clock starts when the first epoch this
    log sees started, so a resumed run estimates from its own epochs only.

        epoch 3/12: train loss 0.3123, val loss 0.2987, val accuracy 89.12%, 1:04 elapsed, about 3:12 left
    """

    def __init__(self, epochs: int, log=print, clock=time.perf_counter):
        self.epochs, self.log, self.clock = epochs, log, clock
        self.start = self.first = None

    def on_epoch_end(self, trainer, info) -> None:
        now = self.clock()
        if self.start is None:
            self.start, self.first = now - info["seconds"], info["epoch"] - 1
        elapsed = now - self.start
        left = elapsed / (info["epoch"] - self.first) * max(self.epochs - info["epoch"], 0)
        parts = [f"train loss {info['train_loss']:.4f}"]
        if info.get("val_loss") is not None:
            parts.append(f"val loss {info['val_loss']:.4f}")
        if info.get("val_accuracy") is not None:
            parts.append(f"val accuracy {info['val_accuracy']:.2%}")
        parts.append(f"{_clock_text(elapsed)} elapsed" + (f", about {_clock_text(left)} left" if left else ""))
        self.log(f"epoch {info['epoch']}/{self.epochs}: " + ", ".join(parts))
