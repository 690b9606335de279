"""Self-checks for lesson 09's layers, written by the student as Modules that plug into a Sequential.

- `check_dropout_layer(layer_cls)`: inverted dropout, layer_cls(p_keep, rng=...): a fresh seeded mask
  in every training-mode forward, kept in `self.mask`, the kept units scaled by 1/p_keep, backward through
  the same mask; the identity in evaluation mode. Against cnnlab's `Dropout` holding the student's mask,
  and centred finite differences.
- `check_batchnorm_layer(layer_cls)`: batch norm of (N, C) features, layer_cls(num_features, eps=...)
  (Khan eqs. 5.8-5.11): batch statistics and running statistics (momentum 0.1, unbiased variance) in
  training mode, running statistics in evaluation mode, and the backward in both. Against cnnlab's
  `BatchNorm1d` and centred finite differences of its forward in float64.

Each check runs the layer on awkward shapes (a batch of 2, odd feature counts, images for dropout),
then inside a Sequential, and names the typical mistakes (no or the wrong scaling, dropout active in
evaluation, a new mask in backward, running statistics in training, biased and unbiased variance
mixed up, eps outside the square root, a backward without the paths through mu and sigma^2, gamma's
and beta's gradients not summed over the batch, ...) in one line.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Module, Parameter, Sequential
from cnnlab.gradcheck import numerical_gradient
from cnnlab.layers import BatchNorm1d, Dropout, Linear, ReLU
from . import CheckFailed, check_array, name_mistake, passed, run_student, same, student_array

__all__ = ["check_dropout_layer", "check_batchnorm_layer"]


_same = partial(same, rtol=1e-7, atol=1e-12)


# --- exercise 3: a dropout layer -------------------------------------------------------------------

P_KEEP = 0.7  # not 0.5: then p_keep and 1 - p_keep, and their reciprocals, would be the same number


def _build(layer_cls, args: str, *a, **kw):
    """The student's layer, built with layer_cls(*a, **kw); CheckFailed unless it is a Module."""
    name = getattr(layer_cls, "__name__", "your class")
    layer = run_student(lambda: layer_cls(*a, **kw), f"{name}({args})")
    if not isinstance(layer, Module):
        raise CheckFailed(f"{name} should be a subclass of Module (class {name}(Module): ...), so that it plugs "
                          f"into a Sequential; got {type(layer).__name__}")
    return layer


def _call(layer, x, what: str, shape=None, backward=False, hint=None):
    """The student's forward (`layer(x)`) or backward, run, checked for `...` and shape, as a float64 array."""
    fn = type(layer).backward if backward else type(layer).forward
    got = run_student(lambda: layer.backward(x.copy()) if backward else layer(x.copy()), what, fn=fn, quiet=True,
                      hint=hint)
    got = student_array(what, got)
    if shape is not None and got.shape != shape:
        raise CheckFailed(f"{what} should have shape {shape}, got {got.shape}")
    return got


def _mask_of(layer, shape: tuple) -> np.ndarray:
    """The student's `self.mask` as a boolean array (True = keep); CheckFailed when it is missing or odd."""
    mask = getattr(layer, "mask", None)
    if mask is None or mask is Ellipsis:
        raise CheckFailed(f"self.mask is {mask!r} after a training-mode forward: keep the mask you draw in "
                          "self.mask (backward needs the same one)")
    try:
        values = np.array(mask, dtype=np.float64)
    except (TypeError, ValueError):
        raise CheckFailed(f"self.mask should be a boolean array (True = keep), got {type(mask).__name__}") from None
    if values.shape != shape:
        raise CheckFailed(f"self.mask should have the shape of x, {shape} (one entry per unit), got {values.shape}")
    if not (np.all((values == 0) | (values == 1)) or np.allclose(values * (values != 0), (values != 0) / P_KEEP)):
        raise CheckFailed("self.mask should hold the mask, True (or 1) where a unit is kept and False (0) where it "
                          "is dropped")
    return values != 0


