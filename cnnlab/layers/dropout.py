"""Dropout and drop-connect: regularisation by randomly switching parts of the network off.

Dropout (Tomasi §3; Khan eqs. (5.4)-(5.5)) multiplies every activation by its own mask entry
m ~ Bernoulli(p): with probability p the unit is kept, with probability 1 - p it outputs 0. Each
mini-batch then trains a different "thinned" net, and the full net at test time approximates the
average of all of them. Two ways to make the test-time output match the training-time expectation
E[m * a] = p * a:

- classic (Tomasi §3): train with the plain mask, and multiply by p at test time ("all the weights
  are multiplied by p"; scaling the outputs of the dropped layer is the same thing);
- inverted (what PyTorch and most libraries do): divide the kept units by p at training time,
  E[m * a / p] = a, so that test time is the identity and the trained network needs no rescaling.

Drop-connect (Khan eqs. (5.6)-(5.7), Wan et al. 2013) masks the *weights* of a fully connected
layer instead of its outputs: y = x (M o W)^T + b with M_ij ~ Bernoulli(p).

Both layers draw their masks from a random generator of their own (from `rng`, see cnnlab.rng; never
NumPy's global state), and both can hold a mask fixed (`freeze_mask = True`), which turns the layer
into a deterministic function for finite-difference gradient checks.
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.layers._util import as_generator, check_float_input
from cnnlab.layers.linear import Linear
from cnnlab.module import Module

__all__ = ["Dropout", "DropConnect"]


def _check_p_keep(p_keep, owner: str) -> float:
    """`p_keep` as a float in (0, 1] (the probability of KEEPING a unit or a weight)."""
    if not isinstance(p_keep, numbers.Real) or isinstance(p_keep, bool):
        raise TypeError(f"{owner}: p_keep must be a real number in (0, 1], got {type(p_keep).__name__}: {p_keep!r}")
    p_keep = float(p_keep)
    if not 0.0 < p_keep <= 1.0:
        raise ValueError(f"{owner}: p_keep (the probability of keeping a unit) must be in (0, 1], got {p_keep}")
    return p_keep


def _draw_or_reuse(layer, shape, owner: str) -> np.ndarray:
    """A fresh boolean Bernoulli(p_keep) mask of `shape`, or the stored one when the mask is frozen."""
    if layer.freeze_mask and layer.mask is not None:
        if layer.mask.shape != tuple(shape):
            raise ValueError(f"{owner}: freeze_mask is set but the frozen mask has shape {layer.mask.shape}, "
                             f"while this call needs shape {tuple(shape)}; set freeze_mask = False to draw a new one")
        return layer.mask
    # rng.random() is uniform on [0, 1): P(u < p) = p, so True ("keep") has probability p_keep
    layer.mask = layer._rng.random(shape) < layer.p_keep
    return layer.mask


class Dropout(Module):
    """Dropout on any input shape, parametrised by the KEEP probability p (Tomasi §3, Khan eq. (5.5)).

    Dropout(p_keep=0.5, inverted=True, rng=None)

    - p_keep: the probability p that a unit is kept, in (0, 1]; p_keep = 1 is the identity.
      NOTE: PyTorch's `nn.Dropout(p)` takes the DROP probability; PyTorch's p equals 1 - p_keep.
      This layer follows the source documents and takes only p_keep.
    - inverted: True (default, as PyTorch): training output m * x / p, evaluation output x.
      False (classic, Tomasi §3): training output m * x, evaluation output p * x.
      Either way the evaluation output equals the expected training output.
    - rng: a numpy Generator, an int seed, or None: a Generator seeded from cnnlab's library
      generator (reset by `cnnlab.manual_seed`; see cnnlab.rng), taken when the layer is built.
      Every training-mode forward draws a new mask from it, unless `freeze_mask` is True.

    Attributes: `mask` (bool array, the shape of the last training input; None before the first
    one), `freeze_mask` (bool, default False: when True, forward reuses `mask` instead of drawing).

    forward(x): x of any shape, e.g. (N, D) or (N, C, H, W) -> out of the same shape and dtype.
        Training: out = x * m * s with m ~ Bernoulli(p) elementwise (Khan eq. (5.4)), s = 1/p when
        inverted else 1. Evaluation: out = x when inverted, p * x when classic.
    backward(dout): dout (same shape) -> dx = dout * m * s in training (the same mask and scale),
        dout or p * dout in evaluation. No parameters.
    """

    def __init__(self, p_keep=0.5, inverted=True, rng=None):
        self.p_keep = _check_p_keep(p_keep, "Dropout")
        if not isinstance(inverted, (bool, np.bool_)):
            raise TypeError(f"Dropout: inverted must be True or False, got {type(inverted).__name__}: {inverted!r}")
        self.inverted = bool(inverted)
        self._rng = as_generator(rng)
        self.mask = None
        self.freeze_mask = False

    def forward(self, x):
        check_float_input(x, "Dropout")
        self._train_pass = self.training
        if self.training:
            mask = _draw_or_reuse(self, x.shape, "Dropout")
            scale = 1.0 / self.p_keep if self.inverted else 1.0
            self._factor = mask * x.dtype.type(scale)  # m * s, in the input's dtype
        else:
            self._factor = x.dtype.type(1.0 if self.inverted else self.p_keep)
        return x * self._factor

    def backward(self, dout):
        # out = factor * x elementwise, so dL/dx = factor * dL/dout (a diagonal Jacobian)
        return dout * self._factor

    def extra_repr(self) -> str:
        return f"p_keep={self.p_keep}, inverted={self.inverted}"


class DropConnect(Linear):
    """A fully connected layer whose weights are randomly masked: y = x (M o W)^T + b (Khan eq. (5.6)).

    A `Linear` whose products use M o W instead of W; only the mask is its own (and the factor M
    on weight.grad). Its parameters, state_dict keys and input checks are Linear's.

    DropConnect(in_features, out_features, p_keep=0.5, bias=True, rng=None)

    - Parameters: weight (out_features, in_features), then bias (out_features,) unless bias=False,
      initialised exactly as `Linear` (uniform on [-1/sqrt(in_features), 1/sqrt(in_features)],
      weight first, then bias), float32. The bias is never masked (as in Khan eq. (5.6)).
    - p_keep: the probability p that a weight is kept, in (0, 1] (Khan eq. (5.7): M_ij ~ Bernoulli(p)).
    - rng: a numpy Generator, an int seed, or None (a Generator seeded from cnnlab's library
      generator, see `cnnlab.manual_seed`). The same generator first initialises the parameters and
      then draws the masks.

    Training: every forward draws a fresh mask M of shape (out_features, in_features), ONE mask
    shared by the whole mini-batch (Wan et al. draw one mask per example; one per batch makes the
    layer a single GEMM and is the usual cheap implementation). `freeze_mask = True` reuses `mask`.
    Evaluation: the expected weights p * W are used, y = x (p W)^T + b. This is the simple
    mean approximation of the average over all masks; Wan et al. instead match the mean and
    variance of the pre-activation with a Gaussian and sample from it at inference. We do not.

    forward(x): x (N, in_features) (any leading axes: (*, in_features)) -> y (N, out_features).
    backward(dout): dout (N, out_features) -> dx = dout (M o W) of shape (N, in_features); writes
        weight.grad = M o (dout^T x) (dropped weights get no gradient) and bias.grad = sum_n dout.
        In evaluation M is replaced by the constant p.
    """

    def __init__(self, in_features, out_features, p_keep=0.5, bias=True, rng=None):
        self.p_keep = _check_p_keep(p_keep, "DropConnect")
        self._rng = as_generator(rng)  # initialises weight and bias (in Linear), then draws the masks
        super().__init__(in_features, out_features, bias=bias, rng=self._rng)
        self.mask = None
        self.freeze_mask = False

    def _forward_weight(self):
        w = self.weight.data
        if self.training:
            self._factor = _draw_or_reuse(self, w.shape, "DropConnect").astype(w.dtype)  # M
        else:
            self._factor = w.dtype.type(self.p_keep)  # E[M] = p
        self._w_eff = self._factor * w  # M o W (or p W): Linear's products use it
        return self._w_eff

    def _backward_weight(self):
        return self._w_eff

    def backward(self, dout):
        # y = x W_eff^T + b with W_eff = M o W: Linear writes dL/dW_eff = dout^T x, then the
        # Hadamard product passes it to W entrywise times M (d W_eff_ij / d W_ij = M_ij).
        dx = super().backward(dout)
        self.weight.grad *= self._factor
        return dx

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, p_keep={self.p_keep}")
