"""The gradient-check table: example networks, both precisions, the HTML table, controls, errors as text."""
import re

import numpy as np
import pytest

import widgets
from cnnlab import Sequential
from cnnlab.layers import Linear
from widgets.gradcheck_table import (
    DEFAULT_EPS,
    EXAMPLES,
    GradcheckTableModel,
    check_network,
)


def test_the_correct_cnn_passes_in_float64_with_tiny_errors():
    m = GradcheckTableModel("small CNN (correct)")
    assert m.report.ok and m.failed_layers == [] and m.report.max_rel_error < 1e-6
    assert {r.layer for r in m.report.rows} >= {"0: Conv2d", "1: MaxPool2d", "5: Tanh", "network+loss"}


def test_averaged_bias_gradient_is_off_by_exactly_n_minus_1_over_n_plus_1():
    # analytic bias grad = s / N, numerical = s: rel error |s - s/N| / (|s| + |s/N|) = (N-1)/(N+1)
    m = GradcheckTableModel("MLP with a buggy Linear bias")
    n = len(m.example.x)
    bad = [r for r in m.report.rows if not r.passed]
    assert [(r.layer, r.name) for r in bad] == [("2: LinearMeanBias", "bias"), ("network+loss", "2.bias")]
    assert bad[0].max_rel_error == pytest.approx((n - 1) / (n + 1), rel=1e-6)


def test_buggy_tanh_is_pinpointed_and_its_error_matches_the_wrong_formula():
    m = GradcheckTableModel("small CNN with a buggy Tanh")
    assert m.failed_layers == ["5: TanhFromInput", "network+loss"]
    tanh_row = [r for r in m.report.rows if r.layer == "5: TanhFromInput"][0]
    assert tanh_row.name == "input" and tanh_row.max_rel_error > 1e-2
    # the buggy backward is dout * (1 - x^2); the right one dout * (1 - tanh(x)^2)
    layer = m.example.net[5]
    x = np.linspace(-1, 1, 6).reshape(2, 3)
    layer.forward(x)
    g = np.ones_like(x)
    np.testing.assert_allclose(layer.backward(g), 1 - x ** 2)
    assert not np.allclose(layer.backward(g), 1 - np.tanh(x) ** 2)


def test_ties_in_max_pooling_fail_without_a_bug():
    m = GradcheckTableModel("small CNN, ReLU before max-pool (ties)")
    assert m.failed_layers == ["2: MaxPool2d"]
    pooled_input = m.example.net[1].forward(m.example.net[0].forward(m.example.x.astype(np.float64)))
    windows = pooled_input.reshape(2, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 2, 2, 2, 4)
    assert (windows.max(axis=-1) == 0).any(), "some pooling window is all zeros: a tie"


def test_float32_makes_the_correct_network_fail():
    m = GradcheckTableModel("small CNN (correct)", precision="float32")
    assert not m.report.ok and m.report.eps == DEFAULT_EPS["float32"] and "float32" in m.report.title
    assert all(p.dtype == np.float32 for p in m.example.net.parameters())
    errors = np.array([r.max_rel_error for r in m.report.rows])
    assert (errors > 1e-6).all() and np.median(errors) < 1e-2, "noisy, but still roughly right"


def test_float32_check_of_one_linear_layer_is_roughly_right():
    net = Sequential([Linear(3, 2, rng=1)])
    x = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    report = check_network(net, x, precision="float32")
    assert [r.name for r in report.rows] == ["input", "weight", "bias"]
    assert all(1e-9 < r.max_rel_error < 1e-2 for r in report.rows)
    report64 = check_network(net, x, precision="float64")
    assert report64.ok and report64.max_rel_error < 1e-8


def test_html_table_has_a_row_per_tensor_and_colors_failures():
    m = GradcheckTableModel("MLP with a buggy Linear bias")
    html = m.html
    assert html.count("<tr") == len(m.report.rows) + 1  # + header
    assert html.count("\u2717 FAIL") == 2 and html.count("\u2713 pass") == len(m.report.rows) - 2
    assert "#cf222e" in html and "#1a7f37" in html and "2 of 12 tensors FAIL" in html
    assert re.search(r"<code>bias</code></td><td[^>]*>\(3,\)</td><td[^>]*>6\.0e-01", html)


def test_controls_update_model_and_table():
    w = widgets.gradcheck_table()
    before = w.table.value
    w.network.value = "small CNN with a buggy Tanh"
    assert w.model.failed_layers[0] == "5: TanhFromInput" and w.table.value != before
    assert w.status.kind == "warn" and "5: TanhFromInput" in w.status.text
    w.network.value = "small CNN (correct)"
    assert w.status.kind == "ok" and "every tensor passes" in w.status.text
    w.precision.value = "float32"
    assert w.model.precision == "float32" and not w.model.report.ok and "FAIL" in w.table.value
    w.eps.value = 1e-2
    assert w.model.report.eps == 1e-2 and "step eps = 0.01" in w.table.value


def test_a_failing_update_shows_a_message_and_does_not_raise(monkeypatch):
    def broken(rng):
        raise RuntimeError("this example is broken on purpose")

    monkeypatch.setitem(EXAMPLES, "broken", broken)
    w = widgets.gradcheck_table()
    table = w.table.value
    w.network.value = "broken"
    assert w.status.kind == "error" and "broken on purpose" in w.status.text
    assert w.table.value == table, "the last good table stays"


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match=r"unknown example network 'resnet'; choose one of \['small CNN"):
        widgets.gradcheck_table("resnet")
    with pytest.raises(ValueError, match=r"precision must be one of \['float64', 'float32'\], got 'float16'"):
        widgets.gradcheck_table(precision="float16")
    net, x = Sequential([Linear(3, 2)]), np.zeros((1, 3), np.float32)
    with pytest.raises(ValueError, match="eps must be a positive step, got 0.0"):
        check_network(net, x, eps=0)
