"""The Jacobians of one layer inside a small net, and their check against finite differences (the model
of `widgets.jacobian_viewer`, plain NumPy: no widgets, no plotting).

For the layer picked, at the input it receives inside the net, `JacobianModel` computes Tomasi's two
Jacobians (eq. (5)) J_x = dx^(l)/dx^(l-1) (one row per output, one column per input) and
J_w = dx^(l)/dw^(l) (one column per parameter, weight row-major then bias) with `cnnlab.jacobian`, from
the layer's own `backward`, and their singular values.

Piecewise-linear layers (ReLU, max pooling) have kinks: at a tie in a pooling window, or at a ReLU
input of exactly 0, a derivative does not exist and a centred difference returns the average of the
two one-sided slopes. The check (`compare_with_differences`) therefore also takes one-sided
differences (`one_sided_jacobians`): where they disagree, the entry sits on a kink and the analytic
value only has to lie between them (it is one of the one-sided slopes); everywhere else it must match
the centred difference.
"""
from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from cnnlab import Module, Sequential
from cnnlab.jacobian import jacobians
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.rng import as_generator

__all__ = ["SOURCES", "MAX_ENTRIES", "SEEDS", "default_net", "downsample", "one_sided_jacobians", "DifferenceCheck",
           "compare_with_differences", "JacobianModel"]

SOURCES = {"image": "Fashion-MNIST image", "random": "random input", "custom": "your input"}
MAX_ENTRIES = 400_000  # a Jacobian bigger than this is not formed (finite differences would be slow)
SEEDS = 100
CACHE_ENTRIES = 2_000_000  # matrix entries (16 MB) of the Jacobians and differences kept for layers and inputs seen


