"""Self-checks for lesson 03 (Jacobians).

Exercises 1 and 2: the expected answers are computed here from the formulas of Tomasi's appendix,
independently of `cnnlab` (no layer's backward is called), so a check can disagree with the library if
either is wrong. Exercise 3: the expected Jacobians are cnnlab's (`cnnlab.jacobian`, built from the layers'
backward), the expected gradients a cnnlab backward pass, confirmed by centred finite differences.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Sequential
from cnnlab.gradcheck import numerical_gradient
from cnnlab.jacobian import jacobian_input, jacobian_params
from cnnlab.layers import Linear, Tanh
from cnnlab.losses import MSELoss

from . import CheckFailed, check_array, name_mistake, passed, placeholder, run_student, same, student_array

__all__ = ["check_linear_relu_jacobian", "check_tanh_layer_gradients", "check_jacobian_backprop"]


_same = partial(same, rtol=1e-6, atol=1e-9)


def _block(W, b, x):
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64).ravel()
    if W.ndim != 2 or b.shape != (W.shape[0],) or x.shape != (W.shape[1],):
        raise ValueError(f"expected W (D, M), b (D,) and x with M entries, got W {W.shape}, b {b.shape}, "
                         f"x with {x.size} entries")
    return W, b, x, W @ x + b


def check_linear_relu_jacobian(J, W, b, x) -> None:
    """J must be d ReLU(W x + b) / dx at x: shape (D, M), J[i, j] = h'(a_i) W[i, j] (Tomasi's appendix).

    W (D, M), b (D,), x with M entries (e.g. (1, M)); h'(a) = 1 for a > 0, else 0.
    """
    placeholder("`J`", J, returned=False)
    W, b, x, a = _block(W, b, x)
    D, M = W.shape
    got = student_array("`J`", J, returned=False)
    expected = (a > 0)[:, None] * W
    if got.shape == (M, D) and D != M:
        raise CheckFailed(f"`J` has shape {got.shape}: that is the transpose. A Jacobian has one row per "
                          f"output x_i and one column per input x_j, so ({D}, {M})")
    if got.ndim == 1:
        raise CheckFailed(f"`J` is a vector of shape {got.shape}: a Jacobian is a matrix of shape ({D}, {M}), "
                          f"one row per output, one column per input")
    if got.shape == (D, M):
        if _same(got, W) and not _same(W, expected):
            raise CheckFailed("`J` equals W: you left out ReLU's derivative h'(a_i), which zeroes the rows "
                              "of outputs whose activation a_i = (W x + b)_i is not positive")
        if _same(got, W * (x > 0)[None, :]) and not _same(got, expected):
            raise CheckFailed("`J` masks the columns by the sign of the input x_j; the derivative is taken at "
                              "the activation a_i = (W x + b)_i, so it masks rows")
        if _same(got, np.maximum(a, 0)[:, None] * W) and not _same(got, expected):
            raise CheckFailed("`J` scales row i by ReLU(a_i), the value of the activation; use its "
                              "derivative h'(a_i), which is 1 for a_i > 0 and 0 otherwise")
        if _same(got, (a <= 0)[:, None] * W) and not _same(got, expected):
            raise CheckFailed("`J` keeps the rows with a_i <= 0 and zeroes the others: the mask is inverted "
                              "(ReLU passes gradients where a_i > 0)")
    check_array("J", got, expected, rtol=1e-6, atol=1e-9)
    passed(f"J is the {D} x {M} Jacobian of ReLU(W x + b): row i is h'(a_i) times row i of W "
           f"({int((a > 0).sum())} of {D} rows are active)")


def check_tanh_layer_gradients(dW, db, W, b, x, g) -> None:
    """(dW, db) must be g J_w for x_out = tanh(W x + b): dW = (g * h'(a)) x^T, db = g * h'(a).

    W (D, M), b (D,), x with M entries, g with D entries (the upstream row vector dE/dx_out),
    h'(a) = 1 - tanh(a)^2 (Tomasi's appendix: J_w[i, (q, j)] = delta_iq h'(a_i) x~_j).
    """
    placeholder("`dW`", dW, returned=False)
    placeholder("`db`", db, returned=False)
    W, b, x, a = _block(W, b, x)
    D, M = W.shape
    g = np.asarray(g, dtype=np.float64).ravel()
    if g.shape != (D,):
        raise ValueError(f"g must have {D} entries (one per output), got {g.size}")
    got_w, got_b = student_array("`dW`", dW, returned=False), student_array("`db`", db, returned=False)
    slope = 1 - np.tanh(a) ** 2
    delta = g * slope
    expected_w, expected_b = np.outer(delta, x), delta
    if got_w.shape == (M, D) and D != M:
        raise CheckFailed(f"`dW` has shape {got_w.shape}: that is transposed. It must have the shape of the "
                          f"weight, ({D}, {M}): dW[q, j] = g_q h'(a_q) x_j, i.e. an outer product delta x^T")
    if got_w.shape == (D, M + 1):
        raise CheckFailed(f"`dW` has shape {got_w.shape}: you kept the column of x~ = [x; 1] that belongs "
                          f"to the bias; that column is db, and dW is the first {M} columns ({D}, {M})")
    if got_w.shape == (D, M):
        mistakes = [
            (np.outer(g, x), "`dW` is g x^T: you left out the activation's slope h'(a_q) = 1 - tanh(a_q)^2"),
            (np.outer(g * np.tanh(a), x), "`dW` uses tanh(a), the activation's value; use its derivative "
                                          "h'(a) = 1 - tanh(a)^2"),
            (np.outer(g * (1 - a ** 2), x), "`dW` uses 1 - a^2; the derivative of tanh at a is 1 - tanh(a)^2"),
            (np.outer(g * slope, np.tanh(x)), "`dW` multiplies by tanh(x); the input enters J_w as x_j itself"),
        ]
        name_mistake(got_w, mistakes, _same, right=expected_w)
    check_array("dW", got_w, expected_w, rtol=1e-6, atol=1e-9)
    if got_b.shape == (D,) and _same(got_b, g) and not _same(g, expected_b):
        raise CheckFailed("`db` is g: the bias also goes through tanh, so db = g * h'(a)")
    if got_b.shape == (1, D):
        raise CheckFailed(f"`db` has shape {got_b.shape}: the bias has shape ({D},); drop the batch axis")
    check_array("db", got_b, expected_b, rtol=1e-6, atol=1e-9)
    passed(f"dW ({D} x {M}) and db ({D},) are g J_w, computed without forming the {D} x {D * (M + 1)} "
           f"matrix J_w")


# --- exercise 3: Algorithm 1 with explicit Jacobians ----------------------------------------------------
_ORDER_HINT = (("matmul", "aligned", "mismatch", "broadcast"),
               " (the upstream gradient g is a row vector on the LEFT: g J, i.e. g @ J, not J @ g)")


def _problem():
    """x (5,) -> Linear(5, 3) -> tanh -> Linear(3, 1) -> MSE loss: (net, x, target)."""
    net = Sequential([Linear(5, 3, rng=31), Tanh(), Linear(3, 1, rng=32)]).astype(np.float64)
    net[0].weight.data *= 2.5  # activations of size about 1: tanh' and 1 - a^2 differ clearly
    x = np.random.default_rng(33).standard_normal(5)
    return net, x, np.array([[0.7]])


def _pair(name, result):
    """The student's (J_x, J_w) as two float arrays, or CheckFailed."""
    placeholder(name, result)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise CheckFailed(f"{name} should return the pair (J_x, J_w), got {type(result).__name__}")
    J_x, J_w = result
    placeholder("J_x", J_x)
    placeholder("J_w", J_w)
    return student_array("J_x", J_x), student_array("J_w", J_w)


def _check_linear(fn, layer, x):
    W = layer.weight.data
    D, M = W.shape
    call = f"linear_jacobians(x, W) for W of shape {W.shape}"
    J_x, J_w = _pair(call, run_student(lambda: fn(x.copy(), W.copy()), call, fn=fn))
    right_x, right_w = jacobian_input(layer, x[None]), jacobian_params(layer, x[None])
    if J_x.shape == (M, D) and D != M or (D == M and _same(J_x, W.T) and not _same(W, W.T)):
        raise CheckFailed(f"J_x is W^T (shape {J_x.shape}): entry (i, j) is dx_i/dx_j of y_i = sum_j W_ij x_j + b_i, "
                          f"which is W_ij, one row per output: J_x = W, shape ({D}, {M})")
    check_array("J_x", J_x, right_x, rtol=1e-9, atol=1e-12)
    eye = np.eye(D)
    weight_row, weight_col = np.kron(eye, x[None, :]), np.kron(x[None, :], eye)
    tomasi = np.kron(eye, np.append(x, 1.0)[None, :])
    if J_w.shape == (D, D * M):
        raise CheckFailed(f"J_w has {D * M} columns, one per weight: you forgot the bias part. w lists the weight, "
                          f"then the bias, and dy_i/db_q = delta_iq, so J_w ends with a {D} x {D} identity: "
                          f"shape ({D}, {D * M + D})")
    if J_w.shape == (D * M + D, D) and D * M + D != D:
        raise CheckFailed(f"J_w has shape {J_w.shape}: that is the transpose; one row per output: ({D}, {D * M + D})")
    if J_w.shape == (D, D * M + D):
        name_mistake(J_w, [
            (np.hstack([weight_col, eye]), "J_w lists W column by column (column-major, kron(x^T, I)): cnnlab "
                                           "flattens W row by row, W[q, j] is column q M + j, so the weight "
                                           "part is kron(I, x^T) (block diagonal, one block x^T per row)"),
            (tomasi, "J_w lists [W | b] row by row (Tomasi's order, bias after each row): cnnlab lists the whole "
                     "weight row by row first, then the bias"),
            (np.hstack([weight_row, np.zeros((D, D))]), "the bias part of J_w is zero: dy_i/db_q = delta_iq, "
                                                         "an identity block"),
        ], _same, right=right_w)
    check_array("J_w", J_w, right_w, rtol=1e-9, atol=1e-12)


def _check_tanh(fn, a):
    D = a.size
    call = f"tanh_jacobian(a) for a of shape {a.shape}"
    got = run_student(lambda: fn(a.copy()), call, fn=fn, quiet=True)
    placeholder(call, got)
    J = student_array(f"what {call} returns", got)
    right = jacobian_input(Tanh().astype(np.float64), a[None])
    slope = 1 - np.tanh(a) ** 2
    if J.shape == (D,) and D > 1:
        raise CheckFailed(f"tanh_jacobian returned a vector of shape {J.shape}: the Jacobian is the {D} x {D} "
                          f"matrix with h'(a_i) on its diagonal")
    if J.shape == (D, D) and np.isfinite(J).all():
        if not _same(J - np.diag(np.diag(J)), np.zeros((D, D))):
            raise CheckFailed("the Jacobian of tanh is not diagonal: output i = tanh(a_i) depends on a_i only, "
                              "so every entry off the diagonal is 0 (np.diag puts a vector on a diagonal)")
        name_mistake(np.diag(J), [
            (1 - a ** 2, "the diagonal is 1 - a^2 of the pre-activation a: tanh'(a) = 1 - tanh(a)^2, "
                         "that is 1 - y^2 of the OUTPUT y = tanh(a)"),
            (np.tanh(a), "the diagonal is tanh(a), the value; use the derivative 1 - tanh(a)^2"),
            (1 - np.tanh(a), "the diagonal is 1 - tanh(a): the derivative squares tanh, 1 - tanh(a)^2"),
        ], _same, right=slope)
    check_array(call, J, right, rtol=1e-9, atol=1e-12)


def check_jacobian_backprop(linear_jacobians, tanh_jacobian, backward_with_jacobians) -> None:
    """Exercise 3: the student's three functions, on x (5,) -> Linear(5, 3) -> tanh -> Linear(3, 1) -> MSE.

    - linear_jacobians(x, W) -> (J_x, J_w), compared with cnnlab.jacobian on both Linear layers;
    - tanh_jacobian(a) -> J, compared with cnnlab.jacobian on Tanh at the first layer's activations;
    - backward_with_jacobians(x, [(W1, b1), (W2, b2)], dL_dout) -> [dL/dw1, dL/dw2], compared with the
      gradients a cnnlab backward pass leaves in .grad and with centred finite differences of the loss.
    """
    net, x, target = _problem()
    lin1, lin2 = net[0], net[2]
    a = lin1.weight.data @ x + lin1.bias.data
    _check_linear(linear_jacobians, lin1, x)
    _check_linear(linear_jacobians, lin2, np.tanh(a))
    _check_tanh(tanh_jacobian, a)

    loss_fn = MSELoss()
    loss_fn.forward(net.forward(x[None]), target)
    dL_dout = loss_fn.backward()[0]
    net.backward(dL_dout[None])
    grads = [np.concatenate([p.grad.ravel() for p in layer.parameters()]) for layer in (lin1, lin2)]

    def loss():
        return MSELoss().forward(net.forward(x[None]), target)
    numeric = [np.concatenate([numerical_gradient(loss, p.data).ravel() for p in layer.parameters()])
               for layer in (lin1, lin2)]
    assert all(np.allclose(g, n, rtol=1e-6, atol=1e-8) for g, n in zip(grads, numeric)), "backward vs differences"

    layers = [(lin1.weight.data.copy(), lin1.bias.data.copy()), (lin2.weight.data.copy(), lin2.bias.data.copy())]
    fn, call = backward_with_jacobians, "backward_with_jacobians(x, layers, dL_dout)"
    result = run_student(lambda: fn(x.copy(), layers, dL_dout.copy()), call, fn=fn, hint=_ORDER_HINT)
    placeholder(call, result)
    if isinstance(result, np.ndarray) or not isinstance(result, (list, tuple)):
        raise CheckFailed(f"{call} should return a list [dL/dw1, dL/dw2], one vector per layer, got "
                          f"{type(result).__name__}")
    if len(result) == 1:
        raise CheckFailed("only one gradient came back: the recursion stopped before layer 1; carry g on through "
                          "tanh (g^(1) = g^(2) J_x^(2)) to layer 1 and return [dL/dw1, dL/dw2]")
    if len(result) != 2:
        raise CheckFailed(f"{call} returned {len(result)} gradients; the net has 2 layers with parameters: "
                          f"return [dL/dw1, dL/dw2]")
    sizes = [g.size for g in grads]
    got = [student_array(f"dL/dw{k + 1}", r) for k, r in enumerate(result)]
    if [g.size for g in got] == sizes[::-1]:
        raise CheckFailed("the gradients come in backward order [layer 2, layer 1]: return them in the order of "
                          "the layers, [dL/dw1, dL/dw2]")
    for k, (g, size) in enumerate(zip(got, sizes)):
        if g.shape != (size,):
            raise CheckFailed(f"dL/dw{k + 1} has shape {g.shape}: it is the row vector g J_w, one entry per "
                              f"parameter of layer {k + 1}, shape ({size},)")
    W1, W2 = layers[0][0], layers[1][0]
    g2 = dL_dout @ W2  # dL/d(tanh output)
    jw1 = np.hstack([np.kron(np.eye(3), x[None, :]), np.eye(3)])
    name_mistake(got[1], [
        (dL_dout @ np.hstack([np.kron(np.eye(1), a[None, :]), np.eye(1)]),
         "dL/dw2 uses J_w of layer 2 at the activations a = W1 x + b1: layer 2's input is tanh(a)"),
    ], partial(same, rtol=1e-7, atol=1e-10), right=grads[1])
    check_array("dL/dw2", got[1], grads[1], rtol=1e-7, atol=1e-10)
    name_mistake(got[0], [
        (g2 @ jw1, "dL/dw1 skips the tanh layer: g^(1) = g^(2) J_x^(2), with tanh's diag(1 - tanh(a)^2), comes "
                "before layer 1"),
        ((g2 * (1 - np.tanh(np.tanh(a)) ** 2)) @ jw1,
         "dL/dw1 takes tanh's Jacobian at tanh(a), its output: it belongs at its input a = W1 x + b1"),
        ((g2 * (1 - np.tanh(a) ** 2)) @ np.hstack([np.kron(np.eye(3), np.tanh(x)[None, :]), np.eye(3)]),
         "dL/dw1 uses J_w of layer 1 at tanh(x): layer 1's input is x itself"),
    ], partial(same, rtol=1e-7, atol=1e-10), right=grads[0])
    check_array("dL/dw1", got[0], grads[0], rtol=1e-7, atol=1e-10)
    for k, (g, n) in enumerate(zip(got, numeric)):
        check_array(f"dL/dw{k + 1} (against finite differences)", g, n, rtol=1e-5, atol=1e-7)
    passed(f"J_x, J_w of both Linear layers, tanh's diagonal Jacobian, and g J down to layer 1: dL/dw1 "
           f"({sizes[0]}) and dL/dw2 ({sizes[1]}) match cnnlab's backward and finite differences")
