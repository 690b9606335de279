"""cnnlab.init: every scheme's variance against its formula, fans, gains, orthogonality, LSUV,
symmetry of constant init, seeded reproducibility, activation statistics with depth, errors.

Expected values come from the formulas of the source documents (Khan 5.1, Veta) and PyTorch's documented
gain table, computed here by hand from the shapes, never from cnnlab.init itself.
"""
import math

import numpy as np
import pytest

from cnnlab import Module, Parameter, Sequential, init
from cnnlab.layers import (BatchNorm1d, Conv2d, DropConnect, Flatten, Linear, MapCombination, MaxPool2d, ReLU,
                           Tanh)
from cnnlab.hooks import recording
from cnnlab.optim import SGD

LINEAR_SHAPE = (500, 400)      # (out, in): fan_in 400, fan_out 500
CONV_SHAPE = (64, 32, 5, 5)    # (out, in, kh, kw): fan_in 32*25 = 800, fan_out 64*25 = 1600
FANS = {LINEAR_SHAPE: (400, 500), CONV_SHAPE: (800, 1600)}

# scheme, options, Var(w) as a function of (fan_in, fan_out, shape), written from the formulas
CASES = [
    ("normal", dict(std=0.1), lambda fi, fo, s: 0.1 ** 2),                         # Khan 5.1.1
    ("normal", dict(std=0.01), lambda fi, fo, s: 0.01 ** 2),
    ("normal", dict(mean=0.5, std=0.2), lambda fi, fo, s: 0.04),
    ("uniform", dict(a=-0.1, b=0.1), lambda fi, fo, s: 0.2 ** 2 / 12),              # Khan 5.1.2
    ("uniform", dict(a=0.0, b=1.0), lambda fi, fo, s: 1 / 12),
    ("orthogonal", dict(), lambda fi, fo, s: 1 / max(s[0], math.prod(s[1:]))),      # Khan 5.1.3
    ("orthogonal", dict(gain=2.0), lambda fi, fo, s: 4 / max(s[0], math.prod(s[1:]))),
    ("xavier_normal", dict(), lambda fi, fo, s: 2 / (fi + fo)),                      # Khan eq. 5.1
    ("xavier_uniform", dict(), lambda fi, fo, s: 2 / (fi + fo)),
    ("xavier_normal", dict(gain=5 / 3), lambda fi, fo, s: 25 / 9 * 2 / (fi + fo)),
    ("kaiming_normal", dict(), lambda fi, fo, s: 2 / fi),                            # Khan eq. 5.2
    ("kaiming_uniform", dict(), lambda fi, fo, s: 2 / fi),
    ("he_normal", dict(), lambda fi, fo, s: 2 / fi),
    ("he_uniform", dict(), lambda fi, fo, s: 2 / fi),
    ("kaiming_normal", dict(mode="fan_out"), lambda fi, fo, s: 2 / fo),
    ("kaiming_normal", dict(a=0.2), lambda fi, fo, s: 2 / (1 + 0.04) / fi),
    ("kaiming_uniform", dict(nonlinearity="tanh"), lambda fi, fo, s: 25 / 9 / fi),
    ("kaiming_uniform", dict(a=math.sqrt(5)), lambda fi, fo, s: 1 / (3 * fi)),       # PyTorch's layer default
    ("lecun_normal", dict(), lambda fi, fo, s: 1 / fi),                              # Veta, LeCun
    ("lecun_uniform", dict(), lambda fi, fo, s: 1 / fi),
]


def case_id(case):
    return case[0] + "".join(f"-{k}={v:.3g}" if isinstance(v, float) else f"-{k}={v}" for k, v in case[1].items())


@pytest.mark.parametrize("shape", [LINEAR_SHAPE, CONV_SHAPE], ids=["linear", "conv"])
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_empirical_variance_within_5_percent_of_the_formula(case, shape):
    scheme, options, formula = case
    fan_in, fan_out = FANS[shape]
    expected = formula(fan_in, fan_out, shape)
    w = np.zeros(shape, dtype=np.float32)
    fn = getattr(init, scheme + "_")
    assert fn(w, rng=0, **options) is w                                 # in place, returns its input
    assert w.dtype == np.float32 and w.shape == shape
    assert abs(np.var(w, dtype=np.float64) / expected - 1) < 0.05
    rf = math.prod(shape[2:])
    assert init.predicted_variance(scheme, fan_in, fan_out, receptive_field=rf, **options) == pytest.approx(expected)


