"""The gradient checker itself: hand-derived derivatives, rel_error by hand, and proof that it fails
on deliberately wrong backward passes."""
import numpy as np
import pytest

import cnnlab
from cnnlab.gradcheck import (GradcheckReport, centered_differences, gradcheck, gradcheck_network, numerical_gradient,
                             rel_error)
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sigmoid, Tanh
from cnnlab.kernels import naive


# --- numerical_gradient -----------------------------------------------------------------------------------
def test_numerical_gradient_of_a_cubic():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda: np.sum(x ** 3), x)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)          # d/dx x^3 = 3 x^2


def test_numerical_gradient_of_a_product_of_two_entries():
    x = np.array([2.0, 5.0, 7.0])
    grad = numerical_gradient(lambda: x[0] * x[1], x, eps=1e-4)      # bilinear: exact up to rounding
    np.testing.assert_allclose(grad, [5.0, 2.0, 0.0], atol=1e-10)


def test_numerical_gradient_restores_x_bit_for_bit():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    before = x.copy()
    numerical_gradient(lambda: np.sum(np.sin(x)), x)
    np.testing.assert_array_equal(x, before)


def test_numerical_gradient_uses_the_step_actually_stored():
    x = np.array([1.0, 2.0], dtype=np.float32)        # float32 cannot store 1 + 1e-6 exactly
    grad = numerical_gradient(lambda: float(np.sum(x.astype(np.float64) * [3.0, -4.0])), x, eps=1e-3)
    np.testing.assert_allclose(grad, [3.0, -4.0], rtol=1e-9)


def test_numerical_gradient_errors():
    with pytest.raises(TypeError, match="float numpy array, got int64"):
        numerical_gradient(lambda: 0.0, np.arange(3))
    with pytest.raises(TypeError, match=r"f\(\) must return a scalar, got an array of shape \(2,\)"):
        x = np.zeros(2)
        numerical_gradient(lambda: x * 2, x)
    with pytest.raises(ValueError, match="eps > 0"):
        numerical_gradient(lambda: 0.0, np.zeros(2), eps=0.0)


# --- rel_error ---------------------------------------------------------------------------------------------
def test_rel_error_by_hand():
    assert rel_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert rel_error([1.0, 0.0], [1.1, 0.0]) == pytest.approx(0.1 / 2.1)     # 0/0 entry counts as 0
    assert rel_error([1.0, 100.0], [1.1, 100.0]) == pytest.approx(0.1 / 2.1)  # elementwise: small entry counts
    assert rel_error([1.0], [-1.0]) == 1.0
    assert rel_error([0.0], [1e-300]) == 1.0
    assert rel_error(np.zeros((0, 3)), np.zeros((0, 3))) == 0.0
    with pytest.raises(ValueError, match=r"same shape, got \(2,\) and \(3,\)"):
        rel_error(np.zeros(2), np.zeros(3))


# --- gradcheck on correct modules ------------------------------------------------------------------------
def test_gradcheck_passes_a_correct_layer_and_reports_every_tensor():
    rng = np.random.default_rng(0)
    layer = Linear(4, 3, rng=rng).astype(np.float64)
    x = rng.standard_normal((2, 4))
    report = gradcheck(layer, x, rng=1)
    assert isinstance(report, GradcheckReport) and report.ok
    assert [(r.name, r.shape) for r in report.rows] == [("input", (2, 4)), ("weight", (3, 4)), ("bias", (3,))]
    assert report.max_rel_error < 1e-7 and report["weight"].passed
    text = str(report)
    assert "OK" in text and "weight" in text and "(3, 4)" in text and "max rel error" in text


def test_gradcheck_does_not_change_input_or_parameters():
    rng = np.random.default_rng(1)
    layer = Conv2d(2, 2, 3, rng=rng).astype(np.float64)
    x = rng.standard_normal((1, 2, 4, 4))
    x_before, w_before = x.copy(), layer.weight.data.copy()
    gradcheck(layer, x)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(layer.weight.data, w_before)


def test_gradcheck_requires_float64():
    layer = Linear(3, 2)
    with pytest.raises(TypeError, match=r"float64 module, but parameters weight \(float32\), bias \(float32\)"):
        gradcheck(layer, np.zeros((1, 3)))
    with pytest.raises(TypeError, match="float64 input .* got float32"):
        gradcheck(layer.astype(np.float64), np.zeros((1, 3), np.float32))


def test_gradcheck_refuses_a_random_forward():
    class Noisy(cnnlab.Module):
        def __init__(self):
            self.rng = np.random.default_rng(0)

        def forward(self, x):
            return x * self.rng.random(x.shape)

        def backward(self, dout):
            return dout

    with pytest.raises(ValueError, match="different outputs for the same input"):
        gradcheck(Noisy(), np.ones(3))


