"""The race on the CNN, without a browser: `CNNRaceModel`, which trains one run per optimizer, fairly, chunk
by chunk (`widgets.cnn_race` adds the controls and the figure; the racing network is `cnnlab.models.race_net`).

Every run starts from the same initial weights (one `state_dict`, loaded into each run's network) and
sees the same mini-batches in the same order (each run's `Trainer` shuffles with the same seed), so the
only difference between two curves is the optimizer and its learning rate. The runners, their
hyper-parameters and their learning rates for a CNN (`lr_cnn`) come from `cnnlab.optim.OPTIMIZERS`, as in
the race on the surface: both step the very same `cnnlab.optim` classes. A run that blows up ends as
"diverged" by the Trainer's own rules (a non-finite loss, or `diverge_above`: the mean of its last 8
mini-batch losses above `blowup`; an adaptive optimizer with a huge learning rate takes bounded steps and
can sit at a loss of 10^4 for ever without overflowing).

Drive it with `start()`, then `advance(steps)` again and again (a chunk of steps per run, round-robin, so
the curves grow side by side), or `run()` to the end. Runs whose settings did not change are kept, so
moving one learning rate retrains one run only.

`race_data()` draws the race's images from the shipped subset; `race_over_seeds()` runs the whole race once
per seed (another sample of images, other initial weights, another batch order) and collects each
optimizer's results, for means and error bars.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from cnnlab.bench.threads import one_blas_thread
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import race_net
from cnnlab.optim import optimizer_spec
from cnnlab.train import Trainer
from widgets._optimizers import LABELS, race_lrs, race_optimizer, to_labels

__all__ = ["BLOWUP_WINDOW", "CNNRun", "CNNRaceModel", "race_data", "race_over_seeds"]

BLOWUP_WINDOW = 8  # steps whose mean loss is compared with `blowup` (the Trainer's diverge_window)


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
    State: enabled (set of labels of cnnlab.optim.OPTIMIZERS; the inputs take names or labels in any
    case), lrs (label -> lr; default each optimizer's `lr_cnn`, tuned for this net: see `OptimizerSpec`),
    epochs, momentum (for the runners that use one: Momentum and Nesterov), batch_size and seed (of the
    initial weights and of the shuffling). A run counts as diverged when its loss is not finite or when
    the mean of its last BLOWUP_WINDOW (8) mini-batch losses exceeds `blowup` (default 4 ln 10: four
    times the loss of a uniform guess over 10 classes); both are the Trainer's rules
    (`Trainer(diverge_above=blowup, diverge_window=8)`), checked after every step. After `run()` (or
    `start()` + `advance()` until `done`): runs (label -> CNNRun),
    `summary()`, `seconds` (training time since the last start) and `trained` (the runs that start had
    to create or continue; the others were kept as they were).
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
        self.enabled = set(LABELS if enabled is None else to_labels(enabled))
        self.lrs = race_lrs("lr_cnn", lrs)
        self.epochs, self.momentum, self.batch_size, self.seed = epochs, momentum, batch_size, seed
        if not blowup > 0:
            raise ValueError(f"blowup (the loss that counts as diverged) must be positive, got {blowup}")
        self.blowup = float(blowup)
        self._check()
        self.initial_state = race_net(seed).state_dict()  # the same starting weights for every run
        self.runs: dict[str, CNNRun] = {}
        self.seconds = 0.0
        self.trained: list[str] = []  # the runs the last start() left unfinished (the others were kept)

    def _check(self) -> None:
        unknown = (self.enabled | set(self.lrs)) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown optimizers {sorted(unknown)}; choose from {list(LABELS)}")
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
        momentum = float(self.momentum) if optimizer_spec(name).uses_momentum else None
        return (name, float(self.lrs[name]), momentum, int(self.batch_size), self.seed)

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def _new_run(self, name: str) -> CNNRun:
        net = race_net(self.seed)
        net.load_state_dict(self.initial_state)
        optimizer = race_optimizer(name, net.parameters(), self.lrs[name], self.momentum)
        trainer = Trainer(net, CrossEntropyLoss(), optimizer, self.X, self.y, batch_size=self.batch_size,
                          X_val=self.X_val, y_val=self.y_val, rng=self.seed, diverge_above=self.blowup,
                          diverge_window=BLOWUP_WINDOW)
        return CNNRun(name, float(self.lrs[name]), self.key(name), trainer)

    def start(self) -> None:
        """Create a run for every enabled optimizer whose settings changed; keep the others. Resets the
        training clock `seconds` and lists in `trained` the runs that still have steps to do."""
        self._check()
        runs = {}
        for name in LABELS:
            if name not in self.enabled:
                continue
            old = self.runs.get(name)
            keep = old is not None and old.key == self.key(name) and (
                old.trainer.epoch < self.epochs or old.history.diverged
                or (old.trainer.epoch == self.epochs  # and not part-way into one epoch too many
                    and len(old.history.steps) == old.trainer.epoch * self.steps_per_epoch))
            runs[name] = old if keep else self._new_run(name)
        self.runs = runs
        self.seconds = 0.0
        self.trained = [name for name, run in runs.items() if not self.finished(run)]

    def finished(self, run: CNNRun) -> bool:
        return run.history.diverged or run.trainer.epoch >= self.epochs

    @property
    def done(self) -> bool:
        return all(self.finished(run) for run in self.runs.values())

    def advance(self, steps: int = 8, names=None) -> bool:
        """`steps` more training steps for every unfinished run (of `names` only, labels, when given); returns
        True while some run is unfinished.

        Overflow on the way to a divergence is expected: it ends the run as "diverged" (the Trainer's
        verdict), never as an exception or a warning.
        """
        t0 = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"), one_blas_thread():
            for name, run in self.runs.items():
                if not self.finished(run) and (names is None or name in names):
                    run.trainer.run(steps=steps, epochs=self.epochs)
        self.seconds += time.perf_counter() - t0
        return not self.done

    def run(self, chunk: int = 8, on_chunk=None, should_stop=None) -> None:
        """start(), then advance in chunks until done; `on_chunk()` after each, `should_stop()` ends early."""
        self.start()
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


def race_data(n_train: int = 2000, n_val: int = 500, seed: int = 0):
    """The race's data: n_train training and n_val test images of the shipped Fashion-MNIST subset, drawn
    with `seed`. Returns (X, y, X_val, y_val): images (N, 1, 28, 28) float32, labels (N,) integers."""
    from cnnlab.data import load_fashion_mnist

    X, y, _ = load_fashion_mnist("train", source="subset")
    X_val, y_val, _ = load_fashion_mnist("test", source="subset")
    for name, n, limit in (("n_train", n_train, len(X)), ("n_val", n_val, len(X_val))):
        if isinstance(n, bool) or not (isinstance(n, (int, np.integer)) and 1 <= n <= limit):
            raise ValueError(f"{name} must be an integer in [1, {limit}], got {n!r}")
    rng = np.random.default_rng(seed)
    train, val = rng.permutation(len(X))[:n_train], rng.permutation(len(X_val))[:n_val]
    return X[train], y[train], X_val[val], y_val[val]


def race_over_seeds(seeds, optimizers=None, epochs: int = 2, n_train: int = 2000, n_val: int = 500,
                    on_seed=None, **options) -> dict:
    """The race on the CNN once per seed, each exactly as `cnn_race(seed=s)` runs it: its own sample of
    images (`race_data(n_train, n_val, s)`), initial weights and batch order.

    Inputs: seeds (ints, at least one); optimizers (names or labels, default all); epochs; options: the
    other settings of CNNRaceModel (lrs, momentum, batch_size, blowup); on_seed(seed, model): called after
    each race (to show progress).
    Returns label -> {"final_loss": (S,), "val_accuracy": (S,), "diverged": (S,) bool}, one entry per seed in
    the order given: the mean mini-batch loss of the last epoch and the validation accuracy after it (NaN
    where the run diverged).
    """
    seeds = list(seeds)
    if not seeds or len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds must be one or more different seeds, got {seeds}")
    rows: dict[str, list] = {}
    for seed in seeds:
        model = CNNRaceModel(*race_data(n_train, n_val, seed), enabled=optimizers, epochs=epochs, seed=seed,
                             **options)
        model.run()
        for name, s in model.summary().items():
            diverged = s["diverged_at"] is not None
            rows.setdefault(name, []).append((np.nan if diverged else s["final_loss"],
                                              np.nan if diverged else s["val_accuracy"], diverged))
        if on_seed is not None:
            on_seed(seed, model)
    return {name: {"final_loss": np.array([r[0] for r in runs], dtype=float),
                   "val_accuracy": np.array([r[1] for r in runs], dtype=float),
                   "diverged": np.array([r[2] for r in runs], dtype=bool)} for name, runs in rows.items()}
