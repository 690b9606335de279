"""The initialisation explorer: measurements, the variance prediction, and every control at its extremes."""
import asyncio
import math

import numpy as np
import pytest
from widget_checks import changed

from cnnlab import Sequential, init
from cnnlab.layers import Linear, Tanh
from widgets import init_model
from widgets.init_explorer import (
    InitExplorer,
    ACTIVATIONS,
    SCHEMES,
    WIDTHS,
    InitModel,
    column_histograms,
    gaussian_moments,
    init_explorer,
    predicted_profile,
)

SMALL = dict(depth=6, width=64, batch=64)


# --- the prediction, against hand derivations and Monte Carlo ----------------------------------------------
def test_linear_units_multiply_the_variance_by_fan_in_var_w_per_layer():
    # Var(h_l) = (fan_in Var(w))^l Var(x) for linear blocks (Khan 5.1.5 before the nonlinearity)
    mean, std, grad = predicted_profile("linear", [0.02] * 4, [100] * 4, [50] * 4, 3.0)
    np.testing.assert_allclose(std, np.sqrt(3.0 * 2.0 ** np.arange(1, 5)))
    np.testing.assert_allclose(mean, 0.0)
    # backwards: each layer multiplies E[g^2] by fan_out Var(w) = 1
    np.testing.assert_allclose(grad, 1.0)


def test_he_keeps_relu_second_moments_constant():
    # Var(w) = 2/fan_in: q = 2 E[h^2], E[relu(z)^2] = q/2 = E[h^2]; mean sqrt(q / 2 pi) = sqrt(1/pi)
    mean, std, grad = predicted_profile("ReLU", [2 / 256] * 5, [256] * 5, [256] * 5, 1.0)
    np.testing.assert_allclose(mean, math.sqrt(1 / math.pi))
    np.testing.assert_allclose(std, math.sqrt(1 - 1 / math.pi))
    np.testing.assert_allclose(grad, 1.0)  # fan_out (2/fan_in) E[relu'^2] = 256 * 2/256 * 1/2


def test_gaussian_moments_against_monte_carlo_and_limits():
    z = np.random.default_rng(0).standard_normal(400_000) * math.sqrt(0.7)
    sig = 1 / (1 + np.exp(-z))
    expected = {"tanh": (np.tanh(z), 1 - np.tanh(z) ** 2), "sigmoid": (sig, sig * (1 - sig)),
                "LeCun tanh": (1.7159 * np.tanh(2 / 3 * z), 1.7159 * 2 / 3 * (1 - np.tanh(2 / 3 * z) ** 2))}
    for name, (f, df) in expected.items():
        got = gaussian_moments(name, 0.7)
        np.testing.assert_allclose(got, (f.mean(), (f ** 2).mean(), (df ** 2).mean()), rtol=0.01, atol=3e-3)
    assert gaussian_moments("sigmoid", 0.0) == pytest.approx((0.5, 0.25, 1 / 16))   # f(0), f'(0) = 1/4
    assert gaussian_moments("tanh", math.inf)[1:] == pytest.approx((1.0, 0.0))       # saturated
    with pytest.raises(ValueError, match="activation must be one of"):
        gaussian_moments("gelu", 1.0)


def test_column_histograms_by_hand():
    values = np.array([[0.0, 0.0, 1.0, 1.0], [0.25, 0.25, 0.25, 0.75]])
    hist, lo, hi = column_histograms(values, bins=4)
    # mean +- 3 std covers both rows, so the range is the data's own: [0, 1], bins of width 1/4
    assert (lo, hi) == (0.0, 1.0)
    assert hist.shape == (4, 2)
    np.testing.assert_allclose(hist[:, 0], [1, 0, 0, 1])                  # two 0s, two 1s (1 in the last bin)
    np.testing.assert_allclose(hist[:, 1], [0, 1, 0, np.log(2) / np.log(4)])  # three 0.25s, one 0.75


# --- the model measures what cnnlab measures ---------------------------------------------------------------
def test_orthogonal_linear_blocks_preserve_every_examples_norm():
    model = InitModel(depth=8, width=64, activation="linear", scheme="orthogonal", batch=32)
    # an orthogonal W keeps ||W x|| = ||x||, so the mean square of every layer equals the input's exactly
    second = model.act_mean ** 2 + model.act_std ** 2
    np.testing.assert_allclose(second, np.mean(model.X ** 2), rtol=1e-10)


