"""Self-checks for lesson 01 (the training problem).

- `check_softmax(fn)`: a stable softmax for a batch of logits (N, C).
- `check_wollowski_errors(E1, E2)`: Wollowski's two squared errors against the target [0, 0, 1, 0].
- `check_cross_entropy_grad(dZ, Z, y)`: the mean cross-entropy's gradient (p - onehot(y)) / N.
- `check_sigmoid_derivative(fn)`: sigma'(a) = sigma(a) (1 - sigma(a)).

Every check recognises the typical mistakes by name and says in one line what to change.
"""
from __future__ import annotations

import warnings
from functools import partial

import numpy as np

from cnnlab.losses import one_hot, softmax
from . import CheckFailed, check_array, name_mistake, passed, placeholder, run_student, student_array

__all__ = ["check_softmax", "check_wollowski_errors", "check_cross_entropy_grad", "check_sigmoid_derivative",
           "WOLLOWSKI_TARGET", "WOLLOWSKI_OUTPUT_1", "WOLLOWSKI_OUTPUT_2"]

WOLLOWSKI_TARGET = np.array([0.0, 0.0, 1.0, 0.0])
WOLLOWSKI_OUTPUT_1 = np.array([0.2, 0.4, 0.1, 0.3])
WOLLOWSKI_OUTPUT_2 = np.array([0.1, 0.1, 0.7, 0.1])


def _call(fn, name: str, *args):
    """fn(*args) with NumPy's overflow warnings silenced: overflow shows up as inf/NaN, which we name."""
    if not callable(fn):
        raise CheckFailed(f"`{name}` should be a function, got {type(fn).__name__}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = run_student(lambda: fn(*args), f"`{name}`", quiet=True, hint=(
            ("broadcast",), " (subtract the row maxima with keepdims=True so that (N, 1) broadcasts against (N, C))"))
    return student_array(f"`{name}(...)`", out)


# --- exercise 1: a stable softmax --------------------------------------------------------------

def check_softmax(fn) -> None:
    """`fn(Z)` must return softmax of every row of Z (N, C): rows sum to 1, no overflow at +-1e4."""
    name = getattr(fn, "__name__", "softmax")
    Z = np.random.default_rng(1).normal(0, 2, size=(4, 5))
    original = Z.copy()
    out = _call(fn, name, Z)
    if not np.array_equal(Z, original):
        raise CheckFailed(f"`{name}` changed its input Z in place (e.g. `Z -= Z.max(...)`): compute "
                          "`Z - Z.max(axis=1, keepdims=True)` into a new array instead")
    if out.shape != Z.shape:
        hint = " (you reduced over the classes: return the whole array)" if out.shape in ((4,), (4, 1)) else ""
        raise CheckFailed(f"`{name}(Z)` should have the shape of Z, {Z.shape}, got {out.shape}{hint}")
    if not np.all(np.isfinite(out)):
        raise CheckFailed(f"`{name}(Z)` contains NaN or infinity for ordinary logits (|z| < 7)")
    rows = out.sum(axis=1)
    if not np.allclose(rows, 1):
        if np.allclose(out.sum(axis=0), 1):
            raise CheckFailed(f"the columns of `{name}(Z)` sum to 1, not the rows: normalise each row "
                              "(sum over axis=1, keepdims=True)")
        if np.isclose(out.sum(), 1):
            raise CheckFailed(f"the whole of `{name}(Z)` sums to 1: divide each row by its own sum "
                              "(axis=1, keepdims=True), not by the sum over the batch")
        raise CheckFailed(f"each row of `{name}(Z)` must sum to 1, but row 0 sums to {rows[0]:.6g}")
    check_array(f"{name}(Z)", out, softmax(Z, axis=1))
    shift = np.array([[30.0], [-20.0], [5.0], [0.5]])
    check_array(f"{name}(Z + c) (a constant c added to each row)", _call(fn, name, Z + shift), out)

    big = np.array([[1e4, 0.0, -1e4, 1e4 - 1.0, 5.0],
                    [-1e4, -1e4 + 2.0, -1e4 + 1.0, -1e4, -1e4 - 3.0]])
    out_big = _call(fn, name, big)
    expected_big = softmax(big, axis=1)
    if out_big.shape != big.shape or not np.all(np.isfinite(out_big)):
        one_by_one = [_call(fn, name, big[i:i + 1]) for i in range(len(big))]
        if all(row.shape == (1, 5) and np.allclose(row, expected_big[i:i + 1], atol=1e-9)
               for i, row in enumerate(one_by_one)):
            raise CheckFailed(f"`{name}` fails on a batch whose rows have very different sizes: you subtracted "
                              "the maximum of the whole batch; subtract each row's own maximum "
                              "(Z.max(axis=1, keepdims=True))")
        raise CheckFailed(f"`{name}` overflows at logits of 1e4 (exp(1e4) is inf, inf/inf is NaN): subtract "
                          "each row's maximum before np.exp; the softmax does not change")
    check_array(f"{name}(Z) at logits of \u00b11e4", out_big, expected_big, atol=1e-9)
    passed(f"{name}: rows sum to 1, a shift of a row changes nothing, and logits of \u00b11e4 are fine")


