"""Flatten: from feature maps to feature vectors.

Bouvrie §2: before the fully connected layers, all the features of all the output maps are
concatenated into one long vector per example. Flattening moves no numbers (only the shape
changes), so its Jacobian is the identity and the backward pass only restores the shape.
"""
from __future__ import annotations

import numpy as np

from cnnlab.layers._util import check_float_input
from cnnlab.module import Module

__all__ = ["Flatten"]


class Flatten(Module):
    """Merge the axes start_dim..end_dim into one, as PyTorch's nn.Flatten.

    Flatten(start_dim=1, end_dim=-1)

    forward(x): e.g. (N, C, H, W) -> (N, C*H*W) with the defaults; C-order (row-major), so the
        feature index is c*H*W + h*W + w, as in PyTorch.
    backward(dout): (N, C*H*W) -> (N, C, H, W), the same numbers reshaped back.
    """

    def __init__(self, start_dim=1, end_dim=-1):
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"Flatten: {name} must be an int, got {type(value).__name__}: {value!r}")
        self.start_dim = int(start_dim)
        self.end_dim = int(end_dim)

    def forward(self, x):
        check_float_input(x, "Flatten")
        nd = x.ndim
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        end = self.end_dim + nd if self.end_dim < 0 else self.end_dim
        if not (0 <= start < nd and 0 <= end < nd) or start > end:
            raise ValueError(f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit an input "
                             f"with {nd} axes (shape {x.shape}): need start_dim <= end_dim within the axes")
        self._x_shape = x.shape
        merged = int(np.prod(x.shape[start:end + 1]))
        return x.reshape(x.shape[:start] + (merged,) + x.shape[end + 1:])

    def backward(self, dout):
        return dout.reshape(self._x_shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
