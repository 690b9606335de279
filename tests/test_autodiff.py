"""Tests of cnnlab.autodiff: Khan's worked example four ways, reuse, depth, powers, properties."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.autodiff import Dual, Var, cos, derivative, exp, grad, log, sin, tanh, trace

XS = [-1.7, -0.4, 0.0, 0.3, 1.0, 1.3, 2.1]


def khan_f(x):
    """Khan eq. 5.36, written with the module's functions so it runs on floats, Duals and Vars."""
    return exp(sin(x) + sin(x) ** 2) + sin(exp(x) + exp(x) ** 2)


def khan_df(x):
    """Khan eq. 5.37, written out independently with the math module."""
    return (math.cos(math.exp(2 * x) + math.exp(x)) * (2 * math.exp(2 * x) + math.exp(x))
            + math.exp(math.sin(x) ** 2 + math.sin(x)) * (math.cos(x) + 2 * math.cos(x) * math.sin(x)))


def khan_f_math(x):
    return math.exp(math.sin(x) + math.sin(x) ** 2) + math.sin(math.exp(x) + math.exp(x) ** 2)


@pytest.mark.parametrize("x", XS)
def test_khan_example_four_ways_agree(x):
    analytic = khan_df(x)
    forward = derivative(khan_f, x)
    reverse = grad(khan_f, x)
    h = 1e-6
    numeric = (khan_f_math(x + h) - khan_f_math(x - h)) / (2 * h)
    assert forward == pytest.approx(analytic, rel=1e-10, abs=1e-10)
    assert reverse == pytest.approx(analytic, rel=1e-10, abs=1e-10)
    # central differences: truncation ~ f''' h^2 and round-off ~ eps |f| / h; f''' grows like e^{6x}
    assert numeric == pytest.approx(analytic, rel=1e-5, abs=1e-6)
    # the forward value rides along with the derivative
    assert khan_f(Dual(x, 1.0)).value == pytest.approx(khan_f_math(x), rel=1e-14)
    assert khan_f(x) == pytest.approx(khan_f_math(x), rel=1e-14)


def test_khan_trace_table_matches_eq_5_38_and_5_39():
    x0 = 1.3
    x = Var(x0, name="x")
    a = sin(x)
    b = a ** 2
    c = a + b
    d = exp(c)
    e = exp(x)
    f = e ** 2
    g = e + f
    h = sin(g)
    y = d + h
    for node, name in zip([a, b, c, d, e, f, g, h, y], "abcdefghy"):
        node.name = name
    y.backward()
    rows = trace(y)
    assert [r.name for r in rows] == ["x", "a", "b", "c", "d", "e", "f", "g", "h", "y"]
    assert [r.expr for r in rows] == ["input", "sin(x)", "a**2", "a + b", "exp(c)", "exp(x)",
                                      "e**2", "e + f", "sin(g)", "d + h"]
    # values of eq. 5.38, by hand with math
    sa, ex = math.sin(x0), math.exp(x0)
    values = [x0, sa, sa ** 2, sa + sa ** 2, math.exp(sa + sa ** 2), ex, ex ** 2, ex + ex ** 2,
              math.sin(ex + ex ** 2), khan_f_math(x0)]
    np.testing.assert_allclose([r.value for r in rows], values, rtol=1e-14)
    # adjoints of eq. 5.39 with the local derivatives of eq. 5.40
    dy_dd = dy_dh = 1.0
    dy_dc = dy_dd * math.exp(sa + sa ** 2)
    dy_dg = dy_dh * math.cos(ex + ex ** 2)
    dy_db = dy_dc
    dy_da = dy_dc + dy_db * 2 * sa
    dy_df = dy_dg
    dy_de = dy_dg + dy_df * 2 * ex
    dy_dx = dy_da * math.cos(x0) + dy_de * ex
    adjoints = [dy_dx, dy_da, dy_db, dy_dc, dy_dd, dy_de, dy_df, dy_dg, dy_dh, 1.0]
    np.testing.assert_allclose([r.adjoint for r in rows], adjoints, rtol=1e-12)
    assert dy_dx == pytest.approx(khan_df(x0), rel=1e-12)


