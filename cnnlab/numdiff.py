"""Numerical differentiation: derivatives from function values only (Khan section 5.5.2).

Khan's Newton difference formula (eq. 5.35) estimates f'(x) by the slope of the chord from x to
x + h. Its error has two parts that pull the step size h in opposite directions:

- truncation: Taylor's theorem gives f(x+h) = f(x) + h f'(x) + h^2/2 f''(x) + ..., so the forward
  difference is off by about |f''(x)| h / 2 = O(h). The central difference
  (f(x+h) - f(x-h)) / (2h) cancels the even terms and is off by about |f'''(x)| h^2 / 6 = O(h^2).
- round-off: f is only known to about eps |f(x)| (eps = machine epsilon, 2.2e-16 in float64), and
  dividing the difference of two such values by h amplifies that to about eps |f(x)| / h.

Balancing the two: the best forward step is near sqrt(eps) ~ 1e-8 (error ~ 1e-8) and the best
central step near cbrt(eps) ~ 6e-6 (error ~ 1e-11). `step_size_sweep` measures both curves so a
log-log plot shows the V shapes: slope 1 and 2 on the right (truncation), slope -1 on the left
(round-off). This is why gradient checks (Bouvrie's "checking your computations") use central
differences in float64.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from cnnlab._arrays import real_array

__all__ = ["forward_difference", "central_difference", "step_size_sweep", "StepSizeSweep"]


def _check_f(f, name: str = "f") -> None:
    if not callable(f):
        raise TypeError(f"{name} must be a callable f(x) -> value, got {type(f).__name__}")


def _check_h(h) -> float:
    if isinstance(h, bool) or not isinstance(h, (int, float, np.integer, np.floating)):
        raise TypeError(f"h must be a positive real number, got {type(h).__name__}")
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h must be a positive finite step, got {h}")
    return float(h)


def _result(value):
    value = np.asarray(value)
    return float(value) if value.ndim == 0 else value


def forward_difference(f: Callable, x, h: float = 1e-8):
    """Forward (Newton) difference: (f(x + h) - f(x)) / h (Khan eq. 5.35). Error O(h).

    Inputs:
    - f: a scalar function of a scalar; called once on x + h and once on x, so an elementwise
      function (np.sin, a lambda of NumPy operations) is evaluated for a whole array at once.
    - x: a real number or a float array of points (integers become float64).
    - h: the step, a positive number.
    Returns: the estimate of f'(x): a float for a scalar x, else an array of x's shape.
    """
    _check_f(f)
    x = real_array(x, "x")
    h = _check_h(h)
    return _result((np.asarray(f(x + h)) - np.asarray(f(x))) / h)


def central_difference(f: Callable, x, h: float = 1e-5):
    """Central difference: (f(x + h) - f(x - h)) / (2h). Error O(h^2).

    Inputs and outputs as in `forward_difference`; f is called on x + h and x - h (all points at
    once). For the gradient or Jacobian of a function of a whole array, one entry perturbed at a
    time, see `cnnlab.gradcheck.centered_differences`.
    """
    _check_f(f)
    x = real_array(x, "x")
    h = _check_h(h)
    return _result((np.asarray(f(x + h)) - np.asarray(f(x - h))) / (2 * h))


class StepSizeSweep(NamedTuple):
    """Absolute errors of both difference schemes over a range of step sizes.

    - h: the step sizes, shape (K,).
    - forward_error: |forward_difference(f, x, h) - f'(x)|, shape (K,).
    - central_error: |central_difference(f, x, h) - f'(x)|, shape (K,).
    """

    h: np.ndarray
    forward_error: np.ndarray
    central_error: np.ndarray

    @property
    def best_forward_h(self) -> float:
        """The step with the smallest forward-difference error (expected near sqrt(eps))."""
        return float(self.h[np.argmin(self.forward_error)])

    @property
    def best_central_h(self) -> float:
        """The step with the smallest central-difference error (expected near cbrt(eps))."""
        return float(self.h[np.argmin(self.central_error)])


def step_size_sweep(f: Callable, df, x: float, hs) -> StepSizeSweep:
    """Errors of the forward and central differences of f at x for every step in hs.

    Inputs:
    - f: a scalar function of a scalar.
    - df: its exact derivative, a callable df(x) (or the number f'(x)).
    - x: the point, a real number (a float32 number sweeps in float32: round-off ~ 1e-7 / h).
    - hs: the steps, a 1-D sequence of positive numbers, e.g. np.logspace(-14, -1, 131).
    Returns: a `StepSizeSweep` (h, forward_error, central_error) for a log-log plot.
    """
    _check_f(f)
    x = real_array(x, "x")
    if x.ndim != 0:
        raise ValueError(f"x must be a single point (a scalar), got an array of shape {x.shape}")
    exact = float(df(x)) if callable(df) else float(df)
    hs = np.asarray(hs, dtype=np.float64)
    if hs.ndim != 1 or hs.size == 0:
        raise ValueError(f"hs must be a non-empty 1-D sequence of steps, got shape {hs.shape}")
    steps = [_check_h(h) for h in hs]
    forward = np.array([abs(forward_difference(f, x, h) - exact) for h in steps])
    central = np.array([abs(central_difference(f, x, h) - exact) for h in steps])
    return StepSizeSweep(hs, forward, central)
