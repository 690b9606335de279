"""Self-checks of lesson 08: the right answers pass, every named mistake is recognised."""
import math

import numpy as np
import pytest

from checks import CheckFailed
from checks.initialization import check_init_fills, check_leaky_he_variance, check_lsuv
from cnnlab.hooks import recording


# --- exercise 1: Xavier and He fill a weight in place --------------------------------------------------------
def fans(w):
    receptive = int(np.prod(w.shape[2:]))
    return w.shape[1] * receptive, w.shape[0] * receptive


def xavier_ok(w, gain=1.0, rng=None):
    fan_in, fan_out = fans(w)
    w[...] = gain * np.sqrt(6.0 / (fan_in + fan_out)) * (2 * rng.random(w.shape) - 1)
    return w


def kaiming_ok(w, rng=None):
    w[...] = rng.normal(0.0, np.sqrt(2.0 / fans(w)[0]), size=w.shape)
    return w


def xavier_with(bound):
    def fill(w, gain=1.0, rng=None):
        b = bound(w, gain, *fans(w))
        w[...] = rng.uniform(-b, b, size=w.shape)
        return w
    return fill


def kaiming_with(std):
    def fill(w, rng=None):
        w[...] = rng.normal(0.0, std(w, *fans(w)), size=w.shape)
        return w
    return fill


def test_fill_right_answers_pass_for_several_seeds(capsys):
    for seed in range(8):    # the margins hold for any seed: 60,000 draws per shape, 5 % on the variance
        check_init_fills(xavier_ok, kaiming_ok, seed=seed)
    assert capsys.readouterr().out.count("✓") == 8


def test_fill_expected_variances_by_hand():
    # (8, 3, 5, 3): fan_in = 3·15 = 45, fan_out = 8·15 = 120; He: Var = 2/45; Xavier gain 5/3: (25/9)·2/165
    w = kaiming_ok(np.empty((2000, 8, 5, 3)), np.random.default_rng(0))  # fan_in = 120 here
    assert np.var(w) == pytest.approx(2 / 120, rel=0.02)
    w = xavier_ok(np.empty((8, 3, 5, 3)), 5 / 3, np.random.default_rng(0))
    assert np.abs(w).max() <= 5 / 3 * np.sqrt(6 / 165)


def new_array_xavier(w, gain=1.0, rng=None):
    fan_in, fan_out = fans(w)
    b = gain * np.sqrt(6.0 / (fan_in + fan_out))
    w = rng.uniform(-b, b, size=w.shape)
    return w


def global_kaiming(w, rng=None):
    w[...] = np.random.normal(0.0, np.sqrt(2.0 / fans(w)[0]), size=w.shape)
    return w


def fresh_rng_xavier(w, gain=1.0, rng=None):
    return xavier_ok(w, gain, np.random.default_rng())


def fixed_seed_kaiming(w, rng=None):
    return kaiming_ok(w, np.random.default_rng(0))


def no_return_kaiming(w, rng=None):
    kaiming_ok(w, rng)


def gaussian_xavier(w, gain=1.0, rng=None):
    fan_in, fan_out = fans(w)
    w[...] = rng.normal(0.0, gain * np.sqrt(2.0 / (fan_in + fan_out)), size=w.shape)
    return w


def uniform_kaiming(w, rng=None):
    b = np.sqrt(6.0 / fans(w)[0])
    w[...] = rng.uniform(-b, b, size=w.shape)
    return w


def uncentred_xavier(w, gain=1.0, rng=None):
    fan_in, fan_out = fans(w)
    w[...] = gain * np.sqrt(6.0 / (fan_in + fan_out)) * rng.random(w.shape)
    return w


def placeholder_xavier(w, gain=1.0, rng=None):
    fan_in, fan_out = ...  # your code here
    return w


def placeholder_kaiming(w, rng=None):
    ...  # your code here
    return w


