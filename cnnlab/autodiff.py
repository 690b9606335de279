"""Automatic differentiation of scalar programs, in forward and reverse mode (Khan section 5.5.4).

A program is a chain of elementary operations (+, -, *, /, powers, sin, cos, exp, log, tanh)
whose derivatives are known; automatic differentiation applies the chain rule to that chain, so
the derivative is exact to machine precision (unlike finite differences) and costs about as much
as the program itself (unlike symbolic expressions, which swell).

Forward mode (`Dual`): every number carries its derivative along, v = (value, dv/dx). Each
operation updates both, e.g. (a, a') * (b, b') = (ab, a'b + ab'). One pass with x = (x, 1)
yields f(x) and f'(x) together: Khan's Algorithm 1 with a derivative riding on each y_i.

Reverse mode (`Var`): the forward pass records a graph, each node keeping its parents and the
local derivatives d(node)/d(parent). `backward()` then visits the nodes from the output back to
the inputs and accumulates adjoints, Khan's Algorithm 2:

    dy/dv_i = sum over children j of v_i of  dy/dv_j * dv_j/dv_i.

A node used twice (x in x * x) receives a contribution from each use: the sum. This is
back-propagation; a network layer's `backward` is the same rule written for a whole array.

Khan's worked example (eq. 5.36), f(x) = exp(sin x + sin^2 x) + sin(e^x + e^{2x}), decomposes
into a = sin x, b = a^2, c = a + b, d = exp c, e = exp x, f = e^2, g = e + f, h = sin g,
y = d + h (eq. 5.38); `trace(y)` lists exactly those nodes with their values and adjoints.

    derivative(lambda x: sin(x) * x, 2.0)    # forward mode
    grad(lambda x: sin(x) * x, 2.0)          # reverse mode
"""
from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple

__all__ = ["Dual", "Var", "sin", "cos", "exp", "log", "tanh", "derivative", "grad", "trace",
           "TraceRow"]


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _real(v, what: str) -> float:
    if not _is_real(v):
        raise TypeError(f"{what} must be a real number, got {type(v).__name__}")
    return float(v)


def _fmt(c: float) -> str:
    return f"{c:g}"


def _pow_rule(value: float, p) -> tuple[float, float]:
    """(value**p, d(value**p)/d(value)) for a real exponent p, refusing non-real results."""
    if not _is_real(p):
        raise TypeError(f"only int or float exponents are supported, got {type(p).__name__} "
                        "(for a variable exponent write exp(p * log(base)))")
    p = float(p)
    if p == 0:
        return 1.0, 0.0
    if value < 0 and not p.is_integer():
        raise ValueError(f"({value}) ** {p}: a negative base with a non-integer exponent is not real")
    if value == 0 and p < 1:
        raise ValueError(f"0 ** {p}: the power or its derivative is infinite at 0")
    return value ** p, p * value ** (p - 1)


# ---------------------------------------------------------------------------------------------
# forward mode
# ---------------------------------------------------------------------------------------------

class Dual:
    """A dual number value + deriv * epsilon (epsilon^2 = 0): a value and its derivative.

    Dual(x, 1.0) is the input x (dx/dx = 1); a constant c is Dual(c, 0.0), and plain numbers
    mixed into arithmetic are treated as such constants. Supports +, -, *, / (both sides),
    ** with an int or float exponent, number ** Dual, unary -, and `sin, cos, exp, log, tanh`.
    """

    __slots__ = ("value", "deriv")
    __array_ufunc__ = None          # make NumPy scalars defer to our reflected operators

    def __init__(self, value, deriv=0.0):
        self.value = _real(value, "Dual value")
        self.deriv = _real(deriv, "Dual deriv")

    @staticmethod
    def _lift(other):
        if isinstance(other, Dual):
            return other
        if _is_real(other):
            return Dual(other, 0.0)
        return NotImplemented

    def __add__(self, other):
        o = Dual._lift(other)
        if o is NotImplemented:
            return o
        return Dual(self.value + o.value, self.deriv + o.deriv)

    __radd__ = __add__

    def __sub__(self, other):
        o = Dual._lift(other)
        if o is NotImplemented:
            return o
        return Dual(self.value - o.value, self.deriv - o.deriv)

    def __rsub__(self, other):
        o = Dual._lift(other)
        return o if o is NotImplemented else o - self

    def __mul__(self, other):                           # product rule
        o = Dual._lift(other)
        if o is NotImplemented:
            return o
        return Dual(self.value * o.value, self.deriv * o.value + self.value * o.deriv)

    __rmul__ = __mul__

    def __truediv__(self, other):                       # quotient rule
        o = Dual._lift(other)
        if o is NotImplemented:
            return o
        return Dual(self.value / o.value, (self.deriv * o.value - self.value * o.deriv) / o.value ** 2)

    def __rtruediv__(self, other):
        o = Dual._lift(other)
        return o if o is NotImplemented else o / self

    def __pow__(self, p):                               # (v^p)' = p v^(p-1) v'
        value, local = _pow_rule(self.value, p)
        return Dual(value, local * self.deriv)

    def __rpow__(self, base):                           # (b^v)' = log(b) b^v v'
        base = _real(base, "base")
        if base <= 0:
            raise ValueError(f"{base} ** Dual: the base must be positive")
        value = base ** self.value
        return Dual(value, math.log(base) * value * self.deriv)

    def __neg__(self):
        return Dual(-self.value, -self.deriv)

    def __pos__(self):
        return self

    def __repr__(self) -> str:
        return f"Dual(value={self.value!r}, deriv={self.deriv!r})"


