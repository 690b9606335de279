"""Pooling layers: MaxPool2d and AvgPool2d, each with a naive reference kernel and a fast one.

Both slide a KH x KW window over every map with stride (sh, sw), after padding by (ph, pw), and
reduce each window to one number; OH = (H + 2*ph - KH) // sh + 1 (floor mode, as PyTorch),
likewise OW. Windows may overlap (e.g. kernel 3, stride 2): an input pixel then feeds several
outputs and its gradient is the sum of what they send back.

Max pooling (Tomasi's appendix): p_i = max_{q in P(i)} x_q over the window P(i). Only the winning
entry q_hat = argmax affects the output, so the Jacobian row of output i is 1 at q_hat and 0
elsewhere: the backward pass routes dout_i to q_hat alone. On ties the source documents leave the choice
open (Tomasi picks one at random); we do as PyTorch: the first maximum in row-major order
within the window. Padding is with -inf (never the maximum). The fast kernel visits the KH*KW
window offsets in row-major order and keeps, per output, the running maximum and the offset
where it was first reached; backward sends dout back at those stored offsets.

Average pooling: out = (1 / (KH*KW)) * sum of the window, padding with zeros that count in the
average (PyTorch's default count_include_pad=True); backward spreads dout / (KH*KW) evenly over
the window. Bouvrie's down() sums instead of averaging; see `Subsample2d` for his trainable version.

The fast max-pool kernels keep the memory layout of their input (Conv2d leaves its output in
(C, N, H, W) order), so that the convolution before them receives its gradient in the order it
needs, and MaxPool2d reuses its arrays from step to step (`cnnlab.layers.im2col.reusable`).
"""
from __future__ import annotations

import numpy as np

from cnnlab.layers._util import check_float_input, check_ndim, pair
from cnnlab.layers.im2col import axis_order, conv_output_size, pad2d, reusable, window_add
from cnnlab.module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "maxpool2d_forward_naive", "maxpool2d_backward_naive",
           "avgpool2d_forward_naive", "avgpool2d_backward_naive", "maxpool2d_forward_fast",
           "maxpool2d_backward_fast", "avgpool2d_forward_fast", "avgpool2d_backward_fast"]


def _geometry(kernel_size, stride, padding, owner="pool2d"):
    k = pair(kernel_size, "kernel_size", owner, 1)
    s = k if stride is None else pair(stride, "stride", owner, 1)
    p = pair(padding, "padding", owner, 0)
    return k, s, p


