"""Patch extraction helpers: layouts checked by hand, col2im checked as the adjoint of im2col."""
import numpy as np
import pytest

from cnnlab.kernels.im2col import col2im, im2col
from cnnlab.kernels.windows import conv_output_size, pad2d, sliding_windows, window_add


def test_conv_output_size():
    assert conv_output_size(28, 5, 1, 0) == 24
    assert conv_output_size(28, 5, 1, 2) == 28
    assert conv_output_size(7, 3, 2, 0) == 3      # windows at 0, 2, 4
    assert conv_output_size(8, 3, 2, 0) == 3      # floor: the last column is never a window start


def test_pad2d():
    x = np.ones((1, 1, 2, 2), np.float32)
    p = pad2d(x, (1, 0), value=-np.inf)
    assert p.shape == (1, 1, 4, 2) and p.dtype == np.float32
    np.testing.assert_array_equal(p[0, 0], [[-np.inf, -np.inf], [1, 1], [1, 1], [-np.inf, -np.inf]])
    assert pad2d(x, (0, 0)) is x


def test_sliding_windows_is_a_view_with_the_right_windows():
    x = np.arange(2 * 5 * 6, dtype=np.float64).reshape(1, 2, 5, 6)
    win = sliding_windows(x, (2, 3), (2, 1))
    assert win.shape == (1, 2, 2, 4, 2, 3)
    assert np.shares_memory(win, x)
    np.testing.assert_array_equal(win[0, 1, 1, 2], x[0, 1, 2:4, 2:5])


def test_sliding_windows_refuses_small_input():
    with pytest.raises(ValueError, match=r"spatial size \(2, 2\) is smaller than the kernel \(3, 3\)"):
        sliding_windows(np.zeros((1, 1, 2, 2)), (3, 3), (1, 1))


def test_im2col_layout_by_hand():
    # two images, one channel, 2x3; 2x2 kernel, stride 1: 2 windows per image
    x = np.arange(12.0).reshape(2, 1, 2, 3)  # image 0: [[0,1,2],[3,4,5]], image 1: [[6,7,8],[9,10,11]]
    cols, (oh, ow) = im2col(x, (2, 2))
    assert (oh, ow) == (1, 2)
    # rows (c, i, j), columns (oh, ow, n): the image index innermost
    expected = np.array([[0, 6, 1, 7],
                         [1, 7, 2, 8],
                         [3, 9, 4, 10],
                         [4, 10, 5, 11]], dtype=float)
    np.testing.assert_array_equal(cols, expected)


def test_im2col_with_padding_and_stride_reads_zeros_at_the_border():
    x = np.ones((1, 2, 3, 3))
    cols, (oh, ow) = im2col(x, (3, 3), (2, 2), (1, 1))
    assert cols.shape == (2 * 9, 4) and (oh, ow) == (2, 2)
    # window (0, 0) covers padded rows/cols -1..1: 4 real pixels per channel
    assert cols[:9, 0].sum() == 4 and cols[9:, 0].sum() == 4


@pytest.mark.parametrize("shape, k, s, p", [
    ((2, 3, 7, 6), (3, 2), (2, 2), (2, 1)),
    ((1, 1, 5, 5), (1, 1), (1, 1), (0, 0)),
    ((3, 2, 8, 9), (4, 3), (1, 3), (1, 0)),
    ((2, 2, 6, 6), (3, 3), (2, 2), (0, 0)),   # overlapping windows
])
def test_col2im_is_the_adjoint_of_im2col(shape, k, s, p):
    """<im2col(x), C> == <x, col2im(C)> for all x, C: col2im is im2col transposed."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    cols, _ = im2col(x, k, s, p)
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, shape, k, s, p))
    assert col2im(c, shape, k, s, p).shape == shape
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_col2im_counts_overlaps():
    # all-ones columns: each pixel receives the number of windows that contain it
    cols, _ = im2col(np.zeros((1, 1, 4, 4)), (3, 3), (1, 1), (0, 0))
    counts = col2im(np.ones_like(cols), (1, 1, 4, 4), (3, 3))
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])


def test_window_add_accepts_a_broadcast_view():
    dwin = np.broadcast_to(np.ones((1, 1, 2, 2, 2, 2)), (1, 1, 2, 2, 2, 2))
    out = window_add(dwin, (1, 1, 3, 3), (1, 1))
    np.testing.assert_array_equal(out[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