def derivative(f: Callable, x) -> float:
    """df/dx at x by forward mode: evaluate f on Dual(x, 1) and read the derivative part.

    Inputs: f, a function of one real variable written with +, -, *, /, ** and this module's
    sin/cos/exp/log/tanh; x, a real number. Returns: f'(x) as a float (0.0 if f ignores x).
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    out = f(Dual(_real(x, "x"), 1.0))
    if isinstance(out, Dual):
        return out.deriv
    if _is_real(out):
        return 0.0
    raise TypeError(f"f must return a number or a Dual, got {type(out).__name__}")


# ---------------------------------------------------------------------------------------------
# reverse mode
# ---------------------------------------------------------------------------------------------

class Var:
    """A node of a computational graph, for reverse mode.

    Attributes:
    - value: the number computed in the forward pass.
    - grad: the adjoint dy/d(this node), set by `y.backward()` (0.0 before).
    - name: an optional label for `trace` (e.g. Khan's a, b, ..., h); settable.
    - expr: how the node was computed from its parents, e.g. "sin({0})" or "{0} + {1}".

    Var(value) is an input (a leaf). Arithmetic with Vars and plain numbers (constants, which
    are not recorded as nodes) and `sin, cos, exp, log, tanh` create new nodes.
    """

    __slots__ = ("value", "grad", "name", "expr", "_parents")
    __array_ufunc__ = None

    def __init__(self, value, name: str | None = None):
        self.value = _real(value, "Var value")
        self.grad = 0.0
        self.name = name
        self.expr = "input"
        self._parents = ()          # tuple of (parent Var, local derivative d self / d parent)

    @classmethod
    def _node(cls, value: float, expr: str, parents: tuple) -> "Var":
        node = cls(value)
        node.expr = expr
        node._parents = parents
        return node

    def __add__(self, other):
        if isinstance(other, Var):
            return Var._node(self.value + other.value, "{0} + {1}", ((self, 1.0), (other, 1.0)))
        if _is_real(other):
            return Var._node(self.value + other, "{0} + " + _fmt(other), ((self, 1.0),))
        return NotImplemented

    def __radd__(self, other):
        if _is_real(other):
            return Var._node(other + self.value, _fmt(other) + " + {0}", ((self, 1.0),))
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, Var):
            return Var._node(self.value - other.value, "{0} - {1}", ((self, 1.0), (other, -1.0)))
        if _is_real(other):
            return Var._node(self.value - other, "{0} - " + _fmt(other), ((self, 1.0),))
        return NotImplemented

    def __rsub__(self, other):
        if _is_real(other):
            return Var._node(other - self.value, _fmt(other) + " - {0}", ((self, -1.0),))
        return NotImplemented

    def __mul__(self, other):
        if isinstance(other, Var):
            return Var._node(self.value * other.value, "{0} * {1}",
                             ((self, other.value), (other, self.value)))
        if _is_real(other):
            return Var._node(self.value * other, "{0} * " + _fmt(other), ((self, float(other)),))
        return NotImplemented

    def __rmul__(self, other):
        if _is_real(other):
            return Var._node(other * self.value, _fmt(other) + " * {0}", ((self, float(other)),))
        return NotImplemented

    def __truediv__(self, other):
        if isinstance(other, Var):
            return Var._node(self.value / other.value, "{0} / {1}",
                             ((self, 1.0 / other.value), (other, -self.value / other.value ** 2)))
        if _is_real(other):
            return Var._node(self.value / other, "{0} / " + _fmt(other), ((self, 1.0 / other),))
        return NotImplemented

    def __rtruediv__(self, other):
        if _is_real(other):
            return Var._node(other / self.value, _fmt(other) + " / {0}",
                             ((self, -other / self.value ** 2),))
        return NotImplemented

    def __pow__(self, p):
        value, local = _pow_rule(self.value, p)
        return Var._node(value, "{0}**" + _fmt(p), ((self, local),))

    def __rpow__(self, base):
        base = _real(base, "base")
        if base <= 0:
            raise ValueError(f"{base} ** Var: the base must be positive")
        value = base ** self.value
        return Var._node(value, _fmt(base) + "**{0}", ((self, math.log(base) * value),))

    def __neg__(self):
        return Var._node(-self.value, "-{0}", ((self, -1.0),))

    def __pos__(self):
        return self

    def nodes(self) -> list["Var"]:
        """Every node this one depends on (itself included), each after its parents.

        An iterative depth-first search (an explicit stack, no recursion, so graphs of any depth
        work) that emits a node once all its parents are emitted: a topological order. Parents
        are visited first-operand first, so for straight-line code the order is the order in
        which the program evaluated the nodes.
        """
        order, seen = [], set()
        stack = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for parent, _ in reversed(node._parents):
                if id(parent) not in seen:
                    stack.append((parent, False))
        return order

    def backward(self) -> None:
        """Set `.grad` of every node of the graph to d(self)/d(node) (Khan's Algorithm 2).

        The adjoints of this graph are first reset to 0 (so calling backward twice gives the same
        result, like a cnnlab layer's backward), then self.grad = 1 and, from the output back to
        the inputs, each node adds grad * local derivative to each of its parents: a node used
        several times collects the sum of its contributions.
        """
        order = self.nodes()
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node._parents:
                parent.grad += node.grad * local

    def __repr__(self) -> str:
        label = f", name={self.name!r}" if self.name is not None else ""
        return f"Var(value={self.value!r}, grad={self.grad!r}{label})"


def grad(f: Callable, *xs):
    """Derivative(s) of f at xs by reverse mode: one forward pass, one `backward()`.

    Inputs: f, a function of len(xs) real variables; xs, the real numbers to evaluate at.
    Returns: df/dx as a float for one input, else the tuple of partial derivatives.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    if not xs:
        raise TypeError("grad(f, *xs) needs at least one point x")
    names = ["x"] if len(xs) == 1 else [f"x{i + 1}" for i in range(len(xs))]
    inputs = [Var(_real(x, "x"), name=n) for x, n in zip(xs, names)]
    out = f(*inputs)
    if isinstance(out, Var):
        out.backward()
    elif not _is_real(out):
        raise TypeError(f"f must return a number or a Var, got {type(out).__name__}")
    grads = tuple(v.grad for v in inputs)
    return grads[0] if len(grads) == 1 else grads


class TraceRow(NamedTuple):
    """One node of a traced graph: its name, how it was computed, its value and its adjoint."""

    name: str
    expr: str
    value: float
    adjoint: float


def trace(y: Var) -> list[TraceRow]:
    """The nodes of y's graph in evaluation order, for a lesson table (Khan eq. 5.38, 5.39).

    Unnamed inputs are called x1, x2, ... and unnamed intermediate nodes v1, v2, ..., vN;
    `expr` spells each node in terms of those names. Adjoints are those of the last
    `y.backward()` (all 0.0 if it was not called).
    """
    if not isinstance(y, Var):
        raise TypeError(f"trace expects a Var, got {type(y).__name__}")
    order = y.nodes()
    names, n_inputs, n_inner = {}, 0, 0
    for node in order:
        if node.name is None:
            if node._parents:
                n_inner += 1
                names[id(node)] = f"v{n_inner}"
            else:
                n_inputs += 1
                names[id(node)] = f"x{n_inputs}"
        else:
            names[id(node)] = node.name
    rows = []
    for node in order:
        expr = node.expr.format(*(names[id(p)] for p, _ in node._parents))
        rows.append(TraceRow(names[id(node)], expr, node.value, node.grad))
    return rows


# ---------------------------------------------------------------------------------------------
# elementary functions (dispatch on float, Dual, Var)
# ---------------------------------------------------------------------------------------------

def _elementary(name: str, fn: Callable, dfn: Callable, check: Callable | None = None):
    def op(x):
        value = x.value if isinstance(x, (Dual, Var)) else _real(x, f"{name}() argument")
        if check is not None:
            check(value)
        if isinstance(x, Dual):
            return Dual(fn(value), dfn(value) * x.deriv)
        if isinstance(x, Var):
            return Var._node(fn(value), name + "({0})", ((x, dfn(value)),))
        return fn(value)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = (f"{name}(x) for a float (returns a float), a Dual (forward mode) or a Var "
                  f"(reverse mode: a new graph node).")
    return op


def _check_log(v: float) -> None:
    if v <= 0:
        raise ValueError(f"log() needs a positive argument, got {v}")


sin = _elementary("sin", math.sin, math.cos)
cos = _elementary("cos", math.cos, lambda v: -math.sin(v))
exp = _elementary("exp", math.exp, math.exp)
log = _elementary("log", math.log, lambda v: 1.0 / v, _check_log)
tanh = _elementary("tanh", math.tanh, lambda v: 1.0 - math.tanh(v) ** 2)