# --- exercise 2: Wollowski's two squared errors ------------------------------------------------

def _wollowski_variants(y):
    d = WOLLOWSKI_TARGET - y
    return {
        "right": 0.5 * np.sum(d**2),
        "you left out the 1/2 of E = sum 1/2 (t - y)^2": np.sum(d**2),
        "you averaged over the 4 classes; Wollowski sums over them": 0.5 * np.mean(d**2),
        "you averaged over the 4 classes (and left out the 1/2); Wollowski sums 1/2 (t - y)^2": np.mean(d**2),
        "you summed absolute differences |t - y|; square them": 0.5 * np.sum(np.abs(d)),
        "you summed |t - y| without squaring (and left out the 1/2)": np.sum(np.abs(d)),
        "you took the length ||t - y||, a square root: E is the squared length, halved": np.sqrt(np.sum(d**2)),
    }


def check_wollowski_errors(E1, E2) -> None:
    """E1, E2: 1/2 sum_k (t_k - y_k)^2 for Wollowski's output 1 and output 2 against t = [0, 0, 1, 0]."""
    for name, value in (("E1", E1), ("E2", E2)):
        placeholder(f"`{name}`", value, returned=False)
        if np.ndim(value) != 0:
            raise CheckFailed(f"`{name}` should be one number, got an array of shape {np.shape(value)}: "
                              "sum the squared differences over the 4 classes")
    got = (float(E1), float(E2))
    v1, v2 = _wollowski_variants(WOLLOWSKI_OUTPUT_1), _wollowski_variants(WOLLOWSKI_OUTPUT_2)
    right = (v1["right"], v2["right"])
    if np.allclose(got, right, atol=1e-9):
        passed(f"E1 = {right[0]:.3f} for output 1, E2 = {right[1]:.3f} for output 2: output 2, which puts "
               "0.7 on the boat, is much closer to the target")
        return
    if np.allclose(got, right[::-1], atol=1e-9):
        raise CheckFailed("E1 and E2 are swapped: E1 belongs to output 1 = [0.2, 0.4, 0.1, 0.3]")
    if np.allclose(got, 0, atol=1e-9):
        raise CheckFailed("E1 = E2 = 0: you summed t - y without squaring, and the differences cancel "
                          "(both vectors sum to 1)")
    for mistake in v1:
        if mistake != "right" and np.allclose(got, (v1[mistake], v2[mistake]), atol=1e-9):
            raise CheckFailed(f"E1 = {got[0]:.4g}, E2 = {got[1]:.4g}: {mistake}")
    for name, g, r in (("E1", got[0], right[0]), ("E2", got[1], right[1])):
        if not np.isclose(g, r, atol=1e-9):
            raise CheckFailed(f"`{name}` is {g:.6g} but should be {r:.6g}")


# --- exercise 3: the cross-entropy gradient for a batch ----------------------------------------

