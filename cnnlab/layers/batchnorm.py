"""Batch normalisation (Khan eqs. (5.8)-(5.11)): BatchNorm1d on features, BatchNorm2d on images.

For every channel (feature) j, over the m values of that channel in the mini-batch (the N
examples of (N, C); the N*L values of (N, C, L); the N*H*W pixels of (N, C, H, W)):

    mu_j      = (1/m) sum_i x_ij                                  (5.8)
    sigma2_j  = (1/m) sum_i (x_ij - mu_j)^2     (biased variance)  (5.9)
    xhat_ij   = (x_ij - mu_j) / sqrt(sigma2_j + eps)              (5.10)
    y_ij      = gamma_j * xhat_ij + beta_j                        (5.11)

gamma and beta are the trainable `weight` and `bias` (PyTorch names). At evaluation time a batch
may be a single example, so the statistics are replaced by running estimates kept during training:

    running_mean <- (1 - momentum) * running_mean + momentum * mu
    running_var  <- (1 - momentum) * running_var  + momentum * sigma2 * m / (m - 1)

(the UNBIASED variance goes into the running estimate while the biased one normalises the batch:
PyTorch does exactly this). momentum=None means a cumulative average, momentum = 1 / t at batch t.

Backward in training (the compact form). Write s = sqrt(sigma2 + eps), g_i = dL/dxhat_i =
gamma * dy_i, and take one channel. x_i reaches the loss through xhat_i directly and through mu
and sigma2, which depend on every x_k. From (5.8)-(5.10):
    d xhat_k / d x_i = (delta_ik - 1/m) / s - xhat_k * (d s / d x_i) / s,
    d s / d x_i = (1/(2s)) * d sigma2 / d x_i = (1/(2s)) * (2/m) (x_i - mu) = xhat_i / m
(the term of d sigma2 / d mu vanishes because sum_k (x_k - mu) = 0). So
    dL/dx_i = sum_k g_k d xhat_k / d x_i = (1/s) (g_i - mean_k g_k - xhat_i * mean_k (g_k xhat_k))
            = gamma / (m s) * (m dy_i - sum_k dy_k - xhat_i * sum_k dy_k xhat_k),
    dL/dgamma = sum_i dy_i xhat_i,      dL/dbeta = sum_i dy_i          (from (5.11)).
In evaluation mu and s are constants (running statistics), so dL/dx = gamma * dy / s.
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.layers._util import check_float_input, check_same_dtype, positive_int
from cnnlab.module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Shared implementation; subclasses set the accepted input ranks (`_ndims`) and `_layout`."""

    _ndims: tuple = ()
    _layout: str = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        name = type(self).__name__
        self.num_features = positive_int(num_features, "num_features", name)
        if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"{name}: eps must be a positive number, got {eps!r}")
        if momentum is not None and (not isinstance(momentum, numbers.Real) or isinstance(momentum, bool)
                                     or not 0.0 <= momentum <= 1.0):
            raise ValueError(f"{name}: momentum must be a number in [0, 1] or None (cumulative average), "
                             f"got {momentum!r}")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        c = self.num_features
        self.weight = Parameter(np.ones(c, dtype=np.float32))   # gamma, eq. (5.11)
        self.bias = Parameter(np.zeros(c, dtype=np.float32))    # beta, eq. (5.11)
        self.register_buffer("running_mean", np.zeros(c, dtype=np.float32))
        self.register_buffer("running_var", np.ones(c, dtype=np.float32))
        self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))

    def _check(self, x):
        name = type(self).__name__
        check_float_input(x, name)
        if x.ndim not in self._ndims:
            raise ValueError(f"{name} expects a {' or '.join(f'{d}-D' for d in self._ndims)} input "
                             f"{self._layout}, got shape {x.shape} ({x.ndim}-D)")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name} expected {self.num_features} channels (num_features) on axis 1, "
                             f"got shape {x.shape} with {x.shape[1]}")
        check_same_dtype(x, self.weight, name)

    def forward(self, x):
        self._check(x)
        axes = (0,) + tuple(range(2, x.ndim))           # every axis but the channel axis
        bshape = (1, -1) + (1,) * (x.ndim - 2)          # per-channel values broadcast over x
        m = x.size // self.num_features                 # values per channel
        if self.training and m == 0:  # checked before any state changes: mean of nothing is NaN
            raise ValueError(f"{type(self).__name__}: expected at least one value per channel (a non-empty "
                             f"batch) when training, got input of shape {x.shape} (0 values per channel)")
        if self.training and m == 1:  # the unbiased variance m / (m - 1) is undefined
            raise ValueError(f"{type(self).__name__}: Expected more than 1 value per channel when training, "
                             f"got input size {x.shape}")
        self._train_pass = self.training
        if self.training:
            mu = x.mean(axis=axes)                                  # (5.8)
            var = ((x - mu.reshape(bshape)) ** 2).mean(axis=axes)   # (5.9), biased
            self.num_batches_tracked += 1
            f = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean[...] = (1 - f) * self.running_mean + f * mu
            self.running_var[...] = (1 - f) * self.running_var + f * var * (m / (m - 1))
        else:
            mu, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        xhat = (x - mu.reshape(bshape)) * inv_std.reshape(bshape)  # (5.10)
        self._xhat, self._inv_std, self._axes, self._bshape, self._m = xhat, inv_std, axes, bshape, m
        return self.weight.data.reshape(bshape) * xhat + self.bias.data.reshape(bshape)  # (5.11)

    def backward(self, dout):
        xhat, axes, bshape = self._xhat, self._axes, self._bshape
        sum_dy = dout.sum(axis=axes)
        sum_dy_xhat = (dout * xhat).sum(axis=axes)
        self.weight.grad[...] = sum_dy_xhat
        self.bias.grad[...] = sum_dy
        scale = (self.weight.data * self._inv_std).reshape(bshape)   # gamma / s
        if not self._train_pass:
            return scale * dout
        m = self._m
        # the compact form derived in the module docstring
        return (scale / m) * (m * dout - sum_dy.reshape(bshape) - xhat * sum_dy_xhat.reshape(bshape))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of features, per feature over the batch (Khan eqs. (5.8)-(5.11)).

    BatchNorm1d(num_features, eps=1e-5, momentum=0.1)

    - Parameters: weight (gamma, shape (C,), init 1), then bias (beta, (C,), init 0); float32.
    - Buffers: running_mean (C,) init 0, running_var (C,) init 1, num_batches_tracked (int64, 0-d).
    - eps: added to the variance inside the square root (5.10). momentum: weight of the new batch
      in the running averages, or None for a cumulative average (as in PyTorch).

    forward(x): x (N, C), or (N, C, L) with statistics over N and L -> y of the same shape.
        Training: batch statistics (biased variance), running statistics updated (unbiased
        variance); a batch with one value per channel (variance undefined) raises ValueError, as in
        PyTorch, and so does an empty batch, before any running statistic changes.
        Evaluation: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta.
    backward(dout): dout (shape of y) -> dx (shape of x); writes weight.grad = sum dy * xhat and
        bias.grad = sum dy (see the module docstring for the compact training-mode dx).
    """

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of images, per channel over the batch and all pixels (Khan eqs. (5.8)-(5.11)).

    BatchNorm2d(num_features, eps=1e-5, momentum=0.1)

    Parameters, buffers and arguments as `BatchNorm1d`; num_features is the channel count C.

    forward(x): x (N, C, H, W) -> y (N, C, H, W); mean and variance of channel c are taken over
        the m = N*H*W values x[:, c, :, :].
    backward(dout): dout (N, C, H, W) -> dx (N, C, H, W); writes weight.grad and bias.grad (C,).
    """

    _ndims = (4,)
    _layout = "(N, C, H, W)"
