"""Checking hand-written backward passes against finite differences.

Bouvrie §4.4: it is easy to make mistakes in back-propagation and still have a network that
seems to learn, so compare the gradients it returns with centred ("second-order") differences

    dL/dw_i ~ (L(w_i + eps) - L(w_i - eps)) / (2 eps),

whose error is O(eps^2) instead of the O(eps) of a one-sided difference. The other error is
rounding: the outputs carry errors of ~1e-16 of their size, divided by 2 eps. In float64 with
eps = 1e-6 a correct smooth layer typically agrees to 1e-8..1e-7 (elementwise, see `rel_error`);
eps = 1e-5 balances the two errors better for smooth layers, and a layer that is linear in the
checked tensor (Linear, Conv2d, AvgPool2d, Subsample2d) has no truncation error at all, so a larger eps only
helps there. Piecewise-linear layers (ReLU, max pooling) are exact as long as no input is within
eps of a kink or a tie. Differences cost two forward passes per number checked (O(W^2) work for
W weights: a check, never a training method), so check small tensors.

To check a module whose output is a whole array, `gradcheck` reduces it to a scalar with a random
upstream gradient G: L = sum(forward(x) * G). Then dL/dout = G exactly, so `backward(G)` must
return dL/dx and leave dL/dw in every parameter's `.grad`; a random G exercises every output.

Functions:
- centered_differences(evaluate, x, eps, ...) -> the loop behind every finite difference of an array
- numerical_gradient(f, x, eps=1e-6) -> array like x
- rel_error(a, b) -> float
- gradcheck(module, x, rng=None, eps=1e-6, rtol=1e-5) -> GradcheckReport
- gradcheck_network(net, x, loss_fn=None, target=None, rng=None, eps=1e-6, rtol=1e-5) -> GradcheckReport
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.module import Module
from cnnlab.rng import as_generator

__all__ = ["numerical_gradient", "centered_differences", "rel_error", "gradcheck", "gradcheck_network",
           "GradcheckReport", "GradcheckRow"]

_TINY = np.finfo(np.float64).tiny


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Centred finite differences of a scalar function with respect to an array.

    Inputs:
    - f: a function of no arguments returning a scalar; it must read `x` (e.g. a closure over a
      layer whose parameter is x, or over the input x).
    - x: a writable float array; each entry is perturbed in place by +eps and -eps, one at a time,
      and restored to its exact original value afterwards.
    - eps: the step.

    Returns a float64 array of the shape of x with grad[i] = (f(x_i + eps) - f(x_i - eps)) / step,
    where step is the difference actually stored in x (2*eps up to rounding in x's dtype).
    """
    return centered_differences(lambda: _scalar(f()), x, eps)


def centered_differences(evaluate, x: np.ndarray, eps: float, difference=np.subtract, *,
                        step: str = "stored", name: str = "numerical_gradient") -> np.ndarray:
    """The one finite-difference loop: perturb each entry of x by +eps and -eps, in place.

    Inputs:
    - evaluate: a function of no arguments that reads x (a closure), returning a scalar or an array.
    - x: a writable float array; each entry is set to x_i + eps, then x_i - eps, one at a time, and
      restored to its exact original value afterwards (also when evaluate raises).
    - eps: the step, > 0.
    - difference: difference(value at x_i + eps, value at x_i - eps), default up - down.
    - step: the divisor: "stored" = the difference actually stored in x ((x_i + eps) - (x_i - eps)
      in x's dtype, which is what the perturbation really was), or "nominal" = 2 * eps.
    - name: the caller's name, for error messages.
    Returns a float64 array of shape x.shape + difference's shape, entry i = difference / step: the
    gradient (shape of x) for a scalar evaluate, entry (i, k) = d out_k / d x_i for an array.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{name} needs x as a float numpy array, got {got}")
    if not x.flags.writeable:
        raise ValueError(f"{name} perturbs x in place, but x is read-only")
    if not eps > 0:
        raise ValueError(f"{name} needs eps > 0, got {eps}")
    if step not in ("stored", "nominal"):
        raise ValueError(f'step must be "stored" or "nominal", got {step!r}')
    result = None
    for idx in np.ndindex(x.shape):
        old = x[idx].copy()
        try:
            x[idx] = old + eps
            up, value_up = float(x[idx]), evaluate()
            x[idx] = old - eps
            down, value_down = float(x[idx]), evaluate()
        finally:
            x[idx] = old
        change = np.asarray(difference(value_up, value_down), dtype=np.float64)
        if result is None:
            result = np.zeros(x.shape + change.shape, dtype=np.float64)
        result[idx] = change / ((up - down) if step == "stored" else 2 * eps)
    return np.zeros(x.shape, dtype=np.float64) if result is None else result


def _numerical_vjp(forward, x, g, eps):
    """Centred differences of L = sum(forward() * g), with the outputs subtracted before summing.

    Same quantity as numerical_gradient(lambda: np.sum(forward() * g), x, eps), but subtracting
    the two outputs first cancels the outputs that x_i does not touch exactly, instead of
    leaving the rounding error of two large sums: typically 2 to 10 times more accurate.
    """
    return centered_differences(lambda: np.array(forward(), dtype=np.float64, copy=True), x, eps,
                                lambda up, down: np.sum((up - down) * g))


def _scalar(value) -> float:
    if np.ndim(value) != 0:
        raise TypeError(f"numerical_gradient: f() must return a scalar, got an array of shape {np.shape(value)}")
    return float(value)


def rel_error(a, b) -> float:
    """Largest elementwise relative error between two arrays of the same shape.

        rel_error(a, b) = max_i |a_i - b_i| / max(|a_i| + |b_i|, tiny)

    with tiny the smallest positive normal float64 (~2.2e-308), which only guards 0 / 0 (where
    a_i = b_i = 0 the error is 0). The value lies in [0, 1]: 1 means opposite signs or one of the
    two is zero while the other is not. Dividing entry by entry (rather than by the largest entry)
    catches a wrong small gradient next to large ones. Returns 0.0 for empty arrays.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs arrays of the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), _TINY)))


