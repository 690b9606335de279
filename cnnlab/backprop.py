"""Back-propagation over a training set, two ways (Tomasi, Algorithm 1 and eq. 1).

E(w) = (1/N) sum_n E_n(w), so dE/dw is the average of the per-sample gradients. Algorithm 1 computes
it literally: one sample at a time, a forward pass, the backward recursion, and a running average
grad <- ((n - 1) grad + grad_n) / n. A batched forward and backward over all N samples at once
computes the same average in one pass (a loss with reduction="mean" divides by N in its backward);
that is what every training loop in the course does.
"""
from __future__ import annotations

import numpy as np

__all__ = ["backprop_per_sample", "backprop_batched"]


def backprop_per_sample(net, loss_fn, X, y) -> list[np.ndarray]:
    """Tomasi's Algorithm 1: returns dE/dw for each parameter of `net`, averaged over the N samples.

    net: a Module; loss_fn: a loss with forward(pred, target) and backward(); X (N, ...), y (N, ...).
    Each sample is fed as a batch of one, so E_n is the loss of that sample alone.
    """
    params = net.parameters()
    grad = [np.zeros_like(p.data) for p in params]
    for n in range(1, len(X) + 1):
        out = net.forward(X[n - 1:n])
        loss_fn.forward(out, y[n - 1:n])
        net.backward(loss_fn.backward())  # writes grad E_n into every p.grad
        for g, p in zip(grad, params):
            g *= (n - 1) / n
            g += p.grad / n               # the running average of Algorithm 1
    return grad


def backprop_batched(net, loss_fn, X, y) -> list[np.ndarray]:
    """The same gradient from one batched forward and backward (loss_fn must average over the batch)."""
    loss_fn.forward(net.forward(X), y)
    net.backward(loss_fn.backward())
    return [p.grad.copy() for p in net.parameters()]
