"""The loss explorer: model values derived by hand, controls that redraw, errors shown as text."""
import numpy as np
import pytest

import widgets
from widgets.loss_explorer import PRESETS, LossExplorerModel, loss_explorer


def softmax_by_definition(z):
    e = np.exp(np.asarray(z, dtype=float))
    return e / e.sum()


def test_model_at_equal_logits_matches_the_hand_computation():
    m = LossExplorerModel(np.zeros(4), target=2)
    np.testing.assert_allclose(m.probs, [0.25] * 4)
    assert m.ce_loss == pytest.approx(np.log(4))                       # -log(1/4)
    assert m.mse_loss == pytest.approx(0.5 * (3 * 0.25**2 + 0.75**2))  # 1/2 sum (p - t)^2 = 0.375
    np.testing.assert_allclose(m.ce_grad, [0.25, 0.25, -0.75, 0.25])
    # softmax-MSE: dE/dz_i = p_i (g_i - sum_k g_k p_k), g = p - t = (1/4, 1/4, -3/4, 1/4), sum g p = 0
    np.testing.assert_allclose(m.mse_grad, [1 / 16, 1 / 16, -3 / 16, 1 / 16])
    assert m.class_names == ("dog", "cat", "boat", "bird") and not m.wrong and not m.vanishing


def test_wollowski_output_1_as_logits_gives_his_squared_error():
    m = LossExplorerModel(np.log([0.2, 0.4, 0.1, 0.3]), target=2)
    np.testing.assert_allclose(m.probs, [0.2, 0.4, 0.1, 0.3])
    assert m.mse_loss == pytest.approx(0.55)         # 1/2 (0.04 + 0.16 + 0.81 + 0.09)
    assert m.ce_loss == pytest.approx(-np.log(0.1))


def test_gradients_match_finite_differences_of_the_losses():
    z0 = np.array([1.5, -2.0, 0.3, 4.0, -0.7])
    m = LossExplorerModel(z0, target=1)

    def losses(z):
        p = softmax_by_definition(z)
        return -np.log(p[1]), 0.5 * np.sum((p - np.eye(5)[1]) ** 2)

    num = np.zeros((2, 5))
    for i in range(5):
        dz = np.zeros(5)
        dz[i] = 1e-6
        num[:, i] = (np.subtract(losses(z0 + dz), losses(z0 - dz))) / 2e-6
    np.testing.assert_allclose(m.ce_grad, num[0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(m.mse_grad, num[1], rtol=1e-6, atol=1e-9)
    assert m.class_names == tuple(f"class {i}" for i in range(5))


def test_the_sweep_is_the_gradient_on_the_target_logit():
    m = LossExplorerModel([0.0, 3.0, -1.0], target=0)
    i = 37
    z = np.array([m.sweep_z[i], 3.0, -1.0])
    p = softmax_by_definition(z)
    assert m.sweep_ce_grad[i] == pytest.approx(p[0] - 1)
    # derived in the lesson: dE/dz_t of the softmax-MSE is p_t (2 p_t - 1 - sum p^2)
    assert m.sweep_mse_grad[i] == pytest.approx(p[0] * (2 * p[0] - 1 - np.sum(p**2)))
    assert m.sweep_z[0] == -10 and m.sweep_z[-1] == 10


def test_confidently_wrong_makes_the_squared_error_gradient_vanish():
    m = LossExplorerModel(np.zeros(4), target=2)
    m.apply_preset("confidently wrong")
    assert m.logits[2] == -6 and m.logits[3] == 6 and m.wrong and m.vanishing
    assert abs(m.ce_grad[2]) > 0.99                  # p_t - 1 with p_t ~ e^-12
    assert np.abs(m.mse_grad).max() < 0.01
    m.apply_preset("confident and right")
    assert not m.wrong and not m.vanishing and m.probs[2] > 0.99


def test_model_rejects_bad_inputs_with_what_was_received():
    with pytest.raises(ValueError, match=r"3 to 5 scores .* got shape \(6,\)"):
        LossExplorerModel(np.zeros(6))
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 4\), got 4"):
        LossExplorerModel(np.zeros(4), target=4)
    with pytest.raises(ValueError, match=r"in \[-10, 10\], got \[0.0, 12.0, 0.0\]"):
        LossExplorerModel([0.0, 12.0, 0.0], target=0)
    with pytest.raises(ValueError, match=r"name the 3 classes, got 2 names"):
        LossExplorerModel(np.zeros(3), target=0, class_names=("a", "b"))
    with pytest.raises(TypeError, match=r"array of numbers"):
        LossExplorerModel(["a", "b", "c"], target=0)
    with pytest.raises(ValueError, match=r"preset must be one of"):
        LossExplorerModel(np.zeros(4)).apply_preset("nonsense")


def test_factory_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"num_classes must be 3, 4 or 5 .* got 2"):
        widgets.loss_explorer(num_classes=2)
    with pytest.raises(ValueError, match=r"logits must have shape \(3,\) for num_classes=3, got \(4,\)"):
        widgets.loss_explorer(num_classes=3, target=0, logits=np.zeros(4))
    with pytest.raises(ValueError, match=r"target must be a class index in \[0, 3\), got 5"):
        widgets.loss_explorer(num_classes=3, target=5)


