"""Self-checks for lesson 09 (regularisation).

- `check_penalty_grads(l2_grad, l1_grad, add_penalty_grads)`: the gradients of Veta's penalties
  lambda * 1/2 sum theta^2 and lambda * sum |theta| (against centred finite differences), and adding
  them to the weights' gradients only (against `cnnlab.regularizers.L2(lam).backward`).
- `check_max_norm(max_norm_)`: the max-norm projection of every unit (row) of a weight matrix
  (against `cnnlab.regularizers.MaxNorm(c).after_step`).

Each check names the typical mistakes (the 1/2 of the L2 penalty, the sign at 0, penalising biases,
scaling short rows up, ...) and says in one line what to change. The checks of the lesson's two layers,
dropout and batch norm, are in `checks.regularization_layers`.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Sequential
from cnnlab.gradcheck import numerical_gradient
from cnnlab.layers import Linear, ReLU
from cnnlab.regularizers import L2, MaxNorm
from . import CheckFailed, check_array, name_mistake, passed, run_student, same, student_array

__all__ = ["check_penalty_grads", "check_max_norm"]


_same = partial(same, rtol=1e-7, atol=1e-12)


def _shaped(name: str, got: np.ndarray, shape: tuple) -> None:
    if got.shape != shape:
        raise CheckFailed(f"{name} should have the shape of its input, {shape}, got {got.shape}")


# --- exercise 1: penalty gradients ---------------------------------------------------------------

LAM = 0.3


def _theta(rng) -> np.ndarray:
    theta = rng.standard_normal((3, 4))
    theta[0, 1] = theta[2, 3] = 0.0  # exact zeros: where |theta| has no slope
    return theta


def _check_l2(l2_grad, rng) -> None:
    theta = _theta(rng)
    work = theta.copy()
    expected = numerical_gradient(lambda: LAM * 0.5 * np.sum(work ** 2), work)
    got = student_array("l2_grad(theta, lam)", run_student(lambda: l2_grad(theta.copy(), LAM), "l2_grad(theta, lam)"))
    _shaped("l2_grad(theta, lam)", got, theta.shape)
    if _same(got, expected):
        return
    exact = LAM * theta
    if _same(got, 2 * exact):
        raise CheckFailed("l2_grad is twice too large: the 1/2 in Omega = 1/2 sum theta^2 cancels the 2 that comes "
                          "down from the square, so the gradient is lam * theta")
    if _same(got, exact / 2):
        raise CheckFailed("l2_grad is half the right value: d/dtheta of 1/2 theta^2 is theta (the 1/2 cancels the 2), "
                          "so the gradient is lam * theta, not lam * theta / 2")
    if _same(got, LAM * 0.5 * theta ** 2) or _same(got, LAM * theta ** 2):
        raise CheckFailed("l2_grad returned the penalty's terms (lam/2 * theta^2), not its gradient: differentiate")
    if _same(got, theta):
        raise CheckFailed("l2_grad is theta: you forgot the strength lam, the gradient is lam * theta")
    if _same(got, LAM * np.sign(theta)):
        raise CheckFailed("l2_grad is lam * sign(theta), the L1 gradient; L2's is lam * theta")
    check_array("l2_grad(theta, lam)", got, expected, rtol=1e-6, atol=1e-8)


def _check_l1(l1_grad, rng) -> None:
    theta = _theta(rng)
    work = theta.copy()
    # away from 0 the finite difference is the derivative; at 0 the course takes the slope 0 (sign(0) = 0)
    expected = numerical_gradient(lambda: LAM * np.sum(np.abs(work)), work, eps=1e-7)
    zero = theta == 0
    expected[zero] = 0.0
    got = run_student(lambda: l1_grad(theta.copy(), LAM), "l1_grad(theta, lam)")
    got = student_array("l1_grad(theta, lam)", got)
    _shaped("l1_grad(theta, lam)", got, theta.shape)
    if np.any(np.isnan(got[zero])) and np.all(np.isfinite(got[~zero])):
        raise CheckFailed("l1_grad is NaN where theta == 0: theta / |theta| divides by 0 there; np.sign(theta) "
                          "gives the slope 0 at theta = 0")
    if _same(got[~zero], expected[~zero]) and not _same(got[zero], 0.0 * got[zero]):
        raise CheckFailed(f"l1_grad is {got[zero][0]:+g} where theta == 0 (the sign at 0): |theta| has no slope there, "
                          "and the course takes 0, as np.sign does; np.where(theta >= 0, 1, -1) gives +1 instead")
    if _same(got, expected):
        return
    if _same(got, expected / 2):
        raise CheckFailed("l1_grad is half the right value: Veta's slide writes Omega = 1/2 sum |theta| but gives the "
                          "gradient sign(theta); the course uses Omega = sum |theta|, gradient lam * sign(theta)")
    if _same(got, 2 * expected):
        raise CheckFailed("l1_grad is twice too large: the gradient of lam * sum |theta| is lam * sign(theta)")
    if _same(got, LAM * np.abs(theta)):
        raise CheckFailed("l1_grad returned lam * |theta|, the penalty's terms, not its gradient: use np.sign")
    if _same(got, np.sign(theta)):
        raise CheckFailed("l1_grad is sign(theta): you forgot the strength lam, the gradient is lam * sign(theta)")
    if _same(got, LAM * theta):
        raise CheckFailed("l1_grad is lam * theta, the L2 gradient; L1's is lam * sign(theta)")
    check_array("l1_grad(theta, lam)", got, expected, rtol=1e-6, atol=1e-8)


def _small_net(rng):
    net = Sequential(Linear(4, 3, rng=rng), ReLU(), Linear(3, 2, rng=rng)).astype(np.float64)
    for p in net.parameters():
        p.grad[...] = rng.standard_normal(p.shape)  # a data gradient the penalty must be added to
    return net


def _check_add(add_penalty_grads, rng) -> None:
    net, reference = _small_net(np.random.default_rng(5)), _small_net(np.random.default_rng(5))
    data_grads = {name: p.grad.copy() for name, p in net.named_parameters()}
    before = {name: p.data.copy() for name, p in net.named_parameters()}
    L2(LAM).backward(reference)  # cnnlab's own: weights only

    def l2_ref(theta, lam):
        return lam * theta

    run_student(lambda: add_penalty_grads(net, LAM, l2_ref), "add_penalty_grads(net, lam, l2_grad)")
    params, expected = dict(net.named_parameters()), dict(reference.named_parameters())
    for name, p in params.items():
        if not np.array_equal(p.data, before[name]):
            raise CheckFailed(f"add_penalty_grads changed {name}'s values: it must only add to p.grad; the "
                              "optimizer's step is what changes the weights")
    for name, p in params.items():
        got = student_array(f"{name}.grad", p.grad)
        if name.endswith("bias"):
            if not np.array_equal(got, data_grads[name]):
                raise CheckFailed(f"{name}.grad was changed: the penalty applies to the weights only (biases are "
                                  "not penalised); skip parameters whose name ends in 'bias'")
            continue
        if _same(got, data_grads[name]):
            raise CheckFailed(f"{name}.grad is unchanged: add grad_fn(p.data, lam) to it, p.grad += ...")
        if _same(got, LAM * p.data):
            raise CheckFailed(f"{name}.grad holds only the penalty's gradient: the data gradient was replaced; "
                              "add to it (p.grad += ...), do not assign")
        if not _same(got, expected[name].grad, rtol=1e-10):
            raise CheckFailed(f"{name}.grad should be the data gradient plus lam * weight (what "
                              "cnnlab.regularizers.L2(lam).backward(net) gives), but it differs")


def check_penalty_grads(l2_grad, l1_grad, add_penalty_grads) -> None:
    """l2_grad(theta, lam), l1_grad(theta, lam) -> arrays like theta; add_penalty_grads(net, lam, grad_fn)
    adds grad_fn(p.data, lam) to the .grad of the net's weights (not its biases)."""
    _check_l2(l2_grad, np.random.default_rng(90))
    _check_l1(l1_grad, np.random.default_rng(91))
    _check_add(add_penalty_grads, np.random.default_rng(92))
    passed("l2_grad and l1_grad match finite differences of lam * 1/2 sum theta^2 and lam * sum |theta| "
           "(slope 0 at theta = 0), and add_penalty_grads adds them to the weights' gradients only")