@pytest.mark.parametrize("scheme", ["xavier_uniform", "kaiming_uniform", "lecun_uniform"])
def test_uniform_variants_use_the_bound_sqrt3_std(scheme):
    w = getattr(init, scheme + "_")(np.zeros(LINEAR_SHAPE), rng=1)
    fan_in, fan_out = FANS[LINEAR_SHAPE]
    var = {"xavier_uniform": 2 / (fan_in + fan_out), "kaiming_uniform": 2 / fan_in, "lecun_uniform": 1 / fan_in}[scheme]
    bound = math.sqrt(3 * var)
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound            # 200,000 draws come close to the bound
    assert abs(w.mean()) < 0.01 * bound


def test_normal_has_the_requested_mean():
    w = init.normal_(np.zeros(100_000), mean=3.0, std=0.5, rng=0)
    assert abs(w.mean() - 3.0) < 0.01


def test_constants_and_parameters_filled_in_place():
    p = Parameter(np.ones((3, 4), dtype=np.float32))
    assert init.zeros_(p) is p
    np.testing.assert_array_equal(p.data, np.zeros((3, 4)))
    assert p.data.dtype == np.float32
    init.constant_(p, 0.25)
    np.testing.assert_array_equal(p.data, np.full((3, 4), 0.25))
    init.ones_(p)
    np.testing.assert_array_equal(p.data, np.ones((3, 4)))
    assert init.predicted_variance("zeros", 4, 3) == 0.0


# --- fans ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape, fans", [
    ((7, 3), (3, 7)),                      # Linear (out, in)
    ((16, 3, 5, 7), (3 * 35, 16 * 35)),    # Conv2d (out, in, kh, kw): each window has in*kh*kw inputs
    ((4, 6, 5), (30, 20)),                 # a 1-D conv kernel
    ((8, 1, 3, 3), (9, 72)),               # depthwise (MapCombination) layout
])
def test_fan_in_and_fan_out(shape, fans):
    assert init.fan_in_and_fan_out(np.zeros(shape)) == fans
    assert init._calculate_fan_in_and_fan_out(Parameter(np.zeros(shape))) == fans


def test_fans_of_real_layers():
    assert init.fan_in_and_fan_out(Conv2d(3, 8, (3, 5)).weight) == (3 * 15, 8 * 15)
    assert init.fan_in_and_fan_out(Linear(10, 4).weight) == (10, 4)


# --- orthogonal ------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["qr", "svd"])
@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (30, 30), (8, 3, 3, 3), (32, 2, 3, 3)],
                         ids=["tall", "wide", "square", "conv-wide", "conv-tall"])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape, method):
    w = init.orthogonal_(np.zeros(shape, dtype=np.float32), gain=2.0, rng=3, method=method)
    m = w.reshape(shape[0], -1).astype(np.float64)            # conv kernels: one row per output channel
    rows, cols = m.shape
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-5)


def test_orthogonal_sign_correction_makes_the_distribution_symmetric():
    # Householder QR alone returns a first column whose first entry is always negative; after the
    # sign correction Q is uniform over orthogonal matrices, so that entry is positive half the time.
    positive = [init.orthogonal_(np.zeros((3, 3)), rng=seed)[0, 0] > 0 for seed in range(400)]
    assert 0.4 < np.mean(positive) < 0.6


