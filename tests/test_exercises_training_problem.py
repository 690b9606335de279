"""Lesson 01 self-checks: the right answers pass, each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.training_problem import (check_cross_entropy, check_sigmoid_derivative, check_softmax,
                                    check_wollowski_errors)


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


# --- exercise 3: cross-entropy, loss and gradient ------------------------------------------------

def good_cross_entropy(Z, y):
    n = len(y)
    m = Z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(Z - m).sum(axis=1))      # log sum_i exp(z_i), row by row
    P = np.exp(Z - lse[:, None])
    return np.mean(lse - Z[np.arange(n), y]), (P - np.eye(Z.shape[1])[y]) / n


def test_a_stable_cross_entropy_passes(capsys):
    check_cross_entropy(good_cross_entropy)
    assert "\u2713" in capsys.readouterr().out


def test_a_float32_cross_entropy_passes():
    check_cross_entropy(lambda Z, y: good_cross_entropy(Z.astype(np.float32), y))


def test_the_cross_entropy_reference_is_right_by_hand():
    # logits [1000, 0, -1000], label 2: log p_2 = -2000 - log(1 + e^-1000 + e^-2000) = -2000 in float64,
    # and p = [1, e^-1000, e^-2000] = [1, 0, 0], so dE/dz = p - onehot = [1, 0, -1]
    loss, dlogits = good_cross_entropy(np.array([[1000.0, 0.0, -1000.0]]), np.array([2]))
    assert loss == 2000.0 and np.array_equal(dlogits, [[1.0, 0.0, -1.0]])
    # one example, two classes: E = log(1 + e^(z_0 - z_1)) for label 1, dE/dz_1 = -1 / (1 + e^(z_1 - z_0))
    loss, dlogits = good_cross_entropy(np.array([[0.7, -1.6]]), np.array([1]))
    assert np.isclose(loss, np.log1p(np.exp(2.3))) and np.isclose(dlogits[0, 1], -1 / (1 + np.exp(-2.3)))


def naive_p(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def no_maximum(Z, y):
    e = np.exp(Z)
    P = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    return np.mean(np.log(e.sum(axis=1)) - Z[np.arange(n), y]), (P - np.eye(Z.shape[1])[y]) / n


def batch_maximum(Z, y):
    shifted = Z - Z.max()
    e = np.exp(shifted)
    n = len(y)
    return (np.mean(np.log(e.sum(axis=1)) - shifted[np.arange(n), y]),
            (e / e.sum(axis=1, keepdims=True) - np.eye(Z.shape[1])[y]) / n)


def log_of_softmax(Z, y):
    P = naive_p(Z)
    n = len(y)
    return -np.mean(np.log(P[np.arange(n), y])), (P - np.eye(Z.shape[1])[y]) / n


def with_grad(make_grad):
    """The right loss with a wrong gradient make_grad(P, T, n)."""
    def fn(Z, y):
        loss, _ = good_cross_entropy(Z, y)
        return loss, make_grad(naive_p(Z), np.eye(Z.shape[1])[y], len(y))
    return fn


def sum_not_mean(Z, y):
    loss, grad = good_cross_entropy(Z, y)
    return loss * len(y), grad * len(y)


def rows_indexed_by_labels(Z, y):
    P = naive_p(Z)
    loss = -np.mean(np.log(P[y]))
    P[y] -= 1
    return loss, P / len(y)


def gradient_rows_indexed_by_labels(Z, y):
    P = naive_p(Z)
    loss = good_cross_entropy(Z, y)[0]
    P[y] -= 1
    return loss, P / len(y)


def softmax_over_the_batch(Z, y):
    e = np.exp(Z - Z.max(axis=0, keepdims=True))
    P = e / e.sum(axis=0, keepdims=True)
    n = len(y)
    return -np.mean(np.log(P[np.arange(n), y])), (P - np.eye(Z.shape[1])[y]) / n


def in_place(Z, y):
    Z -= Z.max(axis=1, keepdims=True)
    return good_cross_entropy(Z, y)


@pytest.mark.parametrize("fn, message", [
    (lambda Z, y: (..., ...), r"`loss` \(the first value returned\) is still Ellipsis: replace the `\.\.\.`"),
    (lambda Z, y: (good_cross_entropy(Z, y)[0], ...), r"`dlogits` \(the second value returned\) is still Ellipsis"),
    (lambda Z, y: None, r"is still None \(did you forget `return`\?\)"),
    ("not a function", r"should be a function"),
    (lambda Z, y: good_cross_entropy(Z, y)[1], r"should return two things, `return loss, dlogits`, got ndarray"),
    (lambda Z, y: (*good_cross_entropy(Z, y), 0), r"got a tuple of 3"),
    (lambda Z, y: (np.ones(len(y)), good_cross_entropy(Z, y)[1]), r"shape \(8,\): these are the N per-example"),
    (lambda Z, y: (good_cross_entropy(Z, y)[0], good_cross_entropy(Z, y)[1].T),
     r"\(8, 7\), got \(7, 8\): .*transposed"),
    (in_place, r"changed its input in place"),
    (lambda Z, y: good_cross_entropy(Z - Z.max(axis=1), y), r"raised ValueError: .*broadcast.*keepdims=True"),
    (no_maximum, r"NaN or infinity at logits of \u00b11000 .* subtract each row's maximum"),
    (batch_maximum, r"maximum of the whole batch"),
    (log_of_softmax, r"infinite loss when the true class's logit is 1000 below .* log 0 = -inf"),
    (sum_not_mean, r"the loss is the sum over the N = 8 examples; E is their mean"),
    (with_grad(lambda P, T, n: P - T), r"left out the 1/N in the gradient"),
    (with_grad(lambda P, T, n: (P - T) / n**2), r"divided by N = 8 twice"),
    (with_grad(lambda P, T, n: P / n), r"returned the softmax: subtract the one-hot target"),
    (with_grad(lambda P, T, n: P), r"returned the softmax: subtract the one-hot target and divide by N"),
    (with_grad(lambda P, T, n: (T - P) / n), r"sign of the gradient is flipped"),
    (with_grad(lambda P, T, n: (P - T) / P.shape[1]), r"divided by the number of classes C = 7"),
    (softmax_over_the_batch, r"softmax over the batch \(axis 0\)"),
    (rows_indexed_by_labels, r"^p\[labels\] picks whole rows"),
    (gradient_rows_indexed_by_labels, r"^p\[labels\] -= 1 picks whole rows"),
    (lambda Z, y: (-good_cross_entropy(Z, y)[0], good_cross_entropy(Z, y)[1]), r"wrong sign"),
    (lambda Z, y: (np.mean(-Z[np.arange(len(y)), y]), good_cross_entropy(Z, y)[1]), r"used the logit z_y"),
    (lambda Z, y: (-np.mean(np.log(naive_p(Z)[:, y])), good_cross_entropy(Z, y)[1]),
     r"^p\[:, labels\] picks whole columns"),
    (lambda Z, y: (np.mean(np.log(np.exp(Z).sum(axis=1))), good_cross_entropy(Z, y)[1]), r"left out z_y"),
    (lambda Z, y: (-np.mean(np.eye(Z.shape[1])[y] * np.log(naive_p(Z))), good_cross_entropy(Z, y)[1]),
     r"averaged over the C = 7 classes as well"),
    (lambda Z, y: (good_cross_entropy(Z, y)[0] * 1.01, good_cross_entropy(Z, y)[1]),
     r"the loss is .*, but cnnlab's CrossEntropyLoss gives"),
    (with_grad(lambda P, T, n: (P - T) / n + 1e-3), r"`dlogits`\[0, 0\] is .* but should be"),
    (lambda Z, y: good_cross_entropy(Z, y) if len(y) > 1 else (..., ...), r"`loss` .* is still Ellipsis"),
    (lambda Z, y: good_cross_entropy(Z, y) if len(y) > 1 else good_cross_entropy(Z, 1 - y),
     r"^one example with two classes: the loss is"),
])
def test_cross_entropy_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_cross_entropy(fn)


def test_an_index_error_from_wrong_label_indexing_is_explained():
    # a label larger than N - 1 (here: label 1 of one example with two classes) makes p[labels] raise
    def rows_on_one_example(Z, y):
        if len(y) > 1:
            return good_cross_entropy(Z, y)
        P = naive_p(Z)
        P[y] -= 1
        return good_cross_entropy(Z, y)[0], P

    with pytest.raises(CheckFailed, match=r"raised IndexError: .*out of bounds.* \(p\[labels\] picks whole rows"):
        check_cross_entropy(rows_on_one_example)


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