def _dropout_reference(kept: np.ndarray) -> Dropout:
    """cnnlab's Dropout, holding the student's mask (so that both drop the same units)."""
    reference = Dropout(P_KEEP)
    reference.mask, reference.freeze_mask = kept, True
    return reference


def _uniform_signs(rng, shape) -> np.ndarray:
    """Entries of size 0.5 to 2 with random signs: none is 0, so a dropped unit shows as an exact 0."""
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


def _check_dropout_training(layer_cls, name, shape, rng) -> None:
    p = P_KEEP
    x, G = _uniform_signs(rng, shape), _uniform_signs(rng, shape)
    layer = _build(layer_cls, f"p_keep={p}, rng=0", p, rng=0)
    out = _call(layer, x, f"{name}.forward(x) in training mode", shape)
    if _same(out, x):
        raise CheckFailed("in training mode, the output is x itself: dropout must be active when self.training is "
                          "True")
    kept = _mask_of(layer, shape)
    reference = _dropout_reference(kept)
    expected = reference(x)
    if not _same(out, expected):
        name_mistake(out, (
            (x * kept, "the kept units are not rescaled (that is classic dropout): inverted dropout divides them "
                       "by the keep probability at training time, x * mask / p_keep"),
            (x * kept * p, "the kept units are multiplied by p_keep, the classic TEST-time factor; inverted dropout "
                           "divides by it at training time: x * mask / p_keep"),
            (x * kept / (1 - p), "you divided by the drop probability 1 - p_keep; divide by the keep probability"),
            (x * ~kept / p, "the output is kept where self.mask is False: True means keep"),
            (x / p, "the mask is not applied (or not the one in self.mask): x * mask / p_keep")),
            _same, right=expected, prefix="in training mode, ")
        check_array(f"{name}.forward(x) in training mode", out, expected)
    x_work = x.copy()
    dx_num = numerical_gradient(lambda: np.sum(reference.forward(x_work) * G), x_work)  # cnnlab's, mask frozen
    dx = _call(layer, G, f"{name}.backward(dout) in training mode", shape, backward=True)
    if _same(dx, dx_num, rtol=1e-6, atol=1e-9):
        return
    name_mistake(dx, (
        (G, "backward returned dout unchanged: only the kept units pass their gradient on, dx = dout * mask / p_keep"),
        (G * kept, "backward does not rescale: dx = dout * mask / p_keep, the same factor as forward"),
        (G * kept * p, "backward multiplies by p_keep; it must divide by it, dx = dout * mask / p_keep"),
        (G * ~kept / p, "backward passes the gradient where the mask is False: True means keep"),
        (G / p, "backward does not apply the mask: dx = dout * mask / p_keep")), _same, right=dx_num,
        prefix="in training mode, ")
    ratio = dx / G
    other = np.isclose(ratio, 0) | np.isclose(ratio, 1 / p)
    if np.all(other) and not np.array_equal(~np.isclose(ratio, 0), kept):
        raise CheckFailed("backward dropped other units than forward did (a new mask?): reuse the forward's mask, "
                          "self.mask; a unit dropped in forward gets no gradient")
    check_array(f"{name}.backward(dout) in training mode", dx, dx_num, rtol=1e-6, atol=1e-8)


def _check_dropout_masks(layer_cls, name) -> None:
    """Fresh masks at every call, drawn from the layer's own seeded generator, with P(keep) = p_keep."""
    p, shape = P_KEEP, (50, 81)  # 4050 units: the kept fraction is p_keep +- 0.007 (one standard error)
    x = np.ones(shape)
    layer, twin = (_build(layer_cls, f"p_keep={p}, rng=0", p, rng=0) for _ in range(2))
    _call(layer, x, f"{name}.forward(x) in training mode")
    first = _mask_of(layer, shape)
    _call(layer, x, f"a second {name}.forward(x)")
    if np.array_equal(_mask_of(layer, shape), first):
        raise CheckFailed("two training-mode forwards dropped the same units: draw a fresh mask at every call (each "
                          "mini-batch trains another thinned net)")
    _call(twin, x, f"{name}.forward(x) in training mode")
    if not np.array_equal(_mask_of(twin, shape), first):
        raise CheckFailed("two layers built with the same rng=0 drew different masks: draw the mask from self.rng "
                          "(self.rng.random(x.shape) < p_keep), never from np.random's global functions")
    fraction, stderr = first.mean(), np.sqrt(p * (1 - p) / first.size)
    if abs(fraction - (1 - p)) < 6 * stderr:
        raise CheckFailed(f"your mask keeps {fraction:.1%} of the units, about 1 - p_keep: True must have "
                          f"probability p_keep = {p} (rng.random(x.shape) < p_keep)")
    if abs(fraction - p) > 6 * stderr:
        raise CheckFailed(f"your mask keeps {fraction:.1%} of the units; it should keep each with probability "
                          f"p_keep = {p}")


