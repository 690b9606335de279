"""What an initialisation scheme predicts for a deep stack of [Linear, activation] blocks: the variance
recursion behind Glorot's and He's formulas, run layer by layer (used by `widgets.init_model`).

The variance argument of Khan §5.1.5, run layer by layer: with
independent zero-mean weights of variance v = Var(w) (the scheme's formula, `cnnlab.init.predicted_variance`)
a block's pre-activation z has variance q_l = fan_in v E[h_{l-1}^2], and its output h = f(z) has
E[h^2] = E[f(z)^2] for z ~ N(0, q_l) (a Gaussian integral, `gaussian_moments`: closed forms for ReLU
and linear, numerical quadrature for the others). Backwards, E[g_{l-1}^2] = fan_out v E[g_l^2] E[f'(z_l)^2]. For
linear units this is Glorot's fan_in Var(w) = 1 (forward) and fan_out Var(w) = 1 (backward); for ReLU
E[f(z)^2] = q/2, which is He's factor 2. The constants (zeros, ones, constant) have no prediction:
their weights are neither independent nor zero-mean, every unit is a copy of its neighbours. LSUV has
no formula (the data sets its scale): its prediction uses the weights' measured variance.
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.layers import LeCunTanh, ReLU, Sigmoid, Tanh

__all__ = ["ACTIVATIONS", "gaussian_moments", "predicted_profile"]

# activation name -> layer class (None: no activation, the blocks are linear)
ACTIVATIONS = {"tanh": Tanh, "ReLU": ReLU, "sigmoid": Sigmoid, "linear": None, "LeCun tanh": LeCunTanh}
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(81)  # E[f(z)], z ~ N(0, 1) = sum(w f(x)) / sqrt(2 pi)
_WEIGHTS = _WEIGHTS / math.sqrt(2 * math.pi)
_SATURATED = 20.0  # |z| beyond which tanh, sigmoid and LeCun's tanh equal their limits in float64


# --- the prediction ---------------------------------------------------------------------------------
def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0, e) / (1.0 + e)


def _saturating(activation: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f(z), f'(z)) of tanh, sigmoid or LeCun's tanh."""
    if activation == "tanh":
        t = np.tanh(z)
        return t, 1 - t * t
    if activation == "sigmoid":
        s = _sigmoid(z)
        return s, s * (1 - s)
    t = np.tanh(LeCunTanh.B * z)  # LeCun's scaled tanh, A tanh(B z)
    return LeCunTanh.A * t, LeCunTanh.A * LeCunTanh.B * (1 - t * t)


_GRID = np.linspace(-_SATURATED, _SATURATED, 4001)


def gaussian_moments(activation: str, q: float) -> tuple[float, float, float]:
    """(E[f(z)], E[f(z)^2], E[f'(z)^2]) for z ~ N(0, q), f the named activation.

    ReLU and linear in closed form (ReLU: sqrt(q / 2 pi), q / 2, 1/2). tanh, sigmoid and LeCun's tanh
    numerically: for q <= 1 by 81-point Gauss-Hermite quadrature; for larger q on a fine grid of z in
    [-20, 20] (trapezoid rule) plus the two tails, where the function has reached its limits f(+-inf)
    and f' = 0 (to double precision). q = inf gives the saturated limits; q = 0 gives f(0).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
    if not q >= 0:
        raise ValueError(f"q is a variance and must be >= 0, got {q}")
    if activation == "linear":
        return 0.0, q, 1.0
    if activation == "ReLU":
        return math.sqrt(q / (2 * math.pi)), q / 2, 0.5
    if q <= 1.0:
        f, df = _saturating(activation, math.sqrt(q) * _NODES)
        return float(_WEIGHTS @ f), float(_WEIGHTS @ f ** 2), float(_WEIGHTS @ df ** 2)
    (low, high), _ = _saturating(activation, np.array([-np.inf, np.inf]))
    tail = 0.5 * math.erfc(_SATURATED / math.sqrt(2 * q)) if math.isfinite(q) else 0.5
    if tail == 0.5:  # all of the mass beyond the grid
        return 0.5 * (low + high), 0.5 * (low ** 2 + high ** 2), 0.0
    density = np.exp(-_GRID ** 2 / (2 * q)) / math.sqrt(2 * math.pi * q)
    weights = density * (_GRID[1] - _GRID[0])
    weights[[0, -1]] *= 0.5  # trapezoid rule
    f, df = _saturating(activation, _GRID)
    return (float(weights @ f + tail * (low + high)), float(weights @ f ** 2 + tail * (low ** 2 + high ** 2)),
            float(weights @ df ** 2))


def predicted_profile(activation: str, weight_variances, fans_in, fans_out, input_second_moment: float):
    """The variance recursion of the module docstring for a stack of [Linear, activation] blocks.

    Inputs: activation (a name of ACTIVATIONS); weight_variances, fans_in, fans_out: one per block
    (Var(w) of its weight and the weight's fans); input_second_moment: E[x^2] of the net's input.
    The upstream gradient at the last block's output has E[g^2] = 1 (N(0, 1), as activation_stats draws it).
    Returns (act_mean, act_std, grad_std), arrays of shape (depth,): the predicted mean and standard
    deviation of each block's output and the predicted std of dL/d(block output).
    """
    v, fi, fo = (np.asarray(a, dtype=np.float64) for a in (weight_variances, fans_in, fans_out))
    depth = len(v)
    if not (len(fi) == len(fo) == depth):
        raise ValueError(f"one weight variance and one fan_in/fan_out per block, got {len(v)}, {len(fi)}, {len(fo)}")
    act_mean, act_std, dmom = np.empty(depth), np.empty(depth), np.empty(depth)
    m = float(input_second_moment)
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in range(depth):
            q = fi[layer] * v[layer] * m
            mean, m, dmom[layer] = gaussian_moments(activation, q if math.isfinite(q) else math.inf)
            act_mean[layer], act_std[layer] = mean, math.sqrt(max(m - mean * mean, 0.0))
        grad_sq = np.empty(depth)
        grad_sq[-1] = 1.0
        for layer in range(depth - 1, 0, -1):
            grad_sq[layer - 1] = fo[layer] * v[layer] * grad_sq[layer] * dmom[layer]
    return act_mean, act_std, np.sqrt(grad_sq)
