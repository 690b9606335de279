"""Lesson 10's self-checks: the right answers pass, each typical mistake is named."""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.data import load_fashion_mnist
from cnnlab.layers import Conv2d, Flatten, Linear, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import Adam
from cnnlab.train import Trainer, evaluate
from checks import CheckFailed
from checks.cnn_workflow import (check_most_confused, check_normalization, check_run,
                                            reference_run)

MIN_STD = 0.05


# --- exercise 1: normalisation ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def splits():
    """Small training and validation splits of the shipped subset (the check loads its test split)."""
    X = load_fashion_mnist("train", source="subset").X
    order = np.random.default_rng(3).permutation(len(X))
    return X[order[:600]], X[order[600:700]]


def stats_right(X):
    return X.mean(axis=0), np.maximum(X.std(axis=0), MIN_STD)


def answer(pixel_stats, X_train, X_val, stats_from=None):
    mean, std = pixel_stats(X_train if stats_from is None else stats_from)
    return pixel_stats, mean, std, (X_train - mean) / std, (X_val - mean) / std


def check(pixel_stats, mean, std, X_train_n, X_val_n, X_train, X_val):
    check_normalization(pixel_stats, mean, std, X_train_n, X_val_n, X_train, X_val, min_std=MIN_STD, source="subset")


def test_the_right_normalization_passes(splits, capsys):
    X_train, X_val = splits
    check(*answer(stats_right, X_train, X_val), X_train, X_val)
    out = capsys.readouterr().out
    assert "\u2713" in out and "600 training images" in out


def test_keepdims_and_the_sample_std_also_pass(splits, capsys):
    X_train, X_val = splits

    def stats(X):
        return X.mean(axis=0, keepdims=True), np.maximum(X.std(axis=0, ddof=1, keepdims=True), MIN_STD)

    check(*answer(stats, X_train, X_val), X_train, X_val)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("stats, message", [
    (lambda X: (..., ...), r"`mean returned by pixel_stats` is still Ellipsis"),
    (lambda X: None, r"`pixel_stats\(X\)` is still None \(did you forget `return`\?\)"),
    (lambda X: X.mean(axis=0), r"should return two arrays, \(mean, std\)"),
    (lambda X: (X.mean(), np.maximum(X.std(), MIN_STD)), r"single number: that is one value for all pixels"),
    (lambda X: (X.mean(axis=(1, 2, 3)), X.std(axis=(1, 2, 3))), r"one value per image .*\(axis=0\)"),
    (lambda X: (X.mean(axis=(0, 2)), X.std(axis=(0, 2))), r"one value per pixel, shape \(1, 4, 5\)"),
    (lambda X: (X.mean(axis=0), X.std(axis=0)), r"std is 0 at a pixel that never changes .* np.maximum"),
    (lambda X: (X.mean(axis=0), np.where(X.std(axis=0) == 0, 1.0, X.std(axis=0))),
     r"std\[0, 0, 0\] is 1 where the pixel's std is 0: raise every std below min_std"),
    (lambda X: (X.mean(axis=0), np.maximum(X.var(axis=0), MIN_STD)), r"looks like the variance"),
    (lambda X: (X.mean(axis=0), np.where(X.std(axis=0) < MIN_STD, 1.0, X.std(axis=0))), r"replaced by 1"),
    (lambda X: (X.mean(axis=0), X.std(axis=0) + MIN_STD), r"min_std was added to every std"),
    (lambda X: (X.mean(axis=0) + 0.01, np.maximum(X.std(axis=0), MIN_STD)),
     r"`mean returned by pixel_stats`\[0, 0, 0\] is .* but should be"),
    (lambda X: 1 / 0, r"pixel_stats\(X\) raised ZeroDivisionError"),
])
def test_pixel_stats_mistakes_are_named(splits, stats, message):
    X_train, X_val = splits
    mean, std = stats_right(X_train)
    with pytest.raises(CheckFailed, match=message):
        check(stats, mean, std, (X_train - mean) / std, (X_val - mean) / std, X_train, X_val)


def test_an_unguarded_tiny_std_is_named_even_without_zeros(splits):
    """The probe's nearly constant pixel is recognised when the student guards exact zeros only."""
    X_train, X_val = splits

    def stats(X):
        std = X.std(axis=0)
        return X.mean(axis=0), np.where(std > 0, std, MIN_STD)

    with pytest.raises(CheckFailed, match=r"raise every std below min_std"):
        check(*answer(stats, X_train, X_val), X_train, X_val)


def test_statistics_with_validation_images_are_a_leak(splits):
    X_train, X_val = splits
    with pytest.raises(CheckFailed, match=r"validation images too: information about them leaked"):
        check(*answer(stats_right, X_train, X_val, stats_from=np.concatenate([X_train, X_val])), X_train, X_val)


