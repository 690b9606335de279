"""Lesson 02's self-checks: the right answer passes, each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.backprop import check_algorithm_1, check_backward_pass, check_linear_backward


# --- exercise 1: linear_backward ----------------------------------------------------------------

def right(dout, x, weight):
    """Written entry by entry (y_...j = sum_i x_...i W_ji + b_j), not as the lesson's matrix products."""
    axes = "abcdefgh"[:x.ndim - 1]
    return (np.einsum(f"{axes}j,ji->{axes}i", dout, weight), np.einsum(f"{axes}j,{axes}i->ji", dout, x),
            np.einsum(f"{axes}j->j", dout))


def test_the_right_linear_backward_passes(capsys):
    check_linear_backward(right)
    assert "\u2713" in capsys.readouterr().out


def replaced(index, compute):
    """The right answer with one of (dx, dweight, dbias) computed by `compute(dout, x, weight)` instead."""
    def backward(dout, x, weight):
        result = list(right(dout, x, weight))
        result[index] = compute(dout, x, weight)
        return tuple(result)
    return backward


@pytest.mark.parametrize("fn, message", [
    # dweight transposed: wrong shape for the non-square weight, wrong values for the square one
    (replaced(1, lambda d, x, w: x.reshape(-1, w.shape[1]).T @ d.reshape(-1, w.shape[0])),
     r"dweight has shape \(4, 3\).*transpose of dL/dW.*x\^T dout"),
    (lambda d, x, w: (d @ w, (x.T @ d).T if x.ndim == 2 and w.shape[0] != w.shape[1] else x.T @ d, d.sum(axis=0)),
     r"^dweight is the transpose of dL/dW: that is x\^T dout"),
    # dx through W^T: a shape error for the non-square weight, wrong values for the square one
    (replaced(0, lambda d, x, w: d @ w.T), r"raised ValueError.*choose the transposes so the shapes fit"),
    (replaced(0, lambda d, x, w: d @ w.T if w.shape[0] == w.shape[1] else d @ w), r"dx was computed with W\^T"),
    (replaced(0, lambda d, x, w: d), r"dx has shape \(5, 3\), the shape of dout.*multiply dout by the weight"),
    # the bias gradient not summed over the batch, or averaged
    (replaced(2, lambda d, x, w: d), r"dbias has shape \(5, 3\), the shape of dout.*not summed over the batch"),
    (replaced(2, lambda d, x, w: d.reshape(-1, w.shape[0]).mean(axis=0)), r"dbias is the mean of dout.*sum"),
    (replaced(2, lambda d, x, w: d.sum()), r"dbias is a single number: you summed dout over everything"),
    (replaced(2, lambda d, x, w: d.sum(axis=0)), r"dbias has shape \(3, 2\).*summed over the first axis only"),
    (replaced(2, lambda d, x, w: d.reshape(-1, w.shape[0]).sum(axis=0, keepdims=True)), r"no keepdims"),
    # the weight gradient averaged, or not summed over the leading axes
    (replaced(1, lambda d, x, w: d.reshape(-1, w.shape[0]).T @ x.reshape(-1, w.shape[1]) / d.size * w.shape[0]),
     r"dweight is the average over the 5 input rows"),
    (replaced(1, lambda d, x, w: np.swapaxes(d, -1, -2) @ x if x.ndim > 2 else d.T @ x),
     r"dweight has shape \(2, 2, 5\).*one gradient per sample or group.*every leading axis"),
    # the batch's leading axes: lost in dx, or a product that does not handle them
    (lambda d, x, w: (d.reshape(-1, w.shape[0]) @ w,) + right(d, x, w)[1:], r"dx has shape \(6, 5\).*leading axes"),
    (lambda d, x, w: (d @ w, d.T @ x, d.sum(axis=0)), r"\(2, 3, 5\).*raised ValueError.*reshape\(-1, in_features\)"),
    # a batch of one squeezed away
    (replaced(0, lambda d, x, w: np.squeeze(d @ w)), r"dx \(x of shape \(1, 4\).*should have shape \(1, 4\), got \(4,\)"),
    (replaced(0, lambda d, x, w: 2 * (d @ w)), r"dx \(x of shape \(5, 4\).*\[0, 0\] is .* but should be"),
])
def test_linear_backward_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_linear_backward(fn)


