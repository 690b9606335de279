"""Lesson 07's self-checks: the right answer passes, each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.optimizers import (ADAM, STEPS, _adam_simulate, _problem, check_adagrad_effective_lr,
                               check_adam_optimizer, check_nesterov_khan, check_nesterov_optimizer)
from cnnlab import Parameter
from cnnlab.optim import Adam, Optimizer


# --- Adam and Nesterov as Optimizer subclasses ---------------------------------------------------

def adam_class(moments=None, correct=None, step=None, swap=False, count=None):
    """An Adam optimizer written out by hand, with one part replaceable by a typical mistake."""

    class HandAdam(Optimizer):
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

        def _update(self, p, g, group, state):
            b1, b2 = group["betas"][::-1] if swap else group["betas"]
            m, v = state.get("exp_avg", np.zeros_like(p.data)), state.get("exp_avg_sq", np.zeros_like(p.data))
            m, v = (b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g) if moments is None else moments(m, v, g, b1, b2)
            state["exp_avg"], state["exp_avg_sq"] = m, v
            t = state["step"] if count is None else count(state)
            m_hat, v_hat = (m / (1 - b1**t), v / (1 - b2**t)) if correct is None else correct(m, v, t, b1, b2)
            eps = group["eps"]
            p.data -= (group["lr"] * m_hat / np.sqrt(v_hat + eps) if step is None
                       else step(group["lr"], m_hat, v_hat, eps, g))

    return HandAdam


def test_the_right_adam_passes(capsys):
    check_adam_optimizer(adam_class())
    assert "\u2713" in capsys.readouterr().out


def test_cnnlab_adam_and_the_hand_written_trajectory_agree_with_the_first_step_by_hand():
    theta0, grads = _problem()
    hand = _adam_simulate(theta0, grads)
    p = Parameter(np.array(theta0[0], dtype=float))
    adam = Adam([p], **ADAM)
    for t in range(STEPS):
        p.grad[...] = grads[t][0]
        adam.step()
        assert np.allclose(p.data, hand[t][0][0], rtol=1e-12, atol=0)
    g = grads[0][0]  # step 1: m_hat = g and v_hat = g**2 exactly
    assert np.isclose(hand[0][0][0], theta0[0] - 0.1 * g / np.sqrt(g * g + 1e-3), rtol=1e-12)


def own_counter(start, increment_after):
    def count(state):
        t = state.setdefault("t", start)
        if increment_after is not None:
            state["t"] += increment_after
        return t
    return count


def double_count(state):
    state["step"] += 1
    return state["step"]


@pytest.mark.parametrize("parts, message", [
    (dict(correct=lambda m, v, t, b1, b2: (m, v)), "skipped the bias correction"),
    (dict(correct=lambda m, v, t, b1, b2: (m / (1 - b1**t), v)), r"v_hat must be bias-corrected too"),
    (dict(correct=lambda m, v, t, b1, b2: (m, v / (1 - b2**t))), r"m_hat must be bias-corrected too"),
    (dict(count=own_counter(0, 1)), r"t is 0 at the first step.*1 - beta\*\*0 = 0"),
    (dict(count=own_counter(1, None)), "t stays 1"),
    (dict(count=own_counter(2, 1)), r"not t \+ 1"),
    (dict(count=double_count), "t grows by 2 per step"),
    (dict(step=lambda lr, m, v, eps, g: lr * m / (np.sqrt(v) + eps)), "eps is outside the square root"),
    (dict(step=lambda lr, m, v, eps, g: lr * m / np.sqrt(v)), "eps is missing.*0 / 0"),
    (dict(step=lambda lr, m, v, eps, g: lr * m / (v + eps)), "needs a square root"),
    (dict(step=lambda lr, m, v, eps, g: lr * g / np.sqrt(v + eps)), "uses the raw gradient"),
    (dict(step=lambda lr, m, v, eps, g: -lr * m / np.sqrt(v + eps)), "goes uphill"),
    (dict(swap=True), "beta1 and beta2 are swapped"),
    (dict(moments=lambda m, v, g, b1, b2: (b1 * m + g, b2 * v + g**2)), r"weighted by \(1 - beta\)"),
])
def test_adam_mistakes_are_named(parts, message):
    with pytest.raises(CheckFailed, match=message):
        check_adam_optimizer(adam_class(**parts))


class SharedAdam(Optimizer):
    """m, v and t kept on the optimizer: one set for all parameters."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.m = self.v = 0.0
        self.t = 0

    def _update(self, p, g, group, state):
        (b1, b2), self.t = group["betas"], self.t + 1
        self.m = b1 * self.m + (1 - b1) * g
        self.v = b2 * self.v + (1 - b2) * g**2
        state["exp_avg"], state["exp_avg_sq"] = self.m, self.v
        p.data -= group["lr"] * self.m / (1 - b1**self.t) / np.sqrt(self.v / (1 - b2**self.t) + group["eps"])