XAVIER_MISTAKES = [
    (xavier_with(lambda w, g, fi, fo: g * np.sqrt(6 / (w.shape[0] + w.shape[1]))), "ignore the kernel"),
    (xavier_with(lambda w, g, fi, fo: g * np.sqrt(2 / (fi + fo))), "√3 is missing"),
    (xavier_with(lambda w, g, fi, fo: g * np.sqrt(18 / (fi + fo))), "3 times Xavier's variance"),
    (xavier_with(lambda w, g, fi, fo: np.sqrt(6 / (fi + fo))), "gain is ignored"),
    (xavier_with(lambda w, g, fi, fo: g * g * np.sqrt(6 / (fi + fo))), "gain is squared"),
    (xavier_with(lambda w, g, fi, fo: g * np.sqrt(6 / fi)), "only fan_in"),
    (xavier_with(lambda w, g, fi, fo: g * 6 / (fi + fo)), "square root is missing"),
    (xavier_with(lambda w, g, fi, fo: 0.1), r"Var\(w\) = 0.0033\d but should be 0.002 "),
    (new_array_xavier, "replaced the weight by a new array"),
    (fresh_rng_xavier, "same seed gave different weights"),
    (gaussian_xavier, r"do not fill U\(-b, b\)"),
    (uncentred_xavier, "not centred on 0"),
    (placeholder_xavier, "still contains `...`"),
    (lambda w, gain, rng: ..., "still returns `...`"),
    (lambda w, gain, rng: None, "left the weight as it was"),
    (lambda w, gain: w, "raised TypeError"),
    (..., "still Ellipsis"),
]

KAIMING_MISTAKES = [
    (kaiming_with(lambda w, fi, fo: np.sqrt(2 / w.shape[1])), "fan_in ignores the kernel"),
    (kaiming_with(lambda w, fi, fo: np.sqrt(2 / fo)), "fan_in and fan_out are swapped: fan_in = shape"),
    (kaiming_with(lambda w, fi, fo: np.sqrt(1 / fi)), "factor 2 is missing"),
    (kaiming_with(lambda w, fi, fo: 2 / fi), "rng.normal takes the std"),
    (kaiming_with(lambda w, fi, fo: np.sqrt(2 / (fi + fo))), "Xavier's variance"),
    (global_kaiming, "global random state"),
    (fixed_seed_kaiming, "rng` argument is ignored"),
    (no_return_kaiming, "returned None"),
    (uniform_kaiming, "look uniform"),
    (lambda w, rng: w.fill(0.0), "returned None"),
    (lambda w, rng: np.ones(3), "new array"),
    (lambda w, rng: w.__setitem__((0,), 0.1) or w, r"filled only part of the weight \(209300 of 210000"),
    (lambda w, rng: w.__setitem__(Ellipsis, np.inf) or w, "NaN or infinity"),
    (placeholder_kaiming, "still contains `...`"),
    (0.5, "should be a function"),
]


@pytest.mark.parametrize("wrong, message", XAVIER_MISTAKES)
def test_xavier_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_init_fills(wrong, kaiming_ok)


@pytest.mark.parametrize("wrong, message", KAIMING_MISTAKES)
def test_kaiming_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_init_fills(xavier_ok, wrong)


# --- exercise 2: the LSUV loop -----------------------------------------------------------------------------------
def with_weights(net):
    return [(i, m) for i, m in enumerate(net) if hasattr(m, "weight")]


def lsuv_ok(net, X, tol=0.1, max_iter=10):
    """Mishkin & Matas' loop as they state it: rerun the whole net for every measurement (hooks record it)."""
    layers = [m for _, m in with_weights(net)]
    for k, layer in enumerate(layers):
        for done in range(max_iter + 1):
            with recording([layer]) as (outputs, _):
                net(X)
            variance = outputs[0].var()
            if abs(variance - 1) < tol or done == max_iter:
                break
            layer.weight.data = layer.weight.data / np.sqrt(variance)
    return net


