"""Kernels: the computations of convolution and pooling, as pure functions in interchangeable pairs.

A layer (`cnnlab.layers.Conv2d`, `MaxPool2d`, `AvgPool2d`) checks its input, keeps its parameters
and calls a pair of kernels; the kernels do the arithmetic. Two sets have the same signatures:
`cnnlab.kernels.naive` (loops that follow the formulas below; the test oracle) and
`cnnlab.kernels.fast` (vectorised; every layer's default). A layer takes its pair as an argument,
so any pair with these signatures, a student's own included, runs inside a real network:

    Conv2d(1, 8, 3, kernels=naive)                  # a module (or object) with the functions below
    Conv2d(1, 8, 3, kernels=(my_forward, my_backward))

The signatures (CS231n's: the forward returns what its backward needs as an opaque `cache`):

    conv2d_forward(x, weight, bias, stride, padding)    -> (out, cache)
    conv2d_backward(dout, cache)                        -> (dx, dweight, dbias)
    maxpool2d_forward(x, kernel_size, stride, padding)  -> (out, cache)
    maxpool2d_backward(dout, cache)                     -> dx
    avgpool2d_forward(x, kernel_size, stride, padding)  -> (out, cache)
    avgpool2d_backward(dout, cache)                     -> dx

x (N, C, H, W); weight (F, C, KH, KW); bias (F,) or None; stride, padding, kernel_size: int or
(h, w); out (N, F or C, OH, OW) with OH = (H + 2*ph - KH) // sh + 1 (likewise OW); dx, dweight,
dbias have the shapes of x, weight, bias. A set may also offer `conv2d_backward_weight(dout,
cache) -> (dweight, dbias)`, the parameter gradients without dx, which a network's first layer
uses in training (nobody needs dL/d(images)); without it the layer calls `conv2d_backward` and
drops dx, which is as correct, only slower.

Convolution, as in PyTorch a cross-correlation (the kernel is not flipped). With xp the input
zero-padded by (ph, pw):

    out[n, f, oh, ow] = b[f] + sum_{c,i,j} w[f, c, i, j] xp[n, c, oh*sh + i, ow*sw + j]          (1)
    dL/dw[f, c, i, j] = sum_{n,oh,ow} dout[n, f, oh, ow] xp[n, c, oh*sh + i, ow*sw + j]          (2)
    dL/dxp[n, c, p, q] = sum_{f, oh, ow} dout[n, f, oh, ow] w[f, c, p - oh*sh, q - ow*sw]         (3)
    dL/db[f] = sum_{n,oh,ow} dout[n, f, oh, ow]                                                   (4)

(3) runs over the outputs whose window covers (p, q); dL/dx is dL/dxp with the padding cropped.
Relation to Bouvrie's notes (§3.1), which use MATLAB's true convolution conv2 (it rotates its
second argument by 180 degrees, rot180): his forward pass, a 'valid' convolution with kernels k
summed over input maps, is (1) with w = rot180(k), so the two conventions learn the same filters,
stored rotated. His kernel gradient, eq. (7), rot180(conv2(x, rot180(delta), 'valid')), is (2)
for stride 1 (with a stride, dout is spread out with sh-1, sw-1 zeros between its entries). His
sensitivity of the layer below, a 'full' convolution of delta with k, is (3): each input pixel
collects the gradients of every output whose window covered it, weighted by the kernel entry
that touched it. (4) is his dE/db_j = sum_{u,v} (delta_j)_{uv}.

Pooling slides a KH x KW window with stride (sh, sw) (default: the kernel size) after padding by
(ph, pw), at most half the kernel. Max pooling (Tomasi's appendix) outputs p = max_{q in P} x_q
over the window P; only the winner q_hat = argmax affects the output, so its Jacobian row is 1
at q_hat and 0 elsewhere and the backward pass routes dout to q_hat alone. On ties the source
documents leave the choice open (Tomasi picks one at random); we take, as PyTorch does, the first
maximum in row-major order within the window, and pad with -inf (never the maximum). Average
pooling outputs the mean of the window, the zero padding counting in it (PyTorch's
count_include_pad=True), and sends dout / (KH*KW) to every pixel of the window. Windows may
overlap (kernel 3, stride 2): a pixel in several windows receives the sum of what they send back.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from cnnlab.kernels import fast, naive

__all__ = ["naive", "fast", "KernelPair", "kernel_pair"]


class KernelPair(NamedTuple):
    """The kernels of one operation, as a layer holds them; backward_weight may be None."""

    forward: Callable
    backward: Callable
    backward_weight: Callable | None = None

    def __repr__(self) -> str:
        home = getattr(self.forward, "__module__", None)
        for name, kernels in (("fast", fast), ("naive", naive)):
            if home == kernels.__name__:
                return name
        return f"({getattr(self.forward, '__name__', self.forward)}, {getattr(self.backward, '__name__', self.backward)})"


def kernel_pair(kernels, operation: str, owner: str) -> KernelPair:
    """The kernels for `operation` ("conv2d", "maxpool2d", "avgpool2d") that a layer will call.

    kernels: a module or object with `{operation}_forward` and `{operation}_backward` functions
    (and optionally `{operation}_backward_weight`): `cnnlab.kernels.fast`, `cnnlab.kernels.naive`,
    a student's module; or a (forward, backward) pair of callables. Raises TypeError saying what
    is missing.
    """
    if isinstance(kernels, tuple) and len(kernels) == 2:
        pair = KernelPair(*kernels)
    else:
        names = (f"{operation}_forward", f"{operation}_backward")
        missing = [name for name in names if not callable(getattr(kernels, name, None))]
        if missing:
            raise TypeError(f"{owner}: kernels must be a module or object with the functions {names[0]} and "
                            f"{names[1]} (e.g. cnnlab.kernels.fast or cnnlab.kernels.naive), or a pair "
                            f"(forward, backward); {kernels!r} has no {' and no '.join(missing)}")
        pair = KernelPair(*(getattr(kernels, name) for name in names),
                          getattr(kernels, f"{operation}_backward_weight", None))
    for role, function in zip(("forward", "backward"), pair):
        if not callable(function):
            raise TypeError(f"{owner}: the {role} kernel must be a function, got {type(function).__name__}: "
                            f"{function!r}")
    return pair