# --- exercise 2 (optional): max-norm projection ---------------------------------------------------

def check_max_norm(max_norm_) -> None:
    """max_norm_(W, c) -> W with every row j whose norm exceeds c scaled to norm c, the others unchanged."""
    rng = np.random.default_rng(11)
    W = rng.standard_normal((5, 7))
    W[1] *= 0.1  # a short row that must stay as it is
    W[3] *= 0.2
    W[0, 0] = 2.5  # an entry beyond c, so that clipping entries is not the identity
    c = 1.5
    layer = Linear(7, 5, rng=rng).astype(np.float64)
    layer.weight.data[...] = W
    MaxNorm(c).after_step(layer)  # cnnlab's own projection, an independent reference
    expected = layer.weight.data
    got = student_array("max_norm_(W, c)", run_student(lambda: max_norm_(W.copy(), c), "max_norm_(W, c)"))
    _shaped("max_norm_(W, c)", got, W.shape)
    if _same(got, expected):
        norms = np.linalg.norm(got, axis=1)
        passed(f"every row now has norm <= c = {c} (largest {norms.max():.4f}); rows that were shorter are unchanged")
        return
    rows = np.linalg.norm(W, axis=1, keepdims=True)
    cols = np.linalg.norm(W, axis=0, keepdims=True)
    name_mistake(got, (
        (W * c / rows, "every row was scaled to norm c, also the short ones: only rows LONGER than c are "
                       "projected; the others stay as they are"),
        (W * np.minimum(1, c / cols), "you took the norms of the columns; a unit's incoming weights are a ROW "
                                      "W[j, :] of a (out, in) weight, so take norms with axis=1"),
        (np.clip(W, -c, c), "np.clip bounds each entry, but the constraint is on the norm of each row: "
                            "scale the row by c / ||W[j]|| when ||W[j]|| > c"),
        (W * min(1, c / np.linalg.norm(W)), "you scaled the whole matrix by one factor (its Frobenius norm); "
                                            "every row (unit) gets its own factor")), _same)
    norms = np.linalg.norm(got, axis=1)
    if np.any(norms > c * (1 + 1e-9)):
        j = int(np.argmax(norms))
        raise CheckFailed(f"row {j} still has norm {norms[j]:.4g} > c = {c} after the projection")
    check_array("max_norm_(W, c)", got, expected, rtol=1e-9, atol=1e-12)
