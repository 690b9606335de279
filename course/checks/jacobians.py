"""Self-checks for lesson 03 (Jacobians).

The expected answers are computed here from the formulas of Tomasi's appendix, independently of
`cnnlab` (no layer's backward is called), so a check can disagree with the library if either is wrong.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from . import CheckFailed, check_array, name_mistake, passed, placeholder, same, student_array

__all__ = ["check_linear_relu_jacobian", "check_tanh_layer_gradients"]


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
