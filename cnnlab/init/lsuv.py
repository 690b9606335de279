"""LSUV, layer-sequential unit variance (Mishkin & Matas 2015; Khan 5.1.7).

Two steps:
1. orthogonal initialisation of every weight layer (Khan 5.1.3), biases set by `bias`;
2. from the first weight layer to the last: measure the variance v of this layer's output B (all
   entries, over the batch X), and divide the layer's weight by sqrt(v); repeat until |v - 1| < tol
   or max_iter rescalings were made.

Without a bias the output is linear in the weight, so one rescaling gives v = 1 exactly; a bias
(or batch statistics downstream of nothing) can need a few more. Rescaling layer k does not change
any earlier layer's output, so when every layer converged, every layer's output has unit
variance at the end. This is batch normalisation's goal reached once, at initialisation, instead
of at every step of training.

How the outputs are measured. Mishkin & Matas run the whole net on X for every measurement, which
costs O(depth^2) layer evaluations. Layer k only sees the layers before it, and those are already
rescaled when k's turn comes, so the batch is fed forward once instead: through a Sequential
(nested ones too) layer by layer, keeping each layer's input, re-running only the layer being
rescaled, and passing its output on when it is done. That is O(depth) layer evaluations, with
the same result (every layer's input is what the whole forward pass would give it). A module of
another kind that holds weight layers (a hand-written block) is treated as Mishkin & Matas do,
inside that module: it is re-run on its input for every measurement of its weight layers.
"""
from __future__ import annotations

import functools

import numpy as np

from cnnlab.hooks import recording
from cnnlab.init.schemes import orthogonal_
from cnnlab.init.tensors import real
from cnnlab.module import Module, eval_mode
from cnnlab.rng import as_generator
from cnnlab.sequential import Sequential

__all__ = ["lsuv"]


def lsuv(net: Module, X, tol=0.1, max_iter=10, *, rng=None, gain=1.0, bias="zeros") -> list[dict]:
    """Mishkin & Matas' LSUV initialisation of `net` on the batch X (in place).

    Inputs:
    - net: a Module; its weight layers (Linear, Conv2d, DropConnect, MapCombination, see
      `cnnlab.init.weight_layers`) are initialised in the order they are found.
    - X: a batch in the net's dtype, e.g. (N, D) or (N, C, H, W); a few hundred examples.
    - tol: stop when |Var(output) - 1| < tol; max_iter: at most this many rescalings per layer.
    - rng: Generator, int seed or None (cnnlab's library generator) for the orthogonal matrices.
    - gain: of the orthogonal pre-initialisation; bias: "zeros" (default), a number (constant),
      or "keep" (leave the biases as they are).

    Forward passes run in evaluation mode (no dropout masks, no running statistics touched); the
    net's mode is restored. Returns one dict per weight layer:
    {"name", "type", "variance" (of its output when done), "iterations" (rescalings made),
    "converged" (|variance - 1| < tol)}. A layer whose output is constant cannot be rescaled to unit
    variance: it is reported with converged False.

    Cost: in a Sequential each layer runs once on X's way forward, and each weight layer once more
    per rescaling: O(depth) layer evaluations, not the O(depth^2) of re-running the whole net for
    every measurement, with the same result (see the module docstring).
    """
    from cnnlab.init.network import _check_bias, init_bias, weight_layers  # network builds on this module

    if not isinstance(net, Module):
        raise TypeError(f"lsuv expects a cnnlab Module, got {type(net).__name__}")
    tol = real(tol, "tol", "lsuv")
    if tol <= 0:
        raise ValueError(f"lsuv: tol must be > 0, got {tol}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 0:
        raise ValueError(f"lsuv: max_iter must be an int >= 0, got {max_iter!r}")
    gen = as_generator(rng, "lsuv")
    layers = weight_layers(net)
    if not layers:
        raise ValueError("lsuv: the net has no weight layers (Linear, Conv2d, DropConnect, MapCombination)")
    _check_bias(bias)  # before anything is changed
    for _, layer in layers:
        orthogonal_(layer.weight, gain, rng=gen)
        init_bias(layer, bias)
    report: list[dict] = []
    position = {id(layer): i for i, (_, layer) in enumerate(layers)}   # the key of its output in `outputs`
    with eval_mode(net), recording([layer for _, layer in layers]) as (outputs, _):
        rescale_in = functools.partial(_rescale_in, outputs=outputs, position=position, tol=tol,
                                       max_iter=max_iter, report=report)
        _forward_rescaling(net, X, layers, rescale_in)
    return report


def _forward_rescaling(module, x, layers, rescale_in):
    """module(x), rescaling the weight layers among `layers` ((name, layer) pairs) as the batch reaches them.

    A Sequential (whose forward is Sequential's) is walked child by child, so each child runs on
    the output of the already rescaled children before it; any other module holding weight layers
    goes to `rescale_in(module, x, its weight layers)`, which returns module(x).
    """
    ids = {id(m) for m in module.modules()}
    inside = [(name, layer) for name, layer in layers if id(layer) in ids]
    if not inside:
        return module(x)
    if isinstance(module, Sequential) and type(module).forward is Sequential.forward:
        for child in module:
            x = _forward_rescaling(child, x, inside, rescale_in)
        return x
    return rescale_in(module, x, inside)


def _rescale_in(module, x, layers, *, outputs, position, tol, max_iter, report):
    """Rescale each of `layers` in turn, running module(x) for every measurement (Mishkin & Matas' loop,
    within `module`); appends one report entry per layer and returns module(x) with the final weights."""
    out = None
    for name, layer in layers:
        iterations = 0
        while True:
            out = module(x)
            if position[id(layer)] not in outputs:
                raise ValueError(f"lsuv: layer {name!r} did not run in net.forward(X), so its output "
                                 "variance cannot be measured")
            variance = float(np.var(outputs[position[id(layer)]], dtype=np.float64))
            if not np.isfinite(variance):
                raise ValueError(f"lsuv: the output of layer {name!r} is not finite (variance "
                                 f"{variance}); check X for inf or nan")
            converged = abs(variance - 1.0) < tol
            if converged or iterations >= max_iter or variance == 0.0:
                break   # right after a measurement: `out` was computed with the final weights
            layer.weight.data /= np.sqrt(variance).astype(layer.weight.dtype)
            iterations += 1
        report.append({"name": name, "type": type(layer).__name__, "variance": variance,
                       "iterations": iterations, "converged": converged})
    return out
