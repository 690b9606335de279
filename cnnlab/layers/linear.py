"""Linear: the fully connected layer, y = x W^T + b, computed as one matrix product (GEMM).

This is Bouvrie's u = W x + b (eq. (2), written for one column vector x) applied to a whole
mini-batch at once, with examples as rows: Y = X W^T + b. It is what Caffe's InnerProduct layer
does with one call to gemm (Veta's slides), and its backward pass is two more GEMMs:

    dL/dX = dL/dY W          (N, out) x (out, in) -> (N, in)     (Bouvrie eq. (4) before f')
    dL/dW = (dL/dY)^T X      (out, N) x (N, in)   -> (out, in)   (Bouvrie eq. (5), summed over N)
    dL/db = sum over the batch of dL/dY                            (Bouvrie eq. (3))

Tomasi's appendix gives the same per-entry Jacobians: d y_i / d W_qj = delta_iq x_j and
d y_i / d x_j = W_ij.
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.layers._util import as_generator, check_float_input, check_same_dtype, positive_int
from cnnlab.module import Module, Parameter

__all__ = ["Linear"]


class Linear(Module):
    """Fully connected layer: y = x W^T + b.

    Linear(in_features, out_features, bias=True, rng=None)

    - Parameters: weight (out_features, in_features), then bias (out_features,) unless bias=False.
      Initialised as in PyTorch: uniform on [-1/sqrt(in_features), 1/sqrt(in_features)], drawn
      (weight first, then bias) from `rng`: a numpy Generator (its stream continues), an int seed,
      or None, which draws from cnnlab's library generator as PyTorch does (see cnnlab.rng): two
      layers built with rng=None start from different numbers, and `cnnlab.manual_seed(s)` before
      building makes them repeat exactly. float32.

    forward(x): x (N, in_features) -> y (N, out_features). As in PyTorch, any number of leading
        axes is accepted: (*, in_features) -> (*, out_features).
    backward(dout): dout (N, out_features) -> dx (N, in_features); writes weight.grad (out, in)
        and bias.grad (out,).
    Inside `no_input_grad(layer)` (a network's first layer in training) backward skips the dx
        product and returns None (see `cnnlab.module`).
    """

    def __init__(self, in_features, out_features, bias=True, rng=None):
        name = type(self).__name__
        self.in_features = positive_int(in_features, "in_features", name)
        self.out_features = positive_int(out_features, "out_features", name)
        gen = as_generator(rng)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight = Parameter(gen.uniform(-bound, bound, size=(self.out_features, self.in_features))
                                .astype(np.float32))
        self.bias = (Parameter(gen.uniform(-bound, bound, size=self.out_features).astype(np.float32))
                     if bias else None)

    def forward(self, x):
        name = type(self).__name__
        check_float_input(x, name)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"{name} expected input of shape (N, {self.in_features}) (in_features={self.in_features} "
                             f"on the last axis), got shape {x.shape}")
        check_same_dtype(x, self.weight, name)
        self._x = x
        out = x @ self._forward_weight().T  # GEMM (NoTrans, Trans), as Caffe's InnerProduct
        if self.bias is not None:
            out += self.bias.data
        return out

    def backward(self, dout):
        x2 = self._x.reshape(-1, self.in_features)
        dout2 = dout.reshape(-1, self.out_features)
        np.matmul(dout2.T, x2, out=self.weight.grad)  # written in place: no temporary (out, in) matrix
        if self.bias is not None:
            self.bias.grad[...] = dout2.sum(axis=0)
        if not self.needs_input_grad:
            return None
        return dout @ self._backward_weight()

    def _forward_weight(self) -> np.ndarray:
        """The (out, in) matrix this forward multiplies by: W (DropConnect masks it, once per forward)."""
        return self.weight.data

    def _backward_weight(self) -> np.ndarray:
        """The matrix dx = dout @ (this) propagates through: the one the last forward used."""
        return self.weight.data

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
