"""Two-dimensional test functions with exact gradients, for watching optimizers move.

Each surface is callable on points of shape (..., 2) (so a whole grid evaluates at once for a contour
plot) and has `grad(p)`, `bounds` (a plotting window), `start` (a default starting point) and `minima`.
`trajectory()` runs any `cnnlab.optim` optimizer on a surface: the point is a `Parameter` of shape (2,),
exactly as a CNN's weights are, so the race on a surface and the training of a network use the same code.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cnnlab.module import Parameter
from cnnlab.rng import as_generator

__all__ = ["Surface", "Saddle", "BoundedSaddle", "MonkeySaddle", "Beale", "Rosenbrock", "QuadraticBowl", "SURFACES",
           "Trajectory", "trajectory"]


class Surface:
    name = "surface"
    bounds = ((-2.0, 2.0), (-2.0, 2.0))  # ((x_min, x_max), (y_min, y_max))
    start = (1.0, 1.0)
    minima: tuple = ()

    def value(self, x, y):
        raise NotImplementedError

    def gradient(self, x, y):
        raise NotImplementedError

    def __call__(self, p):
        p = np.asarray(p, dtype=np.float64)
        return self.value(p[..., 0], p[..., 1])

    def grad(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if p.shape[-1:] != (2,):
            raise ValueError(f"a point on a surface has shape (..., 2), got {p.shape}")
        gx, gy = self.gradient(p[..., 0], p[..., 1])
        return np.stack(np.broadcast_arrays(gx, gy), axis=-1)

    def noisy_grad(self, p, sigma: float, rng=None) -> np.ndarray:
        """The exact gradient plus N(0, sigma^2) noise per component: a stand-in for a mini-batch gradient.

        rng: numpy Generator, int seed or None (cnnlab's library generator)."""
        return self.grad(p) + sigma * as_generator(rng, "noisy_grad").standard_normal(np.shape(p))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Saddle(Surface):
    """f = x^2 - y^2: a saddle point at the origin (Khan, Fig. 5.3); unbounded below along y."""
    name = "saddle x² − y²"
    start = (1.5, 1e-3)
    minima = ()

    def value(self, x, y):
        return x**2 - y**2

    def gradient(self, x, y):
        return 2 * x, -2 * y


class BoundedSaddle(Surface):
    """f = x^2 - y^2 + y^4 / 4: the same saddle at the origin, but bounded below, with two minima.

    grad f = (2x, -2y + y^3) vanishes at the saddle (0, 0) and at (0, ±sqrt 2), where f = -1 is the
    lowest value: on this surface "escaping the saddle" means arriving at a minimum, not running off
    towards -infinity as on x^2 - y^2.
    """
    name = "bounded saddle x² − y² + y⁴/4"
    bounds = ((-2.0, 2.0), (-2.2, 2.2))
    start = (1.5, 1e-3)
    minima = ((0.0, math.sqrt(2.0)), (0.0, -math.sqrt(2.0)))

    def value(self, x, y):
        return x**2 - y**2 + y**4 / 4

    def gradient(self, x, y):
        return 2 * x, -2 * y + y**3


class MonkeySaddle(Surface):
    """f = x^3 - 3 x y^2: a flat, three-way saddle at the origin (the gradient vanishes to second order)."""
    name = "monkey saddle x³ − 3xy²"
    start = (-1.0, 0.2)

    def value(self, x, y):
        return x**3 - 3 * x * y**2

    def gradient(self, x, y):
        return 3 * x**2 - 3 * y**2, -6 * x * y


class Beale(Surface):
    """Beale's function; global minimum 0 at (3, 0.5), with long flat valleys."""
    name = "Beale"
    bounds = ((-4.5, 4.5), (-4.5, 4.5))
    start = (1.0, 1.5)
    minima = ((3.0, 0.5),)

    def _terms(self, x, y):
        return (1.5 - x + x * y, 2.25 - x + x * y**2, 2.625 - x + x * y**3)

    def value(self, x, y):
        return sum(t**2 for t in self._terms(x, y))

    def gradient(self, x, y):
        t1, t2, t3 = self._terms(x, y)
        gx = 2 * t1 * (y - 1) + 2 * t2 * (y**2 - 1) + 2 * t3 * (y**3 - 1)
        gy = 2 * t1 * x + 2 * t2 * 2 * x * y + 2 * t3 * 3 * x * y**2
        return gx, gy


class Rosenbrock(Surface):
    """(a - x)^2 + b (y - x^2)^2; minimum 0 at (a, a^2) at the end of a curved, narrow valley."""
    name = "Rosenbrock"
    bounds = ((-2.0, 2.0), (-1.0, 3.0))
    start = (-1.5, 2.0)

    def __init__(self, a: float = 1.0, b: float = 100.0):
        self.a, self.b = a, b
        self.minima = ((a, a * a),)

    def value(self, x, y):
        return (self.a - x) ** 2 + self.b * (y - x**2) ** 2

    def gradient(self, x, y):
        return -2 * (self.a - x) - 4 * self.b * x * (y - x**2), 2 * self.b * (y - x**2)


class QuadraticBowl(Surface):
    """f = (x^2 + condition * y^2) / 2: a bowl whose curvatures differ by the factor `condition`."""
    name = "ill-conditioned bowl"
    start = (-1.8, 0.6)
    minima = ((0.0, 0.0),)

    def __init__(self, condition: float = 20.0):
        if not condition >= 1:
            raise ValueError(f"condition must be >= 1, got {condition}")
        self.condition = condition

    def value(self, x, y):
        return 0.5 * (x**2 + self.condition * y**2)

    def gradient(self, x, y):
        return x, self.condition * y


SURFACES = {"saddle": Saddle, "bounded_saddle": BoundedSaddle, "monkey_saddle": MonkeySaddle, "beale": Beale,
            "rosenbrock": Rosenbrock, "bowl": QuadraticBowl}


@dataclass
class Trajectory:
    points: np.ndarray   # (k + 1, 2): the start and every finite point reached
    values: np.ndarray   # (k + 1,): f at each point
    diverged_at: int | None = None  # the step that blew up: non-finite, or beyond `escape` going uphill
    escaped_at: int | None = None   # the step that ran beyond `escape` downhill (an unbounded surface)

    @property
    def diverged(self) -> bool:
        return self.diverged_at is not None


def trajectory(surface: Surface, make_optimizer, start=None, steps: int = 100, noise: float = 0.0,
               rng=None, escape: float = 1e6) -> Trajectory:
    """Run `make_optimizer([point])` (e.g. `lambda ps: Adam(ps, lr=0.1)`) for `steps` steps on `surface`.

    noise > 0 adds Gaussian noise to each gradient, drawn from rng (a Generator, an int seed, or None
    for cnnlab's library generator); the noise of all steps is drawn at once, so runners with the same
    seed see the same sequence. The run stops early when the point or its value becomes non-finite or
    a coordinate exceeds `escape`: as `diverged_at` when it blew up, as `escaped_at` when it ran
    downhill for ever (the saddle is unbounded below).
    """
    gen = as_generator(rng, "trajectory") if noise or rng is not None else None  # no draw without noise
    point = Parameter(np.array(surface.start if start is None else start, dtype=np.float64))
    if point.shape != (2,):
        raise ValueError(f"start must be a point (x, y), got shape {point.shape}")
    optimizer = make_optimizer([point])
    noise_draws = None
    if noise:
        noise_draws = noise * gen.standard_normal((steps, 2))  # one draw per step: the same for every runner
    points = np.empty((steps + 1, 2))
    values = np.empty(steps + 1)
    points[0], values[0] = point.data, float(surface(point.data))
    diverged_at = escaped_at = None
    k = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(1, steps + 1):
            x, y = float(point.data[0]), float(point.data[1])  # plain floats: ~10x faster than 0-d arrays
            gx, gy = surface.gradient(x, y)
            point.grad[0], point.grad[1] = gx, gy
            if noise_draws is not None:
                point.grad += noise_draws[k - 1]
            optimizer.step()
            x, y = float(point.data[0]), float(point.data[1])
            value = float(surface.value(x, y))
            finite = math.isfinite(x) and math.isfinite(y) and math.isfinite(value)
            if not finite or max(abs(x), abs(y)) > escape:
                if finite and value < values[0]:
                    escaped_at = k
                else:
                    diverged_at = k
                break
            points[k], values[k] = (x, y), value
    last = k if (diverged_at or escaped_at) else steps + 1
    return Trajectory(points[:last].copy(), values[:last].copy(), diverged_at, escaped_at)
