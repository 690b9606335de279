"""The initialisation schemes of the source documents, with PyTorch's names and arguments (`torch.nn.init`).

Each function fills a Parameter (or a float ndarray) IN PLACE and returns it. Random schemes take
`rng=`: a numpy Generator, an int seed, or None (the default: cnnlab's library generator, reset by
`cnnlab.manual_seed`, as torch.nn.init draws from torch's default generator). Notation: fan_in, fan_out from
`fan_in_and_fan_out` (for a conv kernel (out, in, kh, kw): in*kh*kw and out*kh*kw).

| function                  | each weight                          | Var(w)                      | source       |
|---------------------------|--------------------------------------|-----------------------------|--------------|
| zeros_, ones_, constant_  | the constant                         | 0                           | Khan 5.1     |
| normal_(mean, std)        | N(mean, std^2), e.g. std 0.1 or 0.01 | std^2                       | Khan 5.1.1   |
| uniform_(a, b)            | U(a, b)                              | (b - a)^2 / 12              | Khan 5.1.2   |
| orthogonal_(gain)         | gain * orthogonal matrix (QR or SVD) | gain^2 / max(rows, cols)    | Khan 5.1.3   |
| xavier_normal_/_uniform_  | N or U, zero mean                    | gain^2 2/(fan_in + fan_out) | Khan eq. 5.1 |
| kaiming_normal_/_uniform_ | N or U, zero mean (= he_normal_ ...) | gain(nl, a)^2 / fan(mode)   | Khan eq. 5.2 |
| lecun_normal_/_uniform_   | N or U, zero mean                    | gain^2 / fan_in             | Veta (LeCun) |

A uniform U(-b, b) has variance b^2/3, so the uniform variants use the bound b = sqrt(3) * std
for the same variance as the normal ones.
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.init.tensors import calculate_gain, correct_fan, fan_in_and_fan_out, fill, real, target_array
from cnnlab.rng import as_generator

__all__ = ["zeros_", "ones_", "constant_", "normal_", "uniform_", "orthogonal_", "xavier_normal_",
           "xavier_uniform_", "kaiming_normal_", "kaiming_uniform_", "he_normal_", "he_uniform_",
           "lecun_normal_", "lecun_uniform_"]


# --- constants: they cannot break the symmetry between units (Khan 5.1) -------------------------
def constant_(tensor, val):
    """Fill `tensor` (any shape) with `val`. Every unit of a layer then computes the same thing,
    receives the same gradient and stays a copy of its neighbours: training cannot break the symmetry."""
    array = target_array(tensor, "constant_")
    array[...] = real(val, "val", "constant_")
    return tensor


def zeros_(tensor):
    """Fill `tensor` with 0 (the usual bias init; as a weight init it keeps all units identical)."""
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill `tensor` with 1."""
    return constant_(tensor, 1.0)


# --- Gaussian and uniform at a fixed scale (Khan 5.1.1-5.1.2) -------------------------------------
def normal_(tensor, mean=0.0, std=1.0, *, rng=None):
    """Draw every entry from N(mean, std^2) (Khan 5.1.1: zero mean, a small std such as 0.1 or 0.01).

    Inputs: tensor (any shape); mean; std >= 0; rng: Generator, int seed or None (see above).
    The scale does not depend on the layer's size, which is why deep nets initialised this way
    see their activations shrink (or grow) geometrically with depth.
    """
    array = target_array(tensor, "normal_")
    mean, std = real(mean, "mean", "normal_"), real(std, "std", "normal_", minimum=0.0)
    fill(array, as_generator(rng, "normal_").normal(mean, std, size=array.shape))
    return tensor


def uniform_(tensor, a=0.0, b=1.0, *, rng=None):
    """Draw every entry from U(a, b), variance (b - a)^2 / 12 (Khan 5.1.2).

    Inputs: tensor (any shape); a <= b; rng. Khan's zero-mean uniform with standard
    deviation s is U(-sqrt(3) s, sqrt(3) s).
    """
    array = target_array(tensor, "uniform_")
    a, b = real(a, "a", "uniform_"), real(b, "b", "uniform_")
    if a > b:
        raise ValueError(f"uniform_ expects a <= b, got a={a}, b={b}")
    fill(array, as_generator(rng, "uniform_").uniform(a, b, size=array.shape))
    return tensor


# --- orthogonal (Khan 5.1.3, Saxe et al.) ----------------------------------------------------------
def orthogonal_(tensor, gain=1.0, *, rng=None, method="qr"):
    """Fill `tensor` with a (semi-)orthogonal matrix times `gain` (Khan 5.1.3; Saxe et al. 2013).

    Inputs:
    - tensor: at least 2-D, (rows, ...): viewed as a matrix (rows, cols) with rows = shape[0] and
      cols = the product of the other axes, so a conv kernel (out, in, kh, kw) becomes
      (out, in*kh*kw): each output channel's flattened kernel is one row.
    - gain: multiplies the result; rng: Generator, int seed or None (see above).
    - method: "qr" (as PyTorch): a Gaussian matrix G = QR, then Q's columns are multiplied by the
      signs of diag(R), which makes Q uniformly distributed over orthogonal matrices (without the
      sign correction QR's convention biases it). "svd" (as Khan describes): G = U S V^T and the
      factor of G's shape is kept (U, or V^T for a wide matrix).

    Result: for rows >= cols the columns are orthonormal (W^T W = gain^2 I), for a wide matrix the
    rows are (W W^T = gain^2 I). Every entry then has mean square gain^2 / max(rows, cols).
    """
    array = target_array(tensor, "orthogonal_")
    if array.ndim < 2:
        raise ValueError(f"orthogonal_ needs a tensor with 2 or more dimensions (rows, cols, ...), got shape "
                         f"{array.shape}")
    if method not in ("qr", "svd"):
        raise ValueError(f"orthogonal_: method must be 'qr' or 'svd', got {method!r}")
    gain = real(gain, "gain", "orthogonal_")
    gen = as_generator(rng, "orthogonal_")
    if array.size == 0:
        return tensor
    rows = array.shape[0]
    cols = array.size // rows
    flat = gen.standard_normal((rows, cols))
    if method == "qr":
        tall = flat if rows >= cols else flat.T                 # QR of the tall orientation
        q, r = np.linalg.qr(tall)                               # q: (max, min), orthonormal columns
        signs = np.sign(np.diag(r))
        q = q * np.where(signs == 0, 1.0, signs)                # the sign correction
        q = q if rows >= cols else q.T
    else:
        u, _, vt = np.linalg.svd(flat, full_matrices=False)     # u: (rows, k), vt: (k, cols)
        q = u if u.shape == flat.shape else vt
    fill(array, gain * q.reshape(array.shape))
    return tensor