def test_gaussian_std_0_01_vanishes_geometrically():
    model = InitModel(depth=20, width=256, activation="linear", scheme="normal", std=0.01, batch=64)
    # each layer multiplies the std by sqrt(fan_in) * 0.01 = 0.16
    ratio = model.act_std[1:] / model.act_std[:-1]
    assert np.all((ratio > 0.13) & (ratio < 0.19))
    assert model.act_std[-1] < 1e-14
    assert model.verdict()[1] == "warn" and "vanishing" in model.verdict()[0]


def test_predictions_follow_the_measurements():
    for activation, scheme, gain in [("tanh", "xavier_normal", 5 / 3), ("ReLU", "kaiming_normal", 1.0),
                                     ("sigmoid", "xavier_uniform", 1.0), ("LeCun tanh", "lecun_normal", 1.0),
                                     ("tanh", "orthogonal", 1.0)]:
        m = InitModel(depth=10, width=128, activation=activation, scheme=scheme, gain=gain, batch=128)
        # the prediction is for infinitely wide layers; at width 128 each layer's gain fluctuates by a few
        # per cent, and the fluctuations multiply with depth
        np.testing.assert_allclose(m.act_std[:3], m.pred_act_std[:3], rtol=0.1, err_msg=f"{activation} {scheme}")
        np.testing.assert_allclose(m.act_std, m.pred_act_std, rtol=0.3, err_msg=f"{activation} {scheme}")
        np.testing.assert_allclose(m.grad_std, m.pred_grad_std, rtol=0.3, err_msg=f"{activation} {scheme}")


def test_constant_schemes_keep_every_unit_identical():
    for scheme in ("zeros", "ones", "constant"):
        m = InitModel(**SMALL, scheme=scheme, activation="sigmoid")
        assert m.identical_units.all(), scheme
        assert np.isnan(m.pred_act_std).all()
        message, kind = m.verdict()
        assert kind == "warn" and "symmetry" in message
    assert not InitModel(**SMALL, scheme="xavier_normal").identical_units.any()


def test_lsuv_gives_every_linear_output_unit_variance():
    m = InitModel(depth=8, width=64, activation="tanh", scheme="lsuv", batch=128)
    h = m.X
    for layer in m.net.layers:
        h = layer.forward(h)
        if isinstance(layer, Linear):
            assert abs(np.var(h) - 1) < 0.1          # lsuv's default tolerance
    assert m.pred_weight_variance is None            # the data sets LSUV's scale, not a formula


def test_the_same_seed_gives_the_same_picture():
    a, b, c = InitModel(**SMALL, seed=3), InitModel(**SMALL, seed=3), InitModel(**SMALL, seed=4)
    np.testing.assert_array_equal(a.act_std, b.act_std)
    np.testing.assert_array_equal(a.act_hist, b.act_hist)
    assert not np.array_equal(a.act_std, c.act_std)


# --- the widget ----------------------------------------------------------------------------------------------
def artists_state(ex):
    state = [np.asarray(ex.images[k].get_array()).copy() for k in ex.images]
    state += [np.array(ex.images[k].get_extent()) for k in ex.images]
    lines = [*ex.std_lines.values(), *ex.pred_lines["act"], *ex.pred_lines["grad"]]
    return state + [np.asarray(line.get_xydata()).copy() for line in lines]



def extremes(ex):
    """(control, values, scheme that uses the control) for every control: its extremes, every option of a menu."""
    yield ex.depth, (ex.depth.min, ex.depth.max), None
    yield ex.width, (WIDTHS[0], WIDTHS[-1]), None
    yield ex.activation, tuple(ACTIVATIONS), None
    yield ex.scheme, SCHEMES, None
    yield ex.gain, (ex.gain.min, ex.gain.max), "xavier_normal"
    yield ex.std, (10.0 ** ex.std.min, 10.0 ** ex.std.max), "normal"


