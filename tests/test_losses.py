"""Tests of cnnlab.losses: hand-worked values, finite-difference gradients, validation."""
import math

import numpy as np
import pytest

from cnnlab.gradcheck import numerical_gradient
from cnnlab.losses import (
    CrossEntropyLoss,
    MSELoss,
    SoftmaxMSELoss,
    log_softmax,
    one_hot,
    softmax,
)

LN2 = math.log(2.0)


def numeric_grad(f, x, h=1e-6):
    """Centred differences of a scalar function of an array (cnnlab.gradcheck's, tested on its own)."""
    return numerical_gradient(lambda: f(x), x, eps=h)


# ----------------------------------------------------------------------------------- helpers

def test_softmax_hand_values():
    # exp(log k) = k, so softmax(log [1, 1, 2, 4]) = [1, 1, 2, 4] / 8
    z = np.log(np.array([1.0, 1.0, 2.0, 4.0]))
    np.testing.assert_allclose(softmax(z), [1 / 8, 1 / 8, 2 / 8, 4 / 8], rtol=1e-12)
    np.testing.assert_allclose(log_softmax(z), np.log([1 / 8, 1 / 8, 2 / 8, 4 / 8]), rtol=1e-12)


def test_softmax_axis_and_shift_invariance():
    z = np.array([[0.0, 1.0], [2.0, 2.0]])
    # along axis 0: column 0 is [0, 2] -> [1, e^2] / (1 + e^2); column 1 is [1, 2] -> [1, e] / (1 + e)
    expected = np.array([[1 / (1 + math.e ** 2), 1 / (1 + math.e)],
                         [math.e ** 2 / (1 + math.e ** 2), math.e / (1 + math.e)]])
    np.testing.assert_allclose(softmax(z, axis=0), expected, rtol=1e-12)
    np.testing.assert_allclose(softmax(z + 1000.0), softmax(z), rtol=1e-12)


def test_softmax_extreme_logits_finite_float32():
    z = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    p = softmax(z)
    assert p.dtype == np.float32
    np.testing.assert_array_equal(p, [[1.0, 0.0, 0.0]])
    lp = log_softmax(z)
    assert np.isfinite(lp).all()
    np.testing.assert_allclose(lp, [[0.0, -2e4, -1e4]], rtol=1e-6)


def test_softmax_integer_input_becomes_float64():
    assert softmax([1, 2, 3]).dtype == np.float64


def test_one_hot():
    out = one_hot(np.array([2, 0]), 4)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1, 0], [1, 0, 0, 0]])
    np.testing.assert_array_equal(one_hot(np.array([[1], [0]]), 2, dtype=np.int64), [[[0, 1]], [[1, 0]]])


def test_one_hot_validation():
    with pytest.raises(ValueError, match=r"must be in \[0, 4\), got 4 at index 1"):
        one_hot(np.array([0, 4]), 4)
    with pytest.raises(TypeError, match="integer class indices, got dtype float64"):
        one_hot(np.array([0.0, 1.0]), 4)
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        one_hot(np.array([0]), 0)


# ---------------------------------------------------------------------------- cross-entropy

def hand_example():
    # row 0: four equal logits, label 1          -> p = 1/4 each,         loss = log 4 = 2 log 2
    # row 1: logits log [1, 1, 2, 4], label 3    -> p = [1, 1, 2, 4] / 8,  loss = -log(1/2) = log 2
    logits = np.array([[0.0, 0.0, 0.0, 0.0], np.log([1.0, 1.0, 2.0, 4.0])])
    labels = np.array([1, 3])
    # p - onehot, by hand
    d = np.array([[0.25, -0.75, 0.25, 0.25], [1 / 8, 1 / 8, 1 / 4, -1 / 2]])
    return logits, labels, d