def check_cross_entropy_grad(dZ, Z, y) -> None:
    """dZ must be dE/dZ of the mean cross-entropy over the batch: (softmax(Z) - onehot(y)) / N, shape (N, C)."""
    placeholder("`dZ`", dZ, returned=False)
    Z = np.asarray(Z, dtype=np.float64)
    n, c = Z.shape
    p, t = softmax(Z, axis=1), one_hot(y, c, dtype=np.float64)
    expected = (p - t) / n
    got = np.asarray(dZ, dtype=float)
    if got.shape == (n,):
        raise CheckFailed(f"`dZ` has one number per example, shape {got.shape}: the gradient has one entry per "
                          f"logit, shape {(n, c)}")
    if got.shape == (c, n) and n != c:
        raise CheckFailed(f"`dZ` has shape {got.shape}: it is transposed; it must match Z, {(n, c)}")
    if got.shape == expected.shape and np.all(np.isfinite(got)):
        mistakes = [
            ((p - t), f"you left out the 1/N: E is the mean over the N = {n} examples (Tomasi's eq. (1)), "
                      "so every example's p - onehot is divided by N"),
            (-expected, "the sign is flipped: the gradient is (p - onehot(y)) / N, not (onehot(y) - p) / N"),
            (p / n, "you forgot to subtract the one-hot target: dE/dz = (p - onehot(y)) / N"),
            ((Z - t) / n, "you used the logits Z where the probabilities p = softmax(Z) belong"),
            ((p - t) / c, f"you divided by the number of classes C = {c}; divide by the number of examples "
                          f"N = {n}"),
        ]
        for wrong, message in mistakes:
            if np.allclose(got, wrong, rtol=1e-5, atol=1e-9) and not np.allclose(wrong, expected):
                raise CheckFailed(message)
    check_array("dZ", got, expected, rtol=1e-4, atol=1e-7)
    passed(f"dZ = (p \u2212 onehot(y)) / N for all {n}\u00d7{c} entries; each row sums to 0")


# --- exercise 4 (optional): the sigmoid's derivative -------------------------------------------

def _sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1, e) / (1 + e)


def check_sigmoid_derivative(fn) -> None:
    """`fn(a)` must return sigma'(a) = sigma(a) (1 - sigma(a)) elementwise, also at a = +-800."""
    name = getattr(fn, "__name__", "sigmoid_derivative")
    a = np.linspace(-8, 8, 33)
    s = _sigmoid(a)
    expected = s * (1 - s)
    got = _call(fn, name, a)
    if got.shape != a.shape:
        raise CheckFailed(f"`{name}(a)` should have the shape of a, {a.shape}, got {got.shape}")
    if np.all(np.isfinite(got)):
        mistakes = [
            (s, "you returned \u03c3(a) itself, not its derivative \u03c3(a)(1 \u2212 \u03c3(a))"),
            (a * (1 - a), "you applied s(1 \u2212 s) to the input a: s is the output \u03c3(a)"),
            (1 - s, "you returned 1 \u2212 \u03c3(a): multiply by \u03c3(a) as well"),
            (s * (1 + s), "the second factor is (1 \u2212 \u03c3(a)), not (1 + \u03c3(a))"),
        ]
        name_mistake(got, mistakes, partial(np.allclose, rtol=1e-6, atol=1e-9))
    check_array(f"{name}(a)", got, expected, rtol=1e-6, atol=1e-9)
    far = np.array([-800.0, -50.0, 50.0, 800.0])
    got_far = _call(fn, name, far)
    if got_far.shape != far.shape or not np.all(np.isfinite(got_far)):
        raise CheckFailed(f"`{name}` gives NaN or infinity at a = \u00b1800 (exp overflows, inf/inf is NaN): "
                          "compute s = \u03c3(a) first, then s * (1 - s)")
    far_s = _sigmoid(far)
    check_array(f"{name}(a) at a = \u00b150, \u00b1800", got_far, far_s * (1 - far_s), atol=1e-12)
    passed(f"{name}(a) = \u03c3(a)(1 \u2212 \u03c3(a)): largest value {expected.max():.2f} at a = 0, "
           "almost 0 for |a| > 8")
