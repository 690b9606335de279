"""The geometry of sliding windows, shared by every kernel: sizes, padding, strided views.

A convolution or pooling layer slides a KH x KW window over each (padded) map with stride
(sh, sw). Along one axis of size H, padded by ph on both sides, the window starts at rows
0, sh, 2*sh, ... and fits OH = (H + 2*ph - KH) // sh + 1 times (PyTorch's floor mode).
"""
from __future__ import annotations

import numbers

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["pair", "conv_output_size", "pad2d", "sliding_windows", "window_add"]


def pair(value, name: str, owner: str, minimum: int) -> tuple[int, int]:
    """`value` (an int or a pair of ints) as an (h, w) tuple of ints, each at least `minimum`."""
    def is_int(v):
        return isinstance(v, numbers.Integral) and not isinstance(v, bool)

    if is_int(value):
        result = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(is_int(v) for v in value):
        result = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(result) < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return result


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