def test_trace_default_names_and_constants():
    x = Var(0.5)
    y = sin(x) * x + 2 - x / 4
    rows = trace(y)
    assert [(r.name, r.expr) for r in rows] == [
        ("x1", "input"), ("v1", "sin(x1)"), ("v2", "v1 * x1"), ("v3", "v2 + 2"),
        ("v4", "x1 / 4"), ("v5", "v3 - v4")]
    assert all(r.adjoint == 0.0 for r in rows)        # backward not called yet
    y.backward()
    # dy/dx = cos x * x + sin x - 1/4
    assert trace(y)[0].adjoint == pytest.approx(math.cos(0.5) * 0.5 + math.sin(0.5) - 0.25, rel=1e-14)


def test_reuse_accumulates():
    # f = x*x + x -> 2x + 1: x feeds three edges, its adjoint is the sum
    for x0 in (-2.0, 0.0, 3.5):
        assert grad(lambda x: x * x + x, x0) == pytest.approx(2 * x0 + 1, rel=1e-15)
        assert derivative(lambda x: x * x + x, x0) == pytest.approx(2 * x0 + 1, rel=1e-15)
    # a reused intermediate node: u = sin x, y = u * u -> 2 sin x cos x
    assert grad(lambda x: (lambda u: u * u)(sin(x)), 0.7) == pytest.approx(math.sin(1.4), rel=1e-14)


def test_backward_twice_gives_the_same_adjoints():
    x = Var(2.0)
    y = x * x * x
    y.backward()
    y.backward()
    assert x.grad == pytest.approx(12.0)


def test_deep_chain_without_recursion():
    x = Var(1.0)
    y = x
    for _ in range(100_000):
        y = y + x
    y.backward()
    assert y.value == 100_001.0
    assert x.grad == 100_001.0
    assert len(y.nodes()) == 100_001                   # x and the 100,000 sums


def test_deep_chain_forward_mode():
    d = Dual(0.5, 1.0)
    y = d
    for _ in range(100_000):
        y = y + d
    assert y.deriv == 100_001.0


def test_division_rules():
    # d/dx (x / (1 + x^2)) = (1 - x^2) / (1 + x^2)^2
    f = lambda x: x / (1 + x ** 2)
    for x0 in (-1.5, 0.2, 3.0):
        expected = (1 - x0 ** 2) / (1 + x0 ** 2) ** 2
        assert derivative(f, x0) == pytest.approx(expected, rel=1e-14)
        assert grad(f, x0) == pytest.approx(expected, rel=1e-14)
    # reflected: d/dx (3 / x) = -3 / x^2 and d/dx (5 - x) = -1
    for g, dg in [(lambda x: 3 / x, -3 / 4.0), (lambda x: 5 - x, -1.0), (lambda x: x - 5, 1.0)]:
        assert derivative(g, 2.0) == pytest.approx(dg, rel=1e-15)
        assert grad(g, 2.0) == pytest.approx(dg, rel=1e-15)
    with pytest.raises(ZeroDivisionError):
        grad(lambda x: 1 / x, 0.0)


@pytest.mark.parametrize("p", [2, 3, -1, -2, 0.5, 1.5, -0.5, 0])
def test_powers(p):
    x0 = 1.7
    expected = p * x0 ** (p - 1) if p != 0 else 0.0
    assert derivative(lambda x: x ** p, x0) == pytest.approx(expected, rel=1e-14)
    assert grad(lambda x: x ** p, x0) == pytest.approx(expected, rel=1e-14)


def test_power_edge_cases():
    # integer powers of negative numbers are fine: d/dx x^3 at -2 = 12
    assert derivative(lambda x: x ** 3, -2.0) == pytest.approx(12.0)
    assert grad(lambda x: x ** 3, -2.0) == pytest.approx(12.0)
    # number ** variable: d/dx 2^x = log 2 * 2^x
    assert derivative(lambda x: 2 ** x, 3.0) == pytest.approx(8 * math.log(2), rel=1e-14)
    assert grad(lambda x: 2 ** x, 3.0) == pytest.approx(8 * math.log(2), rel=1e-14)
    with pytest.raises(ValueError, match="negative base with a non-integer exponent"):
        derivative(lambda x: x ** 0.5, -4.0)
    with pytest.raises(ValueError, match="infinite at 0"):
        grad(lambda x: x ** 0.5, 0.0)
    with pytest.raises(TypeError, match="only int or float exponents.*got Var"):
        grad(lambda x: x ** x, 2.0)
    with pytest.raises(TypeError, match="only int or float exponents.*got Dual"):
        derivative(lambda x: x ** x, 2.0)
    with pytest.raises(ValueError, match="base must be positive"):
        grad(lambda x: (-2) ** x, 1.0)


