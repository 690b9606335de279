"""The momentum explorer: the model's curves are cnnlab's SGD, its rates the closed forms, sliders move
the existing lines, bad settings become status messages."""
import time

import numpy as np
import pytest
from widget_checks import drive_controls

import widgets
from cnnlab import Parameter
from cnnlab.optim import SGD
from widgets.momentum_explorer import MomentumExplorer
from widgets.momentum_model import MomentumModel, optimal_momentum, spectral_radius


def sgd_components(alpha, mu, eigenvalues, steps):
    """w_t for t = 0..steps, one row per direction: cnnlab's SGD on f(w) = 1/2 sum lam_i w_i^2 from w = 1."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    w = Parameter(np.ones_like(lam))
    optimizer = SGD([w], lr=alpha, momentum=mu)
    out = [w.data.copy()]
    for _ in range(steps):
        w.grad[...] = lam * w.data
        optimizer.step()
        out.append(w.data.copy())
    return np.array(out).T


@pytest.mark.parametrize("alpha, mu, eigenvalues", [(0.01, 0.0, [1, 3, 10, 30, 100]),
                                                    (0.033, 0.67, [1, 3, 10, 30, 100]),
                                                    (0.2, 0.9, [0.5, 2.0, 7.0]),
                                                    (0.9, 0.3, [0.1, 1.0])])
def test_the_curves_are_cnnlabs_sgd_step_for_step(alpha, mu, eigenvalues):
    m = MomentumModel(alpha, mu, eigenvalues=eigenvalues, steps=120)
    # the model performs SGD._update's operations in the same order on float64: equal bit for bit
    np.testing.assert_array_equal(m.components, sgd_components(alpha, mu, eigenvalues, 120))
    np.testing.assert_allclose(m.norm, np.linalg.norm(m.components, axis=0), rtol=1e-15)
    assert not m.diverged


def test_kappa_spreads_the_eigenvalues_from_1_to_kappa():
    m = MomentumModel(kappa=10_000.0, directions=5)
    np.testing.assert_allclose(m.eigenvalues, [1, 10, 100, 1000, 10_000], rtol=1e-12)
    assert m.eigenvalues[0] == 1.0 and m.eigenvalues[-1] == 10_000.0


def test_rates_are_the_closed_forms():
    # mu = 0: gradient descent, max |1 - alpha lambda| = max(|1 - 0.25|, |1 - 1|) = 0.75
    assert MomentumModel(0.25, 0.0, eigenvalues=[1, 4]).rate == pytest.approx(0.75, rel=1e-12)
    # mu = 0.81, alpha lambda in {0.5, 2} inside [(1 - 0.9)^2, (1 + 0.9)^2]: complex roots, |r| = sqrt(mu)
    np.testing.assert_allclose(spectral_radius(0.5, 0.81, [1, 4]), [0.9, 0.9], rtol=1e-12)
    roots = MomentumModel(0.5, 0.81, eigenvalues=[1, 4]).roots  # r^2 - (1.81 - 0.5 lam) r + 0.81 = 0
    np.testing.assert_allclose(roots.sum(axis=1), [1.31, -0.19], atol=1e-12)  # sum of roots: 1 + mu - alpha lam
    np.testing.assert_allclose(np.abs(roots), 0.9, rtol=1e-12)
    # kappa = 9: alpha* = (2 / (3 + 1))^2 = 1/4, mu* = ((3 - 1) / (3 + 1))^2 = 1/4, rate 1/2
    alpha, mu, rate = optimal_momentum(1.0, 9.0)
    assert (alpha, mu, rate) == pytest.approx((0.25, 0.25, 0.5), rel=1e-15)
    # double roots at both ends: float64 eigenvalues of a defective 2x2 are off by ~sqrt(eps) = 1.5e-8
    assert MomentumModel(0.25, 0.25, eigenvalues=[1, 2, 9]).rate == pytest.approx(0.5, abs=1e-6)
    # a run at the optimum shrinks like t 0.5^t: the tail rate over [100, 200] is 0.5 * 2^(1/100)
    m = MomentumModel(0.25, 0.25, eigenvalues=[1, 2, 9], steps=200)
    assert (m.norm[200] / m.norm[100]) ** (1 / 100) == pytest.approx(0.5 * 2 ** (1 / 100), rel=1e-3)


def test_a_slider_moves_the_existing_lines():
    w = widgets.momentum_explorer()
    lines, norm_line, axes = list(w.direction_lines), w.norm_line, list(w.fig.axes)
    before = [line.get_ydata().copy() for line in lines]
    draws = w.view.draws
    w.mu.value = 0.5
    assert w.model.mu == 0.5 and w.view.draws == draws + 1
    assert w.direction_lines == lines and w.norm_line is norm_line and w.fig.axes == axes
    for line, old, comp in zip(lines, before, w.model.components):
        assert not np.array_equal(line.get_ydata(), old)
        np.testing.assert_array_equal(line.get_ydata(), np.clip(np.abs(comp), 1e-14, 1e6))
    markers = list(w.root_markers)
    for marker, roots in zip(markers, w.model.roots):
        np.testing.assert_array_equal(marker.get_xdata(), roots.real)
        np.testing.assert_array_equal(marker.get_ydata(), roots.imag)
    w.kappa.value = 1000.0
    assert w.root_markers == markers
    assert w.model.eigenvalues[-1] == pytest.approx(1000.0) and w.legend.get_texts()[4].get_text() == "λ = 1e+03"
    assert w.direction_lines == lines and w.status.kind == "warn"  # alpha L = 0.01 * 1000 > 2(1 + mu)


def test_the_buttons_set_the_best_pairs():
    w = widgets.momentum_explorer(kappa=100.0)
    w.best_momentum.click()  # kappa = 100: alpha* = (2 / 11)^2 = 4/121, mu* = (9/11)^2 = 81/121
    assert (w.alpha.value, w.mu.value) == pytest.approx((4 / 121, 81 / 121), rel=1e-14)
    assert w.model.rate == pytest.approx(9 / 11, abs=1e-6) and "rate 0.8182" in w.status.text
    assert "every direction alike" in w.status.text  # all roots on the circle |r| = sqrt(mu*)
    w.best_gd.click()  # 2 / (m + L) = 2/101, rate 99/101
    assert (w.alpha.value, w.mu.value) == pytest.approx((2 / 101, 0.0), rel=1e-14)
    assert w.model.rate == pytest.approx(99 / 101, rel=1e-12) and "rate 0.9802" in w.status.text


def test_bad_settings_become_status_messages():
    w = widgets.momentum_explorer()
    w.alpha.value = 0.5  # alpha L = 50: the steep direction explodes
    assert w.status.kind == "warn" and "diverges" in w.status.text and w.model.diverged
    assert np.all(np.isfinite(w.direction_lines[-1].get_ydata()) | np.isnan(w.model.components[-1]))
    w.model.fixed_eigenvalues = np.array([-1.0, 2.0])  # a setting no slider can make, to reach the guard
    w.mu.value = 0.3
    assert w.status.kind == "error" and "eigenvalues must be positive" in w.status.text
    w.model.fixed_eigenvalues = None
    w.alpha.value = 0.01
    assert w.status.kind == "info" and w.model.alpha == 0.01


def test_bad_factory_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"the momentum mu must be in \[0, 1\), got 1.0"):
        widgets.momentum_explorer(mu=1.0)
    with pytest.raises(ValueError, match="the learning rate alpha must be a positive number, got -0.1"):
        widgets.momentum_explorer(alpha=-0.1)
    with pytest.raises(ValueError, match=r"eigenvalues must be a 1-D list of positive numbers, got shape \(2, 2\)"):
        widgets.momentum_explorer(eigenvalues=np.ones((2, 2)))
    with pytest.raises(ValueError, match="the eigenvalues must be positive numbers"):
        widgets.momentum_explorer(eigenvalues=[0.0, 1.0])
    with pytest.raises(ValueError, match="directions must be an integer >= 2, got 1"):
        widgets.momentum_explorer(directions=1)
    with pytest.raises(ValueError, match=r"the condition number kappa must be >= 1, got 0.5"):
        widgets.momentum_explorer(kappa=0.5)


def test_the_sliders_show_the_models_settings():
    w = MomentumExplorer(MomentumModel(alpha=3.0, mu=0.995, kappa=2e4))  # all outside the usual ranges
    assert (w.alpha.value, w.mu.value, w.kappa.value) == pytest.approx((3.0, 0.995, 2e4))
    assert (w.model.alpha, w.model.mu, w.model.kappa) == pytest.approx((3.0, 0.995, 2e4))


def test_time_per_update_is_measured():
    w = widgets.momentum_explorer()
    draws, model_times, view_times = w.view.draws, [], []
    for mu in np.linspace(0.1, 0.9, 9):
        start = time.perf_counter()
        w.mu.value = float(mu)
        view_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        w.model.update()
        model_times.append(time.perf_counter() - start)
    assert w.view.draws == draws + 9 and w.model.mu == pytest.approx(0.9)
    print(f"momentum_explorer: model.update {1e3 * np.median(model_times):.1f} ms, slider -> redrawn figure "
          f"{1e3 * np.median(view_times):.1f} ms (median of 9)")


def test_every_control_redraws_and_changes_the_figure():
    def snapshot(w):
        lines = (*w.direction_lines, w.norm_line, w.rate_line, *w.root_markers)
        return [np.asarray(line.get_ydata()).copy() for line in lines] + [w.ax.get_title()]

    w = widgets.momentum_explorer()
    drive_controls(w, [(w.alpha, [0.005, 0.02]), (w.mu, [0.3, 0.8]), (w.kappa, [10.0, 1000.0])], snapshot)
