"""Schedules for the learning rate and the momentum coefficient.

As in PyTorch, a scheduler wraps an optimizer and `scheduler.step()` writes the new value into every
parameter group. Whether one call is an epoch or an optimizer step is the caller's choice (Trainer's
`scheduler_interval`): `T_max`, `total_iters`, `total_steps` count those calls. Every schedule is a
closed formula of its counter `last_epoch`, so its state is a few numbers (saved in checkpoints).
"""
from __future__ import annotations

import math

__all__ = ["StepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR", "OneCycleLR", "MomentumSchedule",
           "sutskever_momentum"]


class _LRScheduler:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.last_epoch = 0

    def factor(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self._apply()

    def _apply(self) -> None:
        """Write the values at `last_epoch` into every parameter group."""
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


def _linear(start: float, end: float, t: float, total: float) -> float:
    """start + (end - start) min(t, total) / total: PyTorch's LinearLR factor."""
    return start + (end - start) * min(t, total) / total


class LinearLR(_LRScheduler):
    """PyTorch's LinearLR: lr = base * factor, the factor going linearly from start_factor (at 0) to
    end_factor (at total_iters), constant after. The usual warm-up: LinearLR(opt, 0.1, total_iters=W).
    The optimizer's lr is set to base * start_factor at once, as in PyTorch."""

    def __init__(self, optimizer, start_factor: float = 1 / 3, end_factor: float = 1.0, total_iters: int = 5):
        if not 0 < start_factor <= 1:  # PyTorch's range
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must be in [0, 1], got {end_factor}")
        if total_iters < 1:
            raise ValueError(f"total_iters must be >= 1, got {total_iters}")
        super().__init__(optimizer)
        self.start_factor, self.end_factor, self.total_iters = float(start_factor), float(end_factor), int(total_iters)
        self._apply()

    def factor(self, epoch):
        return _linear(self.start_factor, self.end_factor, epoch, self.total_iters)


class CosineAnnealingLR(_LRScheduler):
    """lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2, constant after T_max.

    warmup_iters = W > 0 puts a linear warm-up first and anneals over the rest: for t < W,
    lr = base (s + (1 - s) t / W) with s = warmup_start_factor; from W on, the formula above with
    (t - W) / (T_max - W) for epoch / T_max. T_max is the whole length, warm-up included. This is
    PyTorch's SequentialLR([LinearLR(opt, s, 1.0, W), CosineAnnealingLR(opt, T_max - W, eta_min)],
    milestones=[W]), as one schedule (its state stays a few numbers). With a warm-up the optimizer's
    lr is set to base * s at once.
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, warmup_iters: int = 0,
                 warmup_start_factor: float = 0.1):
        if T_max < 1:
            raise ValueError(f"T_max must be >= 1, got {T_max}")
        if not 0 <= eta_min < math.inf:
            raise ValueError(f"eta_min must be a learning rate >= 0, got {eta_min}")
        if not 0 <= warmup_iters < T_max:
            raise ValueError(f"warmup_iters must be in [0, T_max) = [0, {T_max}), got {warmup_iters}")
        if not 0 < warmup_start_factor <= 1:
            raise ValueError(f"warmup_start_factor must be in (0, 1], got {warmup_start_factor}")
        super().__init__(optimizer)
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        self.warmup_iters, self.warmup_start_factor = int(warmup_iters), float(warmup_start_factor)
        if self.warmup_iters:
            self._apply()

    def lr_at(self, epoch, base):
        w = self.warmup_iters
        if epoch < w:
            return base * _linear(self.warmup_start_factor, 1.0, epoch, w)
        t = min(epoch, self.T_max) - w
        return self.eta_min + (base - self.eta_min) * (1 + math.cos(math.pi * t / (self.T_max - w))) / 2


class OneCycleLR(_LRScheduler):
    """PyTorch's OneCycleLR (Smith and Topin's "super-convergence"), two phases, stepped once per batch.

    Phase 1, steps 0 .. pct_start T - 1: lr rises from max_lr / div_factor to max_lr; phase 2, up to
    step T - 1 (T = total_steps): it falls to max_lr / (div_factor final_div_factor). Within a phase
    going from a to b over steps s0 .. s1, anneal_strategy "cos" gives b + (a - b) (1 + cos(pi x)) / 2
    and "linear" a + (b - a) x, with x = (t - s0) / (s1 - s0). The optimizer's own lr is not used.
    cycle_momentum: the momentum (SGD's momentum, Adam's beta1) moves the other way, from max_momentum
    down to base_momentum while the lr rises and back up while it falls. Stepping past T is an error,
    as in PyTorch. The optimizer's lr (and momentum) are set to the values of step 0 at once.
    """

    def __init__(self, optimizer, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4):
        if not 0 < max_lr < math.inf:
            raise ValueError(f"max_lr must be a positive learning rate, got {max_lr}")
        if total_steps < 2:
            raise ValueError(f"total_steps must be >= 2, got {total_steps}")
        if not 1 < pct_start * total_steps < total_steps:  # each phase must span more than one step
            raise ValueError(f"pct_start must put the peak strictly between steps 1 and total_steps = "
                             f"{total_steps}, got {pct_start} ({pct_start * total_steps:g} steps)")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if not 0 <= base_momentum <= max_momentum < 1:
            raise ValueError(f"need 0 <= base_momentum <= max_momentum < 1, got {base_momentum}, {max_momentum}")
        for name, value in (("div_factor", div_factor), ("final_div_factor", final_div_factor)):
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if cycle_momentum and not all("momentum" in g or "betas" in g for g in optimizer.param_groups):
            raise ValueError(f"{type(optimizer).__name__} has no momentum or beta1 to cycle: pass "
                             f"cycle_momentum=False")
        super().__init__(optimizer)
        self.max_lr, self.total_steps, self.pct_start = float(max_lr), int(total_steps), float(pct_start)
        self.anneal_strategy, self.cycle_momentum = anneal_strategy, bool(cycle_momentum)
        self.base_momentum, self.max_momentum = float(base_momentum), float(max_momentum)
        self.div_factor, self.final_div_factor = float(div_factor), float(final_div_factor)
        self._apply()

    def _phase(self, t: int) -> tuple[int, float]:
        """(phase 0 or 1, fraction x of the way through it) at step t."""
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {t} times, more than total_steps = {self.total_steps}")
        end = self.pct_start * self.total_steps - 1
        if t <= end:
            return 0, t / end
        return 1, (t - end) / (self.total_steps - 1 - end)

    def _anneal(self, a: float, b: float, x: float) -> float:
        if self.anneal_strategy == "cos":
            return b + (a - b) * (1 + math.cos(math.pi * x)) / 2
        return a + (b - a) * x

    def lr_at(self, epoch, base=None):
        initial = self.max_lr / self.div_factor
        phase, x = self._phase(epoch)
        return (self._anneal(initial, self.max_lr, x) if phase == 0
                else self._anneal(self.max_lr, initial / self.final_div_factor, x))

    def momentum_at(self, epoch) -> float:
        phase, x = self._phase(epoch)
        return (self._anneal(self.max_momentum, self.base_momentum, x) if phase == 0
                else self._anneal(self.base_momentum, self.max_momentum, x))

    def _apply(self) -> None:
        super()._apply()
        if self.cycle_momentum:
            momentum = self.momentum_at(self.last_epoch)
            for group in self.optimizer.param_groups:
                if "betas" in group:
                    group["betas"] = (momentum, group["betas"][1])
                else:
                    group["momentum"] = momentum


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
