"""Point activations (ReLU, Sigmoid, Tanh, LeCun's scaled tanh) and Softmax.

A point activation applies one scalar function h to every entry, so its Jacobian is diagonal
(Tomasi's appendix: d x_i / d a_j = 0 for i != j) and the backward pass is an elementwise product,

    dL/da = dL/dx * h'(a)                                   (Bouvrie eq. (4): delta = ... o f'(u))

Shapes: any input shape; the output and dx have the shape and dtype of the input.

Softmax is not a point function: every output depends on every input along `dim`, and its
backward is the Jacobian-vector product written without forming the Jacobian.
"""
from __future__ import annotations

import numpy as np

from cnnlab.layers._util import check_float_input
from cnnlab.module import Module

__all__ = ["ReLU", "Sigmoid", "Tanh", "LeCunTanh", "Softmax"]


class ReLU(Module):
    """Rectified linear unit: h(a) = max(a, 0).

    forward(x): any shape -> same shape.
    backward(dout): dx = dout * h'(x) with h'(a) = 1 for a > 0 and 0 otherwise (Tomasi's appendix;
        Wollowski's derivative slide). At a = 0 exactly, ReLU has no derivative: any value in
        [0, 1] is a valid subgradient. Tomasi uses 1 there; we use 0, as PyTorch does.

    Output and dx keep the memory layout of x (NumPy's elementwise operations do).
    """

    def forward(self, x):
        check_float_input(x, "ReLU")
        self._mask = x > 0
        return np.maximum(x, 0)

    def backward(self, dout):
        return dout * self._mask


class Sigmoid(Module):
    """Logistic sigmoid: s(a) = 1 / (1 + exp(-a)) (Bouvrie's f with beta = 1).

    Computed without overflow: with e = exp(-|a|) <= 1, s = 1 / (1 + e) for a >= 0 and
    e / (1 + e) for a < 0.

    forward(x): any shape -> same shape, values in (0, 1).
    backward(dout): dx = dout * s * (1 - s) (Wollowski's sigmoid derivative), from the saved output.
    """

    def forward(self, x):
        check_float_input(x, "Sigmoid")
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1, e) / (1 + e)
        self._out = out
        return out

    def backward(self, dout):
        s = self._out
        return dout * s * (1 - s)


class Tanh(Module):
    """Hyperbolic tangent: h(a) = tanh(a).

    forward(x): any shape -> same shape, values in (-1, 1).
    backward(dout): dx = dout * (1 - tanh(x)^2), from the saved output.
    """

    def forward(self, x):
        check_float_input(x, "Tanh")
        self._out = np.tanh(x)
        return self._out

    def backward(self, dout):
        return dout * (1 - self._out * self._out)


class LeCunTanh(Module):
    """LeCun's scaled hyperbolic tangent: h(a) = A tanh(B a), A = 1.7159, B = 2/3.

    Bouvrie §2.1 (after LeCun's "Efficient BackProp"): with these constants h(1) = 1 and
    h(-1) = -1, so targets of +-1 sit where the function still has slope instead of in the
    saturated tails. PyTorch has no such layer.

    forward(x): any shape -> same shape, values in (-A, A).
    backward(dout): dx = dout * A B (1 - tanh(B x)^2).
    """

    A = 1.7159
    B = 2.0 / 3.0

    def forward(self, x):
        check_float_input(x, "LeCunTanh")
        self._t = np.tanh(self.B * x)
        return self.A * self._t

    def backward(self, dout):
        return dout * ((self.A * self.B) * (1 - self._t * self._t))


class Softmax(Module):
    """Softmax along one axis: s_k = exp(a_k) / sum_j exp(a_j).

    Softmax(dim=1): for class scores (N, K) that is one distribution per row. Computed stably by
    subtracting the maximum along `dim` first (the result is unchanged, exp cannot overflow).

    forward(x): any shape with at least dim+1 axes -> same shape; entries along `dim` sum to 1.
    backward(dout): the Jacobian-vector product. The Jacobian of one softmax is
        d s_k / d a_i = s_k (delta_ki - s_i)            (Bouvrie eq. (8))
    so, with g = dout, dx_i = sum_k g_k s_k (delta_ki - s_i) = s_i (g_i - sum_k g_k s_k),
    i.e. dx = s * (g - sum(g * s, dim)) (Bouvrie eq. (10)), without forming the K x K Jacobian.
    """

    def __init__(self, dim=1):
        if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
            raise TypeError(f"Softmax: dim must be an int, got {type(dim).__name__}: {dim!r}")
        self.dim = int(dim)

    def forward(self, x):
        check_float_input(x, "Softmax")
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Softmax(dim={self.dim}) needs an input with at least "
                             f"{self.dim + 1 if self.dim >= 0 else -self.dim} axes, got shape {x.shape}")
        e = np.exp(x - x.max(axis=self.dim, keepdims=True))
        self._out = e / e.sum(axis=self.dim, keepdims=True)
        return self._out

    def backward(self, dout):
        s = self._out
        return s * (dout - np.sum(dout * s, axis=self.dim, keepdims=True))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
