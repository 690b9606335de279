"""Conv2d: a 2-D convolution layer (cross-correlation, as in PyTorch), with a naive and a fast kernel.

Notation: x (N, C, H, W) is the input, w (F, C, KH, KW) the kernels, b (F,) the biases, xp the
input zero-padded by (ph, pw), and (sh, sw) the stride. Like PyTorch (and every deep-learning
library), the layer computes a *cross-correlation* (the kernel is not flipped):

    out[n, f, oh, ow] = b[f] + sum_{c, i, j} w[f, c, i, j] * xp[n, c, oh*sh + i, ow*sw + j]     (1)

for OH = (H + 2*ph - KH) // sh + 1 output rows (likewise OW).

Relation to Bouvrie's notes (§3.1), which use MATLAB's true convolution conv2 (it flips its second
argument, i.e. rotates it by 180 degrees, written rot180):
- Forward: each output map is a 'valid' convolution of the input maps with kernels k, summed over
  input maps, plus a bias. A 'valid' convolution with k is a 'valid' cross-correlation with
  rot180(k), so (1) is Bouvrie's forward pass with w = rot180(k): the two conventions learn the
  same filters, stored rotated.
- Kernel gradient (Bouvrie's eq. (7)): dL/dw[f, c] = sum_n sum_{oh, ow} dout[n, f, oh, ow] *
  (the patch of xp[n, c] that met w[f, c] at (oh, ow)), i.e. a 'valid' cross-correlation of the
  padded input with the upstream gradient (for stride 1; with a stride the gradient map is
  spread out with sh-1, sw-1 zeros between its entries). Bouvrie writes it as
  rot180(conv2(x, rot180(delta), 'valid')): the rot180s turn his convolution into this
  cross-correlation.
- Input gradient (Bouvrie §3.2, the sensitivity of the layer below): dL/dxp[n, c] = sum_f a 'full'
  convolution of dout[n, f] with w[f, c], which is a 'full' cross-correlation with rot180(w[f, c]):
  each input pixel collects the gradients of every output whose window covered it, weighted by
  the kernel entry that touched it. 'full' handles the borders, where fewer windows overlap,
  by zero padding. dL/dx is then dL/dxp with the padding cropped off.
- Bias gradient: dL/db[f] = sum of dout[:, f] over the batch and all positions (Bouvrie's
  dE/db_j = sum_{u,v} (delta_j)_{uv}).

Two kernels compute the same thing:
- `conv2d_forward_naive` / `conv2d_backward_naive`: explicit loops over every output position;
  slow, but each line is one of the formulas above. The test oracle.
- `conv2d_forward_fast` / `conv2d_backward_fast`: im2col (see `cnnlab.layers.im2col`) copies all
  windows once into a matrix, then forward, dw and dx are one matrix product each, and dx is
  folded back by col2im. The layer uses these.

What makes the fast kernel fast (the benchmark `python -m cnnlab bench` measures it):
- one copy of the windows per forward pass (KH*KW strided slice copies, no padded copy of x) and
  one GEMM per pass: out = W cols, dW = dout cols^T (or its transpose), dcols = W^T dout;
- layouts that need no transposes: cols has one column per output pixel (n, oh, ow), so the GEMM
  leaves the output in (F, N, OH, OW) memory order, returned as an (N, F, OH, OW) view; the
  layers after it keep that order, so dout arrives with it and flattens to (F, N*OH*OW) as a view;
- float32 throughout (float64 when the layer has been cast, for gradient checks);
- the layer's large arrays (cols, dcols, its output and dx) are reused from step to step instead
  of being allocated afresh (`cnnlab.layers.im2col.reusable`): this saves the page faults that a
  fresh 7 MB array costs on every step.
"""
from __future__ import annotations

import math

import numpy as np

from cnnlab.layers._util import (as_generator, check_float_input, check_ndim, check_same_dtype, pair,
                                 positive_int)
from cnnlab.layers.im2col import col2im_into, conv_output_size, im2col_into, pad2d, reusable
from cnnlab.module import Module, Parameter

__all__ = ["Conv2d", "conv2d_forward_naive", "conv2d_backward_naive", "conv2d_forward_fast",
           "conv2d_backward_fast"]


# --- the naive kernel: loops that follow the formulas --------------------------------------------
def conv2d_forward_naive(x, weight, bias=None, stride=1, padding=0):
    """Reference forward pass of a 2-D convolution, one output value at a time (formula (1)).

    Inputs:
    - x: input of shape (N, C, H, W).
    - weight: kernels of shape (F, C, KH, KW).
    - bias: shape (F,), or None.
    - stride, padding: int or (h, w).

    Returns out of shape (N, F, OH, OW), OH = (H + 2*ph - KH) // sh + 1, OW likewise.
    """
    (sh, sw), (ph, pw) = pair(stride, "stride", "conv2d", 1), pair(padding, "padding", "conv2d", 0)
    n_batch, _, h, w = x.shape
    n_filters, _, kh, kw = weight.shape
    xp = pad2d(x, (ph, pw))
    oh_count, ow_count = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    out = np.zeros((n_batch, n_filters, oh_count, ow_count), dtype=np.result_type(x, weight))
    for n in range(n_batch):
        for f in range(n_filters):
            for oh in range(oh_count):
                for ow in range(ow_count):
                    patch = xp[n, :, oh * sh:oh * sh + kh, ow * sw:ow * sw + kw]  # (C, KH, KW)
                    out[n, f, oh, ow] = np.sum(patch * weight[f])
            if bias is not None:
                out[n, f] += bias[f]
    return out


