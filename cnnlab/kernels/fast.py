"""Fast kernels: the same six functions as `cnnlab.kernels.naive`, vectorised. The layers' default.

Everything that makes a training step fast lives here, and nowhere else:
- convolution: `im2col` copies all windows once (KH*KW strided slice copies of the padded
  input), then the forward pass, dweight and the input columns are one GEMM each, and `col2im`
  folds the input gradient back (`cnnlab.kernels.im2col`);
- memory order: im2col puts the image index innermost, cols[(c, i, j), (oh, ow, n)], so that each
  of its copies (and col2im's adds) moves long contiguous runs of OW*N numbers rather than rows
  of OW; the forward GEMM then leaves its result in (F, OH, OW, N) memory order, returned as an
  (N, F, OH, OW) view. The pooling kernels keep the order of their input, and so do NumPy's
  elementwise operations (ReLU), so dout reaches the convolution's backward in that order too
  and flattens to (F, OH*OW*N) as a view, without a copy;
- pooling: one vectorised pass per window offset (KH*KW passes), never a loop over pixels;
- `conv2d_backward_weight` computes the parameter gradients without the input gradient (one
  GEMM and col2im fewer), for a network's first layer in training (`cnnlab.module.no_input_grad`);
- every array is allocated where it is computed and nothing is kept between calls except the
  cache, but a step allocates and frees tens of MB: glibc would hand large freed blocks back to
  the operating system and page-fault them in again on the next step (about 500 faults, a tenth
  of a step). `keep_freed_memory()`, called when this module is imported, asks glibc to keep them
  in the process for the next step instead (elsewhere it does nothing).
"""
from __future__ import annotations

import ctypes

import numpy as np

from cnnlab.kernels.im2col import col2im, im2col
from cnnlab.kernels.windows import conv_output_size, pad2d, pair, window_add

__all__ = ["conv2d_forward", "conv2d_backward", "conv2d_backward_weight", "maxpool2d_forward", "maxpool2d_backward",
           "avgpool2d_forward", "avgpool2d_backward"]


def keep_freed_memory(mmap_below: int = 32 * 2**20, keep: int = 256 * 2**20) -> bool:
    """Ask glibc's malloc to serve blocks below `mmap_below` bytes from its heap (not from fresh
    mmap'ed pages) and to keep up to `keep` bytes of freed heap instead of returning them to the
    operating system (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD). Returns False where there is no
    glibc (macOS, Windows, musl): nothing changes there."""
    try:
        mallopt = ctypes.CDLL(None).mallopt   # the C library the interpreter runs on
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3   # from glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, mmap_below)) and bool(mallopt(m_trim_threshold, keep))


keep_freed_memory()


def conv2d_forward(x, weight, bias=None, stride=1, padding=0):
    """Formula (1) for all outputs as one matrix product over the copied windows.

    Inputs: x (N, C, H, W); weight (F, C, KH, KW); bias (F,) or None; stride, padding: int or (h, w).
    Returns (out, cache): out (N, F, OH, OW), whose memory is laid out (F, OH, OW, N).
    """
    stride, padding = pair(stride, "stride", "conv2d_forward", 1), pair(padding, "padding", "conv2d_forward", 0)
    n_filters = weight.shape[0]
    cols, (oh, ow) = im2col(x, weight.shape[2:], stride, padding)    # (C*KH*KW, OH*OW*N)
    out = weight.reshape(n_filters, -1) @ cols                         # (F, OH*OW*N): one GEMM
    if bias is not None:
        out += bias[:, None]
    out = out.reshape(n_filters, oh, ow, x.shape[0]).transpose(3, 0, 1, 2)
    return out, (x.shape, weight, stride, padding, cols)


def conv2d_backward_weight(dout, cache):
    """Formulas (2) and (4) alone: the parameter gradients, one GEMM, no input gradient.

    Inputs: dout (N, F, OH, OW); cache from `conv2d_forward`. Returns (dweight, dbias), shapes
    (F, C, KH, KW) and (F,). What a network's first convolution needs in a training step.
    """
    _, weight, _, _, cols = cache
    n_filters = weight.shape[0]
    # (F, OH*OW*N), columns ordered like cols'; a view when dout is laid out (F, OH, OW, N)
    dout2 = dout.transpose(1, 2, 3, 0).reshape(n_filters, -1)
    # formula (2) summed over all positions, dweight = dout2 cols^T. OpenBLAS runs this long, thin
    # product faster when its result is tall, so with fewer filters than rows of cols (the second
    # convolution of the benchmark CNN: 32 < 144) it computes the transpose cols dout2^T.
    if n_filters >= cols.shape[0]:
        dweight = dout2 @ cols.T
    else:
        dweight = (cols @ dout2.T).T
    return dweight.reshape(weight.shape), dout2.sum(axis=1)


def conv2d_backward(dout, cache):
    """Formulas (2)-(4): the parameter gradients, then one GEMM for the input columns and col2im.

    Inputs: dout (N, F, OH, OW); cache from `conv2d_forward`.
    Returns (dx, dweight, dbias) of shapes (N, C, H, W), (F, C, KH, KW), (F,).
    """
    x_shape, weight, stride, padding, _ = cache
    dweight, dbias = conv2d_backward_weight(dout, cache)
    n_filters = weight.shape[0]
    dcols = weight.reshape(n_filters, -1).T @ dout.transpose(1, 2, 3, 0).reshape(n_filters, -1)   # formula (3)
    return col2im(dcols, x_shape, weight.shape[2:], stride, padding), dweight, dbias


