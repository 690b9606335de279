"""Optimizers with a per-parameter learning rate: AdaGrad, AdaDelta, RMSprop, Adam (Khan §5.4), and AdamW.

Each implements Khan's formula. Where PyTorch differs (it adds eps *outside* the square root:
g / (sqrt(v) + eps), where Khan writes g / sqrt(v + eps)), the flag `eps_inside_sqrt=False` gives
PyTorch's form, so the course can show both and how far apart they are. Gradients g below already
include weight decay when it is set (AdamW: they do not; it decays the weights). All state arrays have the parameter's shape.
"""
from __future__ import annotations

import numpy as np

from cnnlab.optim.base import Optimizer

__all__ = ["Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW"]


def _denominator(v, eps, inside: bool):
    return np.sqrt(v + eps) if inside else np.sqrt(v) + eps


class _Adaptive(Optimizer):
    def _check_hyperparameters(self, group):
        """Also eps > 0: every update divides by sqrt(v + eps) or sqrt(v) + eps, and v is 0 wherever the
        gradients so far were 0 (eps = 0 would give 0 / 0 = NaN there)."""
        super()._check_hyperparameters(group)
        self._check_number(group, "eps", 0.0, low_open=True,
                           why=" (it keeps the denominator away from zero where v = 0)")
        if "eps_inside_sqrt" in group:
            self._check_flag(group, "eps_inside_sqrt")

    def effective_lr(self, p):
        """lr / denominator: the step each gradient entry was scaled by in the last update."""
        state = self.state.get(p)
        if state is None or "effective_lr" not in state:
            return super().effective_lr(p)
        return state["effective_lr"]


class Adagrad(_Adaptive):
    """Khan eq. 5.21: theta <- theta - lr / sqrt(sum_tau g_tau^2 + eps) * g.

    State: "sum" (the accumulated squared gradients). PyTorch: lr * g / (sqrt(sum) + eps).
    """

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0,
                 eps_inside_sqrt: bool = True):
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay,
                                      eps_inside_sqrt=eps_inside_sqrt))

    def _update(self, p, g, group, state):
        total = state.setdefault("sum", np.zeros_like(p.data))
        total += g * g
        state["effective_lr"] = group["lr"] / _denominator(total, group["eps"], group["eps_inside_sqrt"])
        p.data -= state["effective_lr"] * g


class Adadelta(_Adaptive):
    """AdaDelta (Zeiler), Khan eqs. 5.23-5.26, in two forms.

    E[g^2] <- rho E[g^2] + (1 - rho) g^2                                         (5.23)
    form="unit_corrected" (default, 5.26, as PyTorch):
        delta = sqrt(E[dtheta^2] + eps) / sqrt(E[g^2] + eps) * g,  theta <- theta - lr * delta,
        E[dtheta^2] <- rho E[dtheta^2] + (1 - rho) delta^2; with lr = 1 this is Zeiler's rule,
        which needs no learning rate: the numerator carries the units of theta.
    form="eta" (5.24-5.25): theta <- theta - lr / sqrt(E[g^2] + eps) * g.
    State: "square_avg" (E[g^2]) and, in the unit-corrected form, "acc_delta" (E[dtheta^2]).
    """

    FORMS = ("unit_corrected", "eta")

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0, form: str = "unit_corrected"):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, form=form))

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        self._check_number(group, "rho", 0.0, 1.0)
        if group["form"] not in self.FORMS:
            raise ValueError(f"Adadelta: form must be one of {self.FORMS}, got {group['form']!r}")

    def _update(self, p, g, group, state):
        rho, eps = group["rho"], group["eps"]
        square_avg = state.setdefault("square_avg", np.zeros_like(p.data))
        square_avg *= rho
        square_avg += (1 - rho) * g * g
        if group["form"] == "eta":
            state["effective_lr"] = group["lr"] / np.sqrt(square_avg + eps)
            p.data -= state["effective_lr"] * g
            return
        acc_delta = state.setdefault("acc_delta", np.zeros_like(p.data))
        scale = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps)
        delta = scale * g
        acc_delta *= rho
        acc_delta += (1 - rho) * delta * delta
        state["effective_lr"] = group["lr"] * scale
        p.data -= group["lr"] * delta


class RMSprop(_Adaptive):
    """Khan eqs. 5.27-5.28: E[g^2] <- alpha E[g^2] + (1 - alpha) g^2, theta <- theta - lr g / sqrt(E[g^2] + eps).

    (Khan calls the decay gamma; PyTorch calls it alpha.) State: "square_avg".
    PyTorch: lr * g / (sqrt(E[g^2]) + eps).
    """

    def __init__(self, params, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, eps_inside_sqrt: bool = True):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      eps_inside_sqrt=eps_inside_sqrt))

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        self._check_number(group, "alpha", 0.0, 1.0)  # at alpha > 1, (1 - alpha) g^2 < 0 and the root is NaN

    def _update(self, p, g, group, state):
        alpha = group["alpha"]
        square_avg = state.setdefault("square_avg", np.zeros_like(p.data))
        square_avg *= alpha
        square_avg += (1 - alpha) * g * g
        state["effective_lr"] = group["lr"] / _denominator(square_avg, group["eps"], group["eps_inside_sqrt"])
        p.data -= state["effective_lr"] * g


class Adam(_Adaptive):
    """Adam with bias correction, Khan eqs. 5.29-5.33.

    m <- beta1 m + (1 - beta1) g,  v <- beta2 v + (1 - beta2) g^2          (5.29-5.30)
    m_hat = m / (1 - beta1^t),     v_hat = v / (1 - beta2^t)              (5.31-5.32)
    theta <- theta - lr m_hat / sqrt(v_hat + eps)                         (5.33)
    State: "exp_avg" (m), "exp_avg_sq" (v), "step" (t). PyTorch: lr m_hat / (sqrt(v_hat) + eps).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, eps_inside_sqrt: bool = True):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      eps_inside_sqrt=eps_inside_sqrt))

    def _check_hyperparameters(self, group):
        """Also betas = (beta1, beta2), each in [0, 1): at 1 the bias correction 1 - beta^t is 0."""
        super()._check_hyperparameters(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        for k, beta in enumerate(betas):
            self._check_number({f"betas[{k}]": beta}, f"betas[{k}]", 0.0, 1.0)

    def _update(self, p, g, group, state):
        beta1, beta2 = group["betas"]
        t = state["step"]
        m = state.setdefault("exp_avg", np.zeros_like(p.data))
        v = state.setdefault("exp_avg_sq", np.zeros_like(p.data))
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        state["effective_lr"] = group["lr"] / _denominator(v_hat, group["eps"], group["eps_inside_sqrt"])
        p.data -= state["effective_lr"] * m_hat


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), PyTorch's AdamW.

    theta <- (1 - lr lambda) theta, then Adam's step (5.29-5.33) on the gradient alone.
    Adam(weight_decay=lambda) instead adds lambda theta to the gradient, so the decay is divided by
    sqrt(v_hat) with everything else: weights with large gradients are barely decayed. Here every weight
    shrinks by the same factor. Defaults are PyTorch's (weight_decay 0.01).
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, eps_inside_sqrt: bool = True):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         eps_inside_sqrt=eps_inside_sqrt)