@dataclass(frozen=True)
class GradcheckRow:
    """One checked tensor: its name ("input", "weight", "0.bias"), shape and errors."""
    name: str
    shape: tuple
    max_rel_error: float
    max_abs_error: float
    passed: bool
    layer: str = ""  # which layer of a network (gradcheck_network), "" for a single module


@dataclass(frozen=True)
class GradcheckReport:
    """The result of a gradient check: one row per tensor; `ok` when every row passed.

    `report["weight"]` returns the row of that tensor (the first one with that name).
    """
    rows: tuple
    eps: float
    rtol: float
    title: str = ""

    @property
    def ok(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def max_rel_error(self) -> float:
        return max((row.max_rel_error for row in self.rows), default=0.0)

    @property
    def max_abs_error(self) -> float:
        return max((row.max_abs_error for row in self.rows), default=0.0)

    def __getitem__(self, name: str) -> GradcheckRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no tensor named {name!r} in this report; tensors: {[r.name for r in self.rows]}")

    def __str__(self) -> str:
        with_layer = any(row.layer for row in self.rows)
        header = (("layer",) if with_layer else ()) + ("tensor", "shape", "max rel error", "max abs error", "passed")
        body = [((row.layer,) if with_layer else ()) + (
            row.name, str(row.shape), f"{row.max_rel_error:.2e}", f"{row.max_abs_error:.2e}",
            "yes" if row.passed else "NO") for row in self.rows]
        widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        verdict = "OK" if self.ok else "FAILED"
        lines = [f"gradcheck {self.title} (eps={self.eps:g}, rtol={self.rtol:g}): {verdict}".replace("  ", " "),
                 fmt.format(*header).rstrip()]
        lines += [fmt.format(*line).rstrip() for line in body]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"GradcheckReport(ok={self.ok}, max_rel_error={self.max_rel_error:.2e}, "
                f"tensors={[row.name for row in self.rows]})")


def _require_float64(module: Module, x) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.float64:
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"gradcheck needs a float64 input (float32 differences are too coarse), got {got}; "
                        "pass x.astype(np.float64)")
    wrong = [f"{name} ({p.dtype})" for name, p in module.named_parameters() if p.dtype != np.float64]
    if wrong:
        raise TypeError(f"gradcheck needs a float64 module, but parameters {', '.join(wrong)} are not; "
                        "call module.astype(np.float64) first")


def _row(name, analytic, numeric, rtol, layer="") -> GradcheckRow:
    err = rel_error(analytic, numeric)
    abs_err = float(np.max(np.abs(analytic - numeric))) if analytic.size else 0.0
    return GradcheckRow(name, tuple(analytic.shape), err, abs_err, err <= rtol, layer)


