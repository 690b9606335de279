"""Self-checks for lesson 02 (back-propagation).

- `check_linear_backward(fn)`: `fn(dout, x, weight) -> (dx, dweight, dbias)`, the backward pass of
  y = x W^T + b for x with any leading axes, against cnnlab's Linear and centred finite differences.
- `check_backward_pass(fn)`: `fn(layers, dout) -> dx`, the backward recursion of Tomasi's Algorithm 1 over
  a list of layers, against cnnlab's Sequential and centred finite differences.
- `check_algorithm_1(fn)`: Tomasi's Algorithm 1, one sample at a time with the running average, against
  the plain mean of the per-sample gradients.

Every check recognises the typical mistakes by name (a transposed weight gradient, dx through W^T, a bias
gradient not summed over the batch, layers walked forwards, a recursion that stops before the first
layer, a running sum instead of an average, ...) and says in one line what to change.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab import Sequential
from cnnlab.backprop import backprop_batched
from cnnlab.gradcheck import numerical_gradient
from cnnlab.layers import Linear, Sigmoid, Tanh
from cnnlab.losses import CrossEntropyLoss
from . import CheckFailed, check_array, name_mistake, passed, placeholder, run_student, same, student_array

__all__ = ["check_linear_backward", "check_backward_pass", "check_algorithm_1"]


_same = partial(same, rtol=1e-6, atol=1e-9)


def _name_mistake(got, mistakes, right, prefix=""):
    name_mistake(got, mistakes, _same, right=right, prefix=prefix)


# --- exercise 1: the backward pass of a linear layer --------------------------------------------

# (x shape, out_features): non-square first (a transposed product has the wrong shape), then square (it has the
# right shape and wrong values), leading axes (the batch is every axis but the last), and a batch of one.
_LINEAR_CASES = (((5, 4), 3), ((3, 4), 4), ((2, 3, 5), 2), ((1, 4), 3))


def _linear_reference(x, W, b, G):
    """cnnlab's Linear on (x, W, b) with dL/dy = G: (dx, dweight, dbias)."""
    layer = Linear(W.shape[1], W.shape[0], rng=0).astype(np.float64)
    layer.weight.data[...], layer.bias.data[...] = W, b
    layer.forward(x.copy())
    dx = layer.backward(G.copy())
    return dx, layer.weight.grad.copy(), layer.bias.grad.copy()