@pytest.mark.parametrize("fn, message", [
    (lambda d, x, w: ..., r"still Ellipsis"),
    (lambda d, x, w: (..., ..., ...), r"`dx` is still Ellipsis"),
    (lambda d, x, w: None, r"still None \(did you forget `return`\?\)"),
    (lambda d, x, w: d @ w, r"should return three arrays, \(dx, dweight, dbias\), got ndarray of length 5"),
    (lambda d, x, w: ("dx", "dW", "db"), r"`dx` should be a numeric array, got str"),
    (lambda d, x, w: 1 / 0, r"raised ZeroDivisionError"),
])
def test_linear_backward_bad_returns_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_linear_backward(fn)


def test_the_linear_placeholder_is_named():
    def placeholder_with_a_crash(dout, x, weight):  # the student filled in one line that uses another `...`
        dx = ...
        return dx @ weight, ..., ...

    with pytest.raises(CheckFailed, match=r"still contains `...`"):
        check_linear_backward(placeholder_with_a_crash)


# --- exercise 2: backward_pass ------------------------------------------------------------------

def right_pass(layers, dout):
    """Indices from the top, as Tomasi writes the loop, but down to the first layer."""
    gradients = [dout]
    for index in range(len(layers) - 1, -1, -1):
        gradients.append(layers[index].backward(gradients[-1]))
    return gradients[-1]


def test_the_right_backward_pass_passes(capsys):
    check_backward_pass(right_pass)
    assert "\u2713" in capsys.readouterr().out


def test_handing_the_list_to_sequential_also_passes(capsys):
    from cnnlab import Sequential

    check_backward_pass(lambda layers, dout: Sequential(layers).backward(dout))
    assert "\u2713" in capsys.readouterr().out


def forwards(layers, dout):
    for layer in layers:
        dout = layer.backward(dout)
    return dout


def stops_before_layer_1(layers, dout):  # Tomasi's l = L, ..., 2 read literally
    for l in range(len(layers), 1, -1):
        dout = layers[l - 1].backward(dout)
    return dout


def original_dout(layers, dout):
    dx = dout
    for layer in reversed(layers):
        dx = layer.backward(dout)
    return dx


def returns_the_second_layers_dx(layers, dout):
    handed_down = [dout]
    for layer in reversed(layers):
        handed_down.append(layer.backward(handed_down[-1]))
    return handed_down[-2]


def returns_the_top_layers_dx(layers, dout):
    first = None
    for layer in reversed(layers):
        dout = layer.backward(dout)
        first = dout if first is None else first
    return first


def returns_dout(layers, dout):
    g = dout
    for layer in reversed(layers):
        g = layer.backward(g)
    return dout


def returns_inside_the_loop(layers, dout):
    for layer in reversed(layers):
        return layer.backward(dout)


def twice(layers, dout):
    right_pass(layers, dout)
    return right_pass(layers, dout)


def no_return(layers, dout):
    for layer in reversed(layers):
        dout = layer.backward(dout)


@pytest.mark.parametrize("fn, message", [
    (forwards, r"^you walked the layers forwards.*reversed\(layers\)"),
    (stops_before_layer_1, r"^the recursion stopped before the first layer: layers\[0\] never ran backward"),
    (original_dout, r"^layers\[3\] was given the original dout.*pass each backward's result on"),
    (returns_the_second_layers_dx, r"returned what layers\[1\].backward returned.*input of layer 2"),
    (returns_the_top_layers_dx, r"returned what layers\[4\].backward returned"),
    (returns_dout, r"returned the dout it was given"),
    (returns_inside_the_loop, r"only layers\[4\] ran backward: is the `return` inside the loop"),
    (twice, r"ran in the order \[4, 3, 2, 1, 0, 4, 3, 2, 1, 0\]"),
    (no_return, r"still None \(did you forget `return`\?\)"),
    (lambda layers, dout: ..., r"still Ellipsis"),
    (lambda layers, dout: None, r"still None"),
    (lambda layers, dout: layers.backward(dout), r"raised AttributeError"),
])
def test_backward_pass_mistakes_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_backward_pass(fn)


