"""Self-checks for lesson 10 (a real CNN, start to finish).

- `check_normalization(pixel_stats, mean, std, X_train_n, X_val_n, X_train, X_val, min_std=0.05,
  source="subset")`: per-pixel statistics of the training split only (Veta's "subtract mean"), a
  floor `min_std` under every standard deviation, and the same statistics applied to every split.
- `check_run(run, make_net, X, y, X_val, y_val, seed)`: the `run(config)` of a hyper-parameter
  search trains a fresh, seeded net for one epoch and reports its validation figures; compared with
  `reference_run`, the recipe written out independently.
- `check_most_confused(pair, confusion, classes=None)`: the (true, predicted) cell off the diagonal
  of a confusion matrix with the largest count.

Each check names the typical mistakes (statistics that include validation or test images, the wrong
axis, an unguarded standard deviation, each split normalised with its own statistics, a net reused
between configs, a config value ignored, validation figures measured on the training images, the
diagonal or a transposed matrix) and says in one line what to change.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import Adam
from cnnlab.train import Trainer, evaluate
from . import CheckFailed, check_array, passed, placeholder, run_student, same, student_array

__all__ = ["check_normalization", "check_run", "reference_run", "check_most_confused"]


def _placeholder(name: str, value) -> None:
    placeholder(f"`{name}`", value, returned="(" in name)  # a name with "(...)" is what a call returned


def _numeric(name: str, value) -> np.ndarray:
    return student_array(f"`{name}`", value, returned="(" in name)


_close = partial(same, rtol=1e-5, atol=1e-6)


# --- exercise 1: normalisation -----------------------------------------------------------------------

def _reference_stats(X, min_std: float, ddof: int = 0):
    X = np.asarray(X, dtype=np.float64)
    return X.mean(axis=0), np.maximum(X.std(axis=0, ddof=ddof), min_std)


def _per_pixel(name: str, value, image_shape: tuple, n_images: int) -> np.ndarray:
    """The student's per-pixel array as (C, H, W), or a CheckFailed naming the axis mistake."""
    got = _numeric(name, value)
    if got.shape in (image_shape, (1,) + image_shape):
        return got.reshape(image_shape)
    if got.size == 1:
        raise CheckFailed(f"`{name}` is a single number: that is one value for all pixels; Veta subtracts the mean "
                          f"of every input variable, i.e. of every pixel: average over the images only (axis=0)")
    if got.size == n_images or got.shape[:1] == (n_images,):
        raise CheckFailed(f"`{name}` has one value per image (shape {got.shape}): you averaged over the pixels of "
                          f"each image; average over the images instead (axis=0), giving shape {image_shape}")
    raise CheckFailed(f"`{name}` should hold one value per pixel, shape {image_shape} (axis=0 of (N, C, H, W)), "
                      f"got shape {got.shape}")


def _probe_images(rng) -> np.ndarray:
    """40 small images in [0, 1] with one pixel that never changes and one that hardly does."""
    X = rng.uniform(0, 1, size=(40, 1, 4, 5)).astype(np.float32)
    X[:, 0, 0, 0] = 0.0  # background that is always black: std exactly 0
    X[:, 0, 1, 1] = 0.0
    X[7, 0, 1, 1] = 0.01  # ink in one image only: a std of about 0.0016
    return X


