"""Self-checks for lesson 07 (optimizers).

- `check_adam_update(fn)`: one Adam step for one parameter array (Khan eqs. 5.29-5.33), step by step
  against `cnnlab.optim.Adam`.
- `check_nesterov_khan(fn)`: Khan's Nesterov iteration (eqs. 5.19-5.20) against an independent loop.
- `check_adagrad_effective_lr(fn)`: AdaGrad's effective learning rate after t steps of a constant
  gradient, against what `cnnlab.optim.Adagrad` reports.

Each check recognises the typical mistakes by name (no bias correction, eps outside the root, the
gradient at the wrong point, a missing square root, an off-by-one step count, ...) and says in one line
what to change.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Parameter
from cnnlab.optim import Adagrad, Adam
from . import CheckFailed, passed, placeholder, run_student, same, student_array

__all__ = ["check_adam_update", "check_nesterov_khan", "check_adagrad_effective_lr"]


_close = partial(same, rtol=1e-7, atol=1e-12, equal_nan=True)


# --- exercise 1: Adam --------------------------------------------------------------------------

ADAM_LR, ADAM_BETAS, ADAM_EPS, ADAM_STEPS = 0.1, (0.8, 0.95), 1e-3, 6
# a larger eps than the default 1e-8 and gradients from 1e-3 to 1, so that where eps goes is visible


def _adam_problem():
    rng = np.random.default_rng(7)
    theta0 = rng.standard_normal((3, 4))
    scale = np.logspace(-3, 0, 12).reshape(3, 4)
    grads = [scale * rng.standard_normal((3, 4)) for _ in range(ADAM_STEPS)]
    return theta0, grads


def _adam_reference(theta0, grads):
    """(theta, m, v) after each step, from cnnlab.optim.Adam (float64)."""
    p = Parameter(theta0.copy())
    optimizer = Adam([p], lr=ADAM_LR, betas=ADAM_BETAS, eps=ADAM_EPS)
    out = []
    for g in grads:
        p.grad[...] = g
        optimizer.step()
        state = optimizer.state[p]
        out.append((p.data.copy(), state["exp_avg"].copy(), state["exp_avg_sq"].copy()))
    return out


def _adam_variant(theta0, grads, kind: str):
    """The trajectory of a typical wrong Adam (independent of cnnlab), for naming a mistake."""
    b1, b2 = ADAM_BETAS
    if kind == "swapped betas":
        b1, b2 = b2, b1
    theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    out = []
    with np.errstate(all="ignore"):
        for t, g in enumerate(grads, start=1):
            if kind == "no (1 - beta)":
                m, v = b1 * m + g, b2 * v + g * g
            else:
                m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
            tc = {"t - 1": t - 1, "t + 1": t + 1}.get(kind, t)
            m_hat, v_hat = m / (1 - b1**tc), v / (1 - b2**tc)
            if kind == "no bias correction":
                m_hat, v_hat = m, v
            if kind == "only m corrected":
                v_hat = v
            if kind == "only v corrected":
                m_hat = m
            numerator = g if kind == "gradient instead of m_hat" else m_hat
            if kind == "eps outside":
                denominator = np.sqrt(v_hat) + ADAM_EPS
            elif kind == "no square root":
                denominator = v_hat + ADAM_EPS
            else:
                denominator = np.sqrt(v_hat + ADAM_EPS)
            step = ADAM_LR * numerator / denominator
            theta = theta + step if kind == "plus" else theta - step
            out.append((theta.copy(), m.copy(), v.copy()))
    return out


_ADAM_MISTAKES = {
    "no bias correction": "you skipped the bias correction: divide m by 1 - beta1**t and v by 1 - beta2**t "
                          "(eqs. 5.31-5.32) and step with m_hat and v_hat",
    "only m corrected": "v_hat must be bias-corrected too: v_hat = v / (1 - beta2**t) (eq. 5.32)",
    "only v corrected": "m_hat must be bias-corrected too: m_hat = m / (1 - beta1**t) (eq. 5.31)",
    "t - 1": "off by one: the correction uses beta**t with t = 1 at the first step (you used t - 1, "
             "which divides by 1 - beta**0 = 0)",
    "t + 1": "off by one: the correction uses beta**t with t = 1 at the first step, not t + 1",
    "eps outside": "eps is outside the square root (PyTorch's form, sqrt(v_hat) + eps); Khan's eq. 5.33 puts it "
                   "inside: sqrt(v_hat + eps)",
    "no square root": "the denominator needs a square root: lr * m_hat / sqrt(v_hat + eps) (eq. 5.33)",
    "gradient instead of m_hat": "the step uses the raw gradient; Adam steps along the averaged gradient m_hat "
                                 "(eq. 5.33)",
    "swapped betas": "beta1 and beta2 are swapped: beta1 (0.8 here) averages the gradients m, beta2 (0.95) the "
                     "squares v",
    "no (1 - beta)": "the new gradient must be weighted by (1 - beta): m = beta1 m + (1 - beta1) g and "
                     "v = beta2 v + (1 - beta2) g**2 (eqs. 5.29-5.30)",
    "plus": "the step goes uphill: subtract lr * m_hat / sqrt(v_hat + eps) from theta",
}


def check_adam_update(fn) -> None:
    """`fn(theta, grad, m, v, t, lr, betas, eps)` must return the new (theta, m, v) of one Adam step, t = 1 first.

    Six steps on a (3, 4) array with gradients from 1e-3 to 1 (lr=0.1, betas=(0.8, 0.95), eps=1e-3), each
    compared with cnnlab.optim.Adam; the inputs are copies, so updating m and v in place is fine.
    """
    name = getattr(fn, "__name__", "your function")
    theta0, grads = _adam_problem()
    expected = _adam_reference(theta0, grads)
    theta, m, v = theta0.copy(), np.zeros_like(theta0), np.zeros_like(theta0)
    got = []
    for t, g in enumerate(grads, start=1):
        m_in, v_in = m.copy(), v.copy()
        result = run_student(lambda: fn(theta.copy(), g.copy(), m.copy(), v.copy(), t, lr=ADAM_LR, betas=ADAM_BETAS,
                                        eps=ADAM_EPS), f"{name}(theta, grad, m, v, t={t}, ...)", fn=fn, quiet=True)
        if result is Ellipsis or result is None:
            placeholder(f"`what {name} returns`", result)
        if not isinstance(result, tuple) or len(result) != 3:
            raise CheckFailed(f"{name} should return a tuple (theta, m, v), got "
                              f"{type(result).__name__}{'' if not isinstance(result, tuple) else f' of {len(result)}'}")
        theta, m, v = (student_array(f"`{label}`", r, theta0.shape) for label, r in zip(("theta", "m", "v"), result))
        if t == 1 and (not np.any(m) or np.array_equal(m, m_in)) and np.any(g):
            raise CheckFailed("the returned m is unchanged: return the updated m = beta1 m + (1 - beta1) g")
        if t == 1 and (not np.any(v) or np.array_equal(v, v_in)):
            raise CheckFailed("the returned v is unchanged: return the updated v = beta2 v + (1 - beta2) g**2")
        got.append((theta, m, v))
        if not np.all(np.isfinite(theta)):
            break
    for t, ((th, mm, vv), (eth, em, ev)) in enumerate(zip(got, expected), start=1):
        if _close(th, eth) and _close(mm, em) and _close(vv, ev):
            continue
        for kind, message in _ADAM_MISTAKES.items():
            variant = _adam_variant(theta0, grads, kind)
            if all(_close(a, b, atol=1e-10) for x, y in zip(got, variant) for a, b in zip(x, y)):
                raise CheckFailed(message)
        if not np.all(np.isfinite(th)):
            raise CheckFailed(f"theta contains NaN or infinity after step {t}: is a square root taken of something "
                              "negative, or a division by 1 - beta**0 = 0?")
        for label, a, b in (("m", mm, em), ("v", vv, ev), ("theta", th, eth)):
            if not _close(a, b):
                where = tuple(np.argwhere(~np.isclose(a, b, rtol=1e-7, atol=1e-12))[0].tolist())
                raise CheckFailed(f"after step t={t}, {label}{list(where)} is {a[where]:.6g} but should be "
                                  f"{b[where]:.6g}")
    passed(f"{name} matches cnnlab.optim.Adam for {ADAM_STEPS} steps: moments, bias correction and the step")


# --- exercise 2: Nesterov in Khan's form -----------------------------------------------------------

NESTEROV_LR, NESTEROV_GAMMA, NESTEROV_STEPS = 0.05, 0.9, 25
_H = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.5], [0.0, 0.5, 1.0]])  # a bowl with coupled coordinates
_THETA0 = np.array([1.0, -2.0, 0.5])


def _bowl_grad(theta):
    return _H @ theta + np.array([0.5, 0.0, -1.0])


def _khan_loop(lr, gamma, steps, kind: str = "right"):
    """Khan's iteration (or a typical wrong version of it), independent of cnnlab."""
    theta, a = _THETA0.copy(), np.zeros(3)
    thetas, velocities = [theta.copy()], [a.copy()]
    for _ in range(steps):
        point = {"momentum": theta, "plus": theta + gamma * a}.get(kind, theta - gamma * a)
        a = lr * _bowl_grad(point) + (0 if kind == "no gamma a" else gamma * a)
        theta = theta + a if kind == "theta plus a" else theta - a
        thetas.append(theta.copy())
        velocities.append(a.copy())
    return np.array(thetas), np.array(velocities)