def test_moving_a_logit_slider_updates_model_and_figure():
    w = loss_explorer()
    before_png, before_draws = w.view.widget.value, w.view.draws
    w.logit_sliders[3].value = 5.0
    expected = softmax_by_definition([0, 0, 0, 5.0])
    np.testing.assert_allclose(w.model.probs, expected)
    assert w.view.draws > before_draws and w.view.widget.value != before_png
    assert w.p_bars[3].get_height() == pytest.approx(expected[3])
    assert w.ce_bars[2].get_height() == pytest.approx(expected[2] - 1)
    assert "p(boat)" in w.status.text


def test_changing_the_target_moves_the_sweep_and_the_highlight():
    w = loss_explorer()
    w.target.value = 0
    assert w.model.target == 0 and "dog" in w.ax_s.get_xlabel()
    assert w.ce_bars[0].get_height() == pytest.approx(0.25 - 1)
    colors = [bar.get_facecolor() for bar in w.p_bars]
    assert colors[0] != colors[1] and colors[1] == colors[2]


def test_a_target_shown_before_blits_its_picture_and_it_equals_a_full_draw():
    w = loss_explorer(target=2)
    w.target.value = 0  # a target not shown before: its axes are drawn, highlight and x label included
    assert w.view.widget.value == loss_explorer(target=0).view.widget.value  # as a new widget's full draw
    drawn = w.view.full_draws + w.view.partial_draws
    w.target.value = 2  # back to the first target: its saved picture serves, nothing is drawn
    assert w.view.full_draws + w.view.partial_draws == drawn
    assert w.view.widget.value == loss_explorer(target=2).view.widget.value


def test_the_confidently_wrong_preset_sets_sliders_and_warns():
    w = loss_explorer()
    draws = w.view.draws
    w.preset.value = "confidently wrong"
    assert [s.value for s in w.logit_sliders] == [0.0, 0.0, -6.0, 6.0]
    assert w.model.vanishing and w.status.kind == "warn" and "learning would stall" in w.status.text
    assert w.view.draws == draws + 1, "a preset redraws once, not once per slider"
    assert w.preset.value is None


def test_wollowski_preset_sets_his_output_and_target():
    w = loss_explorer(target=0)
    w.preset.value = "Wollowski's output 2"
    assert w.target.value == 2
    np.testing.assert_allclose(w.model.probs, [0.1, 0.1, 0.7, 0.1])
    assert w.model.mse_loss == pytest.approx(0.06)   # 1/2 (0.01 + 0.01 + 0.09 + 0.01)


def test_three_classes_offer_no_wollowski_presets():
    w = loss_explorer(num_classes=3, target=1)
    names = [value for _, value in w.preset.options]
    assert "confidently wrong" in names and not any(n and n.startswith("Wollowski") for n in names)
    assert set(names) - {None} <= set(PRESETS)


def test_a_failing_update_becomes_a_status_message_not_an_exception(monkeypatch):
    w = loss_explorer()

    def broken():
        raise RuntimeError("the losses could not be computed")

    monkeypatch.setattr(w.model, "update", broken)
    w.logit_sliders[0].value = 1.0  # must not raise
    assert w.status.kind == "error" and "could not be computed" in w.status.text
