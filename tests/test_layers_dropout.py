"""Tests for Dropout and DropConnect (Tomasi §3, Khan eqs. (5.4)-(5.7))."""
import math

import numpy as np
import pytest

from cnnlab.gradcheck import numerical_gradient
from cnnlab.layers.dropout import DropConnect, Dropout
from cnnlab.module import no_input_grad, run_backward

centered_grad = numerical_gradient  # centred differences, entry by entry (tested in test_gradcheck)


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-12, np.max(np.abs(a) + np.abs(b)))


# --- Dropout ----------------------------------------------------------------------------------
@pytest.mark.parametrize("inverted", [True, False])
@pytest.mark.parametrize("p_keep", [0.5, 0.8])
def test_dropout_expectation_over_many_draws(inverted, p_keep):
    # each entry of the training output is x*s with probability p and 0 otherwise, so its mean
    # over K draws has expectation p*s*x and standard deviation |x| s sqrt(p (1-p) / K)
    x = np.linspace(-2.0, 2.0, 40).reshape(4, 10).astype(np.float64)
    layer = Dropout(p_keep, inverted=inverted, rng=1)
    k = 4000
    mean = sum(layer(x) for _ in range(k)) / k
    s = 1 / p_keep if inverted else 1.0
    expected = p_keep * s * x
    std = np.abs(x) * s * math.sqrt(p_keep * (1 - p_keep) / k)
    assert np.all(np.abs(mean - expected) <= 5 * std + 1e-12)
    # and that expectation is what evaluation mode returns
    layer.eval()
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12)


def test_dropout_keep_fraction_matches_p_keep():
    layer = Dropout(0.3, rng=2)
    x = np.ones((200, 50), dtype=np.float32)
    out = layer(x)
    n = x.size
    kept = np.count_nonzero(out)
    # binomial(n, 0.3): mean 0.3 n, std sqrt(n 0.3 0.7)
    assert abs(kept - 0.3 * n) <= 5 * math.sqrt(n * 0.3 * 0.7)
    # kept units scaled by 1/p (inverted), dropped are exactly 0
    np.testing.assert_allclose(out[out != 0], np.float32(1 / 0.3), rtol=1e-6)
    np.testing.assert_array_equal(out != 0, layer.mask)


def test_dropout_same_seed_same_mask_and_generator_accepted():
    x = np.ones((3, 4, 5, 5), dtype=np.float32)
    a, b = Dropout(0.5, rng=7), Dropout(0.5, rng=7)
    np.testing.assert_array_equal(a(x), b(x))
    np.testing.assert_array_equal(a.mask, b.mask)
    c = Dropout(0.5, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(c(x), Dropout(0.5, rng=7)(x))
    # None: each layer gets its own generator from the library generator, so two masks differ
    assert not np.array_equal(Dropout(0.5)(x), Dropout(0.5)(x))
    # successive calls draw fresh masks
    first = a.mask.copy()
    a(x)
    assert not np.array_equal(first, a.mask)


def test_dropout_does_not_touch_global_random_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    Dropout(0.5, rng=None)(np.ones((10, 10)))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_dropout_eval_modes():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    inv = Dropout(0.25, inverted=True).eval()
    np.testing.assert_array_equal(inv(x), x)
    np.testing.assert_array_equal(inv.backward(np.ones_like(x)), np.ones_like(x))
    classic = Dropout(0.25, inverted=False).eval()
    np.testing.assert_allclose(classic(x), 0.25 * x)
    np.testing.assert_allclose(classic.backward(np.ones_like(x)), np.full_like(x, 0.25))


def test_dropout_classic_train_does_not_scale():
    x = np.full((50, 20), 3.0)
    out = Dropout(0.5, inverted=False, rng=3)(x)
    assert set(np.unique(out)) == {0.0, 3.0}


def test_dropout_p_keep_one_is_identity():
    x = np.random.default_rng(0).normal(size=(6, 7))
    layer = Dropout(1.0, rng=0)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4, 5)])
