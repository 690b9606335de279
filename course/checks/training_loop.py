"""Self-check for lesson 10's training loop: `fit` with validation and early stopping.

- `check_fit(fit)`: the student's `fit(net, loss_fn, optimizer, X, y, X_val, y_val, *, epochs, batch_size,
  rng, patience, min_delta)` -> (history, status) runs on a tiny seeded problem whose net has batch norm and
  dropout (so a layer in the wrong mode changes the numbers), once stopping early and once running out of
  epochs; both runs are compared with cnnlab's `Trainer` + `EarlyStopping` on the same seeds: the history,
  where and why it stopped, and the weights at the end (those of the best epoch).

A mismatch is named by re-running the loop with one mistake at a time (`_loop` below, each knob one
mistake: the order drawn once or never, validation in training mode, the net left in evaluation mode,
validation on the training images, patience off by one, min_delta ignored, the last batch weighted by its
size) and by watching what the student's loop loads back into the net (live arrays instead of copies, the
last epoch's weights instead of the best).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Sequential
from cnnlab.layers import BatchNorm1d, Dropout, Linear, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.metrics import accuracy
from cnnlab.optim import Adam
from cnnlab.train import EarlyStopping, Trainer
from . import CheckFailed, has_placeholder, placeholder, run_student, same

__all__ = ["check_fit"]

KEYS = ("train_loss", "val_loss", "val_accuracy")
SEED, BATCH, PATIENCE, MIN_DELTA, EPOCHS, LR = 22, 16, 2, 0.02, 30, 0.02
_close = partial(same, rtol=1e-7, atol=1e-9)


class _WatchedNet(Sequential):
    """A Sequential that notes whether `load_state_dict` was handed the net's own live arrays."""

    aliased = False

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        live = [p.data for p in self.parameters()]
        for value in getattr(state_dict, "values", lambda: [])():
            if isinstance(value, np.ndarray) and any(np.shares_memory(value, a) for a in live):
                self.aliased = True
        super().load_state_dict(state_dict, strict)


_WatchedNet.__name__ = _WatchedNet.__qualname__ = "Sequential"  # what the student's messages should name


def _problem():
    """45 training and 40 validation points in 6-D, 3 noisy classes: the net over-fits within a few epochs."""
    g = np.random.default_rng(SEED)
    centres = g.normal(size=(3, 6))
    y = g.integers(0, 3, size=85)
    X = centres[y] + 1.3 * g.normal(size=(85, 6))
    return X[:45], y[:45], X[45:], y[45:]


def _net(watched: bool = False):
    g = np.random.default_rng(SEED + 1)
    layers = [Linear(6, 32, rng=g), BatchNorm1d(32), ReLU(), Dropout(0.7, rng=g), Linear(32, 3, rng=g)]
    return (_WatchedNet if watched else Sequential)(layers).astype(np.float64)


def _reference(epochs: int):
    """cnnlab's Trainer + EarlyStopping, the best weights loaded back however the run ends (as lesson 10 § 9).
    Returns (history dict, status, final state, [state after each epoch])."""
    X, y, X_val, y_val = _problem()
    net = _net()
    snapshots = []
    stopper = EarlyStopping(patience=PATIENCE, min_delta=MIN_DELTA)
    history = Trainer(net, CrossEntropyLoss(), Adam(net.parameters(), lr=LR), X, y, batch_size=BATCH,
                      X_val=X_val, y_val=y_val, rng=np.random.default_rng(SEED),
                      callbacks=[_Snapshots(snapshots), stopper]).fit(epochs, progress=False)
    if stopper.best_state is not None:
        net.load_state_dict(stopper.best_state)
    record = {key: [float(e[key]) for e in history.epochs] for key in KEYS}
    return record, history.status, net.state_dict(), snapshots


class _Snapshots:
    def __init__(self, into: list):
        self.into = into

    def on_epoch_end(self, trainer, info) -> None:
        self.into.append(trainer.net.state_dict())


