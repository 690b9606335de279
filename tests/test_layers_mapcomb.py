"""Tests for MapCombination (Bouvrie §3.3: learned combinations of feature maps, eqs. (8)-(14))."""
import numpy as np
import pytest

from cnnlab.gradcheck import numerical_gradient
from cnnlab.layers.mapcomb import MapCombination, softmax_columns

centered_grad = numerical_gradient  # centred differences, entry by entry (tested in test_gradcheck)


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(a) + np.abs(b)))


def correlate_valid(img, k):
    """'valid' 2-D cross-correlation of one map with one kernel, by explicit loops."""
    kh, kw = k.shape
    oh, ow = img.shape[0] - kh + 1, img.shape[1] - kw + 1
    out = np.zeros((oh, ow))
    for p in range(oh):
        for q in range(ow):
            out[p, q] = sum(img[p + a, q + b] * k[a, b] for a in range(kh) for b in range(kw))
    return out


def make_layer(cin=3, cout=4, k=(3, 2), rng=0, lam=0.0):
    layer = MapCombination(cin, cout, k, l1_penalty=lam, rng=rng).astype(np.float64)
    gen = np.random.default_rng(rng + 100)
    layer.c.data[:] = gen.normal(size=layer.c.shape)
    layer.bias.data[:] = gen.normal(size=layer.bias.shape)
    return layer


def test_parameters_shapes_order_and_init():
    layer = MapCombination(3, 5, 4, rng=2)
    assert [n for n, _ in layer.named_parameters()] == ["weight", "c", "bias"]
    assert layer.weight.shape == (3, 1, 4, 4) and layer.c.shape == (3, 5) and layer.bias.shape == (5,)
    assert all(p.dtype == np.float32 for p in layer.parameters())
    expected = np.random.default_rng(2).uniform(-0.25, 0.25, size=(3, 1, 4, 4)).astype(np.float32)
    np.testing.assert_array_equal(layer.weight.data, expected)
    np.testing.assert_allclose(layer.alpha, np.full((3, 5), 1 / 3), rtol=1e-6)


def test_alpha_columns_on_the_simplex():
    layer = make_layer(cin=4, cout=6)
    layer.c.data[0, 0] = 800.0  # no overflow: the column max is subtracted
    alpha = layer.alpha
    assert np.all(alpha >= 0) and np.all(alpha <= 1)
    np.testing.assert_allclose(alpha.sum(axis=0), np.ones(6), rtol=1e-12)
    # softmax by hand for one column
    col = layer.c.data[:, 3]
    np.testing.assert_allclose(alpha[:, 3], np.exp(col) / np.exp(col).sum(), rtol=1e-12)
    assert alpha[0, 0] == pytest.approx(1.0)
    assert np.isfinite(softmax_columns(np.array([[1000.0], [-1000.0]]))).all()


def test_forward_matches_bouvrie_formula_by_loops():
    rng = np.random.default_rng(3)
    layer = make_layer(cin=2, cout=3, k=(2, 3))
    x = rng.normal(size=(2, 2, 5, 6))
    out = layer(x)
    assert out.shape == (2, 3, 4, 4)
    alpha = np.exp(layer.c.data) / np.exp(layer.c.data).sum(axis=0)
    for n in range(2):
        for j in range(3):
            expected = sum(alpha[i, j] * correlate_valid(x[n, i], layer.weight.data[i, 0]) for i in range(2))
            np.testing.assert_allclose(out[n, j], expected + layer.bias.data[j], rtol=1e-12, atol=1e-12)


def test_equivalent_to_conv2d_with_weights_alpha_times_kernel():
    # for a hand-set alpha, the layer is a Conv2d whose weight[j, i] = alpha_ij * k_i
    from cnnlab.kernels import naive

    rng = np.random.default_rng(4)
    layer = make_layer(cin=3, cout=2, k=3)
    alpha = np.array([[0.5, 0.1], [0.25, 0.1], [0.25, 0.8]])
    layer.c.data[:] = np.log(alpha)  # softmax(log a) = a when the column of a sums to 1
    np.testing.assert_allclose(layer.alpha, alpha, rtol=1e-12)
    x = rng.normal(size=(2, 3, 6, 5))
    k = layer.weight.data[:, 0]
    w_full = np.stack([np.stack([alpha[i, j] * k[i] for i in range(3)]) for j in range(2)])  # (2, 3, 3, 3)
    expected, _ = naive.conv2d_forward(x, w_full, layer.bias.data)
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cin, cout, k, shape_hw", [(3, 4, (3, 2), (5, 4)), (1, 2, 1, (3, 3)), (2, 1, (2, 2), (4, 5))])
def test_gradients_by_finite_differences(cin, cout, k, shape_hw):
    rng = np.random.default_rng(5)
    layer = make_layer(cin=cin, cout=cout, k=k)
    x = rng.normal(size=(2, cin) + shape_hw)
    g = rng.normal(size=layer(x).shape)

    def loss():
        return float(np.sum(layer.forward(x) * g))

    numeric = {name: centered_grad(loss, p.data) for name, p in layer.named_parameters()}
    num_x = centered_grad(loss, x)
    layer.forward(x)
    dx = layer.backward(g)
    assert dx.shape == x.shape
    assert rel_err(dx, num_x) <= 1e-7
    for name, p in layer.named_parameters():
        assert rel_err(p.grad, numeric[name]) <= 1e-7, name