def check_linear_backward(fn) -> None:
    """`fn(dout, x, weight)` must return (dx, dweight, dbias) for y = x W^T + b: dx of x's shape (*, in),
    dweight of the weight's shape (out, in) and dbias of shape (out,), both summed over every leading axis.

    Runs in float64 on several shapes; the expected values come from cnnlab's Linear, and on the first
    shape also from centred differences of L = sum(y * dout).
    """
    name = getattr(fn, "__name__", "your function")
    rng = np.random.default_rng(2024)
    for case, (shape, out) in enumerate(_LINEAR_CASES):
        n_in = shape[-1]
        x, W = rng.standard_normal(shape), rng.standard_normal((out, n_in))
        b, G = rng.standard_normal(out), rng.standard_normal(shape[:-1] + (out,))
        where = f" (x of shape {shape}, weight {W.shape})"
        hint = (("matmul", "broadcast", "shapes", "dimension", "align"),
                f"; dout is {G.shape}, x is {shape}, weight is {W.shape}: choose the transposes so the shapes fit "
                "(with the samples as rows, each column formula is transposed: (A B)^T = B^T A^T)"
                + ("; with leading axes, make every axis but the last one batch axis first "
                   "(reshape(-1, in_features))" if len(shape) > 2 else ""))
        result = run_student(lambda: fn(G.copy(), x.copy(), W.copy()), f"{name}(dout, x, weight){where}",
                             hint=hint, fn=fn)
        placeholder(f"what {name} returns", result)
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise CheckFailed(f"{name} should return three arrays, (dx, dweight, dbias), got "
                              f"{type(result).__name__}{f' of length {len(result)}' if hasattr(result, '__len__') else ''}")
        dx, dW, db = (student_array(f"`{k}`", r) for k, r in zip(("dx", "dweight", "dbias"), result))
        ref_dx, ref_dW, ref_db = _linear_reference(x, W, b, G)
        x2, G2 = x.reshape(-1, n_in), G.reshape(-1, out)
        rows = len(x2)

        if dx.shape == G.shape and dx.shape != x.shape:
            raise CheckFailed(f"dx has shape {dx.shape}, the shape of dout{where}; dL/dx has the shape of x: "
                              "multiply dout by the weight")
        if dx.shape == (rows, n_in) and dx.shape != x.shape:
            raise CheckFailed(f"dx has shape {dx.shape}{where}: give it back the leading axes of x, dx of shape {shape}")
        _name_mistake(dx, [(G @ W.T if W.shape[0] == W.shape[1] else None,
                            "dx was computed with W^T: per sample dL/dx = W^T delta is a column; with the samples "
                            "stored as rows that is its transpose, delta^T W, and no W^T")], ref_dx)
        check_array(f"dx{where}", dx, ref_dx, rtol=1e-6, atol=1e-8)

        transposed = ("dweight is the transpose of dL/dW: that is x^T dout; the weight is stored (out, in), "
                      "so dL/dW = dout^T x (Bouvrie's delta x^T, summed over the samples)")
        if dW.shape == (n_in, out) and n_in != out:
            raise CheckFailed(f"dweight has shape {dW.shape}{where}: {transposed}")
        if dW.ndim > 2 and dW.shape[-2:] == (out, n_in):
            raise CheckFailed(f"dweight has shape {dW.shape}{where}, one gradient per sample or group of samples: "
                              "sum them over every leading axis, into the weight's shape")
        if dW.shape != W.shape:
            raise CheckFailed(f"dweight should have the weight's shape {W.shape}, got {dW.shape}{where}")
        _name_mistake(dW, [(x2.T @ G2, transposed),
                           (ref_dW / rows, f"dweight is the average over the {rows} input rows: the loss already "
                                           "has its own reduction (in dout), so the layer sums over them")], ref_dW)
        check_array(f"dweight{where}", dW, ref_dW, rtol=1e-6, atol=1e-8)

        if db.ndim == 0:
            raise CheckFailed("dbias is a single number: you summed dout over everything; sum over the samples "
                              f"only, one entry per output ({out},)")
        if db.shape == G.shape:
            raise CheckFailed(f"dbias has shape {db.shape}, the shape of dout{where}: the bias gradient is not "
                              "summed over the batch (Bouvrie's eq. (3) is per sample; add them up)")
        if db.size == out and db.shape != (out,):
            raise CheckFailed(f"dbias has shape {db.shape}: it must have the bias's shape ({out},) (no keepdims)")
        if db.ndim > 1 and db.shape[-1] == out:
            raise CheckFailed(f"dbias has shape {db.shape}{where}: you summed over the first axis only; with "
                              "leading axes every axis but the last is a batch axis: sum over all of them")
        if db.shape != (out,):
            raise CheckFailed(f"dbias should have the bias's shape ({out},), got {db.shape}{where}")
        _name_mistake(db, [(ref_db / rows, "dbias is the mean of dout over the batch; it must be the sum "
                                           "(the loss already divided by N, in dout)")], ref_db)
        check_array(f"dbias{where}", db, ref_db, rtol=1e-6, atol=1e-8)

        if case == 0:  # the same three against centred differences of L = sum(y * G), independent of cnnlab
            def loss():
                return np.sum((x @ W.T + b) * G)
            for label, got, at in (("dx", dx, x), ("dweight", dW, W), ("dbias", db, b)):
                check_array(f"{label} against finite differences{where}", got, numerical_gradient(loss, at),
                            rtol=1e-6, atol=1e-7)  # L is linear in each: the centred difference is exact to rounding
    passed(f"{name}: dx, dweight and dbias match cnnlab's Linear and finite differences for a batch of one, "
           "non-square and square weights and inputs with leading axes")


# --- exercise 2: the backward recursion ----------------------------------------------------------

def _backward_problem():
    """[Linear(3, 5), Tanh, Linear(5, 4), Sigmoid, Linear(4, 2)] in float64, rebuilt identically on each call."""
    return [Linear(3, 5, rng=21), Tanh(), Linear(5, 4, rng=22), Sigmoid(), Linear(4, 2, rng=23)]


def _recording(layers, calls):
    """Make every layer append (its index, a copy of the dout it got) to `calls` when its backward runs."""
    for i, layer in enumerate(layers):
        def backward(dout, i=i, inner=layer.backward):
            calls.append((i, np.array(dout, dtype=float, copy=True) if isinstance(dout, np.ndarray) else dout))
            return inner(dout)
        layer.backward = backward  # an instance attribute: layer.backward and Sequential(layers) both find it


def _name_walk(calls, G, handed_in, L):
    """CheckFailed naming what is wrong with the order of the backward calls or the douts handed down."""
    order = [i for i, _ in calls]
    if not order:
        raise CheckFailed("no layer's backward was called: call each layer's backward, last layer first")
    if order[0] == 0 and L > 1:
        raise CheckFailed("you walked the layers forwards: the recursion starts at the LAST layer, whose output "
                          "the loss saw, and goes down to the first (reversed(layers))")
    for i, dout in calls[1:]:
        if i < L - 1 and isinstance(dout, np.ndarray) and same(dout, G, rtol=0, atol=0):
            raise CheckFailed(f"layers[{i}] was given the original dout: every layer must get what the layer above "
                              "returned (dL/d its output), so pass each backward's result on to the next call")
    if order == list(range(L - 1, 0, -1)):
        raise CheckFailed("the recursion stopped before the first layer: layers[0] never ran backward, so its "
                          "weight gradient was never written (Tomasi's loop l = L, ..., 2 leaves layer 1 out: "
                          "go down to the first layer)")
    if order == [L - 1] and L > 1:
        raise CheckFailed(f"only layers[{L - 1}] ran backward: is the `return` inside the loop? Walk every layer, "
                          "then return")
    if order != list(range(L - 1, -1, -1)):
        raise CheckFailed(f"the layers' backward ran in the order {order}; each must run once, from "
                          f"layers[{L - 1}] down to layers[0]")
    for i, dout in calls:
        if not (isinstance(dout, np.ndarray) and _same(dout, handed_in[i])):
            raise CheckFailed(f"layers[{i}] was not given what layers[{i + 1}].backward returned: pass each "
                              "result on, unchanged, as the next layer's dout")