def _check_dropout_evaluation(layer_cls, name, rng) -> None:
    p, shape = P_KEEP, (2, 7)
    x, G = _uniform_signs(rng, shape), _uniform_signs(rng, shape)
    layer = _build(layer_cls, f"p_keep={p}, rng=0", p, rng=0)
    _call(layer, x, f"{name}.forward(x) in training mode", shape)
    kept = _mask_of(layer, shape)
    layer.eval()
    out = _call(layer, x, f"{name}.forward(x) in evaluation mode", shape)
    if not _same(out, x):
        if np.any(out == 0):
            raise CheckFailed("in evaluation mode units are still dropped: at test time inverted dropout is the "
                              "identity, out = x (check self.training)")
        name_mistake(out, (
            (x * p, "in evaluation mode the output is p_keep * x, classic dropout's test-time scaling; inverted "
                    "dropout already rescaled at training time, so evaluation returns x"),
            (x / p, "in evaluation mode the output is divided by p_keep: only training rescales, evaluation "
                    "returns x")), _same)
        check_array(f"{name}.forward(x) in evaluation mode", out, x)
    dx = _call(layer, G, f"{name}.backward(dout) in evaluation mode", shape, backward=True)
    if not _same(dx, G):
        name_mistake(dx, ((G * kept / p, "in evaluation mode backward still applies the training mask: there "
                                         "out = x, so dx = dout"),
                          (G * p, "in evaluation mode backward multiplies by p_keep: there out = x, so dx = dout"),
                          (G / p, "in evaluation mode backward divides by p_keep: there out = x, so dx = dout")), _same)
        check_array(f"{name}.backward(dout) in evaluation mode", dx, G)
    one = x[:1]
    check_array(f"{name}.forward(x) in evaluation mode, a batch of 1",
                _call(layer, one, f"{name}.forward(x) in evaluation mode on a batch of 1", one.shape), one)


def _check_dropout_in_sequential(layer_cls, name, rng) -> None:
    """The student's layer inside a Sequential: the net's output and gradients, training and evaluation."""
    net = Sequential(Linear(6, 5, rng=1), ReLU(), _build(layer_cls, f"p_keep={P_KEEP}, rng=2", P_KEEP, rng=2),
                     Linear(5, 3, rng=3)).astype(np.float64)
    x, G = rng.standard_normal((4, 6)), rng.standard_normal((4, 3))
    out = _call(net, x, f"a Sequential holding {name}: its forward", (4, 3))
    reference = Sequential(Linear(6, 5, rng=1), ReLU(), _dropout_reference(_mask_of(net[2], (4, 5))),
                           Linear(5, 3, rng=3)).astype(np.float64)
    check_array(f"a Sequential holding {name}: its output", out, reference(x))
    check_array(f"a Sequential holding {name}: dL/dx", _call(net, G, "its backward", backward=True),
                reference.backward(G))
    for (key, p), r in zip(net.named_parameters(), reference.parameters()):
        check_array(f"a Sequential holding {name}: {key}.grad", p.grad, r.grad)
    net.eval(), reference.eval()
    check_array(f"a Sequential holding {name}, in evaluation mode (net.eval()): its output",
                _call(net, x, "its forward in evaluation mode"), reference(x))


