"""Self-checks of lesson 08: the right answers pass, every named mistake is recognised."""
import math

import numpy as np
import pytest

from checks import CheckFailed
from checks.initialization import check_leaky_he_variance, check_lsuv_step, check_xavier_uniform_bound


# --- exercise 1: Xavier's uniform bound ------------------------------------------------------------------------
def xavier_right(shape):
    rf = math.prod(shape[2:])
    return math.sqrt(6 / ((shape[0] + shape[1]) * rf))


def test_xavier_right_answer_passes(capsys):
    check_xavier_uniform_bound(xavier_right)
    assert "✓" in capsys.readouterr().out


def test_xavier_right_answer_by_hand_for_one_shape():
    # (16, 3, 5, 5): fan_in = 75, fan_out = 400, b = sqrt(6/475)
    assert xavier_right((16, 3, 5, 5)) == pytest.approx(0.112390, abs=1e-6)


@pytest.mark.parametrize("wrong, message", [
    (lambda s: math.sqrt(6 / (s[0] + s[1])), "ignore the kernel"),
    (lambda s: math.sqrt(6 / ((s[0] + s[1]) * (s[2] if len(s) > 2 else 1))), r"kh·kw = 25, not kh = 5"),
    (lambda s: xavier_right(s) / math.sqrt(3), "standard deviation"),
    (lambda s: xavier_right(s) ** 2, "square root is missing"),
    (lambda s: xavier_right(s) ** 2 / 3, "that is the variance"),
    (lambda s: math.sqrt(6 / (s[1] * math.prod(s[2:]))), "only fan_in"),
    (lambda s: math.sqrt(3 / (s[1] * math.prod(s[2:]))), "LeCun"),
    (lambda s: 0.1, r"should be 0.0\d+ \(fan_in = 784, fan_out = 10\)"),
    (lambda s: ..., "still returns `...`"),
    (lambda s: None, "forget `return`"),
    (lambda s: [1, 2], "one number"),
    (lambda s: s[4], "raised IndexError"),
    (..., "still Ellipsis"),
    (0.5, "should be a function"),
])
def test_xavier_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_xavier_uniform_bound(wrong)


# --- exercise 2: one LSUV step -----------------------------------------------------------------------------------
def test_lsuv_right_answer_passes_and_makes_a_linear_output_unit_variance(capsys):
    def lsuv_step(weight, output):
        return weight / np.sqrt(np.var(output))

    check_lsuv_step(lsuv_step)
    assert "✓" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    W, x = rng.standard_normal((5, 7)), rng.standard_normal((100, 7))
    assert np.var(x @ lsuv_step(W, x @ W.T).T) == pytest.approx(1.0)


def test_lsuv_in_place_answer_passes():
    def lsuv_step(weight, output):
        weight /= output.std()
        return weight

    check_lsuv_step(lsuv_step)


@pytest.mark.parametrize("wrong, message", [
    (lambda w, o: w / np.var(o), "divided by the variance"),
    (lambda w, o: w * np.std(o), "multiplied"),
    (lambda w, o: w / o.std(axis=0)[:, None], "its own variance"),
    (lambda w, o: w / np.sqrt(np.mean(o ** 2)), "root mean square"),
    (lambda w, o: w / w.std(), "weight's std"),
    (lambda w, o: w / o.std(ddof=1), "ddof=1"),
    (lambda w, o: o / o.std(), r"weight's shape \(6, 4\).*not the output"),
    (lambda w, o: w / 2, r"lsuv_step\(weight, output\)`\[0, 0\] is"),
    (lambda w, o: None, "returned None"),
    (lambda w, o: ..., "still returns `...`"),
    (lambda w, o: "w", "numeric array"),
    (lambda w, o: w @ o, "raised ValueError"),
    (None, "still None"),
])
def test_lsuv_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_lsuv_step(wrong)


# --- exercise 3: He's variance for a leaky ReLU -------------------------------------------------------------------
def test_leaky_he_right_answer_passes(capsys):
    check_leaky_he_variance(lambda a, fan_in: 2 / ((1 + a ** 2) * fan_in))
    assert "✓" in capsys.readouterr().out


def test_leaky_he_by_monte_carlo():
    # E[f(z)^2] for a leaky ReLU with slope a on z ~ N(0, 1) is (1 + a^2)/2: the formula's reason
    a = 0.3
    z = np.random.default_rng(1).standard_normal(1_000_000)
    assert np.mean(np.where(z > 0, z, a * z) ** 2) == pytest.approx((1 + a * a) / 2, rel=5e-3)


@pytest.mark.parametrize("wrong, message", [
    (lambda a, n: 2 / n, "slope a is ignored"),
    (lambda a, n: 2 / ((1 + a) * n), "1 \\+ a², not 1 \\+ a"),
    (lambda a, n: math.sqrt(2 / ((1 + a * a) * n)), "standard deviation"),
    (lambda a, n: 1 / n, r"0\.0(2|1)\b.*LeCun|LeCun"),
    (lambda a, n: 2 / ((1 - a * a) * n), "not 1 - a²"),
    (lambda a, n: 3 / n, r"should be 0.0384615"),
    (lambda a, n: ..., "still returns `...`"),
])
def test_leaky_he_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_leaky_he_variance(wrong)