def test_a_changed_gradient_on_the_way_down_is_named():
    def doubled(layers, dout):
        for i, layer in enumerate(reversed(layers)):
            dout = layer.backward(dout) * (2 if i == 1 else 1)
        return dout

    with pytest.raises(CheckFailed, match=r"layers\[2\] was not given what layers\[3\].backward returned"):
        check_backward_pass(doubled)


# --- exercise 3: Algorithm 1 --------------------------------------------------------------------

def algorithm_1_with(step):
    """Algorithm 1 as in the exercise, with grad <- step(grad, p_grad, n) as the student's line."""
    def algorithm_1(net, loss_fn, X, y):
        params = net.parameters()
        grad = [np.zeros_like(p.data) for p in params]
        for n in range(1, len(X) + 1):
            loss_fn.forward(net.forward(X[n - 1:n]), y[n - 1:n])
            net.backward(loss_fn.backward())
            grad = [step(g, p.grad, n) for g, p in zip(grad, params)]
        return grad
    return algorithm_1


def test_the_right_algorithm_1_passes(capsys):
    check_algorithm_1(algorithm_1_with(lambda g, pg, n: ((n - 1) * g + pg) / n))
    assert "\u2713" in capsys.readouterr().out


def test_algorithm_1_against_an_independent_reference(capsys):
    """The check's expected value is the plain mean of one-sample gradients: an in-place running average passes."""
    def in_place(net, loss_fn, X, y):
        params = net.parameters()
        grad = [np.zeros_like(p.data) for p in params]
        for n in range(1, len(X) + 1):
            loss_fn.forward(net.forward(X[n - 1:n]), y[n - 1:n])
            net.backward(loss_fn.backward())
            for g, p in zip(grad, params):
                g *= (n - 1) / n
                g += p.grad / n
        return grad

    check_algorithm_1(in_place)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("step, message", [
    (lambda g, pg, n: g + pg, r"you summed the per-sample gradients"),
    (lambda g, pg, n: pg, r"gradient of the LAST sample only"),
    (lambda g, pg, n: g + pg / n, r"without shrinking the old average"),
    (lambda g, pg, n: (n * g + pg) / (n + 1), r"off by one"),
    (lambda g, pg, n: (g + pg) / 2, r"exponential average"),
    (lambda g, pg, n: ((n - 1) * g + 1.5 * pg) / n, r"grad\[0\] \(0.weight\)`\[0, 0\] is .* but should be"),
])
def test_algorithm_1_mistakes_are_named(step, message):
    with pytest.raises(CheckFailed, match=message):
        check_algorithm_1(algorithm_1_with(step))


def test_kept_references_to_p_grad_are_recognized():
    def references(net, loss_fn, X, y):
        grad = None
        for n in range(1, len(X) + 1):
            loss_fn.forward(net.forward(X[n - 1:n]), y[n - 1:n])
            net.backward(loss_fn.backward())
            grad = [p.grad for p in net.parameters()] if grad is None else grad  # aliases, overwritten later
        return grad

    with pytest.raises(CheckFailed, match=r"kept references to p.grad"):
        check_algorithm_1(references)


@pytest.mark.parametrize("fn, message", [
    (lambda net, loss_fn, X, y: ..., r"still Ellipsis"),
    (lambda net, loss_fn, X, y: None, r"still None"),
    (lambda net, loss_fn, X, y: np.zeros(3), r"should return a list with one gradient array per parameter \(4"),
    (lambda net, loss_fn, X, y: [p.grad for p in net.parameters()][:2], r"returned 2 arrays; the net has 4"),
    (lambda net, loss_fn, X, y: [p.grad.T for p in net.parameters()], r"grad\[0\] \(0.weight\) has shape \(3, 4\)"),
    (lambda net, loss_fn, X, y: 1 / 0, r"raised ZeroDivisionError"),
    (lambda net, loss_fn, X, y: [np.zeros_like(p.data) for p in net.parameters()], r"every gradient .* is zero"),
])
def test_algorithm_1_bad_returns_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_algorithm_1(fn)
