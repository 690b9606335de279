"""Self-checks for lesson 08 (initialisation).

Every expected answer comes from the formula (Khan eqs. 5.1-5.2 with the fans of a conv kernel, He's
variance for a leaky ReLU) or from cnnlab itself (`cnnlab.init.lsuv`), never from the student's code.
Each check recognises the typical mistakes by name.
"""
from __future__ import annotations

import math

import numpy as np

from . import CheckFailed, has_placeholder, name_mistake, passed, run_student

__all__ = ["check_init_fills", "check_lsuv", "check_leaky_he_variance"]


def _callable(name: str, fn, args: str) -> None:
    if fn is Ellipsis or fn is None:
        raise CheckFailed(f"`{name}` is still {fn!r}: write the function and run the cell again")
    if not callable(fn):
        raise CheckFailed(f"`{name}` should be a function of ({args}), got {type(fn).__name__}")


def _call(name: str, fn, *args):
    shown = ", ".join(np.shape(a).__repr__() if isinstance(a, np.ndarray) else repr(a) for a in args)
    return run_student(lambda: fn(*args), f"{name}({shown})")


def _number(name: str, value, call: str) -> float:
    if value is Ellipsis:
        raise CheckFailed(f"{call} still returns `...`: replace it with the formula")
    if value is None:
        raise CheckFailed(f"{call} returned None: did you forget `return`?")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CheckFailed(f"{call} should return one number, got {type(value).__name__}: {value!r}") from None
    if not math.isfinite(value):
        raise CheckFailed(f"{call} returned {value}")
    return value


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)


# --- exercise 1: Xavier and He fill a weight in place -----------------------------------------------------
# (shape, dtype, gain for Xavier): a non-square Linear, a non-square conv kernel, a 1x1 conv, a float32 kernel
FILL_CASES = [((300, 700), np.float64, 1.0), ((8, 3, 5, 3), np.float64, 5 / 3), ((16, 8, 1, 1), np.float64, 1.0),
              ((40, 24, 3, 3), np.float32, math.sqrt(2))]
SAMPLES = 60_000     # entries pooled per shape (over repeated calls): the variance is known to about 0.6 %
VAR_RTOL = 0.05      # a variance within 5 % of the formula passes; the named mistakes are all >= 2x off


def _global_state():
    state = np.random.get_state()
    return state[1].copy(), state[2:]


def _same_state(a, b) -> bool:
    return np.array_equal(a[0], b[0]) and a[1] == b[1]


def _one_fill(name, fn, shape, dtype, args, seed, shown):
    """Run fn(weight, *args, rng) on a NaN-filled weight; check the in-place protocol; return the filled copy."""
    weight = np.full(shape, np.nan, dtype=dtype)
    before = _global_state()
    got = run_student(lambda: fn(weight, *args, np.random.default_rng(seed)), shown, fn=fn)
    if not _same_state(before, _global_state()):
        raise CheckFailed(f"{shown} used NumPy's global random state (np.random.…): draw every number from "
                          "the `rng` argument, e.g. rng.uniform(...) or rng.normal(...)")
    if got is Ellipsis:
        raise CheckFailed(f"{shown} still returns `...`: fill the weight and return it")
    if np.isnan(weight).all():
        if has_placeholder(fn):
            raise CheckFailed(f"{name} still contains `...`: replace every placeholder with your code and run the "
                              "cell again")
        if got is not weight and (isinstance(got, np.ndarray) or hasattr(got, "shape")):
            raise CheckFailed(f"{shown} replaced the weight by a new array instead of filling it in place: the "
                              "layer keeps the old array; write into it, weight[...] = ...")
        raise CheckFailed(f"{shown} left the weight as it was: fill it in place, weight[...] = ...")
    if np.isnan(weight).any():
        raise CheckFailed(f"{shown} filled only part of the weight ({int(np.isnan(weight).sum())} of {weight.size} "
                          "entries untouched)")
    if got is None:
        raise CheckFailed(f"{shown} returned None: return the weight you filled (as torch.nn.init does)")
    if got is not weight:
        raise CheckFailed(f"{shown} should return the weight it was given (the same array, filled), got "
                          f"{type(got).__name__}")
    if not np.all(np.isfinite(weight)):
        raise CheckFailed(f"{shown} wrote NaN or infinity into the weight")
    return weight.astype(np.float64)


