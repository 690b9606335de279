"""im2col and col2im: a sliding-window operation turned into one matrix product, and back.

`im2col` copies every KH x KW window of the input once into a matrix with one *column* per
output pixel (Caffe's "col" buffer, here for the whole batch at once),

    cols[(c, i, j), (oh, ow, n)] = x_padded[n, c, oh*sh + i, ow*sw + j],

so that a convolution becomes a single GEMM, the way Caffe computes its layers (Veta's slides
show the linear layer as one GEMM; Bouvrie §3.4 insists that these kernels decide the speed).
`col2im` is its adjoint: it sends every entry back to the pixel it was read from and adds up
the contributions of overlapping windows.

Both work kernel offset by kernel offset. For one offset (i, j), the rows (c, i, j) of `cols`
hold the padded image shifted by (i, j): a single strided slice, copied (im2col) or added back
(col2im) in one vectorised operation over all channels, images and positions, KH*KW operations
in all, and no `np.add.at` scatter (an order of magnitude slower). The padded copy of x is small
(cols is KH*KW times larger), and with it every entry of cols is written exactly once.
"""
from __future__ import annotations

import numpy as np

from cnnlab.kernels.windows import conv_output_size

__all__ = ["im2col", "col2im"]


def im2col(x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, tuple[int, int]]:
    """Copy every convolution window of x into one column of a matrix.

    Inputs:
    - x: array of shape (N, C, H, W), any strides.
    - kernel_size (KH, KW), stride (sh, sw), padding (ph, pw): tuples of ints.

    Returns (cols, (OH, OW)) where cols has shape (C*KH*KW, OH*OW*N), rows ordered (c, i, j), the
    order of a Conv2d weight (F, C, KH, KW) flattened to (F, C*KH*KW), and columns ordered
    (oh, ow, n), the image index innermost. Then the convolution is weight.reshape(F, -1) @ cols,
    of shape (F, OH*OW*N).
    """
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh = conv_output_size(h, kh, sh, ph)
    ow = conv_output_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"im2col: the input of spatial size {(h, w)} padded by {tuple(padding)} is smaller "
                         f"than the kernel {tuple(kernel_size)}")
    # the padded input in (C, Hp, Wp, N) memory order: for one kernel offset, a window row of all
    # images (OW*N numbers for stride 1) is contiguous, so each copy below runs in long strides
    xp = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
    xp[:, ph:ph + h, pw:pw + w] = x.transpose(1, 2, 3, 0)
    cols = np.empty((c, kh, kw, oh, ow, n), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):   # rows (c, i, j) of cols: the padded image shifted by (i, j)
            cols[:, i, j] = xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
    return cols.reshape(c * kh * kw, oh * ow * n), (oh, ow)


def col2im(cols: np.ndarray, x_shape: tuple, kernel_size: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Adjoint of `im2col`: add the columns back onto the pixels they were read from.

    Inputs:
    - cols: array of shape (C*KH*KW, OH*OW*N), laid out as `im2col` returns it.
    - x_shape: (N, C, H, W), the shape of the original (unpadded) input.
    - kernel_size, stride, padding: as given to `im2col`.

    Returns dx of shape (N, C, H, W): each entry is the sum of all column entries that were copied
    from it (the contributions that fell on the padding are dropped). dx is a transposed view
    whose memory is laid out (C, H, W, N), the order in which the slice-adds read `cols`.
    """
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    oh = conv_output_size(h, kh, sh, ph)
    ow = conv_output_size(w, kw, sw, pw)
    cols6 = cols.reshape(c, kh, kw, oh, ow, n)
    dxp = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):   # each entry goes back to the padded pixel it was copied from
            dxp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw] += cols6[:, i, j]
    return dxp[:, ph:ph + h, pw:pw + w].transpose(3, 0, 1, 2)   # the padding's share is dropped
