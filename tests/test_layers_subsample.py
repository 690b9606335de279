"""Subsample2d (Bouvrie §3.2) and the up/down-sampling helpers."""
import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck
from cnnlab.layers import AvgPool2d, Subsample2d
from cnnlab.layers.subsample import downsample_sum, upsample_kron


def test_upsample_kron_by_hand():
    d = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(upsample_kron(d, 2), [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    np.testing.assert_array_equal(upsample_kron(np.array([[5.0]]), (1, 3)), [[5, 5, 5]])
    batch = np.arange(8, dtype=np.float32).reshape(2, 1, 2, 2)      # acts on the last two axes only
    up = upsample_kron(batch, 2)
    assert up.shape == (2, 1, 4, 4) and up.dtype == np.float32
    assert up[1, 0, 3, 3] == 7.0


def test_downsample_sum_by_hand():
    x = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(downsample_sum(x, 2), [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7],
                                                         [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])


def test_forward_by_hand():
    layer = Subsample2d(2, 2).astype(np.float64)
    layer.weight.data[...] = [2.0, -1.0]
    layer.bias.data[...] = [1.0, 0.5]
    x = np.stack([np.arange(16.0).reshape(4, 4), np.ones((4, 4))])[None]   # (1, 2, 4, 4)
    out = layer(x)
    np.testing.assert_array_equal(out[0, 0], [[2 * 10 + 1, 2 * 18 + 1], [2 * 42 + 1, 2 * 50 + 1]])
    np.testing.assert_array_equal(out[0, 1], np.full((2, 2), -4 + 0.5))


def test_backward_by_hand():
    layer = Subsample2d(1, 2).astype(np.float64)
    layer.weight.data[...] = [3.0]
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    layer(x)
    dout = np.array([[[[1.0, 0.0], [2.0, -1.0]]]])
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx[0, 0], 3 * np.array([[1, 1, 0, 0], [1, 1, 0, 0], [2, 2, -1, -1], [2, 2, -1, -1]]))
    assert layer.weight.grad[0] == 1 * 10 + 0 * 18 + 2 * 42 - 1 * 50      # sum of delta o down(x)
    assert layer.bias.grad[0] == 1 + 0 + 2 - 1


def test_equals_average_pooling_times_k_squared_at_init():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 9))
    out = Subsample2d(3, 3).astype(np.float64)(x)
    np.testing.assert_allclose(out, 9 * AvgPool2d(3)(x), rtol=1e-13)


def test_ragged_border_is_ignored_and_gets_zero_gradient():
    layer = Subsample2d(1, 2).astype(np.float64)
    x = np.ones((1, 1, 5, 3))
    out = layer(x)
    assert out.shape == (1, 1, 2, 1)
    dx = layer.backward(np.ones(out.shape))
    assert dx.shape == x.shape
    assert dx[0, 0, 4].sum() == 0 and dx[0, 0, :, 2].sum() == 0 and dx[0, 0, :4, :2].sum() == 8


@pytest.mark.parametrize("shape, k", [((2, 3, 6, 4), 2), ((1, 2, 7, 5), 2), ((3, 1, 6, 6), 3), ((2, 2, 4, 6), (2, 3))])
def test_gradients_match_finite_differences(shape, k):
    rng = np.random.default_rng(5)
    layer = Subsample2d(shape[1], k).astype(np.float64)
    layer.weight.data[...] = rng.standard_normal(shape[1])     # away from the initial 1 and 0
    layer.bias.data[...] = rng.standard_normal(shape[1])
    # linear in each entry of x, beta and b: a large step only reduces rounding error
    report = gradcheck(layer, rng.standard_normal(shape), rng=rng, eps=1e-3, rtol=1e-7)
    assert report.ok, str(report)
    assert [row.name for row in report.rows] == ["input", "weight", "bias"]


def test_parameters_init_float32_and_repr():
    layer = Subsample2d(6)
    np.testing.assert_array_equal(layer.weight.data, np.ones(6))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(6))
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    out = layer(np.ones((2, 6, 4, 4), np.float32))
    assert out.dtype == np.float32
    assert layer.backward(np.ones(out.shape, np.float32)).dtype == np.float32
    assert repr(layer) == "Subsample2d(channels=6, kernel_size=2)"


def test_errors():
    with pytest.raises(ValueError, match=r"expected input with 3 channels .* got shape \(1, 2, 4, 4\)"):
        Subsample2d(3)(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"4-D input"):
        Subsample2d(3)(np.zeros((3, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"spatial size \(1, 4\) is smaller than kernel_size \(2, 2\)"):
        Subsample2d(1)(np.zeros((1, 1, 1, 4), np.float32))
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        Subsample2d(1, 0)
    with pytest.raises(TypeError, match="floating-point array"):
        Subsample2d(1)(np.zeros((1, 1, 2, 2), np.int16))
    with pytest.raises(RuntimeError, match="before Subsample2d.forward"):
        Subsample2d(1).backward(np.zeros((1, 1, 1, 1), np.float32))