# --- scaled by the fans: Xavier/Glorot, He/Kaiming, LeCun ---------------------------------------
def _zero_mean(tensor, std_of, rng, uniform: bool, who: str):
    """Fill `tensor` with zero-mean values of std = std_of(its array): N(0, std^2), or the uniform
    U(-b, b) of the same variance (Var = b^2 / 3, so b = sqrt(3) std). Returns tensor."""
    array = target_array(tensor, who)
    std, gen = std_of(array), as_generator(rng, who)
    if array.size == 0:
        return tensor
    if uniform:
        bound = math.sqrt(3.0) * std
        fill(array, gen.uniform(-bound, bound, size=array.shape))
    else:
        fill(array, gen.normal(0.0, std, size=array.shape))
    return tensor


def _xavier(tensor, gain, rng, uniform: bool, who: str):
    gain = real(gain, "gain", who)
    return _zero_mean(tensor, lambda a: gain * math.sqrt(2.0 / sum(fan_in_and_fan_out(a))), rng, uniform, who)


def xavier_normal_(tensor, gain=1.0, *, rng=None):
    """Glorot & Bengio: N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)) (Khan eq. 5.1, Veta).

    The forward pass keeps the variance of a linear layer's output if Var(w) = 1/fan_in, the
    backward pass keeps the gradient's if Var(w) = 1/fan_out; 2/(fan_in + fan_out) is the compromise.
    Inputs: tensor at least 2-D; gain (e.g. calculate_gain("tanh")); rng.
    """
    return _xavier(tensor, gain, rng, False, "xavier_normal_")


def xavier_uniform_(tensor, gain=1.0, *, rng=None):
    """Glorot & Bengio, uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)), same variance as
    `xavier_normal_` (Khan eq. 5.1). Inputs: tensor at least 2-D; gain; rng."""
    return _xavier(tensor, gain, rng, True, "xavier_uniform_")


def _kaiming(tensor, a, mode, nonlinearity, rng, uniform: bool, who: str):
    gain = calculate_gain(nonlinearity, a)
    return _zero_mean(tensor, lambda a: gain / math.sqrt(correct_fan(a, mode)), rng, uniform, who)


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None):
    """He et al.: N(0, std^2), std = gain / sqrt(fan) with gain = calculate_gain(nonlinearity, a).

    With the defaults (leaky_relu with slope a = 0, i.e. ReLU) Var(w) = 2 / fan_in (Khan eq. 5.2):
    the ReLU discards about half of the signal's second moment and the 2 puts it back.
    Inputs: tensor at least 2-D; a: negative slope of the leaky ReLU; mode: "fan_in" (keeps the
    forward activations' scale) or "fan_out" (keeps the backward gradients'); nonlinearity: a
    name of `calculate_gain`; rng. Also available as `he_normal_`.
    """
    return _kaiming(tensor, a, mode, nonlinearity, rng, False, "kaiming_normal_")


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu", *, rng=None):
    """He et al., uniform: U(-b, b), b = gain * sqrt(3 / fan), same variance as `kaiming_normal_`.

    PyTorch's default init of Linear and Conv2d is this with a = sqrt(5): U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), Var = 1/(3 fan_in). Also available as `he_uniform_`.
    """
    return _kaiming(tensor, a, mode, nonlinearity, rng, True, "kaiming_uniform_")


he_normal_ = kaiming_normal_
he_uniform_ = kaiming_uniform_


def _lecun(tensor, gain, rng, uniform: bool, who: str):
    gain = real(gain, "gain", who)
    return _zero_mean(tensor, lambda a: gain / math.sqrt(fan_in_and_fan_out(a)[0]), rng, uniform, who)


def lecun_normal_(tensor, gain=1.0, *, rng=None):
    """LeCun: N(0, std^2), std = gain / sqrt(fan_in), i.e. Var(w) = 1 / fan_in (Veta's first heuristic).

    A linear unit's output sum_i w_i x_i then has the variance of one input (for zero-mean,
    independent inputs and weights). Not in torch.nn.init; it is kaiming_normal_ with
    nonlinearity="linear". Inputs: tensor at least 2-D; gain; rng.
    """
    return _lecun(tensor, gain, rng, False, "lecun_normal_")


def lecun_uniform_(tensor, gain=1.0, *, rng=None):
    """LeCun, uniform: U(-b, b), b = gain * sqrt(3 / fan_in), Var(w) = gain^2 / fan_in (Veta)."""
    return _lecun(tensor, gain, rng, True, "lecun_uniform_")