def _pool_geometry(kernel_size, stride, padding, owner):
    k = pair(kernel_size, "kernel_size", owner, 1)
    s = k if stride is None else pair(stride, "stride", owner, 1)
    return k, s, pair(padding, "padding", owner, 0)


def _offset_view(xp, offset, kernel_size, out_hw, stride):
    """xp[:, :, oh*sh + i, ow*sw + j] for all (oh, ow), with (i, j) the row-major `offset` in the window."""
    (i, j), (oh, ow), (sh, sw) = divmod(offset, kernel_size[1]), out_hw, stride
    return xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


def _axis_order(a):
    """The axes of `a` from the outermost to the innermost in memory (largest stride first)."""
    return sorted(range(a.ndim), key=lambda axis: -a.strides[axis])


def _zeros(shape, dtype, order):
    """Zeros of `shape` whose axes are laid out in memory in `order` (outermost first)."""
    return np.zeros([shape[axis] for axis in order], dtype).transpose(np.argsort(order))


def maxpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Max pooling as a running maximum over the KH*KW window offsets, in row-major order.

    Inputs: x (N, C, H, W); kernel_size, stride, padding: int or (h, w).
    Returns (out, cache): out (N, C, OH, OW), laid out in memory like x. The cache holds, per
    output, the offset i*KW + j where its maximum was first reached (strictly greater replaces).
    """
    kernel_size, stride, padding = _pool_geometry(kernel_size, stride, padding, "maxpool2d_forward")
    (kh, kw), (ph, pw) = kernel_size, padding
    xp = pad2d(x, padding, value=-np.inf)
    out_hw = (conv_output_size(x.shape[2], kh, stride[0], ph), conv_output_size(x.shape[3], kw, stride[1], pw))
    out = _offset_view(xp, 0, kernel_size, out_hw, stride).copy(order="K")
    argmax = np.zeros_like(out, dtype=np.uint8 if kh * kw <= 256 else np.intp)
    for offset in range(1, kh * kw):
        candidate = _offset_view(xp, offset, kernel_size, out_hw, stride)
        # offsets grow, so the offset of the running maximum is the largest offset that beat it
        np.maximum(argmax, np.greater(candidate, out) * argmax.dtype.type(offset), out=argmax)
        np.maximum(out, candidate, out=out)
    return out, (x.shape, argmax, kernel_size, stride, padding)


def maxpool2d_backward(dout, cache):
    """Route each dout value to the offset stored by the forward pass; overlapping windows add up.

    Inputs: dout (N, C, OH, OW); cache from `maxpool2d_forward`. Returns dx (N, C, H, W), laid out
    in memory like the forward input.
    """
    (n, c, h, w), argmax, kernel_size, stride, (ph, pw) = cache
    order = _axis_order(argmax)
    if _axis_order(dout) != order:   # products that mix two memory layouts run several times slower
        relaid = _zeros(dout.shape, dout.dtype, order)
        relaid[...] = dout
        dout = relaid
    dxp = _zeros((n, c, h + 2 * ph, w + 2 * pw), dout.dtype, order)
    overlapping = stride[0] < kernel_size[0] or stride[1] < kernel_size[1]
    for offset in range(kernel_size[0] * kernel_size[1]):
        target = _offset_view(dxp, offset, kernel_size, dout.shape[2:], stride)
        if overlapping:   # a pixel in several windows collects what each sends back
            target += dout * (argmax == offset)
        else:             # each pixel is in one window at most
            np.multiply(dout, argmax == offset, out=target)
    return dxp[:, :, ph:ph + h, pw:pw + w]


def avgpool2d_forward(x, kernel_size, stride=None, padding=0):
    """Average pooling: the sum of the KH*KW strided views of the window offsets, divided by KH*KW.

    Inputs: x (N, C, H, W); kernel_size, stride, padding: int or (h, w).
    Returns (out, cache): out (N, C, OH, OW), laid out in memory like x.
    """
    kernel_size, stride, padding = _pool_geometry(kernel_size, stride, padding, "avgpool2d_forward")
    (kh, kw), (ph, pw) = kernel_size, padding
    xp = pad2d(x, padding)
    out_hw = (conv_output_size(x.shape[2], kh, stride[0], ph), conv_output_size(x.shape[3], kw, stride[1], pw))
    out = _offset_view(xp, 0, kernel_size, out_hw, stride).copy(order="K")
    for offset in range(1, kh * kw):
        out += _offset_view(xp, offset, kernel_size, out_hw, stride)
    out *= 1.0 / (kh * kw)
    return out, (x.shape, kernel_size, stride, padding)


def avgpool2d_backward(dout, cache):
    """Every pixel of a window receives dout / (KH*KW). Returns dx (N, C, H, W)."""
    (n, c, h, w), (kh, kw), stride, (ph, pw) = cache
    share = dout * (1.0 / (kh * kw))
    dwin = np.broadcast_to(share[..., None, None], share.shape + (kh, kw))   # a view, no copy
    dxp = window_add(dwin, (n, c, h + 2 * ph, w + 2 * pw), stride)
    return dxp[:, :, ph:ph + h, pw:pw + w]
