"""Schedules for the learning rate and the momentum coefficient.

As in PyTorch, a scheduler wraps an optimizer and `scheduler.step()` (once per epoch, or once per
step for the momentum schedule) writes the new value into every parameter group.
"""
from __future__ import annotations

import math

__all__ = ["StepLR", "ExponentialLR", "CosineAnnealingLR", "MomentumSchedule", "sutskever_momentum"]


class _LRScheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def factor(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(self.last_epoch, base)

    def lr_at(self, epoch: int, base: float) -> float:
        return base * self.factor(epoch)

    def get_last_lr(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]


class StepLR(_LRScheduler):
    """lr = base * gamma ** floor(epoch / step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        if not 0 < gamma < math.inf:  # a negative factor would make every other learning rate negative
            raise ValueError(f"gamma must be positive and finite, got {gamma}")
        super().__init__(optimizer)
        self.step_size, self.gamma = int(step_size), float(gamma)

    def factor(self, epoch):
        return self.gamma ** (epoch // self.step_size)


class ExponentialLR(_LRScheduler):
    """lr = base * gamma ** epoch."""

    def __init__(self, optimizer, gamma: float):
        if not 0 < gamma < math.inf:
            raise ValueError(f"gamma must be positive and finite, got {gamma}")
        super().__init__(optimizer)
        self.gamma = float(gamma)

    def factor(self, epoch):
        return self.gamma ** epoch


class CosineAnnealingLR(_LRScheduler):
    """lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2, constant after T_max."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        if T_max < 1:
            raise ValueError(f"T_max must be >= 1, got {T_max}")
        if not 0 <= eta_min < math.inf:
            raise ValueError(f"eta_min must be a learning rate >= 0, got {eta_min}")
        super().__init__(optimizer)
        self.T_max, self.eta_min = int(T_max), float(eta_min)

    def lr_at(self, epoch, base):
        t = min(epoch, self.T_max)
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


def sutskever_momentum(t: int, mu_max: float = 0.99, every: int = 250) -> float:
    """Tomasi's Figure 2 (Sutskever et al.): mu_t = min(mu_max, 1 - 1 / (2 (floor(t / every) + 1)))."""
    return min(mu_max, 1 - 0.5 / (t // every + 1))


class MomentumSchedule:
    """Set `momentum` of every group to sutskever_momentum(t) at step t (call `step()` after each update)."""

    def __init__(self, optimizer, mu_max: float = 0.99, every: int = 250):
        if not all("momentum" in group for group in optimizer.param_groups):
            raise ValueError(f"{type(optimizer).__name__} has no momentum to schedule (use SGD)")
        if not 0 <= mu_max < 1:  # the optimizers accept momentum in [0, 1)
            raise ValueError(f"mu_max must be in [0, 1), got {mu_max}")
        if every < 1:
            raise ValueError(f"every must be >= 1 step, got {every}")
        self.optimizer, self.mu_max, self.every, self.t = optimizer, mu_max, every, 0
        self._apply()

    def _apply(self) -> None:
        for group in self.optimizer.param_groups:
            group["momentum"] = sutskever_momentum(self.t, self.mu_max, self.every)

    def step(self) -> None:
        self.t += 1
        self._apply()
