"""Linear: y = x W^T + b by hand and by einsum, gradients against finite differences, init, errors."""
import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck
from cnnlab.layers import Linear
from cnnlab.module import run_backward


def make(weight, bias=None):
    layer = Linear(weight.shape[1], weight.shape[0], bias=bias is not None).astype(np.float64)
    layer.weight.data[...] = weight
    if bias is not None:
        layer.bias.data[...] = bias
    return layer


def test_hand_worked():
    layer = make(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([0.5, 0.0, -1.0]))
    out = layer(np.array([[1.0, -1.0], [2.0, 0.0]]))
    np.testing.assert_array_equal(out, [[-0.5, -1.0, -2.0], [2.5, 6.0, 9.0]])


def test_backward_hand_worked():
    layer = make(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.zeros(3))
    x = np.array([[1.0, -1.0]])
    layer(x)
    dx = layer.backward(np.array([[1.0, 0.0, 2.0]]))
    np.testing.assert_array_equal(dx, [[1 + 10, 2 + 12]])                      # dout W
    np.testing.assert_array_equal(layer.weight.grad, [[1, -1], [0, 0], [2, -2]])  # dout^T x
    np.testing.assert_array_equal(layer.bias.grad, [1, 0, 2])


def test_forward_matches_einsum_with_leading_axes():
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((4, 5)), rng.standard_normal(4)
    x = rng.standard_normal((2, 3, 5))                   # (*, in_features), as PyTorch
    np.testing.assert_allclose(make(w, b)(x), np.einsum("abi,oi->abo", x, w) + b, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("n, fin, fout, bias", [(1, 7, 3, True), (5, 1, 4, True), (4, 9, 1, False), (3, 2, 6, True)])
def test_gradients_match_finite_differences(n, fin, fout, bias):
    rng = np.random.default_rng(n + fin)
    layer = Linear(fin, fout, bias=bias, rng=rng).astype(np.float64)
    # linear in each entry: no truncation error, a large step only reduces rounding error
    report = gradcheck(layer, rng.standard_normal((n, fin)), rng=rng, eps=1e-3, rtol=1e-7)
    assert report.ok, str(report)


def test_gradients_with_leading_axes():
    rng = np.random.default_rng(3)
    layer = Linear(4, 3, rng=rng).astype(np.float64)
    report = gradcheck(layer, rng.standard_normal((2, 3, 4)), rng=rng, eps=1e-3, rtol=1e-7)
    assert report.ok, str(report)


def test_init_is_pytorch_uniform_and_deterministic():
    layer = Linear(400, 120)
    bound = 1 / np.sqrt(400)
    assert layer.weight.shape == (120, 400) and layer.bias.shape == (120,)
    assert layer.weight.dtype == np.float32
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.02 * bound
    assert abs(layer.weight.data.mean()) < 0.02 * bound
    # rng=None draws from the library generator: a second layer starts elsewhere (tests/test_rng.py)
    assert not np.array_equal(layer.weight.data, Linear(400, 120).weight.data)
    shared = np.random.default_rng(1)
    assert not np.array_equal(Linear(4, 3, rng=shared).weight.data, Linear(4, 3, rng=shared).weight.data)


def test_float32_in_float32_out():
    layer = Linear(5, 3)
    x = np.ones((2, 5), np.float32)
    out = layer(x)
    assert out.dtype == np.float32
    assert layer.backward(np.ones((2, 3), np.float32)).dtype == np.float32
    assert layer.weight.grad.dtype == np.float32


def test_repr_and_parameter_order():
    assert repr(Linear(4, 3)) == "Linear(in_features=4, out_features=3, bias=True)"
    assert repr(Linear(4, 3, bias=False)) == "Linear(in_features=4, out_features=3, bias=False)"
    assert [name for name, _ in Linear(4, 3).named_parameters()] == ["weight", "bias"]


def test_errors():
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 4\) .* got shape \(2, 5\)"):
        Linear(4, 3)(np.zeros((2, 5), np.float32))
    with pytest.raises(TypeError, match="floating-point array .* got dtype int64"):
        Linear(4, 3)(np.zeros((2, 4), np.int64))
    with pytest.raises(TypeError, match="input dtype float64 does not match .* float32"):
        Linear(4, 3)(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="in_features must be >= 1, got 0"):
        Linear(0, 3)
    with pytest.raises(TypeError, match="out_features must be an int"):
        Linear(3, "3")
    with pytest.raises(RuntimeError, match="before Linear.forward"):
        Linear(2, 2).backward(np.zeros((1, 2), np.float32))
    layer = Linear(2, 3)
    layer(np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"expected dout of shape \(4, 3\)"):
        run_backward(layer, np.zeros((4, 2), np.float32))
