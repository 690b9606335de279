"""The small training task of lessons 06 and later: downsampled Fashion-MNIST images, flattened.

Big enough to behave like real training (non-convex, noisy mini-batch gradients, over-fitting on few
images), small enough that a few epochs of `cnnlab.models.tiny_mlp` take about a second in NumPy:

- `small_fashion_mnist(n_train, n_val, seed)`: a fixed, class-balanced, seeded sample of the *shipped*
  subset (so every machine gets the same images, with or without the full set installed), each image
  averaged over 2 x 2 blocks to 14 x 14 and flattened to 196 features;
- `downsample_flat(X, factor)`: the block averaging itself.
"""
from __future__ import annotations

import numpy as np

__all__ = ["small_fashion_mnist", "downsample_flat"]


def downsample_flat(X, factor: int = 2) -> np.ndarray:
    """Average images (N, 1, H, W) over factor x factor blocks and flatten: (N, (H/f) * (W/f)), float32."""
    X = np.asarray(X)
    if X.ndim != 4 or X.shape[1] != 1:
        raise ValueError(f"downsample_flat expects images of shape (N, 1, H, W), got {X.shape}")
    n, _, h, w = X.shape
    if not isinstance(factor, (int, np.integer)) or factor < 1 or h % factor or w % factor:
        raise ValueError(f"factor must be a positive int that divides H = {h} and W = {w}, got {factor!r}")
    blocks = X.reshape(n, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(2, 4), dtype=np.float32).reshape(n, -1)


def small_fashion_mnist(n_train: int = 2000, n_val: int = 500, seed: int = 0, factor: int = 2):
    """A seeded, class-balanced training and validation sample of the shipped Fashion-MNIST subset.

    Inputs: n_train, n_val (how many images; multiples of 10 give exactly equal class counts),
    seed (which images), factor (block size of the averaging: 2 gives 14 x 14 = 196 features).
    Returns (X_train, y_train, X_val, y_val): float32 (n, 784 / factor^2) in [0, 1] and int64 labels;
    the two parts are disjoint. The images are drawn class by class in turn (round robin), each class
    in its own random order, so any prefix is as balanced as it can be.
    """
    from cnnlab.data import load_fashion_mnist

    if n_train < 1 or n_val < 1:
        raise ValueError(f"n_train and n_val must be at least 1, got {n_train} and {n_val}")
    X, y, _ = load_fashion_mnist("train", source="subset")
    classes = np.unique(y)
    per_class = -(-(n_train + n_val) // len(classes))
    counts = np.bincount(y)
    if per_class > counts.min():
        raise ValueError(f"n_train + n_val = {n_train + n_val} needs {per_class} images per class, but the "
                         f"shipped subset has {counts.min()} per class (at most {counts.min() * len(classes)})")
    rng = np.random.default_rng(seed)
    orders = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in classes]
    round_robin = np.stack(orders, axis=1).ravel()  # class 0, 1, ..., 9, 0, 1, ...
    train, val = round_robin[:n_train], round_robin[n_train:n_train + n_val]
    return downsample_flat(X[train], factor), y[train], downsample_flat(X[val], factor), y[val]
