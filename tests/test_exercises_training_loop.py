"""Lesson 10's training-loop exercise: check_fit accepts a right `fit` and names each planted mistake."""
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnlab.metrics import accuracy

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "course"))
from checks import CheckFailed  # noqa: E402
from checks.training_loop import check_fit  # noqa: E402


def make_fit(*, shuffle="every epoch", validate_in="eval", retrain=True, on_train=False, patience_shift=0,
             use_min_delta=True, by_size=False, keep="copy", restore="always"):
    """A student's fit, right by default; each keyword plants one mistake."""
    def fit(net, loss_fn, optimizer, X, y, X_val, y_val, *, epochs, batch_size, rng, patience, min_delta=0.0):
        n = len(X)
        fixed = rng.permutation(n) if shuffle == "once" else np.arange(n)
        hist = dict(train_loss=[], val_loss=[], val_accuracy=[])
        lowest, kept, bad, why = float("inf"), None, 0, "completed"
        net.train()
        for _ in range(epochs):
            if retrain:
                net.train()
            perm = rng.permutation(n) if shuffle == "every epoch" else fixed
            total, count, parts = 0.0, 0, []
            for b in range(-(-n // batch_size)):
                rows = perm[b * batch_size:(b + 1) * batch_size]
                value = loss_fn.forward(net.forward(X[rows]), y[rows])
                net.backward(loss_fn.backward())
                optimizer.step()
                parts.append(value)
                total, count = total + value * len(rows), count + len(rows)
            if validate_in == "eval":
                net.eval()
            Xv, yv = (X, y) if on_train else (X_val, y_val)
            scores = net.forward(Xv)
            current = float(loss_fn.forward(scores, yv))
            hist["train_loss"].append(total / count if by_size else sum(parts) / len(parts))
            hist["val_loss"].append(current)
            hist["val_accuracy"].append(accuracy(scores, yv))
            threshold = lowest - (min_delta if use_min_delta else 0.0)
            if current < threshold:
                lowest, bad = current, 0
                kept = ({name: p.data for name, p in net.named_parameters()} if keep == "alias"
                        else net.state_dict())
            else:
                bad += 1
                if bad >= patience + patience_shift:
                    why = "early_stopping"
                    break
        if restore == "always" or (restore == "when stopped" and why == "early_stopping"):
            net.load_state_dict(kept, strict=keep != "alias")
        return hist, why

    return fit


def test_the_right_loop_passes(capsys):
    check_fit(make_fit())
    out = capsys.readouterr().out
    assert "\u2713 fit agrees with cnnlab's Trainer + EarlyStopping" in out and "'early_stopping'" in out


@pytest.mark.parametrize("mistake, message", [
    (dict(shuffle="never"), r"same order every epoch: shuffle"),
    (dict(shuffle="once"), r"order was drawn once, before the first epoch"),
    (dict(validate_in="train"), r"validation pass ran in training mode: dropout"),
    (dict(retrain=False), r"stayed in evaluation mode.*call net.train\(\) at the start of every epoch"),
    (dict(on_train=True), r"validation figures were measured on the training images"),
    (dict(patience_shift=1), r"waited one epoch too many"),
    (dict(patience_shift=-1), r"stopped one epoch too early"),
    (dict(use_min_delta=False), r"min_delta is ignored"),
    (dict(by_size=True), r"train_loss weights each mini-batch by its size"),
    (dict(keep="alias"), r"the net's live arrays, not copies"),
    (dict(restore="never"), r"when patience ran out, the net kept the weights of the last epoch \(6\), not those of "
                            r"the best one \(4\)"),
    (dict(restore="when stopped"), r"when all epochs ran out, the net kept the weights of the last epoch \(5\)"),
])
def test_each_mistake_gets_its_diagnosis(mistake, message):
    with pytest.raises(CheckFailed, match=message):
        check_fit(make_fit(**mistake))


def test_a_loop_that_keeps_the_wrong_epoch_is_named():
    def fit(net, *args, **kwargs):
        right = make_fit()
        history, status = right(net, *args, **kwargs)
        state = net.state_dict()
        net.load_state_dict({k: v * 0 for k, v in state.items()} | {k: v for k, v in state.items() if "running" in k})
        return history, status

    with pytest.raises(CheckFailed, match=r"not those of any epoch"):
        check_fit(fit)


def test_a_wrong_status_is_named():
    def fit(*args, **kwargs):
        history, status = make_fit()(*args, **kwargs)
        return history, "stopped"

    with pytest.raises(CheckFailed, match=r"status should be 'early_stopping' .* got 'stopped'"):
        check_fit(fit)


def test_an_unknown_mistake_names_the_first_entry_that_differs():
    def fit(net, loss_fn, optimizer, *args, **kwargs):
        for group in optimizer.param_groups:
            group["lr"] *= 2
        return make_fit()(net, loss_fn, optimizer, *args, **kwargs)

    with pytest.raises(CheckFailed, match=r"history\['train_loss'\]\[0\] \(epoch 1\) differs from cnnlab's Trainer"):
        check_fit(fit)


def placeholder_fit(net, loss_fn, optimizer, X, y, X_val, y_val, *, epochs, batch_size, rng, patience,
                    min_delta=0.0):
    ...


@pytest.mark.parametrize("fit, message", [
    (..., r"`fit` is still Ellipsis"),
    (placeholder_fit, r"`fit` is still the exercise's `...`: write the loop"),
    (lambda *a, **k: None, r"is still None \(did you forget `return`\?\)"),
    (lambda *a, **k: ..., r"is still Ellipsis"),
    (lambda *a, **k: {"train_loss": []}, r"should return \(history, status\), got dict"),
    (lambda *a, **k: ({"loss": []}, "completed"), r"history should be a dict with the lists"),
    (lambda *a, **k: ({"train_loss": [1.0], "val_loss": [], "val_accuracy": []}, "completed"),
     r"one entry per epoch each, got lengths \[1, 0, 0\]"),
    (lambda *a, **k: ({"train_loss": "low", "val_loss": [], "val_accuracy": []}, "completed"),
     r"history\['train_loss'\] should be a list of numbers"),
    (lambda net, *a, **k: net.no_such_method(), r"raised .*'Sequential' object has no attribute 'no_such_method'"),
    (3, r"`fit` should be a function, got int"),
])
def test_placeholders_and_malformed_answers_are_named(fit, message):
    with pytest.raises(CheckFailed, match=message):
        check_fit(fit)


def test_a_loop_that_validates_with_cnnlabs_evaluate_also_passes(capsys):
    """evaluate() switches to evaluation mode (and back) itself, and weights its batches by size."""
    from cnnlab.train import evaluate

    def fit(net, loss_fn, optimizer, X, y, X_val, y_val, *, epochs, batch_size, rng, patience, min_delta=0.0):
        history = {"train_loss": [], "val_loss": [], "val_accuracy": []}
        best, best_state, bad = np.inf, None, 0
        for epoch in range(epochs):
            net.train()
            idx = np.arange(len(X))
            rng.shuffle(idx)  # the same draw as rng.permutation(len(X))
            losses = []
            for k in range(0, len(X), batch_size):
                losses.append(loss_fn.forward(net(X[idx[k:k + batch_size]]), y[idx[k:k + batch_size]]))
                net.backward(loss_fn.backward())
                optimizer.step()
            val_loss, val_accuracy = evaluate(net, loss_fn, X_val, y_val)
            for key, value in zip(history, (np.mean(losses), val_loss, val_accuracy)):
                history[key].append(value)
            if val_loss < best - min_delta:
                best, best_state, bad = val_loss, net.state_dict(), 0
            elif (bad := bad + 1) == patience:
                net.load_state_dict(best_state)
                return history, "early_stopping"
        net.load_state_dict(best_state)
        return history, "completed"

    check_fit(fit)
    assert "\u2713" in capsys.readouterr().out