# --- gains: PyTorch's documented table -----------------------------------------------------------------
@pytest.mark.parametrize("name, param, gain", [
    ("linear", None, 1.0), ("conv1d", None, 1.0), ("conv2d", None, 1.0), ("conv_transpose2d", None, 1.0),
    ("sigmoid", None, 1.0), ("tanh", None, 5 / 3), ("relu", None, 2 ** 0.5),
    ("leaky_relu", None, (2 / (1 + 0.01 ** 2)) ** 0.5), ("leaky_relu", 0.2, (2 / 1.04) ** 0.5),
    ("leaky_relu", 0, 2 ** 0.5), ("selu", None, 0.75),
])
def test_calculate_gain_matches_pytorch_table(name, param, gain):
    assert init.calculate_gain(name, param) == pytest.approx(gain, rel=1e-12)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="tanh"):               # the message lists the valid names
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="negative_slope"):
        init.calculate_gain("leaky_relu", "steep")


# --- whole nets: apply ------------------------------------------------------------------------------
def mixed_net():
    return Sequential([Conv2d(2, 4, 3, rng=0), ReLU(), MapCombination(4, 3, 2, rng=1), Flatten(),
                       DropConnect(3 * 5 * 5, 6, rng=2), BatchNorm1d(6), ReLU(), Linear(6, 2, rng=3)])


def test_apply_initializes_every_weight_layer_and_sets_biases():
    net = mixed_net()
    c_before = net[2].c.data.copy()
    records = init.apply(net, "kaiming_normal", rng=0, bias=0.01)
    assert [r["type"] for r in records] == ["Conv2d", "MapCombination", "DropConnect", "Linear"]
    for layer in (net[0], net[2], net[4], net[7]):
        np.testing.assert_array_equal(layer.bias.data, np.full(layer.bias.shape, 0.01, dtype=np.float32))
    assert records[0]["fan_in"] == 2 * 9 and records[0]["predicted_variance"] == pytest.approx(2 / 18)
    assert records[2]["predicted_variance"] == pytest.approx(2 / 75)
    np.testing.assert_array_equal(net[2].c.data, c_before)          # mixing logits untouched
    np.testing.assert_array_equal(net[5].weight.data, np.ones(6))   # batch norm's gamma untouched
    init.apply(net, "zeros")                                         # deterministic: no rng needed
    assert all(not np.any(p.data) for layer in (net[0], net[4], net[7]) for p in layer.parameters())


def test_apply_passes_options_and_gain_and_can_keep_biases():
    net = Sequential([Linear(300, 400, rng=0), Tanh(), Linear(400, 300, rng=1)])
    bias = net[0].bias.data.copy()
    init.apply(net, "normal", rng=0, std=0.05, bias="keep")
    np.testing.assert_array_equal(net[0].bias.data, bias)
    assert abs(np.std(net[0].weight.data) / 0.05 - 1) < 0.05
    init.apply(net, "xavier_normal", rng=0, gain=init.calculate_gain("tanh"))
    assert abs(np.var(net[2].weight.data) / (25 / 9 * 2 / 700) - 1) < 0.05


def test_seeded_reproducibility():
    def state(seed, dtype=np.float32, scheme="xavier_uniform"):
        net = mixed_net().astype(dtype)
        init.apply(net, scheme, rng=seed)
        return net.state_dict()

    a, b, c = state(7), state(np.random.default_rng(7)), state(8)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert any(not np.array_equal(a[k], c[k]) for k in a if k.endswith("weight"))
    d = state(7, np.float64)                                   # the same draws, only rounded differently
    for key in a:
        np.testing.assert_allclose(a[key], d[key], rtol=1e-6, atol=1e-7)
    e, f = state(3, scheme="orthogonal"), state(3, scheme="orthogonal")
    for key in e:
        np.testing.assert_array_equal(e[key], f[key])


