"""Initialising a whole network by scheme name, and the weight variance each scheme intends.

    apply(net, "kaiming_normal", rng=0)                  # every weight layer, biases to 0
    apply(net, "normal", rng=0, std=0.01)                # scheme options pass through
    apply(net, "xavier_uniform", rng=0, gain=calculate_gain("tanh"))
    apply(net, "kaiming_normal", rng=0, bias=0.01)       # small positive bias for ReLU (Veta)
    apply(net, "lsuv", rng=0, X=batch)                   # needs a data batch

`predicted_variance(scheme, fan_in, fan_out, **options)` is the formula of each scheme, used to
overlay the prediction on measured histograms.
"""
from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from cnnlab.init import schemes as S
from cnnlab.init.lsuv import lsuv
from cnnlab.init.tensors import calculate_gain, fan_in_and_fan_out, real
from cnnlab.module import Module
from cnnlab.rng import as_generator

__all__ = ["SCHEMES", "weight_layers", "init_bias", "apply", "predicted_variance"]

# scheme name -> in-place function; "lsuv" is handled by `lsuv`
SCHEMES = {
    "zeros": S.zeros_, "ones": S.ones_, "constant": S.constant_,
    "normal": S.normal_, "uniform": S.uniform_, "orthogonal": S.orthogonal_,
    "xavier_normal": S.xavier_normal_, "xavier_uniform": S.xavier_uniform_,
    "kaiming_normal": S.kaiming_normal_, "kaiming_uniform": S.kaiming_uniform_,
    "he_normal": S.he_normal_, "he_uniform": S.he_uniform_,
    "lecun_normal": S.lecun_normal_, "lecun_uniform": S.lecun_uniform_,
    "lsuv": lsuv,
}
DETERMINISTIC = ("zeros", "ones", "constant")


def _check_scheme(scheme) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown initialisation scheme {scheme!r}; valid schemes: {', '.join(SCHEMES)}")
    return scheme


def weight_layers(net: Module) -> list[tuple[str, Module]]:
    """(name, layer) of every Linear, Conv2d, DropConnect and MapCombination in `net`, in order.

    Their `weight` is what a scheme initialises. MapCombination's mixing logits `c` are left alone
    (0: every input map weighted equally), as are batch norm's gamma and beta and Subsample2d's beta.
    """
    from cnnlab.layers import Conv2d, DropConnect, Linear, MapCombination

    return [(name, m) for name, m in net.named_modules()
            if isinstance(m, (Linear, Conv2d, DropConnect, MapCombination))]


def _check_bias(bias) -> None:
    if isinstance(bias, str):
        if bias not in ("zeros", "keep"):
            raise ValueError(f"bias must be 'zeros', 'keep' or a number (e.g. 0.01), got {bias!r}")
    elif not isinstance(bias, numbers.Real) or isinstance(bias, bool):
        raise TypeError(f"bias must be 'zeros', 'keep' or a number (e.g. 0.01), got {type(bias).__name__}: {bias!r}")


def init_bias(layer: Module, bias) -> None:
    """Set `layer.bias` (when it has one): "zeros", a number (e.g. 0.01 for ReLU units, Veta), or "keep"."""
    _check_bias(bias)
    b = getattr(layer, "bias", None)
    if b is None or bias == "keep":
        return
    S.constant_(b, 0.0 if bias == "zeros" else bias)


def _scheme_options(fn, scheme: str, options: dict) -> dict:
    accepted = [n for n, p in inspect.signature(fn).parameters.items()
                if n not in ("tensor", "rng", "net", "X", "bias") and p.kind != p.VAR_KEYWORD]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"scheme {scheme!r} does not take {unknown}; it accepts {accepted}")
    return options


