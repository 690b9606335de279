"""Self-checks for lesson 07 (optimizers).

- `check_nesterov_khan(fn)`: Khan's Nesterov iteration (eqs. 5.19-5.20) against an independent loop.
- `check_nesterov_optimizer(cls)`, `check_adam_optimizer(cls)`: the student's `Optimizer` subclasses (their
  `_update`) stepped beside `cnnlab.optim.SGD(nesterov=True)` and `cnnlab.optim.Adam` on parameters of
  awkward shapes, in two groups; a wrong trajectory is compared with typical mistakes written out by hand.
- `check_adagrad_effective_lr(fn)`: AdaGrad's effective learning rate after t steps of a constant
  gradient, against what `cnnlab.optim.Adagrad` reports.

Each check names the typical mistake (no bias correction, eps outside the root, plain momentum for
Nesterov, state shared between parameters, an off-by-one step count, ...) and says what to change.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Parameter
from cnnlab.optim import SGD, Adagrad, Adam, Optimizer
from . import CheckFailed, has_placeholder, passed, placeholder, run_student, same, student_array

__all__ = ["check_adam_optimizer", "check_nesterov_optimizer", "check_nesterov_khan", "check_adagrad_effective_lr"]


_close = partial(same, rtol=1e-7, atol=1e-12, equal_nan=True)


# --- the optimizer classes: Adam and Nesterov SGD, stepped beside cnnlab's -----------------------

STEPS = 12
_SHAPES = ((), (3, 5), (2,), (4, 1))
_ZERO, _DECAYED, _DECAY = 2, 3, 0.1  # parameter 2 always gets a zero gradient; parameter 3 has weight_decay (an L2 term)
_WHAT = ("the scalar parameter", "the (3, 5) parameter", "the parameter whose gradient is always zero",
         "the (4, 1) parameter with weight_decay=0.1 and half the lr")


def _problem():
    """Starting values and STEPS gradients per parameter (magnitudes from 1e-3 to 1, so that eps shows)."""
    rng = np.random.default_rng(15)
    theta0 = [rng.standard_normal(s) for s in _SHAPES]
    grads = [[np.zeros(s) if i == _ZERO else 10 ** rng.uniform(-3, 0, s) * rng.standard_normal(s)
              for i, s in enumerate(_SHAPES)] for _ in range(STEPS)]
    return theta0, grads


def _groups(params, which, lr):
    """Parameter groups as the check builds them: the decayed parameter in its own group (lr / 2)."""
    plain = [p for i, p in zip(which, params) if i != _DECAYED]
    decayed = [p for i, p in zip(which, params) if i == _DECAYED]
    return ([{"params": plain}] if plain else []) + \
        ([{"params": decayed, "lr": lr / 2, "weight_decay": _DECAY}] if decayed else [])


def _trajectory(make, theta0, grads, keys, which=range(len(_SHAPES)), lr=1.0, student=None):
    """[(theta, {key: state array or None}) per parameter] after every step of the optimizer `make(groups)`.

    student: the student's class; its errors become one-line CheckFailed, its values are checked.
    """
    which = list(which)
    params = [Parameter(np.array(theta0[i], dtype=np.float64)) for i in which]
    name = getattr(student, "__name__", "your optimizer")
    update = getattr(student, "_update", None)
    hint = (("division by zero", "divide by zero"), ": is t 0 at the first step? state['step'] is already 1 there")
    call = (lambda f, what: run_student(f, what, fn=update, hint=hint, quiet=True)) if student else \
        (lambda f, what: f())
    optimizer = call(lambda: make(_groups(params, which, lr)), f"{name}(params, ...)")
    out = []
    for t, step_grads in enumerate(grads, start=1):
        for i, p in zip(which, params):
            p.grad[...] = step_grads[i]
        call(optimizer.step, f"step {t} of {name}")
        row = []
        for i, p in zip(which, params):
            theta = student_array(f"the data of {_WHAT[i]} after step {t}", p.data, _SHAPES[i]) if student \
                else p.data.copy()
            state = optimizer.state.get(p, {}) if isinstance(getattr(optimizer, "state", None), dict) else {}
            row.append((theta, {k: _state_array(state.get(k), _SHAPES[i]) for k in keys}))
        out.append(row)
        unchanged = all(np.array_equal(th, theta0[i]) for (th, _), i in zip(row, which))
        if student and t == 1 and which != [_ZERO] and unchanged:
            if has_placeholder(update):
                placeholder(f"`{name}._update`", Ellipsis)
            raise CheckFailed(f"{name}._update changed no parameter at step 1: update p.data in place "
                              "(p.data -= ...); a new local name changes nothing")
    return out


def _state_array(value, shape):
    if value is None:
        return None
    try:
        value = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return value if value.shape == shape else None


def _thetas_like(got, want) -> bool:
    return all(_close(a[0], b[0], atol=1e-10) for row, wrow in zip(got, want) for a, b in zip(row, wrow))


_GROUP_MISTAKES = {
    "weight decay twice": "the parameter with weight_decay gets its L2 term twice: step() has already "
                          "added weight_decay * p.data to g before calling _update",
    "one lr for all groups": "every parameter moves with the same lr: read the rate of p's own group, group['lr'] "
                             "(the second group has half the rate)",
}


def _check_optimizer(cls, reference, simulate, mistakes, hyper, keys, what):
    """Step `cls(groups, **hyper)` and `reference` side by side on _problem(); name the first mistake found."""
    name = getattr(cls, "__name__", repr(cls))
    if not (isinstance(cls, type) and issubclass(cls, Optimizer)):
        raise CheckFailed(f"pass the class itself, a subclass of cnnlab.optim.Optimizer; got {name} "
                          f"({type(cls).__name__})")
    theta0, grads = _problem()
    expected = _trajectory(reference, theta0, grads, keys, lr=hyper["lr"])
    make = lambda groups: cls(groups, **hyper)  # noqa: E731
    try:
        got = _trajectory(make, theta0, grads, keys, lr=hyper["lr"], student=cls)
    except CheckFailed as error:
        got, failure = None, error
    if got is not None and _thetas_like(got, expected):
        for t, (row, wrow) in enumerate(zip(got, expected), start=1):
            for i, ((_, state), (_, wstate)) in enumerate(zip(row, wrow)):
                for key in keys:
                    if state[key] is None or not _close(state[key], wstate[key]):
                        raise CheckFailed(f"the steps are right, but state[{key!r}] of {_WHAT[i]} after step {t} is "
                                          f"{'missing' if state[key] is None else 'not ' + keys[key]}: keep "
                                          f"{keys[key]} there, as {what} does (the widgets read it)")
        passed(f"{name} steps as {what} does for {STEPS} steps: a scalar, a (3, 5) matrix, a zero gradient, "
               "weight decay and a second parameter group")
        return
    if got is not None:
        for kind, message in {**mistakes, **_GROUP_MISTAKES}.items():
            if _thetas_like(got, simulate(theta0, grads, kind)):
                raise CheckFailed(message)
    alone = []
    for i in range(len(_SHAPES)):
        try:
            alone.append(_trajectory(make, theta0, grads, keys, which=[i], lr=hyper["lr"], student=cls))
        except CheckFailed:
            break
    if len(alone) == len(_SHAPES) and all(_thetas_like(a, [[row[i]] for row in expected]) for i, a in enumerate(alone)):
        raise CheckFailed("each parameter alone is updated right, but not several together: the state is shared "
                          "between parameters. Keep everything a parameter needs (and nothing on self) in `state`, "
                          "the dict step() passes with that parameter")
    if got is None:
        raise failure
    for t, (row, wrow) in enumerate(zip(got, expected), start=1):
        for i, ((theta, _), (want, _)) in enumerate(zip(row, wrow)):
            if not np.all(np.isfinite(theta)):
                raise CheckFailed(f"{_WHAT[i]} holds NaN or infinity after step {t}: a division by zero "
                                  "(1 - beta**0, or 0 / 0 where the gradient is 0)?")
            if not _close(theta, want):
                where = tuple(np.argwhere(~np.isclose(theta, want, rtol=1e-7, atol=1e-12))[0].tolist())
                raise CheckFailed(f"after step {t}, {_WHAT[i]}{list(where)} is {theta[where]:.6g} but should be "
                                  f"{want[where]:.6g}")


def _simulate(theta0, grads, lr, one_step, kind):
    """The trajectory of an update rule `one_step(theta, g, lr, state, t)` written out by hand (no cnnlab); two
    kinds of mistake are about the groups: "weight decay twice" and "one lr for all groups"."""
    thetas, states, out = [np.array(x, dtype=np.float64) for x in theta0], [{} for _ in theta0], []
    with np.errstate(all="ignore"):
        for t, step_grads in enumerate(grads, start=1):
            row = []
            for i, g in enumerate(step_grads):
                decay, rate = (_DECAY, lr / 2) if i == _DECAYED else (0.0, lr)
                decay, rate = (2 * decay, rate) if kind == "weight decay twice" else \
                    (decay, lr) if kind == "one lr for all groups" else (decay, rate)
                thetas[i] = one_step(thetas[i], g + decay * thetas[i], rate, states[i], t)
                row.append((thetas[i].copy(), None))
            out.append(row)
    return out


ADAM = dict(lr=0.1, betas=(0.8, 0.95), eps=1e-3)  # a large eps and small gradients: where eps goes shows


def _adam_simulate(theta0, grads, kind="right"):
    b1, b2 = ADAM["betas"][::-1] if kind == "swapped betas" else ADAM["betas"]
    eps = ADAM["eps"]

    def one_step(theta, g, lr, state, t):
        m, v = state.get("m", 0.0), state.get("v", 0.0)
        if kind == "no (1 - beta)":
            m, v = b1 * m + g, b2 * v + g * g
        else:
            m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        state.update(m=m, v=v)
        tc = {"t from 0": t - 1, "t stuck at 1": 1, "t + 1": t + 1, "t counted twice": 2 * t}.get(kind, t)
        m_hat = m if kind in ("no bias correction", "only v corrected") else m / (1 - b1**tc)
        v_hat = v if kind in ("no bias correction", "only m corrected") else v / (1 - b2**tc)
        numerator = g if kind == "gradient instead of m_hat" else m_hat
        denominator = {"eps outside": np.sqrt(v_hat) + eps, "no eps": np.sqrt(v_hat),
                       "no square root": v_hat + eps}.get(kind, np.sqrt(v_hat + eps))
        return theta + lr * numerator / denominator if kind == "uphill" else theta - lr * numerator / denominator

    return _simulate(theta0, grads, ADAM["lr"], one_step, kind)


_ADAM_MISTAKES = {
    "no bias correction": "you skipped the bias correction: divide m by 1 - beta1**t and v by 1 - beta2**t "
                          "(eqs. 5.31-5.32) and step with m_hat and v_hat",
    "only m corrected": "v_hat must be bias-corrected too: v_hat = v / (1 - beta2**t) (eq. 5.32)",
    "only v corrected": "m_hat must be bias-corrected too: m_hat = m / (1 - beta1**t) (eq. 5.31)",
    "t from 0": "t is 0 at the first step, so the bias correction divides by 1 - beta**0 = 0: t counts from 1 "
                "(state['step'] is 1 at the first step; step() increments it before calling _update)",
    "t stuck at 1": "t stays 1: the bias correction must use the number of steps taken so far, state['step'] "
                    "(1, 2, 3, ...), which step() increments for you",
    "t + 1": "off by one: the correction uses beta**t with t = 1 at the first step, not t + 1",
    "t counted twice": "t grows by 2 per step: step() already increments state['step'] before calling _update; "
                       "read it, do not increment it again",
    "eps outside": "eps is outside the square root (PyTorch's form, sqrt(v_hat) + eps); Khan's eq. 5.33 and "
                   "cnnlab.optim.Adam put it inside: sqrt(v_hat + eps)",
    "no eps": "eps is missing: where the gradient is 0, m_hat / sqrt(v_hat) is 0 / 0; divide by sqrt(v_hat + eps)",
    "no square root": "the denominator needs a square root: lr * m_hat / sqrt(v_hat + eps) (eq. 5.33)",
    "gradient instead of m_hat": "the step uses the raw gradient; Adam steps along the averaged gradient m_hat "
                                 "(eq. 5.33)",
    "swapped betas": "beta1 and beta2 are swapped: beta1 (0.8 here) averages the gradients m, beta2 (0.95) the "
                     "squares v",
    "no (1 - beta)": "the new gradient must be weighted by (1 - beta): m = beta1 m + (1 - beta1) g and "
                     "v = beta2 v + (1 - beta2) g**2 (eqs. 5.29-5.30)",
    "uphill": "the step goes uphill: subtract lr * m_hat / sqrt(v_hat + eps) from the parameter",
}


def check_adam_optimizer(cls) -> None:
    """`cls(params, lr, betas, eps, weight_decay=0)`, a subclass of `cnnlab.optim.Optimizer` whose `_update` is
    Khan's eqs. 5.29-5.33, stepped beside `cnnlab.optim.Adam` for 12 steps (lr=0.1, betas=(0.8, 0.95),
    eps=1e-3) on a scalar, a (3, 5) matrix, a parameter with zero gradient and one with weight_decay (an L2 term added to its gradient)
    in a second group. m and v must be in state["exp_avg"] and state["exp_avg_sq"].
    """
    _check_optimizer(cls, lambda groups: Adam(groups, **ADAM), _adam_simulate, _ADAM_MISTAKES, ADAM,
                     {"exp_avg": "m", "exp_avg_sq": "v"}, "cnnlab.optim.Adam")


NESTEROV = dict(lr=0.1, momentum=0.8)


def _nesterov_simulate(theta0, grads, kind="right"):
    mu = NESTEROV["momentum"]

    def one_step(theta, g, lr, state, t):
        old = state.get("b", 0.0)
        b = {"no decay": old + g, "dampening": mu * old + (1 - mu) * g, "not kept": g,
             "lr in the buffer": mu * old + lr * g}.get(kind, mu * old + g)
        state["b"] = b
        step = {"plain momentum": b, "(1 + mu) b": (1 + mu) * b, "no momentum": g}.get(kind, g + mu * b)
        return theta + lr * step if kind == "uphill" else theta - lr * step

    return _simulate(theta0, grads, NESTEROV["lr"], one_step, kind)


_NESTEROV_SGD_MISTAKES = {
    "plain momentum": "that is classical momentum, p -= lr * b (the same as stepping by g + mu * b with the OLD b). "
                      "Nesterov updates b = mu * b + g first and then steps by lr * (g + mu * b) with the new b: "
                      "cnnlab, like PyTorch, keeps Khan's look-ahead point theta - gamma a as the parameter (the "
                      "gradient the optimizer gets is taken there), and in that variable the step is g + mu * b",
    "(1 + mu) b": "the look-ahead term mu * b is added to the gradient g, not to the buffer: step by "
                  "lr * (g + mu * b), not lr * (b + mu * b)",
    "no decay": "the buffer must decay: b = mu * b + g, not b + g",
    "dampening": "the buffer adds the whole gradient: b = mu * b + g, not mu * b + (1 - mu) * g",
    "not kept": "the buffer is not kept between steps: store b in state['momentum_buffer'] and start from it "
                "at the next step",
    "no momentum": "that is plain gradient descent: the momentum buffer b = mu * b + g never enters the step",
    "lr in the buffer": "the buffer sums bare gradients, b = mu * b + g; lr multiplies only the step",
    "uphill": "the step goes uphill: subtract lr * (g + mu * b) from the parameter",
}


def check_nesterov_optimizer(cls) -> None:
    """`cls(params, lr, momentum, weight_decay=0)`, a subclass of `cnnlab.optim.Optimizer` whose `_update` is
    Nesterov momentum in PyTorch's form (b = mu b + g, p -= lr (g + mu b)), stepped beside
    `cnnlab.optim.SGD(nesterov=True)` for 12 steps (lr=0.1, momentum=0.8) on the same parameters as the Adam
    check. b must be in state["momentum_buffer"].
    """
    _check_optimizer(cls, lambda groups: SGD(groups, nesterov=True, **NESTEROV), _nesterov_simulate,
                     _NESTEROV_SGD_MISTAKES, NESTEROV, {"momentum_buffer": "b"}, "cnnlab.optim.SGD(nesterov=True)")

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
