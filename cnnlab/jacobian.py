"""Explicit per-layer Jacobians (Tomasi, eqs. 2-5 and the appendix).

Back-propagation never forms these matrices: a layer's `backward(g)` returns the row vector g J
directly. Forming them is still the best way to *see* a layer: the banded, weight-sharing structure
of a convolution, the 0/1 selection pattern of max-pooling, the diagonal of a point activation.

Conventions (as in Tomasi's notes):
- a layer maps x^(l-1) (flattened, length M) to x^(l) (flattened, length D);
- J_x = dx^(l)/dx^(l-1) has shape (D, M); J_w = dx^(l)/dw^(l) has shape (D, P), where w^(l) lists
  the layer's parameters flattened in `parameters()` order (weight row-major, then bias; Tomasi
  stacks W column by column with the bias as an extra column, which only permutes J_w's columns);
- row i of either matrix is what `backward` returns for the unit upstream gradient e_i, because
  backward computes g J for any row vector g.

Everything here works per example: pass x with a batch axis of 1.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.gradcheck import centered_differences

__all__ = ["jacobian_input", "jacobian_params", "jacobians", "numerical_jacobian", "layer_jacobians",
           "LayerJacobian", "point_activation_jacobians", "relu_maxpool_jacobians"]


def _unit_rows(module, x):
    """Yield (i, dx, param grads) for every unit upstream gradient e_i; restores the .grad arrays."""
    params = module.parameters()
    saved = [(p.grad, p.grad.copy()) for p in params]  # the array objects and their values
    try:
        out = module.forward(x)
        for i in range(out.size):
            e = np.zeros_like(out)
            e.flat[i] = 1
            dx = module.backward(e)
            yield i, out.size, dx, [p.grad for p in params]
    finally:  # put back the very same gradient arrays with their old values
        for p, (array, values) in zip(params, saved):
            array[...] = values
            p.grad = array


def jacobian_input(module, x) -> np.ndarray:
    """J_x = d module(x) / dx, shape (out.size, x.size), one `backward` per row."""
    J = None
    for i, rows, dx, _ in _unit_rows(module, x):
        if J is None:
            J = np.zeros((rows, x.size), dtype=dx.dtype)
        J[i] = dx.ravel()
    return J


def jacobian_params(module, x) -> np.ndarray:
    """J_w = d module(x) / dw, shape (out.size, P) with w all parameters flattened in order."""
    J = None
    for i, rows, _, grads in _unit_rows(module, x):
        flat = np.concatenate([g.ravel() for g in grads]) if grads else np.zeros(0, x.dtype)
        if J is None:
            J = np.zeros((rows, flat.size), dtype=flat.dtype)
        J[i] = flat
    return J


def jacobians(module, x) -> tuple[np.ndarray, np.ndarray]:
    """(J_x, J_w) of `jacobian_input` and `jacobian_params` from one sweep of `backward` passes (each pass
    gives a row of both), at half the cost of calling the two. Shapes (out.size, x.size), (out.size, P)."""
    J_x = J_w = None
    for i, rows, dx, grads in _unit_rows(module, x):
        flat = np.concatenate([g.ravel() for g in grads]) if grads else np.zeros(0, x.dtype)
        if J_x is None:
            J_x = np.zeros((rows, x.size), dtype=dx.dtype)
            J_w = np.zeros((rows, flat.size), dtype=flat.dtype)
        J_x[i], J_w[i] = dx.ravel(), flat
    return J_x, J_w


def numerical_jacobian(f, x, eps: float = 1e-6) -> np.ndarray:
    """Centred differences of a vector function: column j = (f(x + eps e_j) - f(x - eps e_j)) / 2 eps.

    f: a function of no arguments that reads `x` (perturbed in place and restored), e.g.
    `lambda: layer.forward(inp)`, so the same helper differentiates w.r.t. inputs or parameters.
    x: a writable float array. Returns (out.size, x.size), float64. The loop is
    `cnnlab.gradcheck.centered_differences`; this divides by 2 eps as written above.
    """
    columns = centered_differences(lambda: np.array(f(), dtype=np.float64).ravel(), x, eps, step="nominal",
                                  name="numerical_jacobian")
    return np.ascontiguousarray(columns.reshape(x.size, -1).T)


@dataclass
class LayerJacobian:
    name: str          # the layer's index in the Sequential
    layer: str         # its repr
    x_in: np.ndarray   # the input it received inside the network
    J_x: np.ndarray    # dx^(l) / dx^(l-1)
    J_w: np.ndarray    # dx^(l) / dw^(l) (zero columns for a layer without parameters)


def layer_jacobians(net, x) -> list[LayerJacobian]:
    """The Jacobians of every layer of a Sequential at the inputs it receives for the example x.

    The product J_x^(L) ... J_x^(1) is d net(x) / dx (the chain rule, Tomasi eq. 3).
    """
    result, h = [], x
    for i, layer in enumerate(net):
        x_in = h.copy()
        result.append(LayerJacobian(str(i), repr(layer), x_in, *jacobians(layer, x_in)))
        h = layer.forward(x_in)
    return result


def point_activation_jacobians(W, b, x, dh):
    """Tomasi's appendix for x_out = h(W x~ + ...) with a point activation h (x~ = [x; 1]).

    W (D, M), b (D,), x (M,), dh: the derivative h'(a) as a function of the activations a.
    Returns (J_w, J_x): J_w[i, (q, j)] = delta_iq h'(a_i) x~_j with w = [W | b] stacked row by row,
    and J_x[i, j] = h'(a_i) W_ij.
    """
    a = W @ x + b
    d = dh(a)
    x_tilde = np.append(x, 1.0)
    D, M = W.shape
    J_w = np.zeros((D, D * (M + 1)))
    for i in range(D):
        J_w[i, i * (M + 1):(i + 1) * (M + 1)] = d[i] * x_tilde
    return J_w, d[:, None] * W


def relu_maxpool_jacobians(W, b, x, windows):
    """Tomasi's appendix for x_out = pi(ReLU(W x~)), max-pooling over index windows P(i).

    windows: a list of index arrays, one per output i. With q^ = argmax_{q in P(i)} ReLU(a_q)
    (first maximum on ties), J_w[i, (q, j)] = delta_{q q^} h'(a_q^) x~_j and
    J_x[i, j] = h'(a_q^) W_{q^ j}, with h'(a) = 1 for a >= 0 and 0 otherwise.
    """
    a = W @ x + b
    relu = np.maximum(a, 0)
    x_tilde = np.append(x, 1.0)
    D, M = W.shape
    J_w = np.zeros((len(windows), D * (M + 1)))
    J_x = np.zeros((len(windows), M))
    for i, window in enumerate(windows):
        window = np.asarray(window)
        q = window[np.argmax(relu[window])]
        slope = 1.0 if a[q] >= 0 else 0.0
        J_w[i, q * (M + 1):(q + 1) * (M + 1)] = slope * x_tilde
        J_x[i] = slope * W[q]
    return J_w, J_x
