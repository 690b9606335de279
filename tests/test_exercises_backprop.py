"""Lesson 02's self-checks: the right answer passes, each typical mistake is named."""
import numpy as np
import pytest

from cnnlab import Module, Parameter
from checks import CheckFailed
from checks.backprop import check_algorithm_1, check_linear_backward


# --- exercise 1: Linear backward ----------------------------------------------------------------

def linear_with(backward):
    """A Linear-like module as in the exercise, with the given backward(self, dout)."""

    class Candidate(Module):
        def __init__(self, in_features, out_features, rng=0):
            gen = np.random.default_rng(rng)
            self.weight = Parameter(gen.standard_normal((out_features, in_features)))
            self.bias = Parameter(np.zeros(out_features))

        def forward(self, x):
            self.x = x
            return x @ self.weight.data.T + self.bias.data

        def backward(self, dout):
            return implementation(self, dout)

    implementation = backward
    return Candidate


def right(self, dout):
    self.weight.grad = dout.T @ self.x
    self.bias.grad = dout.sum(axis=0)
    return dout @ self.weight.data


def test_the_right_linear_backward_passes(capsys):
    check_linear_backward(linear_with(right))
    assert "\u2713" in capsys.readouterr().out


def test_writing_into_grad_in_place_also_passes(capsys):
    def in_place(self, dout):
        self.weight.grad[...] = dout.T @ self.x
        self.bias.grad[...] = dout.sum(axis=0)
        return dout @ self.weight.data

    check_linear_backward(linear_with(in_place))
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("backward, message", [
    (lambda self, dout: ..., r"dx.*still Ellipsis"),
    (lambda self, dout: None, r"still None \(did you forget `return`\?\)"),
    (lambda self, dout: dout, r"shape \(5, 3\), the shape of dout.*dout @ W"),
    (lambda self, dout: dout @ self.weight.data.T, r"raised ValueError.*matmul.*choose the transposes"),
])
def test_linear_backward_mistakes_in_dx_are_named(backward, message):
    with pytest.raises(CheckFailed, match=message):
        check_linear_backward(linear_with(backward))


def test_a_wrong_dx_value_is_reported_at_its_index():
    def wrong_value(self, dout):
        right(self, dout)
        return 2 * (dout @ self.weight.data)

    with pytest.raises(CheckFailed, match=r"dx \(what backward returns\)`\[0, 0\] is .* but should be"):
        check_linear_backward(linear_with(wrong_value))


def weight_grad(compute):
    def backward(self, dout):
        right(self, dout)
        self.weight.grad = compute(self, dout)
        return dout @ self.weight.data
    return backward


def bias_grad(compute):
    def backward(self, dout):
        right(self, dout)
        self.bias.grad = compute(self, dout)
        return dout @ self.weight.data
    return backward


@pytest.mark.parametrize("backward, message", [
    (weight_grad(lambda self, dout: self.x.T @ dout), r"transpose of the weight's \(3, 4\).*dout.T @ x"),
    (weight_grad(lambda self, dout: dout[:, :, None] * self.x[:, None, :]), r"one gradient per example"),
    (weight_grad(lambda self, dout: ...), r"weight.grad.*still Ellipsis"),
    (weight_grad(lambda self, dout: np.zeros((3, 4))), r"weight.grad is all zeros"),
    (weight_grad(lambda self, dout: dout.T @ self.x / len(dout)), r"1/N of the right value"),
    (weight_grad(lambda self, dout: dout.T @ self.x + 1), r"weight.grad`\[0, 0\] is"),
    (bias_grad(lambda self, dout: dout), r"bias.grad has shape \(5, 3\).*sum dout over the batch axis"),
    (bias_grad(lambda self, dout: dout.sum(axis=0, keepdims=True)), r"no keepdims"),
    (bias_grad(lambda self, dout: np.zeros(3)), r"bias.grad is all zeros"),
    (bias_grad(lambda self, dout: dout.mean(axis=0)), r"mean of dout.*must be the sum"),
])
def test_linear_backward_mistakes_in_the_parameter_gradients_are_named(backward, message):
    with pytest.raises(CheckFailed, match=message):
        check_linear_backward(linear_with(backward))


def test_accumulating_gradients_is_recognized():
    def accumulate(self, dout):
        self.weight.grad += dout.T @ self.x
        self.bias.grad += dout.sum(axis=0)
        return dout @ self.weight.data

    with pytest.raises(CheckFailed, match=r"doubled.*overwrite .grad \(`=`\), not add to it \(`\+=`\)"):
        check_linear_backward(linear_with(accumulate))


def test_a_changed_forward_and_a_broken_constructor_are_reported():
    Broken = linear_with(right)
    Broken.forward = Module.__dict__["forward"]  # the base class's forward raises NotImplementedError
    with pytest.raises(CheckFailed, match=r"forward raised NotImplementedError"):
        check_linear_backward(Broken)

    class NoBias(Module):
        def __init__(self, i, o):
            self.weight = Parameter(np.zeros((o, i)))

    with pytest.raises(CheckFailed, match=r"no Parameter `bias`"):
        check_linear_backward(NoBias)

    class Scaled(linear_with(right)):
        def forward(self, x):
            self.x = x
            return 2 * x @ self.weight.data.T + self.bias.data

    with pytest.raises(CheckFailed, match=r"forward was changed"):
        check_linear_backward(Scaled)


# --- exercise 2: Algorithm 1 --------------------------------------------------------------------

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
])
def test_algorithm_1_bad_returns_are_named(fn, message):
    with pytest.raises(CheckFailed, match=message):
        check_algorithm_1(fn)
