"""Lesson 09's self-checks: the right answers pass, each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.regularization import check_inverted_dropout, check_max_norm, check_penalty_grads


# --- exercise 1: penalty gradients --------------------------------------------------------------------

def l2_right(theta, lam):
    return lam * theta


def l1_right(theta, lam):
    return lam * np.sign(theta)


def add_right(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.grad += grad_fn(p.data, lam)


def test_the_right_penalty_gradients_pass(capsys):
    check_penalty_grads(l2_right, l1_right, add_right)
    assert "\u2713" in capsys.readouterr().out


def test_assigning_a_new_grad_array_also_passes(capsys):
    def add(net, lam, grad_fn):
        for name, p in net.named_parameters():
            if "weight" in name:
                p.grad = p.grad + grad_fn(p.data, lam)

    check_penalty_grads(l2_right, l1_right, add)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("l2, message", [
    (lambda t, lam: ..., r"l2_grad.*still Ellipsis"),
    (lambda t, lam: None, r"still None \(did you forget `return`\?\)"),
    (lambda t, lam: 2 * lam * t, r"twice too large: the 1/2 in Omega"),
    (lambda t, lam: lam * t / 2, r"half the right value: d/dtheta of 1/2 theta\^2 is theta"),
    (lambda t, lam: lam / 2 * t ** 2, r"penalty's terms"),
    (lambda t, lam: t, r"forgot the strength lam"),
    (lambda t, lam: lam * np.sign(t), r"the L1 gradient"),
    (lambda t, lam: lam * t[:, :2], r"shape of its input, \(3, 4\), got \(3, 2\)"),
    (lambda t, lam: lam * t + 0.01, r"`l2_grad\(theta, lam\)`\[0, 0\] is .* but should be"),
    (lambda t, lam: 1 / 0, r"l2_grad\(theta, lam\) raised ZeroDivisionError"),
])
def test_l2_mistakes_are_named(l2, message):
    with pytest.raises(CheckFailed, match=message):
        check_penalty_grads(l2, l1_right, add_right)


def test_np_errstate_is_not_needed_for_the_nan_mistake():
    def l1_divide(t, lam):
        with np.errstate(invalid="ignore", divide="ignore"):
            return lam * t / np.abs(t)

    with pytest.raises(CheckFailed, match=r"NaN where theta == 0.*np.sign"):
        check_penalty_grads(l2_right, l1_divide, add_right)


@pytest.mark.parametrize("l1, message", [
    (lambda t, lam: lam * np.where(t >= 0, 1.0, -1.0), r"\+0.3 where theta == 0 \(the sign at 0\)"),
    (lambda t, lam: lam * np.where(t > 0, 1.0, -1.0), r"-0.3 where theta == 0 \(the sign at 0\)"),
    (lambda t, lam: lam / 2 * np.sign(t), r"half the right value: Veta's slide"),
    (lambda t, lam: 2 * lam * np.sign(t), r"twice too large"),
    (lambda t, lam: lam * np.abs(t), r"lam \* \|theta\|, the penalty's terms"),
    (lambda t, lam: np.sign(t), r"forgot the strength lam"),
    (lambda t, lam: lam * t, r"the L2 gradient"),
])
def test_l1_mistakes_are_named(l1, message):
    with pytest.raises(CheckFailed, match=message):
        check_penalty_grads(l2_right, l1, add_right)


def add_to_everything(net, lam, grad_fn):
    for p in net.parameters():
        p.grad += grad_fn(p.data, lam)


def add_overwrite(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.grad = grad_fn(p.data, lam)


def add_to_a_copy(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            g = p.grad.copy()
            g += grad_fn(p.data, lam)


def add_to_data(net, lam, grad_fn):
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.data -= 0.1 * grad_fn(p.data, lam)


def add_twice(net, lam, grad_fn):
    add_right(net, lam, grad_fn)
    add_right(net, lam, grad_fn)


@pytest.mark.parametrize("add, message", [
    (add_to_everything, r"0.bias.grad was changed: the penalty applies to the weights only"),
    (add_overwrite, r"0.weight.grad holds only the penalty's gradient.*add to it"),
    (add_to_a_copy, r"0.weight.grad is unchanged"),
    (add_to_data, r"changed 0.weight's values: it must only add to p.grad"),
    (add_twice, r"data gradient plus lam \* weight"),
])
def test_adding_mistakes_are_named(add, message):
    with pytest.raises(CheckFailed, match=message):
        check_penalty_grads(l2_right, l1_right, add)


# --- exercise 2: inverted dropout ---------------------------------------------------------------------

def dropout_right(x, mask, p_keep):
    return x * mask / p_keep


def mean_right(x, p_keep, n_masks, rng):
    total = np.zeros_like(x)
    for _ in range(n_masks):
        total += dropout_right(x, rng.random(x.shape) < p_keep, p_keep)
    return total / n_masks


def test_the_right_inverted_dropout_passes(capsys):
    check_inverted_dropout(dropout_right, mean_right)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("forward, message", [
    (lambda x, m, p: ..., r"still Ellipsis"),
    (lambda x, m, p: x * m, r"classic dropout \(Tomasi\)"),
    (lambda x, m, p: x * m * p, r"classic TEST-time scaling"),
    (lambda x, m, p: x * m / (1 - p), r"divided by the drop probability"),
    (lambda x, m, p: x * ~m / p, r"where the mask is False"),
    (lambda x, m, p: x / p, r"mask is not applied"),
    (lambda x, m, p: (x * m / p).T, r"shape of its input, \(4, 6\), got \(6, 4\)"),
])
def test_dropout_forward_mistakes_are_named(forward, message):
    with pytest.raises(CheckFailed, match=message):
        check_inverted_dropout(forward, mean_right)


def mean_one_mask(x, p_keep, n_masks, rng):
    mask = rng.random(x.shape) < p_keep
    return sum(dropout_right(x, mask, p_keep) for _ in range(n_masks)) / n_masks


def mean_drop_probability(x, p_keep, n_masks, rng):
    return sum(dropout_right(x, rng.random(x.shape) > p_keep, p_keep) for _ in range(n_masks)) / n_masks


def mean_global_state(x, p_keep, n_masks, rng):
    return sum(dropout_right(x, np.random.default_rng().random(x.shape) < p_keep, p_keep)
               for _ in range(n_masks)) / n_masks


def mean_half(x, p_keep, n_masks, rng):
    return mean_right(x, p_keep, n_masks, rng) / 2


def mean_classic(x, p_keep, n_masks, rng):
    return sum(x * (rng.random(x.shape) < p_keep) for _ in range(n_masks)) / n_masks


@pytest.mark.parametrize("mean, message", [
    (lambda x, p, n, rng: x, r"returned x exactly"),
    (mean_one_mask, r"a single mask: draw a fresh mask inside the loop"),
    (mean_drop_probability, r"keep a unit with probability 1 - p_keep"),
    (mean_global_state, r"same seed gave different averages.*from `rng`"),
    (mean_classic, r"the average is p_keep \* x, the expectation of CLASSIC dropout"),
    (mean_half, r"should be close to x .* typically mean / x = 0.50"),
])
def test_mean_over_masks_mistakes_are_named(mean, message):
    with pytest.raises(CheckFailed, match=message):
        check_inverted_dropout(dropout_right, mean)


# --- exercise 3: max-norm -------------------------------------------------------------------------------

def max_norm_right(W, c):
    norms = np.linalg.norm(W, axis=1, keepdims=True)
    return W * np.minimum(1.0, c / norms)


def test_the_right_max_norm_passes(capsys):
    check_max_norm(max_norm_right)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("project, message", [
    (lambda W, c: ..., r"still Ellipsis"),
    (lambda W, c: W * c / np.linalg.norm(W, axis=1, keepdims=True), r"also the short ones"),
    (lambda W, c: W * np.minimum(1, c / np.linalg.norm(W, axis=0, keepdims=True)), r"norms of the columns"),
    (lambda W, c: np.clip(W, -c, c), r"np.clip bounds each entry"),
    (lambda W, c: W * min(1, c / np.linalg.norm(W)), r"whole matrix by one factor"),
    (lambda W, c: W, r"row 0 still has norm .* > c = 1.5"),
    (lambda W, c: 0.5 * max_norm_right(W, c), r"`max_norm_\(W, c\)`\[0, 0\] is .* but should be"),
])
def test_max_norm_mistakes_are_named(project, message):
    with pytest.raises(CheckFailed, match=message):
        check_max_norm(project)
