"""Self-checks for lesson 08 (initialisation).

Every expected answer is computed here from the formula (Khan eq. 5.1 with the fans of a conv kernel,
Mishkin & Matas' rescaling, He's variance for a leaky ReLU), never from the student's code. Each check
recognises the typical mistakes by name.
"""
from __future__ import annotations

import math

import numpy as np

from . import CheckFailed, check_array, name_mistake, passed, run_student

__all__ = ["check_xavier_uniform_bound", "check_lsuv_step", "check_leaky_he_variance"]


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


# --- exercise 1: Xavier's uniform bound for a conv kernel ------------------------------------------------
def check_xavier_uniform_bound(xavier_uniform_bound) -> None:
    """`xavier_uniform_bound(shape)` must return b = sqrt(6 / (fan_in + fan_out)) for a weight of `shape`,
    (out, in) or (out, in, kh, kw), with fan_in = in*kh*kw and fan_out = out*kh*kw (Khan eq. 5.1:
    U(-b, b) has variance b^2/3 = 2 / (fan_in + fan_out))."""
    _callable("xavier_uniform_bound", xavier_uniform_bound, "shape")
    for shape in [(10, 784), (16, 3, 5, 5), (8, 8, 3, 3), (6, 2, 5, 3)]:
        out, inp, kernel = shape[0], shape[1], shape[2:]
        rf = math.prod(kernel)
        fan_in, fan_out = inp * rf, out * rf
        call = f"xavier_uniform_bound({shape})"
        got = _number("bound", _call("xavier_uniform_bound", xavier_uniform_bound, shape), call)
        expected = math.sqrt(6 / (fan_in + fan_out))
        if _close(got, expected):
            continue
        mistakes = [
            (math.sqrt(6 / (inp + out)), f"the fans ignore the kernel: every output of a conv layer sees "
                                         f"in·kh·kw = {fan_in} inputs, so fan_in = {fan_in} and fan_out = "
                                         f"out·kh·kw = {fan_out}, not {inp} and {out}"),
            (math.sqrt(6 / ((inp + out) * kernel[0])) if kernel else None,
             f"the receptive field is kh·kw = {rf}, not kh = {kernel[0] if kernel else ''}"),
            (math.sqrt(2 / (fan_in + fan_out)), "that is the standard deviation sqrt(2/(fan_in+fan_out)) of "
                                                "Xavier's normal; U(-b, b) has variance b²/3, so the bound is √3 "
                                                "times larger"),
            (6 / (fan_in + fan_out), "the square root is missing: b = sqrt(6 / (fan_in + fan_out))"),
            (2 / (fan_in + fan_out), "that is the variance 2/(fan_in+fan_out); the question asks for the bound "
                                     "b = sqrt(6/(fan_in+fan_out))"),
            (math.sqrt(6 / fan_in), "only fan_in is used; Xavier averages the two fans: 6 / (fan_in + fan_out)"),
            (math.sqrt(3 / fan_in), "that is LeCun's uniform bound sqrt(3/fan_in); Xavier uses 6 / (fan_in + fan_out)"),
        ]
        name_mistake(got, mistakes, _close, prefix=f"{call} = {got:.6g}: ")
        raise CheckFailed(f"{call} = {got:.6g} but should be {expected:.6g} "
                          f"(fan_in = {fan_in}, fan_out = {fan_out})")
    passed("xavier_uniform_bound gives sqrt(6/(fan_in+fan_out)) with the kernel's kh·kw in both fans "
           "(Linear and Conv2d shapes, square and non-square kernels)")


# --- exercise 2: one LSUV rescaling step ------------------------------------------------------------------
def check_lsuv_step(lsuv_step) -> None:
    """`lsuv_step(weight, output)` must return weight / sqrt(Var(output)), where Var is the variance of all
    entries of the layer's output on the batch (Mishkin & Matas' step, Khan 5.1.7)."""
    _callable("lsuv_step", lsuv_step, "weight, output")
    rng = np.random.default_rng(8)
    weight = rng.standard_normal((6, 4))                      # (out, in): out != in catches axis mix-ups
    output = 2.5 * rng.standard_normal((40, 6)) + 0.8        # a non-zero mean separates variance from mean square
    output[:, 0] *= 3.0                                      # units of different scales separate per-unit answers
    got = _call("lsuv_step", lsuv_step, weight.copy(), output.copy())
    if got is Ellipsis:
        raise CheckFailed("lsuv_step still returns `...`: return the rescaled weight")
    if got is None:
        raise CheckFailed("lsuv_step returned None: return the new weight (e.g. `return weight / ...`)")
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(f"lsuv_step should return a numeric array, got {type(got).__name__}") from None
    variance = float(np.var(output))
    expected = weight / math.sqrt(variance)
    if np.shape(got) != weight.shape:
        raise CheckFailed(f"lsuv_step should return an array of the weight's shape {weight.shape}, got shape "
                          f"{np.shape(got)}: rescale the weight, not the output")

    def same(x):
        return np.allclose(got, x, rtol=1e-6, atol=1e-12)

    unit_std = output.std(axis=0)
    mistakes = [
        (weight / variance, "you divided by the variance; divide by its square root: scaling W by c scales the "
                            "output's variance by c², so c = 1/sqrt(Var)"),
        (weight * math.sqrt(variance), "you multiplied by the std; divide by it, so that a large output shrinks"),
        (weight / unit_std[:, None], "you gave every unit its own variance (that is batch norm's idea, per unit); "
                                     "LSUV uses one number per layer: the variance of all entries of the output"),
        (weight / math.sqrt(np.mean(output ** 2)), "you divided by the root mean square; LSUV uses the variance, "
                                                   "which subtracts the output's mean first (np.var)"),
        (weight / weight.std(), "you divided by the weight's std; LSUV measures the layer's OUTPUT on the batch"),
        (weight / output.std(ddof=1), "you used the sample variance (ddof=1); use np.var(output) as LSUV does"),
    ]
    for wrong, why in mistakes:
        if same(wrong) and not same(expected):
            raise CheckFailed(why)
    check_array("lsuv_step(weight, output)", got, expected, rtol=1e-6, atol=1e-12)
    passed("lsuv_step divides the weight by the std of the layer's output: one rescaling makes a linear "
           "output's variance exactly 1")


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
