"""Tests for BatchNorm1d / BatchNorm2d (Khan eqs. (5.8)-(5.11), PyTorch semantics)."""
import re

import numpy as np
import pytest

from cnnlab.gradcheck import numerical_gradient
from cnnlab.layers.batchnorm import BatchNorm1d, BatchNorm2d

centered_grad = numerical_gradient  # centred differences, entry by entry (tested in test_gradcheck)


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(a) + np.abs(b)))


def channel_values(x, c):
    """All values of channel c as a flat list (independent of the layer's axis bookkeeping)."""
    return np.moveaxis(x, 1, 0)[c].ravel()


# --- forward ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layer_cls, shape", [(BatchNorm1d, (16, 5)), (BatchNorm1d, (6, 3, 7)),
                                              (BatchNorm2d, (4, 3, 5, 6))])
def test_forward_normalizes_each_channel(layer_cls, shape):
    rng = np.random.default_rng(0)
    x = (rng.normal(size=shape) * 3 + 5).astype(np.float32)
    y = layer_cls(shape[1])(x)
    assert y.shape == x.shape and y.dtype == np.float32
    for c in range(shape[1]):
        v = channel_values(y, c).astype(np.float64)
        assert abs(v.mean()) < 1e-5
        # biased variance of xhat is sigma2 / (sigma2 + eps), just below 1
        assert abs(v.var() - 1) < 1e-3


def test_forward_matches_hand_formula_per_value():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 2, 2, 3))
    layer = BatchNorm2d(2, eps=1e-3).astype(np.float64)
    layer.weight.data[:] = [2.0, -0.5]
    layer.bias.data[:] = [0.3, 1.0]
    y = layer(x)
    for c in range(2):
        vals = [x[n, c, h, w] for n in range(3) for h in range(2) for w in range(3)]
        mu = sum(vals) / len(vals)
        var = sum((v - mu) ** 2 for v in vals) / len(vals)
        for n in range(3):
            for h in range(2):
                for w in range(3):
                    expected = layer.weight.data[c] * (x[n, c, h, w] - mu) / np.sqrt(var + 1e-3) + layer.bias.data[c]
                    assert y[n, c, h, w] == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_running_statistics_update_by_hand_formula():
    rng = np.random.default_rng(2)
    layer = BatchNorm2d(3, momentum=0.2).astype(np.float64)
    rm, rv = np.zeros(3), np.ones(3)
    for t in range(3):
        x = rng.normal(loc=t, scale=1 + t, size=(4, 3, 2, 5))
        layer(x)
        for c in range(3):
            v = channel_values(x, c)
            rm[c] = 0.8 * rm[c] + 0.2 * v.mean()
            rv[c] = 0.8 * rv[c] + 0.2 * np.var(v, ddof=1)  # unbiased in the running estimate
        np.testing.assert_allclose(layer.running_mean, rm, rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, rv, rtol=1e-12)
        assert int(layer.num_batches_tracked) == t + 1
    assert layer.num_batches_tracked.dtype == np.int64


def test_momentum_none_is_cumulative_average():
    rng = np.random.default_rng(3)
    layer = BatchNorm1d(2, momentum=None).astype(np.float64)
    xs = [rng.normal(size=(5, 2)) + k for k in range(4)]
    for x in xs:
        layer(x)
    np.testing.assert_allclose(layer.running_mean, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, np.mean([x.var(0, ddof=1) for x in xs], axis=0), rtol=1e-12)


def test_eval_uses_running_statistics_and_does_not_update_them():
    rng = np.random.default_rng(4)
    layer = BatchNorm1d(3, eps=1e-5).astype(np.float64)
    layer.running_mean[:] = [1.0, -2.0, 0.5]
    layer.running_var[:] = [4.0, 0.25, 9.0]
    layer.weight.data[:] = [1.0, 2.0, 3.0]
    layer.bias.data[:] = [0.0, 1.0, -1.0]
    layer.eval()
    x = rng.normal(size=(1, 3))  # a single example is fine in evaluation
    y = layer(x)
    expected = np.array([1.0, 2.0, 3.0]) * (x - [1.0, -2.0, 0.5]) / np.sqrt(np.array([4.0, 0.25, 9.0]) + 1e-5) \
        + [0.0, 1.0, -1.0]
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, [1.0, -2.0, 0.5])
    assert int(layer.num_batches_tracked) == 0


# --- gradients ----------------------------------------------------------------------------------
@pytest.mark.parametrize("layer_cls, shape", [(BatchNorm1d, (7, 3)), (BatchNorm1d, (3, 2, 5)),
                                              (BatchNorm2d, (3, 2, 5, 3))])
@pytest.mark.parametrize("train", [True, False])
def test_gradients_by_finite_differences(layer_cls, shape, train):
    rng = np.random.default_rng(5)
    layer = layer_cls(shape[1], eps=1e-3).astype(np.float64)
    layer.weight.data[:] = rng.normal(size=shape[1])
    layer.bias.data[:] = rng.normal(size=shape[1])
    layer.running_mean[:] = rng.normal(size=shape[1])
    layer.running_var[:] = rng.uniform(0.5, 2.0, size=shape[1])
    layer.train(train)
    x = rng.normal(size=shape) * 2 + 1
    g = rng.normal(size=shape)

    def loss():
        return float(np.sum(layer.forward(x) * g))

    num_x = centered_grad(loss, x)
    num_w = centered_grad(loss, layer.weight.data)
    num_b = centered_grad(loss, layer.bias.data)
    layer.forward(x)
    dx = layer.backward(g)
    assert rel_err(dx, num_x) <= 1e-7
    assert rel_err(layer.weight.grad, num_w) <= 1e-7
    assert rel_err(layer.bias.grad, num_b) <= 1e-7


