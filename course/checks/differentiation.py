"""Self-checks for lesson 05 (four ways to differentiate).

- `check_central_gradient(fn)`: the gradient of a scalar function of an array by central differences.
- `check_dual_rules(dual_mul, dual_sin)`: the forward-mode rules for a product and for sin.
- `check_adjoint_e(dy_de, x)`: one row of the reverse-mode trace of Khan's example (eq. 5.39).
- `check_var(Var)`: the student's own reverse mode (a `Var` class with +, *, sin, exp and `backward()`),
  against `cnnlab.autodiff` and centred finite differences.

Each check computes the right answer its own way (closed-form derivatives), not with the lesson's code,
and recognises the typical mistakes by name.
"""
from __future__ import annotations

import math
import numbers
from functools import partial

import numpy as np

from cnnlab import autodiff as ad
from cnnlab.autodiff import Dual
from . import CheckFailed, check_array, name_mistake, passed, placeholder, run_student, same

__all__ = ["check_central_gradient", "check_dual_rules", "check_adjoint_e", "check_var"]


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


# ---------------------------------------------------------------------------------------------
# exercise 4: reverse mode from scratch (a Var class and its backward sweep)
# ---------------------------------------------------------------------------------------------

_REFLECTED = {"*": "__rmul__", "+": "__radd__"}


def _op(Var, call, what: str):
    """Run one operation of the student's Var; the result must be a Var (a new graph node)."""
    try:
        out = call()
    except TypeError as error:
        for sign, method in _REFLECTED.items():
            if f"unsupported operand type(s) for {sign}" in str(error) and what[0].isdigit():
                raise CheckFailed(f"{what} raised TypeError: with a plain number on the left Python calls "
                                  f"Var.{method}; define it (the same rule, the number is a constant)") from None
        raise CheckFailed(f"{what} raised TypeError: {error}") from None
    except Exception as error:  # noqa: BLE001 - the student's code: report it in one line
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}") from None
    placeholder(what, out)
    if not isinstance(out, Var):
        raise CheckFailed(f"{what} should return a new Var (a node of the graph), got {type(out).__name__}")
    return out


def _number(node, attr: str, what: str) -> float:
    if not hasattr(node, attr):
        raise CheckFailed(f"{what} has no attribute `{attr}`: keep the attributes set in __init__")
    value = getattr(node, attr)
    placeholder(f"{what}.{attr}", value, returned=False)
    if not isinstance(value, numbers.Real):
        raise CheckFailed(f"{what}.{attr} should be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise CheckFailed(f"{what}.{attr} is {value}")
    return value


def _backward(y, what: str) -> None:
    if not callable(getattr(y, "backward", None)):
        raise CheckFailed(f"{what} has no method backward()")
    run_student(y.backward, f"{what}.backward()", fn=getattr(y.backward, "__func__", None),
                hint=(("recursion",), ": the graph is a few hundred nodes deep; sort it with a loop and an "
                                      "explicit stack instead of recursion"))


def _near(a: float, b: float, rtol: float = 1e-9) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)


def _grad_of(Var, build, at: tuple, what: str) -> tuple[float, ...]:
    """Leaves Var(v) for v in `at`, y = build(*leaves), y.backward(): the leaves' grads."""
    leaves = [run_student(lambda v=v: Var(v), f"Var({v})") for v in at]
    y = _built(Var, lambda: build(*leaves), what)
    _backward(y, what)
    return tuple(_number(leaf, "grad", f"after ({what}).backward(), the input") for leaf in leaves)


def _built(Var, call, what: str):
    """A whole graph built with the student's Var (its operations already checked one by one)."""
    y = run_student(call, f"building {what}")
    placeholder(f"building {what}", y)
    if not isinstance(y, Var):
        raise CheckFailed(f"building {what} gave a {type(y).__name__}, not a Var")
    return y