def _loop(epochs: int, shuffle="epoch", val_mode="eval", back_to_train=True, val_on_train=False,
          extra_patience=0, use_min_delta=True, weighted=False) -> tuple[dict, str]:
    """The loop with one planted mistake per knob (defaults: no mistake); returns (history, status)."""
    patience, min_delta = PATIENCE + extra_patience, MIN_DELTA if use_min_delta else 0.0
    X, y, X_val, y_val = _problem()
    net, loss_fn = _net(), CrossEntropyLoss()
    optimizer, rng = Adam(net.parameters(), lr=LR), np.random.default_rng(SEED)
    record, best, wait, status = {key: [] for key in KEYS}, np.inf, 0, "completed"
    order = rng.permutation(len(X)) if shuffle == "once" else np.arange(len(X))
    net.train()
    for _ in range(epochs):
        if back_to_train:
            net.train()
        if shuffle == "epoch":
            order = rng.permutation(len(X))
        losses, sizes = [], []
        for start in range(0, len(X), BATCH):
            batch = order[start:start + BATCH]
            losses.append(loss_fn.forward(net(X[batch]), y[batch]))
            sizes.append(len(batch))
            net.backward(loss_fn.backward())
            optimizer.step()
        if val_mode == "eval":
            net.eval()
        Xv, yv = (X, y) if val_on_train else (X_val, y_val)
        out = net(Xv)
        val_loss = loss_fn.forward(out, yv)
        record["train_loss"].append(float(np.average(losses, weights=sizes if weighted else None)))
        record["val_loss"].append(float(val_loss))
        record["val_accuracy"].append(accuracy(out, yv))
        if val_loss < best - min_delta:
            best, wait = val_loss, 0
        else:
            wait += 1
            if wait >= patience:
                status = "early_stopping"
                break
    return record, status


MISTAKES = [
    (dict(shuffle="none"), "the training images come in the same order every epoch: shuffle, with "
                           "order = rng.permutation(N) at the start of every epoch"),
    (dict(shuffle="once"), "the order was drawn once, before the first epoch, and reused: draw a new one, "
                           "rng.permutation(N), at the start of every epoch"),
    (dict(val_mode="train"), "the validation pass ran in training mode: dropout dropped units and batch norm "
                             "used the validation batch's statistics (and changed its running ones); call "
                             "net.eval() before the validation forward pass"),
    (dict(back_to_train=False), "after the first validation pass the net stayed in evaluation mode, so from the "
                                "second epoch on it trained without dropout and with batch norm's running "
                                "statistics; call net.train() at the start of every epoch"),
    (dict(val_on_train=True), "the validation figures were measured on the training images (X, y); early "
                              "stopping must watch data the net does not train on: X_val, y_val"),
    (dict(extra_patience=1), "the loop waited one epoch too many: stop as soon as `patience` epochs in a "
                                  "row brought no improvement (wait >= patience)"),
    (dict(extra_patience=-1), "the loop stopped one epoch too early: stop when `patience` epochs in a row "
                                  "brought no improvement, not patience - 1"),
    (dict(use_min_delta=False), "every decrease of the validation loss counted as an improvement: min_delta is "
                          "ignored; an epoch improves only if val_loss < best - min_delta"),
    (dict(weighted=True), "train_loss weights each mini-batch by its size; the contract (as cnnlab's Trainer) "
                          "is the plain mean of the epoch's mini-batch losses, the smaller last batch counting "
                          "once"),
]


def _returned(out, what: str) -> tuple[dict, str]:
    placeholder(what, out)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"{what} should return (history, status), got {type(out).__name__}")
    history, status = out
    placeholder(f"the history returned by {what}", history)
    if not isinstance(history, dict) or any(key not in history for key in KEYS):
        keys = sorted(history) if isinstance(history, dict) else type(history).__name__
        raise CheckFailed(f"the history should be a dict with the lists {list(KEYS)}, got {keys}")
    lists = {}
    for key in KEYS:
        try:
            lists[key] = [float(v) for v in history[key]]
        except (TypeError, ValueError):
            raise CheckFailed(f"history['{key}'] should be a list of numbers, one per epoch") from None
    if len({len(v) for v in lists.values()}) != 1:
        raise CheckFailed("history's three lists should have one entry per epoch each, got lengths "
                          f"{[len(v) for v in lists.values()]}")
    if status not in ("early_stopping", "completed"):
        raise CheckFailed(f"status should be 'early_stopping' (patience ran out) or 'completed' (all epochs "
                          f"ran), got {status!r}")
    return lists, status


def _same_history(got: dict, expected: dict) -> bool:
    return all(_close(got[key], expected[key]) for key in KEYS)


def _run(fit, epochs: int):
    X, y, X_val, y_val = _problem()
    net = _net(watched=True)
    what = f"fit(..., epochs={epochs}, patience={PATIENCE}, min_delta={MIN_DELTA})"
    out = run_student(lambda: fit(net, CrossEntropyLoss(), Adam(net.parameters(), lr=LR), X, y, X_val, y_val,
                                  epochs=epochs, batch_size=BATCH, rng=np.random.default_rng(SEED),
                                  patience=PATIENCE, min_delta=MIN_DELTA), what, fn=fit)
    if out is None and has_placeholder(fit):
        raise CheckFailed("`fit` is still the exercise's `...`: write the loop and run the cell again")
    history, status = _returned(out, what)
    return history, status, net


