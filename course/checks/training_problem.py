"""Self-checks for lesson 01 (the training problem).

- `check_softmax(fn)`: a stable softmax for a batch of logits (N, C).
- `check_wollowski_errors(E1, E2)`: Wollowski's two squared errors against the target [0, 0, 1, 0].
- `check_cross_entropy(fn)`: the mean cross-entropy and its gradient (p - onehot(y)) / N, stable (log-sum-exp).
- `check_sigmoid_derivative(fn)`: sigma'(a) = sigma(a) (1 - sigma(a)).

Every check recognises the typical mistakes by name and says in one line what to change.
"""
from __future__ import annotations

import warnings
from functools import partial

import numpy as np

from cnnlab.gradcheck import numerical_gradient
from cnnlab.losses import CrossEntropyLoss, log_softmax, one_hot, softmax
from . import (CheckFailed, check_array, name_mistake, passed, placeholder, run_student, same,
               student_array)

__all__ = ["check_softmax", "check_wollowski_errors", "check_cross_entropy", "check_sigmoid_derivative",
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


# --- exercise 3: cross-entropy, loss and gradient, stable for any logits -----------------------

_LABEL_INDEXING = ("picks whole {0} of p, not each example's probability of its own label: row n's entry is at "
                   "[n, labels[n]], i.e. [np.arange(N), labels]")


def _cross_entropy_pair(fn, name: str, Z, y):
    """fn(Z, y) as (loss as a float, dlogits as a float64 array); CheckFailed when it is not such a pair."""
    if not callable(fn):
        raise CheckFailed(f"`{name}` should be a function, got {type(fn).__name__}")
    what = f"`{name}(logits, labels)`"
    hints = {"out of bounds": f" (p[labels] {_LABEL_INDEXING.format('rows')})",
             "broadcast": " (take the row maxima and sums with keepdims=True: (N, 1) broadcasts against (N, C))"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = run_student(lambda: fn(Z, y), what, fn=fn, quiet=True)
        except CheckFailed as failed:
            message = str(failed) + "".join(text for word, text in hints.items() if word in str(failed))
            raise CheckFailed(message) from None
    placeholder(what, out)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        got = f"a {type(out).__name__} of {len(out)}" if isinstance(out, (tuple, list)) else type(out).__name__
        raise CheckFailed(f"{what} should return two things, `return loss, dlogits`, got {got}")
    loss, dlogits = out
    placeholder("`loss` (the first value returned)", loss, returned=False)
    n, c = Z.shape
    if np.ndim(loss) != 0:
        hint = (": these are the N per-example losses; E is their mean" if np.shape(loss) == (n,) else "")
        raise CheckFailed(f"`loss` should be one number, got an array of shape {np.shape(loss)}{hint}")
    try:
        loss = float(loss)
    except (TypeError, ValueError):
        raise CheckFailed(f"`loss` should be a number, got {type(loss).__name__}") from None
    dlogits = student_array("`dlogits` (the second value returned)", dlogits, returned=False)
    if dlogits.shape != (n, c):
        hint = (": one number per example; the gradient has one entry per logit" if dlogits.shape == (n,) else
                ": it is transposed" if dlogits.shape == (c, n) else "")
        raise CheckFailed(f"`dlogits` should have the shape of logits, {(n, c)}, got {dlogits.shape}{hint}")
    return loss, dlogits


def _cross_entropy_reference(Z, y):
    """cnnlab's mean cross-entropy, its gradient, and that gradient again by centred finite differences."""
    loss_fn = CrossEntropyLoss()
    loss = loss_fn(Z, y)
    work = Z.copy()
    numeric = numerical_gradient(lambda: CrossEntropyLoss()(work, y), work)
    return loss, loss_fn.backward(), numeric


def _loss_mistakes(Z, y):
    """(wrong loss, message) for the typical mistakes, each computed the mistaken way."""
    n, c = Z.shape
    logp, rows = log_softmax(Z, axis=1), np.arange(n)
    picked = logp[rows, y]
    return [
        (-picked.sum(), f"the loss is the sum over the N = {n} examples; E is their mean: divide by N "
                        "(Tomasi's eq. (1))"),
        (picked.mean(), "the loss has the wrong sign: E = -(1/N) sum log p_y, a positive number"),
        (-picked.mean() / c, f"you averaged over the C = {c} classes as well; average over the N examples only"),
        (-logp[y].mean() if y.max() < n else None, f"p[labels] {_LABEL_INDEXING.format('rows')}"),
        (-logp[:, y].mean(), f"p[:, labels] {_LABEL_INDEXING.format('columns')}"),
        (-log_softmax(Z, axis=0)[rows, y].mean(), "you took the softmax over the batch (axis 0): each example's "
                                                   "probabilities run over its C classes, axis=1"),
        (-Z[rows, y].mean(), "you used the logit z_y where log p_y belongs: log p_y = z_y - log sum_i exp(z_i)"),
        ((Z[rows, y] - picked).mean(), "you left out z_y: log p_y = (z_y - m) - log sum_i exp(z_i - m)"),
    ]


def _gradient_mistakes(Z, y):
    """(wrong dlogits, message) for the typical mistakes, each computed the mistaken way."""
    n, c = Z.shape
    P, T = softmax(Z, axis=1), one_hot(y, c, dtype=np.float64)
    by_rows, by_columns = P.copy(), P.copy()
    if y.max() < n:
        by_rows[y] -= 1
    by_columns[:, y] -= 1
    return [
        (P - T, f"you left out the 1/N in the gradient: E is the mean over the N = {n} examples, so every "
                "example's p - onehot(y) is divided by N"),
        ((P - T) / n**2, f"you divided by N = {n} twice: dlogits = (P - T) / N, once"),
        (P / n, "you returned the softmax: subtract the one-hot target, dlogits = (P - T) / N"),
        (P, "you returned the softmax: subtract the one-hot target and divide by N, dlogits = (P - T) / N"),
        ((T - P) / n, "the sign of the gradient is flipped: dlogits = (P - T) / N, not (T - P) / N"),
        ((softmax(Z, axis=0) - T) / n, "you took the softmax over the batch (axis 0): each example's "
                                       "probabilities run over its C classes, axis=1"),
        (by_rows / n if y.max() < n else None, f"p[labels] -= 1 {_LABEL_INDEXING.format('rows')}"),
        (by_columns / n, f"p[:, labels] -= 1 {_LABEL_INDEXING.format('columns')}"),
        ((P - T) / c, f"you divided by the number of classes C = {c}; divide by the number of examples N = {n}"),
        ((Z - T) / n, "you used the logits where the probabilities P = softmax(logits) belong"),
    ]


def _compare_cross_entropy(loss, dlogits, Z, y, case: str) -> None:
    """CheckFailed unless (loss, dlogits) is cnnlab's cross-entropy of (Z, y); named mistakes first."""
    ref_loss, ref_grad, numeric = _cross_entropy_reference(Z, y)
    prefix = f"{case}: " if case else ""
    name_mistake(loss, _loss_mistakes(Z, y), partial(same, rtol=1e-6, atol=1e-9), right=ref_loss, prefix=prefix)
    # the tolerances admit float32 arithmetic: near logits of 1000 its rounding unit is 6e-5
    if not np.isclose(loss, ref_loss, rtol=1e-4, atol=1e-7):
        raise CheckFailed(f"{prefix}the loss is {loss:.6g}, but cnnlab's CrossEntropyLoss gives {ref_loss:.6g}")
    name_mistake(dlogits, _gradient_mistakes(Z, y), partial(same, rtol=1e-6, atol=1e-9), right=ref_grad,
                 prefix=prefix)
    where = f" ({case})" if case else ""
    check_array(f"dlogits{where}", dlogits, ref_grad, rtol=1e-4, atol=1e-7)
    check_array(f"dlogits{where} against centred finite differences of the loss", dlogits, numeric,
                rtol=1e-4, atol=1e-6)


def check_cross_entropy(fn) -> None:
    """`fn(logits, labels)` must return (E, dE/dlogits) of the mean cross-entropy, stable for logits of +-1000.

    E = -(1/N) sum_n log softmax(logits)[n, labels[n]], dE/dlogits = (softmax(logits) - onehot(labels)) / N,
    for logits (N, C) and integer labels (N,). Compared with cnnlab's CrossEntropyLoss and with centred finite
    differences on a batch of 8 x 7, one example of 2 classes, and extreme logits.
    """
    name = getattr(fn, "__name__", "cross_entropy")
    # N > C, so every label is also a row number: the mistake p[labels] runs, and can be named
    Z = np.random.default_rng(3).normal(0, 2, size=(8, 7))
    y = np.array([6, 0, 3, 3, 5, 1, 2, 0])
    Z_before, y_before = Z.copy(), y.copy()
    loss, dlogits = _cross_entropy_pair(fn, name, Z, y)
    if not (np.array_equal(Z, Z_before) and np.array_equal(y, y_before)):
        raise CheckFailed(f"`{name}` changed its input in place (e.g. `logits -= logits.max(...)`): compute "
                          "shifted logits into a new array instead")
    if not (np.isfinite(loss) and np.all(np.isfinite(dlogits))):
        raise CheckFailed(f"`{name}` gives NaN or infinity for ordinary logits (|z| < 8)")
    _compare_cross_entropy(loss, dlogits, Z, y, "")

    one = np.array([[0.7, -1.6]]), np.array([1])
    _compare_cross_entropy(*_cross_entropy_pair(fn, name, *one), *one, "one example with two classes")

    # the true class's logit 1000 below the others: p_y = exp(-1000) is 0.0 in float64 and log 0 = -inf; the
    # other logits are small, so this case needs the log-sum-exp but not the maximum
    far = np.array([[0.5, -1000.0, 2.0, 1.0, -0.5, 0.0, 3.0],
                    [-1.0, 1.5, 0.3, 0.2, -2.0, -1000.0, 0.8],
                    [0.0, 0.1, -0.1, -1000.0, 0.2, 0.3, -0.2]]), np.array([1, 5, 3])
    loss, dlogits = _cross_entropy_pair(fn, name, *far)
    if not np.isfinite(loss) and np.all(np.isfinite(dlogits)):
        raise CheckFailed(f"`{name}` returns an infinite loss when the true class's logit is 1000 below the others: "
                          "its probability exp(-1000) underflows to 0 and log 0 = -inf; take the logarithm on "
                          "paper, log p_y = (z_y - m) - log sum_i exp(z_i - m)")
    _compare_cross_entropy(loss, dlogits, *far, "a true class 1000 below the others")

    # logits of +1000 (exp overflows) and a row near -1000 (exp underflows: 0/0); only each row's own maximum
    # makes every row safe
    huge = np.array([[1000.0, 999.0, -1000.0, 0.0, 500.0, 997.0, 2.0],
                     [-3.0, 1000.0, 4.0, 1000.0, -1000.0, 0.5, 999.5],
                     [-1000.0, -1002.0, -999.0, -1000.5, -1001.0, -1003.0, -1000.0]]), np.array([1, 6, 4])
    loss, dlogits = _cross_entropy_pair(fn, name, *huge)
    if not (np.isfinite(loss) and np.all(np.isfinite(dlogits))):
        alone = [_cross_entropy_pair(fn, name, huge[0][i:i + 1], huge[1][i:i + 1]) for i in range(3)]
        if all(np.isfinite(l) and np.all(np.isfinite(d)) for l, d in alone):
            raise CheckFailed(f"`{name}` fails on a batch whose rows have very different sizes: you subtracted the "
                              "maximum of the whole batch; subtract each row's own maximum "
                              "(logits.max(axis=1, keepdims=True))")
        raise CheckFailed(f"`{name}` gives NaN or infinity at logits of \u00b11000 (exp(1000) overflows to inf, "
                          "exp(-1000) underflows to 0, and inf/inf or 0/0 is NaN): subtract each row's maximum m "
                          "before np.exp, in the softmax and in the log-sum-exp")
    _compare_cross_entropy(loss, dlogits, *huge, "logits of \u00b11000")
    passed(f"{name}: the loss and dlogits agree with CrossEntropyLoss and with centred finite differences, on a "
           "batch of 8 \u00d7 7, one example of 2 classes, and logits of \u00b11000")


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