def test_constant_init_never_breaks_the_symmetry():
    """Khan 5.1: with equal weights all hidden units compute and learn the same thing."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 3))

    def train(scheme, **options):
        net = Sequential([Linear(4, 8), Tanh(), Linear(8, 3)]).astype(np.float64)
        init.apply(net, scheme, rng=1, **options)
        start = net[0].weight.data.copy()
        opt = SGD(net.parameters(), lr=0.1)
        for _ in range(5):
            out = net(X)
            net.backward(2 * (out - y) / out.size)
            opt.step()
        assert not np.allclose(net[0].weight.data, start)      # the weights did move
        return net

    for net in (train("constant", val=0.3), train("ones")):
        w1, w2 = net[0].weight.data, net[2].weight.data
        np.testing.assert_allclose(w1, np.broadcast_to(w1[0], w1.shape), rtol=1e-12, atol=1e-14)  # equal rows
        np.testing.assert_allclose(w2, np.broadcast_to(w2[:, :1], w2.shape), rtol=1e-12, atol=1e-14)
    random = train("normal", std=0.5)
    assert np.min(np.ptp(random[0].weight.data, axis=0)) > 1e-3                     # units differ


def test_zeros_init_does_not_learn_hidden_features():
    net = Sequential([Linear(4, 8), Tanh(), Linear(8, 3)]).astype(np.float64)
    init.apply(net, "zeros")
    X = np.random.default_rng(0).standard_normal((10, 4))
    opt = SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        out = net(X)
        net.backward(out - 1.0)
        opt.step()
    assert not np.any(net[0].weight.data) and not np.any(net[2].weight.data)  # no gradient reaches them
    assert np.all(net[2].bias.data != 0)                                        # only the output bias learns


# --- LSUV ------------------------------------------------------------------------------------------------
def mlp(depth, width, act, d_in, d_out=10, seed=0):
    g = np.random.default_rng(seed)
    layers, d = [], d_in
    for _ in range(depth - 1):
        layers += [Linear(d, width, rng=g), act()]
        d = width
    return Sequential(layers + [Linear(d, d_out, rng=g)])


def small_cnn(seed=0):
    g = np.random.default_rng(seed)
    return Sequential([Conv2d(1, 6, 3, rng=g), ReLU(), MaxPool2d(2), Conv2d(6, 8, 3, rng=g), ReLU(),
                       Flatten(), Linear(8 * 4 * 4, 10, rng=g)])


def weight_layer_output_variances(net, X):
    """Run X layer by layer (no cnnlab.init involved) and return Var(output) of every weight layer."""
    variances = []
    for layer in net:
        X = layer(X)
        if isinstance(layer, (Linear, Conv2d)):
            variances.append(float(np.var(X, dtype=np.float64)))
    return variances


@pytest.mark.parametrize("make, shape", [
    (lambda: mlp(6, 64, Tanh, 20), (256, 20)),
    (lambda: mlp(6, 64, ReLU, 20), (256, 20)),
    (small_cnn, (64, 1, 14, 14)),
], ids=["tanh-mlp", "relu-mlp", "cnn"])
@pytest.mark.parametrize("tol", [0.1, 0.01])
def test_lsuv_brings_every_layer_output_to_unit_variance(make, shape, tol):
    net = make()
    X = (3.0 * np.random.default_rng(1).standard_normal(shape)).astype(np.float32)  # not unit variance
    report = init.lsuv(net, X, tol=tol, rng=0)
    measured = weight_layer_output_variances(net, X)
    assert len(report) == len(measured) == sum(isinstance(m, (Linear, Conv2d)) for m in net)
    for r, v in zip(report, measured):
        assert r["converged"] and abs(v - 1) < tol
        assert r["variance"] == pytest.approx(v, rel=1e-5)
    assert report[0]["iterations"] >= 1                      # inputs of variance 9: the first layer was rescaled


def test_lsuv_covers_every_weight_layer_kind():
    net = mixed_net()                       # Conv2d, MapCombination, DropConnect (+ batch norm), Linear
    X = np.random.default_rng(0).standard_normal((64, 2, 8, 8)).astype(np.float32)
    report = init.lsuv(net, X, tol=0.05, rng=0)
    assert [r["type"] for r in report] == ["Conv2d", "MapCombination", "DropConnect", "Linear"]
    net.eval()                              # LSUV measures in evaluation mode (drop-connect uses p W)
    h = X
    variances = []
    for layer in net:
        h = layer(h)
        if layer in (net[0], net[2], net[4], net[7]):
            variances.append(np.var(h, dtype=np.float64))
    assert all(r["converged"] and abs(v - 1) < 0.05 for r, v in zip(report, variances))


def test_lsuv_starts_from_orthogonal_weights_and_zero_biases():
    net = mlp(4, 32, Tanh, 32, d_out=32)
    X = np.random.default_rng(2).standard_normal((200, 32)).astype(np.float32)
    init.lsuv(net, X, rng=0)
    for layer in net:
        if isinstance(layer, Linear):
            w = layer.weight.data.astype(np.float64)
            gram = w @ w.T
            np.testing.assert_allclose(gram, gram[0, 0] * np.eye(32), atol=1e-5 * gram[0, 0])  # a scaled orthogonal
            assert not np.any(layer.bias.data)


def test_lsuv_respects_max_iter_and_restores_the_mode():
    net = mlp(3, 16, Tanh, 8)
    net.train()
    X = (10 * np.random.default_rng(0).standard_normal((100, 8))).astype(np.float32)
    report = init.lsuv(net, X, max_iter=0, rng=0)
    assert all(r["iterations"] == 0 for r in report)
    assert not report[0]["converged"] and report[0]["variance"] > 5  # orthogonal 16x8: Var = 8 * 100 / 16 = 50
    assert net.training
    records = init.apply(mlp(3, 16, Tanh, 8), "lsuv", rng=0, X=X, tol=0.05)
    assert all(r["converged"] and abs(r["output_variance"] - 1) < 0.05 for r in records)
    assert all(r["predicted_variance"] is None for r in records)


def reference_lsuv(net, X, tol, max_iter, seed):
    """Mishkin & Matas as written, the oracle: orthogonal weights (biases kept), then for every weight layer in
    turn run the WHOLE net on X and divide the weight by the std of the layer's output, until within tol of 1."""
    gen = np.random.default_rng(seed)
    layers = init.weight_layers(net)
    for _, layer in layers:
        init.orthogonal_(layer.weight, rng=gen)
    net.eval()
    report = []
    for name, layer in layers:
        iterations = 0
        while True:
            with recording([layer]) as (seen, _):
                net(X)
            variance = float(np.var(seen[0]))
            if abs(variance - 1) < tol or iterations >= max_iter:
                break
            layer.weight.data /= np.sqrt(variance)
            iterations += 1
        report.append((name, iterations, variance))
    return report