def _fill_check(name, fn, shape, dtype, args, seed, expected_var, mistakes, uniform):
    shown = f"{name}(weight of shape {shape}{''.join(', ' + repr(a) for a in args)}, rng)"
    first = _one_fill(name, fn, shape, dtype, args, seed, shown)
    if not np.array_equal(first, _one_fill(name, fn, shape, dtype, args, seed, shown)):
        raise CheckFailed(f"{shown}: two generators with the same seed gave different weights, so the draws do "
                          "not come from `rng` (a fresh np.random.default_rng() inside?)")
    if np.array_equal(first, _one_fill(name, fn, shape, dtype, args, seed + 1, shown)):
        raise CheckFailed(f"{shown}: generators with different seeds gave the same weights: the `rng` argument "
                          "is ignored (a fixed seed inside?)")
    rng = np.random.default_rng(seed + 2)
    samples = []
    for _ in range(math.ceil(SAMPLES / math.prod(shape))):
        weight = np.full(shape, np.nan, dtype=dtype)
        run_student(lambda: fn(weight, *args, rng), shown, fn=fn)
        samples.append(weight.astype(np.float64).ravel())
    w = np.concatenate(samples)
    if not np.all(np.isfinite(w)):
        raise CheckFailed(f"{shown} wrote NaN or infinity into the weight")
    var = float(np.var(w))
    if abs(float(np.mean(w))) > 0.05 * math.sqrt(expected_var):
        raise CheckFailed(f"{shown}: the weights are not centred on 0 (mean {np.mean(w):.3g}); the schemes draw "
                          "zero-mean values (rng.random() is U(0, 1): use rng.uniform(-b, b) or rng.normal(0, std))")

    def like(a, b):
        return abs(a / b - 1) < VAR_RTOL if b > 0 else False

    if not like(var, expected_var):
        name_mistake(var, mistakes, like, right=expected_var, prefix=f"{shown}: Var(w) = {var:.3g}: ")
        raise CheckFailed(f"{shown}: Var(w) = {var:.3g} but should be {expected_var:.3g} (over {w.size} draws)")
    if uniform:
        bound = math.sqrt(3 * expected_var)
        if np.abs(w).max() > bound * (1 + 1e-6) or np.abs(w).max() < 0.99 * bound:
            raise CheckFailed(f"{shown}: the right variance, but the values do not fill U(-b, b) with b = √3·std "
                              f"(largest |w| = {np.abs(w).max():.3g}): draw with rng.uniform(-b, b)")
    else:
        kurtosis = float(np.mean((w - w.mean()) ** 4) / var ** 2 - 3)
        if kurtosis < -0.6:
            raise CheckFailed(f"{shown}: the right variance, but the values look uniform (no tails); "
                              "kaiming_normal_ draws from a Gaussian: rng.normal(0, std, size=weight.shape)")


def _fans(shape):
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf, rf