def _check(module, x, numeric_grad, backward, rtol, layer=""):
    """Compare backward() (which returns dx and fills .grad) with numeric_grad(array) for x and each parameter."""
    analytic = [("input", np.array(backward(), dtype=np.float64, copy=True))]
    analytic += [(name, np.array(p.grad, dtype=np.float64, copy=True)) for name, p in module.named_parameters()]
    numeric = [numeric_grad(x)] + [numeric_grad(p.data) for _, p in module.named_parameters()]
    backward()  # leave values and gradients of the unperturbed point in the module
    return [_row(name, a, n, rtol, layer) for (name, a), n in zip(analytic, numeric)]


def gradcheck(module: Module, x: np.ndarray, rng=None, eps: float = 1e-6, rtol: float = 1e-5) -> GradcheckReport:
    """Check a module's backward (input and parameter gradients) against centred differences.

    Inputs:
    - module: a float64 Module (call `.astype(np.float64)` first); checked in its current mode
      (train or eval), so put stochastic layers such as Dropout in eval mode or give them a fixed
      mask; a forward pass that changes between two calls is refused.
    - x: float64 input of any shape the module accepts (not modified: a copy is perturbed).
    - rng: Generator, int seed or None (cnnlab's library generator, see `cnnlab.manual_seed`) for
      the random upstream gradient G.
    - eps: finite-difference step; rtol: the largest max relative error (see `rel_error`) that
      passes. The default 1e-5 leaves room for entries with small gradients (their relative
      error is largest); correct layers checked on small inputs typically reach 1e-8.

    Returns a GradcheckReport with rows "input" (dL/dx) and one per parameter (its dotted name),
    for the scalar L = sum(module.forward(x) * G).
    """
    _require_float64(module, x)
    x = np.array(x, copy=True)
    out = module.forward(x)
    if not isinstance(out, np.ndarray) or out.dtype != np.float64:
        raise TypeError(f"gradcheck: {type(module).__name__}.forward returned "
                        f"{getattr(out, 'dtype', type(out).__name__)} for a float64 input; expected float64")
    if not np.array_equal(out, module.forward(x), equal_nan=True):
        raise ValueError(f"gradcheck: {type(module).__name__}.forward gives different outputs for the same input "
                         "(a Dropout in training mode?); call .eval() or fix its randomness before checking")
    g = as_generator(rng, "gradcheck").standard_normal(out.shape)

    def backward():
        module.forward(x)
        return module.backward(g)

    rows = _check(module, x, lambda a: _numerical_vjp(lambda: module.forward(x), a, g, eps), backward, rtol)
    return GradcheckReport(tuple(rows), eps, rtol, title=type(module).__name__)


def gradcheck_network(net, x: np.ndarray, loss_fn=None, target=None, rng=None, eps: float = 1e-6,
                      rtol: float = 1e-5) -> GradcheckReport:
    """Check every layer of a Sequential at the input it receives inside the network.

    Inputs:
    - net: a float64 `cnnlab.Sequential` (checked in its current mode).
    - x: float64 input of the network.
    - loss_fn, target: optional; a loss with the `cnnlab.losses` contract (`forward(pred, target)`
      returns the scalar loss, `backward()` its gradient w.r.t. pred). When given, the whole chain
      net + loss is also checked end to end (rows of layer "network+loss", parameters by their
      dotted names "0.weight", ...).
    - rng, eps, rtol: as in `gradcheck` (each layer gets its own random upstream gradient).

    Returns one GradcheckReport; its rows carry the layer ("0: Conv2d", ...) they belong to.
    """
    from cnnlab.sequential import Sequential

    if not isinstance(net, Sequential):
        raise TypeError(f"gradcheck_network expects a cnnlab.Sequential, got {type(net).__name__}; "
                        "use gradcheck(module, x) for a single module")
    _require_float64(net, x)
    if loss_fn is not None and target is None:
        raise ValueError("gradcheck_network: a loss_fn needs its target (target=...)")
    gen = as_generator(rng, "gradcheck_network")
    rows = []
    h = np.array(x, copy=True)
    for i, layer in enumerate(net):
        report = gradcheck(layer, h, rng=gen, eps=eps, rtol=rtol)
        label = f"{i}: {type(layer).__name__}"
        rows += [GradcheckRow(r.name, r.shape, r.max_rel_error, r.max_abs_error, r.passed, label) for r in report.rows]
        h = layer.forward(h)
    if loss_fn is not None:
        x = np.array(x, copy=True)

        def loss():
            return loss_fn.forward(net.forward(x), target)

        def backward():
            loss()
            return net.backward(loss_fn.backward())

        rows += _check(net, x, lambda a: numerical_gradient(loss, a, eps), backward, rtol, layer="network+loss")
    return GradcheckReport(tuple(rows), eps, rtol, title=f"network of {len(net)} layers")
