"""Patch extraction: turning a sliding-window operation into one matrix product, and back.

A convolution (and a pooling layer) looks at one KH x KW window of the input per output pixel.
`sliding_windows` gives all those windows as a strided *view* of the (padded) input, without
copying: shape (N, C, OH, OW, KH, KW), where window (oh, ow) starts at row oh*stride_h and column
ow*stride_w. `im2col` copies the windows once into a matrix with one *column* per output pixel
(Caffe's "col" buffer, here for the whole batch at once),

    cols[(c, i, j), (n, oh, ow)] = x_padded[n, c, oh*sh + i, ow*sw + j],

so that a convolution becomes a single GEMM, the way Caffe computes its layers (Veta's slides
show the linear layer as one GEMM; Bouvrie §3.4 insists that these kernels decide the speed).
`col2im` is its adjoint: it sends every entry back to the pixel it was read from and adds up the
contributions of overlapping windows. It does so with KH*KW strided slice-adds (one per kernel
offset (i, j)), each a vectorised add over all windows, instead of a scatter with `np.add.at`,
which is an order of magnitude slower.

Output size, as in PyTorch (floor mode): OH = (H + 2*ph - KH) // sh + 1, likewise OW.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv_output_size", "pad2d", "sliding_windows", "window_add", "im2col", "col2im"]


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Number of window positions along one axis: (size + 2*padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def pad2d(x: np.ndarray, padding: tuple[int, int], value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of x (N, C, H, W) by (ph, pw) on each side with `value`.

    Returns x itself (no copy) when padding is (0, 0); otherwise a new array of shape
    (N, C, H + 2*ph, W + 2*pw) and the dtype of x.
    """
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = np.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def sliding_windows(xp: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """All KH x KW windows of an (already padded) input, as a read-only view (no copy).

    Inputs:
    - xp: array of shape (N, C, Hp, Wp), with Hp >= KH and Wp >= KW.
    - kernel_size: (KH, KW); stride: (sh, sw).

    Returns a view of shape (N, C, OH, OW, KH, KW) with OH = (Hp - KH) // sh + 1 (same for OW):
    windows[n, c, oh, ow] is xp[n, c, oh*sh : oh*sh + KH, ow*sw : ow*sw + KW].
    """
    kh, kw = kernel_size
    sh, sw = stride
    if xp.shape[2] < kh or xp.shape[3] < kw:
        raise ValueError(f"sliding_windows: the (padded) input of spatial size {xp.shape[2:]} is smaller "
                         f"than the kernel {kernel_size}")
    return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def window_add(dwin: np.ndarray, padded_shape: tuple, stride: tuple[int, int]) -> np.ndarray:
    """Adjoint of `sliding_windows`: add every window's values back onto the input grid.

    Inputs:
    - dwin: array of shape (A, B, OH, OW, KH, KW) (any strides, e.g. a broadcast view): one value
      per window position and kernel offset; (A, B) is (N, C), or any two leading axes.
    - padded_shape: (A, B, Hp, Wp), the shape of the padded input the windows were taken from.
    - stride: (sh, sw).

    Returns dxp of shape padded_shape with dxp[a, b, oh*sh + i, ow*sw + j] = sum of dwin[a, b, oh,
    ow, i, j] over all (oh, ow, i, j) that land on that pixel. Pixels shared by overlapping windows
    receive the sum of their contributions. Computed as KH*KW slice-adds, one per offset (i, j).
    """
    _, _, oh, ow, kh, kw = dwin.shape
    sh, sw = stride
    dxp = np.zeros(padded_shape, dtype=dwin.dtype)
    for i in range(kh):
        rows = slice(i, i + sh * (oh - 1) + 1, sh)
        for j in range(kw):
            dxp[:, :, rows, j:j + sw * (ow - 1) + 1:sw] += dwin[:, :, :, :, i, j]
    return dxp


def im2col(x: np.ndarray, kernel_size: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, tuple[int, int]]:
    """Copy every convolution window of x into one column of a matrix.

    Inputs:
    - x: array of shape (N, C, H, W).
    - kernel_size (KH, KW), stride (sh, sw), padding (ph, pw): tuples of ints.

    Returns (cols, (OH, OW)) where cols has shape (C*KH*KW, N*OH*OW), rows ordered (c, i, j), the
    order of a Conv2d weight (F, C, KH, KW) flattened to (F, C*KH*KW), and columns ordered
    (n, oh, ow). Then the convolution is weight.reshape(F, -1) @ cols, of shape (F, N*OH*OW).
    """
    n, c = x.shape[:2]
    kh, kw = kernel_size
    windows = sliding_windows(pad2d(x, padding), kernel_size, stride)  # (N, C, OH, OW, KH, KW) view
    oh, ow = windows.shape[2:4]
    # the only copy: gather windows into rows (c, i, j) x columns (n, oh, ow)
    cols = windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)
    return cols, (oh, ow)


def col2im(cols: np.ndarray, x_shape: tuple, kernel_size: tuple[int, int], stride: tuple[int, int] = (1, 1),
           padding: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Adjoint of `im2col`: scatter-add columns back into an array of shape x_shape.

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
    ph, pw = padding
    oh = conv_output_size(h, kh, stride[0], ph)
    ow = conv_output_size(w, kw, stride[1], pw)
    dwin = cols.reshape(c, kh, kw, n, oh, ow).transpose(0, 3, 4, 5, 1, 2)  # view (C, N, OH, OW, KH, KW)
    dxp = window_add(dwin, (c, n, h + 2 * ph, w + 2 * pw), stride).transpose(1, 0, 2, 3)
    if ph == 0 and pw == 0:
        return dxp
    return dxp[:, :, ph:ph + h, pw:pw + w]