def test_cross_entropy_hand_values_mean_and_sum():
    logits, labels, d = hand_example()
    mean = CrossEntropyLoss()
    assert mean(logits, labels) == pytest.approx(1.5 * LN2, rel=1e-12)
    np.testing.assert_allclose(mean.backward(), d / 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mean.probs, [[0.25] * 4, [1 / 8, 1 / 8, 2 / 8, 4 / 8]], rtol=1e-12)
    total = CrossEntropyLoss(reduction="sum")
    assert total.forward(logits, labels) == pytest.approx(3 * LN2, rel=1e-12)
    np.testing.assert_allclose(total.backward(), d, rtol=1e-12, atol=1e-15)


def test_cross_entropy_returns_python_float_and_keeps_dtype():
    logits, labels, _ = hand_example()
    fn = CrossEntropyLoss()
    loss = fn(logits.astype(np.float32), labels.astype(np.uint8))
    assert type(loss) is float
    g = fn.backward()
    assert g.dtype == np.float32 and g.shape == (2, 4)
    assert loss == pytest.approx(1.5 * LN2, rel=1e-6)


@pytest.mark.parametrize("n,c", [(3, 7), (1, 2), (5, 3)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_gradient_matches_central_differences(n, c, reduction):
    rng = np.random.default_rng(n * 10 + c)
    logits = rng.normal(scale=2.0, size=(n, c))
    labels = rng.integers(0, c, size=n)
    fn = CrossEntropyLoss(reduction=reduction)
    fn(logits, labels)
    analytic = fn.backward()
    numeric = numeric_grad(lambda z: CrossEntropyLoss(reduction=reduction)(z, labels), logits.copy())
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


def test_label_smoothing_hand_values_on_three_classes():
    """p = (1/4, 1/2, 1/4) with label 1, and p = (1/3, 1/3, 1/3) with label 0; eps = 0.3, C = 3, so
    q = 0.7 onehot + 0.1: (0.1, 0.8, 0.1) and (0.8, 0.1, 0.1).
    Losses: -(0.1 ln 1/4 + 0.8 ln 1/2 + 0.1 ln 1/4) = 1.2 ln 2, and -(1) ln 1/3 = ln 3.
    Gradients p - q: (0.15, -0.3, 0.15) and (1/3 - 0.8, 1/3 - 0.1, 1/3 - 0.1) = (-7/15, 7/30, 7/30)."""
    logits = np.log([[1.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
    labels = np.array([1, 0])
    d = np.array([[0.15, -0.3, 0.15], [-7 / 15, 7 / 30, 7 / 30]])
    total = CrossEntropyLoss(reduction="sum", label_smoothing=0.3)
    assert total(logits, labels) == pytest.approx(1.2 * LN2 + math.log(3), rel=1e-12)
    np.testing.assert_allclose(total.backward(), d, rtol=1e-12, atol=1e-15)
    mean = CrossEntropyLoss(label_smoothing=0.3)
    assert mean(logits, labels) == pytest.approx((1.2 * LN2 + math.log(3)) / 2, rel=1e-12)
    np.testing.assert_allclose(mean.backward(), d / 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mean.backward().sum(axis=1), 0, atol=1e-15)  # p and q both sum to 1
    assert "label_smoothing=0.3" in repr(mean)


@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_label_smoothing_gradient_matches_central_differences(eps, reduction):
    rng = np.random.default_rng(7)
    logits = rng.normal(scale=2.0, size=(4, 5))
    labels = rng.integers(0, 5, size=4)
    fn = CrossEntropyLoss(reduction=reduction, label_smoothing=eps)
    fn(logits, labels)
    numeric = numeric_grad(lambda z: CrossEntropyLoss(reduction=reduction, label_smoothing=eps)(z, labels),
                           logits.copy())
    np.testing.assert_allclose(fn.backward(), numeric, rtol=1e-6, atol=1e-9)


def test_label_smoothing_zero_is_the_plain_loss_and_float32_is_kept():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(8, 10)).astype(np.float32)
    labels = rng.integers(0, 10, size=8)
    plain, zero = CrossEntropyLoss(), CrossEntropyLoss(label_smoothing=0.0)
    assert zero(logits, labels) == plain(logits, labels)
    np.testing.assert_array_equal(zero.backward(), plain.backward())
    smooth = CrossEntropyLoss(label_smoothing=0.1)
    smooth(logits, labels)
    assert smooth.backward().dtype == np.float32
    for bad in (-0.1, 1.5, float("nan"), True, "0.1"):
        with pytest.raises(ValueError, match="label_smoothing must be a number in \\[0, 1\\]"):
            CrossEntropyLoss(label_smoothing=bad)


def test_cross_entropy_independent_formula():
    # -log(exp(z_y) / sum exp(z)) written out directly, for moderate logits
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5))
    labels = rng.integers(0, 5, size=6)
    direct = np.mean([-math.log(math.exp(z[y]) / sum(math.exp(v) for v in z))
                      for z, y in zip(logits, labels)])
    assert CrossEntropyLoss()(logits, labels) == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_extreme_logits(dtype):
    # row 0: max 1e4 (label's logit 0)    -> loss = 1e4 + log(1 + e^-1e4 + e^-2e4) - 0 = 1e4
    # row 1: max 1e4 twice (label's -1e4) -> loss = 1e4 + log 2 + 1e4 = 2e4 + log 2
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    labels = np.array([2, 0])
    fn = CrossEntropyLoss(reduction="sum")
    loss = fn(logits, labels)
    assert math.isfinite(loss)
    assert loss == pytest.approx(3e4 + LN2, rel=1e-6)
    g = fn.backward()
    assert np.isfinite(g).all()
    np.testing.assert_allclose(g, [[1.0, 0.0, -1.0], [-1.0, 0.5, 0.5]], atol=1e-6)


def test_cross_entropy_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"backward\(\) was called before .*forward\(\)"):
        CrossEntropyLoss().backward()


def test_cross_entropy_validation():
    fn = CrossEntropyLoss()
    good = np.zeros((2, 3))
    with pytest.raises(TypeError, match="float array of shape \\(N, C\\), got dtype int64"):
        fn(np.zeros((2, 3), dtype=np.int64), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"2-D of shape \(N, C\).*got shape \(2, 3, 1\)"):
        fn(np.zeros((2, 3, 1)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"got shape \(0, 3\)"):
        fn(np.zeros((0, 3)), np.array([], dtype=np.int64))
    with pytest.raises(TypeError, match="got dtype float64 .*astype"):
        fn(good, np.array([0.0, 1.0]))           # integral-valued floats are still refused
    with pytest.raises(TypeError, match="got dtype bool"):
        fn(good, np.array([True, False]))
    with pytest.raises(ValueError, match=r"shape \(N,\) = \(2,\).*got shape \(3,\)"):
        fn(good, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"shape \(N,\) = \(2,\).*got shape \(2, 1\)"):
        fn(good, np.array([[0], [1]]))
    with pytest.raises(ValueError, match=r"must be in \[0, 3\), got 3 at index 1"):
        fn(good, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"must be in \[0, 3\), got -1 at index 0"):
        fn(good, np.array([-1, 0]))
    bad = good.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"logits contain NaN/inf at index \(1, 2\)"):
        fn(bad, np.array([0, 1]))
    bad[1, 2] = -np.inf
    with pytest.raises(ValueError, match=r"logits contain NaN/inf at index \(1, 2\)"):
        fn(bad, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum'\), got 'none'"):
        CrossEntropyLoss(reduction="none")


# ----------------------------------------------------------------------------------- MSE

def test_mse_hand_values_and_relations():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[0.0, 2.0], [5.0, 1.0]])
    # y - t = [1, 0, -2, 3]; squares 1 + 0 + 4 + 9 = 14
    diff = np.array([[1.0, 0.0], [-2.0, 3.0]])
    expected = {"mean": (14 / 4, 2 * diff / 4), "sum": (14.0, 2 * diff), "half_sum": (7.0, diff)}
    for reduction, (value, grad) in expected.items():
        fn = MSELoss(reduction=reduction)
        assert fn(pred, target) == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(fn.backward(), grad, rtol=1e-12)
    # the relations: sum = numel * mean, half_sum = sum / 2 (values and gradients)
    rng = np.random.default_rng(1)
    y, t = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    fns = {r: MSELoss(reduction=r) for r in ("mean", "sum", "half_sum")}
    vals = {r: f(y, t) for r, f in fns.items()}
    grads = {r: f.backward() for r, f in fns.items()}
    assert vals["sum"] == pytest.approx(15 * vals["mean"], rel=1e-12)
    assert vals["half_sum"] == pytest.approx(vals["sum"] / 2, rel=1e-12)
    np.testing.assert_allclose(grads["sum"], 15 * grads["mean"], rtol=1e-12)
    np.testing.assert_allclose(grads["half_sum"], grads["sum"] / 2, rtol=1e-12)


