"""Conv2d: forward against hand-worked examples and an einsum formula, backward against finite
differences and against Bouvrie's 'valid'/'full' rot180 formulation (the fast kernels against the naive
ones: test_kernels.py)."""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.gradcheck import gradcheck
from cnnlab.layers import Conv2d


def einsum_conv(x, w, b, stride, padding):
    """Independent formula: out[n,f,oh,ow] = b[f] + sum_{c,i,j} w[f,c,i,j] x_pad[n,c,oh*sh+i,ow*sw+j]."""
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = sliding_window_view(xp, w.shape[2:], axis=(2, 3))[:, :, ::sh, ::sw]
    out = np.einsum("nchwij,fcij->nfhw", win, w)
    return out if b is None else out + b[None, :, None, None]


def layer_with(weight, bias=None, stride=1, padding=0, dtype=np.float64):
    f, c, kh, kw = weight.shape
    conv = Conv2d(c, f, (kh, kw), stride=stride, padding=padding, bias=bias is not None).astype(dtype)
    conv.weight.data[...] = weight
    if bias is not None:
        conv.bias.data[...] = bias
    return conv


# --- forward ---------------------------------------------------------------------------------------
def test_hand_worked_3x3_is_a_cross_correlation():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)          # [[1,2,3],[4,5,6],[7,8,9]]
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])           # out[i,j] = x[i,j] - x[i+1,j+1]
    out = layer_with(w)(x)
    # a cross-correlation gives 1-5, 2-6, 4-8, 5-9 = -4; a true (flipped) convolution would give +4
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), -4.0))


def test_hand_worked_3x3_with_padding_and_bias():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 3, 3))
    out = layer_with(w, bias=np.array([0.5]), padding=1)(x)
    # sum of each pixel's 3x3 neighbourhood inside the image, plus 0.5
    expected = np.array([[12, 21, 16], [27, 45, 33], [24, 39, 28]]) + 0.5
    np.testing.assert_array_equal(out[0, 0], expected)


def test_hand_worked_stride_2():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 2.0]]]])                         # 1x2 kernel: x[r, c] + 2 x[r, c+1]
    out = layer_with(w, stride=2)(x)
    np.testing.assert_array_equal(out[0, 0], [[0 + 2, 2 + 6], [8 + 18, 10 + 22]])


@pytest.mark.parametrize("n, c, f, hw, k, stride, padding", [
    (2, 3, 4, (7, 6), (3, 2), (2, 2), (2, 2)),
    (1, 2, 5, (5, 5), (1, 1), (1, 1), (0, 0)),
    (3, 1, 2, (9, 4), (4, 3), (3, 1), (1, 0)),
])
def test_forward_matches_einsum_formula(n, c, f, hw, k, stride, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c) + hw)
    w, b = rng.standard_normal((f, c) + k), rng.standard_normal(f)
    out = layer_with(w, b, stride, padding)(x)
    np.testing.assert_allclose(out, einsum_conv(x, w, b, stride, padding), rtol=1e-12, atol=1e-12)


