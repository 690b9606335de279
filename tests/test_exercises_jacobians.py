"""Self-checks of lesson 03: right answers pass; each typical mistake is named.

The right answers come from cnnlab's layers (backward of unit vectors, a backward pass), which the
checks never call: they compute Tomasi's closed forms themselves.
"""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.jacobian import jacobian_input, jacobian_params
from cnnlab.layers import Linear, ReLU, Tanh
from checks import CheckFailed
from checks.jacobians import check_jacobian_backprop, check_linear_relu_jacobian, check_tanh_layer_gradients


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


# --- exercise 3 ---------------------------------------------------------------------------------------
# Right answers built another way than the lesson's solution: the Jacobians from cnnlab's layers, the
# backward pass with einsum on the row vectors.
def ok_linear(x, W):
    layer = Linear(W.shape[1], W.shape[0]).astype(np.float64)
    layer.weight.data[...] = W
    return jacobian_input(layer, x[None]), jacobian_params(layer, x[None])


def ok_tanh(a):
    return jacobian_input(Tanh().astype(np.float64), np.asarray(a, dtype=np.float64)[None])


def make_backward(linear=ok_linear, tanh=ok_tanh, order="g J", stop=False, skip_tanh=False, reverse=False,
                  tanh_at_output=False, layer2_at_a=False):
    """A backward pass over x -> Linear -> tanh -> Linear, with one mistake switched on by a flag."""
    def product(g, J):
        if order == "J @ g":
            return J @ g
        return np.einsum("ij,j->i", J, g) if order == "J g" else np.einsum("i,ij->j", g, J)

    def backward(x, layers, dL_dout):
        (W1, b1), (W2, b2) = layers
        a = W1 @ x + b1
        J_x3, J_w3 = linear(a if layer2_at_a else np.tanh(a), W2)
        g_w3 = product(dL_dout, J_w3)
        if stop:
            return [g_w3]
        g = product(dL_dout, J_x3)
        if not skip_tanh:
            g = product(g, tanh(np.tanh(a) if tanh_at_output else a))
        g_w1 = product(g, linear(x, W1)[1])
        return [g_w3, g_w1] if reverse else [g_w1, g_w3]
    return backward


def transposed_J_x(x, W):
    J_x, J_w = ok_linear(x, W)
    return J_x.T, J_w


def column_major(x, W):
    D = W.shape[0]
    return W, np.hstack([np.kron(x[None, :], np.eye(D)), np.eye(D)])


def tomasi_order(x, W):
    return W, np.kron(np.eye(W.shape[0]), np.append(x, 1.0)[None, :])


def no_bias_columns(x, W):
    return W, np.kron(np.eye(W.shape[0]), x[None, :])


def zero_bias_columns(x, W):
    D = W.shape[0]
    return W, np.hstack([np.kron(np.eye(D), x[None, :]), np.zeros((D, D))])


def J_w_transposed(x, W):
    J_x, J_w = ok_linear(x, W)
    return J_x, J_w.T


def tanh_full_matrix(a):
    return np.tile(1 - np.tanh(a) ** 2, (a.size, 1))


def tanh_of_preactivation(a):
    return np.diag(1 - a ** 2)


def tanh_vector(a):
    return 1 - np.tanh(a) ** 2


def tanh_value(a):
    return np.diag(np.tanh(a))


def tanh_not_squared(a):
    return np.diag(1 - np.tanh(a))


def placeholder_linear(x, W):
    J_x = ...
    J_w = ...
    return J_x, J_w


def placeholder_backward(x, layers, dL_dout):
    ...
    return ...


def raises_inside(x, W):
    return W @ W, W  # a shape error in the student's own code


def test_jacobian_backprop_accepts_right_answers(capsys):
    check_jacobian_backprop(ok_linear, ok_tanh, make_backward())
    out = capsys.readouterr().out
    assert "\u2713" in out and "dL/dw1 (18)" in out and "dL/dw2 (4)" in out