def test_statistics_of_the_validation_split_are_named(splits):
    X_train, X_val = splits
    with pytest.raises(CheckFailed, match=r"from the validation images only"):
        check(*answer(stats_right, X_train, X_val, stats_from=X_val), X_train, X_val)


@pytest.mark.parametrize("with_val", [False, True])
def test_statistics_with_test_images_are_named(splits, with_val):
    X_train, X_val = splits
    X_test = load_fashion_mnist("test", source="subset").X
    parts = [X_train, X_val, X_test] if with_val else [X_train, X_test]
    with pytest.raises(CheckFailed, match=r"test images: the test set must stay untouched until the very end"):
        check(*answer(stats_right, X_train, X_val, stats_from=np.concatenate(parts)), X_train, X_val)


def test_each_split_normalized_with_its_own_statistics_is_named(splits):
    X_train, X_val = splits
    mean, std = stats_right(X_train)
    own_mean, own_std = stats_right(X_val)
    with pytest.raises(CheckFailed, match=r"X_val_n was normalised with the validation images' own statistics"):
        check(stats_right, mean, std, (X_train - mean) / std, (X_val - own_mean) / own_std, X_train, X_val)


@pytest.mark.parametrize("make, message", [
    (lambda X, m, s: X, r"`X_train_n` is the raw split, unchanged"),
    (lambda X, m, s: (X - m) * s, r"multiplied by std: divide instead"),
    (lambda X, m, s: X / s - m, r"X / std - mean: subtract the mean first"),
    (lambda X, m, s: ((X - m) / s).astype(np.float64), r"dtype float64 but the images are float32"),
    (lambda X, m, s: ((X - m) / s)[:10], r"should have the shape of its split, \(600, 1, 28, 28\)"),
    (lambda X, m, s: ..., r"`X_train_n` is still Ellipsis"),
])
def test_normalized_array_mistakes_are_named(splits, make, message):
    X_train, X_val = splits
    mean, std = stats_right(X_train)
    with pytest.raises(CheckFailed, match=message):
        check(stats_right, mean, std, make(X_train, mean, std), (X_val - mean) / std, X_train, X_val)


def test_a_placeholder_mean_is_named(splits):
    X_train, X_val = splits
    mean, std = stats_right(X_train)
    with pytest.raises(CheckFailed, match=r"`mean` is still Ellipsis"):
        check(stats_right, ..., std, (X_train - mean) / std, (X_val - mean) / std, X_train, X_val)


# --- exercise 2: run(config) ------------------------------------------------------------------------

SEED = 0


@pytest.fixture(scope="module")
def task():
    """A tiny search problem: 8x8 images, three mini-batches per epoch, so every run takes milliseconds."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, size=200)
    X = rng.normal(size=(200, 1, 8, 8)).astype(np.float32)
    X[:, 0, :, 0] += y[:, None]  # the label shows in the first column: learnable
    return X[:160], y[:160], X[160:], y[160:]


def make_net():
    gen = np.random.default_rng(11)
    return Sequential(Conv2d(1, 2, 3, padding=1, rng=gen), ReLU(), Flatten(), Linear(2 * 8 * 8, 3, rng=gen))


def make_run(X, y, X_val, y_val, *, net=None, lr=None, weight_decay=None, epochs=1, rng=SEED, evaluate_on=None):
    """A student's run(config), right by default; each keyword plants one mistake."""
    def run(config):
        model = net if net is not None else make_net()
        optimizer = Adam(model.parameters(), lr=config["lr"] if lr is None else lr,
                         weight_decay=config["weight_decay"] if weight_decay is None else weight_decay)
        seed = rng() if callable(rng) else rng
        Trainer(model, CrossEntropyLoss(), optimizer, X, y, batch_size=64, rng=seed).run(epochs=epochs)
        Xe, ye = (X_val, y_val) if evaluate_on is None else evaluate_on
        val_loss, val_accuracy = evaluate(model, CrossEntropyLoss(), Xe, ye)
        return {"val_loss": val_loss, "val_accuracy": val_accuracy}

    return run


def test_the_reference_run_learns(task):
    X, y, X_val, y_val = task
    before = evaluate(make_net(), CrossEntropyLoss(), X_val, y_val)[0]
    after = reference_run({"lr": 1e-2, "weight_decay": 0.0}, make_net, X, y, X_val, y_val, SEED, epochs=20)
    assert after["val_loss"] < before - 0.3 and after["val_accuracy"] > 0.7  # chance: 1/3
    assert set(after) == {"val_loss", "val_accuracy"}


def test_the_right_run_passes(task, capsys):
    X, y, X_val, y_val = task
    check_run(make_run(*task), make_net, X, y, X_val, y_val, seed=SEED)
    assert "the same as the reference run" in capsys.readouterr().out