_NESTEROV_MISTAKES = {
    "momentum": "that is classical momentum (eqs. 5.17-5.18): Nesterov evaluates the gradient at the look-ahead "
                "point theta - gamma * a, not at theta",
    "plus": "the look-ahead point is theta - gamma * a (where the momentum is about to carry theta), not "
            "theta + gamma * a",
    "theta plus a": "eq. 5.19 subtracts the step: theta = theta - a",
    "no gamma a": "a_t keeps gamma * a_(t-1) besides the new gradient term (eq. 5.20): "
                  "a = lr * grad(theta - gamma * a) + gamma * a",
}


def check_nesterov_khan(fn) -> None:
    """`fn(grad, theta0, lr, gamma, steps)` must return (thetas, velocities), both (steps + 1, d): theta_t and
    a_t of Khan's eqs. 5.19-5.20 from theta_0 with a_0 = 0, rows t = 0 .. steps.

    Checked on a 3-D quadratic bowl with coupled coordinates (lr=0.05, gamma=0.9, 25 steps).
    """
    name = getattr(fn, "__name__", "your function")
    steps = NESTEROV_STEPS
    result = run_student(lambda: fn(_bowl_grad, _THETA0.copy(), NESTEROV_LR, NESTEROV_GAMMA, steps),
                         f"{name}(grad, theta0, lr, gamma, steps)", fn=fn, quiet=True)
    if result is Ellipsis or result is None:
        placeholder(f"`what {name} returns`", result)
    if not isinstance(result, tuple) or len(result) != 2:
        raise CheckFailed(f"{name} should return a tuple (thetas, velocities), got {type(result).__name__}")
    thetas, velocities = (student_array(f"`{label}`", r) for label, r in zip(("thetas", "velocities"), result))
    want = (steps + 1, 3)
    for label, arr in (("thetas", thetas), ("velocities", velocities)):
        if arr.shape == (steps, 3):
            raise CheckFailed(f"`{label}` has {steps} rows; it needs {steps + 1}: the starting row (theta_0, a_0 = 0) "
                              f"and one row after each step")
        if arr.shape != want:
            raise CheckFailed(f"`{label}` should have shape {want} (steps + 1 rows, one column per coordinate), "
                              f"got {arr.shape}")
    if not np.array_equal(thetas[0], _THETA0):
        raise CheckFailed("the first row of `thetas` must be theta_0 itself")
    if np.any(velocities[0]):
        raise CheckFailed("the first row of `velocities` must be a_0 = 0")
    expected_thetas, expected_a = _khan_loop(NESTEROV_LR, NESTEROV_GAMMA, steps)
    if _close(thetas, expected_thetas) and _close(velocities, expected_a):
        passed(f"{name} follows Khan's eqs. 5.19-5.20 for {steps} steps")
        return
    look_ahead = expected_thetas - NESTEROV_GAMMA * expected_a
    if _close(thetas, look_ahead):
        raise CheckFailed("`thetas` are the look-ahead points theta - gamma * a (what SGD(nesterov=True) stores); "
                          "return theta itself")
    for kind, message in _NESTEROV_MISTAKES.items():
        wrong_thetas, wrong_a = _khan_loop(NESTEROV_LR, NESTEROV_GAMMA, steps, kind)
        if _close(thetas, wrong_thetas):
            raise CheckFailed(message)
    if _close(thetas, expected_thetas):
        where = tuple(np.argwhere(~np.isclose(velocities, expected_a, rtol=1e-7, atol=1e-12))[0].tolist())
        raise CheckFailed(f"`thetas` are right but velocities{list(where)} is {velocities[where]:.6g}, not "
                          f"{expected_a[where]:.6g}: store a_t after each step")
    bad = np.argwhere(~np.isclose(thetas, expected_thetas, rtol=1e-7, atol=1e-12))[0]
    raise CheckFailed(f"theta_{bad[0]}[{bad[1]}] is {thetas[tuple(bad)]:.6g} but should be "
                      f"{expected_thetas[tuple(bad)]:.6g}")


