"""Stochastic gradient descent, with momentum and Nesterov momentum.

PyTorch's velocity form, which this class implements, keeps a buffer b of gradients:

    b <- mu * b + g,     theta <- theta - lr * b.

Tomasi writes the same method with a velocity v that already includes the learning rate,
v <- mu v - alpha grad E, w <- w + v; Khan writes a_t = eta grad F + gamma a_(t-1),
theta_t = theta_(t-1) - a_t (eqs. 5.17-5.18). With a constant learning rate all three are the same
iteration: v = -a = -lr * b. (With a changing learning rate they differ: here a new lr rescales the
whole velocity at once.)

Nesterov (nesterov=True), in PyTorch's formulation:

    b <- mu * b + g,     theta <- theta - lr * (g + mu * b).

Khan's eqs. 5.19-5.20 evaluate the gradient at the look-ahead point theta - gamma a_(t-1). Writing
the iteration in the variable phi = theta - gamma a (the look-ahead point itself) turns Khan's
update into the one above, so both produce the same sequence of look-ahead points; lesson 07 shows
this numerically.
"""
from __future__ import annotations

import numpy as np

from cnnlab.optim.base import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """SGD(params, lr, momentum=0, nesterov=False, weight_decay=0).

    State per parameter: "momentum_buffer" (b above, same shape as the parameter) when momentum > 0.
    Checked for every group: lr >= 0, weight_decay >= 0, momentum in [0, 1), nesterov only with momentum > 0.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def _check_hyperparameters(self, group):
        """lr >= 0, weight_decay >= 0, momentum in [0, 1) (at 1 the velocity never decays), nesterov a bool
        that needs momentum > 0."""
        super()._check_hyperparameters(group)
        self._check_number(group, "momentum", 0.0, 1.0)
        self._check_flag(group, "nesterov")
        if group["nesterov"] and group["momentum"] == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0, got momentum=0")

    def _update(self, p, g, group, state):
        mu = group["momentum"]
        if mu:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = np.zeros_like(p.data)
            b *= mu
            b += g
            g = g + mu * b if group["nesterov"] else b
        p.data -= group["lr"] * g