def test_a_run_that_uses_the_trainers_validation_figures_also_passes(task, capsys):
    X, y, X_val, y_val = task

    def run(config):
        net = make_net()
        trainer = Trainer(net, CrossEntropyLoss(), Adam(net.parameters(), lr=config["lr"],
                                                        weight_decay=config["weight_decay"]),
                          X, y, batch_size=64, rng=SEED, X_val=X_val, y_val=y_val)
        last = trainer.run(epochs=1).epochs[-1]
        return {"val_loss": last["val_loss"], "val_accuracy": last["val_accuracy"], "seconds": 0.1}

    check_run(run, make_net, X, y, X_val, y_val, seed=SEED)
    assert "\u2713" in capsys.readouterr().out


def counter():
    calls = iter(range(100))
    return lambda: next(calls)


@pytest.mark.parametrize("mistake, message", [
    (dict(net="shared"), r"two calls of run with the same config gave different results"),
    (dict(rng=counter()), r"two calls of run with the same config gave different results"),
    (dict(lr=3e-3), r"config\['lr'\] is not used"),
    (dict(weight_decay=1e-3), r"config\['weight_decay'\] is not used"),
    (dict(evaluate_on="train"), r"loss and accuracy on the training images"),
    (dict(epochs=2), r"run trains 2 epochs; the search gives every config one epoch"),
    (dict(rng=7), r"the recipe gives .* batch_size=64, rng=SEED"),
])
def test_run_mistakes_are_named(task, mistake, message):
    X, y, X_val, y_val = task
    if mistake.get("net") == "shared":
        mistake = dict(mistake, net=make_net())
    if mistake.get("evaluate_on") == "train":
        mistake = dict(mistake, evaluate_on=(X, y))
    with pytest.raises(CheckFailed, match=message):
        check_run(make_run(*task, **mistake), make_net, X, y, X_val, y_val, seed=SEED)


@pytest.mark.parametrize("run, message", [
    (..., r"`run` is still Ellipsis"),
    (lambda config: ..., r"run\(\{.*\}\)` is still Ellipsis"),
    (lambda config: None, r"is still None \(did you forget `return`\?\)"),
    (lambda config: (0.5, 0.8), r"should return a dict .* got tuple"),
    (lambda config: {"val_loss": 0.5}, r"the search needs \['val_accuracy'\] too"),
    (lambda config: {"val_loss": 0.5, "val_accuracy": 80.0}, r"an accuracy is a fraction between 0 and 1"),
    (lambda config: {"val_loss": "low", "val_accuracy": 0.8}, r"\['val_loss'\] should be a number"),
    (lambda config: config["learning_rate"], r"raised KeyError: 'learning_rate'"),
])
def test_malformed_runs_are_named(task, run, message):
    X, y, X_val, y_val = task
    with pytest.raises(CheckFailed, match=message):
        check_run(run, make_net, X, y, X_val, y_val, seed=SEED)


# --- exercise 3: the most-confused pair ------------------------------------------------------------

CONFUSION = np.array([[50, 2, 9, 0],
                      [1, 60, 0, 0],
                      [4, 0, 40, 3],
                      [0, 7, 8, 45]])
NAMES = ("shirt", "bag", "coat", "boot")


def test_the_most_confused_pair_passes(capsys):
    check_most_confused((0, 2), CONFUSION, NAMES)
    assert "0 shirt taken for 2 coat, 9 times" in capsys.readouterr().out


def test_numpy_integers_from_unravel_index_pass(capsys):
    off = CONFUSION.copy()
    np.fill_diagonal(off, 0)
    check_most_confused(np.unravel_index(off.argmax(), off.shape), CONFUSION)
    assert "\u2713" in capsys.readouterr().out


def test_any_of_tied_cells_passes(capsys):
    tied = CONFUSION.copy()
    tied[3, 2] = 9
    check_most_confused((3, 2), tied)
    check_most_confused((0, 2), tied)
    assert capsys.readouterr().out.count("\u2713") == 2


@pytest.mark.parametrize("pair, message", [
    (..., r"`pair` is still Ellipsis"),
    ((1, 1), r"on the diagonal: those are the correct predictions of 1 bag"),
    ((2, 0), r"transposed: rows are the true class .* the largest cell is \(0, 2\)"),
    (2, r"one number, 2: .* np.unravel_index"),
    ((0, 7), r"outside the 4 x 4 matrix"),
    (("a", "b"), r"two class indices"),
    ((3, 1), r"confusion\[3, 1\] = 7, but the largest count off the diagonal is 9"),
])
def test_most_confused_mistakes_are_named(pair, message):
    with pytest.raises(CheckFailed, match=message):
        check_most_confused(pair, CONFUSION, NAMES)


def test_both_directions_together_is_named():
    both = np.array([[50, 8, 0], [8, 40, 0], [9, 0, 41]])  # (0,1)+(1,0) = 16 > 9 = the largest cell (2,0)
    with pytest.raises(CheckFailed, match=r"confused most often in both directions together"):
        check_most_confused((0, 1), both)
