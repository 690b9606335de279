"""The back-propagation stepper: its numbers (checked against plain NumPy and finite differences), its
controls, its redraws, and errors shown as text (never a traceback)."""
import numpy as np
import pytest

import widgets
from widgets.backprop_stepper import STAGES, BackpropStepper, BackpropStepperModel


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def plain_forward(model, x0, W1=None):
    """An independent forward pass in plain NumPy, with the model's parameters (W1 may be replaced)."""
    W1 = model.net[0].weight.data if W1 is None else W1
    x1 = sigmoid(W1 @ x0 + model.net[0].bias.data)
    x2 = sigmoid(model.net[2].weight.data @ x1 + model.net[2].bias.data)
    return x1, x2


def test_forward_values_match_plain_numpy():
    m = BackpropStepperModel(n_samples=6, hidden=3, rng=4)
    m.n = 4
    m.update()
    x1, x2 = plain_forward(m, m.X[3])
    np.testing.assert_allclose(m.x0, m.X[3])
    np.testing.assert_allclose(m.x1, x1, rtol=1e-12)
    np.testing.assert_allclose(m.x2, x2, rtol=1e-12)
    assert m.loss == pytest.approx(0.5 * np.sum((x2 - m.Y[3]) ** 2), rel=1e-12)


def test_sensitivities_and_gradients_follow_bouvrie_eqs_4_and_5():
    m = BackpropStepperModel(n_samples=5, hidden=4, rng=1)
    m.n = 2
    m.update()
    W1, W2 = m.weights
    delta2 = (m.x2 - m.t) * m.x2 * (1 - m.x2)
    delta1 = (W2.T @ delta2) * m.x1 * (1 - m.x1)
    np.testing.assert_allclose(m.delta2, delta2, rtol=1e-12)
    np.testing.assert_allclose(m.delta1, delta1, rtol=1e-12)
    np.testing.assert_allclose(m.dW2, np.outer(delta2, m.x1), rtol=1e-12)
    np.testing.assert_allclose(m.db2, delta2, rtol=1e-12)
    np.testing.assert_allclose(m.dW1, np.outer(delta1, m.x0), rtol=1e-12)
    np.testing.assert_allclose(m.db1, delta1, rtol=1e-12)
    np.testing.assert_allclose(m.dx0, W1.T @ delta1, rtol=1e-12)


