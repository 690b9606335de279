"""Self-checks for lesson 05 (four ways to differentiate).

- `check_central_gradient(fn)`: the gradient of a scalar function of an array by central differences.
- `check_dual_rules(dual_mul, dual_sin)`: the forward-mode rules for a product and for sin.
- `check_adjoint_e(dy_de, x)`: one row of the reverse-mode trace of Khan's example (eq. 5.39).

Each check computes the right answer its own way (closed-form derivatives), not with the lesson's code,
and recognises the typical mistakes by name.
"""
from __future__ import annotations

import math
from functools import partial

import numpy as np

from cnnlab.autodiff import Dual
from . import CheckFailed, check_array, name_mistake, passed, same

__all__ = ["check_central_gradient", "check_dual_rules", "check_adjoint_e"]


# ---------------------------------------------------------------------------------------------
# exercise 1: central differences for a function of many variables
# ---------------------------------------------------------------------------------------------

_W = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]])


def _test_f(x):
    """f(x) = sum(exp(w * x)): a smooth scalar function of a (2, 3) array with strong curvature."""
    return float(np.sum(np.exp(_W * x)))


def _test_grad(x):
    return _W * np.exp(_W * x)


_like_this = partial(same, rtol=1e-6, atol=1e-9)


def check_central_gradient(central_gradient, h: float = 1e-3) -> None:
    """central_gradient(f, x, h) must return df/dx (shape of x) by (f(x+h e_i) - f(x-h e_i)) / 2h.

    It is called on a (2, 3) array with a large step h = 1e-3, so that a forward difference (error
    O(h)) is told apart from a central one (error O(h^2)).
    """
    if central_gradient is Ellipsis or not callable(central_gradient):
        raise CheckFailed(f"`central_gradient` should be a function, got {central_gradient!r}")
    x = np.array([[0.3, -0.2, 0.1], [-0.4, 0.8, 0.5]])
    x_before = x.copy()
    got = central_gradient(_test_f, x, h)
    if got is None or got is Ellipsis:
        raise CheckFailed(f"central_gradient returned {got!r}: finish the loop body and `return grad`")
    if not np.array_equal(x, x_before):
        where = tuple(np.argwhere(x != x_before)[0].tolist())
        raise CheckFailed(f"central_gradient changed its input: x{list(where)} is {x[where]:.6g} instead of "
                          f"{x_before[where]:.6g}; put x[i] back to its old value after the two evaluations")
    got = np.asarray(got, dtype=float)
    expected = _test_grad(x)
    if got.shape != x.shape:
        raise CheckFailed(f"the gradient should have the shape of x, {x.shape}, got {got.shape}")
    if np.all(got == 0):
        raise CheckFailed("the gradient is all zeros: the loop body is still `...`, or grad[i] is never set")
    # typical mistakes, each computed the mistaken way
    n = x.size
    forward = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up = x.copy()
        up[i] += h
        forward[i] = (_test_f(up) - _test_f(x)) / h
    central = expected  # the exact gradient is what a central difference approximates to O(h^2)
    all_at_once = (_test_f(x + h) - _test_f(x - h)) / (2 * h)
    if _like_this(got, forward):
        raise CheckFailed("this is the forward difference (f(x+h) - f(x)) / h, error O(h); use "
                          "(f(x+h) - f(x-h)) / (2h)")
    if _like_this(got, forward / 2):
        raise CheckFailed("you get (f(x+h) - f(x)) / (2h): after x[i] += h, step to x[i] - h by subtracting 2h "
                          "(or start from the saved old value)")
    if _like_this(got, 2 * central, rtol=1e-5):
        raise CheckFailed("the gradient is twice too large: divide the difference by 2h, not by h")
    if _like_this(got, -central, rtol=1e-5):
        raise CheckFailed("the gradient has the wrong sign: it is f(x+h) - f(x-h), in that order")
    if n > 1 and np.allclose(got, all_at_once, rtol=1e-6):
        raise CheckFailed("every entry is the same: you moved all of x at once (x + h); perturb one entry x[i] "
                          "at a time")
    check_array("central_gradient(f, x)", got, expected, rtol=1e-5, atol=1e-8)
    passed(f"central differences give the gradient of a function of {n} variables ({2 * n} evaluations of f)")


# ---------------------------------------------------------------------------------------------
# exercise 2: the dual-number rules of forward mode
# ---------------------------------------------------------------------------------------------

def _as_dual(name: str, out, call: str) -> Dual:
    if out is None or out is Ellipsis:
        raise CheckFailed(f"{call} returned {out!r}: replace the `...` with `return Dual(value, deriv)`")
    if not isinstance(out, Dual):
        raise CheckFailed(f"{call} should return a Dual(value, deriv), got {type(out).__name__}: {out!r}")
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