class TwoLayerBlock(Module):
    """A hand-written module (not a Sequential) holding two weight layers."""

    def __init__(self, g):
        self.first, self.act, self.second = Linear(10, 12, rng=g), Tanh(), Linear(12, 6, rng=g)

    def forward(self, x):
        return self.second(self.act(self.first(x)))


def nested_net(seed=0):
    g = np.random.default_rng(seed)
    return Sequential(Conv2d(1, 4, 3, rng=g), Tanh(), Sequential(MaxPool2d(2), Conv2d(4, 5, 3, rng=g), ReLU()),
                      Flatten(), Linear(20, 10, rng=g), TwoLayerBlock(g), Tanh(), Linear(6, 3, rng=g))


@pytest.mark.parametrize("make, shape", [
    (lambda: mlp(6, 16, Tanh, 8), (200, 8)),
    (nested_net, (100, 1, 10, 10)),
], ids=["tanh-mlp", "nested-cnn-with-a-hand-written-block"])
def test_lsuv_gives_the_same_weights_as_rerunning_the_whole_net_for_every_layer(make, shape):
    """Random biases (kept): layers need several rescalings, and every later layer must see the rescaled earlier ones."""
    ours, theirs = make().astype(np.float64), make().astype(np.float64)
    X = 3.0 * np.random.default_rng(3).standard_normal(shape)
    report = init.lsuv(ours, X, tol=0.01, max_iter=10, rng=5, bias="keep")
    expected = reference_lsuv(theirs, X, tol=0.01, max_iter=10, seed=5)
    assert [(r["name"], r["iterations"]) for r in report] == [(name, it) for name, it, _ in expected]
    assert max(r["iterations"] for r in report) >= 2
    np.testing.assert_allclose([r["variance"] for r in report], [v for _, _, v in expected], rtol=1e-12)
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p.data, q.data, rtol=1e-12, atol=0)