def test_training_dx_sums_to_zero_per_channel():
    # y does not change when a constant is added to one channel of x, so dL/dx sums to 0 per channel
    rng = np.random.default_rng(6)
    layer = BatchNorm2d(3).astype(np.float64)
    x = rng.normal(size=(2, 3, 4, 4))
    layer(x)
    dx = layer.backward(rng.normal(size=x.shape))
    np.testing.assert_allclose(dx.sum(axis=(0, 2, 3)), 0, atol=1e-12)


def test_backward_uses_mode_of_its_forward():
    rng = np.random.default_rng(7)
    layer = BatchNorm1d(2).astype(np.float64)
    x = rng.normal(size=(4, 2))
    g = rng.normal(size=(4, 2))
    layer(x)
    dx_train = layer.backward(g)
    layer.eval()  # switching modes after forward does not change what backward differentiates
    np.testing.assert_array_equal(layer.backward(g), dx_train)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes(dtype):
    layer = BatchNorm2d(2).astype(dtype)
    x = np.random.default_rng(8).normal(size=(2, 2, 3, 3)).astype(dtype)
    y = layer(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == layer.weight.grad.dtype == layer.running_var.dtype == dtype
    assert layer.num_batches_tracked.dtype == np.int64


# --- state, errors, repr ------------------------------------------------------------------------
def test_parameters_buffers_and_state_dict():
    layer = BatchNorm1d(4)
    names = [n for n, _ in layer.named_parameters()]
    assert names == ["weight", "bias"]
    np.testing.assert_array_equal(layer.weight.data, np.ones(4))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(4))
    state = layer.state_dict()
    assert list(state) == ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(state["running_mean"], np.zeros(4))
    np.testing.assert_array_equal(state["running_var"], np.ones(4))
    assert state["num_batches_tracked"].dtype == np.int64 and state["num_batches_tracked"] == 0
    layer(np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32))
    other = BatchNorm1d(4)
    other.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(other.running_mean, layer.running_mean)
    assert int(other.num_batches_tracked) == 1


def test_errors():
    with pytest.raises(ValueError, match=r"num_features must be >= 1, got 0"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match=r"eps must be a positive number, got 0"):
        BatchNorm2d(3, eps=0)
    with pytest.raises(ValueError, match=r"momentum must be a number in \[0, 1\] or None.*got 1.5"):
        BatchNorm2d(3, momentum=1.5)
    bn1 = BatchNorm1d(3)
    with pytest.raises(ValueError, match=r"expected 3 channels .* got shape \(4, 5\) with 5"):
        bn1(np.ones((4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expects a 2-D or 3-D input \(N, C\) or \(N, C, L\), got shape \(4,\)"):
        bn1(np.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"Expected more than 1 value per channel when training, got input size \(1, 3\)"):
        bn1(np.ones((1, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        bn1(np.ones((4, 3), dtype=np.int32))
    with pytest.raises(TypeError, match="does not match the layer's parameter dtype float32"):
        bn1(np.ones((4, 3)))
    bn2 = BatchNorm2d(2)
    with pytest.raises(ValueError, match=r"expects a 4-D input \(N, C, H, W\), got shape \(3, 2\)"):
        bn2(np.ones((3, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected 2 channels .* with 3"):
        bn2(np.ones((2, 3, 4, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        bn2(np.ones((1, 2, 1, 1), dtype=np.float32))
    bn2(np.ones((1, 2, 2, 2), dtype=np.float32))  # one image but 4 values per channel: fine
    with pytest.raises(RuntimeError, match="before"):
        BatchNorm2d(2).backward(np.ones((1, 2, 2, 2), dtype=np.float32))


@pytest.mark.parametrize("layer_cls, shape, per_channel", [
    (BatchNorm1d, (0, 3), 0), (BatchNorm1d, (0, 3, 5), 0), (BatchNorm1d, (4, 3, 0), 0),
    (BatchNorm2d, (0, 3, 4, 4), 0), (BatchNorm2d, (2, 3, 0, 4), 0),
    (BatchNorm1d, (1, 3), 1), (BatchNorm2d, (1, 3, 1, 1), 1)])
def test_empty_or_single_value_batch_in_training_raises_before_touching_any_state(layer_cls, shape, per_channel):
    layer = layer_cls(3)
    x = np.random.default_rng(0).normal(size=(4, 3, 2, 2)[:len(shape)]).astype(np.float32)
    layer(x)  # one real batch, so the running statistics are not their initial values
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    message = (r"expected at least one value per channel .* got input of shape " if per_channel == 0
               else r"Expected more than 1 value per channel when training, got input size ")
    with pytest.raises(ValueError, match=message + re.escape(str(shape))):
        layer(np.zeros(shape, dtype=np.float32))
    for name, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    dx = layer.backward(np.ones(x.shape, dtype=np.float32))  # still paired with the last good forward
    assert dx.shape == x.shape and np.isfinite(dx).all()
    layer.eval()  # evaluation needs no batch statistics: an empty batch gives an empty output
    assert layer(np.zeros(shape, dtype=np.float32)).shape == shape


def test_repr():
    assert repr(BatchNorm1d(4)) == "BatchNorm1d(4, eps=1e-05, momentum=0.1)"
    assert repr(BatchNorm2d(8, momentum=None)) == "BatchNorm2d(8, eps=1e-05, momentum=None)"
