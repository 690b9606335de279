"""Self-checks for lesson 00 (welcome)."""
from __future__ import annotations

import numpy as np

from . import CheckFailed, check_array, passed

__all__ = ["check_class_means"]


def check_class_means(class_means, X, y, num_classes: int = 10) -> None:
    """class_means[k] must be the average image of class k: shape (num_classes, H, W)."""
    images = np.asarray(X, dtype=np.float64).reshape(len(X), *np.shape(X)[-2:])
    expected = np.stack([images[np.asarray(y) == k].mean(axis=0) for k in range(num_classes)])
    if np.shape(class_means) == (num_classes, 1) + expected.shape[1:]:
        raise CheckFailed(f"`class_means` has shape {np.shape(class_means)}: drop the channel axis "
                          f"so that it is {expected.shape}")
    if np.shape(class_means) == expected.shape[1:]:
        raise CheckFailed(f"`class_means` has shape {np.shape(class_means)}: that is one image; "
                          f"you need one mean image per class, {expected.shape}")
    check_array("class_means", class_means, expected, rtol=1e-4, atol=1e-5)
    passed(f"class_means holds the mean image of each of the {num_classes} classes")