def _check_pixel_stats(pixel_stats, min_std: float) -> None:
    X = _probe_images(np.random.default_rng(10))
    out = run_student(lambda: pixel_stats(X.copy()), "pixel_stats(X)")
    _placeholder("pixel_stats(X)", out)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise CheckFailed(f"pixel_stats(X) should return two arrays, (mean, std), got {type(out).__name__}")
    mean = _per_pixel("mean returned by pixel_stats", out[0], X.shape[1:], len(X))
    std = _per_pixel("std returned by pixel_stats", out[1], X.shape[1:], len(X))
    check_array("mean returned by pixel_stats", mean, X.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-6)
    raw = [X.astype(np.float64).std(axis=0, ddof=d) for d in (0, 1)]
    right = [np.maximum(r, min_std) for r in raw]
    if any(_close(std, r) for r in right):
        return
    if any(_close(std, r) for r in raw):
        if np.any(std == 0):
            raise CheckFailed("std is 0 at a pixel that never changes (always background): (x - mean) / std divides by "
                              f"zero there; raise every std below min_std to min_std: np.maximum(std, {min_std:g})")
        raise CheckFailed("std is not guarded: a pixel with ink in one image only has a std of about 0.002, and "
                          "dividing by it blows that pixel up; raise every std below min_std: "
                          f"np.maximum(std, {min_std:g})")
    if any(_close(std, r ** 2) or _close(std, np.maximum(r ** 2, min_std)) for r in raw):
        raise CheckFailed("std looks like the variance (the square of the standard deviation): use X.std(axis=0), "
                          "or take the square root")
    small = raw[0] < min_std
    if any(_close(std, np.where(r < min_std, 1.0, r)) for r in raw):
        raise CheckFailed(f"small standard deviations were replaced by 1; the rule of the lesson is to raise them to "
                          f"min_std: np.maximum(std, {min_std:g})")
    if any(_close(std, r + min_std) for r in raw):
        raise CheckFailed(f"min_std was added to every std; only the small ones are raised: "
                          f"np.maximum(std, {min_std:g})")
    if _close(std[~small], raw[0][~small]) or _close(std[~small], raw[1][~small]):
        where = tuple(np.argwhere(small & ~np.isclose(std, min_std))[0].tolist())
        raise CheckFailed(f"std{list(where)} is {std[where]:.4g} where the pixel's std is {raw[0][where]:.2g}: "
                          f"raise every std below min_std to min_std, np.maximum(std, {min_std:g})")
    check_array("std returned by pixel_stats", std, right[0], rtol=1e-4, atol=1e-6)


def check_normalization(pixel_stats, mean, std, X_train_n, X_val_n, X_train, X_val, min_std: float = 0.05,
                        source: str = "subset") -> None:
    """Exercise 1: statistics of the training split only, guarded, and applied to every split.

    pixel_stats: the student's function X -> (mean, std), each (C, H, W) (or (1, C, H, W)): per-pixel mean
    and standard deviation over the images, every std below min_std raised to min_std.
    mean, std: what the student computed for the lesson; X_train_n, X_val_n: the normalised splits.
    X_train, X_val: the raw splits (N, C, H, W); source: where the test split comes from (to recognise
    statistics that include test images).
    """
    _placeholder("pixel_stats", pixel_stats)
    if not callable(pixel_stats):
        raise CheckFailed(f"`pixel_stats` should be a function X -> (mean, std), got {type(pixel_stats).__name__}")
    _check_pixel_stats(pixel_stats, min_std)
    X_train, X_val = np.asarray(X_train), np.asarray(X_val)
    image = X_train.shape[1:]
    got_mean = _per_pixel("mean", mean, image, len(X_train))
    got_std = _per_pixel("std", std, image, len(X_train))
    ref_mean, ref_std = _reference_stats(X_train, min_std)
    if not (_close(got_mean, ref_mean, rtol=1e-4, atol=1e-5)
            and any(_close(got_std, _reference_stats(X_train, min_std, d)[1], rtol=1e-4, atol=1e-5) for d in (0, 1))):
        _name_the_leak(got_mean, X_train, X_val, source, min_std)
        check_array("mean", got_mean, ref_mean, rtol=1e-4, atol=1e-5)
        check_array("std", got_std, ref_std, rtol=1e-4, atol=1e-5)
    ref_mean, ref_std = got_mean, got_std  # checked above: the training split's (either ddof)
    for name, value, raw in (("X_train_n", X_train_n, X_train), ("X_val_n", X_val_n, X_val)):
        got = _numeric(name, value)
        if got.shape != raw.shape:
            raise CheckFailed(f"`{name}` should have the shape of its split, {raw.shape}, got {got.shape}")
        if np.asarray(value).dtype != raw.dtype:
            raise CheckFailed(f"`{name}` has dtype {np.asarray(value).dtype} but the images are {raw.dtype}: the net "
                              f"computes in {raw.dtype}; cast with .astype(np.{raw.dtype})")
        if _close(got, raw):
            raise CheckFailed(f"`{name}` is the raw split, unchanged: normalise it, (X - mean) / std")
        if name == "X_val_n":
            own_mean, own_std = _reference_stats(raw, min_std)
            if _close(got, (raw - own_mean) / own_std, rtol=1e-4, atol=1e-4):
                raise CheckFailed("X_val_n was normalised with the validation images' own statistics: every split "
                                  "gets the training split's mean and std (the validation images stand for new "
                                  "images, whose statistics we never get to see)")
        if _close(got, (raw - ref_mean) * ref_std, rtol=1e-4, atol=1e-4):
            raise CheckFailed(f"`{name}` was multiplied by std: divide instead, (X - mean) / std")
        if _close(got, raw / ref_std - ref_mean, rtol=1e-4, atol=1e-4):
            raise CheckFailed(f"`{name}` is X / std - mean: subtract the mean first, (X - mean) / std")
        check_array(name, got, (raw - ref_mean) / ref_std, rtol=1e-4, atol=1e-4)
    floored = int(np.sum(X_train.std(axis=0) < min_std))
    passed(f"per-pixel statistics of the {len(X_train)} training images only ({floored} pixels with std below "
           f"{min_std:g} guarded), applied to the training and the validation split")


