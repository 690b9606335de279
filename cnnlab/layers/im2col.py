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
contributions of overlapping windows.

Both work kernel offset by kernel offset. For one offset (i, j), the rows (c, i, j) of `cols`
hold the image shifted by (i, j): a single strided slice of x, copied (im2col) or added back
(col2im) in one vectorised operation over all channels, images and positions, KH*KW operations in
all. Entries that would read the zero padding are never touched: they stay zero in `cols`, and
their gradient is dropped by col2im. No padded copy of x is made, and no `np.add.at` scatter
(an order of magnitude slower) is needed.

Output size, as in PyTorch (floor mode): OH = (H + 2*ph - KH) // sh + 1, likewise OW.

The module also holds `reusable`, the buffer recycling that the fast layers share: arrays of
several MB that are allocated afresh on every training step are returned to the operating system
and page-faulted back in on the next one, which can cost a third of a step.
"""
from __future__ import annotations

import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv_output_size", "pad2d", "sliding_windows", "window_add", "im2col", "col2im", "im2col_into",
           "col2im_into", "axis_order", "reusable"]


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


# --- kernel offset by kernel offset ----------------------------------------------------------------
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


def _offsets(x_hw, out_hw, kernel_size, stride, padding):
    """Yield (i, j, output rows, output cols, input rows, input cols) for every kernel offset that
    reads at least one real pixel (see `_inside`)."""
    (h, w), (oh, ow), (kh, kw), (sh, sw), (ph, pw) = x_hw, out_hw, kernel_size, stride, padding
    for i in range(kh):
        rows = _inside(i, oh, h, sh, ph)
        if rows is None:
            continue
        for j in range(kw):
            cols = _inside(j, ow, w, sw, pw)
            if cols is not None:
                yield i, j, rows[0], cols[0], rows[1], cols[1]


def im2col_into(x: np.ndarray, cols: np.ndarray, kernel_size, stride, padding) -> None:
    """Write the windows of x into `cols`, in place (the work behind `im2col`).

    - x: (N, C, H, W), any strides.
    - cols: (C*KH*KW, N*OH*OW) C-contiguous, of x's dtype. Only the entries that read a real pixel
      are written: the entries that read the zero padding must already be zero, e.g. because
      `cols` was made by np.zeros, or by an earlier call with an input of the same shape
      (layers keep `cols` between steps, so that 7 MB are not page-faulted in again every step).
    """
    n, c, h, w = x.shape
    kh, kw = kernel_size
    oh, ow = (conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1]))
    if cols.shape != (c * kh * kw, n * oh * ow) or not cols.flags.c_contiguous:
        raise ValueError(f"im2col_into: cols must be a C-contiguous array of shape {(c * kh * kw, n * oh * ow)}, "
                         f"got shape {cols.shape} (C-contiguous: {cols.flags.c_contiguous})")
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    xt = x.transpose(1, 0, 2, 3)                      # (C, N, H, W): a view, the order of cols' rows
    for i, j, out_r, out_c, in_r, in_c in _offsets((h, w), (oh, ow), kernel_size, stride, padding):
        cols6[:, i, j, :, out_r, out_c] = xt[:, :, in_r, in_c]   # the image shifted by (i, j)


def col2im_into(cols: np.ndarray, dx: np.ndarray, kernel_size, stride, padding) -> None:
    """Add the columns back onto the pixels they were read from, in place (the work behind `col2im`).

    - cols: (C*KH*KW, N*OH*OW), laid out as `im2col` returns it.
    - dx: (N, C, H, W), any strides, usually zeros; receives the sums (padding contributions
      are dropped).
    """
    n, c, h, w = dx.shape
    kh, kw = kernel_size
    oh, ow = (conv_output_size(h, kh, stride[0], padding[0]), conv_output_size(w, kw, stride[1], padding[1]))
    cols6 = cols.reshape(c, kh, kw, n, oh, ow)
    dxt = dx.transpose(1, 0, 2, 3)
    for i, j, out_r, out_c, in_r, in_c in _offsets((h, w), (oh, ow), kernel_size, stride, padding):
        dxt[:, :, in_r, in_c] += cols6[:, i, j, :, out_r, out_c]


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
    n, c, h, w = x.shape
    kh, kw = kernel_size
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    if oh < 1 or ow < 1:
        raise ValueError(f"im2col: the input of spatial size {(h, w)} padded by {tuple(padding)} is smaller "
                         f"than the kernel {tuple(kernel_size)}")
    cols = np.zeros((c * kh * kw, n * oh * ow), dtype=x.dtype)   # padding entries stay zero
    im2col_into(x, cols, kernel_size, stride, padding)
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
    dx = np.zeros((c, n, h, w), dtype=cols.dtype).transpose(1, 0, 2, 3)
    col2im_into(cols, dx, kernel_size, stride, padding)
    return dx


# --- buffers kept between steps ---------------------------------------------------------------------
REUSE_LIMIT_BYTES = 16 * 2**20   # larger arrays (e.g. a whole test set in one batch) are never kept
_COUNTS_REFERENCES = hasattr(sys, "getrefcount")   # CPython; elsewhere every array is new


def axis_order(a: np.ndarray) -> tuple[int, ...]:
    """The axes of `a` from the outermost to the innermost in memory (largest stride first).

    A Conv2d output, a transposed view of an (F, N, OH, OW) matrix, has axis order (1, 0, 2, 3).
    """
    return tuple(sorted(range(a.ndim), key=lambda axis: -a.strides[axis]))


def reusable(owner, name: str, shape: tuple, dtype, order=None, zero: bool = False, key=None) -> np.ndarray:
    """An array for layer `owner`: the one it got last time under `name` if nothing else uses it.

    Inputs:
    - owner: the layer (the arrays are kept in its `_reusable` dict), or None for a new array.
    - name: which of the layer's arrays ("out", "dx", "cols", ...).
    - shape, dtype: of the array returned.
    - order: memory order of the axes, outermost first, e.g. axis_order(x) to lay the array out
      like x (default: C order). The array returned has `shape`; its memory follows `order`.
    - zero: fill it with zeros. A new array is always zeros; a reused one otherwise keeps the
      values it had.
    - key: anything else the kept array must match to be handed out again (e.g. the input shape,
      for an array whose zero entries must stay where they are).

    The last array is handed out again only when its shape, dtype, layout and key match and nobody
    else refers to it: CPython counts references, and the count must be what it was right after
    the array was made, so an output or gradient that a caller still holds (or any view of it) is
    never overwritten; a new array is made instead. A layer must drop its own reference (e.g. to
    the mask it saved for backward) before asking for the array again. Arrays above
    REUSE_LIMIT_BYTES, and every array on a Python without sys.getrefcount, are always new.
    """
    if order is None or order == tuple(range(len(shape))):
        order = back = None
        mem_shape = tuple(shape)
    else:
        mem_shape = tuple(shape[a] for a in order)
        back = sorted(range(len(order)), key=order.__getitem__)   # the inverse permutation
    store = None if owner is None or not _COUNTS_REFERENCES else owner.__dict__.setdefault("_reusable", {})
    entry = None if store is None else store.get(name)
    if entry is not None:
        base = entry[0]
        if (base.shape == mem_shape and base.dtype == dtype and entry[2] == key
                and sys.getrefcount(base) == entry[1]):
            if zero:
                base.fill(0)
            return base if back is None else base.transpose(back)
        del store[name], entry, base                          # the old array goes when its last user does
    base = np.zeros(mem_shape, dtype)   # calloc: free for fresh pages, which the OS hands out zeroed
    if store is not None and base.nbytes <= REUSE_LIMIT_BYTES:
        entry = store[name] = [base, 0, key]
        entry[1] = sys.getrefcount(base)                      # measured as above: `base`, entry[0], the call
    return base if back is None else base.transpose(back)
