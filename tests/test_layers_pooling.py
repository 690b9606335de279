"""MaxPool2d and AvgPool2d: hand-worked examples, ties, overlapping windows, fast vs naive kernels,
finite differences, errors."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.gradcheck import gradcheck
from cnnlab.layers import AvgPool2d, MaxPool2d


def window_reduce(x, k, s, p, pad_value, reduce):
    """Independent formula: reduce every window of the padded input (np.pad + sliding_window_view)."""
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])), constant_values=pad_value)
    win = sliding_window_view(xp, k, axis=(2, 3))[:, :, ::s[0], ::s[1]]
    return reduce(win, axis=(-2, -1))


def distinct_values(rng, shape):
    """Inputs without ties, spaced 0.01 apart: far from the kinks of max for eps = 1e-6."""
    return rng.permutation(np.prod(shape)).reshape(shape) * 0.01 - 1.0


# --- MaxPool2d forward -------------------------------------------------------------------------------
def test_maxpool_hand_worked():
    x = np.array([[1, 3, 2, 0],
                  [4, 2, 1, 5],
                  [0, 1, 7, 6],
                  [2, 9, 3, 3]], dtype=np.float64).reshape(1, 1, 4, 4)
    out = MaxPool2d(2)(x)
    np.testing.assert_array_equal(out[0, 0], [[4, 5], [9, 7]])


def test_maxpool_padding_never_wins():
    x = -np.ones((1, 1, 2, 2))                       # all negative: a zero pad would win
    out = MaxPool2d(2, stride=1, padding=1)(x)
    np.testing.assert_array_equal(out, -np.ones((1, 1, 3, 3)))


@pytest.mark.parametrize("shape, k, s, p", [
    ((2, 3, 7, 7), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 6, 5), (2, 3), (2, 1), (0, 1)),
    ((3, 1, 9, 4), (4, 2), (3, 2), (2, 0)),
])
def test_maxpool_forward_matches_formula(shape, k, s, p):
    x = np.random.default_rng(0).standard_normal(shape)
    out = MaxPool2d(k, s, p)(x)
    np.testing.assert_array_equal(out, window_reduce(x, k, s, p, -np.inf, np.max))


# --- MaxPool2d backward -------------------------------------------------------------------------------
def test_maxpool_tie_sends_whole_gradient_to_first_element():
    pool = MaxPool2d(2)
    pool(np.full((1, 1, 2, 2), 3.0))                  # all four equal
    dx = pool.backward(np.array([[[[5.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[5.0, 0.0], [0.0, 0.0]])


def test_maxpool_tie_first_in_row_major_order():
    x = np.array([[0.0, 2.0, 1.0],
                  [2.0, 0.0, 2.0],
                  [1.0, 1.0, 1.0]]).reshape(1, 1, 3, 3)
    pool = MaxPool2d(3)
    pool(x)
    dx = pool.backward(np.ones((1, 1, 1, 1)))
    expected = np.zeros((3, 3))
    expected[0, 1] = 1.0                              # maxima at (0,1), (1,0), (1,2): the first is (0,1)
    np.testing.assert_array_equal(dx[0, 0], expected)


def test_maxpool_overlapping_windows_add_up():
    # kernel 3, stride 2 on 5x5: the centre pixel (2, 2) is in all four windows and is the maximum
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 10.0
    pool = MaxPool2d(3, stride=2)
    out = pool(x)
    np.testing.assert_array_equal(out[0, 0], np.full((2, 2), 10.0))
    dout = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 1, 2, 2)
    dx = pool.backward(dout)
    assert dx[0, 0, 2, 2] == 10.0 and np.count_nonzero(dx) == 1


@pytest.mark.parametrize("shape, k, s, p", [
    ((2, 2, 7, 7), 3, 2, 1),             # overlapping 3/2 with padding
    ((1, 3, 6, 5), (2, 3), (2, 1), 0),   # non-square kernel, mixed stride, batch 1
    ((3, 1, 8, 8), 2, None, 0),          # the classic 2x2
    ((2, 1, 9, 7), (3, 2), (3, 3), (1, 1)),  # stride larger than the kernel: gaps
])
def test_maxpool_gradient_matches_finite_differences(shape, k, s, p):
    rng = np.random.default_rng(1)
    report = gradcheck(MaxPool2d(k, s, p), distinct_values(rng, shape), rng=rng, eps=1e-6, rtol=1e-5)
    assert report.ok, str(report)


# --- AvgPool2d ------------------------------------------------------------------------------------
def test_avgpool_hand_worked_with_padding_counted():
    x = np.ones((1, 1, 2, 2))
    out = AvgPool2d(2, stride=1, padding=1)(x)        # count_include_pad=True: zeros count
    np.testing.assert_array_equal(out[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


def test_avgpool_backward_hand_worked():
    pool = AvgPool2d(2)
    pool(np.zeros((1, 1, 2, 4)))
    dx = pool.backward(np.array([[[[4.0, 8.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2]])


@pytest.mark.parametrize("shape, k, s, p", [
    ((2, 3, 7, 7), (3, 3), (2, 2), (1, 1)),
    ((1, 2, 6, 5), (2, 3), (2, 1), (0, 1)),
    ((3, 1, 9, 4), (4, 2), (3, 2), (2, 0)),
])
def test_avgpool_forward_matches_formula(shape, k, s, p):
    x = np.random.default_rng(0).standard_normal(shape)
    out = AvgPool2d(k, s, p)(x)
    np.testing.assert_allclose(out, window_reduce(x, k, s, p, 0.0, np.mean), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape, k, s, p", [
    ((2, 2, 7, 7), 3, 2, 1),
    ((1, 3, 6, 5), (2, 3), (2, 1), 0),
    ((3, 1, 5, 5), 5, 1, 2),             # padding 2 (= kernel / 2, the largest allowed)
])
def test_avgpool_gradient_matches_finite_differences(shape, k, s, p):
    rng = np.random.default_rng(2)
    # linear layer: no truncation error, a large step only reduces rounding error
    report = gradcheck(AvgPool2d(k, s, p), rng.standard_normal(shape), rng=rng, eps=1e-3, rtol=1e-7)
    assert report.ok, str(report)


# --- dtype, repr, errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [MaxPool2d(3, 2, 1), AvgPool2d(2)])
def test_float32_in_float32_out(layer):
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones(out.shape, np.float32)).dtype == np.float32


def test_stride_defaults_to_kernel_size_and_repr():
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(MaxPool2d((3, 2), stride=1, padding=1)) == \
        "MaxPool2d(kernel_size=(3, 2), stride=1, padding=1, dilation=1, ceil_mode=False)"
    assert repr(AvgPool2d(3, 2)) == "AvgPool2d(kernel_size=3, stride=2, padding=0)"
    assert MaxPool2d(2)(np.zeros((1, 1, 6, 6), np.float32)).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_padding_more_than_half_the_kernel_is_refused(cls):
    with pytest.raises(ValueError, match=r"padding should be at most half of kernel_size, got padding=2 and "
                                         r"kernel_size=3"):
        cls(3, padding=2)
    cls(4, padding=2)  # exactly half is allowed, as in PyTorch


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(kernel_size=0), ValueError, "kernel_size must be >= 1, got 0"),
    (dict(kernel_size=2, stride=0), ValueError, "stride must be >= 1, got 0"),
    (dict(kernel_size=2, padding=-1), ValueError, "padding must be >= 0, got -1"),
    (dict(kernel_size="2"), TypeError, "kernel_size must be an int or a pair of ints"),
])
def test_invalid_constructor_arguments(cls, kwargs, error, message):
    with pytest.raises(error, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [MaxPool2d, AvgPool2d])
def test_input_errors(cls):
    pool = cls(3)
    with pytest.raises(ValueError, match=r"4-D input \(N, C, H, W\), got shape \(4, 4\)"):
        pool(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match=r"spatial size \(2, 5\) is smaller than kernel_size \(3, 3\)"):
        pool(np.zeros((1, 1, 2, 5), np.float32))
    with pytest.raises(TypeError, match="floating-point array .* got dtype int32"):
        pool(np.zeros((1, 1, 4, 4), np.int32))
    with pytest.raises(RuntimeError, match="called before"):
        cls(2).backward(np.zeros((1, 1, 1, 1), np.float32))