def _name_the_leak(mean, X_train, X_val, source: str, min_std: float) -> None:
    """Raise CheckFailed if `mean` is the mean of some other combination of the splits."""
    candidates = [("the validation images only", [X_val]),
                  ("the validation images too: information about them leaked into training", [X_train, X_val])]
    try:
        from cnnlab.data import load_fashion_mnist

        X_test = load_fashion_mnist("test", source=source).X
    except Exception:  # noqa: BLE001 - without the test set, just skip these candidates
        X_test = None
    if X_test is not None and X_test.shape[1:] == X_train.shape[1:]:
        candidates += [("the test images: the test set must stay untouched until the very end", [X_train, X_test]),
                       ("the validation and test images: the test set must stay untouched until the very end",
                        [X_train, X_val, X_test]),
                       ("the test images only: the test set must stay untouched until the very end", [X_test])]
    for what, parts in candidates:
        pooled = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
        if _close(mean, pooled.mean(axis=0), rtol=1e-4, atol=1e-5):
            raise CheckFailed(f"your `mean` was computed from {what}; use the training split only: "
                              "pixel_stats(X_train)")


# --- exercise 2: run(config) for the search ------------------------------------------------------------

def reference_run(config, make_net, X, y, X_val, y_val, seed, epochs: int = 1, batch_size: int = 64) -> dict:
    """The recipe of exercise 2, written out: a fresh `make_net()`, Adam(lr, weight_decay) from `config`,
    `epochs` epochs of mini-batches of `batch_size` shuffled with `rng=seed`, then the mean cross-entropy
    and the accuracy on (X_val, y_val). Returns {"val_loss": float, "val_accuracy": float}."""
    return _reference(config, make_net, X, y, X_val, y_val, seed, epochs, batch_size)[0]


def _reference(config, make_net, X, y, X_val, y_val, seed, epochs=1, batch_size=64):
    net = make_net()
    loss_fn = CrossEntropyLoss()
    optimizer = Adam(net.parameters(), lr=config["lr"], weight_decay=config["weight_decay"])
    Trainer(net, loss_fn, optimizer, X, y, batch_size=batch_size, rng=seed).run(epochs=epochs)
    val_loss, val_accuracy = evaluate(net, loss_fn, X_val, y_val)
    return {"val_loss": float(val_loss), "val_accuracy": float(val_accuracy)}, net


def _metrics(out, config) -> tuple[float, float]:
    what = f"run({config})"
    _placeholder(what, out)
    if not isinstance(out, dict):
        raise CheckFailed(f"{what} should return a dict {{'val_loss': ..., 'val_accuracy': ...}}, got "
                          f"{type(out).__name__}")
    missing = [k for k in ("val_loss", "val_accuracy") if k not in out]
    if missing:
        raise CheckFailed(f"{what} returned the keys {sorted(out)}; the search needs {missing} too")
    values = []
    for key in ("val_loss", "val_accuracy"):
        _placeholder(f"{what}['{key}']", out[key])
        try:
            values.append(float(out[key]))
        except (TypeError, ValueError):
            raise CheckFailed(f"{what}['{key}'] should be a number, got {type(out[key]).__name__}") from None
    if not 0 <= values[1] <= 1:
        raise CheckFailed(f"{what}['val_accuracy'] is {values[1]:g}: an accuracy is a fraction between 0 and 1")
    return values[0], values[1]