def test_every_control_at_its_extremes_changes_the_figure_without_an_error(monkeypatch):
    ex = init_explorer(**SMALL)
    # rendering the PNG dozens of times would dominate the test; count redraws and compare the artists instead
    monkeypatch.setattr(ex.view, "refresh", lambda: setattr(ex.view, "draws", ex.view.draws + 1))
    by_scheme = {}
    for control, values, scheme in extremes(ex):
        if scheme is not None:
            ex.scheme.value = scheme
        start = control.value
        for value in (*values, start):  # each extreme, then back, so that the next control starts small
            if control.value == value:
                continue
            before, draws = artists_state(ex), ex.view.draws
            control.value = value
            assert ex.status.kind != "error", (control.description, value, ex.status.text)
            assert ex.view.draws > draws, (control.description, value)
            if control is ex.scheme:
                by_scheme[value] = artists_state(ex)
            if not (control is ex.scheme and value.startswith("he_")):
                assert changed(before, artists_state(ex)), (control.description, value)
    # he_normal is kaiming_normal under another name: the very same weights, the very same picture
    assert not changed(by_scheme["he_normal"], by_scheme["kaiming_normal"])
    assert not changed(by_scheme["he_uniform"], by_scheme["kaiming_uniform"])
    assert set(by_scheme) == set(SCHEMES)


def test_the_recommended_gain_button_sets_calculate_gain(monkeypatch):
    ex = init_explorer(**SMALL, activation="tanh", scheme="xavier_normal")
    monkeypatch.setattr(ex.view, "refresh", lambda: None)
    before = ex.model.act_std.copy()
    ex.recommend.click()
    assert ex.gain.value == pytest.approx(1.67) and ex.model.gain == pytest.approx(1.67)
    assert ex.model.act_std[-1] > before[-1]
    ex.activation.value = "ReLU"
    ex.recommend.click()
    assert ex.gain.value == pytest.approx(1.41)


def test_a_control_change_renders_a_new_picture():
    ex = init_explorer(**SMALL)
    before = ex.view.widget.value
    ex.scheme.value = "normal"
    assert ex.view.widget.value != before
    assert "vanishing" in ex.status.text and ex.status.kind == "warn"


def test_a_broken_update_is_a_message(monkeypatch):
    ex = init_explorer(**SMALL)
    monkeypatch.setattr(ex.view, "refresh", lambda: None)
    ex.model.update = lambda: 1 / 0
    ex.depth.value = 3
    assert ex.status.kind == "error" and "division by zero" in ex.status.text


def test_bad_arguments_say_what_was_expected():
    with pytest.raises(ValueError, match=r"width must be one of \[16, 32"):
        init_explorer(width=100)
    with pytest.raises(ValueError, match="activation must be one of.*tanh"):
        init_explorer(**SMALL, activation="gelu")
    with pytest.raises(ValueError, match="scheme must be one of.*xavier_normal.*lsuv"):
        init_explorer(**SMALL, scheme="glorot")
    with pytest.raises(ValueError, match=r"depth must be an int in \[1, 40\], got 0"):
        init_explorer(depth=0, width=64, batch=64)
    with pytest.raises(ValueError, match=r"gain must be a number in \[0.1, 3\]"):
        init_explorer(**SMALL, gain=10)
    with pytest.raises(ValueError, match=r"std must be a number in \[1e-4, 1\]"):
        init_explorer(**SMALL, std=0.0)


def test_a_widget_built_on_a_model_shows_its_gain_and_std_and_keeps_them():
    model = InitModel(**SMALL, scheme="normal", gain=4.0, std=3e-5)  # outside the sliders' usual [0.1, 3], [1e-4, 1]
    ex = InitExplorer(model)
    assert (ex.gain.value, ex.std.value) == (4.0, 3e-5)
    assert (model.gain, model.std) == (4.0, 3e-5)


# --- measured once: the cache, the layer templates, the background measurement -----------------------------
def same_measurement(a, b):
    for name in init_model.MEASURED:
        if name not in ("seconds", "records"):
            np.testing.assert_array_equal(np.asarray(getattr(a, name), dtype=object),
                                          np.asarray(getattr(b, name), dtype=object), err_msg=name)


def test_settings_measured_before_come_from_the_cache_and_equal_a_fresh_measurement(monkeypatch):
    model = InitModel(**SMALL)
    model.width = 32
    model.update()
    model.width = 64
    monkeypatch.setattr(model, "_measure", lambda: 1 / 0)  # a cache hit computes nothing
    model.update()
    monkeypatch.undo()
    fresh = InitModel(**SMALL)
    same_measurement(model, fresh)
    # the big arrays are not cached: read after a cache hit, they are computed again, the same as fresh ones
    np.testing.assert_array_equal(model.X, fresh.X)
    np.testing.assert_array_equal(model.net[0].weight.data, fresh.net[0].weight.data)
    assert [s.std for s in model.stats] == [s.std for s in fresh.stats]