def test_mse_wollowski_exercise_by_hand():
    # target [0, 0, 1, 0]
    # output 1 [0.2, 0.4, 0.1, 0.3]: 1/2 (0.04 + 0.16 + 0.81 + 0.09) = 1/2 * 1.10 = 0.55
    # output 2 [0.1, 0.1, 0.7, 0.1]: 1/2 (0.01 + 0.01 + 0.09 + 0.01) = 1/2 * 0.12 = 0.06
    t = np.array([0.0, 0.0, 1.0, 0.0])
    fn = MSELoss(reduction="half_sum")
    assert fn(np.array([0.2, 0.4, 0.1, 0.3]), t) == pytest.approx(0.55, rel=1e-12)
    assert fn(np.array([0.1, 0.1, 0.7, 0.1]), t) == pytest.approx(0.06, rel=1e-12)
    np.testing.assert_allclose(fn.backward(), [0.1, 0.1, -0.3, 0.1], rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum"])
def test_mse_gradient_matches_central_differences(reduction):
    rng = np.random.default_rng(2)
    y, t = rng.normal(size=(3, 2, 5)), rng.normal(size=(3, 2, 5))
    fn = MSELoss(reduction=reduction)
    fn(y, t)
    numeric = numeric_grad(lambda v: MSELoss(reduction=reduction)(v, t), y.copy())
    np.testing.assert_allclose(fn.backward(), numeric, rtol=1e-6, atol=1e-9)


def test_mse_dtype_and_integer_target():
    fn = MSELoss()
    loss = fn(np.array([1.5, 2.5], dtype=np.float32), np.array([1, 2]))
    assert type(loss) is float and loss == pytest.approx(0.25)
    g = fn.backward()
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, [0.5, 0.5])


