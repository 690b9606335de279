"""Conv2d: a 2-D convolution layer (a cross-correlation, as in PyTorch) over a pair of kernels.

The layer checks its input, holds the kernels (weights) and biases as Parameters and calls its
kernel pair, which computes formulas (1)-(4) of `cnnlab.kernels`: the forward pass (1), the
kernel gradient (2) (Bouvrie's eq. (7)), the input gradient (3) (Bouvrie §3.2, a 'full'
correlation) and the bias gradient (4). The default pair, `cnnlab.kernels.fast`, computes them
with im2col and one matrix product each; `kernels=naive` runs the loops, and a student's own pair
plugs in the same way.
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.kernels import fast, kernel_pair
from cnnlab.layers._util import as_generator, check_images, pair, positive_int
from cnnlab.module import Module, Parameter

__all__ = ["Conv2d"]


class Conv2d(Module):
    """2-D convolution over images (N, C, H, W), computed as a cross-correlation.

    Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None,
           kernels=cnnlab.kernels.fast)

    - kernel_size, stride, padding: an int or an (h, w) pair; zero padding on both sides.
    - Parameters: weight (out_channels, in_channels, KH, KW), then bias (out_channels,) unless
      bias=False. Initialised as in PyTorch: uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)] with
      fan_in = in_channels*KH*KW, drawn (weight first, then bias) from `rng`: a numpy Generator
      (its stream continues), an int seed, or None, which draws from cnnlab's library generator as
      PyTorch does (see cnnlab.rng): two layers built with rng=None start from different numbers,
      and `cnnlab.manual_seed(s)` before building makes them repeat exactly. float32.
    - kernels: the conv2d kernel pair (see `cnnlab.kernels`): a module such as
      `cnnlab.kernels.naive`, or (forward, backward) functions.

    forward(x): x (N, in_channels, H, W) -> out (N, out_channels, OH, OW),
        OH = (H + 2*ph - KH) // sh + 1, OW = (W + 2*pw - KW) // sw + 1. Formula (1).
    backward(dout): dout (N, out_channels, OH, OW) -> dx (N, in_channels, H, W); overwrites
        weight.grad (formula (2)) and bias.grad (formula (4)); dx is formula (3). Inside
        `no_input_grad(layer)` (a network's first layer in training) only the parameter gradients
        are computed (the kernels' `conv2d_backward_weight`, when they have one) and dx is None.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None,
                 kernels=fast):
        self.in_channels = positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = pair(stride, "stride", "Conv2d", 1)
        self.padding = pair(padding, "padding", "Conv2d", 0)
        self.kernels = kernel_pair(kernels, "conv2d", "Conv2d")
        gen = as_generator(rng)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(self.in_channels * kh * kw)
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.weight = Parameter(gen.uniform(-bound, bound, size=shape).astype(np.float32))
        self.bias = (Parameter(gen.uniform(-bound, bound, size=self.out_channels).astype(np.float32))
                     if bias else None)

    def forward(self, x):
        check_images(x, "Conv2d", self.kernel_size, self.padding, self.in_channels, self.weight)
        bias = None if self.bias is None else self.bias.data
        out, self._cache = self.kernels.forward(x, self.weight.data, bias, self.stride, self.padding)
        return out

    def backward(self, dout):
        if self.needs_input_grad or self.kernels.backward_weight is None:
            dx, dweight, dbias = self.kernels.backward(dout, self._cache)
        else:   # a network's first layer in training: the parameter gradients only (see cnnlab.module)
            dx, (dweight, dbias) = None, self.kernels.backward_weight(dout, self._cache)
        self.weight.grad[...] = dweight
        if self.bias is not None:
            self.bias.grad[...] = dbias
        return dx

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        if repr(self.kernels) != "fast":
            s += f", kernels={self.kernels!r}"
        return s