def test_weight_gradient_agrees_with_finite_differences_of_the_loss():
    m = BackpropStepperModel(n_samples=3, hidden=3, rng=2)
    m.n = 3
    m.update()
    W1 = m.net[0].weight.data.copy()
    numeric = np.zeros_like(W1)
    eps = 1e-6
    for idx in np.ndindex(W1.shape):
        up, down = W1.copy(), W1.copy()
        up[idx] += eps
        down[idx] -= eps
        e_up = 0.5 * np.sum((plain_forward(m, m.X[2], up)[1] - m.Y[2]) ** 2)
        e_down = 0.5 * np.sum((plain_forward(m, m.X[2], down)[1] - m.Y[2]) ** 2)
        numeric[idx] = (e_up - e_down) / (2 * eps)
    np.testing.assert_allclose(m.dW1, numeric, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(m.per_sample[2, :W1.size], numeric.ravel(), rtol=1e-6, atol=1e-10)


def test_running_average_is_the_mean_of_the_first_n_and_ends_at_the_batch_gradient():
    m = BackpropStepperModel(n_samples=9, rng=3)
    for n in (1, 4, 9):
        np.testing.assert_allclose(m.running[n - 1], m.per_sample[:n].mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(m.running[-1], m.batch, rtol=1e-10, atol=1e-15)
    m.n = 9
    m.update()
    assert m.distance < 1e-12
    m.n = 1
    m.update()
    assert m.distance > 0.01
    assert len(m.param_labels) == m.batch.size == 2 * 3 + 3 + 3 * 2 + 2
    assert set(m.tracked) <= set(range(m.batch.size)) and len(m.tracked) == 3


def test_same_seed_same_model():
    a, b = BackpropStepperModel(rng=7), BackpropStepperModel(rng=7)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.batch, b.batch)
    assert not np.array_equal(a.X, BackpropStepperModel(rng=8).X)


def test_model_refuses_a_stage_or_sample_out_of_range():
    m = BackpropStepperModel(n_samples=4)
    m.stage = len(STAGES)
    with pytest.raises(ValueError, match=r"stage must be an int in \[0, 6\), got 6"):
        m.update()
    m.stage, m.n = 0, 0
    with pytest.raises(ValueError, match=r"sample n must be an int in \[1, 4\].*got 0"):
        m.update()


def test_factory_rejects_bad_arguments_with_what_was_received():
    with pytest.raises(ValueError, match=r"n_samples must be between 1 and 500, got 0"):
        widgets.backprop_stepper(n_samples=0)
    with pytest.raises(ValueError, match=r"hidden must be between 1 and 6, got 9"):
        widgets.backprop_stepper(hidden=9)
    with pytest.raises(TypeError, match=r"n_samples must be an int, got float: 2.5"):
        widgets.backprop_stepper(n_samples=2.5)
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator, an int seed or None, got str"):
        widgets.backprop_stepper(rng="seed")


def test_stage_slider_steps_the_model_and_redraws_the_graph():
    s = widgets.backprop_stepper(n_samples=5, rng=0)
    png, draws = s.view.widget.value, s.view.draws
    assert s.values[1][0].get_text() == ""  # hidden units not computed yet
    s.stage.value = 1
    assert s.model.stage == 1 and s.view.draws > draws and s.view.widget.value != png
    assert s.values[1][0].get_text() == f"{s.model.x1[0]:.3f}"
    s.stage.value = 4
    assert s.values[1][2].get_text() == f"{s.model.delta1[2]:+.3f}"
    assert s.values[0][0].get_text() == f"{s.model.x0[0]:.3f}"  # the input has no gradient yet at stage 4
    assert "delta" in s.formula.get_text() and "hidden" in s.stage_title.get_text()


def test_buttons_step_forward_and_back_and_stop_at_the_ends():
    s = widgets.backprop_stepper(n_samples=3)
    s.next.click()
    s.next.click()
    assert s.stage.value == 2 and s.model.stage == 2
    s.back.click()
    assert s.model.stage == 1
    for _ in range(10):
        s.next.click()
    assert s.model.stage == len(STAGES) - 1
    assert s.values[0][1].get_text() == f"{s.model.dx0[1]:+.3f}"


def test_sample_slider_moves_the_running_average_cursor():
    s = widgets.backprop_stepper(n_samples=8, rng=5)
    draws = s.view.draws
    s.sample.value = 6
    m = s.model
    assert m.n == 6 and s.view.draws > draws
    np.testing.assert_array_equal(m.x0, m.X[5])
    assert list(s.cursor.get_xdata()) == [6, 6]
    k = m.tracked[0]
    assert s.avg_markers[0].get_ydata()[0] == m.running[5, k]
    assert s.status.kind == "info" and "6 of 8" in s.status.text
    s.sample.value = 8
    assert s.status.kind == "ok" and "equals the batch gradient" in s.status.text


def test_a_failing_update_becomes_a_status_message_not_an_exception(monkeypatch):
    s = widgets.backprop_stepper(n_samples=3)

    def broken():
        raise RuntimeError("the net could not run")

    monkeypatch.setattr(s.model, "update", broken)
    s.stage.value = 3  # must not raise
    assert s.status.kind == "error" and "could not run" in s.status.text
    s.next.click()  # a button callback is guarded too
    assert s.status.kind == "error"


def test_stepper_displays_as_its_widget():
    s = widgets.backprop_stepper(n_samples=2)
    assert "application/vnd.jupyter.widget-view+json" in s._repr_mimebundle_()
    s.close()


def test_the_controls_show_the_models_stage_and_sample_and_keep_them():
    model = BackpropStepperModel(n_samples=5, hidden=2, rng=0)
    model.stage, model.n = 4, 3  # a model set up before the widget is built
    stepper = BackpropStepper(model)
    assert (stepper.stage.value, stepper.sample.value) == (4, 3)
    assert (model.stage, model.n) == (4, 3)