def check_dual_rules(dual_mul, dual_sin) -> None:
    """dual_mul(a, b) and dual_sin(a) must return the Dual of a*b and sin(a) (value and derivative)."""
    for name, fn in (("dual_mul", dual_mul), ("dual_sin", dual_sin)):
        if fn is Ellipsis or not callable(fn):
            raise CheckFailed(f"`{name}` should be a function, got {fn!r}")
    a, b = Dual(1.5, 2.0), Dual(-0.7, 3.0)
    call = "dual_mul(Dual(1.5, 2.0), Dual(-0.7, 3.0))"
    out = _as_dual("dual_mul", dual_mul(a, b), call)
    if not _close(out.value, a.value * b.value):
        raise CheckFailed(f"{call}.value is {out.value:g}; the value of a product is a.value * b.value = "
                          f"{a.value * b.value:g}")
    product_rule = a.deriv * b.value + a.value * b.deriv
    mistakes = {
        a.deriv * b.deriv: "you multiplied the derivatives (a' b'); the product rule is a' b + a b'",
        a.deriv * b.value: "only a' b: the product rule has a second term, a b'",
        a.value * b.deriv: "only a b': the product rule has a second term, a' b",
        a.deriv + b.deriv: "a' + b' is the rule for a sum; for a product it is a' b + a b'",
    }
    if not _close(out.deriv, product_rule):
        name_mistake(out.deriv, mistakes.items(), _close, prefix=f"{call}.deriv is {out.deriv:g}: ")
        raise CheckFailed(f"{call}.deriv is {out.deriv:g} but should be a' b + a b' = {product_rule:g}")

    a = Dual(0.8, 2.5)
    call = "dual_sin(Dual(0.8, 2.5))"
    out = _as_dual("dual_sin", dual_sin(a), call)
    if not _close(out.value, math.sin(a.value)):
        hint = " (sin of the derivative?)" if _close(out.value, math.sin(a.deriv)) else ""
        raise CheckFailed(f"{call}.value is {out.value:g}; it should be sin(a.value) = {math.sin(0.8):g}{hint}")
    chain = math.cos(a.value) * a.deriv
    mistakes = {
        math.cos(a.value): "missing the chain rule: multiply cos(a.value) by a.deriv",
        -chain: "wrong sign: d/dx sin = +cos (it is cos whose derivative is -sin)",
        math.sin(a.value) * a.deriv: "sin is not its own derivative: use cos(a.value) * a.deriv",
        math.cos(a.deriv): "cos(a.deriv) mixes up the parts: the derivative is cos(a.value) * a.deriv",
    }
    if not _close(out.deriv, chain):
        name_mistake(out.deriv, mistakes.items(), _close, prefix=f"{call}.deriv is {out.deriv:g}: ")
        raise CheckFailed(f"{call}.deriv is {out.deriv:g} but should be cos(a.value) * a.deriv = {chain:g}")
    # the two rules together differentiate x sin(x) at x = 2: (sin x + x cos x)
    x = Dual(2.0, 1.0)
    both = dual_mul(x, dual_sin(x))
    expected = math.sin(2.0) + 2.0 * math.cos(2.0)
    if not (isinstance(both, Dual) and _close(both.deriv, expected)):
        raise CheckFailed(f"together the rules should give d/dx (x sin x) at 2 = {expected:.6g}, got {both!r}")
    passed("product and sine rules are right: forward mode now differentiates x sin(x) exactly "
           f"(d/dx at 2 = {expected:.6f})")


# ---------------------------------------------------------------------------------------------
# exercise 3: one adjoint of Khan's trace
# ---------------------------------------------------------------------------------------------

def check_adjoint_e(dy_de, x: float) -> None:
    """dy_de must be Khan's adjoint dy/de for e = exp(x), f = e^2, g = e + f, h = sin g (eq. 5.39).

    e feeds two nodes, g (dg/de = 1) and f (df/de = 2e), so dy/de = dy/dg * 1 + dy/df * 2e, where
    dy/dg = cos(g) and dy/df = dy/dg * dg/df = cos(g).
    """
    if dy_de is Ellipsis or dy_de is None:
        raise CheckFailed(f"`dy_de` is still {dy_de!r}: write it in terms of the values and adjoints in the table")
    try:
        got = float(dy_de)
    except (TypeError, ValueError):
        raise CheckFailed(f"`dy_de` should be a number, got {type(dy_de).__name__}") from None
    e = math.exp(x)
    g = e + e * e
    dy_dg = math.cos(g)
    dy_df = dy_dg
    expected = dy_dg * 1 + dy_df * 2 * e
    mistakes = {
        dy_dg: "only the path through g: e is also used by f = e^2, add dy/df * df/de",
        dy_df * 2 * e: "only the path through f: e is also added directly into g, add dy/dg * dg/de",
        dy_dg + dy_df: "both paths, but df/de is missing: f = e^2, so df/de = 2e",
        dy_dg + dy_df * e: "df/de for f = e^2 is 2e, not e",
        expected * e: "that is the contribution to dy/dx (you multiplied by de/dx = e); dy/de stops at e",
        dy_dg + dy_df * 2 * x: "df/de is 2e (the value of e), not 2x",
    }
    if not math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12):
        name_mistake(got, mistakes.items(), partial(math.isclose, rel_tol=1e-9, abs_tol=1e-12),
                     prefix=f"dy_de = {got:.6g}: ")
        raise CheckFailed(f"dy_de = {got:.6g} but should be {expected:.6g} = dy/dg * 1 + dy/df * 2e")
    passed(f"dy/de = {expected:.6f}: the adjoint of a node used twice is the sum over its two children")