def check_init_fills(xavier_uniform_, kaiming_normal_, seed: int = 0) -> None:
    """`xavier_uniform_(weight, gain, rng)` must fill `weight` (out, in) or (out, in, kh, kw) in place with
    U(-b, b), b = gain·sqrt(6/(fan_in + fan_out)) (Khan eq. 5.1), and `kaiming_normal_(weight, rng)` with
    N(0, 2/fan_in) (Khan eq. 5.2), fan_in = in·kh·kw, fan_out = out·kh·kw; both draw only from `rng` and
    return `weight`. The variances are measured over >= 60,000 draws per shape, so any `seed` works."""
    _callable("xavier_uniform_", xavier_uniform_, "weight, gain, rng")
    _callable("kaiming_normal_", kaiming_normal_, "weight, rng")
    for k, (shape, dtype, gain) in enumerate(FILL_CASES):
        fan_in, fan_out, rf = _fans(shape)
        inp, out = shape[0:2][::-1]
        g2 = gain * gain
        expected = g2 * 2 / (fan_in + fan_out)
        no_kernel = (f"the fans ignore the kernel: each output of a conv layer sees in·kh·kw = {fan_in} inputs, "
                     f"so fan_in = {fan_in} and fan_out = out·kh·kw = {fan_out}, not {inp} and {out}")
        mistakes = [
            (g2 * 2 / (inp + out) if rf > 1 else None, no_kernel),
            (expected / 3, "the √3 is missing: sqrt(2/(fan_in+fan_out)) is the std of Xavier's normal; U(-b, b) "
                           "has variance b²/3, so b = sqrt(6/(fan_in+fan_out))"),
            (expected * 3, "3 times Xavier's variance: b = sqrt(6/(fan_in+fan_out)) is already the bound (√3·std); "
                           "do not multiply by √3 again, nor use it as a Gaussian std"),
            (2 / (fan_in + fan_out), "the gain is ignored: b = gain·sqrt(6/(fan_in+fan_out))"),
            (g2 * g2 * 2 / (fan_in + fan_out), "the gain is squared: the bound is gain·sqrt(...), not gain²·sqrt(...)"),
            (g2 * 2 / fan_in, "only fan_in is used: Xavier's compromise is 6/(fan_in + fan_out)"),
            (g2 * (6 / (fan_in + fan_out)) ** 2 / 3, "the square root is missing: b = gain·sqrt(6/(fan_in+fan_out))"),
        ]
        _fill_check("xavier_uniform_", xavier_uniform_, shape, dtype, (gain,), seed + 10 * k, expected, mistakes,
                    uniform=True)
        expected = 2 / fan_in
        mistakes = [
            (2 / inp if rf > 1 else None, f"fan_in ignores the kernel: each output sees in·kh·kw = {fan_in} inputs, "
                                          f"not {inp}"),
            (2 / fan_out, f"fan_in and fan_out are swapped: fan_in = shape[1]·kh·kw = {fan_in} (the inputs of one "
                          f"output), not shape[0]·kh·kw = {fan_out}"),
            (2 / out, f"fan_in and fan_out are swapped and the kernel is ignored: fan_in = in·kh·kw = {fan_in}"),
            (1 / fan_in, "He's factor 2 is missing: a ReLU halves the second moment, so Var(w) = 2/fan_in"),
            (4 / fan_in ** 2, "2/fan_in is the variance, but rng.normal takes the std: sqrt(2/fan_in)"),
            (2 / (fan_in + fan_out), "that is Xavier's variance 2/(fan_in+fan_out); He's is 2/fan_in"),
            (2 / fan_in / 3, "that is the variance of U(-sqrt(2/fan_in), sqrt(2/fan_in)); kaiming_normal_ draws "
                             "N(0, 2/fan_in)"),
        ]
        _fill_check("kaiming_normal_", kaiming_normal_, shape, dtype, (), seed + 10 * k + 5, expected, mistakes,
                    uniform=False)
    passed("xavier_uniform_ and kaiming_normal_ fill the weight in place from rng with the right variance: "
           "a non-square Linear, conv kernels (8, 3, 5, 3) and (40, 24, 3, 3) in float32, a 1x1 conv")


# --- exercise 2: the LSUV loop ---------------------------------------------------------------------------
def _lsuv_nets():
    """(description, build(), X, tol, max_iter): float64 Sequentials with non-zero biases (so that one rescaling
    is not enough), started orthogonal as Mishkin & Matas do, and a batch."""
    from cnnlab import Sequential, init
    from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh

    def started(layers, seed):
        net = Sequential(layers).astype(np.float64)
        gen = np.random.default_rng(seed)
        for _, layer in init.weight_layers(net):
            layer.bias.data[...] = gen.normal(0.3, 0.5, size=layer.bias.shape)
        init.apply(net, "orthogonal", rng=seed, bias="keep")
        return net

    def mlp():
        return started([Linear(12, 20), Tanh(), Linear(20, 7), ReLU(), Linear(7, 5)], 1)

    def cnn():
        return started([Conv2d(3, 4, (5, 3)), Tanh(), Conv2d(4, 6, 1), ReLU(), MaxPool2d(2), Flatten(),
                        Linear(6 * 2 * 2, 5)], 2)

    x_mlp = np.random.default_rng(3).normal(0.5, 2.0, size=(100, 12))
    x_cnn = np.random.default_rng(4).normal(0.0, 3.0, size=(30, 3, 9, 7))
    return [("a tanh/ReLU MLP, tol 0.01", mlp, x_mlp, 0.01, 10),
            ("a CNN with (5, 3) and 1x1 kernels, tol 0.01", cnn, x_cnn, 0.01, 10),
            ("the MLP with tol 1e-9 and max_iter 3", mlp, x_mlp, 1e-9, 3)]


