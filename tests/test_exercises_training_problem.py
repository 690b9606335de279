"""Lesson 01 self-checks: the right answers pass, each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.training_problem import (check_cross_entropy_grad, check_sigmoid_derivative,
                                                check_softmax, check_wollowski_errors)


# --- exercise 1: softmax ----------------------------------------------------------------------

def good_softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_a_stable_softmax_passes(capsys):
    check_softmax(good_softmax)
    assert "\u2713" in capsys.readouterr().out


def test_a_float32_softmax_passes():
    check_softmax(lambda Z: good_softmax(Z.astype(np.float32)))


@pytest.mark.parametrize("fn, message", [
    (lambda Z: None, r"is still None \(did you forget `return`\?\): replace the `\.\.\.`"),
    (lambda Z: ..., r"is still Ellipsis: replace the `\.\.\.`"),
    ("not a function", r"should be a function"),
    (lambda Z: np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True), r"overflows at logits of 1e4"),
    (lambda Z: (lambda e: e / e.sum(axis=1, keepdims=True))(np.exp(Z - Z.max())), r"maximum of the whole batch"),
    (lambda Z: (lambda e: e / e.sum(axis=0, keepdims=True))(np.exp(Z - Z.max(axis=0, keepdims=True))),
     r"columns .* sum to 1, not the rows"),
    (lambda Z: (lambda e: e / e.sum())(np.exp(Z - Z.max(axis=1, keepdims=True))), r"whole of .* sums to 1"),
    (lambda Z: np.exp(Z - Z.max(axis=1, keepdims=True)), r"row 0 sums to"),
    (lambda Z: good_softmax(Z).sum(axis=1), r"shape of Z, \(4, 5\), got \(4,\).*reduced over the classes"),
    (lambda Z: np.exp(Z - Z.max(axis=1)), r"raised ValueError.*keepdims=True"),
    (lambda Z: good_softmax(Z / 2), r"is .* but should be"),
])
def test_softmax_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_softmax(fn)


def test_softmax_that_changes_its_input_is_caught():
    def in_place(Z):
        Z -= Z.max(axis=1, keepdims=True)
        e = np.exp(Z)
        return e / e.sum(axis=1, keepdims=True)

    with pytest.raises(CheckFailed, match="changed its input Z in place"):
        check_softmax(in_place)


def test_softmax_check_names_the_function():
    def my_softmax(Z):
        return None

    with pytest.raises(CheckFailed, match=r"`my_softmax\(\.\.\.\)`"):
        check_softmax(my_softmax)


# --- exercise 2: Wollowski's squared errors -----------------------------------------------------

def test_wollowski_errors_worked_by_hand_pass(capsys):
    # E1 = 1/2 (0.2^2 + 0.4^2 + 0.9^2 + 0.3^2) = 1/2 (0.04 + 0.16 + 0.81 + 0.09) = 0.55
    # E2 = 1/2 (0.1^2 + 0.1^2 + 0.3^2 + 0.1^2) = 1/2 (0.01 + 0.01 + 0.09 + 0.01) = 0.06
    check_wollowski_errors(0.55, 0.06)
    assert "E1 = 0.550" in capsys.readouterr().out
    check_wollowski_errors(np.float32(0.55), np.array(0.06))  # numpy scalars and 0-d arrays are numbers


@pytest.mark.parametrize("E1, E2, message", [
    (..., 0.06, r"`E1` is still Ellipsis: replace the `\.\.\.`"),
    (0.55, None, r"`E2` is still None: replace"),
    (np.array([0.02, 0.08, 0.405, 0.045]), 0.06, r"one number, got an array of shape \(4,\)"),
    (0.06, 0.55, r"swapped"),
    (1.1, 0.12, r"left out the 1/2"),
    (0.1375, 0.015, r"averaged over the 4 classes; Wollowski sums"),
    (0.275, 0.03, r"averaged over the 4 classes \(and left out the 1/2\)"),
    (0.0, 0.0, r"without squaring, and the differences cancel"),
    (0.9, 0.3, r"absolute differences"),
    (1.8, 0.6, r"without squaring \(and left out the 1/2\)"),
    (np.sqrt(1.1), np.sqrt(0.12), r"length \|\|t - y\|\|"),
    (0.55, 0.07, r"`E2` is 0.07 but should be 0.06"),
])
def test_wollowski_mistakes_are_named(E1, E2, message):
    with pytest.raises(CheckFailed, match=message):
        check_wollowski_errors(E1, E2)


# --- exercise 3: the cross-entropy gradient -----------------------------------------------------

def batch():
    rng = np.random.default_rng(7)
    Z = rng.normal(size=(6, 4))
    y = np.array([0, 3, 1, 1, 2, 0])
    # independent reference: softmax by its definition, one-hot by indexing
    p = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    t = np.eye(4)[y]
    return Z, y, p, t


def test_the_cross_entropy_gradient_passes(capsys):
    Z, y, p, t = batch()
    check_cross_entropy_grad((p - t) / 6, Z, y)
    assert "\u2713" in capsys.readouterr().out
    check_cross_entropy_grad(((p - t) / 6).astype(np.float32), Z, y)


def test_the_cross_entropy_gradient_agrees_with_finite_differences():
    # the check's reference is the gradient of E = mean_n -log p_{n, y_n}: verify it independently
    Z, y, p, t = batch()

    def E(Z):
        return np.mean(-np.log(np.exp(Z[np.arange(6), y]) / np.exp(Z).sum(axis=1)))

    numeric = np.zeros_like(Z)
    for idx in np.ndindex(Z.shape):
        dz = np.zeros_like(Z)
        dz[idx] = 1e-6
        numeric[idx] = (E(Z + dz) - E(Z - dz)) / 2e-6
    check_cross_entropy_grad(numeric, Z, y)


@pytest.mark.parametrize("make, message", [
    (lambda Z, p, t: ..., r"`dZ` is still Ellipsis: replace the `\.\.\.`"),
    (lambda Z, p, t: p - t, r"left out the 1/N.*N = 6"),
    (lambda Z, p, t: (t - p) / 6, r"sign is flipped"),
    (lambda Z, p, t: p / 6, r"forgot to subtract the one-hot"),
    (lambda Z, p, t: (Z - t) / 6, r"used the logits Z"),
    (lambda Z, p, t: (p - t) / 4, r"number of classes C = 4"),
    (lambda Z, p, t: ((p - t) / 6).sum(axis=1), r"one number per example"),
    (lambda Z, p, t: ((p - t) / 6).T, r"transposed"),
    (lambda Z, p, t: (p - np.roll(t, 1, axis=1)) / 6, r"`dZ`\[0, 0\] is .* but should be"),
])
def test_cross_entropy_gradient_mistakes_are_named(make, message):
    Z, y, p, t = batch()
    with pytest.raises(CheckFailed, match=message):
        check_cross_entropy_grad(make(Z, p, t), Z, y)


# --- exercise 4: the sigmoid's derivative --------------------------------------------------------

def good_derivative(a):
    s = 1 / (1 + np.exp(-np.clip(a, -500, 500)))
    return s * (1 - s)


def test_the_sigmoid_derivative_passes(capsys):
    check_sigmoid_derivative(good_derivative)
    assert "largest value 0.25 at a = 0" in capsys.readouterr().out


def test_the_sigmoid_derivative_reference_matches_finite_differences():
    a = np.linspace(-8, 8, 33)
    numeric = (1 / (1 + np.exp(-(a + 1e-6))) - 1 / (1 + np.exp(-(a - 1e-6)))) / 2e-6
    check_sigmoid_derivative(lambda x: numeric if x.shape == a.shape else good_derivative(x))


def sig(a):
    return 1 / (1 + np.exp(-np.clip(a, -500, 500)))


@pytest.mark.parametrize("fn, message", [
    (lambda a: None, r"is still None \(did you forget `return`\?\)"),
    (sig, r"returned \u03c3\(a\) itself"),
    (lambda a: a * (1 - a), r"applied s\(1 \u2212 s\) to the input a"),
    (lambda a: 1 - sig(a), r"returned 1 \u2212 \u03c3\(a\)"),
    (lambda a: sig(a) * (1 + sig(a)), r"not \(1 \+ \u03c3\(a\)\)"),
    (lambda a: np.exp(-a) / (1 + np.exp(-a)) ** 2, r"NaN or infinity at a = \u00b1800"),
    (lambda a: good_derivative(a)[:-1], r"shape of a, \(33,\), got \(32,\)"),
    (lambda a: 2 * good_derivative(a), r"is .* but should be"),
])
def test_sigmoid_derivative_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_sigmoid_derivative(fn)