def check_backward_pass(fn) -> None:
    """`fn(layers, dout)` must call each layer's backward from the last to the first, hand each one's result
    down as the next dout, and return dL/dx of the first layer's input; every layer's .grad is then written.

    Runs [Linear(3, 5), Tanh, Linear(5, 4), Sigmoid, Linear(4, 2)] in float64 on a batch of one, a batch of
    four and an input with leading axes; the expected values come from cnnlab's Sequential, and on the
    first input also from centred differences of L = sum(out * dout).
    """
    name = getattr(fn, "__name__", "your function")
    rng = np.random.default_rng(5)
    for case, shape in enumerate(((1, 3), (4, 3), (2, 3, 3))):
        x = rng.standard_normal(shape)
        reference = Sequential(_backward_problem()).astype(np.float64)
        G = rng.standard_normal(shape[:-1] + (2,))
        handed_in, handed_out = {}, {}  # what cnnlab's backward of each layer got and returned
        for i, layer in enumerate(reference):
            def keep(module, dx, dout, i=i):
                handed_in[i], handed_out[i] = dout[0].copy(), dx[0].copy()
            layer.register_full_backward_hook(keep)
        reference(x.copy())
        ref_dx = reference.backward(G.copy())

        layers = [layer.astype(np.float64) for layer in _backward_problem()]
        out = x.copy()
        for layer in layers:
            out = layer(out)
            for p in layer.parameters():
                p.grad[...] = np.nan  # a gradient nobody wrote stays NaN
        calls = []
        _recording(layers, calls)
        L, where = len(layers), f" (input of shape {shape})"
        try:
            result = run_student(lambda: fn(list(layers), G.copy()), f"{name}(layers, dout){where}", fn=fn)
        except CheckFailed:
            if calls:
                _name_walk(calls, G, handed_in, L)
            raise
        if result is Ellipsis or (result is None and not calls):
            placeholder(f"what {name} returns", result)
        _name_walk(calls, G, handed_in, L)
        dx = student_array(f"what {name} returns", result)
        if _same(dx, G):
            raise CheckFailed(f"{name} returned the dout it was given: return dL/dx of the first layer's input, "
                              "what the last backward call (layers[0]'s) returned")
        for k in range(1, L):
            if _same(dx, handed_out[k]):
                raise CheckFailed(f"{name} returned what layers[{k}].backward returned, the gradient at the input "
                                  f"of layer {k + 1}: return the gradient at the input of the first layer, "
                                  "what layers[0].backward returned")
        check_array(f"dL/dx{where}", dx, ref_dx, rtol=1e-9, atol=1e-12)
        for i, (layer, ref) in enumerate(zip(layers, reference)):
            for (pname, p), q in zip(layer.named_parameters(), ref.parameters()):
                check_array(f"layers[{i}].{pname}.grad{where}", p.grad, q.grad, rtol=1e-9, atol=1e-12)

        if case == 0:  # dL/dx and the first layer's weight gradient against centred differences
            net = Sequential(_backward_problem()).astype(np.float64)
            x_fd = x.copy()

            def loss():
                return np.sum(net(x_fd) * G)
            check_array(f"dL/dx against finite differences{where}", dx, numerical_gradient(loss, x_fd),
                        rtol=1e-6, atol=1e-8)  # centred difference error ~ eps^2 * (third derivative): far below
            check_array(f"layers[0].weight.grad against finite differences{where}", layers[0].weight.grad,
                        numerical_gradient(loss, net[0].weight.data), rtol=1e-6, atol=1e-8)
    passed(f"{name}: every layer's backward ran once, last to first, each got the gradient from the layer above, "
           "and dL/dx and every parameter gradient match cnnlab's Sequential and finite differences")


# --- exercise 3: Algorithm 1 ---------------------------------------------------------------------

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
    if not any(np.any(g) for g in got):
        raise CheckFailed(f"every gradient {name} returned is zero: no backward wrote into p.grad (if it calls "
                          "your backward_pass of Exercise 2, finish that one first)")
    if all(_same(g, e, rtol=1e-9, atol=1e-12) for g, e in zip(got, expected)):
        passed(f"{name} gives the average of the {len(X)} per-sample gradients for all {len(names)} parameters")
        return
    for step, message in _MISTAKES:
        wrong = [_fold([s[k] for s in per_sample], step) for k in range(len(names))]
        if all(_same(g, w, rtol=1e-9, atol=1e-12) for g, w in zip(got, wrong)):
            raise CheckFailed(message)
    for k, (n, g, e) in enumerate(zip(names, got, expected)):
        check_array(f"grad[{k}] ({n})", g, e, rtol=1e-9, atol=1e-12)