@pytest.mark.parametrize("functions, message", [
    ((placeholder_linear, ok_tanh, make_backward()), "`?J_x`? is still Ellipsis"),
    ((ok_linear, lambda a: ..., make_backward()), r"tanh_jacobian\(a\) .* is still Ellipsis"),
    ((ok_linear, ok_tanh, placeholder_backward), r"backward_with_jacobians\(x, layers, dL_dout\) is still Ellipsis"),
    ((lambda x, W: W, ok_tanh, make_backward()), r"should return the pair \(J_x, J_w\)"),
    ((raises_inside, ok_tanh, make_backward()), r"linear_jacobians\(x, W\) .* raised ValueError"),
    ((transposed_J_x, ok_tanh, make_backward()), r"J_x is W\^T"),
    ((column_major, ok_tanh, make_backward()), "column by column"),
    ((tomasi_order, ok_tanh, make_backward()), "Tomasi's order"),
    ((no_bias_columns, ok_tanh, make_backward()), "forgot the bias part"),
    ((zero_bias_columns, ok_tanh, make_backward()), "bias part of J_w is zero"),
    ((J_w_transposed, ok_tanh, make_backward()), "J_w has shape .* the transpose"),
    ((ok_linear, tanh_full_matrix, make_backward()), "not diagonal"),
    ((ok_linear, tanh_of_preactivation, make_backward()), r"1 - a\^2 of the pre-activation"),
    ((ok_linear, tanh_vector, make_backward()), "returned a vector"),
    ((ok_linear, tanh_value, make_backward()), r"tanh\(a\), the value"),
    ((ok_linear, tanh_not_squared, make_backward()), "squares tanh"),
    ((ok_linear, ok_tanh, make_backward(order="J g")), r"raised ValueError.*g @ J, not J @ g"),
    ((ok_linear, ok_tanh, make_backward(order="J @ g")), r"raised ValueError.*g @ J, not J @ g"),
    ((ok_linear, ok_tanh, make_backward(stop=True)), "stopped before layer 1"),
    ((ok_linear, ok_tanh, make_backward(reverse=True)), "backward order"),
    ((ok_linear, ok_tanh, make_backward(skip_tanh=True)), "skips the tanh layer"),
    ((ok_linear, ok_tanh, make_backward(tanh_at_output=True)), "Jacobian at tanh\\(a\\), its output"),
    ((ok_linear, ok_tanh, make_backward(layer2_at_a=True)), "layer 2's input is tanh\\(a\\)"),
    ((ok_linear, ok_tanh, lambda x, layers, g: np.zeros(22)), "should return a list"),
    ((ok_linear, ok_tanh, lambda x, layers, g: [np.zeros((1, 18)), np.zeros(4)]), r"dL/dw1 has shape \(1, 18\)"),
    ((ok_linear, ok_tanh, lambda x, layers, g: [np.zeros(18), np.zeros(4)]), r"`dL/dw2`\[\d+\] is"),
])
def test_jacobian_backprop_names_the_mistake(functions, message):
    with pytest.raises(CheckFailed, match=message):
        check_jacobian_backprop(*functions)


def test_jacobian_backprop_catches_a_wrong_first_layer_gradient():
    right = make_backward()

    def off_in_layer_1(x, layers, dL_dout):
        g_w1, g_w3 = right(x, layers, dL_dout)
        return [g_w1 * 1.01, g_w3]
    with pytest.raises(CheckFailed, match=r"`dL/dw1`\[\d+\] is"):
        check_jacobian_backprop(ok_linear, ok_tanh, off_in_layer_1)


def test_jacobian_backprop_reports_nan_and_odd_types_in_one_line():
    with pytest.raises(CheckFailed, match="NaN or infinity"):
        check_jacobian_backprop(ok_linear, lambda a: np.full((a.size, a.size), np.nan), make_backward())
    with pytest.raises(CheckFailed, match="should be a numeric array"):
        check_jacobian_backprop(ok_linear, lambda a: "diag", make_backward())
    with pytest.raises(CheckFailed, match=r"should return a list .* got dict"):
        check_jacobian_backprop(ok_linear, ok_tanh, lambda x, layers, g: {"w1": 0})
