"""ReLU, Sigmoid, Tanh, LeCunTanh, Softmax: values by hand, derivatives by finite differences and
(Softmax) by the explicit Jacobian, stability, dtypes, errors."""
import math

import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck
from cnnlab.layers import LeCunTanh, ReLU, Sigmoid, Softmax, Tanh

SHAPES = [(1, 7), (3, 2, 5, 4), (4, 1, 3)]  # batch 1, an image batch, odd sizes


# --- values ---------------------------------------------------------------------------------------------
def test_relu_values_and_gradient_by_hand():
    relu = ReLU()
    out = relu(np.array([[-2.0, 0.0, 3.0, -0.5, 1e-9]]))
    np.testing.assert_array_equal(out, [[0.0, 0.0, 3.0, 0.0, 1e-9]])
    dx = relu.backward(np.array([[1.0, 2.0, 3.0, 4.0, 5.0]]))
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 3.0, 0.0, 5.0]])   # derivative at exactly 0 is 0, as PyTorch


def test_sigmoid_values_and_stability():
    s = Sigmoid()
    out = s(np.array([0.0, math.log(3.0), -math.log(3.0), 1000.0, -1000.0]))  # no overflow warning
    np.testing.assert_allclose(out, [0.5, 0.75, 0.25, 1.0, 0.0], rtol=1e-15, atol=0)
    # derivative s (1 - s) by hand: at 0, 1/4; at log 3, 3/16
    dx = s.backward(np.ones(5))
    np.testing.assert_allclose(dx[:3], [0.25, 3 / 16, 3 / 16], rtol=1e-14)
    # tiny values keep their relative precision instead of being rounded to 0
    np.testing.assert_allclose(Sigmoid()(np.array([-40.0])), [math.exp(-40) / (1 + math.exp(-40))], rtol=1e-14)


def test_tanh_values():
    t = Tanh()
    out = t(np.array([0.0, 0.5, -2.0]))
    np.testing.assert_allclose(out, [0.0, math.tanh(0.5), math.tanh(-2.0)], rtol=1e-15)
    np.testing.assert_allclose(t.backward(np.ones(3)), [1.0, 1 - math.tanh(0.5) ** 2, 1 - math.tanh(2.0) ** 2],
                               rtol=1e-14)


def test_lecun_tanh_maps_plus_minus_one_to_about_plus_minus_one():
    f = LeCunTanh()
    out = f(np.array([1.0, -1.0, 0.0, 50.0]))
    # Bouvrie: a = 1.7159, b = 2/3 chosen so that f(+-1) = +-1
    np.testing.assert_allclose(out[:2], [1.0, -1.0], atol=1e-4)
    assert out[2] == 0.0 and out[3] == pytest.approx(1.7159)
    dx = f.backward(np.ones(4))
    assert dx[2] == pytest.approx(1.7159 * 2 / 3)                    # slope at 0: a b
    assert dx[3] == pytest.approx(0.0, abs=1e-12)                    # saturated


def test_softmax_by_hand_and_stable():
    s = Softmax(dim=1)
    out = s(np.array([[0.0, math.log(3.0)], [1000.0, 1000.0 + math.log(3.0)]]))
    np.testing.assert_allclose(out[0], [0.25, 0.75], rtol=1e-14)
    np.testing.assert_allclose(out[1], [0.25, 0.75], rtol=1e-12)   # 1000 + log 3 is stored to ~1e-13


@pytest.mark.parametrize("dim, shape", [(1, (3, 5)), (-1, (2, 3, 4)), (0, (4, 2)), (1, (2, 3, 2, 2))])
def test_softmax_sums_to_one_along_dim(dim, shape):
    x = np.random.default_rng(0).standard_normal(shape) * 5
    out = Softmax(dim)(x)
    np.testing.assert_allclose(out.sum(axis=dim), 1.0, rtol=1e-14)
    assert (out > 0).all()


def test_softmax_backward_is_the_jacobian_vector_product():
    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    sm = Softmax()
    s = sm(x)
    dx = sm.backward(g)
    for n in range(3):
        jacobian = np.diag(s[n]) - np.outer(s[n], s[n])          # d s_k / d a_i = s_k (delta_ki - s_i)
        np.testing.assert_allclose(dx[n], jacobian.T @ g[n], rtol=1e-12, atol=1e-15)


# --- gradients against finite differences ---------------------------------------------------------------
@pytest.mark.parametrize("make", [Sigmoid, Tanh, LeCunTanh, lambda: Softmax(1), lambda: Softmax(-1)],
                         ids=["Sigmoid", "Tanh", "LeCunTanh", "Softmax1", "Softmax-1"])
@pytest.mark.parametrize("shape", SHAPES)
def test_smooth_gradients_match_finite_differences(make, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)   # saturated entries (tiny gradients) are checked by hand above
    report = gradcheck(make(), x, rng=rng, eps=1e-5, rtol=1e-7)
    assert report.ok, str(report)


@pytest.mark.parametrize("shape", SHAPES)
def test_relu_gradient_matches_finite_differences_away_from_the_kink(shape):
    rng = np.random.default_rng(9)
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5                       # keep every entry far from 0 compared with eps
    report = gradcheck(ReLU(), x, rng=rng, eps=1e-6, rtol=1e-5)
    assert report.ok, str(report)


# --- dtype, repr, errors ------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", [ReLU(), Sigmoid(), Tanh(), LeCunTanh(), Softmax()])
def test_float32_in_float32_out(layer):
    x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
    out = layer(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    assert layer.backward(np.ones_like(out)).dtype == np.float32


@pytest.mark.parametrize("layer", [ReLU(), Sigmoid(), Tanh(), LeCunTanh(), Softmax()])
def test_errors(layer):
    name = type(layer).__name__
    with pytest.raises(TypeError, match=f"{name} expects a floating-point array .* got dtype int64"):
        layer(np.arange(6).reshape(2, 3))
    with pytest.raises(TypeError, match=f"{name} expects a numpy array of floats, got list"):
        layer([[1.0, 2.0]])
    with pytest.raises(RuntimeError, match=f"{name}.backward\\(\\) was called before"):
        type(layer)().backward(np.zeros((2, 3)))


def test_softmax_dim_errors_and_repr():
    with pytest.raises(ValueError, match=r"Softmax\(dim=2\) needs an input with at least 3 axes, got shape \(4, 5\)"):
        Softmax(2)(np.zeros((4, 5)))
    with pytest.raises(TypeError, match="dim must be an int"):
        Softmax(1.0)
    assert repr(Softmax()) == "Softmax(dim=1)"
    assert [repr(m) for m in (ReLU(), Sigmoid(), Tanh(), LeCunTanh())] == \
        ["ReLU()", "Sigmoid()", "Tanh()", "LeCunTanh()"]
