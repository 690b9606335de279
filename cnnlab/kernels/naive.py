"""Naive kernels: convolution and pooling as explicit loops over every output value.

Slow, but each line is one of the formulas of `cnnlab.kernels`: the test oracle for the fast
kernels, and what a student's own kernels are compared with. Same signatures as
`cnnlab.kernels.fast`; use them in a layer with `Conv2d(..., kernels=naive)`.
"""
from __future__ import annotations

import numpy as np

from cnnlab.kernels.windows import conv_output_size, pad2d, pair

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_backward_weight", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward"]


def conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """Convolution (cross-correlation) one output value at a time, formula (1) of `cnnlab.kernels`.

    Inputs: x (N, C, H, W); weight (F, C, KH, KW); bias (F,) or None; stride, padding: int or (h, w).
    Returns (out, cache): out (N, F, OH, OW), OH = (H + 2*ph - KH) // sh + 1 (OW likewise).
    """
    (sh, sw), (ph, pw) = pair(stride, "stride", "conv2d_forward", 1), pair(padding, "padding", "conv2d_forward", 0)
    n_batch, _, h, w = x.shape
    n_filters, _, kh, kw = weight.shape
    xp = pad2d(x, (ph, pw))
    out = np.zeros((n_batch, n_filters, conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)),
                   dtype=np.result_type(x, weight))
    for n in range(n_batch):
        for f in range(n_filters):
            for oh in range(out.shape[2]):
                for ow in range(out.shape[3]):
                    patch = xp[n, :, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw]  # (C, KH, KW)
                    out[n, f, oh, ow] = np.sum(patch * weight[f])
            if bias is not None:
                out[n, f] += bias[f]
    return out, (x, weight, (sh, sw), (ph, pw))


def conv2d_backward(dout, cache):
    """Every output value sends its gradient back through its window (formulas (2)-(4)).

    Inputs: dout (N, F, OH, OW); cache from `conv2d_forward`.
    Returns (dx, dweight, dbias) of shapes (N, C, H, W), (F, C, KH, KW), (F,): output (n, f, oh, ow)
    adds dout * w[f] onto the window of xp it read, and dout * window onto dweight[f].
    """
    x, weight, (sh, sw), (ph, pw) = cache
    h, w = x.shape[2:]
    kh, kw = weight.shape[2:]
    xp = pad2d(x, (ph, pw))
    dxp = np.zeros(xp.shape, dtype=np.result_type(dout, x))
    dweight = np.zeros(weight.shape, dtype=np.result_type(dout, weight))
    for n in range(dout.shape[0]):
        for f in range(dout.shape[1]):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    g = dout[n, f, oh, ow]
                    rows, cols = slice(oh * sh, oh * sh + kh), slice(ow * sw, ow * sw + kw)
                    dxp[n, :, rows, cols] += g * weight[f]
                    dweight[f] += g * xp[n, :, rows, cols]
    return dxp[:, :, ph:ph + h, pw:pw + w], dweight, dout.sum(axis=(0, 2, 3))


def conv2d_backward_weight(dout, cache):
    """The parameter gradients alone: (dweight, dbias) of `conv2d_backward` (the loops compute dx anyway)."""
    _, dweight, dbias = conv2d_backward(dout, cache)
    return dweight, dbias


def _pool_geometry(kernel_size, stride, padding, owner):
    k = pair(kernel_size, "kernel_size", owner, 1)
    s = k if stride is None else pair(stride, "stride", owner, 1)
    return k, s, pair(padding, "padding", owner, 0)


def maxpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max pooling, one window at a time; padding with -inf. stride defaults to kernel_size.

    Inputs: x (N, C, H, W); kernel_size, stride, padding: int or (h, w).
    Returns (out, cache): out (N, C, OH, OW), the maximum of each window.
    """
    (kh, kw), (sh, sw), (ph, pw) = geometry = _pool_geometry(kernel_size, stride, padding, "maxpool2d_forward")
    n_batch, channels, h, w = x.shape
    xp = pad2d(x, (ph, pw), value=-np.inf)
    out = np.empty((n_batch, channels, conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)), x.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out.shape[2]):
                for ow in range(out.shape[3]):
                    out[n, c, oh, ow] = xp[n, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw].max()
    return out, (x, geometry)


def maxpool2d_backward(dout, cache):
    """Each dout value goes to the first maximum (row-major) of its window; overlaps add up.

    Inputs: dout (N, C, OH, OW); cache from `maxpool2d_forward`. Returns dx (N, C, H, W).
    """
    x, ((kh, kw), (sh, sw), (ph, pw)) = cache
    h, w = x.shape[2:]
    xp = pad2d(x, (ph, pw), value=-np.inf)
    dxp = np.zeros(xp.shape, dtype=dout.dtype)
    for n in range(dout.shape[0]):
        for c in range(dout.shape[1]):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    window = xp[n, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw]
                    best_i, best_j = 0, 0                # scan row-major, keep the first maximum
                    for i in range(kh):
                        for j in range(kw):
                            if window[i, j] > window[best_i, best_j]:
                                best_i, best_j = i, j
                    dxp[n, c, oh * sh + best_i, ow * sw + best_j] += dout[n, c, oh, ow]
    return dxp[:, :, ph:ph + h, pw:pw + w]


def avgpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Average pooling, one window at a time; the zero padding counts in the average.

    Inputs: x (N, C, H, W); kernel_size, stride, padding: int or (h, w).
    Returns (out, cache): out (N, C, OH, OW), the mean of each window.
    """
    (kh, kw), (sh, sw), (ph, pw) = geometry = _pool_geometry(kernel_size, stride, padding, "avgpool2d_forward")
    n_batch, channels, h, w = x.shape
    xp = pad2d(x, (ph, pw))
    out = np.empty((n_batch, channels, conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)), x.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out.shape[2]):
                for ow in range(out.shape[3]):
                    out[n, c, oh, ow] = xp[n, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw].sum() / (kh * kw)
    return out, (x.shape, geometry)


def avgpool2d_backward(dout, cache):
    """dout / (KH*KW) to every pixel of the window; overlaps add up.

    Inputs: dout (N, C, OH, OW); cache from `avgpool2d_forward`. Returns dx (N, C, H, W).
    """
    (n_batch, channels, h, w), ((kh, kw), (sh, sw), (ph, pw)) = cache
    dxp = np.zeros((n_batch, channels, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    dxp[n, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw] += dout[n, c, oh, ow] / (kh * kw)
    return dxp[:, :, ph:ph + h, pw:pw + w]