@pytest.mark.parametrize("inverted", [True, False])
def test_dropout_gradient_frozen_mask(shape, inverted):
    rng = np.random.default_rng(4)
    x = rng.normal(size=shape)
    g = rng.normal(size=shape)
    layer = Dropout(0.6, inverted=inverted, rng=5)
    layer(x)
    layer.freeze_mask = True
    mask = layer.mask.copy()
    num = centered_grad(lambda: float(np.sum(layer.forward(x) * g)), x)
    layer.forward(x)
    dx = layer.backward(g)
    np.testing.assert_array_equal(layer.mask, mask)  # the frozen mask was reused throughout
    assert rel_err(dx, num) <= 1e-7
    # explicit formula: dx = g * m * s
    s = 1 / 0.6 if inverted else 1.0
    np.testing.assert_allclose(dx, g * mask * s, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_dtypes_and_shapes(dtype):
    x = np.ones((2, 3, 4, 4), dtype=dtype)
    layer = Dropout(0.5, rng=0)
    out = layer(x)
    assert out.dtype == dtype and out.shape == x.shape
    dx = layer.backward(np.ones_like(out))
    assert dx.dtype == dtype and dx.shape == x.shape
    layer.eval()
    assert layer(x).dtype == dtype


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"p_keep .* must be in \(0, 1\], got 0.0"):
        Dropout(0.0)
    with pytest.raises(ValueError, match=r"must be in \(0, 1\], got 1.5"):
        Dropout(1.5)
    with pytest.raises(TypeError, match="p_keep must be a real number"):
        Dropout("0.5")
    with pytest.raises(TypeError, match="unexpected keyword argument .p."):
        Dropout(p=0.5)  # PyTorch's drop probability is deliberately not accepted
    with pytest.raises(TypeError, match="inverted must be True or False"):
        Dropout(0.5, inverted="yes")
    with pytest.raises(TypeError, match="rng must be"):
        Dropout(0.5, rng="seed")
    with pytest.raises(TypeError, match="floating-point"):
        Dropout(0.5)(np.ones((2, 2), dtype=np.int64))
    layer = Dropout(0.5)
    layer(np.ones((2, 3)))
    layer.freeze_mask = True
    with pytest.raises(ValueError, match=r"frozen mask has shape \(2, 3\).*\(4, 3\)"):
        layer(np.ones((4, 3)))
    with pytest.raises(RuntimeError, match="before"):
        Dropout(0.5).backward(np.ones((2, 3)))


def test_dropout_repr_and_no_parameters():
    layer = Dropout(0.8, inverted=False)
    assert repr(layer) == "Dropout(p_keep=0.8, inverted=False)"
    assert layer.parameters() == []


# --- DropConnect ------------------------------------------------------------------------------
def test_dropconnect_init_like_linear():
    layer = DropConnect(9, 4, rng=11)
    gen = np.random.default_rng(11)
    w = gen.uniform(-1 / 3, 1 / 3, size=(4, 9)).astype(np.float32)
    b = gen.uniform(-1 / 3, 1 / 3, size=4).astype(np.float32)
    np.testing.assert_array_equal(layer.weight.data, w)
    np.testing.assert_array_equal(layer.bias.data, b)
    assert [p.shape for p in layer.parameters()] == [(4, 9), (4,)]
    assert DropConnect(9, 4, bias=False).bias is None
    assert len(DropConnect(9, 4, bias=False).parameters()) == 1


def test_dropconnect_forward_uses_masked_weights_shared_by_batch():
    rng = np.random.default_rng(0)
    layer = DropConnect(6, 3, p_keep=0.5, rng=1)
    x = rng.normal(size=(5, 6)).astype(np.float32)
    y = layer(x)
    m = layer.mask
    assert m.shape == (3, 6) and m.dtype == bool
    w, b = layer.weight.data, layer.bias.data
    # independent per-example loop with explicit sums
    for n in range(5):
        for i in range(3):
            expected = sum(float(m[i, j]) * float(w[i, j]) * float(x[n, j]) for j in range(6)) + float(b[i])
            assert y[n, i] == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert y.dtype == np.float32


def test_dropconnect_masks_fresh_each_call_and_keep_fraction():
    layer = DropConnect(100, 50, p_keep=0.7, rng=3)
    x = np.ones((2, 100), dtype=np.float32)
    layer(x)
    m1 = layer.mask.copy()
    layer(x)
    assert not np.array_equal(m1, layer.mask)
    n = m1.size
    assert abs(m1.sum() - 0.7 * n) <= 5 * math.sqrt(n * 0.7 * 0.3)