def default_net(rng=0) -> Sequential:
    """Conv2d(1, 2, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(32, 3), in float64.

    For inputs of shape (1, 1, 8, 8): 2 maps of 8 x 8, pooled to 2 maps of 4 x 4 = 32 features.
    rng: a numpy Generator, an int seed or None (cnnlab's library generator) for the initial weights.
    """
    gen = as_generator(rng, "default_net")
    return Sequential([Conv2d(1, 2, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(32, 3, rng=gen)]).astype(np.float64)


def downsample(images, size: int = 8) -> np.ndarray:
    """Shrink square images (N, C, H, W) to (N, C, size, size) by averaging blocks of pixels.

    With k = H // size, the central size*k rows and columns are kept (Fashion-MNIST's border is
    background) and each k x k block is averaged: 28 x 28 -> crop 24 x 24 -> 8 x 8 for size 8.
    Returns float64.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"downsample expects square images of shape (N, C, H, H), got {images.shape}")
    k = images.shape[2] // size
    if size < 1 or k < 1:
        raise ValueError(f"downsample needs 1 <= size <= H = {images.shape[2]}, got size={size}")
    start = (images.shape[2] - k * size) // 2
    crop = images[:, :, start:start + k * size, start:start + k * size]
    n, c = crop.shape[:2]
    return crop.reshape(n, c, size, k, size, k).mean(axis=(3, 5))


def one_sided_jacobians(f, x, eps: float = 1e-6):
    """Forward and backward differences of a vector function, one column per entry of x.

    f: a function of no arguments that reads `x` (perturbed in place and restored).
    Returns (forward, backward), each (f().size, x.size): column j is (f(x + eps e_j) - f(x)) / eps
    and (f(x) - f(x - eps e_j)) / eps. Their average is the centred difference of
    `cnnlab.jacobian.numerical_jacobian`; their gap is O(eps) for a smooth function and O(1) at a kink.
    """
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("one_sided_jacobians perturbs x in place; pass a contiguous array")
    center = np.array(f(), dtype=np.float64).ravel()
    forward = np.zeros((center.size, flat.size))
    backward = np.zeros((center.size, flat.size))
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        forward[:, j] = (np.array(f(), dtype=np.float64).ravel() - center) / eps
        flat[j] = old - eps
        backward[:, j] = (center - np.array(f(), dtype=np.float64).ravel()) / eps
        flat[j] = old
    return forward, backward


@dataclass
class DifferenceCheck:
    """How an analytic Jacobian compares with finite differences."""
    max_abs_error: float   # largest |analytic - centred difference| away from kinks
    where: tuple           # (row, column) of that largest error, () for an empty matrix
    kinks: int             # entries where the one-sided slopes differ (no derivative there)
    kinks_ok: bool         # at every kink, the analytic value lies between the one-sided slopes
    ok: bool               # the verdict: max_abs_error <= atol and kinks_ok


def compare_with_differences(J, central, forward, backward, atol: float = 1e-6,
                             kink_gap: float = 1e-3) -> DifferenceCheck:
    """Compare an analytic Jacobian J with its centred and one-sided differences (all the same shape).

    An entry is a kink when |forward - backward| > kink_gap; there J must lie in
    [min(forward, backward) - atol, max(...) + atol]. Elsewhere |J - central| must be <= atol.
    """
    J, central = np.asarray(J, dtype=np.float64), np.asarray(central, dtype=np.float64)
    if not J.shape == central.shape == np.shape(forward) == np.shape(backward):
        raise ValueError(f"compare_with_differences needs arrays of one shape, got J {J.shape}, central "
                         f"{central.shape}, forward {np.shape(forward)}, backward {np.shape(backward)}")
    kink = np.abs(forward - backward) > kink_gap
    error = np.where(kink, 0.0, np.abs(J - central))
    where = np.unravel_index(error.argmax(), error.shape) if error.size else ()
    max_error = float(error[where]) if error.size else 0.0
    low, high = np.minimum(forward, backward) - atol, np.maximum(forward, backward) + atol
    kinks_ok = bool(np.all((low <= J) & (J <= high) | ~kink))
    return DifferenceCheck(max_error, tuple(int(i) for i in where), int(kink.sum()), kinks_ok,
                           bool(max_error <= atol and kinks_ok))


class JacobianModel:
    """The Jacobians of one layer of `net` at the input it receives for one example.

    Inputs:
    - net: a cnnlab Sequential; the model works on a float64 copy in eval mode (a fixed function:
      no dropout masks drawn anew at every call), so your net is not changed.
    - x: one example with a batch axis of 1, e.g. (1, 1, 8, 8), or None.
    - images: candidate inputs (N, ...) of the same per-example shape as x, or None.
    At least one of x and images is needed (x fixes the input shape; random inputs take it too).

    State: `layer_index`, `source` ("custom", "image" or "random"), `sample` (image index or seed).
    After `update()`: `x` (the net's input), `x_in` (the layer's input), `J_x` (D, M), `J_w` (D, P),
    their centred differences `J_x_numeric`, `J_w_numeric`, the checks `check_x`, `check_w`
    (DifferenceCheck), `matches`, `max_abs_error`, and singular values `sv_x`, `sv_w` (descending).
    """

    def __init__(self, net, x=None, images=None, eps: float = 1e-6, atol: float = 1e-6):
        if not isinstance(net, Sequential):
            raise TypeError(f"net must be a cnnlab Sequential of layers, got {type(net).__name__}")
        if len(net) == 0:
            raise ValueError("net must contain at least one layer, got an empty Sequential")
        self.net = copy.deepcopy(net).astype(np.float64).eval()
        self.custom = None if x is None else self._example(x, "x")
        self.images = None
        if images is not None:
            images = np.asarray(images, dtype=np.float64)
            if images.ndim < 2 or len(images) == 0:
                raise ValueError(f"images must have shape (N, ...) with N >= 1, got {images.shape}")
            if self.custom is not None and images.shape[1:] != self.custom.shape[1:]:
                raise ValueError(f"images of shape {images.shape[1:]} do not match x of shape "
                                 f"{self.custom.shape[1:]}")
            self.images = images
        if self.custom is None and self.images is None:
            raise ValueError("JacobianModel needs an input: pass x (one example) or images (N, ...)")
        self.input_shape = (1,) + (self.custom if self.custom is not None else self.images).shape[1:]
        try:
            self.net.forward(np.zeros(self.input_shape))
        except (ValueError, TypeError) as error:
            raise ValueError(f"net cannot take an input of shape {self.input_shape}: {error}") from None
        self.eps, self.atol = float(eps), float(atol)
        self._cache = OrderedDict()  # (layer index, fingerprint of its input and parameters) -> _compute's result
        self.layer_index = 0
        self.source = "custom" if self.custom is not None else "image"
        self.sample = 0
        self.update()

    @staticmethod
    def _example(x, name):
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{name} must be a float numpy array, got {got}")
        if x.ndim < 2 or x.shape[0] != 1:
            raise ValueError(f"{name} must be one example with a batch axis of 1, e.g. (1, 1, 8, 8), "
                             f"got shape {x.shape}")
        return x.astype(np.float64)

    @property
    def sources(self) -> list[str]:
        """The input sources available: 'custom' (when x was given), 'image' (when images were), 'random'."""
        return ([s for s, have in (("custom", self.custom), ("image", self.images)) if have is not None]
                + ["random"])

    @property
    def max_sample(self) -> int:
        return len(self.images) - 1 if self.source == "image" else SEEDS - 1

    def layer_names(self) -> list[str]:
        return [f"{i}: {layer!r}" for i, layer in enumerate(self.net)]

    def net_input(self) -> np.ndarray:
        if self.source not in self.sources:
            raise ValueError(f"source must be one of {self.sources}, got {self.source!r}")
        if self.source == "custom":
            return self.custom.copy()
        if self.source == "image":
            if not 0 <= self.sample < len(self.images):
                raise ValueError(f"image index must be in [0, {len(self.images) - 1}], got {self.sample}")
            return self.images[self.sample:self.sample + 1].copy()
        return np.random.default_rng(self.sample).standard_normal(self.input_shape)

    def update(self) -> None:
        if not 0 <= self.layer_index < len(self.net):
            raise ValueError(f"layer_index must be in [0, {len(self.net) - 1}], got {self.layer_index}")
        x = self.net_input()
        x_in = x
        for layer in self.net.layers[:self.layer_index]:
            x_in = layer.forward(x_in)
        x_in = np.ascontiguousarray(x_in, dtype=np.float64)
        layer = self.layer
        out_size = layer.forward(x_in).size
        size = out_size * (x_in.size + sum(p.size for p in layer.parameters()))
        if size > MAX_ENTRIES:
            raise ValueError(f"layer {self.layer_index}'s Jacobians would have {size:,} entries (more than "
                             f"{MAX_ENTRIES:,}): use a smaller input")
        key = (self.layer_index, self.eps, self.atol,
               self._fingerprint(x_in, *(np.asarray(v) for v in layer.state_dict().values())))
        if key not in self._cache:
            self._store(key, self._compute(layer, x_in, out_size))
        self._cache.move_to_end(key)
        J_x, J_w, num_x, num_w, check_x, check_w, sv_x, sv_w = self._cache[key]
        layer.forward(x_in)  # leave the layer as it was after a clean forward pass
        self.x, self.x_in, self.J_x, self.J_w = x, x_in, J_x, J_w
        self.J_x_numeric, self.J_w_numeric = num_x, num_w
        self.check_x, self.check_w = check_x, check_w
        self.matches = check_x.ok and check_w.ok
        self.max_abs_error = max(check_x.max_abs_error, check_w.max_abs_error)
        self.sv_x, self.sv_w = sv_x, sv_w

    @staticmethod
    def _fingerprint(*arrays) -> bytes:
        """A digest of the arrays' shapes and values: what the Jacobians of a layer depend on."""
        digest = hashlib.blake2b(digest_size=16)
        for a in arrays:
            digest.update(repr(a.shape).encode())
            digest.update(np.ascontiguousarray(a).tobytes())
        return digest.digest()

    def _store(self, key, result) -> None:
        """Keep a result (read-only arrays); the oldest go when they hold more than CACHE_ENTRIES entries."""
        for a in result:
            if isinstance(a, np.ndarray):
                a.setflags(write=False)
        self._cache[key] = result
        while len(self._cache) > 1 and sum(a.size for r in self._cache.values() for a in r
                                           if isinstance(a, np.ndarray)) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

    def _compute(self, layer, x_in, out_size) -> tuple:
        """(J_x, J_w, their centred differences, check_x, check_w, singular values of J_x and J_w) at x_in."""
        J_x, J_w = jacobians(layer, x_in)

        def f():
            return layer.forward(x_in)

        # the centred difference (f(x + eps e_j) - f(x - eps e_j)) / 2 eps of `cnnlab.jacobian.numerical_jacobian`
        # is the mean of the one-sided ones, which evaluate f at the same points: one set of evaluations serves both
        fwd_x, bwd_x = one_sided_jacobians(f, x_in, self.eps)
        num_x = (fwd_x + bwd_x) / 2
        check_x = compare_with_differences(J_x, num_x, fwd_x, bwd_x, atol=self.atol)
        params = layer.parameters()
        if params:
            sides = [one_sided_jacobians(f, p.data, self.eps) for p in params]
            fwd = np.concatenate([s[0] for s in sides], axis=1)
            bwd = np.concatenate([s[1] for s in sides], axis=1)
        else:
            fwd = bwd = np.zeros((out_size, 0))
        num_w = (fwd + bwd) / 2
        check_w = compare_with_differences(J_w, num_w, fwd, bwd, atol=self.atol)
        sv_x = np.linalg.svd(J_x, compute_uv=False)
        sv_w = np.linalg.svd(J_w, compute_uv=False) if J_w.size else np.zeros(0)
        return J_x, J_w, num_x, num_w, check_x, check_w, sv_x, sv_w

    @property
    def layer(self) -> Module:
        return self.net[self.layer_index]
