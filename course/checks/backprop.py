"""Self-checks for lesson 02 (back-propagation).

- `check_linear_backward(layer_cls)`: the backward pass of a Linear-like module, y = x W^T + b
  (dL/dx, dL/dW, dL/db), against centred finite differences of an independent forward pass.
- `check_algorithm_1(fn)`: Tomasi's Algorithm 1, one sample at a time with the running average, against
  the plain mean of the per-sample gradients.

Every check recognises the typical mistakes by name (a transposed weight gradient, a bias gradient
not summed over the batch, gradients accumulated with `+=`, a running sum instead of an average, a
kept reference to `p.grad`, ...) and says in one line what to change.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Sequential
from cnnlab.backprop import backprop_batched
from cnnlab.gradcheck import numerical_gradient
from cnnlab.layers import Linear, Sigmoid
from cnnlab.losses import CrossEntropyLoss
from . import CheckFailed, check_array, passed, run_student, same, student_array

__all__ = ["check_linear_backward", "check_algorithm_1"]


_same = partial(same, rtol=1e-6, atol=1e-9)


# --- exercise 1: the backward pass of a linear layer --------------------------------------------

N, IN, OUT = 5, 4, 3  # in != out, so that a transposed product has the wrong shape


def check_linear_backward(layer_cls) -> None:
    """`layer_cls(in_features, out_features)` must be a Module whose forward is y = x W^T + b and whose
    backward(dout) returns dL/dx (N, in) and overwrites weight.grad (out, in) and bias.grad (out,).

    The layer is checked in float64 with the scalar L = sum(y * G) for a random G, so dL/dy = G; the
    expected gradients are centred differences of L computed with an independent forward pass.
    """
    name = getattr(layer_cls, "__name__", "the layer")
    layer = run_student(lambda: layer_cls(IN, OUT), f"{name}({IN}, {OUT})")
    for attr in ("weight", "bias"):
        if not hasattr(getattr(layer, attr, None), "data"):
            raise CheckFailed(f"{name} has no Parameter `{attr}`: keep the __init__ of the exercise")
    rng = np.random.default_rng(2024)
    W, b = rng.standard_normal((OUT, IN)), rng.standard_normal(OUT)
    x, G = rng.standard_normal((N, IN)), rng.standard_normal((N, OUT))
    layer.weight.data, layer.bias.data = W.copy(), b.copy()
    layer.weight.grad, layer.bias.grad = np.zeros_like(W), np.zeros_like(b)

    def loss():  # independent of the student's code
        return np.sum((x @ W.T + b) * G)

    dx_num, dW_num, db_num = (numerical_gradient(loss, a) for a in (x, W, b))
    y = student_array(f"{name}.forward(x)", run_student(lambda: layer.forward(x.copy()), f"{name}.forward"))
    if not _same(y, x @ W.T + b):
        raise CheckFailed(f"{name}.forward was changed: it must return x @ weight.T + bias, shape ({N}, {OUT})")
    shape_hint = (f" (dout is (N, out) = {(N, OUT)}, x is (N, in) = {(N, IN)}, weight is (out, in) = {(OUT, IN)}: "
                  "choose the transposes so the shapes fit)")
    dx = run_student(lambda: layer.backward(G.copy()), f"{name}.backward",
                     hint=(("matmul", "broadcast", "shapes", "dimension"), shape_hint))
    dx = student_array(f"`dx` (what {name}.backward returns)", dx)
    if dx.shape != (N, IN):
        if dx.shape == (N, OUT):
            raise CheckFailed(f"backward returned shape {dx.shape}, the shape of dout; dL/dx must have the shape of "
                              f"x, {(N, IN)}: multiply dout by the weight, dout @ W")
        raise CheckFailed(f"backward returned shape {dx.shape}; dL/dx must have the shape of x, {(N, IN)}")
    check_array("dx (what backward returns)", dx, dx_num, rtol=1e-6, atol=1e-8)

    dW = student_array("`weight.grad`", layer.weight.grad)
    if dW.shape == (IN, OUT):
        raise CheckFailed(f"weight.grad has shape {dW.shape}, the transpose of the weight's {(OUT, IN)}: you computed "
                          "x.T @ dout; the weight is stored (out, in), so dL/dW = dout.T @ x")
    if dW.shape == (N, OUT, IN):
        raise CheckFailed(f"weight.grad has shape {dW.shape}, one gradient per example: sum them over the batch "
                          "(one matrix product dout.T @ x does it)")
    if dW.shape != (OUT, IN):
        raise CheckFailed(f"weight.grad should have the weight's shape {(OUT, IN)}, got {dW.shape}")
    if not np.any(dW):
        raise CheckFailed("weight.grad is all zeros: backward must write dL/dW into it")
    if _same(dW, dW_num / N):
        raise CheckFailed("weight.grad is 1/N of the right value: the loss already has its own reduction, so the "
                          "layer sums over the batch (dout.T @ x) and never divides by N")
    check_array("weight.grad", dW, dW_num, rtol=1e-6, atol=1e-8)

    db = student_array("`bias.grad`", layer.bias.grad)
    if db.shape == (N, OUT):
        raise CheckFailed(f"bias.grad has shape {db.shape}, one row per example: sum dout over the batch axis, "
                          "dout.sum(axis=0)")
    if db.shape == (OUT, 1) or db.shape == (1, OUT):
        raise CheckFailed(f"bias.grad has shape {db.shape}: it must be the bias's shape ({OUT},) (no keepdims)")
    if db.shape != (OUT,):
        raise CheckFailed(f"bias.grad should have the bias's shape ({OUT},), got {db.shape}")
    if not np.any(db):
        raise CheckFailed("bias.grad is all zeros: backward must write dL/db into it")
    if _same(db, db_num / N):
        raise CheckFailed("bias.grad is the mean of dout over the batch; it must be the sum, dout.sum(axis=0)")
    check_array("bias.grad", db, db_num, rtol=1e-6, atol=1e-8)

    run_student(lambda: (layer.forward(x.copy()), layer.backward(G.copy())), f"a second {name}.backward")
    if (_same(student_array("`weight.grad`", layer.weight.grad), 2 * dW_num)
            or _same(student_array("`bias.grad`", layer.bias.grad), 2 * db_num)):
        raise CheckFailed("after a second backward the gradients doubled: backward must overwrite .grad "
                          "(`=`), not add to it (`+=`)")
    passed(f"{name}.backward: dL/dx, dL/dW and dL/db match finite differences, and a second backward "
           "overwrites the gradients")


# --- exercise 2: Algorithm 1 ---------------------------------------------------------------------

def _algorithm_1_problem():
    """A small net, a loss and a data set: (make_net, X, y). The net is rebuilt identically on each call."""
    def make_net():
        return Sequential([Linear(3, 4, rng=11), Sigmoid(), Linear(4, 3, rng=12)]).astype(np.float64)

    rng = np.random.default_rng(7)
    X = rng.standard_normal((6, 3))
    y = np.array([0, 2, 1, 1, 0, 2])
    return make_net, X, y


def _fold(grads, step):
    """Apply a (possibly wrong) running-average rule avg <- step(avg, g_n, n) over a sequence of gradients."""
    avg = np.zeros_like(grads[0])
    for n, g in enumerate(grads, start=1):
        avg = step(avg, g, n)
    return avg


_MISTAKES = (
    (lambda a, g, n: a + g,
     "you summed the per-sample gradients: Algorithm 1 averages them, grad <- ((n - 1) grad + grad_n) / n"),
    (lambda a, g, n: g,
     "the result is the gradient of the LAST sample only: either each step replaced the average, or you "
     "kept references to p.grad (which every backward overwrites); combine a copy with the old average"),
    (lambda a, g, n: a + g / n,
     "you added grad_n / n without shrinking the old average by (n - 1) / n: "
     "grad <- ((n - 1) grad + grad_n) / n"),
    (lambda a, g, n: (n * a + g) / (n + 1),
     "off by one: that is the formula for n counted from 0, but the loop's n counts from 1 as in Algorithm 1: "
     "grad <- ((n - 1) grad + grad_n) / n"),
    (lambda a, g, n: (a + g) / 2,
     "(grad + grad_n) / 2 is an exponential average: old samples fade by half at every step instead of "
     "counting equally; use grad <- ((n - 1) grad + grad_n) / n"),
)


def check_algorithm_1(fn) -> None:
    """`fn(net, loss_fn, X, y)` must return dE/dw as a list with one array per parameter of `net`, the average
    over the N samples of the per-sample gradients (Tomasi's Algorithm 1, eq. (1)).

    The expected answer is the plain mean of N separate one-sample gradients, not a running average.
    """
    name = getattr(fn, "__name__", "your function")
    make_net, X, y = _algorithm_1_problem()
    reference = make_net()
    per_sample = [[g.copy() for g in backprop_batched(reference, CrossEntropyLoss(), X[i:i + 1], y[i:i + 1])]
                  for i in range(len(X))]
    names = [n for n, _ in reference.named_parameters()]
    expected = [np.mean([s[k] for s in per_sample], axis=0) for k in range(len(names))]

    net = make_net()
    result = run_student(lambda: fn(net, CrossEntropyLoss(), X.copy(), y.copy()), f"{name}(net, loss_fn, X, y)")
    if result is Ellipsis or result is None:
        student_array(f"what {name} returns", result)
    if isinstance(result, np.ndarray) or not hasattr(result, "__len__"):
        raise CheckFailed(f"{name} should return a list with one gradient array per parameter ({len(names)}: "
                          f"{', '.join(names)}), got {type(result).__name__}")
    if len(result) != len(names):
        raise CheckFailed(f"{name} returned {len(result)} arrays; the net has {len(names)} parameters "
                          f"({', '.join(names)}): return one gradient for each")
    # copies, taken at once: a later backward cannot change them
    got = [student_array(f"grad[{k}] ({n})", r) for k, (n, r) in enumerate(zip(names, result))]
    for k, (n, g, e) in enumerate(zip(names, got, expected)):
        if g.shape != e.shape:
            raise CheckFailed(f"grad[{k}] ({n}) has shape {g.shape} but the parameter has shape {e.shape}")
    if all(_same(g, e, rtol=1e-9, atol=1e-12) for g, e in zip(got, expected)):
        passed(f"{name} gives the average of the {len(X)} per-sample gradients for all {len(names)} parameters")
        return
    for step, message in _MISTAKES:
        wrong = [_fold([s[k] for s in per_sample], step) for k in range(len(names))]
        if all(_same(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, wrong)):
            raise CheckFailed(message)
    for k, (n, g, e) in enumerate(zip(names, got, expected)):
        check_array(f"grad[{k}] ({n})", g, e, rtol=1e-9, atol=1e-12)