def test_c_gradient_matches_bouvrie_eq_10_through_alpha():
    # dL/dc computed by the chain rule through an explicit softmax Jacobian (eqs. (8), (9))
    rng = np.random.default_rng(6)
    layer = make_layer(cin=3, cout=2, k=2)
    x = rng.normal(size=(3, 3, 4, 4))
    g = rng.normal(size=(3, 2, 3, 3))
    layer(x)
    layer.backward(g)
    alpha = layer.alpha
    z = np.stack([[correlate_valid(x[n, i], layer.weight.data[i, 0]) for i in range(3)] for n in range(3)])
    dalpha = np.array([[np.sum(g[:, j] * z[:, i]) for j in range(2)] for i in range(3)])
    dc = np.zeros((3, 2))
    for j in range(2):
        jac = np.diag(alpha[:, j]) - np.outer(alpha[:, j], alpha[:, j])  # d alpha_k / d c_i, eq. (8)
        dc[:, j] = jac.T @ dalpha[:, j]                                   # eq. (9)
    np.testing.assert_allclose(layer.c.grad, dc, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.c.grad.sum(axis=0), 0, atol=1e-12)  # softmax is shift invariant


def test_penalty_value_and_gradient():
    layer = make_layer(cin=4, cout=3, lam=0.7)
    # alpha > 0 with columns summing to 1: sum |alpha| = number of columns
    assert layer.penalty() == pytest.approx(0.7 * 3, rel=1e-12)
    layer.c.data[:] = np.random.default_rng(7).normal(scale=5, size=(4, 3))
    assert layer.penalty() == pytest.approx(2.1, rel=1e-12)
    num = centered_grad(layer.penalty, layer.c.data)
    np.testing.assert_allclose(num, 0, atol=1e-8)
    before = np.full((4, 3), 0.25)
    layer.c.grad[...] = before
    added = layer.penalty_backward()
    assert added.shape == (4, 3)
    np.testing.assert_allclose(added, num, atol=1e-8)          # eq. (14) agrees with the FD gradient
    np.testing.assert_allclose(layer.c.grad, before, atol=1e-15)  # added (not overwritten), and ~0


def test_penalty_zero_lambda_and_float32():
    layer = MapCombination(2, 3, 2)
    assert layer.penalty() == 0.0
    layer.c.grad[...] = 1.0
    layer.penalty_backward()
    np.testing.assert_array_equal(layer.c.grad, np.ones((2, 3), dtype=np.float32))
    assert layer.c.grad.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtypes(dtype):
    layer = MapCombination(2, 3, 3, rng=1).astype(dtype)
    x = np.random.default_rng(0).normal(size=(2, 2, 5, 5)).astype(dtype)
    out = layer(x)
    assert out.dtype == dtype and out.shape == (2, 3, 3, 3)
    dx = layer.backward(np.ones_like(out))
    assert dx.dtype == dtype
    assert all(p.grad.dtype == dtype for p in layer.parameters())


def test_errors():
    with pytest.raises(ValueError, match="in_channels must be >= 1, got 0"):
        MapCombination(0, 2, 3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        MapCombination(2, 2, "3")
    with pytest.raises(ValueError, match=r"l1_penalty \(lambda\) must be a finite number >= 0, got -1"):
        MapCombination(2, 2, 3, l1_penalty=-1)
    layer = MapCombination(2, 3, 3)
    with pytest.raises(ValueError, match=r"expects a 4-D input \(N, C, H, W\), got shape \(2, 5, 5\)"):
        layer(np.ones((2, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected input with 2 channels .* got shape \(1, 3, 5, 5\) with 3"):
        layer(np.ones((1, 3, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"spatial size \(2, 5\) is smaller than kernel_size \(3, 3\)"):
        layer(np.ones((1, 2, 2, 5), dtype=np.float32))
    with pytest.raises(TypeError, match="does not match the layer's parameter dtype float32"):
        layer(np.ones((1, 2, 5, 5)))
    with pytest.raises(RuntimeError, match="before"):
        MapCombination(2, 3, 3).backward(np.ones((1, 3, 3, 3), dtype=np.float32))


def test_repr():
    assert repr(MapCombination(2, 3, 5, l1_penalty=0.1)) == "MapCombination(2, 3, kernel_size=(5, 5), l1_penalty=0.1)"
