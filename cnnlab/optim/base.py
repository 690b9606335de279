"""The optimizer base class: parameter groups, per-parameter state, weight decay (L2 or decoupled), zero_grad.

An optimizer works on any list of `Parameter`s: a CNN's `net.parameters()`, or one 2-vector that is
a point on a surface. `step()` reads each parameter's `.grad` (written by `backward`) and changes
`.data` in place. As in PyTorch, `params` may instead be a list of dicts, each with its own
`"params"` and hyper-parameter overrides: per-layer learning rates (Bouvrie §4.2) are
`[{"params": conv.parameters(), "lr": 0.1 * base}, {"params": head.parameters()}]`.
Per-parameter state (velocity, moment estimates, accumulated squares) is `optimizer.state[p]`, a dict
that widgets read to show what the optimizer is doing.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from cnnlab.module import Parameter

__all__ = ["Optimizer", "clip_grad_norm_"]


class Optimizer:
    """Base class: `params` (Parameters, or dicts of groups) and the subclass's `defaults` hyper-parameters.

    Every hyper-parameter of every group is checked when the group is added (construction,
    `add_param_group`, `load_state_dict`): a finite number in its range (lr >= 0, weight_decay >= 0,
    and each subclass's own), else ValueError/TypeError naming the optimizer, the value and the range.
    A parameter may appear only once over all groups (twice would mean two updates per step).
    """

    # False: weight_decay is an L2 penalty, lambda * theta added to the gradient (what the optimizer then
    # rescales); True: decoupled weight decay, theta <- (1 - lr * lambda) theta before the update (AdamW).
    decoupled_weight_decay = False

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, (Parameter, np.ndarray, dict)):
            raise TypeError(f"{name}: params must be an iterable of Parameters or of dicts (parameter groups), "
                            f"got a single {type(params).__name__}; pass [p] or net.parameters()")
        params = list(params)
        if not params:
            raise ValueError(f"{name} got an empty parameter list")
        self.defaults = dict(defaults)
        self._check_hyperparameters(self.defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}
        for group in (params if isinstance(params[0], dict) else [{"params": params}]):
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group {"params": [...], option: value, ...}; options it leaves out take the defaults.

        Nothing is added unless every member is a Parameter not already optimized and every option
        is known and valid.
        """
        name, i = type(self).__name__, len(self.param_groups)
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: parameter group {i} must be a dict with a 'params' list, got {group!r}")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"parameter group {i} sets unknown options {sorted(unknown)}; "
                             f"{name} accepts {sorted(self.defaults)}")
        members = group["params"]
        members = [members] if isinstance(members, Parameter) else list(members)
        if not members:
            raise ValueError(f"{name}: parameter group {i} has an empty 'params' list")
        seen = {id(p): (g, j) for g, old in enumerate(self.param_groups) for j, p in enumerate(old["params"])}
        for j, p in enumerate(members):
            if not isinstance(p, Parameter):
                raise TypeError(f"{name} optimizes cnnlab.Parameter objects, got "
                                f"{type(p).__name__} (pass net.parameters())")
            if id(p) in seen:
                g, k = seen[id(p)]
                raise ValueError(f"{name}: {p!r} appears twice, at position {k} of parameter group {g} and "
                                 f"at position {j} of group {i}; each parameter must be listed once, or every "
                                 "step() would update it twice")
            seen[id(p)] = (i, j)
        merged = {**self.defaults, **group, "params": members}
        self._checked(merged, f" (parameter group {i})" if set(group) - {"params"} else "")
        self.param_groups.append(merged)

    def _checked(self, group: dict, where: str) -> None:
        """`_check_hyperparameters`, with `where` (which group) appended to the message."""
        try:
            self._check_hyperparameters(group)
        except (TypeError, ValueError) as error:
            raise type(error)(f"{error}{where}") from None

    def _check_hyperparameters(self, group: dict) -> None:
        """Raise if an option of `group` is out of range; subclasses extend it with their own options."""
        self._check_number(group, "lr", low=0.0)
        self._check_number(group, "weight_decay", low=0.0)

    def _check_number(self, group: dict, key: str, low: float = 0.0, high: float | None = None,
                      low_open: bool = False, high_open: bool = True, why: str = "") -> None:
        """group[key] must be a finite real number in the range [low or (low, high] or high)."""
        value, name = group[key], type(self).__name__
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name}: {key} must be a real number, got {value!r} ({type(value).__name__})")
        if high is None:
            wanted, ok = (f"> {low:g}" if low_open else f">= {low:g}"), (value > low if low_open else value >= low)
        else:
            wanted = f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok or not math.isfinite(value):
            raise ValueError(f"{name}: {key} must be {'a finite number ' if ok else ''}{wanted}{why}, got {value}")

    def _check_flag(self, group: dict, key: str) -> None:
        if not isinstance(group[key], (bool, np.bool_)):
            raise TypeError(f"{type(self).__name__}: {key} must be True or False, got {group[key]!r}")

    def parameters(self) -> list[Parameter]:
        return [p for group in self.param_groups for p in group["params"]]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    def step(self) -> None:
        """One update of every trainable parameter from its current `.grad`."""
        for group in self.param_groups:
            for p in group["params"]:
                if not p.requires_grad:
                    continue
                g = p.grad
                if group.get("weight_decay", 0) and self.decoupled_weight_decay:
                    p.data *= 1 - group["lr"] * group["weight_decay"]  # decay the weights themselves
                elif group.get("weight_decay", 0):
                    g = g + group["weight_decay"] * p.data  # L2 penalty folded into the gradient
                state = self.state.setdefault(p, {"step": 0})
                state["step"] += 1
                self._update(p, g, group, state)

    def _update(self, p: Parameter, g: np.ndarray, group: dict, state: dict) -> None:
        raise NotImplementedError

    def effective_lr(self, p: Parameter) -> np.ndarray:
        """The factor each gradient entry was multiplied by in the last step (plain SGD: lr everywhere)."""
        group = next((g for g in self.param_groups if any(q is p for q in g["params"])), None)
        if group is None:
            raise ValueError(f"{type(self).__name__}.effective_lr: {p!r} is not a parameter of this optimizer")
        return np.full(p.shape, group["lr"], dtype=p.dtype)

    # --- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Hyper-parameters of every group and the state of every parameter, by position (copies)."""
        index = {id(p): i for i, p in enumerate(self.parameters())}
        return {
            "groups": [{k: v for k, v in g.items() if k != "params"} for g in self.param_groups],
            "state": {index[id(p)]: {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                                     for k, v in s.items()} for p, s in self.state.items()},
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what `state_dict()` returned: every group's options and every parameter's state.

        All or nothing: the groups (count, known options, valid values) and the state (parameter
        positions, array shapes, "step" counts) are all checked before anything changes; state
        arrays are cast to their parameter's dtype. Raises ValueError or TypeError saying what was
        expected and what was found.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not isinstance(state_dict.get("groups"), (list, tuple)) \
                or not isinstance(state_dict.get("state"), dict):
            raise TypeError(f"{name}.load_state_dict expects a dict with a 'groups' list and a 'state' dict "
                            f"(what state_dict() returns), got {type(state_dict).__name__}")
        groups, params = state_dict["groups"], self.parameters()
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state dict has {len(groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        new_groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, groups)):
            if not isinstance(saved, dict):
                raise TypeError(f"{name}: group {i} of the state dict must be a dict of options, got {saved!r}")
            unknown = set(saved) - set(self.defaults)
            if unknown:
                raise ValueError(f"group {i} of the state dict has options {sorted(unknown)} that {name} does not "
                                 f"have (it has {sorted(self.defaults)}): is it another optimizer's state?")
            merged = {**group, **saved}
            self._checked(merged, f" (group {i} of the state dict)")
            new_groups.append(merged)
        new_state = {}
        for i, s in state_dict["state"].items():
            index = int(i) if isinstance(i, (int, np.integer)) and not isinstance(i, bool) else \
                int(i) if isinstance(i, str) and i.isdigit() else None
            if index is None or not 0 <= index < len(params):
                raise ValueError(f"state dict refers to parameter {i!r}, the optimizer has {len(params)} "
                                 f"(positions 0 to {len(params) - 1})")
            p = params[index]
            if p in new_state:
                raise ValueError(f"state dict lists the state of parameter {index} twice")
            if not isinstance(s, dict):
                raise TypeError(f"state of parameter {i} must be a dict, got {type(s).__name__}")
            new_state[p] = {key: self._checked_state(index, p, key, value) for key, value in s.items()}
        for group, merged in zip(self.param_groups, new_groups):
            group.update(merged)
        self.state = new_state

    @staticmethod
    def _checked_state(i: int, p: Parameter, key: str, value):
        """A copy of one state entry: "step" a count >= 0, arrays of the parameter's shape, cast to its dtype."""
        if key == "step":
            step = np.asarray(value)
            if step.shape != () or step.dtype.kind not in "iu" or step < 0:
                raise ValueError(f"state 'step' of parameter {i} must be an integer >= 0, got {value!r}")
            return int(step)
        if not isinstance(value, np.ndarray):
            return value
        if value.shape != p.shape:
            raise ValueError(f"state {key!r} of parameter {i} has shape {value.shape}, "
                             f"the parameter has {p.shape}")
        if value.dtype.kind not in "fiu":
            raise TypeError(f"state {key!r} of parameter {i} must hold numbers, got dtype {value.dtype}")
        return np.array(value, dtype=p.dtype, copy=True)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v}" for k, v in self.defaults.items())
        return f"{type(self).__name__}({options})"


def clip_grad_norm_(params, max_norm: float) -> float:
    """Scale all gradients together so that their joint L2 norm is at most `max_norm`.

    Returns the norm before clipping (as torch.nn.utils.clip_grad_norm_). Non-finite norms are
    returned unchanged and nothing is scaled, so a training loop can report the divergence.
    """
    if max_norm <= 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    params = [p for p in params if p.requires_grad]
    total = float(np.sqrt(sum(float(np.sum(np.square(p.grad, dtype=np.float64))) for p in params)))
    if np.isfinite(total) and total > max_norm:
        scale = max_norm / (total + 1e-6)
        for p in params:
            p.grad *= scale
    return total