def lsuv_walk(mistake):
    """A layer-by-layer walk with one `mistake`."""
    def lsuv(net, X, tol=0.1, max_iter=10):
        inputs, h = [], X
        for m in net:
            inputs.append(h)
            h = m(h)
        h = X
        for i, m in (with_weights(net) if mistake == "original" else enumerate(net)):
            if hasattr(m, "weight"):
                seen = inputs[i] if mistake == "original" else h
                for n in range(1 if mistake == "once" else max_iter):
                    out = m(seen)
                    v = out.var(axis=0).mean() if mistake == "per unit" else out.var()
                    if abs(v - 1) < tol:
                        break
                    m.weight.data /= v if mistake == "variance" else v ** 0.5
                    if mistake == "bias":
                        m.bias.data /= v ** 0.5
            h = m(h) if mistake != "original" else h
        return net
    return lsuv


def lsuv_replaces_weight(net, X, tol=0.1, max_iter=10):
    for _, m in with_weights(net):
        m.weight.data = np.zeros(3)


def lsuv_placeholder(net, X, tol=0.1, max_iter=10):
    ...  # your code here
    return net


def test_lsuv_right_answers_pass(capsys):
    check_lsuv(lsuv_ok)
    check_lsuv(lsuv_walk(None))
    assert capsys.readouterr().out.count("✓") == 2


def test_lsuv_right_answer_gives_unit_variances():
    from checks.initialization import _lsuv_nets

    _, build, X, tol, _ = _lsuv_nets()[0]
    net = lsuv_ok(build(), X, tol=tol)
    layers = [m for _, m in with_weights(net)]
    with recording(layers) as (outputs, _):
        net(X)
    assert all(abs(outputs[k].var() - 1) < tol for k in range(len(layers)))


@pytest.mark.parametrize("wrong, message", [
    (lsuv_walk("variance"), "divided the weight by the variance"),
    (lsuv_walk("original"), "before the earlier layers were rescaled"),
    (lsuv_walk("once"), "stopped after one rescaling"),
    (lsuv_walk("bias"), "rescaled the bias too"),
    (lsuv_walk("per unit"), "variance of all entries"),
    (lambda net, X, tol, max_iter: [m.weight.data.__imul__(0.9) for _, m in with_weights(net)],
     r"weight layer 1 \(Linear\) ends with output variance"),
    (lsuv_replaces_weight, r"should stay an array of shape \(20, 12\)"),
    (lambda net, X, tol, max_iter: None, "changed no weight"),
    (lsuv_placeholder, "lsuv still contains `...`"),
    (lambda net, X: net, "raised TypeError"),
    (None, "still None"),
])
def test_lsuv_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_lsuv(wrong)


# --- exercise 3: He's variance for a leaky ReLU -------------------------------------------------------------------
def test_leaky_he_right_answer_passes(capsys):
    check_leaky_he_variance(lambda a, fan_in: 2 / ((1 + a ** 2) * fan_in))
    assert "✓" in capsys.readouterr().out


def test_leaky_he_by_monte_carlo():
    # E[f(z)^2] for a leaky ReLU with slope a on z ~ N(0, 1) is (1 + a^2)/2: the formula's reason
    a = 0.3
    z = np.random.default_rng(1).standard_normal(1_000_000)
    assert np.mean(np.where(z > 0, z, a * z) ** 2) == pytest.approx((1 + a * a) / 2, rel=5e-3)


@pytest.mark.parametrize("wrong, message", [
    (lambda a, n: 2 / n, "slope a is ignored"),
    (lambda a, n: 2 / ((1 + a) * n), "1 \\+ a², not 1 \\+ a"),
    (lambda a, n: math.sqrt(2 / ((1 + a * a) * n)), "standard deviation"),
    (lambda a, n: 1 / n, r"0\.0(2|1)\b.*LeCun|LeCun"),
    (lambda a, n: 2 / ((1 - a * a) * n), "not 1 - a²"),
    (lambda a, n: 3 / n, r"should be 0.0384615"),
    (lambda a, n: ..., "still returns `...`"),
])
def test_leaky_he_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        check_leaky_he_variance(wrong)
