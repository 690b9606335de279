"""What every initialiser needs: the array behind a tensor, fans and gains.

- `fan_in_and_fan_out(tensor)`: PyTorch's `_calculate_fan_in_and_fan_out`. For a Linear weight
  (out, in) the fans are (in, out); for a Conv2d weight (out, in, kh, kw) every input pixel of a
  kernel window is one incoming connection, so fan_in = in*kh*kw and fan_out = out*kh*kw.
- `calculate_gain(nonlinearity, param=None)`: PyTorch's table of the factor by which a
  nonlinearity changes the scale of a signal (used by Xavier, He and orthogonal init).

An initialiser accepts a `cnnlab.Parameter` (its `.data` is filled) or a float numpy array, fills
it IN PLACE (dtype and shape unchanged) and returns the object it was given, as PyTorch's
`torch.nn.init.*_` functions do. Random numbers are drawn in float64 from `rng` (a numpy
Generator, an int seed, or None for cnnlab's library generator, see `cnnlab.rng`) and then cast, so
one seed gives the same values, up to rounding, in float32 and float64. NumPy's global random state
is never used.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from cnnlab.module import Parameter

__all__ = ["calculate_gain", "fan_in_and_fan_out", "_calculate_fan_in_and_fan_out", "correct_fan"]

LINEAR_FNS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d")
NONLINEARITIES = LINEAR_FNS + ("sigmoid", "tanh", "relu", "leaky_relu", "selu")
MODES = ("fan_in", "fan_out")


def target_array(tensor, who: str) -> np.ndarray:
    """The float ndarray to fill: `tensor.data` for a Parameter, `tensor` itself for an ndarray."""
    array = tensor.data if isinstance(tensor, Parameter) else tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{who} expects a cnnlab.Parameter or a float numpy array to fill in place, "
                        f"got {type(tensor).__name__}")
    if array.dtype.kind != "f":
        raise TypeError(f"{who} fills floating-point arrays (float32 or float64), got dtype {array.dtype}")
    return array


def real(value, name: str, who: str, minimum: float | None = None) -> float:
    """`value` as a finite float (>= minimum when given); bools and non-numbers are refused."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{who}: {name} must be a real number, got {type(value).__name__}: {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be finite, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {value}")
    return value


def fill(array: np.ndarray, values: np.ndarray) -> None:
    """Copy `values` (drawn in float64) into `array` in place, in the array's dtype."""
    array[...] = values.astype(array.dtype, copy=False)


def fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """Number of incoming and outgoing connections of one weight, as PyTorch computes them.

    Input: a Parameter or array of at least 2 dimensions (out, in, *kernel): a Linear weight
    (out_features, in_features) or a Conv2d weight (out_channels, in_channels, kh, kw).
    Returns (fan_in, fan_out) = (in * r, out * r) with r = prod(kernel) the receptive field
    size (1 for a Linear weight): each output value of a convolution sees in*kh*kw inputs, and
    each input value reaches out*kh*kw outputs (away from the borders).

    Raises ValueError for fewer than 2 dimensions (a bias vector has no fan).
    """
    shape = tensor.shape if isinstance(tensor, (Parameter, np.ndarray)) else None
    if shape is None:
        raise TypeError(f"fan_in_and_fan_out expects a Parameter or a numpy array, got {type(tensor).__name__}")
    if len(shape) < 2:
        raise ValueError("fan in and fan out can not be computed for a tensor with fewer than 2 "
                         f"dimensions: expected (out, in) or (out, in, kh, kw), got shape {tuple(shape)}")
    receptive_field = math.prod(shape[2:])
    return int(shape[1] * receptive_field), int(shape[0] * receptive_field)


_calculate_fan_in_and_fan_out = fan_in_and_fan_out  # PyTorch's (private) name


def correct_fan(tensor, mode: str) -> int:
    """fan_in or fan_out of `tensor`, as chosen by `mode` ("fan_in" or "fan_out")."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not supported; use one of {list(MODES)}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (PyTorch's `torch.nn.init.calculate_gain` table).

    | nonlinearity                         | gain                               |
    |--------------------------------------|------------------------------------|
    | linear, conv1d/2d/3d, conv_transpose* | 1                                  |
    | sigmoid                              | 1                                  |
    | tanh                                 | 5/3                                |
    | relu                                 | sqrt(2)                            |
    | leaky_relu                           | sqrt(2 / (1 + negative_slope^2))   |
    | selu                                 | 3/4                                |

    param: the negative slope of leaky_relu (default 0.01); ignored otherwise. He et al.'s
    Var(w) = 2/fan_in (Khan eq. 5.2) is gain("relu")^2 / fan_in: ReLU zeroes about half of its
    inputs, which halves the second moment, and the factor 2 restores it.
    """
    if nonlinearity in LINEAR_FNS or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = float(param)
        else:
            raise ValueError(f"negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"unsupported nonlinearity {nonlinearity!r}; valid ones: {list(NONLINEARITIES)}")