def apply(net: Module, scheme: str, rng=None, gain=None, bias="zeros", X=None, **options) -> list[dict]:
    """Initialise every weight layer of `net` (see `weight_layers`) with one scheme, in place.

    Inputs:
    - net: a Module; scheme: a name of SCHEMES ("zeros", "normal", "xavier_normal", "he_normal",
      "lecun_uniform", "orthogonal", "lsuv", ...); an unknown name raises ValueError listing them.
    - rng: Generator, int seed or None (cnnlab's library generator, see `cnnlab.manual_seed`); the
      schemes "zeros", "ones" and "constant" draw nothing. One generator is used for all layers in
      order, so the same seed gives the same net.
    - gain: for the schemes with a gain (orthogonal, xavier_*, lecun_*, lsuv); None keeps their
      default 1. Kaiming/He take nonlinearity= and a= instead.
    - bias: "zeros" (default), a number (Veta suggests a small positive constant such as 0.01 for
      ReLU units; lesson 08 measures how little it changes the share of dead units), or "keep".
    - X: the data batch LSUV needs (only for "lsuv").
    - options: passed to the scheme, e.g. std=0.01 for "normal", a=-0.1, b=0.1 for "uniform",
      val=0.5 for "constant", tol= and max_iter= for "lsuv".

    Returns one dict per weight layer: {"name", "type", "shape", "fan_in", "fan_out",
    "predicted_variance", "variance" (measured on the weights)}; for "lsuv" also the LSUV report's
    "output_variance", "iterations", "converged".
    """
    if not isinstance(net, Module):
        raise TypeError(f"apply expects a cnnlab Module, got {type(net).__name__}")
    fn = SCHEMES[_check_scheme(scheme)]
    options = _scheme_options(fn, scheme, dict(options))
    if gain is not None:
        if "gain" not in inspect.signature(fn).parameters:
            with_gain = [n for n, f in SCHEMES.items() if "gain" in inspect.signature(f).parameters]
            raise ValueError(f"scheme {scheme!r} has no gain (schemes with a gain: {with_gain}); "
                             "Kaiming/He take nonlinearity= and a=")
        options["gain"] = gain
    layers = weight_layers(net)
    if not layers:
        raise ValueError("apply: the net has no weight layers (Linear, Conv2d, DropConnect, MapCombination)")
    lsuv_report = {}
    if scheme == "lsuv":
        if X is None:
            raise ValueError("scheme 'lsuv' needs a data batch: apply(net, 'lsuv', X=batch)")
        lsuv_report = {r["name"]: r for r in lsuv(net, X, rng=rng, bias=bias, **options)}
    else:
        if X is not None:
            raise ValueError(f"X is only used by scheme 'lsuv', not by {scheme!r}")
        _check_bias(bias)  # before anything is changed
        gen = None if scheme in DETERMINISTIC else as_generator(rng, f"apply(scheme={scheme!r})")
        for _, layer in layers:
            if gen is None:
                fn(layer.weight, **options)
            else:
                fn(layer.weight, rng=gen, **options)
            init_bias(layer, bias)
    records = []
    for name, layer in layers:
        fan_in, fan_out = fan_in_and_fan_out(layer.weight)
        rf = math.prod(layer.weight.shape[2:])
        predicted = predicted_variance(scheme, fan_in, fan_out, receptive_field=rf,
                                       **{k: v for k, v in options.items() if k not in ("tol", "max_iter")})
        record = {"name": name, "type": type(layer).__name__, "shape": layer.weight.shape,
                  "fan_in": fan_in, "fan_out": fan_out, "predicted_variance": predicted,
                  "variance": float(np.var(layer.weight.data, dtype=np.float64))}
        if name in lsuv_report:
            r = lsuv_report[name]
            record.update(output_variance=r["variance"], iterations=r["iterations"], converged=r["converged"])
        records.append(record)
    return records


def predicted_variance(scheme: str, fan_in: int, fan_out: int, receptive_field: int = 1, **options):
    """The variance Var(w) of one weight that `scheme` draws from, for a layer with these fans.

    Inputs: scheme (a name of SCHEMES); fan_in, fan_out (see `fan_in_and_fan_out`); receptive_field:
    kh*kw of a conv kernel (only the orthogonal scheme needs it: its matrix is
    (out, in*kh*kw) = (fan_out / receptive_field, fan_in)); options: the scheme's, with the same
    defaults as its function (std=1 for "normal", a=0, b=1 for "uniform", gain=1, ...).

    Returns a float: 0 for the constants; std^2; (b - a)^2/12; gain^2/max(rows, cols) for
    orthogonal; gain^2 2/(fan_in + fan_out) for Xavier; calculate_gain(nonlinearity, a)^2/fan for
    Kaiming/He; gain^2/fan_in for LeCun. None for "lsuv", whose scale is set by the data.
    """
    fn = SCHEMES[_check_scheme(scheme)]
    options = _scheme_options(fn, scheme, dict(options))
    for value, name in ((fan_in, "fan_in"), (fan_out, "fan_out"), (receptive_field, "receptive_field")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"predicted_variance: {name} must be an int >= 1, got {value!r}")
    defaults = {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}
    o = {**defaults, **options}
    if scheme == "lsuv":
        return None
    if scheme in DETERMINISTIC:
        return 0.0
    if scheme == "normal":
        return real(o["std"], "std", "predicted_variance") ** 2
    if scheme == "uniform":
        return (real(o["b"], "b", "predicted_variance") - real(o["a"], "a", "predicted_variance")) ** 2 / 12
    gain = o.get("gain")
    if scheme == "orthogonal":
        if fan_out % receptive_field:
            raise ValueError(f"predicted_variance: fan_out {fan_out} is not a multiple of receptive_field "
                             f"{receptive_field}")
        return gain ** 2 / max(fan_out // receptive_field, fan_in)
    if scheme.startswith("xavier"):
        return gain ** 2 * 2.0 / (fan_in + fan_out)
    if scheme.startswith(("kaiming", "he_")):
        if o["mode"] not in ("fan_in", "fan_out"):
            raise ValueError(f"mode {o['mode']!r} is not supported; use one of ['fan_in', 'fan_out']")
        fan = fan_in if o["mode"] == "fan_in" else fan_out
        return calculate_gain(o["nonlinearity"], o["a"]) ** 2 / fan
    return gain ** 2 / fan_in  # lecun