def test_output_shape_follows_pytorch_floor_formula():
    conv = Conv2d(3, 8, (5, 3), stride=(2, 3), padding=(1, 2))
    out = conv(np.zeros((2, 3, 17, 10), np.float32))
    assert out.shape == (2, 8, (17 + 2 - 5) // 2 + 1, (10 + 4 - 3) // 3 + 1)


# --- backward: Bouvrie's formulation, finite differences ----------------------------------------------
def test_backward_is_bouvrie_full_and_valid_correlations():
    """Stride 1: dx = 'full' correlation of dout with rot180(w); dw = 'valid' correlation of x with dout."""
    rng = np.random.default_rng(5)
    n, c, f, kh, kw = 2, 3, 4, 3, 2
    x = rng.standard_normal((n, c, 6, 5))
    w, b = rng.standard_normal((f, c, kh, kw)), rng.standard_normal(f)
    conv = layer_with(w, b)
    dout = rng.standard_normal(conv(x).shape)
    dx = conv.backward(dout)
    # 'full': pad dout by (k - 1) on each side, correlate with the rotated kernel, sum over f
    dpad = np.pad(dout, ((0, 0), (0, 0), (kh - 1, kh - 1), (kw - 1, kw - 1)))
    win = sliding_window_view(dpad, (kh, kw), axis=(2, 3))        # (n, f, H, W, kh, kw)
    rot180 = w[:, :, ::-1, ::-1]
    np.testing.assert_allclose(dx, np.einsum("nfhwij,fcij->nchw", win, rot180), atol=1e-12)
    # 'valid': the windows of x the size of dout, weighted by dout, summed over the batch
    xwin = sliding_window_view(x, dout.shape[2:], axis=(2, 3))     # (n, c, kh, kw, OH, OW)
    np.testing.assert_allclose(conv.weight.grad, np.einsum("ncijhw,nfhw->fcij", xwin, dout), atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, dout.sum(axis=(0, 2, 3)), atol=1e-12)


@pytest.mark.parametrize("n, c, f, hw, k, stride, padding, bias", [
    (2, 3, 4, (7, 6), (3, 2), 2, 2, True),          # non-square kernel, stride 2, padding 2
    (1, 4, 3, (5, 5), 1, 1, 0, True),                # 1x1 convolution, batch 1
    (3, 2, 2, (9, 7), (2, 4), (1, 3), (0, 1), False),  # odd sizes, mixed stride, no bias
    (2, 2, 3, (5, 4), (5, 4), 1, 0, True),           # kernel as large as the input: 1x1 output
])
def test_gradients_match_finite_differences(n, c, f, hw, k, stride, padding, bias):
    rng = np.random.default_rng(7)
    conv = Conv2d(c, f, k, stride=stride, padding=padding, bias=bias, rng=rng).astype(np.float64)
    x = rng.standard_normal((n, c) + hw)
    # L is linear in each single entry of x and w: no truncation error, so a large step only
    # shrinks rounding error
    report = gradcheck(conv, x, rng=rng, eps=1e-3, rtol=1e-7)
    assert report.ok, str(report)
    assert [row.name for row in report.rows] == ["input", "weight"] + (["bias"] if bias else [])


def test_backward_overwrites_gradients():
    rng = np.random.default_rng(1)
    conv = Conv2d(2, 3, 3, rng=rng).astype(np.float64)
    x = rng.standard_normal((2, 2, 5, 5))
    dout = rng.standard_normal(conv(x).shape)
    conv.backward(dout)
    first = conv.weight.grad.copy()
    conv.backward(dout)
    np.testing.assert_array_equal(conv.weight.grad, first)


# --- initialisation, dtype, repr -------------------------------------------------------------------
def test_init_is_pytorch_uniform_and_deterministic():
    conv = Conv2d(6, 16, 5)
    bound = 1 / np.sqrt(6 * 5 * 5)
    assert conv.weight.shape == (16, 6, 5, 5) and conv.bias.shape == (16,)
    assert conv.weight.dtype == np.float32 and conv.bias.dtype == np.float32
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    # uniform on [-bound, bound] has standard deviation bound / sqrt(3): 2400 draws are close
    assert abs(conv.weight.data.std() - bound / np.sqrt(3)) < 0.05 * bound
    # rng=None draws from the library generator: a second layer starts elsewhere (tests/test_rng.py)
    assert not np.array_equal(conv.weight.data, Conv2d(6, 16, 5).weight.data)
    np.testing.assert_array_equal(Conv2d(6, 16, 5, rng=3).weight.data,
                                  Conv2d(6, 16, 5, rng=np.random.default_rng(3)).weight.data)
    assert not np.array_equal(Conv2d(6, 16, 5, rng=3).weight.data, conv.weight.data)


def test_global_random_state_is_untouched():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    Conv2d(3, 4, 3, rng=None)
    Conv2d(3, 4, 3, rng=5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_float32_in_float32_out():
    rng = np.random.default_rng(0)
    conv = Conv2d(2, 3, 3, padding=1, rng=rng)
    x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    out = conv(x)
    assert out.dtype == np.float32
    dx = conv.backward(np.ones(out.shape, np.float32))
    assert dx.dtype == np.float32 and conv.weight.grad.dtype == np.float32 and conv.bias.grad.dtype == np.float32


def test_parameters_weight_then_bias_and_no_bias():
    assert [n for n, _ in Conv2d(1, 2, 3).named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in Conv2d(1, 2, 3, bias=False).named_parameters()] == ["weight"]


def test_repr_as_pytorch():
    assert repr(Conv2d(1, 6, 5)) == "Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))"
    assert (repr(Conv2d(3, 8, (3, 2), stride=2, padding=1, bias=False))
            == "Conv2d(3, 8, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), bias=False)")


# --- errors -----------------------------------------------------------------------------------------
def test_wrong_channel_count():
    with pytest.raises(ValueError, match=r"expected input with 3 channels .* got shape \(2, 4, 8, 8\)"):
        Conv2d(3, 4, 3)(np.zeros((2, 4, 8, 8), np.float32))


def test_not_4d():
    with pytest.raises(ValueError, match=r"4-D input \(N, C, H, W\), got shape \(3, 8, 8\)"):
        Conv2d(3, 4, 3)(np.zeros((3, 8, 8), np.float32))


def test_input_smaller_than_kernel():
    with pytest.raises(ValueError, match=r"padded to \(4, 6\) is smaller than kernel_size \(5, 5\)"):
        Conv2d(1, 1, 5, padding=1)(np.zeros((1, 1, 2, 4), np.float32))


def test_non_float_input():
    with pytest.raises(TypeError, match="floating-point array .* got dtype int64"):
        Conv2d(1, 1, 3)(np.zeros((1, 1, 4, 4), np.int64))
    with pytest.raises(TypeError, match="numpy array of floats, got list"):
        Conv2d(1, 1, 1)([[[[1.0]]]])


def test_dtype_mismatch():
    with pytest.raises(TypeError, match="input dtype float64 does not match the layer's parameter dtype float32"):
        Conv2d(1, 1, 3)(np.zeros((1, 1, 4, 4)))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(kernel_size=0), ValueError, r"kernel_size must be >= 1, got 0"),
    (dict(kernel_size=(3, 0)), ValueError, r"kernel_size must be >= 1, got \(3, 0\)"),
    (dict(kernel_size=3, stride=0), ValueError, r"stride must be >= 1, got 0"),
    (dict(kernel_size=3, padding=-1), ValueError, r"padding must be >= 0, got -1"),
    (dict(kernel_size=(1, 2, 3)), TypeError, r"kernel_size must be an int or a pair of ints"),
    (dict(kernel_size=2.5), TypeError, r"kernel_size must be an int or a pair of ints"),
    (dict(kernel_size=3, rng="seed"), TypeError, r"rng must be a numpy.random.Generator"),
])
def test_invalid_constructor_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        Conv2d(2, 3, **kwargs)


def test_invalid_channel_counts():
    with pytest.raises(ValueError, match="in_channels must be >= 1, got 0"):
        Conv2d(0, 3, 3)
    with pytest.raises(TypeError, match="out_channels must be an int"):
        Conv2d(1, 2.0, 3)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before Conv2d.forward"):
        Conv2d(1, 1, 3).backward(np.zeros((1, 1, 2, 2), np.float32))
