"""The step-size explorer: model against Taylor's error terms, controls, redraws, errors as text."""
import math

import numpy as np
import pytest

import widgets
from widgets.step_size import StepSizeExplorer, StepSizeModel, khan_df, khan_f


def test_khan_example_and_its_derivative_by_hand_at_zero():
    # f(0) = e^0 + sin(1 + 1); f'(0) = cos(2) (2 + 1) + e^0 (1 + 0)
    assert khan_f(0.0) == pytest.approx(1 + math.sin(2), rel=1e-15)
    assert khan_df(0.0) == pytest.approx(3 * math.cos(2) + 1, rel=1e-15)
    # at x = ln 2: e = 2, so the inner sum is 6 and its derivative 2*4 + 2 = 10
    x, s, c = math.log(2), math.sin(math.log(2)), math.cos(math.log(2))
    assert khan_df(x) == pytest.approx(math.cos(6) * 10 + math.exp(s + s * s) * (c + 2 * c * s), rel=1e-13)


def test_errors_follow_the_taylor_terms_for_exp():
    # f = exp at 0: forward error ~ f'' h / 2 = h / 2, central error ~ f''' h^2 / 6 = h^2 / 6
    hs = np.array([1e-4, 1e-3, 1e-2])
    m = StepSizeModel(np.exp, np.exp, x=0.0, hs=hs)
    np.testing.assert_allclose(m.sweep.forward_error, hs / 2, rtol=1e-2)
    np.testing.assert_allclose(m.sweep.central_error[1:], hs[1:] ** 2 / 6, rtol=1e-2)
    np.testing.assert_allclose(m.forward_model[1:], hs[1:] / 2, rtol=1e-3)  # round-off part negligible there


def test_float32_moves_the_best_step_and_loses_accuracy():
    m64 = StepSizeModel(x=-1.0)
    m32 = StepSizeModel(x=-1.0, precision="float32")
    assert m64.eps == np.finfo(np.float64).eps and m32.eps == np.finfo(np.float32).eps
    assert m64.sweep.central_error.min() < 1e-9 and m32.sweep.central_error.min() > 100 * m64.sweep.central_error.min()
    assert 1e-4 < m32.best_central_h < 1e-1 and 1e-7 < m64.best_central_h < 1e-4
    # h below float32 resolution: x + h == x, the forward difference is 0, its error |f'(x)|
    assert m32.sweep.forward_error[0] == pytest.approx(abs(khan_df(np.float64(np.float32(-1.0)))), rel=1e-12)


def test_controls_update_model_and_figure():
    w = widgets.step_size_explorer()
    png, draws = w.view.widget.value, w.view.draws
    w.precision.value = "float32"
    assert w.model.precision == "float32" and w.model.eps == np.finfo(np.float32).eps
    assert w.view.draws == draws + 1 and w.view.widget.value != png
    np.testing.assert_array_equal(w.cen_line.get_ydata(), np.maximum(w.model.sweep.central_error, 1e-18))
    assert w.sqrt_line.get_xdata()[0] == pytest.approx(np.finfo(np.float32).eps ** 0.5)
    w.x.value = 1.25
    assert w.model.x == 1.25 and "x = 1.25" in w.ax.get_title() and w.view.draws == draws + 2
    assert "float32" in w.status.text and w.status.kind == "info"


def test_a_failing_update_shows_a_message_and_does_not_raise():
    def df(x):
        return 2 * x if x >= 0 else float("nan")

    w = widgets.step_size_explorer(lambda x: x * x, df, x=0.5)
    w.x.value = -1.0
    assert w.status.kind == "error" and "not finite" in w.status.text
    w.x.value = 1.0
    assert w.status.kind == "info" and w.model.x == 1.0


def test_bad_factory_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"precision must be one of \['float64', 'float32'\], got 'float16'"):
        widgets.step_size_explorer(precision="float16")
    with pytest.raises(ValueError, match=r"x must lie in the slider's range \[-2, 2\], got 5"):
        widgets.step_size_explorer(x=5)
    with pytest.raises(ValueError, match="both f and its exact derivative df"):
        widgets.step_size_explorer(np.sin)
    with pytest.raises(ValueError, match=r"hs must be a 1-D array of at least 2 positive steps, got shape \(2, 2\)"):
        StepSizeModel(hs=np.ones((2, 2)))
    with pytest.raises(TypeError, match="f and df must be callables"):
        StepSizeModel(np.sin, 3.0)


def test_the_slider_shows_the_models_x_and_keeps_it():
    ex = StepSizeExplorer(x=3.0, precision="float32")  # x outside the slider's usual [-2, 2]
    assert (ex.x.value, ex.precision.value) == (3.0, "float32")
    assert (ex.model.x, ex.model.precision) == (3.0, "float32")


def test_a_precision_shown_before_blits_its_picture_and_it_equals_a_full_draw():
    w = widgets.step_size_explorer()
    w.precision.value = "float32"  # other y limits: drawn
    assert w.view.widget.value == widgets.step_size_explorer(precision="float32").view.widget.value
    drawn = w.view.full_draws + w.view.partial_draws
    w.precision.value = "float64"  # back: the saved picture serves, nothing is drawn
    assert w.view.full_draws + w.view.partial_draws == drawn
    assert w.view.widget.value == widgets.step_size_explorer().view.widget.value