def test_the_cache_keeps_the_last_measurements_only(monkeypatch):
    monkeypatch.setattr(init_model, "CACHE_SIZE", 2)
    model = InitModel(**SMALL)
    for depth in (3, 4):
        model.depth = depth
        model.update()
    model.depth = 6  # measured first, then 3 and 4: the cache holds 3 and 4
    assert not model.ready()
    model.depth = 3
    assert model.ready()


def test_a_measurement_equals_the_library_on_a_freshly_built_net():
    # the layers are copied from a template (their default weights drawn once); the scheme overwrites them all,
    # so the numbers are those of nets built from scratch, as before the templates
    model = InitModel(**SMALL, activation="tanh", scheme="xavier_uniform", seed=5)
    layers, gen = [], np.random.default_rng([5, 3])
    for _ in range(6):
        layers += [Linear(64, 64, rng=gen), Tanh()]
    net = Sequential(layers).astype(np.float64)
    X = np.random.default_rng([5, 0]).standard_normal((64, 64))
    init.apply(net, "xavier_uniform", rng=np.random.default_rng([5, 1]), gain=1.0)
    stats = [s for s in init.activation_stats(net, X, rng=np.random.default_rng([5, 2])) if s.kind == "Tanh"]
    np.testing.assert_array_equal(model.act_std, [s.std for s in stats])
    np.testing.assert_array_equal(model.grad_std, [s.grad_std for s in stats])
    # a measurement changes only its copy: the next one starts from the same template
    template = model._templates[(6, 64, "tanh", 5)]
    assert model.net is not template and model.net[0].weight is not template[0].weight
    model.scheme = "normal"
    model.update()
    assert not np.array_equal(model.net[0].weight.data, template[0].weight.data)


def test_in_a_kernel_a_new_measurement_answers_at_once_and_the_picture_follows():
    async def scenario():
        ex = init_explorer(**SMALL)
        assert ex.background is None  # in a kernel: the default
        draws = ex.view.draws
        ex.depth.value = 4
        assert "measuring 4 layers" in ex.status.text and len(ex.model.act_std) == 6  # not measured yet
        await asyncio.sleep(0)  # the measurement starts
        ex.width.value = 32  # moved while it measures: the newest settings are the ones shown
        await ex.finished()
        return ex, draws

    ex, draws = asyncio.run(scenario())
    assert ex.view.draws == draws + 1 and ex.status.kind != "error", ex.status.text
    assert (ex.model.depth, ex.model.width) == (4, 32) and "ms)" in ex.status.text
    same_measurement(ex.model, InitModel(depth=4, width=32, batch=64))
    ex.width.value = 64  # depth 4 at width 64 was measured on the way: no computing, outside a kernel too
    assert ex.model.ready() and "measured before" in ex.status.text
    same_measurement(ex.model, InitModel(depth=4, width=64, batch=64))


def test_a_stopped_background_measurement_shows_nothing():
    async def scenario():
        ex = init_explorer(**SMALL)
        draws = ex.view.draws
        ex.depth.value = 4
        await asyncio.sleep(0)  # running in its thread
        ex.stop()
        await ex.finished()
        return ex, draws

    ex, draws = asyncio.run(scenario())
    assert ex.view.draws == draws and len(ex.model.act_std) == 6 and "stopped" in ex.status.text


def test_a_failed_background_measurement_is_a_message(monkeypatch):
    async def scenario():
        ex = init_explorer(**SMALL)
        monkeypatch.setattr(ex.model, "job", lambda: lambda: 1 / 0)
        ex.depth.value = 4
        await ex.finished()
        return ex

    ex = asyncio.run(scenario())
    assert ex.status.kind == "error" and "division by zero" in ex.status.text
    ex = init_explorer(**SMALL, background=True)  # outside a kernel: nothing can run in the background
    ex.depth.value = 4
    assert ex.status.kind == "error" and "needs a running asyncio loop" in ex.status.text