def _mistaken_lsuv(net, X, tol, max_iter, mistake):
    """LSUV on a flat Sequential made the way `mistake` says (the wrong ones the check recognises)."""
    from cnnlab import init

    weights = {id(layer) for _, layer in init.weight_layers(net)}
    first_inputs, h = [], X
    for layer in net:                       # the inputs of an untouched net, for "original"
        first_inputs.append(h)
        h = layer(h)
    h = X
    for i, layer in enumerate(net):
        if id(layer) in weights:
            seen = first_inputs[i] if mistake == "original" else h
            for count in range(max_iter + 1):
                out = layer(seen)
                v = out.var(axis=0).mean() if mistake == "per unit" else np.var(out)
                if abs(v - 1) < tol or count == max_iter or (mistake == "once" and count == 1):
                    break
                layer.weight.data /= v if mistake == "variance" else np.sqrt(v)
                if mistake == "bias":
                    layer.bias.data /= np.sqrt(v)
        if mistake != "original":
            h = layer(h)


LSUV_MISTAKES = [
    ("variance", "you divided the weight by the variance; divide by its square root (scaling W by c scales the "
                 "output's variance by about c²)"),
    ("original", "every layer was measured on the input it had before the earlier layers were rescaled: measure "
                 "layer k on the output of the already rescaled layers 1..k-1"),
    ("once", "you stopped after one rescaling: with a bias one step is not enough; measure again and repeat until "
             "|Var - 1| < tol or max_iter rescalings were made"),
    ("bias", "you rescaled the bias too; LSUV divides only the weight"),
    ("per unit", "you averaged the variances of the units; LSUV uses the variance of all entries of the output, "
                 "np.var(out)"),
]