def check_run(run, make_net, X, y, X_val, y_val, seed, config=None) -> None:
    """Exercise 2: `run(config)` trains a fresh net (`make_net()`) with Adam(lr, weight_decay) for one epoch of
    mini-batches of 64 shuffled with rng=seed on (X, y), and returns its validation loss and accuracy.

    The student's run is called four times (the same config twice, then another lr, then another weight decay)
    and compared with `reference_run` on the first config.
    """
    _placeholder("run", run)
    if not callable(run):
        raise CheckFailed(f"`run` should be a function config -> dict, got {type(run).__name__}")
    config = dict(config or {"lr": 3e-3, "weight_decay": 1e-3})
    first = _metrics(run_student(lambda: run(dict(config)), f"run({config})"), config)
    again = _metrics(run_student(lambda: run(dict(config)), f"run({config})"), config)
    if not _close(first, again, rtol=1e-6, atol=1e-9):
        raise CheckFailed("two calls of run with the same config gave different results "
                          f"(val_loss {first[0]:.4f}, then {again[0]:.4f}): build a fresh net inside run (make_net()) "
                          "and shuffle with the same seed (rng=SEED) every time, so that only the config differs")
    expected, net = _reference(config, make_net, X, y, X_val, y_val, seed)
    if not _close(first, (expected["val_loss"], expected["val_accuracy"]), rtol=1e-4, atol=1e-6):
        train_loss, train_acc = evaluate(net, CrossEntropyLoss(), X, y)
        if _close(first, (train_loss, train_acc), rtol=1e-4, atol=1e-6):
            raise CheckFailed("run reports the loss and accuracy on the training images it was trained on; the search "
                              "must compare configs on the validation split (X_val_n, y_val)")
        for epochs in (2, 3):
            other = reference_run(config, make_net, X, y, X_val, y_val, seed, epochs=epochs)
            if _close(first, (other["val_loss"], other["val_accuracy"]), rtol=1e-4, atol=1e-6):
                raise CheckFailed(f"run trains {epochs} epochs; the search gives every config one epoch")
        raise CheckFailed(f"run({config}) gave val_loss {first[0]:.4f}, val_accuracy {first[1]:.4f}; the recipe gives "
                          f"{expected['val_loss']:.4f} and {expected['val_accuracy']:.4f}: a fresh make_net(), "
                          "Adam(net.parameters(), lr=config['lr'], weight_decay=config['weight_decay']), Trainer(..., "
                          "batch_size=64, rng=SEED), one epoch, then evaluate on the validation split")
    for key, factor in (("lr", 3.0), ("weight_decay", 30.0)):
        changed = dict(config, **{key: config[key] * factor if config[key] else 1e-2})
        other = _metrics(run_student(lambda c=changed: run(dict(c)), f"run({changed})"), changed)
        if _close(first, other, rtol=1e-9, atol=1e-12):
            raise CheckFailed(f"run gives the same result for {key}={config[key]:g} and {key}={changed[key]:g}: "
                              f"config['{key}'] is not used; pass it to the optimizer")
    passed(f"run(config) trains a fresh seeded net and reports val_loss {first[0]:.4f}, val_accuracy {first[1]:.1%}, "
           "the same as the reference run")


# --- exercise 4: the most-confused pair ------------------------------------------------------------

def check_most_confused(pair, confusion, classes=None) -> None:
    """Exercise 4: `pair` = (true class, predicted class) of the largest count off the diagonal of `confusion`
    (rows: true class, columns: predicted class). Ties: any of the largest cells is right."""
    _placeholder("pair", pair)
    C = np.asarray(confusion)
    k = C.shape[0]
    name = (lambda i: f"{i} {classes[i]}") if classes is not None else str
    if np.ndim(pair) == 0:
        raise CheckFailed(f"`pair` is one number, {pair!r}: that is a position in the flattened matrix; turn it into "
                          "(row, column) with np.unravel_index(index, confusion.shape)")
    try:
        i, j = (int(v) for v in pair)
    except (TypeError, ValueError):
        raise CheckFailed(f"`pair` should be two class indices (true, predicted), got {pair!r}") from None
    if not (0 <= i < k and 0 <= j < k):
        raise CheckFailed(f"`pair` = ({i}, {j}) is outside the {k} x {k} matrix")
    off = C.astype(np.int64).copy()
    np.fill_diagonal(off, -1)
    best = off.max()
    if i == j:
        raise CheckFailed(f"({i}, {j}) is on the diagonal: those are the correct predictions of {name(i)}; set the "
                          "diagonal aside first (np.fill_diagonal on a copy)")
    if off[i, j] == best:
        passed(f"the most frequent confusion: {name(i)} taken for {name(j)}, {best} times")
        return
    if off[j, i] == best:
        raise CheckFailed(f"({i}, {j}) is transposed: rows are the true class and columns the prediction, so the "
                          f"largest cell is ({j}, {i}), {best} images of {name(j)} predicted as {name(i)}")
    both = off + off.T
    if both[i, j] == both.max():
        raise CheckFailed(f"({i}, {j}) is the pair confused most often in both directions together; the exercise asks "
                          f"for the single cell (true, predicted) with the largest count, {best}")
    raise CheckFailed(f"confusion[{i}, {j}] = {C[i, j]}, but the largest count off the diagonal is {best}")
