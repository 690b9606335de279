"""Mini-batches and the train/validation split.

Mini-batch gradient descent (Tomasi; Khan et al.) estimates the gradient of the training error on
a small random batch of examples instead of the whole set: each *epoch* visits every example once,
in a new random order. A validation set, held out from training (Veta), is what early stopping
and hyper-parameter choices look at, so the test set stays untouched until the very end.

Randomness comes from `rng`: a numpy Generator, an int seed (the same seed gives the same
batches), or None for cnnlab's library generator (reset by `cnnlab.manual_seed`, see `cnnlab.rng`);
never from NumPy's global random state.
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.rng import as_generator

__all__ = ["DataLoader", "train_val_split"]


def _check_pair(X, y, who: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"{who} expects arrays with one example per row, got X of shape {X.shape} "
                         f"and y of shape {y.shape}")
    if len(X) != len(y):
        raise ValueError(f"{who}: X and y must hold the same number of examples, got X of shape "
                         f"{X.shape} and y of shape {y.shape}")
    if len(X) == 0:
        raise ValueError(f"{who}: X and y are empty (shape {X.shape})")
    return X, y


class DataLoader:
    """Iterate over (X, y) in mini-batches: `for xb, yb in DataLoader(X, y, 64, shuffle=True, rng=0)`.

    Inputs:
    - X: array of shape (N, ...), e.g. images (N, C, H, W).
    - y: array of shape (N, ...), e.g. labels (N,).
    - batch_size: examples per batch (the last batch may be smaller unless drop_last).
    - shuffle: draw a new random order at every epoch (every `iter()`) from `rng`.
    - drop_last: skip the last batch when it has fewer than batch_size examples.
    - rng: numpy Generator, int seed (the same seed gives the same sequence of epochs) or None: a
      Generator seeded from cnnlab's library generator when the loader is built (only if shuffle).

    Yields (xb, yb) of shapes (B, ...) and (B, ...), copies (changing them leaves X, y intact).
    `len(loader)` is the number of batches per epoch.
    """

    def __init__(self, X, y, batch_size: int = 64, shuffle: bool = False, drop_last: bool = False,
                 rng=None):
        self.X, self.y = _check_pair(X, y, "DataLoader")
        if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an integer >= 1, got {batch_size!r}")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), bool(shuffle), bool(drop_last)
        self.rng = as_generator(rng, "DataLoader") if shuffle or rng is not None else None

    def __len__(self) -> int:
        n, b = len(self.X), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self):
        n = len(self.X)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for k in range(len(self)):
            idx = order[k * self.batch_size:(k + 1) * self.batch_size]
            yield self.X[idx], self.y[idx]


def train_val_split(X, y, val_fraction: float = 0.1, rng=None, stratify: bool = True):
    """Split (X, y) at random into a training part and a validation part.

    Inputs:
    - X: array of shape (N, ...); y: labels of shape (N,).
    - val_fraction: share of the examples that go to validation, 0 < val_fraction < 1.
    - rng: numpy Generator, int seed or None (cnnlab's library generator).
    - stratify: when True, split each class separately with the same proportion, so both parts
      keep the class balance: a class with n examples gives round(val_fraction * n) (halves
      rounded up) to validation.

    Returns (X_train, y_train, X_val, y_val): disjoint, together every example exactly once, each
    part in the original order of the examples.
    """
    X, y = _check_pair(X, y, "train_val_split")
    if not isinstance(val_fraction, numbers.Real) or not 0 < val_fraction < 1:
        raise ValueError(f"train_val_split: val_fraction must be a number strictly between 0 and 1, "
                         f"got {val_fraction!r}")
    gen = as_generator(rng, "train_val_split")
    if stratify:
        if y.ndim != 1:
            raise ValueError(f"train_val_split(stratify=True) needs class labels of shape (N,), got {y.shape}")
        groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    else:
        groups = [np.arange(len(y))]
    val = [gen.permutation(g)[:int(np.floor(val_fraction * len(g) + 0.5))] for g in groups]
    is_val = np.zeros(len(y), dtype=bool)
    is_val[np.concatenate(val)] = True
    if is_val.all() or not is_val.any():
        raise ValueError(f"train_val_split: val_fraction={val_fraction} of {len(y)} examples leaves "
                         "an empty training or validation part; use a larger data set or another fraction")
    return X[~is_val], y[~is_val], X[is_val], y[is_val]
