"""The optimizers the course offers by name: one table, `OPTIMIZERS`, for the races, the dashboard and the recipe.

Each entry is an `OptimizerSpec`: the `cnnlab.optim` class, the keyword arguments the entry sets beyond
the class's own defaults ("momentum" is SGD with momentum 0.9), whether it reads a momentum, a short
label for plots, and two default learning rates, one for a point on a 2-D surface (lesson 07's race)
and one for training a CNN. Every other hyper-parameter is the class's default, which is PyTorch's
(RMSprop's alpha = 0.99, Adam's betas = (0.9, 0.999), Adadelta's rho = 0.9, AdamW's weight_decay = 0.01):
there is no second table.

    >>> spec = optimizer_spec("RMSprop")          # a name or a label, any case
    >>> spec.hyperparameters["alpha"]
    0.99
    >>> opt = make_optimizer("momentum", net.parameters(), lr=0.1)   # SGD(params, lr=0.1, momentum=0.9)
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from cnnlab.optim.adaptive import Adadelta, Adagrad, Adam, AdamW, RMSprop
from cnnlab.optim.sgd import SGD

__all__ = ["OptimizerSpec", "OPTIMIZERS", "optimizer_spec", "make_optimizer"]


@dataclass(frozen=True)
class OptimizerSpec:
    """One named optimizer.

    - name: the key in OPTIMIZERS, lower case, as typed on the command line ("rmsprop").
    - label: a short label for legends, controls and tables ("RMSprop"); name == label.lower().
    - cls: the cnnlab.optim class it builds.
    - lr_surface: default learning rate on the 2-D surfaces of lesson 07 (a point with f of order 1).
    - lr_cnn: default learning rate for the race's small CNN (widgets.cnn_race_model.race_net): the
      lowest validation loss of a coarse sweep (steps of about 3x, bracketed on both sides) after one
      epoch on 2,000 images of the shipped subset, batch 64, seed 0, momentum 0.9 (RMSprop: see the
      note above OPTIMIZERS).
    - uses_momentum: the entry reads a momentum mu (a race's momentum slider reaches it).
    - options: keyword arguments it passes to cls beyond the class's defaults (read-only).
    """
    name: str
    label: str
    cls: type
    lr_surface: float
    lr_cnn: float
    uses_momentum: bool = False
    options: Mapping = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def _signature(self) -> dict:
        return {k: p for k, p in inspect.signature(self.cls.__init__).parameters.items()
                if k not in ("self", "params")}

    @property
    def default_lr(self) -> float | None:
        """The class's own default learning rate (PyTorch's), or None where it has none (SGD)."""
        default = self._signature()["lr"].default
        return None if default is inspect.Parameter.empty else default

    @property
    def hyperparameters(self) -> dict:
        """Every hyper-parameter but lr the optimizer is built with: the class's defaults, then `options`."""
        defaults = {k: p.default for k, p in self._signature().items() if k != "lr"}
        return {**defaults, **self.options}

    def build(self, params, lr: float | None = None, **overrides):
        """`cls(params, lr, **options, **overrides)`; lr None: the class's default (an error for SGD).

        Nesterov at momentum 0 is plain SGD (SGD refuses nesterov=True with momentum 0): an override
        momentum=0 of the "nesterov" entry builds SGD without it, unless nesterov is given too.
        """
        accepted = self._signature()
        unknown = sorted(set(overrides) - set(accepted))
        if unknown:
            raise TypeError(f"{self.label} ({self.cls.__name__}) has no hyper-parameter {', '.join(unknown)}; "
                            f"it takes {', '.join(accepted)}")
        if lr is None:
            lr = self.default_lr
            if lr is None:
                raise ValueError(f"{self.label}: {self.cls.__name__} has no default learning rate; pass lr")
        kwargs = {**self.options, **overrides}
        if self.options.get("nesterov") and "nesterov" not in overrides and kwargs.get("momentum") == 0:
            kwargs["nesterov"] = False
        return self.cls(params, lr=lr, **kwargs)


def _table(*specs: OptimizerSpec) -> Mapping[str, OptimizerSpec]:
    for spec in specs:
        if spec.name != spec.label.lower():  # so that a label finds its entry too
            raise ValueError(f"an entry's name must be its label in lower case, got {spec.name!r}, {spec.label!r}")
    return MappingProxyType({spec.name: spec for spec in specs})


# Order: the order of lesson 07 (and of the races' legends). RMSprop's lr_cnn, 3e-3, is the value the CNN
# race used when it ran RMSprop with alpha 0.9. The sweep re-run for alpha 0.99 (validation loss after one
# epoch: 1.21 at 3e-4, 0.99 at 1e-3, 0.80 at 3e-3, 0.75 at 1e-2; 3e-2 diverges at step 2) puts the lowest
# loss at 1e-2, one 3x step below a rate that diverges at once; 3e-3 keeps a factor 10 of margin and stays.
# AdamW (weight_decay 0.01, decoupled) takes Adam's rates: its sweep (validation loss after one epoch: 1.17 at
# 1e-3, 0.76 at 3e-3, 0.64 at 1e-2, 0.65 at 3e-2, 0.82 at 1e-1) puts the lowest loss at 1e-2, as for Adam; at
# that rate the decay shrinks every weight by a factor 1 - 1e-4 per step.
OPTIMIZERS: Mapping[str, OptimizerSpec] = _table(
    OptimizerSpec("sgd", "SGD", SGD, lr_surface=0.01, lr_cnn=0.3),
    OptimizerSpec("momentum", "Momentum", SGD, lr_surface=0.01, lr_cnn=0.1, uses_momentum=True,
                  options={"momentum": 0.9}),
    OptimizerSpec("nesterov", "Nesterov", SGD, lr_surface=0.01, lr_cnn=0.1, uses_momentum=True,
                  options={"momentum": 0.9, "nesterov": True}),
    OptimizerSpec("adagrad", "AdaGrad", Adagrad, lr_surface=0.1, lr_cnn=0.03),
    OptimizerSpec("adadelta", "AdaDelta", Adadelta, lr_surface=1.0, lr_cnn=10.0),
    OptimizerSpec("rmsprop", "RMSprop", RMSprop, lr_surface=0.01, lr_cnn=3e-3),
    OptimizerSpec("adam", "Adam", Adam, lr_surface=0.05, lr_cnn=1e-2),
    OptimizerSpec("adamw", "AdamW", AdamW, lr_surface=0.05, lr_cnn=1e-2),
)


def optimizer_spec(name) -> OptimizerSpec:
    """The entry for a name or a label, in any case ("rmsprop", "RMSprop"); ValueError naming the known ones."""
    spec = OPTIMIZERS.get(name.lower()) if isinstance(name, str) else None
    if spec is None:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")
    return spec


def make_optimizer(name, params, lr: float | None = None, **overrides):
    """Build the optimizer called `name` (see OPTIMIZERS) on `params`.

    Inputs: name (a name or label, any case), params (Parameters or parameter groups), lr (None: the
    class's default, PyTorch's; SGD has none), overrides (hyper-parameters, e.g. alpha=0.9).
    Returns the cnnlab.optim optimizer.
    """
    return optimizer_spec(name).build(params, lr, **overrides)
