"""im2col and col2im: a sliding-window operation turned into one matrix product, and back.

`im2col` copies every KH x KW window of the input once into a matrix with one *column* per
output pixel (Caffe's "col" buffer, here for the whole batch at once),

    cols[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh*sh + i, ow*sw + j],

so that a convolution becomes a single GEMM, the way Caffe computes its layers (Veta's slides
show the linear layer as one GEMM; Bouvrie §3.4 insists that these kernels decide the speed).
`col2im` is its adjoint: it sends every entry back to the pixel it was read from and adds up
the contributions of overlapping windows.

Both work kernel offset by kernel offset. For one offset (i, j), the rows (c, i, j) of `cols`
hold the image shifted by (i, j): a single strided slice of x, copied (im2col) or added back
(col2im) in one vectorised operation over all channels, images and positions, KH*KW operations
in all. Entries that would read the zero padding are never touched: they stay zero in `cols`,
and their gradient is dropped by col2im. No padded copy of x is made, and no `np.add.at`
scatter (an order of magnitude slower) is needed.
"""
from __future__ import annotations

import numpy as np

from cnnlab.kernels.windows import conv_output_size

__all__ = ["im2col", "col2im"]


def _inside(offset: int, out_size: int, in_size: int, stride: int, pad: int):
    """Along one axis, for kernel offset `offset`: which outputs read a real pixel, and which pixels.

    Output o reads input position o*stride + offset - pad, which is inside the image when it lies
    in [0, in_size). Returns (outputs, inputs): the slice of outputs [lo, hi) for which it does,
    and the matching strided slice of input positions; None when every output reads padding.
    """
    lo = max(0, -((offset - pad) // stride))                        # ceil((pad - offset) / stride)
    hi = min(out_size, (in_size - 1 + pad - offset) // stride + 1)
    if hi <= lo:
        return None
    start = lo * stride + offset - pad
    return slice(lo, hi), slice(start, start + (hi - lo - 1) * stride + 1, stride)


def _shifts(x_hw, out_hw, kernel_size, stride, padding):
    """For every kernel offset (i, j) that reads at least one real pixel: (i, j, output slices,
    input slices), with which cols[(c, i, j), (n, outputs)] = x[n, c, inputs]."""
    (h, w), (oh, ow), (kh, kw), (sh, sw), (ph, pw) = x_hw, out_hw, kernel_size, stride, padding
    for i in range(kh):
        rows = _inside(i, oh, h, sh, ph)
        for j in range(kw):
            cols = _inside(j, ow, w, sw, pw)
            if rows is not None and cols is not None:
                yield i, j, (rows[0], cols[0]), (rows[1], cols[1])


def im2col(x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, tuple[int, int]]:
    """Copy every convolution window of x into one column of a matrix.

    Inputs:
    - x: array of shape (N, C, H, W), any strides.
    - kernel_size (KH, KW), stride (sh, sw), padding (ph, pw): tuples of ints.

    Returns (cols, (OH, OW)) where cols has shape (C*KH*KW, N*OH*OW), rows ordered (c, i, j), the
    order of a Conv2d weight (F, C, KH, KW) flattened to (F, C*KH*KW), and columns ordered
    (n, oh, ow). Then the convolution is weight.reshape(F, -1) @ cols, of shape (F, N*OH*OW).
    """
    n, c, h, w = x.shape
    kh, kw = kernel_size
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"im2col: the input of spatial size {(h, w)} padded by {tuple(padding)} is smaller "
                         f"than the kernel {tuple(kernel_size)}")
    cols = np.zeros((c, kh, kw, n, oh, ow), dtype=x.dtype)   # the entries that read padding stay zero
    xt = x.transpose(1, 0, 2, 3)                              # (C, N, H, W): a view, the order of cols' rows
    for i, j, (out_r, out_c), (in_r, in_c) in _shifts((h, w), (oh, ow), kernel_size, stride, padding):
        cols[:, i, j, :, out_r, out_c] = xt[:, :, in_r, in_c]   # the image shifted by (i, j)
    return cols.reshape(c * kh * kw, n * oh * ow), (oh, ow)


def col2im(cols: np.ndarray, x_shape: tuple, kernel_size: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Adjoint of `im2col`: add the columns back onto the pixels they were read from.

    Inputs:
    - cols: array of shape (C*KH*KW, N*OH*OW), laid out as `im2col` returns it.
    - x_shape: (N, C, H, W), the shape of the original (unpadded) input.
    - kernel_size, stride, padding: as given to `im2col`.

    Returns dx of shape (N, C, H, W): each entry is the sum of all column entries that were copied
    from it (the contributions that fell on the padding are dropped). dx is a transposed view
    whose memory is laid out (C, N, H, W), the order in which the slice-adds read `cols`.
    """
    n, c, h, w = x_shape
    kh, kw = kernel_size
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    dxt = np.zeros((c, n, h, w), dtype=cols.dtype)
    for i, j, (out_r, out_c), (in_r, in_c) in _shifts((h, w), (oh, ow), kernel_size, stride, padding):
        dxt[:, :, in_r, in_c] += cols6[:, i, j, :, out_r, out_c]
    return dxt.transpose(1, 0, 2, 3)