def check_dropout_layer(layer_cls) -> None:
    """layer_cls(p_keep, rng=...) must be a Module: inverted dropout in training mode (a fresh mask from its own
    generator at every forward, kept in self.mask, the kept units scaled by 1/p_keep; backward through the
    same mask), the identity in evaluation mode. Compared with cnnlab's Dropout holding the same mask."""
    name = getattr(layer_cls, "__name__", "your class")
    rng = np.random.default_rng(33)
    for shape in ((2, 7), (3, 2, 5, 3)):  # a batch of 2 with 7 features; images (N, C, H, W)
        _check_dropout_training(layer_cls, name, shape, rng)
    _check_dropout_masks(layer_cls, name)
    _check_dropout_evaluation(layer_cls, name, rng)
    _check_dropout_in_sequential(layer_cls, name, rng)
    passed(f"{name}: inverted dropout (a fresh seeded mask, kept units scaled by 1/p_keep) and its backward match "
           "cnnlab's Dropout and finite differences on (2, 7) and (3, 2, 5, 3); evaluation mode is the identity, "
           "and the layer works in a Sequential")


# --- exercise 4: a batch-norm layer --------------------------------------------------------------

EPS = 1e-3  # large enough, next to a feature of variance ~1e-3, that eps outside the square root shows
K = 0.1  # the momentum of the running averages (PyTorch's default)
AXIS_HINT = (("broadcast",), " (each feature's mean and variance are taken over the batch, axis 0: shape (C,))")
RUNNING_IN_TRAINING = ("x is normalised with the running statistics: training uses the batch's "
                       "own mean and variance (eqs. 5.8-5.9); running_mean and running_var are for evaluation")


def _bn_pair(layer_cls, name, C, rng):
    """(the student's layer, cnnlab's BatchNorm1d), float64, with the same random gamma and beta."""
    layer = _build(layer_cls, f"{C}, eps={EPS}, momentum={K}", C, eps=EPS, momentum=K)
    for attr in ("weight", "bias", "running_mean", "running_var"):
        value = getattr(layer, attr, None)
        if value is None or (attr in ("weight", "bias") and not isinstance(value, Parameter)):
            raise CheckFailed(f"{name} has no {'Parameter ' if attr in ('weight', 'bias') else ''}`{attr}`: keep "
                              "the __init__ of the exercise")
    reference = BatchNorm1d(C, eps=EPS, momentum=K).astype(np.float64)
    for attr, value in (("weight", rng.uniform(0.5, 2.0, C)), ("bias", rng.uniform(-1.0, 1.0, C))):
        getattr(layer, attr).data, getattr(layer, attr).grad = value.copy(), np.zeros(C)
        getattr(reference, attr).data[...] = value
    return layer, reference


def _features(rng, N, C) -> np.ndarray:
    """(N, C) features with their own means and spreads; feature 1's variance is about eps."""
    scales = rng.uniform(0.5, 3.0, C)
    scales[1] = 0.03
    return rng.uniform(-2.0, 2.0, C) + scales * rng.standard_normal((N, C))


def _running(layer, C):
    return (student_array("self.running_mean", getattr(layer, "running_mean", None), (C,), returned=False),
            student_array("self.running_var", getattr(layer, "running_var", None), (C,), returned=False))