def test_lsuv_runs_each_layer_a_number_of_times_linear_in_depth(monkeypatch):
    """Depth 20: each Tanh runs once, each Linear once per measurement (its rescalings + 1), not once per
    measurement of every weight layer (Mishkin & Matas' whole-net passes: 20 x 40 layer calls and more)."""
    calls = {"Linear": 0, "Tanh": 0}
    for cls in (Linear, Tanh):
        def counted(self, x, _forward=cls.forward, _name=cls.__name__):
            calls[_name] += 1
            return _forward(self, x)
        monkeypatch.setattr(cls, "forward", counted)
    g = np.random.default_rng(0)
    net = Sequential([m for _ in range(20) for m in (Linear(32, 32, rng=g), Tanh())]).astype(np.float64)
    report = init.lsuv(net, 3.0 * g.standard_normal((128, 32)), rng=0)
    assert all(r["iterations"] >= 1 for r in report)            # the inputs' variance is 9: every layer rescaled
    assert calls == {"Linear": sum(r["iterations"] + 1 for r in report), "Tanh": 20}


# --- activation statistics with depth ------------------------------------------------------------------
DEPTH, WIDTH = 20, 256


@pytest.mark.parametrize("scheme, act, options, low, high", [
    ("xavier_normal", Tanh, dict(gain=5 / 3), 0.2, 5.0),   # gain calculate_gain("tanh")
    ("kaiming_normal", ReLU, dict(), 0.2, 5.0),
    ("normal", Tanh, dict(std=0.01), 0.0, 1e-6),           # Khan 5.1.2: a fixed small scale vanishes
    ("normal", ReLU, dict(std=0.01), 0.0, 1e-6),
])
def test_activation_std_at_depth_20(scheme, act, options, low, high):
    net = Sequential([m for _ in range(DEPTH) for m in (Linear(WIDTH, WIDTH), act())])
    init.apply(net, scheme, rng=0, **options)
    X = np.random.default_rng(1).standard_normal((500, WIDTH)).astype(np.float32)
    stats = init.activation_stats(net, X, rng=2)
    acts = [s for s in stats if s.kind == act.__name__]
    assert len(acts) == DEPTH
    assert low <= acts[-1].std <= high
    assert acts[-1].std == pytest.approx(np.std(net(X), dtype=np.float64), rel=1e-6)  # the net's own output
    if scheme == "normal":                                                            # and the gradients vanish too
        assert acts[0].grad_std < 1e-6 * acts[-1].grad_std


def test_activation_stats_records_outputs_and_backpropagated_gradients():
    net = Sequential([Linear(5, 4, rng=0), Tanh(), Linear(4, 3, rng=1)]).astype(np.float64)
    net.train()
    X = np.random.default_rng(0).standard_normal((50, 5))
    stats = init.activation_stats(net, X, rng=3)
    assert [(s.name, s.kind) for s in stats] == [("0", "Linear"), ("1", "Tanh"), ("2", "Linear")]
    h = X @ net[0].weight.data.T + net[0].bias.data                   # by hand
    np.testing.assert_allclose(stats[0].output, h)
    assert stats[1].mean == pytest.approx(np.tanh(h).mean()) and stats[1].std == pytest.approx(np.tanh(h).std())
    dout = stats[2].grad                                              # the random upstream gradient, N(0, 1)
    assert dout.shape == (50, 3) and 0.7 < dout.std() < 1.3
    np.testing.assert_allclose(stats[1].grad, dout @ net[2].weight.data)
    np.testing.assert_allclose(stats[0].grad, (dout @ net[2].weight.data) * (1 - np.tanh(h) ** 2))
    assert stats[0].weight_grad_std == pytest.approx(np.std(stats[0].grad.T @ X))
    assert stats[1].weight_grad_std is None
    assert net.training and all("forward" not in vars(m) for m in net)  # mode and methods restored
    again = init.activation_stats(net, X, rng=3)
    np.testing.assert_array_equal(again[0].grad, stats[0].grad)
    assert init.activation_stats(net, X, backward=False)[0].grad is None


