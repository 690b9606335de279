"""MapCombination: Bouvrie's learned combinations of feature maps (§3.3), with the L1 penalty of §3.3.1.

Instead of choosing by hand which input maps feed which output map, every output map j takes a
weighted sum of ALL input maps, each filtered by its own kernel, with weights alpha_ij that are
learned:

    u_j = sum_i alpha_ij (x_i * k_i) + b_j,        x_j^out = f(u_j)             (Bouvrie §3.3)
    alpha_ij = exp(c_ij) / sum_k exp(c_kj)       (softmax over the input maps i)

so that sum_i alpha_ij = 1 and 0 <= alpha_ij <= 1. Bouvrie writes the kernel as k_i: ONE kernel
per input map, shared by every output map; only the mixing weights alpha_ij depend on j. That is
what this layer implements. (With a kernel k_ij per pair, alpha_ij would just rescale k_ij and add
nothing.) In PyTorch terms it is a depthwise convolution, Conv2d(C_in, C_in, k, groups=C_in, bias=False),
followed by a 1 x 1 convolution whose (C_out, C_in) weight matrix is alpha^T (columns on the
simplex) plus a bias. The nonlinearity f is left to a separate activation layer. As everywhere in
cnnlab the filtering is a 'valid' cross-correlation (stride 1, no padding): Bouvrie's true
convolution with k_i equals it with rot180(k_i), so the kernels are stored rotated.

Gradients, with delta_j = dL/du_j and z_i = x_i * k_i saved by the forward pass:

    dL/db_j     = sum_{u,v} (delta_j)_uv
    dL/dalpha_ij = sum_{u,v} (delta_j o z_i)_uv                               (Bouvrie, before (9))
    dL/dc_ij    = alpha_ij (dL/dalpha_ij - sum_k dL/dalpha_kj alpha_kj)        (eqs. (8)-(10))
    dL/dz_i     = sum_j alpha_ij delta_j
    dL/dk_i     = sum over positions of dL/dz_i times the window of x_i      (as Conv2d's dw)
    dL/dx_i     = 'full' correlation of dL/dz_i with rot180(k_i)              (as Conv2d's dx)

The sparsity penalty of §3.3.1, eqs. (11)-(14):

    Omega = lambda sum_{i,j} |alpha_ij|                                         (11)
    dOmega/dalpha_i = lambda sign(alpha_i)                                      (12)
    dOmega/dc_i = sum_k dOmega/dalpha_k dalpha_k/dc_i
                = lambda (|alpha_i| - alpha_i sum_k |alpha_k|)                   (13)-(14)

Bouvrie says this encourages some alpha_ij to go to zero, so that few input maps feed each output
map. Under the softmax parametrisation it cannot: every alpha_ij is positive and every column sums
to 1, so Omega = lambda * C_out whatever c is, and (14) is lambda (alpha_i - alpha_i * 1) = 0.
The penalty is implemented exactly as Bouvrie gives it (and its gradient is zero up to rounding);
it is kept because it shows why a penalty must be checked against the parametrisation it acts on.
A penalty that does favour sparse columns on the simplex must be non-convex in alpha, e.g.
sum_i alpha_ij^q with q < 1, or the entropy -sum_i alpha_ij log alpha_ij; we do not implement one.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from cnnlab.kernels.windows import sliding_windows, window_add
from cnnlab.layers._util import as_generator, check_images, pair, positive_int
from cnnlab.module import Module, Parameter

__all__ = ["MapCombination", "softmax_columns"]


def softmax_columns(c: np.ndarray) -> np.ndarray:
    """alpha = softmax of c over axis 0 (the input maps), one softmax per column (output map).

    Input: c of shape (C_in, C_out). Returns alpha of the same shape and dtype; every column is
    non-negative and sums to 1. The column maximum is subtracted first so exp cannot overflow.
    """
    e = np.exp(c - c.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


class MapCombination(Module):
    """Learned convex combinations of filtered input maps (Bouvrie §3.3; see the module docstring).

    MapCombination(in_channels, out_channels, kernel_size, l1_penalty=0.0, rng=None)

    - kernel_size: an int or (KH, KW); the filtering is a 'valid' cross-correlation, stride 1.
    - Parameters, in order:
      weight (in_channels, 1, KH, KW): the kernel k_i of each input map (PyTorch's depthwise layout),
          uniform on [-1/sqrt(KH*KW), 1/sqrt(KH*KW)] (PyTorch's init for that fan-in), from `rng`;
      c (in_channels, out_channels): the softmax logits of alpha, init 0 (alpha_ij = 1/in_channels,
          no preference at the start);
      bias (out_channels,): b_j, init 0.
    - l1_penalty: lambda >= 0 of Bouvrie's eq. (11), used by `penalty()` / `penalty_backward()`.
    - rng: a numpy Generator, an int seed, or None (a Generator seeded from cnnlab's library
      generator, see `cnnlab.manual_seed`). float32.

    forward(x): x (N, in_channels, H, W) -> u (N, out_channels, H - KH + 1, W - KW + 1).
    backward(dout): dout (N, out_channels, OH, OW) -> dx (N, in_channels, H, W); overwrites
        weight.grad, c.grad (eq. (10)) and bias.grad.
    alpha: property, softmax_columns(c.data), shape (in_channels, out_channels).
    penalty() -> float: Omega = l1_penalty * sum |alpha| (eq. (11)).
    penalty_backward() -> ndarray: ADDS dOmega/dc (eq. (14)) to c.grad and returns it; call it
        after backward, which overwrites c.grad.
    """

    def __init__(self, in_channels, out_channels, kernel_size, l1_penalty=0.0, rng=None):
        self.in_channels = positive_int(in_channels, "in_channels", "MapCombination")
        self.out_channels = positive_int(out_channels, "out_channels", "MapCombination")
        self.kernel_size = pair(kernel_size, "kernel_size", "MapCombination", 1)
        if (not isinstance(l1_penalty, numbers.Real) or isinstance(l1_penalty, bool)
                or not math.isfinite(l1_penalty) or l1_penalty < 0):
            raise ValueError(f"MapCombination: l1_penalty (lambda) must be a finite number >= 0, got {l1_penalty!r}")
        self.l1_penalty = float(l1_penalty)
        gen = as_generator(rng)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(kh * kw)
        self.weight = Parameter(gen.uniform(-bound, bound, size=(self.in_channels, 1, kh, kw)).astype(np.float32))
        self.c = Parameter(np.zeros((self.in_channels, self.out_channels), dtype=np.float32))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=np.float32))

    @property
    def alpha(self) -> np.ndarray:
        return softmax_columns(self.c.data)

    def forward(self, x):
        check_images(x, "MapCombination", self.kernel_size, channels=self.in_channels, param=self.weight)
        windows = sliding_windows(x, self.kernel_size, (1, 1))            # (N, C, OH, OW, KH, KW) view
        z = np.einsum("ncpqij,cij->ncpq", windows, self.weight.data[:, 0])  # z_i = x_i * k_i
        alpha = self.alpha
        out = np.einsum("ncpq,cj->njpq", z, alpha) + self.bias.data[None, :, None, None]
        self._windows, self._z, self._alpha, self._x_shape = windows, z, alpha, x.shape
        return out

    def backward(self, dout):
        alpha, z = self._alpha, self._z
        self.bias.grad[...] = dout.sum(axis=(0, 2, 3))
        dalpha = np.einsum("njpq,ncpq->cj", dout, z)                                 # dL/dalpha_ij
        self.c.grad[...] = alpha * (dalpha - (dalpha * alpha).sum(axis=0, keepdims=True))  # eq. (10)
        dz = np.einsum("njpq,cj->ncpq", dout, alpha)
        self.weight.grad[...] = np.einsum("ncpq,ncpqij->cij", dz, self._windows)[:, None]
        # every window (p, q) of x_i sends dz_i[p, q] * k_i back onto the pixels it read
        dwin = dz[:, :, :, :, None, None] * self.weight.data[None, :, 0, None, None, :, :]
        return window_add(dwin, self._x_shape, (1, 1))

    def penalty(self) -> float:
        """Omega = lambda * sum_{i,j} |alpha_ij| (Bouvrie eq. (11)); equals lambda * out_channels."""
        return self.l1_penalty * float(np.abs(self.alpha).sum())

    def penalty_backward(self) -> np.ndarray:
        """Add dOmega/dc = lambda (|alpha_i| - alpha_i sum_k |alpha_k|) (eq. (14)) to c.grad; return it.

        Computed per output map (column) j. Zero up to rounding under the softmax (see the module
        docstring): the penalty, as Bouvrie states it, does not change the training.
        """
        alpha = self.alpha
        a = np.abs(alpha)
        grad = self.l1_penalty * (a - alpha * a.sum(axis=0, keepdims=True))
        self.c.grad += grad.astype(self.c.grad.dtype, copy=False)
        return grad

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"l1_penalty={self.l1_penalty}")