class PythonFloatCorrection(Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, group, state):
        (b1, b2), t = group["betas"], state["step"] - 1
        m = state["exp_avg"] = b1 * state.get("exp_avg", 0.0) + (1 - b1) * g
        v = state["exp_avg_sq"] = b2 * state.get("exp_avg_sq", 0.0) + (1 - b2) * g**2
        p.data -= group["lr"] * (1 / (1 - b1**t)) * m / np.sqrt(v * (1 / (1 - b2**t)) + group["eps"])


def test_adam_state_shared_between_parameters_is_named():
    with pytest.raises(CheckFailed, match="the state is shared between parameters"):
        check_adam_optimizer(SharedAdam)


def test_a_python_division_by_zero_is_one_line_with_a_hint():
    with pytest.raises(CheckFailed, match=r"raised ZeroDivisionError.*is t 0 at the first step"):
        check_adam_optimizer(PythonFloatCorrection)


def test_adam_state_under_other_names_placeholders_and_non_classes_are_reported():
    right = adam_class()

    class OtherNames(right):
        def _update(self, p, g, group, state):
            (b1, b2), t = group["betas"], state["step"]
            m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
            v = state["exp_avg_sq"] = b2 * state.get("exp_avg_sq", 0.0) + (1 - b2) * g * g
            p.data -= group["lr"] * m / (1 - b1**t) / np.sqrt(v / (1 - b2**t) + group["eps"])

    class Template(right):
        def _update(self, p, g, group, state):
            """Khan's eqs. 5.29-5.33 for one parameter."""
            ...

    class Local(right):
        def _update(self, p, g, group, state):
            data = p.data
            data = data - group["lr"] * g  # noqa: F841 - rebinding a local name: p is unchanged

    with pytest.raises(CheckFailed, match=r"the steps are right, but state\['exp_avg'\] of .* is missing"):
        check_adam_optimizer(OtherNames)
    with pytest.raises(CheckFailed, match=r"`Template._update` is still Ellipsis"):
        check_adam_optimizer(Template)
    with pytest.raises(CheckFailed, match="changed no parameter at step 1"):
        check_adam_optimizer(Local)
    with pytest.raises(CheckFailed, match="pass the class itself"):
        check_adam_optimizer(right([Parameter(np.zeros(2))]))


def test_mistakes_with_the_groups_are_named():
    class DecayAgain(nesterov_class()):
        def _update(self, p, g, group, state):
            super()._update(p, g + group["weight_decay"] * p.data, group, state)

    class DefaultRate(adam_class()):
        def _update(self, p, g, group, state):
            super()._update(p, g, {**group, "lr": self.defaults["lr"]}, state)

    with pytest.raises(CheckFailed, match="gets its L2 term twice"):
        check_nesterov_optimizer(DecayAgain)
    with pytest.raises(CheckFailed, match=r"read the rate of p's own group, group\['lr'\]"):
        check_adam_optimizer(DefaultRate)


