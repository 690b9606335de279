"""Self-checks of lesson 03: right answers pass; each typical mistake is named.

The right answers come from cnnlab's layers (backward of unit vectors, a backward pass), which the
checks never call: they compute Tomasi's closed forms themselves.
"""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.jacobian import jacobian_input
from cnnlab.layers import Linear, ReLU, Tanh
from checks import CheckFailed
from checks.jacobians import check_linear_relu_jacobian, check_tanh_layer_gradients


def relu_block():
    lin = Linear(5, 4, rng=11).astype(np.float64)
    x = np.random.default_rng(111).standard_normal((1, 5))
    W, b = lin.weight.data, lin.bias.data
    a = W @ x[0] + b
    assert 0 < (a > 0).sum() < 4 and 0 < (x > 0).sum() < 5, "the mistakes below must be distinguishable"
    return lin, W, b, x, a


def tanh_block():
    block = Sequential([Linear(4, 3, rng=5), Tanh()]).astype(np.float64)
    x = np.random.default_rng(4).standard_normal((1, 4))
    g = np.random.default_rng(3).standard_normal((1, 3))
    return block, block[0].weight.data, block[0].bias.data, x, g


# --- exercise 1 ---------------------------------------------------------------------------------------
def test_linear_relu_jacobian_accepts_the_library_answer(capsys):
    lin, W, b, x, _ = relu_block()
    right = jacobian_input(Sequential([lin, ReLU()]), x)
    check_linear_relu_jacobian(right, W, b, x)
    out = capsys.readouterr().out
    assert "\u2713" in out and "2 of 4 rows are active" in out


@pytest.mark.parametrize("wrong, message", [
    (lambda W, b, x, a: ..., "still Ellipsis"),
    (lambda W, b, x, a: ((a > 0)[:, None] * W).T, r"shape \(5, 4\): that is the transpose"),
    (lambda W, b, x, a: (a > 0).astype(float), "a vector"),
    (lambda W, b, x, a: W, "left out ReLU's derivative"),
    (lambda W, b, x, a: W * (x[0] > 0)[None, :], "sign of the input x_j"),
    (lambda W, b, x, a: np.maximum(a, 0)[:, None] * W, r"ReLU\(a_i\), the value"),
    (lambda W, b, x, a: (a <= 0)[:, None] * W, "mask is inverted"),
    (lambda W, b, x, a: np.zeros((3, 5)), r"shape \(4, 5\), got \(3, 5\)"),
    (lambda W, b, x, a: 2 * (a > 0)[:, None] * W, r"`J`\[\d+, \d+\] is .* but should be"),
])
def test_linear_relu_jacobian_names_the_mistake(wrong, message):
    _, W, b, x, a = relu_block()
    with pytest.raises(CheckFailed, match=message):
        check_linear_relu_jacobian(wrong(W, b, x, a), W, b, x)


def test_linear_relu_jacobian_checks_its_own_arguments():
    _, W, b, x, _ = relu_block()
    with pytest.raises(ValueError, match=r"W \(4, 5\), b \(3,\)"):
        check_linear_relu_jacobian(np.zeros((4, 5)), W, b[:3], x)


# --- exercise 2 ---------------------------------------------------------------------------------------
def test_tanh_layer_gradients_accept_the_backward_of_the_library(capsys):
    block, W, b, x, g = tanh_block()
    block.forward(x)
    block.backward(g)
    check_tanh_layer_gradients(block[0].weight.grad, block[0].bias.grad, W, b, x, g)
    assert "\u2713" in capsys.readouterr().out


def _right(W, b, x, g):
    block = Sequential([Linear(4, 3), Tanh()]).astype(np.float64)
    block[0].weight.data[...], block[0].bias.data[...] = W, b
    block.forward(x)
    block.backward(g)
    return block[0].weight.grad.copy(), block[0].bias.grad.copy()


@pytest.mark.parametrize("wrong, message", [
    (lambda dW, db, a, x, g: (..., db), "`dW` is still Ellipsis"),
    (lambda dW, db, a, x, g: (dW, ...), "`db` is still Ellipsis"),
    (lambda dW, db, a, x, g: (dW.T, db), r"shape \(4, 3\): that is transposed"),
    (lambda dW, db, a, x, g: (np.concatenate([dW, db[:, None]], axis=1), db), "column of x~ .* belongs to the bias"),
    (lambda dW, db, a, x, g: (np.outer(g, x), db), "g x\\^T: you left out the activation's slope"),
    (lambda dW, db, a, x, g: (np.outer(g * np.tanh(a), x), db), "uses tanh\\(a\\), the activation's value"),
    (lambda dW, db, a, x, g: (np.outer(g * (1 - a ** 2), x), db), "uses 1 - a\\^2"),
    (lambda dW, db, a, x, g: (np.outer(g * (1 - np.tanh(a) ** 2), np.tanh(x)), db), "multiplies by tanh\\(x\\)"),
    (lambda dW, db, a, x, g: (dW, g), "`db` is g: the bias also goes through tanh"),
    (lambda dW, db, a, x, g: (dW, db[None, :]), r"`db` has shape \(1, 3\)"),
    (lambda dW, db, a, x, g: (dW + 0.1, db), r"`dW`\[0, 0\] is .* but should be"),
    (lambda dW, db, a, x, g: (dW, -db), r"`db`\[0\] is .* but should be"),
])
def test_tanh_layer_gradients_name_the_mistake(wrong, message):
    _, W, b, x, g = tanh_block()
    dW, db = _right(W, b, x, g)
    a = W @ x[0] + b
    with pytest.raises(CheckFailed, match=message):
        check_tanh_layer_gradients(*wrong(dW, db, a, x[0], g[0]), W, b, x, g)


def test_tanh_layer_gradients_check_g_has_one_entry_per_output():
    _, W, b, x, g = tanh_block()
    with pytest.raises(ValueError, match="g must have 3 entries"):
        check_tanh_layer_gradients(np.zeros((3, 4)), np.zeros(3), W, b, x, np.ones(4))
