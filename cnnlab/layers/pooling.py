"""Pooling layers, MaxPool2d and AvgPool2d, over a pair of kernels (`cnnlab.kernels`).

Both slide a KH x KW window over every map with stride (sh, sw), after padding by (ph, pw), and
reduce each window to one number: its maximum (Tomasi's appendix: the backward pass routes dout
to the winner alone) or its mean (dout / (KH*KW) to every pixel of the window). Windows may
overlap (kernel 3, stride 2): a pixel then collects the gradient of every window it is in.
The formulas, and how ties and padding are handled, are in `cnnlab.kernels`.
"""
from __future__ import annotations

from cnnlab.kernels import fast, kernel_pair
from cnnlab.layers._util import check_images, pair
from cnnlab.module import Module

__all__ = ["MaxPool2d", "AvgPool2d"]


class _Pool2d(Module):
    """What the two pooling layers share: arguments, input checks, the call to the kernels, repr."""

    operation = ""   # "maxpool2d" or "avgpool2d": the name of the kernel pair

    def __init__(self, kernel_size, stride=None, padding=0, kernels=fast):
        name = type(self).__name__
        self._k = pair(kernel_size, "kernel_size", name, 1)
        self._s = self._k if stride is None else pair(stride, "stride", name, 1)
        self._p = pair(padding, "padding", name, 0)
        if 2 * self._p[0] > self._k[0] or 2 * self._p[1] > self._k[1]:
            raise ValueError(f"{name}: padding should be at most half of kernel_size, got padding={padding!r} "
                             f"and kernel_size={kernel_size!r}")
        # kept as given, like PyTorch (an int stays an int in the repr)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.kernels = kernel_pair(kernels, self.operation, name)

    def forward(self, x):
        check_images(x, type(self).__name__, self._k, self._p)
        out, self._cache = self.kernels.forward(x, self._k, self._s, self._p)
        return out

    def backward(self, dout):
        return self.kernels.backward(dout, self._cache)

    def extra_repr(self) -> str:
        s = f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
        return s if repr(self.kernels) == "fast" else s + f", kernels={self.kernels!r}"


class MaxPool2d(_Pool2d):
    """Max pooling over KH x KW windows (Tomasi's appendix).

    MaxPool2d(kernel_size, stride=None, padding=0, kernels=cnnlab.kernels.fast): int or (h, w)
    each; stride defaults to kernel_size; padding (with -inf) at most half the kernel, as PyTorch
    requires. No dilation, floor mode (PyTorch's defaults dilation=1, ceil_mode=False, which its
    repr shows). kernels: the maxpool2d kernel pair (see `cnnlab.kernels`).

    forward(x): (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2*ph - KH) // sh + 1, OW likewise.
    backward(dout): (N, C, OH, OW) -> dx (N, C, H, W): each dout value goes to the first maximum
        (row-major) of its window; overlapping windows add up.
    """

    operation = "maxpool2d"

    def extra_repr(self) -> str:
        return super().extra_repr() + ", dilation=1, ceil_mode=False"


class AvgPool2d(_Pool2d):
    """Average pooling over KH x KW windows; zero padding counts (count_include_pad=True).

    AvgPool2d(kernel_size, stride=None, padding=0, kernels=cnnlab.kernels.fast): int or (h, w)
    each; stride defaults to kernel_size; padding at most half the kernel, as PyTorch requires.

    forward(x): (N, C, H, W) -> (N, C, OH, OW), each output the mean of its window.
    backward(dout): (N, C, OH, OW) -> dx (N, C, H, W): dout / (KH*KW) to every pixel of the window.
    """

    operation = "avgpool2d"