# --- naive reference kernels: one window at a time ------------------------------------------------
def maxpool2d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Reference max pooling. x (N, C, H, W) -> out (N, C, OH, OW); stride defaults to kernel_size."""
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    n_batch, channels, h, w = x.shape
    xp = pad2d(x, (ph, pw), value=-np.inf)
    out = np.empty((n_batch, channels, conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)), x.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out.shape[2]):
                for ow in range(out.shape[3]):
                    out[n, c, oh, ow] = xp[n, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw].max()
    return out


def maxpool2d_backward_naive(dout, x, kernel_size, stride=None, padding=0):
    """Reference max-pool backward: each dout value goes to the first maximum of its window.

    Inputs: dout (N, C, OH, OW); x (N, C, H, W) the forward input; kernel_size, stride, padding.
    Returns dx (N, C, H, W).
    """
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
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


def avgpool2d_forward_naive(x, kernel_size, stride=None, padding=0):
    """Reference average pooling (zero padding counts). x (N, C, H, W) -> out (N, C, OH, OW)."""
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    n_batch, channels, h, w = x.shape
    xp = pad2d(x, (ph, pw))
    out = np.empty((n_batch, channels, conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)), x.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out.shape[2]):
                for ow in range(out.shape[3]):
                    out[n, c, oh, ow] = xp[n, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw].sum() / (kh * kw)
    return out


def avgpool2d_backward_naive(dout, x_shape, kernel_size, stride=None, padding=0):
    """Reference average-pool backward. dout (N, C, OH, OW) -> dx of shape x_shape (N, C, H, W)."""
    (kh, kw), (sh, sw), (ph, pw) = _geometry(kernel_size, stride, padding)
    n_batch, channels, h, w = x_shape
    dxp = np.zeros((n_batch, channels, h + 2 * ph, w + 2 * pw), dtype=dout.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    dxp[n, c, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw] += dout[n, c, oh, ow] / (kh * kw)
    return dxp[:, :, ph:ph + h, pw:pw + w]


# --- fast kernels: one vectorised pass per window offset ------------------------------------------
def _offset_view(xp, i, j, out_hw, stride):
    """xp[:, :, oh*sh + i, ow*sw + j] for all (oh, ow): a strided view of shape (N, C, OH, OW)."""
    (oh, ow), (sh, sw) = out_hw, stride
    return xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


def maxpool2d_forward_fast(x, kernel_size, stride, padding):
    """Fast max pooling. x (N, C, H, W); kernel_size, stride, padding: (h, w) tuples.

    Returns (out, argmax): out (N, C, OH, OW) and argmax (N, C, OH, OW), the row-major offset
    i*KW + j inside each window of its first maximum (uint8 when KH*KW <= 256). Both are laid out
    in memory like x (e.g. in the (C, N, H, W) order that Conv2d leaves), so that the layers
    around need no copies.
    """
    return _max_forward(x, tuple(kernel_size), tuple(stride), tuple(padding))


def maxpool2d_backward_fast(dout, argmax, x_shape, kernel_size, stride, padding):
    """Fast max-pool backward: dout (N, C, OH, OW) and the stored argmax -> dx (N, C, H, W).

    dx is laid out in memory like argmax, i.e. like the forward input.
    """
    return _max_backward(dout, argmax, tuple(x_shape), tuple(kernel_size), tuple(stride), tuple(padding))


def _max_forward(x, kernel_size, stride, padding, owner=None):
    """maxpool2d_forward_fast; with a layer as `owner`, its arrays are reused between steps."""
    (kh, kw), (ph, pw) = kernel_size, padding
    xp = pad2d(x, padding, value=-np.inf)
    out_hw = (conv_output_size(x.shape[2], kh, stride[0], ph), conv_output_size(x.shape[3], kw, stride[1], pw))
    first = _offset_view(xp, 0, 0, out_hw, stride)
    shape, order = first.shape, axis_order(first)
    out = reusable(owner, "out", shape, x.dtype, order)
    np.copyto(out, first)
    argmax = reusable(owner, "argmax", shape, np.uint8 if kh * kw <= 256 else np.intp, order, zero=True)
    better = reusable(owner, "better", shape, bool, order)
    scratch = reusable(owner, "scratch", shape, argmax.dtype, order)
    for offset in range(1, kh * kw):
        candidate = _offset_view(xp, offset // kw, offset % kw, out_hw, stride)
        np.greater(candidate, out, out=better)  # strictly greater: ties keep the earlier offset
        # offsets grow, so "argmax = offset where better" is a maximum, without a branchy masked copy
        np.multiply(better, argmax.dtype.type(offset), out=scratch)
        np.maximum(argmax, scratch, out=argmax)
        np.maximum(out, candidate, out=out)
    return out, argmax


def _max_backward(dout, argmax, x_shape, kernel_size, stride, padding, owner=None):
    """maxpool2d_backward_fast; with a layer as `owner`, its arrays are reused between steps."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n_batch, channels, h, w = x_shape
    oh, ow = dout.shape[2:]
    padded = (n_batch, channels, h + 2 * ph, w + 2 * pw)
    overlapping = sh < kh or sw < kw
    tiled = not overlapping and (oh * sh, ow * sw) == (kh * oh, kw * ow) == padded[2:]
    order = axis_order(argmax)
    # every pixel is written exactly once when the windows tile the input: no need to zero it first
    dxp = reusable(owner, "dx", padded, dout.dtype, order, zero=not tiled)
    hit = reusable(owner, "hit", argmax.shape, bool, order)
    if axis_order(dout) != order:
        # one copy into argmax's layout: products that mix two layouts run several times slower
        same_layout = reusable(owner, "dout", dout.shape, dout.dtype, order)
        np.copyto(same_layout, dout)
        dout = same_layout
    for offset in range(kh * kw):
        np.equal(argmax, offset, out=hit)
        target = _offset_view(dxp, offset // kw, offset % kw, (oh, ow), stride)
        if overlapping:  # windows share pixels: add up what each window sends back
            target += dout * hit
        else:            # each pixel belongs to at most one window
            np.multiply(dout, hit, out=target)
    if ph == 0 and pw == 0:
        return dxp
    return dxp[:, :, ph:ph + h, pw:pw + w]


def avgpool2d_forward_fast(x, kernel_size, stride, padding):
    """Fast average pooling: the sum of KH*KW strided views, divided by KH*KW. Returns (N, C, OH, OW)."""
    (kh, kw), (ph, pw) = kernel_size, padding
    xp = pad2d(x, padding)
    out_hw = (conv_output_size(x.shape[2], kh, stride[0], ph), conv_output_size(x.shape[3], kw, stride[1], pw))
    out = _offset_view(xp, 0, 0, out_hw, stride).copy(order="K")   # laid out like x
    for offset in range(1, kh * kw):
        out += _offset_view(xp, offset // kw, offset % kw, out_hw, stride)
    out *= 1.0 / (kh * kw)
    return out


def avgpool2d_backward_fast(dout, x_shape, kernel_size, stride, padding):
    """Fast average-pool backward: every window pixel gets dout / (KH*KW). Returns (N, C, H, W)."""
    (kh, kw), (ph, pw) = kernel_size, padding
    n_batch, channels, h, w = x_shape
    share = dout * (1.0 / (kh * kw))
    dwin = np.broadcast_to(share[..., None, None], share.shape + (kh, kw))  # a view, no copy
    dxp = window_add(dwin, (n_batch, channels, h + 2 * ph, w + 2 * pw), stride)
    if ph == 0 and pw == 0:
        return dxp
    return dxp[:, :, ph:ph + h, pw:pw + w]


# --- the layers -------------------------------------------------------------------------------------
class _Pool2d(Module):
    """Shared constructor, input checks and repr of the two pooling layers."""

    def __init__(self, kernel_size, stride=None, padding=0):
        name = type(self).__name__
        self._k, self._s, self._p = _geometry(kernel_size, stride, padding, name)
        if 2 * self._p[0] > self._k[0] or 2 * self._p[1] > self._k[1]:
            raise ValueError(f"{name}: padding should be at most half of kernel_size, got padding={padding!r} "
                             f"and kernel_size={kernel_size!r}")
        # kept as given, like PyTorch (an int stays an int in the repr)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _check(self, x):
        name = type(self).__name__
        check_float_input(x, name)
        check_ndim(x, 4, "(N, C, H, W)", name)
        hp, wp = x.shape[2] + 2 * self._p[0], x.shape[3] + 2 * self._p[1]
        if hp < self._k[0] or wp < self._k[1]:
            raise ValueError(f"{name}: input of spatial size {x.shape[2:]} padded to ({hp}, {wp}) is smaller than "
                             f"kernel_size {self._k}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max pooling over KH x KW windows (Tomasi's appendix).

    MaxPool2d(kernel_size, stride=None, padding=0): int or (h, w) each; stride defaults to
    kernel_size; padding (with -inf) at most half the kernel, as PyTorch requires. No dilation,
    floor mode (PyTorch's defaults dilation=1, ceil_mode=False, which its repr shows).

    forward(x): (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2*ph - KH) // sh + 1, OW likewise.
    backward(dout): (N, C, OH, OW) -> dx (N, C, H, W): each dout value goes to the first maximum
        (row-major) of its window; overlapping windows add up.
    """

    def forward(self, x):
        self._check(x)
        self._argmax = None  # let the forward pass reuse last step's array
        out, self._argmax = _max_forward(x, self._k, self._s, self._p, owner=self)
        self._x_shape = x.shape
        return out

    def backward(self, dout):
        return _max_backward(dout, self._argmax, self._x_shape, self._k, self._s, self._p, owner=self)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", dilation=1, ceil_mode=False"


class AvgPool2d(_Pool2d):
    """Average pooling over KH x KW windows; zero padding counts (count_include_pad=True).

    AvgPool2d(kernel_size, stride=None, padding=0): int or (h, w) each; stride defaults to
    kernel_size; padding at most half the kernel, as PyTorch requires.

    forward(x): (N, C, H, W) -> (N, C, OH, OW), each output the mean of its window.
    backward(dout): (N, C, OH, OW) -> dx (N, C, H, W): dout / (KH*KW) to every pixel of the window.
    """

    def forward(self, x):
        self._check(x)
        self._x_shape = x.shape
        return avgpool2d_forward_fast(x, self._k, self._s, self._p)

    def backward(self, dout):
        return avgpool2d_backward_fast(dout, self._x_shape, self._k, self._s, self._p)