def _diagnose_history(got: dict, expected: dict, epochs: int) -> None:
    for knobs, message in MISTAKES:
        wrong, _ = _loop(epochs, **knobs)
        if _same_history(got, wrong) and not _same_history(wrong, expected):
            raise CheckFailed(message)
    n, m = len(got["val_loss"]), len(expected["val_loss"])
    for k in range(min(n, m)):
        for key in KEYS:
            if not _close(got[key][k], expected[key][k]):
                raise CheckFailed(f"history['{key}'][{k}] (epoch {k + 1}) differs from cnnlab's Trainer on the same "
                                  f"seeds; follow the contract step by step: the order rng.permutation(N) each "
                                  f"epoch, forward, loss, backward, step, then net.eval() for one validation pass")
    raise CheckFailed(f"your loop ran {n} epochs where cnnlab's Trainer + EarlyStopping runs {m}: improvement "
                      f"means val_loss < best - min_delta; stop after `patience` epochs in a row without one")


def _diagnose_weights(net, expected_state, snapshots, status: str) -> None:
    state = net.state_dict()
    if all(_close(state[k], v) for k, v in expected_state.items()):
        return
    if net.aliased:
        raise CheckFailed("the best weights you kept are the net's live arrays, not copies: the optimizer kept "
                          "changing them, so loading them back changed nothing; keep best = net.state_dict() "
                          "(it copies every array)")
    matches = [k for k, snap in enumerate(snapshots) if all(_close(state[n], v) for n, v in snap.items())]
    best = next(k for k, snap in enumerate(snapshots) if all(_close(expected_state[n], v) for n, v in snap.items()))
    if matches and matches[-1] == len(snapshots) - 1:
        when = "when all epochs ran out" if status == "completed" else "when patience ran out"
        raise CheckFailed(f"{when}, the net kept the weights of the last epoch ({len(snapshots)}), not those of "
                          f"the best one ({best + 1}): load the kept copy back, net.load_state_dict(best_state), "
                          "however the run ends")
    if matches:
        raise CheckFailed(f"the net ends with the weights of epoch {matches[-1] + 1}, but the best validation loss "
                          f"(improved by at least min_delta) was reached in epoch {best + 1}: keep a copy "
                          "whenever the loss improves, and load that one back")
    raise CheckFailed("the net's weights at the end are not those of any epoch: keep net.state_dict() at the "
                      "best epoch and load it back with net.load_state_dict(...) at the end")


def check_fit(fit) -> None:
    """`fit(net, loss_fn, optimizer, X, y, X_val, y_val, *, epochs, batch_size, rng, patience, min_delta)`
    -> (history, status), compared with cnnlab's Trainer + EarlyStopping on a run that stops early and on one
    that runs out of epochs first."""
    placeholder("`fit`", fit, returned=False)
    if not callable(fit):
        raise CheckFailed(f"`fit` should be a function, got {type(fit).__name__}")
    expected, status, state, snapshots = _reference(EPOCHS)
    stop = len(snapshots)
    got, got_status, net = _run(fit, EPOCHS)
    if not _same_history(got, expected):
        _diagnose_history(got, expected, EPOCHS)
    if got_status != status:
        raise CheckFailed(f"the loop stopped at the right epoch ({stop}) but returned status {got_status!r}: it "
                          f"is {status!r} when patience runs out, 'completed' when all epochs ran")
    _diagnose_weights(net, state, snapshots, status)
    short = stop - 1  # a run that ends before patience runs out, its best epoch not its last
    expected2, status2, state2, snapshots2 = _reference(short)
    got2, got_status2, net2 = _run(fit, short)
    if not _same_history(got2, expected2):
        _diagnose_history(got2, expected2, short)
    if got_status2 != status2:
        raise CheckFailed(f"with epochs={short} the run ends before patience runs out: status should be "
                          f"{status2!r}, got {got_status2!r}")
    _diagnose_weights(net2, state2, snapshots2, status2)
    best = 1 + next(k for k, snap in enumerate(snapshots) if all(_close(state[n], v) for n, v in snap.items()))
    print(f"\u2713 fit agrees with cnnlab's Trainer + EarlyStopping: the same {stop} epochs (train loss, validation "
          f"loss and accuracy, with dropout and batch norm in the right mode), status '{status}', the best "
          f"weights (epoch {best} of {stop}) restored; and, with epochs={short}, 'completed' with the best weights "
          "restored too")
