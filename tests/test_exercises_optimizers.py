"""Lesson 07's self-checks: the right answer passes, each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.optimizers import check_adagrad_effective_lr, check_adam_update, check_nesterov_khan


# --- Adam ---------------------------------------------------------------------------------------

def adam_with(moments=None, correct=None, step=None, swap=False):
    """An Adam step written out by hand, with one part replaceable by a typical mistake."""

    def adam_update(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        b1, b2 = betas[::-1] if swap else betas
        m, v = (b1 * m + (1 - b1) * grad, b2 * v + (1 - b2) * grad**2) if moments is None else moments(m, v, grad,
                                                                                                         b1, b2)
        m_hat, v_hat = (m / (1 - b1**t), v / (1 - b2**t)) if correct is None else correct(m, v, t, b1, b2)
        delta = lr * m_hat / np.sqrt(v_hat + eps) if step is None else step(lr, m_hat, v_hat, eps, grad)
        return theta - delta, m, v

    return adam_update


def test_the_right_adam_passes(capsys):
    check_adam_update(adam_with())
    assert "\u2713" in capsys.readouterr().out


def test_updating_m_and_v_in_place_also_passes(capsys):
    def adam_update(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        m *= betas[0]
        m += (1 - betas[0]) * grad
        v *= betas[1]
        v += (1 - betas[1]) * grad * grad
        theta -= lr * (m / (1 - betas[0] ** t)) / np.sqrt(v / (1 - betas[1] ** t) + eps)
        return theta, m, v

    check_adam_update(adam_update)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("parts, message", [
    (dict(correct=lambda m, v, t, b1, b2: (m, v)), "skipped the bias correction"),
    (dict(correct=lambda m, v, t, b1, b2: (m / (1 - b1**t), v)), r"v_hat must be bias-corrected too"),
    (dict(correct=lambda m, v, t, b1, b2: (m, v / (1 - b2**t))), r"m_hat must be bias-corrected too"),
    (dict(correct=lambda m, v, t, b1, b2: (m / (1 - b1 ** (t - 1)), v / (1 - b2 ** (t - 1)))),
     r"off by one.*you used t - 1"),
    (dict(correct=lambda m, v, t, b1, b2: (m / (1 - b1 ** (t + 1)), v / (1 - b2 ** (t + 1)))), r"not t \+ 1"),
    (dict(step=lambda lr, m, v, eps, g: lr * m / (np.sqrt(v) + eps)), "eps is outside the square root"),
    (dict(step=lambda lr, m, v, eps, g: lr * m / (v + eps)), "needs a square root"),
    (dict(step=lambda lr, m, v, eps, g: lr * g / np.sqrt(v + eps)), "uses the raw gradient"),
    (dict(step=lambda lr, m, v, eps, g: -lr * m / np.sqrt(v + eps)), "goes uphill"),
    (dict(swap=True), "beta1 and beta2 are swapped"),
    (dict(moments=lambda m, v, g, b1, b2: (b1 * m + g, b2 * v + g**2)), r"weighted by \(1 - beta\)"),
])
def test_adam_mistakes_are_named(parts, message):
    with pytest.raises(CheckFailed, match=message):
        check_adam_update(adam_with(**parts))


def test_adam_placeholders_and_shapes_are_reported():
    def template(theta, grad, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        m = v = theta = ...
        return theta, m, v

    with pytest.raises(CheckFailed, match=r"`theta` is still Ellipsis"):
        check_adam_update(template)
    with pytest.raises(CheckFailed, match=r"should return a tuple \(theta, m, v\), got ndarray"):
        check_adam_update(lambda theta, grad, m, v, t, lr, betas, eps: theta)
    with pytest.raises(CheckFailed, match=r"`m` should have shape \(3, 4\), got \(4, 3\)"):
        check_adam_update(lambda theta, grad, m, v, t, lr, betas, eps: (theta, m.T, v))
    with pytest.raises(CheckFailed, match="the returned m is unchanged"):
        check_adam_update(lambda theta, grad, m, v, t, lr, betas, eps: (theta - lr * grad, m, v + grad**2))


def test_an_unnamed_adam_mistake_gives_the_first_wrong_entry():
    wrong = adam_with(step=lambda lr, m, v, eps, g: 1.5 * lr * m / np.sqrt(v + eps))
    with pytest.raises(CheckFailed, match=r"after step t=1, theta\[0, 0\] is .* but should be"):
        check_adam_update(wrong)


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
