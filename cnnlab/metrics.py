"""Evaluating a classifier: predictions, accuracy, the confusion matrix and per-class accuracy."""
from __future__ import annotations

import numpy as np

from cnnlab.module import eval_mode

__all__ = ["predict", "accuracy", "accuracy_or_none", "confusion_matrix", "per_class_accuracy", "running_mean",
           "EVAL_BATCH_SIZE"]

# Images per forward pass when scoring (predict, cnnlab.train.evaluate): memory stays bounded whatever
# the data set's size. The recipe's network (width 32) needs about 250 MB of activations and im2col
# columns for 256 images and 500 MB for 1,000; at 128 about 120 MB, and scoring 5,000 images takes no
# longer than in larger batches (2 s on one core either way; the first pass at 1,000 took 7 s).
EVAL_BATCH_SIZE = 128


def predict(net, X, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """The network's outputs (N, C) for X in eval mode, in batches; restores the previous mode."""
    with eval_mode(net):
        return np.concatenate([net.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)])


def _labels(pred) -> np.ndarray:
    pred = np.asarray(pred)
    return pred.argmax(axis=1) if pred.ndim == 2 else pred


def accuracy(pred, y) -> float:
    """Fraction correct; `pred` is (N, C) scores (argmax taken) or (N,) predicted labels."""
    labels, y = _labels(pred), np.asarray(y)
    if labels.shape != y.shape:
        raise ValueError(f"predictions give {labels.shape[0] if labels.ndim else 0} labels of shape "
                         f"{labels.shape}, but y has shape {y.shape}")
    return float(np.mean(labels == y))


def accuracy_or_none(out, y) -> float | None:
    """`accuracy(out, y)` when (out, y) is a classification batch, else None (used by the Trainer).

    A classification batch is `out` of shape (N, C) (scores) with `y` integer labels of shape (N,).
    Anything else (a regression target, (N,) outputs of a binary logit, one-hot y) gives None rather
    than an error, so the training loop can report "no accuracy" for any loss.
    """
    y = np.asarray(y)
    if np.ndim(out) != 2 or y.ndim != 1 or y.dtype.kind not in "iu":
        return None
    return accuracy(out, y)


def confusion_matrix(y_true, pred, num_classes: int) -> np.ndarray:
    """C[i, j] = how many examples of true class i were predicted as class j (rows sum to class counts)."""
    labels, y_true = _labels(pred), np.asarray(y_true)
    if labels.shape != y_true.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but the predictions give {labels.shape}")
    for name, values in (("y_true", y_true), ("predictions", labels)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"{name} must lie in [0, {num_classes}), got range [{values.min()}, {values.max()}]")
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (y_true, labels), 1)
    return counts


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
    """Diagonal over row sums: the accuracy on each true class (NaN for a class with no examples)."""
    confusion = np.asarray(confusion)
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, confusion.diagonal() / totals, np.nan)


def running_mean(values, window: int) -> np.ndarray:
    """Mean of the last `window` values at each step (of fewer at the start): a readable loss curve.

    Inputs: values (T,); window >= 1. Output (T,) float: out[t] = mean(values[max(0, t - window + 1) : t + 1]).
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an integer >= 1, got {window!r}")
    v = np.asarray(values, dtype=float)
    if v.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {v.shape}")
    c = np.concatenate([[0.0], np.cumsum(v)])
    k = np.arange(1, len(v) + 1)
    lo = np.maximum(k - window, 0)
    return (c[k] - c[lo]) / (k - lo)