def _check_bn_training_forward(layer, reference, name, x) -> None:
    (N, C), gamma, beta = x.shape, reference.weight.data, reference.bias.data
    mean0, var0 = reference.running_mean.copy(), reference.running_var.copy()
    y = _call(layer, x, f"{name}.forward(x) in training mode", x.shape, hint=AXIS_HINT)
    expected = reference(x)
    mu, var = x.mean(0), x.var(0)
    var_u = var * N / (N - 1)
    mean1, var1 = reference.running_mean, reference.running_var
    got_mean, got_var = _running(layer, C)
    if not _same(y, expected):
        if _same(y, gamma * (x - mu) / np.sqrt(var_u + EPS) + beta):
            swapped = _same(got_var, (1 - K) * var0 + K * var)
            start = ("the biased and the unbiased variance are swapped: " if swapped else
                     "x is normalised with the unbiased variance (divided by m - 1): ")
            raise CheckFailed(start + "eq. 5.9 divides by m (np.var's default), the unbiased m / (m - 1) * var goes "
                              "only into running_var")
        per_example = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + EPS)
        name_mistake(y, (
            (gamma * (x - mean0) / np.sqrt(var0 + EPS) + beta, RUNNING_IN_TRAINING),
            (gamma * (x - mean1) / np.sqrt(var1 + EPS) + beta, RUNNING_IN_TRAINING),
            (gamma * (x - mu) / (np.sqrt(var) + EPS) + beta, "eps is added outside the square root: "
                                                             "xhat = (x - mu) / sqrt(var + eps) (eq. 5.10)"),
            (gamma * (x - mu) / np.sqrt(var) + beta, "eps is missing: xhat = (x - mu) / sqrt(var + eps) (eq. 5.10)"),
            (gamma * (x - mu) / (var + EPS) + beta, "x - mu is divided by the variance; divide by the standard "
                                                    "deviation sqrt(var + eps) (eq. 5.10)"),
            (gamma * x / np.sqrt(var + EPS) + beta, "the mean is not subtracted: xhat = (x - mu) / sqrt(var + eps)"),
            ((x - mu) / np.sqrt(var + EPS), "gamma and beta are not applied: y = gamma * xhat + beta (eq. 5.11)"),
            (beta * (x - mu) / np.sqrt(var + EPS) + gamma, "gamma and beta are swapped: y = gamma * xhat + beta"),
            (gamma * per_example + beta, "the statistics are taken over the features of each example (axis 1); "
                                         "batch norm takes them per feature over the batch, axis 0")),
            _same, right=expected, prefix="in training mode, ")
        check_array(f"{name}.forward(x) in training mode", y, expected, rtol=1e-7, atol=1e-9)
    for got, new, old, statistic, what in ((got_mean, mean1, mean0, mu, "mean"), (got_var, var1, var0, var_u,
                                                                                   "var")):
        if _same(got, new):
            continue
        name_mistake(got, (
            (old, f"running_{what} was not updated"),
            ((1 - K) * old + K * var if what == "var" else None,
             "running_var averages the biased variance; the running estimate takes the unbiased one, "
             "var * m / (m - 1), as PyTorch does"),
            (statistic, f"running_{what} was replaced by the batch's {what}: average it, running = (1 - momentum) "
                        "* running + momentum * batch value"),
            (K * old + (1 - K) * statistic, "momentum is the weight of the NEW batch: running = (1 - momentum) * "
                                          "running + momentum * batch value")),
            _same, right=new, prefix="after a training-mode forward, ")
        check_array(f"self.running_{what} after a training-mode forward", got, new, rtol=1e-7, atol=1e-9)