def test_a_broken_optimizer_class_is_reported_in_one_line():
    class NoBetas(adam_class()):
        def __init__(self, params, lr=1e-3, eps=1e-8):
            super().__init__(params, lr=lr, eps=eps)

    class TextData(adam_class()):
        def _update(self, p, g, group, state):
            p.data = "theta"

    with pytest.raises(CheckFailed, match=r"NoBetas\(params, \.\.\.\) raised TypeError: .*betas"):
        check_adam_optimizer(NoBetas)
    with pytest.raises(CheckFailed, match=r"the data of the scalar parameter after step 1 should be a numeric array"):
        check_adam_optimizer(TextData)


def test_an_unnamed_adam_mistake_gives_the_first_wrong_entry():
    wrong = adam_class(step=lambda lr, m, v, eps, g: 1.5 * lr * m / np.sqrt(v + eps))
    with pytest.raises(CheckFailed, match=r"after step 1, the scalar parameter\[\] is .* but should be"):
        check_adam_optimizer(wrong)


def nesterov_class(buffer=lambda b, g, mu, lr: mu * b + g, step=lambda g, old, b, mu: g + mu * b, sign=-1.0):
    """SGD with Nesterov momentum written out by hand, with one part replaceable by a typical mistake."""

    class HandNesterov(Optimizer):
        def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

        def _update(self, p, g, group, state):
            mu, old = group["momentum"], state.get("momentum_buffer", np.zeros_like(p.data))
            b = state["momentum_buffer"] = buffer(old, g, mu, group["lr"])
            p.data += sign * group["lr"] * step(g, old, b, mu)

    return HandNesterov


