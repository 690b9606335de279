"""Tests of cnnlab.numdiff: difference formulas, their error orders and best step sizes."""
import math

import numpy as np
import pytest

from cnnlab.numdiff import StepSizeSweep, central_difference, forward_difference, step_size_sweep

HS = np.logspace(-14, -1, 131)          # 10 steps per decade
EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


def loglog_slope(h, err, lo, hi):
    m = (h >= lo) & (h <= hi)
    return np.polyfit(np.log10(h[m]), np.log10(err[m]), 1)[0]


def test_formulas_on_a_quadratic_by_hand():
    # f = x^2 at x = 3, h = 0.5: forward (3.5^2 - 9) / 0.5 = 3.25 / 0.5 = 6.5 = f' + h;
    # central (3.5^2 - 2.5^2) / 1 = 6 exactly (no truncation error for a quadratic)
    sq = lambda x: x * x
    assert forward_difference(sq, 3.0, 0.5) == pytest.approx(6.5, rel=1e-15)
    assert central_difference(sq, 3.0, 0.5) == pytest.approx(6.0, rel=1e-15)
    assert type(forward_difference(sq, 3, 0.5)) is float


def test_vectorized_over_x():
    x = np.linspace(-2.0, 2.0, 9)
    d = central_difference(np.sin, x, 1e-5)
    assert isinstance(d, np.ndarray) and d.shape == (9,)
    np.testing.assert_allclose(d, np.cos(x), atol=1e-9)
    np.testing.assert_allclose(forward_difference(np.exp, x, 1e-7), np.exp(x), rtol=1e-6)


@pytest.mark.parametrize("f,df,x", [(np.exp, np.exp, 1.0), (np.sin, np.cos, 0.3), (np.tanh, lambda t: 1 - np.tanh(t) ** 2, 0.7)])
def test_error_orders_in_truncation_regime(f, df, x):
    s = step_size_sweep(f, df, x, HS)
    # truncation regime (h large enough that round-off ~ eps/h is negligible)
    assert loglog_slope(s.h, s.forward_error, 1e-5, 1e-2) == pytest.approx(1.0, abs=0.1)
    assert loglog_slope(s.h, s.central_error, 1e-3, 1e-1) == pytest.approx(2.0, abs=0.1)
    # round-off regime: the error grows like eps / h, slope -1
    assert loglog_slope(s.h, s.forward_error, 1e-14, 1e-11) == pytest.approx(-1.0, abs=0.3)


def test_truncation_constants_match_taylor():
    # forward error ~ |f''| h / 2, central error ~ |f'''| h^2 / 6; for exp at 0 all derivatives are 1
    h = 1e-3
    assert abs(forward_difference(np.exp, 0.0, h) - 1.0) == pytest.approx(h / 2, rel=1e-2)
    assert abs(central_difference(np.exp, 0.0, h) - 1.0) == pytest.approx(h ** 2 / 6, rel=1e-2)


@pytest.mark.parametrize("f,df,x", [(np.exp, np.exp, 1.0), (np.sin, np.cos, 1.0), (np.sin, np.cos, 0.3)])
def test_best_steps_near_sqrt_and_cbrt_eps(f, df, x):
    s = step_size_sweep(f, df, x, HS)
    # within a factor of 30 of the theory: sqrt(eps) ~ 1.5e-8 and cbrt(eps) ~ 6.1e-6
    assert math.sqrt(EPS64) / 30 <= s.best_forward_h <= math.sqrt(EPS64) * 30
    assert EPS64 ** (1 / 3) / 30 <= s.best_central_h <= EPS64 ** (1 / 3) * 30
    assert s.best_forward_h < s.best_central_h
    # and central differences reach a far smaller error than forward differences
    assert s.central_error.min() < s.forward_error.min() / 100


def test_float32_point_moves_the_best_steps():
    s = step_size_sweep(np.exp, np.exp, np.float32(1.0), HS)
    assert math.sqrt(EPS32) / 30 <= s.best_forward_h <= math.sqrt(EPS32) * 30
    assert EPS32 ** (1 / 3) / 30 <= s.best_central_h <= EPS32 ** (1 / 3) * 30


def test_sweep_result_shape_and_number_df():
    s = step_size_sweep(math.sin, math.cos(0.5), 0.5, [1e-2, 1e-3])
    assert isinstance(s, StepSizeSweep)
    assert s.h.shape == s.forward_error.shape == s.central_error.shape == (2,)
    # central error at h = 1e-2 is about |f'''| h^2 / 6 = cos(0.5) * 1e-4 / 6
    assert s.central_error[0] == pytest.approx(math.cos(0.5) * 1e-4 / 6, rel=1e-3)


def test_validation():
    with pytest.raises(ValueError, match="h must be a positive finite step, got 0"):
        forward_difference(np.sin, 1.0, 0)
    with pytest.raises(ValueError, match="h must be a positive finite step, got -0.1"):
        central_difference(np.sin, 1.0, -0.1)
    with pytest.raises(ValueError, match="got nan"):
        central_difference(np.sin, 1.0, float("nan"))
    with pytest.raises(TypeError, match="h must be a positive real number, got str"):
        central_difference(np.sin, 1.0, "0.1")
    with pytest.raises(TypeError, match="f must be a callable.*got float"):
        forward_difference(1.0, 1.0, 0.1)
    with pytest.raises(TypeError, match="x must be a real number or an array of real numbers, got dtype <U1"):
        forward_difference(np.sin, "a", 0.1)
    with pytest.raises(ValueError, match=r"x must be a single point.*shape \(2,\)"):
        step_size_sweep(np.sin, np.cos, np.zeros(2), HS)
    with pytest.raises(ValueError, match=r"non-empty 1-D sequence of steps, got shape \(0,\)"):
        step_size_sweep(np.sin, np.cos, 1.0, [])
    with pytest.raises(ValueError, match="positive finite step, got -1"):
        step_size_sweep(np.sin, np.cos, 1.0, [1e-3, -1.0])