def test_mse_validation():
    fn = MSELoss()
    with pytest.raises(ValueError, match=r"same shape.*got pred \(2, 3\) and target \(3,\)"):
        fn(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(TypeError, match="pred must be a float array, got dtype int64"):
        fn(np.zeros(3, dtype=np.int64), np.zeros(3))
    with pytest.raises(TypeError, match="target must be a numeric array, got dtype bool"):
        fn(np.zeros(2), np.array([True, False]))
    with pytest.raises(ValueError, match=r"pred contain NaN/inf at index \(1,\)"):
        fn(np.array([0.0, np.inf]), np.zeros(2))
    with pytest.raises(ValueError, match=r"at least one element, got shape \(0,\)"):
        fn(np.zeros(0), np.zeros(0))
    with pytest.raises(ValueError, match=r"one of \('mean', 'sum', 'half_sum'\), got 'avg'"):
        MSELoss(reduction="avg")
    with pytest.raises(RuntimeError, match="before MSELoss.forward"):
        MSELoss().backward()


# ------------------------------------------------------------------------------ softmax + MSE

def test_softmax_mse_wollowski_exercise():
    # logits log(output) have softmax = output (the outputs sum to 1), so the loss is the
    # exercise's: 0.55 for output 1 and 0.06 for output 2 (worked by hand above)
    fn = SoftmaxMSELoss(reduction="half_sum")
    logits = np.log(np.array([[0.2, 0.4, 0.1, 0.3], [0.1, 0.1, 0.7, 0.1]]))
    assert fn(logits[:1], np.array([[0.0, 0.0, 1.0, 0.0]])) == pytest.approx(0.55, rel=1e-12)
    assert fn(logits[1:], np.array([2])) == pytest.approx(0.06, rel=1e-12)
    assert fn(logits, np.array([2, 2])) == pytest.approx(0.61, rel=1e-12)
    np.testing.assert_allclose(fn.probs, [[0.2, 0.4, 0.1, 0.3], [0.1, 0.1, 0.7, 0.1]], rtol=1e-12)


def test_softmax_mse_uniform_logits_by_hand():
    # zero logits -> p = 1/4 each; target class 2: p - t = [1/4, 1/4, -3/4, 1/4]
    # squares 3/16 + 9/16 = 3/4: sum 0.75, half_sum 0.375, mean 0.75 / 4 = 0.1875
    # half_sum gradient: g = p - t, sum_k g_k p_k = (1/4)(1/4 + 1/4 - 3/4 + 1/4) = 0, so dz = p * g
    z = np.zeros((1, 4))
    for reduction, value in [("sum", 0.75), ("half_sum", 0.375), ("mean", 0.1875)]:
        assert SoftmaxMSELoss(reduction=reduction)(z, np.array([2])) == pytest.approx(value, rel=1e-12)
    fn = SoftmaxMSELoss(reduction="half_sum")
    fn(z, np.array([2]))
    np.testing.assert_allclose(fn.backward(), [[1 / 16, 1 / 16, -3 / 16, 1 / 16]], rtol=1e-12)


def test_softmax_mse_backward_equals_explicit_jacobian():
    # dL/dz = J^T dL/dp with J = diag(p) - p p^T, built explicitly per row
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 6))
    t = rng.dirichlet(np.ones(6), size=4)
    fn = SoftmaxMSELoss(reduction="sum")
    fn(z, t)
    e = np.exp(z)
    p = e / e.sum(axis=1, keepdims=True)
    expected = np.stack([(np.diag(pi) - np.outer(pi, pi)).T @ (2 * (pi - ti)) for pi, ti in zip(p, t)])
    np.testing.assert_allclose(fn.backward(), expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum"])
@pytest.mark.parametrize("n,c", [(3, 7), (2, 1), (1, 5)])
def test_softmax_mse_gradient_matches_central_differences(reduction, n, c):
    rng = np.random.default_rng(n + 100 * c)
    z = rng.normal(scale=1.5, size=(n, c))
    labels = rng.integers(0, c, size=n)
    fn = SoftmaxMSELoss(reduction=reduction)
    fn(z, labels)
    numeric = numeric_grad(lambda v: SoftmaxMSELoss(reduction=reduction)(v, labels), z.copy())
    np.testing.assert_allclose(fn.backward(), numeric, rtol=1e-6, atol=1e-9)


def test_softmax_mse_float32_and_extreme_logits():
    fn = SoftmaxMSELoss(reduction="sum")
    loss = fn(np.array([[1e4, -1e4, 0.0]], dtype=np.float32), np.array([0]))
    assert loss == pytest.approx(0.0, abs=1e-12)
    g = fn.backward()
    assert g.dtype == np.float32 and np.isfinite(g).all()


def test_softmax_mse_validation():
    fn = SoftmaxMSELoss()
    z = np.zeros((1, 4))
    with pytest.raises(ValueError, match=r"integer target is read as class labels.*got shape \(4,\)"):
        fn(z, np.array([0, 0, 1, 0]))            # a list of ints is labels, not a one-hot vector
    with pytest.raises(ValueError, match=r"float target must have the logits' shape .*\(1, 4\), got \(4,\)"):
        fn(z, np.array([0.0, 0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match=r"must be in \[0, 4\), got 7 at index 0"):
        fn(z, np.array([7]))
    with pytest.raises(TypeError, match="integer labels or a float array, got dtype bool"):
        fn(z, np.array([[True, False, False, False]]))
    with pytest.raises(TypeError, match="logits must be a float array"):
        fn(np.zeros((1, 4), dtype=np.int32), np.array([0]))
    with pytest.raises(RuntimeError, match="before SoftmaxMSELoss.forward"):
        SoftmaxMSELoss().backward()