def check_lsuv(lsuv) -> None:
    """`lsuv(net, X, tol, max_iter)` must rescale, from the first weight layer of the flat Sequential `net` to the
    last, the layer's weight by 1/sqrt(Var(its output on X)) until |Var - 1| < tol or max_iter rescalings were
    made, measuring each layer after the earlier ones were rescaled (Mishkin & Matas, Khan 5.1.7); the net
    arrives with its orthogonal start. Compared with `cnnlab.init.lsuv` on the same net and X."""
    from cnnlab import init
    from cnnlab.hooks import recording

    _callable("lsuv", lsuv, "net, X, tol, max_iter")
    for what, build, X, tol, max_iter in _lsuv_nets():
        net, reference = build(), build()
        layers = [layer for _, layer in init.weight_layers(net)]
        start = [layer.weight.data.copy() for layer in layers]
        biases = [layer.bias.data.copy() for layer in layers]
        seed = 1 if "MLP" in what else 2
        init.lsuv(reference, X, tol=tol, max_iter=max_iter, rng=seed, bias="keep")
        expected = [layer.weight.data for _, layer in init.weight_layers(reference)]
        run_student(lambda: lsuv(net, X.copy(), tol, max_iter), f"lsuv on {what}", fn=lsuv)
        got = []
        for k, layer in enumerate(layers):
            w = getattr(getattr(layer, "weight", None), "data", None)
            if not isinstance(w, np.ndarray) or w.shape != start[k].shape:
                raise CheckFailed(f"lsuv on {what}: weight layer {k + 1}'s weight should stay an array of shape "
                                  f"{start[k].shape}; rescale it in place (layer.weight.data /= ...)")
            got.append(np.asarray(w, dtype=np.float64))
        if all(np.array_equal(g, s) for g, s in zip(got, start)):
            if has_placeholder(lsuv):
                raise CheckFailed("lsuv still contains `...`: replace the placeholder with your loop and run the "
                                  "cell again")
            raise CheckFailed(f"lsuv on {what} changed no weight (is its body still `...`?): divide each "
                              "layer's weight in place (layer.weight.data /= ...)")

        def like(a, b):
            return all(np.allclose(x, y, rtol=1e-6, atol=1e-12) for x, y in zip(a, b))

        if like(got, expected):
            continue
        wrongs = []
        for mistake, message in LSUV_MISTAKES:
            wrong = build()
            _mistaken_lsuv(wrong, X, tol, max_iter, mistake)
            wrongs.append(([layer.weight.data for _, layer in init.weight_layers(wrong)], message))
        name_mistake(got, wrongs, like, right=expected, prefix=f"lsuv on {what}: ")
        bias_changed = [k + 1 for k, layer in enumerate(layers) if not np.array_equal(layer.bias.data, biases[k])]
        if bias_changed:
            raise CheckFailed(f"lsuv on {what} changed the bias of weight layer(s) {bias_changed}; LSUV rescales "
                              "only the weights")
        with recording(layers) as (outputs, _):
            net(X)
        variances = [float(np.var(outputs[k])) for k in range(len(layers))]
        k = next(k for k in range(len(layers)) if not np.allclose(got[k], expected[k], rtol=1e-6, atol=1e-12))
        raise CheckFailed(f"lsuv on {what}: weight layer {k + 1} ({type(layers[k]).__name__}) ends with output "
                          f"variance {variances[k]:.4g} on X; tol = {tol}, max_iter = {max_iter}, and its weights "
                          "differ from Mishkin & Matas' loop")
    passed("lsuv matches cnnlab.init.lsuv: layer by layer, each measured after the earlier ones were rescaled, "
           "repeated until |Var - 1| < tol or max_iter (an MLP with biases, a CNN with (5, 3) and 1x1 kernels)")
# --- exercise 3: He's variance for a leaky ReLU ----------------------------------------------------------------
def check_leaky_he_variance(he_leaky_variance) -> None:
    """`he_leaky_variance(a, fan_in)` must return Var(w) = 2 / ((1 + a^2) fan_in): a leaky ReLU with slope a
    keeps (1 + a^2)/2 of a zero-mean symmetric input's second moment (a = 0: He's 2/fan_in, Khan eq. 5.2)."""
    _callable("he_leaky_variance", he_leaky_variance, "a, fan_in")
    for a, fan_in in [(0.2, 50), (0.0, 100), (0.5, 784), (1.0, 10)]:
        call = f"he_leaky_variance({a}, {fan_in})"
        got = _number("variance", _call("he_leaky_variance", he_leaky_variance, a, fan_in), call)
        expected = 2 / ((1 + a * a) * fan_in)
        if _close(got, expected):
            continue
        mistakes = [
            (2 / fan_in, "the slope a is ignored: the negative half of the input keeps a² of its second moment, "
                         "so E[f(z)²] = (1 + a²)/2 · Var(z)"),
            (2 / ((1 + a) * fan_in), "the slope enters squared: the negative half contributes a²·Var(z)/2, "
                                     "so it is 1 + a², not 1 + a"),
            (math.sqrt(expected), "that is the standard deviation; the question asks for the variance"),
            (1 / fan_in, "that is LeCun's 1/fan_in: it forgets that a (leaky) ReLU halves part of the signal"),
            (2 / ((1 - a * a) * fan_in) if a != 1 else None, "it is 1 + a², not 1 - a²: the negative side adds "
                                                             "a² of its second moment, it does not remove it"),
        ]
        name_mistake(got, mistakes, _close, prefix=f"{call} = {got:.6g}: ")
        raise CheckFailed(f"{call} = {got:.6g} but should be {expected:.6g} = 2 / ((1 + a²)·fan_in)")
    passed("he_leaky_variance = 2/((1 + a²)·fan_in): He's 2/fan_in at a = 0, LeCun's 1/fan_in at a = 1 "
           "(a linear unit)")