# --- errors -----------------------------------------------------------------------------------------------
def test_unknown_scheme_lists_the_valid_ones():
    with pytest.raises(ValueError) as err:
        init.apply(mlp(2, 4, ReLU, 3), "glorot", rng=0)
    for name in ("zeros", "normal", "uniform", "orthogonal", "xavier_normal", "kaiming_normal", "he_normal",
                 "lecun_normal", "lsuv"):
        assert name in str(err.value)
    with pytest.raises(ValueError, match="xavier_uniform"):
        init.predicted_variance("glorot", 3, 4)


@pytest.mark.parametrize("fn", [init.normal_, init.uniform_, init.orthogonal_, init.xavier_normal_,
                                init.kaiming_uniform_, init.he_normal_, init.lecun_normal_])
def test_random_schemes_draw_from_the_library_generator_without_rng(fn):
    # rng=None: like torch.nn.init, each call draws fresh numbers (reproducibility: tests/test_rng.py)
    assert not np.array_equal(fn(np.zeros((3, 4))), fn(np.zeros((3, 4))))
    with pytest.raises(TypeError, match=f"{fn.__name__}: rng must be a numpy.random.Generator"):
        fn(np.zeros((3, 4)), rng="seed")
    with pytest.raises(ValueError, match="non-negative"):
        fn(np.zeros((3, 4)), rng=-1)


def test_apply_lsuv_and_stats_without_rng():
    net = mlp(2, 4, ReLU, 3)
    X = np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32)
    init.apply(net, "he_normal")
    first = net[0].weight.data.copy()
    init.apply(net, "he_normal")
    assert not np.array_equal(first, net[0].weight.data)
    assert all(r["converged"] for r in init.lsuv(net, X))
    assert len(init.activation_stats(net, X)) == len(net)
    with pytest.raises(TypeError, match="rng must be"):
        init.apply(net, "he_normal", rng=1.5)


@pytest.mark.parametrize("fn", [init.fan_in_and_fan_out, lambda t: init.xavier_normal_(t, rng=0),
                                lambda t: init.kaiming_normal_(t, rng=0), lambda t: init.orthogonal_(t, rng=0)])
def test_one_dimensional_tensors_have_no_fan(fn):
    with pytest.raises(ValueError, match=r"\(5,\)"):
        fn(np.zeros(5))


def test_bad_arguments():
    with pytest.raises(TypeError, match="int64"):
        init.normal_(np.zeros((2, 2), dtype=np.int64), rng=0)
    with pytest.raises(TypeError, match="list"):
        init.zeros_([[0.0, 1.0]])
    with pytest.raises(ValueError, match="std"):
        init.normal_(np.zeros(3), std=-1.0, rng=0)
    with pytest.raises(ValueError, match="a <= b"):
        init.uniform_(np.zeros(3), a=1.0, b=0.0, rng=0)
    with pytest.raises(ValueError, match="fan_avg"):
        init.kaiming_normal_(np.zeros((3, 3)), mode="fan_avg", rng=0)
    with pytest.raises(ValueError, match="svd"):
        init.orthogonal_(np.zeros((3, 3)), rng=0, method="eig")
    net = mlp(2, 4, ReLU, 3)
    with pytest.raises(ValueError, match="nonlinearity"):              # He has no gain
        init.apply(net, "kaiming_normal", rng=0, gain=2.0)
    with pytest.raises(TypeError, match="std"):                        # an option the scheme does not take
        init.apply(net, "xavier_normal", rng=0, std=0.1)
    with pytest.raises(ValueError, match="X"):
        init.apply(net, "lsuv", rng=0)
    with pytest.raises(ValueError, match="bias"):
        init.apply(net, "xavier_normal", rng=0, bias="ones")
    with pytest.raises(ValueError, match="bias"):
        init.lsuv(net, np.zeros((4, 3), dtype=np.float32), rng=0, bias="ones")
    with pytest.raises(ValueError, match="tol"):
        init.lsuv(net, np.zeros((4, 3), dtype=np.float32), tol=0.0, rng=0)
    with pytest.raises(ValueError, match="weight layers"):
        init.apply(Sequential([ReLU()]), "normal", rng=0)
