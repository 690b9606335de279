"""Weight penalties and constraints: L2 (weight decay), L1, elastic net and max-norm (Khan §5.2.6-5.2.9).

Veta writes the regularised training objective as a data term plus a penalty,

    argmin_theta  (1/D) sum_d E(f(x_d; theta), y_d)  +  lambda * Omega(theta),

and a gradient step then follows the gradient of both terms. Each regularizer here supplies
lambda * Omega and its gradient:

    L2          lambda * 1/2 sum theta^2            gradient  lambda * theta          (Veta; Khan 5.2.6)
    L1          lambda * sum |theta|                gradient  lambda * sign(theta)    (Veta; Khan 5.2.7)
    ElasticNet  l1 * sum |theta| + l2 * 1/2 sum theta^2                                (Khan 5.2.8)
    MaxNorm     no penalty: after every step each unit's incoming weight vector w is
                projected back onto the ball ||w||_2 <= c                             (Khan 5.2.9)

Veta's L1 slide writes Omega = 1/2 sum |theta| but gives the gradient sign(theta), which belongs to
Omega = sum |theta|; we use the latter (so `L1(s).penalty` has gradient exactly s * sign(theta),
with sign(0) = 0). Khan's elastic net writes lambda_2 w^2 without the 1/2; `ElasticNet(l1, l2)`
keeps the 1/2 so that it is exactly `L1(l1) + L2(l2)` (Khan's lambda_2 is l2 / 2).

With plain SGD, `L2(lam)` gives the same steps as `SGD(..., weight_decay=lam)`: "weight decay".

The interface a training loop calls (the Trainer does, with `regularizer=`):

    loss = loss_fn.forward(net.forward(x), y)      # data term, reported on its own
    net.backward(loss_fn.backward())               # overwrites every p.grad
    reg.backward(net)                              # ADDS the penalty's gradient to p.grad
    optimizer.step()
    reg.after_step(net)                            # max-norm projection (a no-op for the others)
    reg.penalty(net)                               # lambda * Omega, a float, reported separately

Which parameters: by default the *weights* only, i.e. every parameter whose name in
`net.named_parameters()` ends with "weight", except the scale gamma of a batch-norm layer (also
called `weight`, but it is a per-channel gain, not a connection). `include_bias=True` adds the
parameters whose name ends with "bias"; `include_norm=True` adds batch norm's gamma (and its beta
too when include_bias). Frozen parameters (`requires_grad=False`) are never touched nor counted.
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.layers.batchnorm import BatchNorm1d, BatchNorm2d
from cnnlab.module import Module, Parameter

__all__ = ["Regularizer", "L2", "L1", "ElasticNet", "MaxNorm", "Compose", "unit_norms"]

_NORM_LAYERS = (BatchNorm1d, BatchNorm2d)


def _strength(value, name: str, owner: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}: {value!r}")
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _check_net(net, owner: str) -> None:
    if not isinstance(net, Module):
        raise TypeError(f"{owner} expects a cnnlab Module (the network), got {type(net).__name__}")


class Regularizer:
    """Base class: parameter selection, `+` and the three calls of the training loop.

    Subclasses define `_penalty(theta) -> float` and `_grad(theta) -> array` for one parameter
    array, or override `after_step` (max-norm).
    """

    def __init__(self, include_bias: bool = False, include_norm: bool = False):
        self.include_bias = bool(include_bias)
        self.include_norm = bool(include_norm)

    # --- which parameters ---------------------------------------------------------------------
    def named_parameters(self, net) -> list[tuple[str, Parameter]]:
        """The (name, Parameter) pairs of `net` this regularizer acts on, in `net.named_parameters()` order."""
        _check_net(net, type(self).__name__)
        chosen, seen = [], set()
        for mod_name, module in net.named_modules():
            is_norm = isinstance(module, _NORM_LAYERS)
            for attr, value in vars(module).items():
                if not isinstance(value, Parameter) or id(value) in seen or not value.requires_grad:
                    continue
                name = f"{mod_name}.{attr}" if mod_name else attr
                if is_norm and not self.include_norm:
                    continue
                if name.endswith("weight") or (self.include_bias and name.endswith("bias")):
                    seen.add(id(value))
                    chosen.append((name, value))
        return chosen

    # --- the training-loop interface ------------------------------------------------------------
    def penalty(self, net) -> float:
        """lambda * Omega(theta) over the selected parameters (a Python float, computed in float64)."""
        return float(sum(self._penalty(p.data.astype(np.float64, copy=False))
                         for _, p in self.named_parameters(net)))

    def backward(self, net) -> None:
        """Add d(lambda * Omega)/d theta to each selected `p.grad` (call after `net.backward`)."""
        for _, p in self.named_parameters(net):
            p.grad += self._grad(p.data).astype(p.grad.dtype, copy=False)

    def after_step(self, net) -> None:
        """Called after `optimizer.step()`; only constraints (max-norm) do something here."""
        _check_net(net, type(self).__name__)

    def _penalty(self, theta: np.ndarray) -> float:
        return 0.0

    def _grad(self, theta: np.ndarray) -> np.ndarray:
        return np.zeros_like(theta)

    # --- combining --------------------------------------------------------------------------------
    def __add__(self, other):
        if not isinstance(other, Regularizer):
            return NotImplemented
        return Compose([self, other])

    def __radd__(self, other):
        if isinstance(other, numbers.Number) and other == 0:  # sum([...]) starts from 0
            return self
        return NotImplemented

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._options().lstrip(', ')})"

    def _options(self) -> str:
        opts = ", include_bias=True" if self.include_bias else ""
        return opts + (", include_norm=True" if self.include_norm else "")


class L2(Regularizer):
    """L2 penalty / weight decay: lambda * 1/2 sum theta^2, gradient lambda * theta (Veta; Khan 5.2.6).

    L2(weight_decay, include_bias=False, include_norm=False); weight_decay = lambda >= 0.
    """

    def __init__(self, weight_decay: float, include_bias: bool = False, include_norm: bool = False):
        super().__init__(include_bias, include_norm)
        self.weight_decay = _strength(weight_decay, "weight_decay", "L2")

    def _penalty(self, theta):
        return self.weight_decay * 0.5 * float(np.sum(theta * theta))

    def _grad(self, theta):
        return self.weight_decay * theta

    def __repr__(self) -> str:
        return f"L2(weight_decay={self.weight_decay}{self._options()})"


class L1(Regularizer):
    """L1 penalty: lambda * sum |theta|, gradient lambda * sign(theta), 0 at theta = 0 (Veta; Khan 5.2.7).

    L1(strength, include_bias=False, include_norm=False); strength = lambda >= 0. The gradient
    pushes every weight towards 0 with the same force whatever its size, so small weights reach
    (and then jitter around) zero: L1 gives sparse weights where L2 only makes them small.
    """

    def __init__(self, strength: float, include_bias: bool = False, include_norm: bool = False):
        super().__init__(include_bias, include_norm)
        self.strength = _strength(strength, "strength", "L1")

    def _penalty(self, theta):
        return self.strength * float(np.sum(np.abs(theta)))

    def _grad(self, theta):
        return self.strength * np.sign(theta)

    def __repr__(self) -> str:
        return f"L1(strength={self.strength}{self._options()})"


class ElasticNet(Regularizer):
    """Elastic net: l1 * sum |theta| + l2 * 1/2 sum theta^2 (Khan 5.2.8), i.e. L1(l1) + L2(l2).

    ElasticNet(l1, l2, include_bias=False, include_norm=False). Gradient l1 * sign(theta) + l2 * theta.
    Khan writes lambda_1 |w| + lambda_2 w^2; his lambda_2 is l2 / 2 here. l1 = 0 is L2, l2 = 0 is L1.
    """

    def __init__(self, l1: float, l2: float, include_bias: bool = False, include_norm: bool = False):
        super().__init__(include_bias, include_norm)
        self.l1 = _strength(l1, "l1", "ElasticNet")
        self.l2 = _strength(l2, "l2", "ElasticNet")

    def _penalty(self, theta):
        return self.l1 * float(np.sum(np.abs(theta))) + self.l2 * 0.5 * float(np.sum(theta * theta))

    def _grad(self, theta):
        return self.l1 * np.sign(theta) + self.l2 * theta

    def __repr__(self) -> str:
        return f"ElasticNet(l1={self.l1}, l2={self.l2}{self._options()})"


def _norm_axes(ndim: int, axis, owner: str) -> tuple:
    if axis is None:
        return tuple(range(1, ndim))
    axes = (axis,) if isinstance(axis, numbers.Integral) and not isinstance(axis, bool) else axis
    try:
        axes = tuple(int(a) for a in axes)
    except TypeError:
        raise TypeError(f"{owner}: axis must be None, an int or a tuple of ints, got {axis!r}") from None
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{owner}: axis {a} is out of range for a parameter with {ndim} axes")
        out.append(a % ndim)
    return tuple(out)


def unit_norms(weight, axis=None) -> np.ndarray:
    """The L2 norm of each unit's incoming weight vector.

    Inputs:
    - weight: array, e.g. a Linear weight (out, in) or a Conv2d weight (out, in, kh, kw).
    - axis: the axes the norm runs over; None means every axis but the first, so the result has
      one entry per output unit: ||W[j, :]|| for Linear, ||W[j, :, :, :]|| (the filter seen as a
      vector of in*kh*kw numbers) for Conv2d. For a 1-D parameter each entry is its own unit.

    Returns the norms with the reduced axes kept (keepdims), broadcastable against `weight`.
    """
    weight = np.asarray(weight.data if isinstance(weight, Parameter) else weight)
    axes = _norm_axes(weight.ndim, axis, "unit_norms")
    return np.sqrt(np.sum(weight.astype(np.float64) ** 2, axis=axes, keepdims=True))


class MaxNorm(Regularizer):
    """Max-norm constraint (Khan 5.2.9): ||w_j||_2 <= c for every unit j, by projection after each step.

    MaxNorm(c, axis=None, include_bias=False, include_norm=False)

    Not a penalty: `penalty` is 0.0 and `backward` adds nothing. `after_step(net)` rescales each
    unit's incoming weight vector w_j whose norm exceeds c to norm exactly c,
    w_j <- w_j * c / ||w_j||, and leaves the others unchanged (the projection onto the ball).
    A unit is a row of a Linear weight (out, in) or a filter of a Conv2d weight (out, in, kh, kw),
    seen as a vector of in*kh*kw numbers: `axis=None` takes the norm over every axis but the
    first (see `unit_norms`); an int or tuple of axes chooses others (the same for every parameter).
    """

    def __init__(self, c: float, axis=None, include_bias: bool = False, include_norm: bool = False):
        super().__init__(include_bias, include_norm)
        c = _strength(c, "c", "MaxNorm")
        if c == 0:
            raise ValueError("MaxNorm: c must be > 0 (the largest allowed norm of a unit's weights), got 0")
        self.c = c
        ints = (axis,) if not isinstance(axis, (tuple, list)) else tuple(axis)
        if axis is not None and not all(isinstance(a, numbers.Integral) and not isinstance(a, bool) for a in ints):
            raise TypeError(f"MaxNorm: axis must be None, an int or a tuple of ints, got {axis!r}")
        self.axis = axis if axis is None or isinstance(axis, numbers.Integral) else tuple(int(a) for a in axis)

    def penalty(self, net) -> float:
        _check_net(net, "MaxNorm")
        return 0.0

    def backward(self, net) -> None:
        _check_net(net, "MaxNorm")

    def after_step(self, net) -> None:
        """Project every selected parameter's units back onto ||w_j|| <= c (in place)."""
        for _, p in self.named_parameters(net):
            norms = unit_norms(p.data, self.axis)
            too_long = norms > self.c
            if np.any(too_long):
                scale = (self.c / np.maximum(norms, self.c)).astype(p.dtype)  # 1 where ||w_j|| <= c
                p.data[...] = np.where(too_long, p.data * scale, p.data)

    def __repr__(self) -> str:
        axis = "" if self.axis is None else f", axis={self.axis!r}"
        return f"MaxNorm(c={self.c}{axis}{self._options()})"


