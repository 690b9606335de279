"""The computation behind `momentum_explorer()`: heavy-ball momentum on a diagonal quadratic, split by
eigen-direction.

On f(w) = 1/2 sum_i lambda_i w_i^2 the gradient is lambda_i w_i in direction i, and `cnnlab`'s
SGD(lr=alpha, momentum=mu) (PyTorch's buffer form) steps every direction on its own:

    b_i <- mu b_i + lambda_i w_i,     w_i <- w_i - alpha b_i.

Written on the pair (w_t, w_{t-1}) this is the 2x2 iteration matrix R_i = [[1 + mu - alpha lambda_i, -mu],
[1, 0]] (lesson 06, "Momentum, analysed"), and direction i shrinks like rho(R_i)^t, its spectral radius.
The error as a whole shrinks like the largest of them, the rate.
"""
from __future__ import annotations

import numpy as np

__all__ = ["iteration_matrices", "spectral_radius", "optimal_momentum", "MomentumModel"]

_BLOWN = 1e100  # a component beyond this is called diverged; the curve stops there


def iteration_matrices(alpha: float, mu: float, eigenvalues) -> np.ndarray:
    """R_i = [[1 + mu - alpha lambda_i, -mu], [1, 0]] for every eigenvalue: shape (n, 2, 2)."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    R = np.zeros(lam.shape + (2, 2))
    R[..., 0, 0] = 1 + mu - alpha * lam
    R[..., 0, 1] = -mu
    R[..., 1, 0] = 1.0
    return R


def spectral_radius(alpha: float, mu: float, eigenvalues) -> np.ndarray:
    """rho(R_i), the factor by which direction i shrinks per step in the long run: shape like eigenvalues."""
    return np.abs(np.linalg.eigvals(iteration_matrices(alpha, mu, eigenvalues))).max(axis=-1)


def optimal_momentum(m: float, L: float) -> tuple[float, float, float]:
    """(alpha*, mu*, rate*) for eigenvalues in [m, L]: alpha* = (2 / (sqrt L + sqrt m))^2,
    mu* = ((sqrt kappa - 1) / (sqrt kappa + 1))^2, rate* = sqrt(mu*) (Polyak's heavy ball)."""
    if not 0 < m <= L:
        raise ValueError(f"need 0 < m <= L, got m={m}, L={L}")
    s = np.sqrt(L / m)
    return float((2 / (np.sqrt(L) + np.sqrt(m))) ** 2), float(((s - 1) / (s + 1)) ** 2), float((s - 1) / (s + 1))


class MomentumModel:
    """SGD with momentum on f(w) = 1/2 sum_i lambda_i w_i^2, from w_0 = (1, ..., 1), one curve per direction.

    Inputs: alpha (learning rate > 0), mu (momentum in [0, 1)), kappa (>= 1: the eigenvalues are
    `directions` values spaced evenly on a log scale from 1 to kappa), or eigenvalues (positive, 1-D;
    then kappa is their ratio and is not used), steps (>= 1).
    After `update()`: `eigenvalues` (n,), `components` (n, steps + 1): w_i(t), NaN after a component
    passed 1e100; `norm` (steps + 1,): ||w_t||; `roots` (n, 2): the eigenvalues of R_i; `radii` (n,):
    rho(R_i); `rate` = max radii;
    `diverged` (bool).
    """

    def __init__(self, alpha: float = 0.01, mu: float = 0.0, kappa: float = 100.0, directions: int = 5,
                 steps: int = 150, eigenvalues=None):
        if eigenvalues is not None:
            eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
            if eigenvalues.ndim != 1 or eigenvalues.size < 1:
                raise ValueError(f"eigenvalues must be a 1-D list of positive numbers, got shape {eigenvalues.shape}")
            kappa = float(eigenvalues.max() / eigenvalues.min()) if np.all(eigenvalues > 0) else kappa
        if isinstance(directions, bool) or not isinstance(directions, (int, np.integer)) or directions < 2:
            raise ValueError(f"directions must be an integer >= 2, got {directions!r}")
        self.alpha, self.mu, self.kappa, self.steps = alpha, mu, kappa, steps
        self.directions = directions if eigenvalues is None else eigenvalues.size
        self.fixed_eigenvalues = eigenvalues
        self.update()

    def update(self) -> None:
        alpha, mu, steps = float(self.alpha), float(self.mu), self.steps
        if not (np.isfinite(alpha) and alpha > 0):
            raise ValueError(f"the learning rate alpha must be a positive number, got {alpha}")
        if not 0 <= mu < 1:
            raise ValueError(f"the momentum mu must be in [0, 1), got {mu}")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"steps must be an integer >= 1, got {steps!r}")
        if self.fixed_eigenvalues is None:
            if not (np.isfinite(self.kappa) and self.kappa >= 1):
                raise ValueError(f"the condition number kappa must be >= 1, got {self.kappa}")
            lam = np.geomspace(1.0, float(self.kappa), self.directions)
        else:
            lam = self.fixed_eigenvalues
            if not np.all(np.isfinite(lam) & (lam > 0)):
                raise ValueError(f"the eigenvalues must be positive numbers, got {lam.tolist()}")
        self.eigenvalues = lam
        # the very operations of cnnlab's SGD._update, on all directions at once
        w, b = np.ones_like(lam), np.zeros_like(lam)
        out = np.empty((lam.size, steps + 1))
        out[:, 0] = w
        for t in range(1, steps + 1):
            b *= mu
            b += lam * w
            w -= alpha * b
            blown = ~(np.abs(w) < _BLOWN)
            if blown.any():  # keep the finite curves, stop the blown ones (no overflow warnings)
                w[blown], b[blown] = np.nan, np.nan
            out[:, t] = w
        self.components = out
        self.diverged = bool(np.isnan(out[:, -1]).any())
        self.norm = np.sqrt(np.sum(out ** 2, axis=0))
        self.roots = np.linalg.eigvals(iteration_matrices(alpha, mu, lam))  # (n, 2), complex or real
        self.radii = np.abs(self.roots).max(axis=-1)
        self.rate = float(self.radii.max())