def conv2d_backward_naive(dout, x, weight, stride=1, padding=0):
    """Reference backward pass: every output value sends its gradient back through its window.

    Inputs:
    - dout: upstream gradient dL/dout, shape (N, F, OH, OW).
    - x, weight, stride, padding: as given to the forward pass.

    Returns (dx, dweight, dbias) with the shapes of x (N, C, H, W), weight (F, C, KH, KW) and (F,):
    output (n, f, oh, ow) adds dout * w[f] onto the window of xp it read (the 'full' correlation
    with rot180(w)) and dout * window onto dw[f] (Bouvrie's eq. (7)).
    """
    (sh, sw), (ph, pw) = pair(stride, "stride", "conv2d", 1), pair(padding, "padding", "conv2d", 0)
    n_batch, _, h, w = x.shape
    n_filters, _, kh, kw = weight.shape
    xp = pad2d(x, (ph, pw))
    dxp = np.zeros(xp.shape, dtype=np.result_type(dout, x))
    dweight = np.zeros(weight.shape, dtype=np.result_type(dout, weight))
    for n in range(n_batch):
        for f in range(n_filters):
            for oh in range(dout.shape[2]):
                for ow in range(dout.shape[3]):
                    g = dout[n, f, oh, ow]
                    rows, cols = slice(oh * sh, oh * sh + kh), slice(ow * sw, ow * sw + kw)
                    dxp[n, :, rows, cols] += g * weight[f]
                    dweight[f] += g * xp[n, :, rows, cols]
    dbias = dout.sum(axis=(0, 2, 3))
    dx = dxp[:, :, ph:ph + h, pw:pw + w]
    return dx, dweight, dbias


# --- the fast kernel: im2col + one GEMM per pass --------------------------------------------------
def conv2d_forward_fast(x, weight, bias=None, stride=(1, 1), padding=(0, 0)):
    """Forward pass as one matrix product over copied windows (im2col).

    Inputs: x (N, C, H, W); weight (F, C, KH, KW); bias (F,) or None; stride, padding (h, w) tuples.

    Returns (out, cols): out of shape (N, F, OH, OW) and cols (C*KH*KW, N*OH*OW), kept for the
    backward pass. out is a transposed view of the GEMM result, whose memory is laid out
    (F, N, OH, OW): each map is contiguous, which is all the following layers need.
    """
    return _forward(x, weight, bias, tuple(stride), tuple(padding))


def conv2d_backward_fast(dout, cols, x_shape, weight, stride=(1, 1), padding=(0, 0)):
    """Backward pass with one GEMM for dweight and one for the input columns, then col2im.

    Inputs:
    - dout: (N, F, OH, OW); cols: the (C*KH*KW, N*OH*OW) matrix from `conv2d_forward_fast`.
    - x_shape: (N, C, H, W); weight: (F, C, KH, KW); stride, padding: (h, w) tuples.

    Returns (dx, dweight, dbias) of shapes (N, C, H, W), (F, C, KH, KW), (F,).
    """
    return _backward(dout, cols, tuple(x_shape), weight, tuple(stride), tuple(padding))


def _forward(x, weight, bias, stride, padding, owner=None):
    """conv2d_forward_fast; with a layer as `owner`, its arrays are reused between steps."""
    n, c, h, w = x.shape
    n_filters, _, kh, kw = weight.shape
    oh = conv_output_size(h, kh, stride[0], padding[0])
    ow = conv_output_size(w, kw, stride[1], padding[1])
    # the entries of cols that read the zero padding are never written: they stay zero (as a new
    # array starts) as long as the input shape, the key, does not change
    cols = reusable(owner, "cols", (c * kh * kw, n * oh * ow), x.dtype, key=x.shape)
    im2col_into(x, cols, (kh, kw), stride, padding)
    out = reusable(owner, "out", (n_filters, n * oh * ow), np.result_type(weight, cols))
    np.matmul(weight.reshape(n_filters, -1), cols, out=out)   # formula (1) for all outputs: one GEMM
    if bias is not None:
        out += bias[:, None]
    return out.reshape(n_filters, n, oh, ow).transpose(1, 0, 2, 3), cols


