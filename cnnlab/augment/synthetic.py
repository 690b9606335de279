"""Mixing synthetic samples into real batches (Khan §5.2.1: rendered data alongside real data)."""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.augment.base import Transform, check_images
from cnnlab.rng import as_generator

__all__ = ["MixSynthetic"]


class MixSynthetic(Transform):
    """Replace a fraction of each batch by samples drawn from a synthetic set. Changes LABELS too.

    MixSynthetic(X_syn, y_syn, fraction)
    - X_syn: synthetic images (M, C, H, W); y_syn: their labels (M,).
    - fraction: share of each batch replaced, in [0, 1]: k = round(fraction * N) positions are
      chosen without replacement and each gets a synthetic sample drawn uniformly (with replacement)
      from the M. The batch size stays N, so a training loop needs no change.

    Unlike the other transforms it is called with the labels:
    `mix(images, labels, rng) -> (images, labels)` (also `mix.apply_batch(images, labels, rng)`);
    the inputs are not changed. The attribute `last_replaced` holds the positions of the last call.
    """

    needs_labels = True

    def __init__(self, X_syn, y_syn, fraction: float):
        check_images(X_syn, "MixSynthetic (X_syn)")
        y_syn = np.asarray(y_syn)
        if y_syn.ndim == 0 or len(y_syn) != len(X_syn) or len(X_syn) == 0:
            raise ValueError(f"MixSynthetic: y_syn must hold one label per synthetic image, got X_syn of shape "
                             f"{X_syn.shape} and y_syn of shape {y_syn.shape}")
        if not isinstance(fraction, numbers.Real) or isinstance(fraction, bool) or not 0.0 <= fraction <= 1.0:
            raise ValueError(f"MixSynthetic: fraction must be in [0, 1], got {fraction!r}")
        self.X_syn, self.y_syn, self.fraction = X_syn, y_syn, float(fraction)
        self.last_replaced = None

    def __call__(self, images, labels, rng=None):
        check_images(images, "MixSynthetic")
        labels = np.asarray(labels)
        if labels.shape[:1] != images.shape[:1]:
            raise ValueError(f"MixSynthetic: labels must hold one entry per image, got images {images.shape} "
                             f"and labels {labels.shape}")
        if images.shape[1:] != self.X_syn.shape[1:]:
            raise ValueError(f"MixSynthetic: synthetic images of shape {self.X_syn.shape[1:]} cannot replace "
                             f"images of shape {images.shape[1:]}")
        if labels.shape[1:] != self.y_syn.shape[1:]:
            raise ValueError(f"MixSynthetic: synthetic labels of shape {self.y_syn.shape[1:]} do not match "
                             f"labels of shape {labels.shape[1:]} per example")
        gen = as_generator(rng, "MixSynthetic")
        n = len(images)
        k = int(np.floor(self.fraction * n + 0.5))
        where = np.sort(gen.choice(n, size=k, replace=False))
        picks = gen.integers(0, len(self.X_syn), size=k)
        out_x, out_y = images.copy(), labels.copy()
        out_x[where] = self.X_syn[picks].astype(images.dtype, copy=False)
        out_y[where] = self.y_syn[picks]
        self.last_replaced = where
        return out_x, out_y

    def apply_batch(self, images, labels, rng=None):
        return self(images, labels, rng)

    def __repr__(self) -> str:
        return f"MixSynthetic(X_syn={self.X_syn.shape}, fraction={self.fraction})"