# --- exercise 3: AdaGrad's effective learning rate -------------------------------------------------

_ADAGRAD_CASES = ((0.1, np.array([2.0, -0.5, 1e-3, 0.0]), 1), (0.1, np.array([2.0, -0.5, 1e-3, 0.0]), 10),
                  (0.01, np.array([1.0, 3e-2, -4.0, 1e-6]), 1000))
_ADAGRAD_EPS = 1e-10


def _adagrad_reference(lr, g, t):
    p = Parameter(np.zeros_like(g))
    optimizer = Adagrad([p], lr=lr, eps=_ADAGRAD_EPS)
    for _ in range(t):
        p.grad[...] = g
        optimizer.step()
    return optimizer.effective_lr(p)


_ADAGRAD_MISTAKES = (
    (lambda lr, g, t, eps: lr / (t * g * g + eps), "the effective rate divides by the square ROOT of the sum: "
                                                   "lr / sqrt(t g**2 + eps)"),
    (lambda lr, g, t, eps: lr / np.sqrt(g * g + eps), "the sum runs over all t steps: after t equal gradients it "
                                                      "is t g**2, not g**2"),
    (lambda lr, g, t, eps: lr / np.sqrt((t - 1) * g * g + eps), "off by one: after t steps the sum holds t squared "
                                                                "gradients (the current one included)"),
    (lambda lr, g, t, eps: lr / (np.sqrt(t * g * g) + eps), "eps belongs inside the square root in Khan's eq. 5.21: "
                                                           "lr / sqrt(t g**2 + eps)"),
    (lambda lr, g, t, eps: lr / np.sqrt(t * np.abs(g) + eps), "square the gradients before summing: t g**2"),
    (lambda lr, g, t, eps: lr / np.sqrt(t * t * g * g + eps), "the sum of t equal squares g**2 is t g**2, not "
                                                              "(t g)**2"),
)


