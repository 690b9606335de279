"""The optimizer base class: parameter groups, per-parameter state, weight decay, zero_grad.

An optimizer works on any list of `Parameter`s: a CNN's `net.parameters()`, or one 2-vector that is
a point on a surface. `step()` reads each parameter's `.grad` (written by `backward`) and changes
`.data` in place. As in PyTorch, `params` may instead be a list of dicts, each with its own
`"params"` and hyper-parameter overrides: per-layer learning rates (Bouvrie §4.2) are
`[{"params": conv.parameters(), "lr": 0.1 * base}, {"params": head.parameters()}]`.
Per-parameter state (velocity, moment estimates, accumulated squares) is `optimizer.state[p]`, a dict
that widgets read to show what the optimizer is doing.
"""
from __future__ import annotations

import numpy as np

from cnnlab.module import Parameter

__all__ = ["Optimizer", "clip_grad_norm_"]


class Optimizer:
    def __init__(self, params, defaults: dict):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = dict(defaults)
        self.param_groups = []
        for i, group in enumerate(groups):
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(f"parameter group {i} must be a dict with a 'params' list, got {group!r}")
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise ValueError(f"parameter group {i} sets unknown options {sorted(unknown)}; "
                                 f"{type(self).__name__} accepts {sorted(defaults)}")
            members = list(group["params"])
            for p in members:
                if not isinstance(p, Parameter):
                    raise TypeError(f"{type(self).__name__} optimizes cnnlab.Parameter objects, got "
                                    f"{type(p).__name__} (pass net.parameters())")
            self.param_groups.append({**defaults, **group, "params": members})
        for group in self.param_groups:
            self._check_hyperparameters(group)
        self.state: dict = {}

    def _check_hyperparameters(self, group: dict) -> None:
        if not group["lr"] > 0:
            raise ValueError(f"learning rate lr must be positive, got {group['lr']}")
        if group.get("weight_decay", 0) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {group['weight_decay']}")

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
                if group.get("weight_decay", 0):
                    g = g + group["weight_decay"] * p.data  # L2 penalty folded into the gradient
                state = self.state.setdefault(p, {"step": 0})
                state["step"] += 1
                self._update(p, g, group, state)

    def _update(self, p: Parameter, g: np.ndarray, group: dict, state: dict) -> None:
        raise NotImplementedError

    def effective_lr(self, p: Parameter) -> np.ndarray:
        """The factor each gradient entry was multiplied by in the last step (plain SGD: lr everywhere)."""
        group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
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
        groups, params = state_dict["groups"], self.parameters()
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state dict has {len(groups)} parameter groups, the optimizer has "
                             f"{len(self.param_groups)}")
        for i, s in state_dict["state"].items():
            if not 0 <= int(i) < len(params):
                raise ValueError(f"state dict refers to parameter {i}, the optimizer has {len(params)}")
            for key, value in s.items():
                if isinstance(value, np.ndarray) and value.shape != params[int(i)].shape:
                    raise ValueError(f"state {key!r} of parameter {i} has shape {value.shape}, "
                                     f"the parameter has {params[int(i)].shape}")
        for group, saved in zip(self.param_groups, groups):
            group.update(saved)
        self.state = {params[int(i)]: {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                                       for k, v in s.items()} for i, s in state_dict["state"].items()}

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