def _backward(dout, cols, x_shape, weight, stride, padding, owner=None, input_grad=True):
    """conv2d_backward_fast; with a layer as `owner`, its arrays are reused between steps.
    input_grad=False skips dx (the dcols GEMM and col2im) and returns None in its place."""
    n, c, h, w = x_shape
    n_filters = weight.shape[0]
    # (F, N*OH*OW), columns ordered like cols'. A view, no copy, when dout's memory is laid out
    # (F, N, OH, OW), as the forward pass and the layers after it leave it.
    dout2 = dout.transpose(1, 0, 2, 3).reshape(n_filters, -1)
    # eq. (7), summed over all positions: dweight = dout2 @ cols^T. OpenBLAS runs this long,
    # thin product faster when its result is tall, so the second layer of the reference CNN
    # (F = 32 < C*KH*KW = 144) computes the transpose cols @ dout2^T instead.
    if n_filters >= cols.shape[0]:
        dweight = (dout2 @ cols.T).reshape(weight.shape)
    else:
        dweight = (cols @ dout2.T).T.reshape(weight.shape)
    dbias = dout2.sum(axis=1)
    if not input_grad:
        return None, dweight, dbias
    dcols = reusable(owner, "dcols", cols.shape, np.result_type(weight, dout2))
    np.matmul(weight.reshape(n_filters, -1).T, dout2, out=dcols)   # (C*KH*KW, N*OH*OW)
    # dx in (C, N, H, W) memory order, the order in which col2im reads dcols and in which the
    # layer before (ReLU, pooling) left its output
    dx = reusable(owner, "dx", (n, c, h, w), dcols.dtype, order=(1, 0, 2, 3), zero=True)
    col2im_into(dcols, dx, weight.shape[2:], stride, padding)
    return dx, dweight, dbias


# --- the layer ---------------------------------------------------------------------------------
class Conv2d(Module):
    """2-D convolution over images (N, C, H, W), computed as a cross-correlation (formula (1)).

    Conv2d(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None)

    - kernel_size, stride, padding: an int or an (h, w) pair; zero padding on both sides.
    - Parameters: weight (out_channels, in_channels, KH, KW), then bias (out_channels,) unless
      bias=False. Initialised as in PyTorch: uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)] with
      fan_in = in_channels*KH*KW, drawn (weight first, then bias) from `rng`: a numpy Generator,
      an int seed, or None, which means the fixed seed 0 (construction is deterministic; two
      layers built with rng=None start with the same numbers, so pass one shared Generator to
      initialise a whole network). float32.

    forward(x): x (N, in_channels, H, W) -> out (N, out_channels, OH, OW),
        OH = (H + 2*ph - KH) // sh + 1, OW = (W + 2*pw - KW) // sw + 1.
    backward(dout): dout (N, out_channels, OH, OW) -> dx (N, in_channels, H, W); writes
        weight.grad and bias.grad (see the module docstring for Bouvrie's 'valid'/'full' form).
    backward(dout, needs_input_grad=False): writes the same weight.grad and bias.grad, skips dx
        (its GEMM and col2im: about half of the backward of the benchmark's first convolution)
        and returns None: what a network's first convolution needs in a training step (see
        `cnnlab.module`).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None):
        self.in_channels = positive_int(in_channels, "in_channels", "Conv2d")
        self.out_channels = positive_int(out_channels, "out_channels", "Conv2d")
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2d", 1)
        self.stride = pair(stride, "stride", "Conv2d", 1)
        self.padding = pair(padding, "padding", "Conv2d", 0)
        gen = as_generator(rng)
        kh, kw = self.kernel_size
        bound = 1.0 / math.sqrt(self.in_channels * kh * kw)
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.weight = Parameter(gen.uniform(-bound, bound, size=shape).astype(np.float32))
        self.bias = (Parameter(gen.uniform(-bound, bound, size=self.out_channels).astype(np.float32))
                     if bias else None)

    def forward(self, x):
        check_float_input(x, "Conv2d")
        check_ndim(x, 4, "(N, C, H, W)", "Conv2d")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d expected input with {self.in_channels} channels (N, {self.in_channels}, H, W), "
                             f"got shape {x.shape} with {x.shape[1]} channels")
        check_same_dtype(x, self.weight, "Conv2d")
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        hp, wp = x.shape[2] + 2 * ph, x.shape[3] + 2 * pw
        if hp < kh or wp < kw:
            raise ValueError(f"Conv2d: input of spatial size {x.shape[2:]} padded to ({hp}, {wp}) is smaller than "
                             f"kernel_size {self.kernel_size}")
        bias = None if self.bias is None else self.bias.data
        self._cols = None  # let the forward pass reuse last step's columns
        out, self._cols = _forward(x, self.weight.data, bias, self.stride, self.padding, owner=self)
        self._x_shape = x.shape
        return out

    def backward(self, dout):
        dx, dweight, dbias = _backward(dout, self._cols, self._x_shape, self.weight.data, self.stride,
                                       self.padding, owner=self, input_grad=self.needs_input_grad)
        self.weight.grad[...] = dweight
        if self.bias is not None:
            self.bias.grad[...] = dbias
        return dx

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.bias is None:
            s += ", bias=False"
        return s