def _check_bn_training_backward(layer, reference, name, x, G) -> None:
    N, C = x.shape
    gamma, beta = reference.weight.data.copy(), reference.bias.data.copy()
    fresh = BatchNorm1d(C, eps=EPS).astype(np.float64)  # an independent forward for the finite differences
    fresh.weight.data[...], fresh.bias.data[...] = gamma, beta
    x_work = x.copy()
    dx_num, dgamma_num, dbeta_num = (numerical_gradient(lambda: np.sum(fresh.forward(x_work) * G), a)
                                     for a in (x_work, fresh.weight.data, fresh.bias.data))
    _call(layer, x, f"{name}.forward(x) in training mode", x.shape)
    reference(x)  # the same running statistics as the student's layer
    dx = _call(layer, G, f"{name}.backward(dout) in training mode", x.shape, backward=True)
    s = np.sqrt(x.var(0) + EPS)
    xhat = (x - x.mean(0)) / s
    g = gamma * G
    if not _same(dx, dx_num, rtol=1e-6, atol=1e-9):
        name_mistake(dx, (
            (g / s, "dx treats mu and sigma as constants (that is the evaluation-mode gradient): in training they "
                    "are computed from the batch, so dx has terms through mu and sigma^2 as well"),
            (g / np.sqrt(reference.running_var + EPS), "dx uses the running variance: in training, sigma is the "
                                                       "batch's, and dx has terms through mu and sigma^2"),
            ((g - g.mean(0)) / s, "dx misses the term through the variance: sigma^2 depends on x too "
                                  "(- xhat * mean(dL/dxhat * xhat))"),
            ((g - xhat * np.mean(g * xhat, 0)) / s, "dx misses the term through the mean: mu depends on x too "
                                                   "(- mean(dL/dxhat))"),
            ((G - G.mean(0) - xhat * np.mean(G * xhat, 0)) / s, "gamma is missing from dx: dL/dxhat = gamma * dout"),
            ((g * N - g.sum(0) - xhat * np.sum(g * xhat, 0)) / s, "dx is m times too large: the terms through mu "
                                                                  "and sigma^2 are means over the batch, not sums")),
            partial(same, rtol=1e-6, atol=1e-9), right=dx_num, prefix="in training mode, ")
        check_array(f"{name}.backward(dout) in training mode", dx, dx_num, rtol=1e-5, atol=1e-8)
    _check_bn_parameter_grads(layer, x, G, xhat, dgamma_num, dbeta_num)
    _call(layer, x, f"a second {name}.forward(x)", x.shape)
    reference(x)
    _call(layer, G, f"a second {name}.backward(dout)", x.shape, backward=True)
    if (_same(student_array("`weight.grad`", layer.weight.grad), 2 * dgamma_num, rtol=1e-5, atol=1e-8)
            or _same(student_array("`bias.grad`", layer.bias.grad), 2 * dbeta_num, rtol=1e-5, atol=1e-8)):
        raise CheckFailed("after a second backward the gradients doubled: backward must overwrite .grad (`=`), not "
                          "add to it (`+=`)")


def _check_bn_parameter_grads(layer, x, G, xhat, dgamma_num, dbeta_num) -> None:
    (N, C), like = x.shape, partial(same, rtol=1e-5, atol=1e-8)
    for what, got, expected, mine, other in (("weight", layer.weight.grad, dgamma_num, G * xhat, G),
                                             ("bias", layer.bias.grad, dbeta_num, G, G * xhat)):
        got = student_array(f"`{what}.grad`", got, returned=False)
        role = "gamma" if what == "weight" else "beta"
        if got.shape == (N, C):
            raise CheckFailed(f"{what}.grad ({role}) has shape {got.shape}, one row per example: sum it over the "
                              "batch, axis 0")
        if got.shape != (C,):
            raise CheckFailed(f"{what}.grad should have the shape of {what} ({role}), {(C,)}, got {got.shape}")
        if like(got, expected):
            continue
        name_mistake(got, (
            (mine.mean(0), f"{what}.grad ({role}) is the mean over the batch; it must be the sum, axis 0"),
            (other.sum(0), "the gradients of gamma and beta are swapped: dL/dgamma = sum dout * xhat, "
                           "dL/dbeta = sum dout"),
            (np.sum(G * x, 0) if what == "weight" else None, "weight.grad uses x; gamma multiplies xhat, so "
                                                             "dL/dgamma = sum dout * xhat")),
            like, right=expected)
        check_array(f"{what}.grad ({role})", got, expected, rtol=1e-5, atol=1e-8)


