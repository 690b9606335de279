"""Self-checks of lesson 05: right answers pass, each named mistake is recognised."""
import math

import numpy as np
import pytest

from cnnlab.autodiff import Dual
from checks import CheckFailed
from checks.differentiation import check_adjoint_e, check_central_gradient, check_dual_rules, check_var


# ---------------------------------------------------------------- exercise 1: central differences

def right(f, x, h=1e-5):
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        up = f(x)
        x[i] = old - h
        down = f(x)
        x[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def make(update):
    """A central_gradient with the loop body replaced by update(f, x, h, i) -> grad[i]."""
    def gradient(f, x, h=1e-5):
        grad = np.zeros(x.shape)
        for i in np.ndindex(x.shape):
            grad[i] = update(f, x, h, i)
        return grad
    return gradient


def shifted(x, i, delta):
    y = x.copy()
    y[i] += delta
    return y


def test_right_central_gradient_passes(capsys):
    check_central_gradient(right)
    assert "\u2713" in capsys.readouterr().out


def test_placeholder_loop_is_recognized():
    def placeholder(f, x, h=1e-5):
        grad = np.zeros(x.shape)
        for i in np.ndindex(x.shape):
            ...
        return grad

    with pytest.raises(CheckFailed, match=r"all zeros: the loop body is still `...`"):
        check_central_gradient(placeholder)
    with pytest.raises(CheckFailed, match=r"should be a function, got Ellipsis"):
        check_central_gradient(...)
    with pytest.raises(CheckFailed, match=r"returned None: finish the loop body and `return grad`"):
        check_central_gradient(lambda f, x, h=1e-5: None)


@pytest.mark.parametrize("update, message", [
    (lambda f, x, h, i: (f(shifted(x, i, h)) - f(x)) / h, r"forward difference"),
    (lambda f, x, h, i: (f(shifted(x, i, h)) - f(x)) / (2 * h), r"subtracting 2h"),
    (lambda f, x, h, i: (f(shifted(x, i, h)) - f(shifted(x, i, -h))) / h, r"twice too large: divide .* by 2h"),
    (lambda f, x, h, i: (f(shifted(x, i, -h)) - f(shifted(x, i, h))) / (2 * h), r"wrong sign"),
    (lambda f, x, h, i: (f(x + h) - f(x - h)) / (2 * h), r"moved all of x at once"),
    (lambda f, x, h, i: 0.9 * (f(shifted(x, i, h)) - f(shifted(x, i, -h))) / (2 * h), r"is .* but should be"),
])
def test_typical_central_difference_mistakes_are_named(update, message):
    with pytest.raises(CheckFailed, match=message):
        check_central_gradient(make(update))


def test_not_restoring_x_is_recognized():
    def forgets(f, x, h=1e-5):
        grad = np.zeros(x.shape)
        for i in np.ndindex(x.shape):
            x[i] += h
            up = f(x)
            x[i] -= 2 * h
            grad[i] = (up - f(x)) / (2 * h)
        return grad

    with pytest.raises(CheckFailed, match=r"changed its input: x\[0, 0\] .* put x\[i\] back"):
        check_central_gradient(forgets)


def test_wrong_shape_is_recognized():
    with pytest.raises(CheckFailed, match=r"shape of x, \(2, 3\), got \(6,\)"):
        check_central_gradient(lambda f, x, h=1e-5: right(f, x, h).ravel())


# ---------------------------------------------------------------- exercise 2: dual-number rules

def mul(a, b):
    return Dual(a.value * b.value, a.deriv * b.value + a.value * b.deriv)


def sin(a):
    return Dual(math.sin(a.value), math.cos(a.value) * a.deriv)


def test_right_dual_rules_pass(capsys):
    check_dual_rules(mul, sin)
    out = capsys.readouterr().out
    assert "\u2713" in out and f"{math.sin(2) + 2 * math.cos(2):.6f}" in out


def test_dual_placeholders_and_wrong_types_are_recognized():
    with pytest.raises(CheckFailed, match=r"returned Ellipsis: replace the `...`"):
        check_dual_rules(lambda a, b: ..., sin)
    with pytest.raises(CheckFailed, match=r"dual_sin\(Dual\(0.8, 2.5\)\) returned Ellipsis"):
        check_dual_rules(mul, lambda a: ...)
    with pytest.raises(CheckFailed, match=r"should return a Dual\(value, deriv\), got tuple"):
        check_dual_rules(lambda a, b: (a.value * b.value, 0.0), sin)
    with pytest.raises(CheckFailed, match=r"`dual_mul` should be a function"):
        check_dual_rules(..., sin)


@pytest.mark.parametrize("deriv, message", [
    (lambda a, b: a.deriv * b.deriv, r"multiplied the derivatives"),
    (lambda a, b: a.deriv * b.value, r"only a' b: .* a b'"),
    (lambda a, b: a.value * b.deriv, r"only a b': .* a' b"),
    (lambda a, b: a.deriv + b.deriv, r"rule for a sum"),
    (lambda a, b: 1.0, r"should be a' b \+ a b' = "),
])
def test_product_rule_mistakes_are_named(deriv, message):
    with pytest.raises(CheckFailed, match=message):
        check_dual_rules(lambda a, b: Dual(a.value * b.value, deriv(a, b)), sin)


def test_product_value_mistake_is_named():
    with pytest.raises(CheckFailed, match=r"value of a product is a.value \* b.value"):
        check_dual_rules(lambda a, b: Dual(a.value + b.value, a.deriv * b.value + a.value * b.deriv), sin)


@pytest.mark.parametrize("rule, message", [
    (lambda a: Dual(math.sin(a.value), math.cos(a.value)), r"missing the chain rule"),
    (lambda a: Dual(math.sin(a.value), -math.cos(a.value) * a.deriv), r"wrong sign"),
    (lambda a: Dual(math.sin(a.value), math.sin(a.value) * a.deriv), r"not its own derivative"),
    (lambda a: Dual(math.sin(a.value), math.cos(a.deriv)), r"mixes up the parts"),
    (lambda a: Dual(math.sin(a.deriv), math.cos(a.value) * a.deriv), r"sin of the derivative"),
])
def test_sine_rule_mistakes_are_named(rule, message):
    with pytest.raises(CheckFailed, match=message):
        check_dual_rules(mul, rule)


# ---------------------------------------------------------------- exercise 3: the adjoint of e

X = -1.0
E = math.exp(X)
G = E + E * E


def test_right_adjoint_passes(capsys):
    check_adjoint_e(math.cos(G) * (1 + 2 * E), X)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("value, message", [
    (..., r"still Ellipsis"),
    ("1.5x", r"should be a number, got str"),
    (math.cos(G), r"only the path through g"),
    (math.cos(G) * 2 * E, r"only the path through f"),
    (2 * math.cos(G), r"df/de is missing"),
    (math.cos(G) * (1 + E), r"is 2e, not e"),
    (math.cos(G) * (1 + 2 * E) * E, r"contribution to dy/dx"),
    (math.cos(G) * (1 + 2 * X), r"2e \(the value of e\), not 2x"),
    (0.5, r"should be 1\.5"),
])
def test_adjoint_mistakes_are_named(value, message):
    with pytest.raises(CheckFailed, match=message):
        check_adjoint_e(value, X)


# ---------------------------------------------------------------- exercise 4: a Var class of one's own

class Core:
    """Reverse mode written differently from the lesson: constants lifted to leaves, an iterative sort.
    (No reflected operators: `Right` adds them.)"""

    def __init__(self, value, parents=()):
        self.value, self.parents, self.grad = float(value), parents, 0.0

    def lift(self, other):
        return other if isinstance(other, Core) else type(self)(other)

    def __add__(self, other):
        other = self.lift(other)
        return type(self)(self.value + other.value, [(self, 1.0), (other, 1.0)])

    def __mul__(self, other):
        other = self.lift(other)
        return type(self)(self.value * other.value, [(self, other.value), (other, self.value)])

    def sin(self):
        return type(self)(math.sin(self.value), [(self, self.d_sin())])

    def d_sin(self):
        return math.cos(self.value)

    def exp(self):
        out = math.exp(self.value)
        return type(self)(out, [(self, self.d_exp(out))])

    def d_exp(self, out):
        return out

    def order(self):
        """Every node below self, each after all of its parents (Kahn's algorithm on child counts)."""
        children, stack, seen = {}, [self], {id(self)}
        while stack:
            node = stack.pop()
            for parent, _ in node.parents:
                children[id(parent)] = children.get(id(parent), 0) + 1
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append(parent)
        ready, out = [self], []
        while ready:
            node = ready.pop()
            out.append(node)
            for parent, _ in node.parents:
                children[id(parent)] -= 1
                if children[id(parent)] == 0:
                    ready.append(parent)
        return out[::-1]

    def backward(self):
        nodes = self.order()
        for node in nodes:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(nodes):
            self.send(node)

    @staticmethod
    def send(node):
        for parent, local in node.parents:
            parent.grad += node.grad * local


class Right(Core):
    def __radd__(self, other):
        return self.lift(other) + self

    def __rmul__(self, other):
        return self.lift(other) * self


def test_right_var_passes(capsys):
    check_var(Right)
    assert "\u2713" in capsys.readouterr().out


class Overwrites(Right):
    @staticmethod
    def send(node):
        for parent, local in node.parents:
            parent.grad = node.grad * local


class DepthFirstNoSort(Right):
    def backward(self):
        """Pops a node as soon as it is reached: its adjoint may still be missing contributions."""
        self.grad, stack, seen = 1.0, [self], {id(self)}
        while stack:
            node = stack.pop()
            for parent, local in node.parents:
                parent.grad += node.grad * local
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append(parent)


class RecursivePush(Right):
    def backward(self):
        """Recursion without a topological order: passes the running total down at every visit."""
        self.grad = 1.0
        self.push()

    def push(self):
        for parent, local in self.parents:
            parent.grad += self.grad * local
            parent.push()


class SinSign(Right):
    def d_sin(self):
        return -math.cos(self.value)


class SinNotCos(Right):
    def d_sin(self):
        return math.sin(self.value)


class ExpOfInput(Right):
    def d_exp(self, out):
        return self.value


class NoRmul(Core):
    def __radd__(self, other):
        return self.lift(other) + self


class NoRadd(Core):
    def __rmul__(self, other):
        return self.lift(other) * self


class NoSeed(Right):
    def backward(self):
        nodes = self.order()
        for node in nodes:
            node.grad = 0.0
        for node in reversed(nodes):
            self.send(node)


class NoReset(Right):
    def backward(self):
        self.grad = 1.0
        for node in reversed(self.order()):
            self.send(node)


class SeedAdds(Right):
    def backward(self):
        self.grad += 1.0
        for node in reversed(self.order()):
            self.send(node)


class FactorsSwapped(Right):
    def __mul__(self, other):
        other = self.lift(other)
        return type(self)(self.value * other.value, [(self, self.value), (other, other.value)])


class ParentsInADict(Right):
    def __mul__(self, other):
        other = self.lift(other)
        return type(self)(self.value * other.value, list({self: other.value, other: self.value}.items()))


class CosInsteadOfSin(Right):
    def sin(self):
        return type(self)(math.cos(self.value), [(self, -math.sin(self.value))])


class ReturnsFloat(Right):
    def exp(self):
        return math.exp(self.value)


class BackwardRaises(Right):
    def backward(self):
        raise KeyError("parents")


@pytest.mark.parametrize("Var, message", [
    (Overwrites, r"x \* x \+ x: .*overwritten instead of accumulated.*SUM"),
    (DepthFirstNoSort, r"before all its children .* reverse order"),
    (RecursivePush, r"before all its children .* reverse order"),
    (SinSign, r"sin's local derivative has the wrong sign"),
    (SinNotCos, r"sin's local derivative is cos x, not sin x"),
    (ExpOfInput, r"exp's local derivative is exp\(input\) .*not the input"),
    (NoRmul, r"3.0 \* x raised TypeError: .*Var.__rmul__"),
    (NoRadd, r"2.5 \+ x raised TypeError: .*Var.__radd__"),
    (NoSeed, r"y.grad is 0: .*adjoint to 1"),
    (NoReset, r"second y.backward\(\) changed x.grad .* set every node's grad to 0"),
    (SeedAdds, r"second y.backward\(\) changed x.grad"),
    (FactorsSwapped, r"OTHER factor"),
    (ParentsInADict, r"both factors are x, so x gets two contributions"),
    (CosInsteadOfSin, r"x.sin\(\)\).value is .*that is cos"),
    (ReturnsFloat, r"x.exp\(\) should return a new Var .* got float"),
    (BackwardRaises, r"backward\(\) raised KeyError"),
])
def test_var_mistakes_are_named(Var, message):
    with pytest.raises(CheckFailed, match=message):
        check_var(Var)


def test_var_placeholder_and_wrong_types_are_recognized():
    class Skeleton:
        def __init__(self, value, parents=()):
            self.value, self.parents, self.grad = float(value), parents, 0.0

        def __add__(self, other):
            return ...

        def backward(self):
            ...

    with pytest.raises(CheckFailed, match=r"x \+ w is still Ellipsis"):
        check_var(Skeleton)
    with pytest.raises(CheckFailed, match=r"`Var` should be a class, got Ellipsis"):
        check_var(...)
    class GradText(Right):
        def backward(self):
            Right.backward(self)
            for node in self.order():
                node.grad = f"{node.grad}"

    with pytest.raises(CheckFailed, match=r"y.grad should be a number, got str"):
        check_var(GradText)
    with pytest.raises(CheckFailed, match=r"should have value 0.7 and grad 0.0"):
        check_var(type("Scaled", (Right,), {"__init__": lambda self, v, p=(): Right.__init__(self, 2 * v, p)}))