def check_adagrad_effective_lr(fn) -> None:
    """`fn(lr, g, t, eps)` must return the factor AdaGrad multiplies the gradient by at step t when every
    gradient so far was g (an array): Khan's eq. 5.21 with a constant gradient. Compared with
    cnnlab.optim.Adagrad.effective_lr after t real steps."""
    name = getattr(fn, "__name__", "your function")
    for lr, g, t in _ADAGRAD_CASES:
        answer = run_student(lambda: fn(lr, g.copy(), t, _ADAGRAD_EPS), f"{name}(lr={lr}, g, t={t}, eps)",
                             fn=fn, quiet=True)
        got = student_array(f"`{name}(lr={lr}, g, t={t})`", answer, g.shape)
        expected = _adagrad_reference(lr, g, t)
        if np.allclose(got, expected, rtol=1e-6, atol=0):
            continue
        for mistake, message in _ADAGRAD_MISTAKES:
            with np.errstate(all="ignore"):
                wrong = mistake(lr, g, t, _ADAGRAD_EPS)
            if np.allclose(got, wrong, rtol=1e-6, atol=0):
                raise CheckFailed(message)
        k = int(np.argmax(~np.isclose(got, expected, rtol=1e-6, atol=0)))
        raise CheckFailed(f"with lr={lr}, t={t} and g={g[k]:g} you give {got[k]:.6g}, but AdaGrad's effective rate "
                          f"is {expected[k]:.6g}")
    passed(f"{name}: lr / sqrt(t g**2 + eps), as cnnlab.optim.Adagrad reports after t steps")