class Compose(Regularizer):
    """Several regularizers at once, e.g. `Compose([L2(1e-4), MaxNorm(3.0)])` or `L2(1e-4) + MaxNorm(3.0)`.

    penalty is the sum of the members' penalties; backward and after_step call each member in
    order. `sum([L1(a), L2(b)])` works too. Each member keeps its own parameter selection.
    """

    def __init__(self, regularizers):
        members = []
        for i, reg in enumerate(regularizers):
            if isinstance(reg, Compose):
                members.extend(reg.regularizers)
            elif isinstance(reg, Regularizer):
                members.append(reg)
            else:
                raise TypeError(f"Compose expects Regularizers (L2, L1, ElasticNet, MaxNorm), but item {i} "
                                f"is {type(reg).__name__}: {reg!r}")
        super().__init__()
        self.regularizers = members

    def named_parameters(self, net) -> list[tuple[str, Parameter]]:
        """Every parameter that at least one member acts on."""
        _check_net(net, "Compose")
        seen, out = set(), []
        for reg in self.regularizers:
            for name, p in reg.named_parameters(net):
                if id(p) not in seen:
                    seen.add(id(p))
                    out.append((name, p))
        return out

    def penalty(self, net) -> float:
        _check_net(net, "Compose")
        return float(sum(reg.penalty(net) for reg in self.regularizers))

    def backward(self, net) -> None:
        _check_net(net, "Compose")
        for reg in self.regularizers:
            reg.backward(net)

    def after_step(self, net) -> None:
        _check_net(net, "Compose")
        for reg in self.regularizers:
            reg.after_step(net)

    def __len__(self) -> int:
        return len(self.regularizers)

    def __repr__(self) -> str:
        return f"Compose({self.regularizers!r})"