def _khan(x, sin, exp):
    """Khan's eq. 5.38: y = exp(sin x + sin^2 x) + sin(e^x + e^2x), node by node; returns all nodes."""
    a = sin(x); b = a * a; c = a + b; d = exp(c)
    e = exp(x); f = e * e; g = e + f; h = sin(g)
    return {"a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h, "y": d + h}


def _khan_float(x: float) -> float:
    return math.exp(math.sin(x) + math.sin(x) ** 2) + math.sin(math.exp(x) + math.exp(2 * x))


def check_var(Var) -> None:
    """Var must build a graph with +, * (numbers on either side), .sin(), .exp(); y.backward() sets every .grad.

    Graphs tried, each against cnnlab.autodiff built the same way: one operation at a time, x * x + x
    (an input used twice), a diamond (an inner node used twice), a chain of 300 nodes, and Khan's
    eq. 5.36 at three points (also against centred finite differences); then backward() a second time.
    """
    if not isinstance(Var, type):
        raise CheckFailed(f"`Var` should be a class, got {Var!r}")
    x = run_student(lambda: Var(0.7), "Var(0.7)")
    if not math.isclose(_number(x, "value", "Var(0.7)"), 0.7) or _number(x, "grad", "Var(0.7)") != 0:
        raise CheckFailed("Var(0.7) should have value 0.7 and grad 0.0")
    # 1. values of every operation, with Vars and with plain numbers on either side
    xv, wv = 0.7, -1.3
    cases = [("x + w", lambda x, w: x + w, xv + wv), ("x * w", lambda x, w: x * w, xv * wv),
             ("x.sin()", lambda x, w: x.sin(), math.sin(xv)), ("x.exp()", lambda x, w: x.exp(), math.exp(xv)),
             ("x + 2.5", lambda x, w: x + 2.5, xv + 2.5), ("2.5 + x", lambda x, w: 2.5 + x, 2.5 + xv),
             ("x * 3.0", lambda x, w: x * 3.0, xv * 3.0), ("3.0 * x", lambda x, w: 3.0 * x, 3.0 * xv)]
    for what, build, value in cases:
        x, w = Var(xv), Var(wv)
        got = _number(_op(Var, lambda: build(x, w), what), "value", what)
        if not _near(got, value):
            hint = " (that is cos: sin's value is math.sin)" if _near(got, math.cos(xv)) else ""
            raise CheckFailed(f"({what}).value is {got:.6g} for x = {xv}, w = {wv}: the forward value is wrong{hint}")
    # 2. the seed: dy/dy = 1
    x = Var(xv)
    y = _op(Var, lambda: x.sin(), "x.sin()")
    _backward(y, "x.sin()")
    seed = _number(y, "grad", "after y.backward(), y")
    if seed != 1.0:
        raise CheckFailed(f"after y.backward(), y.grad is {seed:g}: the sweep starts by setting the output's "
                          "adjoint to 1 (dy/dy = 1), then passes it down")
    # 3. the local derivative of each operation, one at a time
    c, s, e = math.cos(xv), math.sin(xv), math.exp(xv)
    singles = [
        ("x.sin()", lambda x: _op(Var, lambda: x.sin(), "x.sin()"), c,
         {-c: "sin's local derivative has the wrong sign: d/dx sin x = +cos x",
          s: "sin's local derivative is cos x, not sin x",
          -s: "-sin x is the derivative of cos; sin's is +cos x",
          1.0: "x.grad is 1: the local derivative cos(x) of sin is missing"}),
        ("x.exp()", lambda x: _op(Var, lambda: x.exp(), "x.exp()"), e,
         {xv: "exp's local derivative is exp(input) (its own output value), not the input",
          1.0: "x.grad is 1: the local derivative exp(x) of exp is missing",
          math.exp(e): "exp's local derivative is exp(input), not exp(exp(input))"}),
        ("3.0 * x", lambda x: _op(Var, lambda: 3.0 * x, "3.0 * x"), 3.0,
         {xv: "d(3.0 * x)/dx is the constant 3.0, not x", 1.0: "d(3.0 * x)/dx is the constant 3.0, not 1"}),
        ("x * 3.0", lambda x: _op(Var, lambda: x * 3.0, "x * 3.0"), 3.0,
         {xv: "d(x * 3.0)/dx is the constant 3.0, not x", 1.0: "d(x * 3.0)/dx is the constant 3.0, not 1"}),
        ("2.5 + x", lambda x: _op(Var, lambda: 2.5 + x, "2.5 + x"), 1.0, {2.5: "d(2.5 + x)/dx is 1"}),
        ("x + 2.5", lambda x: _op(Var, lambda: x + 2.5, "x + 2.5"), 1.0, {2.5: "d(x + 2.5)/dx is 1"}),
    ]
    for what, build, right in [("x * w", lambda x, w: _op(Var, lambda: x * w, "x * w"), (wv, xv)),
                               ("x + w", lambda x, w: _op(Var, lambda: x + w, "x + w"), (1.0, 1.0))]:
        got = _grad_of(Var, build, (xv, wv), what)
        if not all(_near(g, r) for g, r in zip(got, right)):
            if what == "x * w" and _near(got[0], xv) and _near(got[1], wv):
                raise CheckFailed("y = x * w: each factor's local derivative is the OTHER factor "
                                  "(dy/dx = w, dy/dw = x)")
            raise CheckFailed(f"y = {what}: (x.grad, w.grad) = ({got[0]:.6g}, {got[1]:.6g}), which is not "
                              "(dy/dx, dy/dw)")
    for what, build, right, mistakes in singles:
        (got,) = _grad_of(Var, build, (xv,), what)
        if not _near(got, right):
            name_mistake(got, mistakes.items(), _near, prefix=f"y = {what}: ")
            raise CheckFailed(f"y = {what} at x = {xv}: x.grad is {got:.6g}, which is not dy/dx")
    # 4. an input used twice: x * x + x
    (got,) = _grad_of(Var, lambda x: _op(Var, lambda: x * x + x, "x * x + x"), (xv,), "x * x + x")
    right = 2 * xv + 1
    if not _near(got, right):
        name_mistake(got, [(xv + 1, "y = x * x + x: in x * x both factors are x, so x gets two contributions "
                                    "(x.value each); your node keeps only one (a dict of parents?)")],
                     _near)
        if any(_near(got, v) for v in (1.0, xv, 2 * xv, xv + 1)):
            raise CheckFailed("y = x * x + x: x.grad holds only its last contribution: adjoints are overwritten "
                              "instead of accumulated; a node used twice gets the SUM (parent.grad += ...)")
        raise CheckFailed(f"y = x * x + x at x = {xv}: x.grad is {got:.6g}, which is not 2x + 1")
    # 5. a diamond: a = sin x feeds both b = exp(a) and c = 2a, and y = b * c
    def diamond(x, sin, exp):
        a = sin(x)
        return exp(a) * (2.0 * a)
    (got,) = _grad_of(Var, lambda x: diamond(x, Var.sin, Var.exp), (0.3,), "the diamond")
    right = ad.grad(lambda x: diamond(x, ad.sin, ad.exp), 0.3)
    if not _near(got, right):
        raise CheckFailed("a = x.sin(); y = a.exp() * (2 * a): x.grad is wrong, though x * x + x was right: a node "
                          "passed its adjoint to its parents before all its children had added to it. Sort the "
                          "graph topologically and visit the nodes in reverse order, each once")
    # 6. a long chain
    def chain(x, sin, exp):
        v = x
        for _ in range(100):
            v = sin(v * 1.1) + 0.2
        return exp(v)
    (got,) = _grad_of(Var, lambda x: chain(x, Var.sin, Var.exp), (0.4,), "a chain of 300 nodes")
    right = ad.grad(lambda x: chain(x, ad.sin, ad.exp), 0.4)
    if not _near(got, right, 1e-8):
        raise CheckFailed(f"on a chain of 300 nodes x.grad is {got:.6g}, which is not dy/dx: is every node "
                          "visited, from the output back to the input?")
    # 7. Khan's eq. 5.36 at three points: every adjoint against cnnlab, dy/dx against finite differences
    for x0 in (-1.0, 0.3, 0.9):
        x, xr = Var(x0), ad.Var(x0)
        mine, ref = run_student(lambda: _khan(x, Var.sin, Var.exp), "building eq. 5.36"), _khan(xr, ad.sin, ad.exp)
        y = _built(Var, lambda: mine["y"], f"eq. 5.36 at x = {x0}")
        if not _near(_number(y, "value", f"eq. 5.36 at x = {x0}, y"), ref["y"].value):
            raise CheckFailed(f"Khan's eq. 5.36 at x = {x0}: y.value is wrong")
        _backward(y, "y")
        ref["y"].backward()
        for name in "hgfedcba":
            got = _number(mine[name], "grad", f"eq. 5.36 at x = {x0}, node {name}")
            if not _near(got, ref[name].grad):
                raise CheckFailed(f"Khan's eq. 5.36 at x = {x0}: the adjoint of node {name} is {got:.6g}, "
                                  "which is not dy/d" + name)
        got = _number(x, "grad", f"eq. 5.36 at x = {x0}, x")
        step = 1e-5
        numeric = (_khan_float(x0 + step) - _khan_float(x0 - step)) / (2 * step)
        if not _near(got, xr.grad) or not math.isclose(got, numeric, rel_tol=1e-5, abs_tol=1e-5):
            raise CheckFailed(f"Khan's eq. 5.36 at x = {x0}: x.grad is {got:.6g} and disagrees with centred "
                              "finite differences")
        # 8. a second backward must not change anything
        first = got
        _backward(y, "y (a second time)")
        again = _number(x, "grad", "after a second y.backward(), x")
        if not _near(again, first):
            raise CheckFailed(f"a second y.backward() changed x.grad from {first:.6g} to {again:.6g}: backward "
                              "adds onto the adjoints of the first call; set every node's grad to 0 before "
                              "seeding the output with 1")
    passed("your Var differentiates Khan's eq. 5.36, a node used twice, a diamond and a 300-node chain exactly "
           "as cnnlab.autodiff does")
