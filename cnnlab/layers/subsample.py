"""Subsample2d: Bouvrie's trainable sub-sampling layer (§3.2), and up-sampling by Kronecker product.

Each input map j is shrunk by summing its distinct k x k blocks, then scaled by its own trainable
multiplicative coefficient beta_j and shifted by its own additive bias b_j:

    d_j = down(x_j),     out_j = beta_j * d_j + b_j                 (Bouvrie §3.2, before f)

(Bouvrie also applies an activation f; here it is a separate layer, e.g. `Tanh` or `Sigmoid`.)
Backward (Bouvrie §3.2.1 and §3.1.1), with delta_j = dL/dout_j:

    dL/db_j    = sum_{u,v} (delta_j)_{uv}
    dL/dbeta_j = sum_{u,v} (delta_j o d_j)_{uv}              (d_j saved by the forward pass)
    dL/dx_j    = up(beta_j * delta_j),  up(z) = z (Kronecker product) 1_{k x k}

since every input pixel of a block contributes to its block sum with weight 1, it receives the
block's gradient unchanged: up() tiles each gradient value over its k x k block, which Bouvrie
computes with a Kronecker product by a k x k block of ones (`upsample_kron`).

PyTorch has no such layer: it equals AvgPool2d(k) followed by a per-channel affine map with
scale beta * k^2. The layer has no randomness (beta starts at 1, b at 0).
"""
from __future__ import annotations

import numpy as np

from cnnlab.layers._util import check_images, pair, positive_int
from cnnlab.module import Module, Parameter

__all__ = ["Subsample2d", "upsample_kron", "downsample_sum"]


def upsample_kron(d: np.ndarray, k) -> np.ndarray:
    """Bouvrie's up(): tile every entry of the last two axes over a k x k block.

    Inputs: d of shape (..., h, w); k an int or (kh, kw).
    Returns d (Kronecker product) ones((kh, kw)), of shape (..., h*kh, w*kw) and the dtype of d:
    out[..., u*kh + a, v*kw + b] = d[..., u, v] for 0 <= a < kh, 0 <= b < kw.
    """
    kh, kw = pair(k, "k", "upsample_kron", 1)
    return np.kron(d, np.ones((kh, kw), dtype=d.dtype))


def downsample_sum(x: np.ndarray, k) -> np.ndarray:
    """Bouvrie's down(): the sum over each distinct k x k block of the last two axes.

    Inputs: x of shape (..., H, W); k an int or (kh, kw). Trailing rows or columns that do not
    fill a whole block are ignored (floor, as in pooling).
    Returns an array of shape (..., H // kh, W // kw).
    """
    kh, kw = pair(k, "k", "downsample_sum", 1)
    h, w = x.shape[-2] // kh, x.shape[-1] // kw
    blocks = x[..., :h * kh, :w * kw].reshape(x.shape[:-2] + (h, kh, w, kw))
    return blocks.sum(axis=(-3, -1))


class Subsample2d(Module):
    """Trainable sub-sampling: out[:, j] = beta_j * down(x[:, j]) + b_j (Bouvrie §3.2).

    Subsample2d(channels, kernel_size=2, rng=None)

    - down() sums each distinct kernel_size x kernel_size block (stride = kernel_size, no
      padding); trailing rows/columns that do not fill a block are ignored (they get zero gradient).
    - Parameters: weight = beta, shape (channels,), initialised to 1; then bias = b, shape
      (channels,), initialised to 0. float32. `rng` is accepted for a uniform layer API but
      unused: the initialisation is deterministic.

    forward(x): (N, channels, H, W) -> (N, channels, H // k, W // k).
    backward(dout): (N, channels, H // k, W // k) -> dx (N, channels, H, W); writes weight.grad
        (sum of dout * down(x)) and bias.grad (sum of dout), per channel.
    """

    def __init__(self, channels, kernel_size=2, rng=None):
        self.channels = positive_int(channels, "channels", "Subsample2d")
        self.kernel_size = pair(kernel_size, "kernel_size", "Subsample2d", 1)
        self.weight = Parameter(np.ones(self.channels, dtype=np.float32))
        self.bias = Parameter(np.zeros(self.channels, dtype=np.float32))

    def forward(self, x):
        check_images(x, "Subsample2d", self.kernel_size, channels=self.channels, param=self.weight)
        self._d = downsample_sum(x, self.kernel_size)          # d_j = down(x_j), saved for dL/dbeta
        self._x_shape = x.shape
        return self._d * self.weight.data[:, None, None] + self.bias.data[:, None, None]

    def backward(self, dout):
        self.weight.grad[...] = np.sum(dout * self._d, axis=(0, 2, 3))
        self.bias.grad[...] = dout.sum(axis=(0, 2, 3))
        up = upsample_kron(dout * self.weight.data[:, None, None], self.kernel_size)
        if up.shape == self._x_shape:
            return up
        dx = np.zeros(self._x_shape, dtype=up.dtype)       # the ignored border gets no gradient
        dx[:, :, :up.shape[2], :up.shape[3]] = up
        return dx

    def extra_repr(self) -> str:
        k = self.kernel_size
        return f"channels={self.channels}, kernel_size={k[0] if k[0] == k[1] else k}"