def _check_bn_evaluation(layer, reference, name, rng) -> None:
    C = reference.num_features
    mean, var = reference.running_mean.copy(), reference.running_var.copy()
    layer.eval(), reference.eval()
    for N in (4, 1):  # a test image may come alone
        x, G = _features(rng, N, C), rng.standard_normal((N, C))
        y = _call(layer, x, f"{name}.forward(x) in evaluation mode", x.shape)
        expected = reference(x)
        gamma, beta = reference.weight.data, reference.bias.data
        batch = gamma * (x - x.mean(0)) / np.sqrt(x.var(0) + EPS) + beta
        if not _same(y, expected):
            if _same(y, batch) or not np.all(np.isfinite(y)):
                raise CheckFailed("in evaluation mode x is normalised with the batch's statistics: evaluation uses "
                                  "running_mean and running_var (a test image may come alone)")
            check_array(f"{name}.forward(x) in evaluation mode", y, expected, rtol=1e-7, atol=1e-9)
        got_mean, got_var = _running(layer, C)
        if not (_same(got_mean, mean) and _same(got_var, var)):
            raise CheckFailed("an evaluation-mode forward changed the running statistics: only training updates them")
        dx = _call(layer, G, f"{name}.backward(dout) in evaluation mode", x.shape, backward=True)
        expected = reference.backward(G)
        if not _same(dx, expected):
            if N > 1:
                xhat = (x - mean) / np.sqrt(var + EPS)
                g = gamma * G
                trained = (g - g.mean(0) - xhat * np.mean(g * xhat, 0)) / np.sqrt(var + EPS)
                if _same(dx, trained):
                    raise CheckFailed("in evaluation mode backward uses the training formula: there mu and sigma "
                                      "are the running statistics, constants, so dx = gamma * dout / sqrt(running_var "
                                      "+ eps)")
            check_array(f"{name}.backward(dout) in evaluation mode", dx, expected, rtol=1e-7, atol=1e-9)


def _check_bn_in_sequential(layer_cls, name, rng) -> None:
    """Three training steps of a Sequential holding the student's layer, then evaluation, against cnnlab's."""
    net = Sequential(Linear(4, 3, rng=1), _build(layer_cls, "3", 3), ReLU(), Linear(3, 2, rng=2)).astype(np.float64)
    reference = Sequential(Linear(4, 3, rng=1), BatchNorm1d(3), ReLU(), Linear(3, 2, rng=2)).astype(np.float64)
    what = f"a Sequential holding {name}"
    for step in range(3):
        x, G = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
        check_array(f"{what}: its output (step {step + 1})", _call(net, x, f"{what}: its forward"), reference(x))
        check_array(f"{what}: dL/dx (step {step + 1})", _call(net, G, f"{what}: its backward", backward=True),
                    reference.backward(G))
        for (key, p), r in zip(net.named_parameters(), reference.parameters()):
            check_array(f"{what}: {key}.grad (step {step + 1})", p.grad, r.grad)
    net.eval(), reference.eval()
    x = rng.standard_normal((1, 4))
    check_array(f"{what}, in evaluation mode (net.eval()): its output on one example",
                _call(net, x, f"{what}: its forward in evaluation mode"), reference(x))


def check_batchnorm_layer(layer_cls) -> None:
    """layer_cls(num_features, eps=...) must be a Module: batch norm of (N, C) features (Khan eqs. 5.8-5.11), in
    training mode with the batch's statistics (and the running ones updated with momentum 0.1 and the unbiased
    variance), in evaluation mode with the running statistics, and its backward in both modes (dx, weight.grad,
    bias.grad). Compared with cnnlab's BatchNorm1d and with centred finite differences in float64."""
    name = getattr(layer_cls, "__name__", "your class")
    rng = np.random.default_rng(44)
    for N, C in ((5, 3), (2, 7)):  # an odd batch; a batch of 2 (its unbiased variance is twice the biased one)
        layer, reference = _bn_pair(layer_cls, name, C, rng)
        for _ in range(2):  # the second pass starts from running statistics that are not the initial 0 and 1
            _check_bn_training_forward(layer, reference, name, _features(rng, N, C))
        _check_bn_training_backward(layer, reference, name, _features(rng, N, C), rng.standard_normal((N, C)))
        _check_bn_evaluation(layer, reference, name, rng)
    _check_bn_in_sequential(layer_cls, name, rng)
    passed(f"{name}: forward and backward match cnnlab's BatchNorm1d and finite differences on batches of 5 and 2, "
           "in training mode (batch statistics; running statistics with momentum 0.1 and the unbiased variance) and "
           "in evaluation mode (running statistics), and the layer works in a Sequential")
