"""cnnlab.optim: gradient descent and the classic optimizers (Tomasi §2, Khan §5.4).

`SGD` (momentum, Nesterov), `Adagrad`, `Adadelta`, `RMSprop`, `Adam`, `AdamW` (decoupled weight decay) work on any list of Parameters;
`clip_grad_norm_`; learning-rate schedulers `StepLR`, `ExponentialLR`, `LinearLR`, `CosineAnnealingLR` (with an
optional linear warm-up), `OneCycleLR`; and Tomasi's
momentum schedule `MomentumSchedule`; the named optimizers the course offers, `OPTIMIZERS` (name ->
`OptimizerSpec`), `optimizer_spec(name)` and `make_optimizer(name, params, lr)`.
"""
from cnnlab.optim.adaptive import Adadelta, Adagrad, Adam, AdamW, RMSprop
from cnnlab.optim.base import Optimizer, clip_grad_norm_
from cnnlab.optim.registry import OPTIMIZERS, OptimizerSpec, make_optimizer, optimizer_spec
from cnnlab.optim.schedulers import (CosineAnnealingLR, ExponentialLR, LinearLR, MomentumSchedule, OneCycleLR,
                                     StepLR, sutskever_momentum)
from cnnlab.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "clip_grad_norm_",
           "StepLR", "ExponentialLR", "LinearLR", "CosineAnnealingLR", "OneCycleLR", "MomentumSchedule",
           "sutskever_momentum",
           "OPTIMIZERS", "OptimizerSpec", "optimizer_spec", "make_optimizer"]