def test_dropconnect_eval_uses_expected_weights():
    rng = np.random.default_rng(2)
    layer = DropConnect(5, 4, p_keep=0.25, rng=0).astype(np.float64).eval()
    x = rng.normal(size=(3, 5))
    expected = x @ (0.25 * layer.weight.data).T + layer.bias.data
    np.testing.assert_allclose(layer(x), expected, rtol=1e-12)
    # the mean over many training masks approaches the evaluation output
    layer.train()
    k = 3000
    mean = sum(layer(x) for _ in range(k)) / k
    # each output is b + sum_j M_ij W_ij x_j; var = sum_j p(1-p) (W_ij x_j)^2
    std = np.sqrt(0.25 * 0.75 * ((x[:, None, :] * layer.weight.data[None]) ** 2).sum(-1) / k)
    assert np.all(np.abs(mean - expected) <= 5 * std)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("bias", [True, False])
def test_dropconnect_gradients_frozen_mask(train, bias):
    rng = np.random.default_rng(5)
    layer = DropConnect(7, 3, p_keep=0.6, bias=bias, rng=6).astype(np.float64)
    layer.train(train)
    x = rng.normal(size=(4, 7))
    g = rng.normal(size=(4, 3))
    layer(x)
    layer.freeze_mask = True

    def loss():
        return float(np.sum(layer.forward(x) * g))

    num_x = centered_grad(loss, x)
    num_w = centered_grad(loss, layer.weight.data)
    num_b = centered_grad(loss, layer.bias.data) if bias else None
    layer.forward(x)
    dx = layer.backward(g)
    assert rel_err(dx, num_x) <= 1e-7
    assert rel_err(layer.weight.grad, num_w) <= 1e-7
    if bias:
        assert rel_err(layer.bias.grad, num_b) <= 1e-7
    if train:  # dropped weights receive exactly zero gradient (Khan: dW = M o (dout^T x))
        assert np.all(layer.weight.grad[~layer.mask] == 0)
        np.testing.assert_allclose(layer.weight.grad, layer.mask * (g.T @ x), rtol=1e-12)


def test_dropconnect_leading_axes_and_float32():
    layer = DropConnect(4, 2, rng=0)
    x = np.ones((2, 3, 4), dtype=np.float32)
    y = layer(x)
    assert y.shape == (2, 3, 2) and y.dtype == np.float32
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape and dx.dtype == np.float32
    assert layer.weight.grad.dtype == np.float32


def test_dropconnect_errors():
    with pytest.raises(ValueError, match=r"in_features must be >= 1, got 0"):
        DropConnect(0, 3)
    with pytest.raises(TypeError, match="out_features must be an int"):
        DropConnect(3, 2.5)
    with pytest.raises(ValueError, match=r"p_keep .* must be in \(0, 1\], got -0.1"):
        DropConnect(3, 2, p_keep=-0.1)
    layer = DropConnect(3, 2)
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\).*got shape \(4, 5\)"):
        layer(np.ones((4, 5), dtype=np.float32))
    with pytest.raises(TypeError, match="does not match the layer's parameter dtype float32"):
        layer(np.ones((4, 3), dtype=np.float64))
    layer(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"expected dout of shape \(4, 2\)"):
        run_backward(layer, np.ones((4, 3), dtype=np.float32))


def test_dropconnect_repr_and_state_dict():
    layer = DropConnect(3, 2, p_keep=0.5)
    assert repr(layer) == "DropConnect(in_features=3, out_features=2, bias=True, p_keep=0.5)"
    assert list(layer.state_dict()) == ["weight", "bias"]


def test_dropconnect_is_a_linear_with_masked_weights_and_skips_dx_when_asked():
    from cnnlab.layers import Linear
    layer = DropConnect(4, 3, p_keep=0.5, rng=2).astype(np.float64)
    assert isinstance(layer, Linear) and list(layer.state_dict()) == ["weight", "bias"]
    x = np.random.default_rng(0).standard_normal((5, 4))
    dout = np.random.default_rng(1).standard_normal((5, 3))
    layer.freeze_mask = True
    layer.forward(x)
    M = layer.mask.astype(np.float64)
    with no_input_grad(layer):
        assert layer.backward(dout) is None
    np.testing.assert_allclose(layer.weight.grad, M * (dout.T @ x), rtol=1e-12)   # Khan eq. (5.6)
    layer.forward(x)
    np.testing.assert_allclose(layer.backward(dout), dout @ (M * layer.weight.data), rtol=1e-12)


def test_replace_head_skips_a_dropconnect():
    from cnnlab import Sequential
    from cnnlab.layers import Linear, ReLU
    from cnnlab.pretrain import replace_head
    first = Linear(4, 3, rng=0)
    net = Sequential([first, ReLU(), DropConnect(3, 2, rng=1)])
    head = replace_head(net, 5, rng=0)
    assert net[0] is head and isinstance(net[2], DropConnect) and head.in_features == 4