class KhanLiteral(Optimizer):
    """Khan's eqs. 5.19-5.20 typed in literally: but g is the gradient at p, not at the look-ahead point."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _update(self, p, g, group, state):
        a = group["lr"] * g + group["momentum"] * state.get("momentum_buffer", 0.0)
        state["momentum_buffer"] = a
        p.data -= a


class SharedNesterov(Optimizer):
    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.b = 0.0

    def _update(self, p, g, group, state):
        self.b = group["momentum"] * self.b + g
        state["momentum_buffer"] = self.b
        p.data -= group["lr"] * (g + group["momentum"] * self.b)


def test_the_right_nesterov_optimizer_passes(capsys):
    check_nesterov_optimizer(nesterov_class())
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (nesterov_class(step=lambda g, old, b, mu: b), "that is classical momentum"),
    (KhanLiteral, "that is classical momentum"),
    (nesterov_class(step=lambda g, old, b, mu: g + mu * old), "classical momentum.*with the OLD b"),
    (nesterov_class(step=lambda g, old, b, mu: b + mu * b), "added to the gradient g, not to the buffer"),
    (nesterov_class(buffer=lambda b, g, mu, lr: b + g), "the buffer must decay"),
    (nesterov_class(buffer=lambda b, g, mu, lr: mu * b + (1 - mu) * g), r"not mu \* b \+ \(1 - mu\) \* g"),
    (nesterov_class(buffer=lambda b, g, mu, lr: g), "not kept between steps"),
    (nesterov_class(step=lambda g, old, b, mu: g), "plain gradient descent"),
    (nesterov_class(buffer=lambda b, g, mu, lr: mu * b + lr * g), "lr multiplies only the step"),
    (nesterov_class(sign=1.0), "goes uphill"),
    (SharedNesterov, "the state is shared between parameters"),
])
def test_nesterov_optimizer_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_nesterov_optimizer(fn)


def test_the_nesterov_buffer_must_be_where_cnnlab_keeps_it():
    class Elsewhere(Optimizer):
        def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

        def _update(self, p, g, group, state):
            b = state["velocity"] = group["momentum"] * state.get("velocity", 0.0) + g
            p.data -= group["lr"] * (g + group["momentum"] * b)

    with pytest.raises(CheckFailed, match=r"state\['momentum_buffer'\] of the scalar parameter after step 1 is "
                                          "missing"):
        check_nesterov_optimizer(Elsewhere)


# --- Nesterov in Khan's form ----------------------------------------------------------------------

def nesterov_with(look=lambda theta, a, gamma: theta - gamma * a, keep=True, sign=-1.0, rows=True):
    def nesterov_khan(grad, theta0, lr, gamma, steps):
        theta = np.array(theta0, dtype=float)
        a = np.zeros_like(theta)
        thetas, velocities = ([theta], [a]) if rows else ([], [])
        for _ in range(steps):
            a = lr * grad(look(theta, a, gamma)) + (gamma * a if keep else 0)
            theta = theta + sign * a
            thetas.append(theta)
            velocities.append(a)
        return np.array(thetas), np.array(velocities)

    return nesterov_khan


def test_the_right_nesterov_passes(capsys):
    check_nesterov_khan(nesterov_with())
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (nesterov_with(look=lambda theta, a, gamma: theta), "that is classical momentum"),
    (nesterov_with(look=lambda theta, a, gamma: theta + gamma * a), r"not theta \+ gamma \* a"),
    (nesterov_with(sign=1.0), "subtracts the step"),
    (nesterov_with(keep=False), r"keeps gamma \* a_\(t-1\)"),
    (nesterov_with(rows=False), r"`thetas` has 25 rows; it needs 26"),
])
def test_nesterov_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_nesterov_khan(fn)


def test_returning_the_look_ahead_points_is_recognized():
    right = nesterov_with()

    def look_ahead(grad, theta0, lr, gamma, steps):
        thetas, velocities = right(grad, theta0, lr, gamma, steps)
        return thetas - gamma * velocities, velocities

    with pytest.raises(CheckFailed, match="are the look-ahead points"):
        check_nesterov_khan(look_ahead)


def test_the_nesterov_template_reports_its_placeholders():
    def nesterov_khan(grad, theta0, lr, gamma, steps):  # the exercise cell as the student finds it
        theta = np.array(theta0, dtype=float)
        a = np.zeros_like(theta)
        thetas, velocities = [theta], [a]
        for _ in range(steps):
            a = ...
            theta = ...
            thetas.append(theta)
            velocities.append(a)
        return np.array(thetas), np.array(velocities)

    with pytest.raises(CheckFailed, match=r"still contains `\.\.\.`"):
        check_nesterov_khan(nesterov_khan)


def test_a_broken_nesterov_reports_its_error_in_one_line():
    def nesterov_khan(grad, theta0, lr, gamma, steps):
        raise KeyError("oops")

    with pytest.raises(CheckFailed, match=r"raised KeyError: 'oops'"):
        check_nesterov_khan(nesterov_khan)


# --- AdaGrad's effective learning rate ---------------------------------------------------------------

def test_the_right_adagrad_rate_passes(capsys):
    check_adagrad_effective_lr(lambda lr, g, t, eps: lr / np.sqrt(t * g**2 + eps))
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("fn, message", [
    (lambda lr, g, t, eps: lr / (t * g**2 + eps), "square ROOT"),
    (lambda lr, g, t, eps: lr / np.sqrt(g**2 + eps), "the sum runs over all t steps"),
    (lambda lr, g, t, eps: lr / np.sqrt((t - 1) * g**2 + eps), "off by one"),
    (lambda lr, g, t, eps: lr / (np.sqrt(t * g**2) + eps), "eps belongs inside the square root"),
    (lambda lr, g, t, eps: lr / np.sqrt(t * np.abs(g) + eps), "square the gradients before summing"),
    (lambda lr, g, t, eps: lr / np.sqrt((t * g) ** 2 + eps), r"not \(t g\)\*\*2"),
    (lambda lr, g, t, eps: 2 * lr / np.sqrt(t * g**2 + eps),
     r"with lr=0.1, t=1 and g=2 you give 0.1, but AdaGrad's effective rate is 0.05"),
    (lambda lr, g, t, eps: ..., r"is still Ellipsis"),
    (lambda lr, g, t, eps: lr, r"should have shape \(4,\), got \(\)"),
])
def test_adagrad_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_adagrad_effective_lr(fn)