# --- gradcheck catches bugs --------------------------------------------------------------------------------
class WeightGradTwiceLinear(Linear):
    """Bug: the weight gradient is doubled (the input gradient is right)."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.weight.grad *= 2
        return dx


class ForgotDerivativeSigmoid(Sigmoid):
    """Bug: dx = dout * s instead of dout * s * (1 - s)."""

    def backward(self, dout):
        return dout * self._out


class UnflippedKernelConv(Conv2d):
    """Bug: dx is the 'full' correlation with the kernel itself instead of rot180(kernel)."""

    def backward(self, dout):
        super().backward(dout)                       # weight and bias gradients stay right
        flipped = self.weight.data[:, :, ::-1, ::-1]  # the reference below flips it back: no flip at all
        x_shape = self._cache[0]                      # the fast kernels' cache starts with the input's shape
        _, cache = naive.conv2d_forward(np.zeros(x_shape), flipped, None, self.stride, self.padding)
        dx, _, _ = naive.conv2d_backward(dout, cache)
        return dx


def test_gradcheck_detects_a_wrong_weight_gradient():
    rng = np.random.default_rng(2)
    layer = WeightGradTwiceLinear(3, 2, rng=rng).astype(np.float64)
    report = gradcheck(layer, rng.standard_normal((4, 3)))
    assert not report.ok
    assert report["input"].passed and report["bias"].passed and not report["weight"].passed
    assert report["weight"].max_rel_error == pytest.approx(1 / 3, rel=1e-4)   # |2g - g| / (|2g| + |g|)
    assert "FAILED" in str(report) and "NO" in str(report)


def test_gradcheck_detects_a_missing_activation_derivative():
    rng = np.random.default_rng(3)
    report = gradcheck(ForgotDerivativeSigmoid(), rng.standard_normal((2, 5)))
    assert not report.ok and report.max_rel_error > 0.1


def test_gradcheck_detects_an_unflipped_kernel():
    rng = np.random.default_rng(4)
    layer = UnflippedKernelConv(1, 2, 3, rng=rng).astype(np.float64)
    report = gradcheck(layer, rng.standard_normal((1, 1, 5, 5)))
    assert not report["input"].passed and report["weight"].passed


# --- gradcheck_network ----------------------------------------------------------------------------------------
class HalfSquaredError:
    """A loss with the cnnlab.losses contract: L = 1/2 sum (pred - target)^2 (Bouvrie eq. (1))."""

    def forward(self, pred, target):
        self._diff = pred - target
        return 0.5 * np.sum(self._diff ** 2)

    def backward(self):
        return self._diff


def small_net(rng, middle=None):
    return cnnlab.Sequential(
        Conv2d(1, 2, 3, padding=1, rng=rng), middle or Tanh(), MaxPool2d(2), Flatten(), Linear(8, 3, rng=rng),
    ).astype(np.float64)


def test_gradcheck_network_checks_each_layer_and_the_whole_chain():
    rng = np.random.default_rng(5)
    net = small_net(rng)
    x = rng.standard_normal((2, 1, 4, 4))
    report = gradcheck_network(net, x, loss_fn=HalfSquaredError(), target=rng.standard_normal((2, 3)), rng=6)
    assert report.ok, str(report)
    layers = [row.layer for row in report.rows]
    assert layers[:3] == ["0: Conv2d"] * 3 and "4: Linear" in layers
    whole = [row.name for row in report.rows if row.layer == "network+loss"]
    assert whole == ["input", "0.weight", "0.bias", "4.weight", "4.bias"]
    assert "layer" in str(report).splitlines()[1]


def test_gradcheck_network_finds_the_buggy_layer():
    rng = np.random.default_rng(7)
    net = small_net(rng, middle=ForgotDerivativeSigmoid())
    report = gradcheck_network(net, rng.standard_normal((2, 1, 4, 4)))
    failed = {row.layer for row in report.rows if not row.passed}
    assert failed == {"1: ForgotDerivativeSigmoid"}


def test_gradcheck_network_errors():
    with pytest.raises(TypeError, match="expects a cnnlab.Sequential, got Linear"):
        gradcheck_network(Linear(2, 2).astype(np.float64), np.zeros((1, 2)))
    net = cnnlab.Sequential(ReLU()).astype(np.float64)
    with pytest.raises(ValueError, match="needs its target"):
        gradcheck_network(net, np.ones((1, 2)), loss_fn=HalfSquaredError())


def test_centered_differences_of_a_vector_function_gives_d_out_k_d_x_i():
    A = np.array([[1.0, 2.0, 0.0], [0.0, -1.0, 3.0]])
    x = np.array([0.5, -1.0, 2.0])
    d = centered_differences(lambda: A @ x, x, 1e-6)
    assert d.shape == (3, 2)                                  # x.shape + out.shape
    np.testing.assert_allclose(d, A.T, atol=1e-8)            # d (A x)_k / d x_i = A[k, i]
    np.testing.assert_array_equal(x, [0.5, -1.0, 2.0])       # restored exactly
    with pytest.raises(ValueError, match="step must be"):
        centered_differences(lambda: A @ x, x, 1e-6, step="2eps")
