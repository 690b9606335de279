"""Small shared helpers of the layers: their random generators and input checks with clear messages.

Every check raises TypeError (wrong kind of object or dtype) or ValueError (wrong shape or value)
with a message that names the layer, what was expected and what was received.
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.kernels.windows import pair
from cnnlab.rng import as_generator as _as_generator

__all__ = ["as_generator", "pair", "positive_int", "check_float_input", "check_ndim", "check_same_dtype",
           "check_images"]


def as_generator(rng) -> np.random.Generator:
    """A layer's `rng` as a Generator, by cnnlab's one rule (cnnlab.rng): a Generator as is, an int
    seed a new one, None a new one seeded from the library generator (`cnnlab.manual_seed`)."""
    return _as_generator(rng, "layer")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(value, name: str, owner: str) -> int:
    """`value` as an int >= 1 (feature and channel counts)."""
    if not _is_int(value):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__}: {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be >= 1, got {value}")
    return int(value)


def check_float_input(x, owner: str) -> None:
    """Refuse anything but a floating-point numpy array (ints would silently change the maths)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{owner} expects a numpy array of floats, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(
            f"{owner} expects a floating-point array (float32 or float64), got dtype {x.dtype}; "
            "convert with x.astype(np.float32)")


def check_ndim(x: np.ndarray, ndim: int, layout: str, owner: str) -> None:
    """Refuse an input with the wrong number of axes; `layout` names them, e.g. "(N, C, H, W)"."""
    if x.ndim != ndim:
        raise ValueError(f"{owner} expects a {ndim}-D input {layout}, got shape {x.shape} ({x.ndim}-D)")


def check_same_dtype(x: np.ndarray, param, owner: str) -> None:
    """A layer with parameters computes in its parameters' dtype: refuse silent up- or down-casts."""
    if x.dtype != param.dtype:
        raise TypeError(
            f"{owner}: input dtype {x.dtype} does not match the layer's parameter dtype {param.dtype}; "
            f"cast the input (x.astype(np.{param.dtype})) or the layer (layer.astype(np.{x.dtype}))")


def check_images(x, owner: str, kernel_size, padding=(0, 0), channels: int | None = None, param=None) -> None:
    """Refuse anything but a float batch of images (N, C, H, W) that the layer can slide over: with
    `channels` channels and the dtype of `param` when given, and, padded by `padding`, at least one
    `kernel_size` window."""
    check_float_input(x, owner)
    check_ndim(x, 4, "(N, C, H, W)", owner)
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{owner} expected input with {channels} channels (N, {channels}, H, W), "
                         f"got shape {x.shape} with {x.shape[1]} channels")
    if param is not None:
        check_same_dtype(x, param, owner)
    hp, wp = x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1]
    if hp < kernel_size[0] or wp < kernel_size[1]:
        padded = f" padded to ({hp}, {wp})" if tuple(padding) != (0, 0) else ""
        raise ValueError(f"{owner}: input of spatial size {x.shape[2:]}{padded} is smaller than kernel_size "
                         f"{tuple(kernel_size)}")