def test_elementary_functions_on_all_three_types():
    x0 = 0.8
    cases = [(sin, math.sin, math.cos(x0)), (cos, math.cos, -math.sin(x0)),
             (exp, math.exp, math.exp(x0)), (log, math.log, 1 / x0),
             (tanh, math.tanh, 1 - math.tanh(x0) ** 2)]
    for fn, ref, dref in cases:
        assert fn(x0) == ref(x0) and type(fn(x0)) is float
        d = fn(Dual(x0, 2.0))
        assert d.value == ref(x0) and d.deriv == pytest.approx(2 * dref, rel=1e-15)
        v = Var(x0)
        out = fn(v)
        out.backward()
        assert out.value == ref(x0) and v.grad == pytest.approx(dref, rel=1e-15)
    assert sin(np.float32(0.5)) == pytest.approx(math.sin(0.5), rel=1e-7)
    assert exp(2) == pytest.approx(math.exp(2))


def test_numpy_scalars_mix_with_dual_and_var():
    d = np.float64(3.0) * Dual(2.0, 1.0)
    assert isinstance(d, Dual) and d.deriv == 3.0
    assert grad(lambda x: np.float32(2.0) * x + np.int64(1), 1.0) == 2.0


def test_grad_several_inputs_and_constants():
    # f(x1, x2) = x1 * x2 + sin(x1): (x2 + cos x1, x1)
    g1, g2 = grad(lambda a, b: a * b + sin(a), 0.5, 4.0)
    assert g1 == pytest.approx(4.0 + math.cos(0.5), rel=1e-15)
    assert g2 == pytest.approx(0.5)
    assert grad(lambda a, b: a * 3, 1.0, 2.0) == (3.0, 0.0)      # b unused
    assert grad(lambda x: 7.0, 1.0) == 0.0
    assert derivative(lambda x: 7.0, 1.0) == 0.0


def test_validation():
    with pytest.raises(ValueError, match="log\\(\\) needs a positive argument, got -1.0"):
        log(Var(-1.0))
    with pytest.raises(ValueError, match="positive argument, got 0.0"):
        derivative(log, 0.0)
    with pytest.raises(TypeError, match="sin\\(\\) argument must be a real number, got str"):
        sin("1")
    with pytest.raises(TypeError, match="Var value must be a real number, got complex"):
        Var(1j)
    with pytest.raises(TypeError, match="Dual deriv must be a real number, got list"):
        Dual(1.0, [1.0])
    with pytest.raises(TypeError, match="unsupported operand"):
        Dual(1.0, 1.0) + Var(1.0)
    with pytest.raises(TypeError, match="f must be callable, got int"):
        grad(3, 1.0)
    with pytest.raises(TypeError, match="needs at least one point"):
        grad(sin)
    with pytest.raises(TypeError, match="f must return a number or a Var, got str"):
        grad(lambda x: "no", 1.0)
    with pytest.raises(TypeError, match="f must return a number or a Dual, got list"):
        derivative(lambda x: [x], 1.0)
    with pytest.raises(TypeError, match="trace expects a Var, got float"):
        trace(1.0)


coeffs = st.lists(st.floats(-10, 10, allow_nan=False, allow_infinity=False), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, database=None)
@given(c=coeffs, x0=st.floats(-2.0, 2.0, allow_nan=False))
def test_polynomial_derivative_property(c, x0):
    # p(x) = sum_k c_k x^k; p'(x) = sum_k k c_k x^(k-1), summed term by term with plain floats
    def p(x):
        total = c[0] + 0 * x
        for k in range(1, len(c)):
            total = total + c[k] * x ** k
        return total

    expected = sum(k * c[k] * x0 ** (k - 1) for k in range(1, len(c)))
    scale = sum(k * abs(c[k]) * 2.0 ** (k - 1) for k in range(1, len(c))) + 1.0
    assert derivative(p, x0) == pytest.approx(expected, abs=1e-12 * scale)
    assert grad(p, x0) == pytest.approx(expected, abs=1e-12 * scale)
