# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Back-propagation
#
# Lesson 01 defined the training error as an average over the training set,
# $E(w) = \frac{1}{N}\sum_{n=1}^{N} E_n(w)$ (Tomasi's eq. (1)). Gradient descent needs
# $\partial E / \partial w$ for every weight of the net, and a CNN has many thousands of them.
# **Back-propagation** computes all of them at the cost of roughly two forward passes, by applying the
# chain rule in the right order and reusing every intermediate result. In this lesson you will:
#
# * run the chain rule by hand on a single neuron and meet the *sensitivity* $\delta$;
# * read how a layer of `cnnlab` is a module with a `forward` and a `backward`, and why `backward`
#   returns $\partial L/\partial x$ and *overwrites* the parameter gradients;
# * write the backward pass of a linear layer yourself, and the backward recursion that runs a whole
#   net's layers from the last to the first;
# * back-propagate through a two-layer net by hand, $\delta$ by $\delta$, and compare with the library;
# * step through forward and backward passes in a widget;
# * implement Tomasi's Algorithm 1 (one sample at a time, with a running average) and check it
#   against a batched backward pass on real images;
# * see why the batched linear layer is one matrix product (a GEMM), and how much faster that is.

# %%
# %matplotlib widget
import inspect
import time

import numpy as np

import widgets
from cnnlab import Sequential
from cnnlab.backprop import backprop_batched, backprop_per_sample
from cnnlab.data import load_fashion_mnist
from cnnlab.gradcheck import gradcheck, gradcheck_network
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sigmoid
from cnnlab.losses import CrossEntropyLoss, MSELoss

# %% [markdown]
# ## The chain rule on one neuron
#
# Take one sigmoid neuron with a single weight $w$ and bias $b$, fed one number $x$ and scored with a
# squared error against the target $t$:
#
# $$a = w x + b, \qquad y = \sigma(a) = \frac{1}{1 + e^{-a}}, \qquad E = \tfrac12 (y - t)^2 .$$
#
# $E$ depends on $w$ only through $a$, and on $a$ only through $y$. The chain rule (Veta's first
# back-propagation slide: for $z = f(g(x))$, $dz/dx = dz/dy \cdot dy/dx$) multiplies the three local
# derivatives:
#
# $$\frac{\partial E}{\partial w} = \underbrace{(y - t)}_{\partial E/\partial y}\;
#   \underbrace{\sigma(a)\,(1 - \sigma(a))}_{\partial y/\partial a}\;
#   \underbrace{x}_{\partial a/\partial w}.$$
#
# Every factor is evaluated at a value computed on the way forward ($y$, $\sigma(a)$, $x$): the
# forward pass must keep them.

# %%
x, t = 1.5, 1.0
w, b = -0.8, 0.3
a = w * x + b
y = 1 / (1 + np.exp(-a))
E = 0.5 * (y - t) ** 2

dE_dy = y - t
dy_da = y * (1 - y)
da_dw = x
dE_dw = dE_dy * dy_da * da_dw
print(f"a = {a:.4f}, y = {y:.4f}, E = {E:.5f}")
print(f"dE/dw = {dE_dy:.4f} * {dy_da:.4f} * {da_dw} = {dE_dw:.6f}")

# %% [markdown]
# Is it right? Nudge $w$ by a tiny $\pm h$ and measure the slope of $E$ (a centred difference, the
# check Bouvrie recommends in his §4.4):

# %%
def error_at(w, b):
    return 0.5 * (1 / (1 + np.exp(-(w * x + b))) - t) ** 2


h = 1e-6
slope_w = (error_at(w + h, b) - error_at(w - h, b)) / (2 * h)
print(f"chain rule {dE_dw:.10f}   finite difference {slope_w:.10f}")
assert abs(dE_dw - slope_w) < 1e-9

# %% [markdown]
# The product of the first two factors, $\partial E/\partial a$, is worth a name. Bouvrie calls it
# the **sensitivity** $\delta$ of the unit: since $\partial a/\partial b = 1$, it is exactly the
# gradient with respect to the bias (his eq. (3)), and every weight feeding the unit gets its gradient
# as $\delta$ times that weight's input. Compute $\delta$ once, reuse it for everything below the
# unit: that reuse is what makes back-propagation cheap.

# %%
delta = dE_dy * dy_da
dE_db = delta * 1.0
slope_b = (error_at(w, b + h) - error_at(w, b - h)) / (2 * h)
print(f"delta = {delta:.6f}")
print(f"dE/db = delta = {dE_db:.6f} (finite difference {slope_b:.6f});  dE/dw = delta * x = {delta * x:.6f}")
assert abs(dE_db - slope_b) < 1e-9
assert np.isclose(dE_dw, delta * x)

# %% [markdown]
# ## Layers as modules
#
# A real net is too big to differentiate as one formula. Veta's slides take the **modular** view:
# every layer is a self-contained module that knows three things, and nothing about its neighbours:
#
# * **forward**: from its input $z^{l}$ compute its output $z^{l+1} = f^l(z^l; \theta^l)$, and keep
#   what the backward pass will need;
# * **backward w.r.t. its parameters**: given $\partial E/\partial z^{l+1}$ from the layer above,
#   compute $\partial E/\partial \theta^{l}$ (Tomasi's eq. (2));
# * **backward w.r.t. its input**: compute $\partial E/\partial z^{l}$ and hand it to the layer below
#   (Tomasi's recursion, eq. (3)).
#
# The recursion starts at the loss: $\partial E_n/\partial x^{(L)} = \partial \mathcal{L}/\partial y$
# (Tomasi's eq. (4)), which is what `loss_fn.backward()` returns. `Sequential.forward` calls the
# layers left to right, `Sequential.backward` right to left. Here is the forward pass of `cnnlab`'s
# linear layer (its backward is Exercise 1, below):

# %%
print(inspect.getsource(Linear.forward))

# %% [markdown]
# Three details matter:
#
# 1. `forward` stores its input `x` in `self._x`: the weight gradient needs it.
# 2. `backward` **returns** $\partial L/\partial x$: the layer below receives it as its own `dout`.
#    For the first layer nobody uses it during training, but the recursion does not know which layer
#    is first.
# 3. `backward` **overwrites** `weight.grad` and `bias.grad` (`grad[...] = ...`). Each backward
#    answers one question: *what is the gradient of the loss of the last forward pass?* Adding to an
#    old value would mix in the gradient of an earlier batch unless someone remembered to reset it
#    (PyTorch accumulates and needs `zero_grad()`; `cnnlab` keeps the simpler rule).
#
# Both are easy to see, and the layer passes the finite-difference check:

# %%
rng = np.random.default_rng(0)
layer = Linear(4, 3, rng=0).astype(np.float64)
x_batch, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
layer.forward(x_batch)
dx = layer.backward(dout)
first = layer.weight.grad.copy()
layer.backward(dout)  # the same question again: the same answer, not twice the answer
print("dx", dx.shape, " weight.grad", layer.weight.grad.shape, " bias.grad", layer.bias.grad.shape)
assert dx.shape == x_batch.shape and layer.weight.grad.shape == layer.weight.shape
assert np.array_equal(layer.weight.grad, first), "backward overwrites the gradient"
report = gradcheck(layer, x_batch)
print(report)
assert report.ok

# %% [markdown]
# A backward pass without a forward pass has nothing to work with (no saved input), and `cnnlab` says
# so instead of returning garbage:

# %%
message = "no error was raised"
try:
    Linear(4, 3).backward(np.zeros((5, 3), dtype=np.float32))
except RuntimeError as error:
    message = str(error)
print(message)
assert "before Linear.forward()" in message

# %% [markdown]
# ## Exercise 1: the backward pass of a linear layer
#
# For one sample stored as a column, Bouvrie writes the layer as $u = W x + b$ with $W$ of shape
# $(\text{out}, \text{in})$, and its sensitivity $\delta = \partial E/\partial u$ (out entries) gives
# all three gradients:
#
# $$\frac{\partial E}{\partial b} = \delta \;\text{(his eq. (3))}, \qquad
#   \frac{\partial E}{\partial x} = W^T \delta \;\text{(the step of his eq. (4))}, \qquad
#   \frac{\partial E}{\partial W} = \delta\, x^T \;\text{(his eq. (5))}.$$
#
# (Bouvrie prints eq. (5) as $x\,\delta^T$; with $W$ stored as $(\text{out}, \text{in})$, as in his own
# $u = Wx + b$ and in `cnnlab`, only $\delta\, x^T$ has the shape of $W$.)
#
# `cnnlab` stores a batch as **rows**: $x$ of shape $(N, \text{in})$, $y = x W^T + b$, and
# $G = \partial L/\partial y$ of shape $(N, \text{out})$, whose row $n$ is sample $n$'s $\delta$. Turn
# the three column formulas into row form for the whole batch at once:
#
# * $\partial L/\partial x$ has the shape of $x$: row $n$ is sample $n$'s $(W^T \delta_n)^T$;
# * $\partial L/\partial W$ has the shape of $W$: the sum over the batch of $\delta_n x_n^T$, which is
#   one matrix product;
# * $\partial L/\partial b$ has shape $(\text{out},)$: the sum over the batch of $\delta_n$.
#
# The loss has already taken its mean over the batch (its $1/N$ is inside $G$), so the layer **sums**
# and never divides. Like `cnnlab`'s `Linear` (and PyTorch's), your function must also accept inputs
# with more leading axes, $x$ of shape $(\dots, \text{in})$: every axis but the last is then a batch
# axis. Let the shapes guide you. The check runs your function on a batch of one, non-square and
# square weights and an input with leading axes, compares with `cnnlab`'s `Linear` and with finite
# differences, and names the usual mistakes.

# %% tags=["exercise"]
def linear_backward(dout, x, weight):
    """Backward pass of y = x W^T + b (Bouvrie's eqs. (3)-(5), one sample per row).

    Per sample (columns): dE/db = delta, dE/dx = W^T delta, dE/dW = delta x^T.

    Inputs:
    - dout: dL/dy, shape (..., out_features), the leading axes of x
    - x: the layer's input, shape (..., in_features): (N, in_features), or with more leading axes
    - weight: W, shape (out_features, in_features)

    Returns (dx, dweight, dbias):
    - dx: dL/dx, the shape of x
    - dweight: dL/dW, shape (out_features, in_features), summed over every sample
    - dbias: dL/db, shape (out_features,), summed over every sample
    """
    dx = ...
    dweight = ...
    dbias = ...
    return dx, dweight, dbias


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "02-linear-backward-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def linear_backward(dout, x, weight):
    """Backward pass of y = x W^T + b (Bouvrie's eqs. (3)-(5), one sample per row).

    Per sample (columns): dE/db = delta, dE/dx = W^T delta, dE/dW = delta x^T.

    Inputs:
    - dout: dL/dy, shape (..., out_features), the leading axes of x
    - x: the layer's input, shape (..., in_features): (N, in_features), or with more leading axes
    - weight: W, shape (out_features, in_features)

    Returns (dx, dweight, dbias):
    - dx: dL/dx, the shape of x
    - dweight: dL/dW, shape (out_features, in_features), summed over every sample
    - dbias: dL/db, shape (out_features,), summed over every sample
    """
    out_features, in_features = weight.shape
    rows_x = x.reshape(-1, in_features)  # every leading axis is part of the batch
    rows_dout = dout.reshape(-1, out_features)
    dx = dout @ weight  # row n: (W^T delta_n)^T = delta_n^T W; keeps x's leading axes
    dweight = rows_dout.T @ rows_x  # (out, rows) @ (rows, in): the sum of the outer products delta_n x_n^T
    dbias = rows_dout.sum(axis=0)
    return dx, dweight, dbias


# %% nbgrader={"grade": true, "grade_id": "02-linear-backward-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.backprop import check_algorithm_1, check_backward_pass, check_linear_backward

check_linear_backward(linear_backward)

# %% [markdown]
# Put your function inside a layer and it is a full member of the library: `cnnlab`'s `Linear` with
# your backward passes the same gradient checker that tests `cnnlab`'s own layers. The layer keeps
# the rule of every `backward`: it *overwrites* the gradients.

# %%
class MyLinear(Linear):
    """cnnlab's Linear, with the backward pass computed by linear_backward."""

    def backward(self, dout):
        dx, dweight, dbias = linear_backward(dout, self._x, self.weight.data)
        self.weight.grad[...] = dweight  # overwrite, never add
        self.bias.grad[...] = dbias
        return dx


mine = MyLinear(4, 3, rng=0).astype(np.float64)
assert gradcheck(mine, x_batch).ok
mine.forward(x_batch)
mine.backward(dout)
assert np.allclose(mine.weight.grad, first, rtol=1e-10, atol=1e-12)  # cnnlab's numbers, up to the order of a sum

# %% [markdown]
# ## Exercise 2: the backward recursion
#
# A net is a chain, $x^{(\ell)} = f^{(\ell)}(x^{(\ell-1)}; w^{(\ell)})$ for $\ell = 1, \dots, L$, with the
# images $x^{(0)}$ at the bottom. The backward half of Tomasi's Algorithm 1 starts from the loss,
# $\partial E_n/\partial x^{(L)}$ (his eq. (4)), and then, **from the last layer down**, uses each
# layer twice:
#
# $$\frac{\partial E_n}{\partial w^{(\ell)}} = \frac{\partial E_n}{\partial x^{(\ell)}}\,
#     \frac{\partial x^{(\ell)}}{\partial w^{(\ell)}} \quad\text{(eq. (2))}, \qquad
#   \frac{\partial E_n}{\partial x^{(\ell-1)}} = \frac{\partial E_n}{\partial x^{(\ell)}}\,
#     \frac{\partial x^{(\ell)}}{\partial x^{(\ell-1)}} \quad\text{(eq. (3))}.$$
#
# In `cnnlab` one call does both: `layer.backward(g)`, given $g = \partial L/\partial x^{(\ell)}$,
# writes the layer's parameter gradients (eq. (2)) and returns $\partial L/\partial x^{(\ell-1)}$
# (eq. (3)), which is the `dout` of the layer below. Write the loop. Two things to watch:
#
# * Each layer must receive the gradient the layer **above** it returned, not the loss's gradient.
# * Run your loop down to the **first** layer (Tomasi's own loop stops one layer short: see the box
#   after the check), and return what its backward returns, $\partial L/\partial x^{(0)}$ (lesson 05
#   puts this gradient with respect to the images to use).
#
# The check runs your function on a `Linear`–`Tanh`–`Linear`–`Sigmoid`–`Linear` net of non-square
# layers, for a batch of one, a batch of four and an input with leading axes, and compares every
# gradient with `cnnlab`'s `Sequential` and with finite differences.

# %% tags=["exercise"]
def backward_pass(layers, dout):
    """The backward recursion of Tomasi's Algorithm 1 (his eqs. (2)-(4)) over a list of layers.

    Inputs:
    - layers: the modules f_1, ..., f_L of a net (a list, or a Sequential), in forward order; their forward
      has just run on one batch
    - dout: dL/dx^(L), the gradient of the loss with respect to the last layer's output
    Returns dL/dx^(0), the gradient with respect to the first layer's input; afterwards every layer's
    parameters hold their gradients in .grad (written by the layer's backward).
    """
    ...  # call each layer's backward, from the last layer to the first
    return ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "02-backward-pass-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def backward_pass(layers, dout):
    """The backward recursion of Tomasi's Algorithm 1 (his eqs. (2)-(4)) over a list of layers.

    Inputs:
    - layers: the modules f_1, ..., f_L of a net (a list, or a Sequential), in forward order; their forward
      has just run on one batch
    - dout: dL/dx^(L), the gradient of the loss with respect to the last layer's output
    Returns dL/dx^(0), the gradient with respect to the first layer's input; afterwards every layer's
    parameters hold their gradients in .grad (written by the layer's backward).
    """
    for layer in reversed(layers):  # l = L, ..., 1: the first layer too
        dout = layer.backward(dout)  # eq. (2) into layer.*.grad; eq. (3) is handed down
    return dout


# %% nbgrader={"grade": true, "grade_id": "02-backward-pass-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check_backward_pass(backward_pass)

# %% [markdown]
# > **The source says:** Tomasi's Algorithm 1 runs its back-propagation loop "for $\ell = L, \dots, 2$"
# > (eq. (3) has the same range), although eq. (2), the weight gradient, holds for $\ell = L, \dots, 1$.
# >
# > **We do:** run the loop down to $\ell = 1$: your `backward_pass` and `Sequential.backward` call every
# > layer's backward, the first one included.
# >
# > **Why:** one pass of the loop body computes eq. (2) *and* eq. (3) for its layer. Stopping at
# > $\ell = 2$ saves $\partial E/\partial x^{(0)}$, which nobody needs, but also skips eq. (2) for
# > layer 1, whose weights then never receive a gradient.
#
# Tomasi's loop taken literally, on a net of his two layers $x^{(\ell)} = h(W^{(\ell)} x^{(\ell-1)} + b^{(\ell)})$,
# against the full loop and finite differences (layer 1's gradient is first filled with NaN, "not written"):

# %%
from cnnlab.gradcheck import numerical_gradient

gen = np.random.default_rng(3)
tomasi_layers = [Sequential([Linear(3, 4, rng=gen), Sigmoid()]), Sequential([Linear(4, 2, rng=gen), Sigmoid()])]
tomasi_net = Sequential(tomasi_layers).astype(np.float64)
x_t, target_t, mse = gen.standard_normal((5, 3)), gen.standard_normal((5, 2)), MSELoss()
W1 = tomasi_layers[0][0].weight
numeric_W1 = numerical_gradient(lambda: mse.forward(tomasi_net(x_t), target_t), W1.data)

W1.grad[...] = np.nan
mse.forward(tomasi_net(x_t), target_t)
g = mse.backward()
for ell in range(len(tomasi_layers), 1, -1):  # Tomasi: for l = L, ..., 2 (layer l is tomasi_layers[l - 1])
    g = tomasi_layers[ell - 1].backward(g)
assert np.all(np.isnan(W1.grad)), "read literally, the loop never writes layer 1's weight gradient"

tomasi_net.backward(mse.backward())  # l = L, ..., 1
print(f"full loop: largest |dE/dW1 - finite differences| = {np.abs(W1.grad - numeric_W1).max():.1e} "
      f"(largest entry {np.abs(numeric_W1).max():.1e})")
np.testing.assert_allclose(W1.grad, numeric_W1, rtol=1e-6, atol=1e-8)
assert np.abs(numeric_W1).max() > 1e-3, "a gradient that is really there to be missed"

# %% [markdown]
# ## A two-layer net by hand
#
# Now chain two layers. The net maps 2 inputs to 3 sigmoid units to 2 sigmoid outputs; in Tomasi's
# notation $x^{(\ell)} = h(W^{(\ell)} x^{(\ell-1)} + b^{(\ell)})$ for $\ell = 1, 2$, and we write
# $u^{(\ell)}$ for the argument of $h$. The loss is Bouvrie's $E_n = \frac12 \lVert x^{(2)} - t\rVert^2$
# (his eq. (1)), whose gradient is simply $x^{(2)} - t$: in cnnlab, `MSELoss(reduction="half_sum")`
# (lesson 01). PyTorch's default `reduction="mean"` divides the sum of squares by the number of
# entries instead of by 2; for one example with two outputs the two happen to agree, so the check
# below also tries a batch of three examples, where they do not.

# %%
net = Sequential([Linear(2, 3, rng=1), Sigmoid(), Linear(3, 2, rng=2), Sigmoid()]).astype(np.float64)
x0, t2 = np.array([[0.5, -1.2]]), np.array([[1.0, 0.0]])
W1, b1, W2, b2 = (p.data for p in net.parameters())
print(net)

# %% [markdown]
# **Forward**, by hand, keeping every intermediate value:

# %%
def sigmoid(u):
    return 1 / (1 + np.exp(-u))


u1 = x0 @ W1.T + b1
x1 = sigmoid(u1)
u2 = x1 @ W2.T + b2
x2 = sigmoid(u2)
E_hand = 0.5 * np.sum((x2 - t2) ** 2)
print("x1 =", x1.round(4), "  x2 =", x2.round(4), f"  E = {E_hand:.5f}")

# %% [markdown]
# The library's layers must produce the same values, layer by layer:

# %%
outputs, z = [], x0
for module in net:
    z = module.forward(z)
    outputs.append(z)
for hand, lib in zip((u1, x1, u2, x2), outputs):
    np.testing.assert_allclose(lib, hand, rtol=1e-12)
loss_fn = MSELoss(reduction="half_sum")
X3, T3 = np.array([[0.5, -1.2], [1.0, 0.3], [-0.7, 0.2]]), np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
Y3 = sigmoid(sigmoid(X3 @ W1.T + b1) @ W2.T + b2)
E_batch = sum(0.5 * np.sum((Y3[n] - T3[n]) ** 2) for n in range(3))  # Bouvrie: E = sum over n of E_n
assert np.isclose(loss_fn.forward(Y3, T3), E_batch)
assert not np.isclose(MSELoss().forward(Y3, T3), E_batch, rtol=0.5)  # "mean" gives E_batch / 3 here
assert np.isclose(loss_fn.forward(outputs[-1], t2), E_hand)

# %% [markdown]
# **Backward**, by hand, from the loss down (Tomasi's eqs. (2)–(4), Bouvrie's eqs. (3)–(5)):
#
# | step | formula | shape |
# |---|---|---|
# | start (eq. 4) | $g = \partial E/\partial x^{(2)} = x^{(2)} - t$ | (1, 2) |
# | output sensitivity | $\delta^{(2)} = g \circ \sigma'(u^{(2)}) = g \circ x^{(2)}(1 - x^{(2)})$ | (1, 2) |
# | layer-2 gradients (eq. 2) | $\partial E/\partial W^{(2)} = \delta^{(2)T} x^{(1)}$, $\partial E/\partial b^{(2)} = \delta^{(2)}$ | (2, 3), (2,) |
# | pass down (eq. 3) | $\partial E/\partial x^{(1)} = \delta^{(2)} W^{(2)}$ | (1, 3) |
# | hidden sensitivity (Bouvrie eq. 4) | $\delta^{(1)} = \partial E/\partial x^{(1)} \circ x^{(1)}(1 - x^{(1)})$ | (1, 3) |
# | layer-1 gradients | $\partial E/\partial W^{(1)} = \delta^{(1)T} x^{(0)}$, $\partial E/\partial b^{(1)} = \delta^{(1)}$ | (3, 2), (3,) |
#
# Note that $\sigma'$ is computed from the sigmoid's *output*, $\sigma'(u) = \sigma(u)(1-\sigma(u))$:
# the layer only needs to remember $x^{(\ell)}$.

# %%
g = x2 - t2
delta2 = g * x2 * (1 - x2)
dW2, db2 = delta2.T @ x1, delta2.sum(axis=0)
dx1 = delta2 @ W2
delta1 = dx1 * x1 * (1 - x1)
dW1, db1 = delta1.T @ x0, delta1.sum(axis=0)
dx0 = delta1 @ W1
for name, value in [("g = dE/dx2", g), ("delta2", delta2), ("dE/dx1", dx1), ("delta1", delta1), ("dE/dx0", dx0)]:
    print(f"{name:11} {value.round(5)}")

# %% [markdown]
# Now let the library do the same, one `backward` call per layer from the top, and print what each
# call hands down. The `Sigmoid` layers turn $\partial E/\partial x^{(\ell)}$ into $\delta^{(\ell)}$;
# the `Linear` layers turn $\delta^{(\ell)}$ into $\partial E/\partial x^{(\ell-1)}$ and fill in
# their gradients.

# %%
handed_down = [loss_fn.backward()]
for i in reversed(range(len(net))):
    handed_down.append(net[i].backward(handed_down[-1]))
    print(f"after layer {i} ({type(net[i]).__name__:7}): {handed_down[-1].round(5)}")

# %%
for hand, lib in zip((g, delta2, dx1, delta1, dx0), handed_down):
    np.testing.assert_allclose(lib, hand, rtol=1e-12)
for hand, p in zip((dW1, db1, dW2, db2), net.parameters()):
    np.testing.assert_allclose(p.grad, hand, rtol=1e-12)
print("every delta and every gradient agrees with the hand computation")

# %% [markdown]
# That loop is a `backward_pass` that keeps what each layer hands down. Yours gives the same numbers
# in one call:

# %%
np.testing.assert_allclose(backward_pass(net, loss_fn.backward()), dx0, rtol=1e-12)
for hand, p in zip((dW1, db1, dW2, db2), net.parameters()):
    np.testing.assert_allclose(p.grad, hand, rtol=1e-12)

# %% [markdown]
# And the whole chain, net plus loss, against finite differences (each layer at the input it sees
# inside the net, then end to end):

# %%
report = gradcheck_network(net, x0, loss_fn=MSELoss(reduction="half_sum"), target=t2)
print(report)
assert report.ok

# %% [markdown]
# ## Watch it happen: the back-propagation stepper
#
# The widget runs the same kind of 2-3-2 sigmoid net on 20 random points of the plane; the target
# says whether a point lies in the first or third quadrant, $t = (0, 1)$, or in the second or fourth,
# $t = (1, 0)$. Edges are coloured by their weight (red positive, blue negative; thicker means larger).
#
# * **stage** (or *back* / *next*): three forward stages fill the units with their outputs (yellow,
#   pre-activation $u$ underneath), then three backward stages replace them with sensitivities
#   $\delta$ (red positive, blue negative). The highlighted edges are the layer being computed; the
#   formulas underneath show this sample's numbers, including the weight gradients
#   $\delta\,x^T$.
# * **sample n**: which sample is propagated. The right panel is Algorithm 1 (next section): the dots
#   are three entries of the per-sample gradient $\nabla E_n$, the lines their running average over
#   the first $n$ samples, the dashed lines the gradient of the whole batch.

# %%
stepper = widgets.backprop_stepper(n_samples=20, hidden=3, rng=0)
stepper

# %% [markdown]
# The next cell moves the controls as you would: it steps to the backward pass through the hidden
# layer and checks the widget's numbers against Bouvrie's eq. (4), then moves to the last sample.

# %%
draws = stepper.view.draws
stepper.stage.value = 4  # "bwd 2: hidden delta"
m = stepper.model
assert m.stage == 4 and stepper.view.draws > draws
W1_s, W2_s = m.weights
np.testing.assert_allclose(m.delta1, (W2_s.T @ m.delta2) * m.x1 * (1 - m.x1), rtol=1e-12)
np.testing.assert_allclose(m.dW1, np.outer(m.delta1, m.x0), rtol=1e-12)
stepper.sample.value = 20
print(f"after all {m.n} samples the running average is {m.distance:.1e} (relative) from the batch gradient")
assert m.n == 20 and m.distance < 1e-12

# %% [markdown]
# ## Tomasi's Algorithm 1: one sample at a time
#
# Because $E$ is the mean of the $E_n$, its gradient is the mean of theirs:
# $\frac{\partial E}{\partial w} = \frac1N \sum_n \frac{\partial E_n}{\partial w}$. Tomasi's
# Algorithm 1 computes it literally. For $n = 1, \dots, N$: propagate sample $n$ forward, keeping
# every layer's output; run the backward recursion to get $\nabla E_n$; and fold it into the
# **running average**
#
# $$\nabla E \leftarrow \frac{(n-1)\,\nabla E + \nabla E_n}{n}.$$
#
# After step $n$, $\nabla E$ is the mean of the first $n$ per-sample gradients (that is the curve in
# the widget's right panel), and no list of $N$ gradients is ever stored.

# %% [markdown]
# ## Exercise 3: Algorithm 1
#
# Now put the two halves together. The loop below runs your `backward_pass` for each sample; complete
# it with one line that replaces `grad` (a list with one array per parameter) by the running
# average after sample `n`. After `backward_pass(...)`, each `p.grad` holds $\nabla E_n$ for that
# parameter, and the next sample's backward will overwrite it.

# %% tags=["exercise"]
def algorithm_1(net, loss_fn, X, y):
    params = net.parameters()
    grad = [np.zeros_like(p.data) for p in params]
    for n in range(1, len(X) + 1):  # n counts from 1, as in Algorithm 1
        out = net.forward(X[n - 1:n])  # forward propagation of sample n (a batch of one)
        loss_fn.forward(out, y[n - 1:n])
        backward_pass(net, loss_fn.backward())  # back-propagation: every p.grad now holds the gradient of E_n
        grad = ...  # the running average, one array per parameter
    return grad


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "02-algorithm-1-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def algorithm_1(net, loss_fn, X, y):
    params = net.parameters()
    grad = [np.zeros_like(p.data) for p in params]
    for n in range(1, len(X) + 1):  # n counts from 1, as in Algorithm 1
        out = net.forward(X[n - 1:n])  # forward propagation of sample n (a batch of one)
        loss_fn.forward(out, y[n - 1:n])
        backward_pass(net, loss_fn.backward())  # back-propagation: every p.grad now holds the gradient of E_n
        grad = [((n - 1) * avg + p.grad) / n for avg, p in zip(grad, params)]
    return grad


# %% nbgrader={"grade": true, "grade_id": "02-algorithm-1-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
check_algorithm_1(algorithm_1)

# %% [markdown]
# The library's version, `cnnlab.backprop.backprop_per_sample`, does the same and updates the
# average in place:

# %%
print(inspect.getsource(backprop_per_sample))

# %% [markdown]
# ## Algorithm 1 versus one batched backward pass
#
# Training code never loops over samples: it sends the whole batch through `forward` and `backward`
# once (`backprop_batched`). The two must agree. The batched loss averages over the batch, so its
# backward already carries the factor $1/N$ in every row of $\partial L/\partial\,\text{logits}$; the
# linear layer's $\delta^T X$ then *sums* the rows, and a sum of $\frac1N \nabla E_n$ is the mean.
# The arithmetic is the same; only the order of the additions differs, so the results agree to
# rounding error.
#
# Try it on a small CNN and 64 Fashion-MNIST images, in float64:

# %%
X_train, y_train, classes = load_fashion_mnist("train")
X64, y64 = X_train[:64].astype(np.float64), y_train[:64]
gen = np.random.default_rng(0)
cnn = Sequential([Conv2d(1, 4, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2), Flatten(),
                  Linear(4 * 14 * 14, 10, rng=gen)]).astype(np.float64)
yours = algorithm_1(cnn, CrossEntropyLoss(), X64, y64)
library = backprop_per_sample(cnn, CrossEntropyLoss(), X64, y64)
batched = backprop_batched(cnn, CrossEntropyLoss(), X64, y64)
for (name, p), mine, full in zip(cnn.named_parameters(), yours, batched):
    print(f"{name:9} {str(p.shape):15} largest |Algorithm 1 - batched| = {np.max(np.abs(mine - full)):.1e}"
          f"  (largest entry {np.max(np.abs(full)):.1e})")

# %%
for mine, lib, full in zip(yours, library, batched):
    scale = np.max(np.abs(full))
    np.testing.assert_allclose(mine, full, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(lib, full, rtol=1e-10, atol=1e-10 * scale)

# %% [markdown]
# This equality rests on one assumption: each sample's output depends on that sample alone. A layer
# that mixes the samples of a batch (batch normalisation, lesson 09) breaks it, and then "the
# gradient of the batch" and "the average of per-sample gradients" are different things.

# %% [markdown]
# ## The linear layer as one matrix product (GEMM)
#
# Per sample, the linear layer's weight gradient is an outer product $\delta_n x_n^T$ (out × in), and
# Algorithm 1 adds them up one at a time. For a batch stored as rows, the sum of all of them is a
# single matrix product, and so are the other two results:
#
# $$\frac{\partial L}{\partial W} = \delta^T X, \qquad \frac{\partial L}{\partial b} = \sum_n \delta_n, \qquad
#   \frac{\partial L}{\partial X} = \delta\, W .$$
#
# This is what Veta's slides show in Caffe's `InnerProduct` layer: the forward pass is one call of
# BLAS `gemm` ($C \leftarrow \alpha AB + \beta C$) with the weight transposed, and the backward pass
# is two more, one transposing $\delta$ (for the weight) and one transposing nothing (for the input).
# A tuned `gemm` uses the cache and all cores; a Python loop of small products does not. Compare on
# a batch of 512 flattened images, a 784 → 64 layer and a random stand-in for the sensitivities
# coming from above:

# %%
X_flat = X_train[:512].reshape(512, -1).astype(np.float64)
W_big = np.random.default_rng(1).standard_normal((64, 784)) * 0.03
delta_big = np.random.default_rng(2).standard_normal((512, 64))


def gradients_loop(delta, X, W):
    """One sample at a time: outer products and vector-matrix products."""
    dW, db, dX = np.zeros_like(W), np.zeros(W.shape[0]), np.empty_like(X)
    for n in range(len(X)):
        dW += np.outer(delta[n], X[n])
        db += delta[n]
        dX[n] = delta[n] @ W
    return dW, db, dX


def gradients_gemm(delta, X, W):
    """The whole batch at once: two matrix products and a sum."""
    return delta.T @ X, delta.sum(axis=0), delta @ W


# %%
def best_time(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


t_loop = best_time(lambda: gradients_loop(delta_big, X_flat, W_big))
t_gemm = best_time(lambda: gradients_gemm(delta_big, X_flat, W_big))
print(f"loop over 512 samples: {t_loop * 1e3:7.2f} ms")
print(f"one GEMM per result:   {t_gemm * 1e3:7.2f} ms")
print(f"the loop took {t_loop / t_gemm:.1f} times as long as the GEMM version (on this machine, this time)")

# %% [markdown]
# On an otherwise idle computer the GEMM version usually wins by an order of magnitude or more. The
# numbers are for illustration only: timings depend on the processor, the BLAS library and what else
# the machine is doing (a multi-threaded BLAS on a busy machine can even lose to the loop, because
# its threads wait for cores). That is why this lesson never asserts a timing, only results.

# %% [markdown]
# Speed is only worth having if the answer is the same. Both versions, and the library's `Linear`,
# must give the same gradients (up to rounding):

# %%
fc = Linear(784, 64).astype(np.float64)
fc.weight.data[...] = W_big
fc.forward(X_flat)
dX_lib = fc.backward(delta_big)
for loop_result, gemm_result, lib_result in zip(gradients_loop(delta_big, X_flat, W_big),
                                                gradients_gemm(delta_big, X_flat, W_big),
                                                (fc.weight.grad, fc.bias.grad, dX_lib)):
    np.testing.assert_allclose(gemm_result, loop_result, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lib_result, gemm_result, rtol=1e-12, atol=1e-12)
print("loop, GEMM and cnnlab's Linear agree")

# %% [markdown]
# > **The source says:** in Caffe's `InnerProduct` backward (Veta's slide) the weight gradient is
# > `caffe_cpu_gemm(CblasTrans, CblasNoTrans, N_, K_, M_, 1., top_diff, bottom_data, 1., weight_diff)`:
# > $\beta = 1$, so $C \leftarrow \delta^T X + C$ *adds* to what the weight's diff holds (the input
# > gradient's call has $\beta = 0$).
# >
# > **We do:** $\beta = 0$. A `cnnlab` backward overwrites `.grad`, so no `zero_grad()` is needed; a
# > weight used twice in one network is not supported: `Sequential` refuses it with an error.
# >
# > **Why:** overwriting makes a repeated backward harmless. But a weight used twice has one gradient
# > term per use, and only accumulation sums them: below, two layers share one $W$ (Caffe-style
# > $\beta = 1$ by hand against the overwrite rule, and finite differences), run one by one since
# > `Sequential` will not take them.

# %%
def gemm(alpha, A, B, beta, C):
    """BLAS gemm, as on Veta's slide: returns alpha A B + beta C."""
    return alpha * (A @ B) + beta * C


gen = np.random.default_rng(4)
use1, use2 = Linear(3, 3, rng=gen).astype(np.float64), Linear(3, 3, rng=gen).astype(np.float64)
use2.weight = use1.weight  # tied: both layers multiply by the one Parameter W
try:
    Sequential([use1, Sigmoid(), use2])
    raise AssertionError("Sequential took a shared weight")
except ValueError as refusal:
    print(str(refusal)[:110], "...")
squash = Sigmoid()
x_s, target_s, W = gen.standard_normal((4, 3)), gen.standard_normal((4, 3)), use1.weight
numeric_W = numerical_gradient(lambda: mse.forward(use2(squash(use1(x_s))), target_s), W.data)
hidden = squash(use1(x_s))  # the input of the second use
mse.forward(use2(hidden), target_s)
d_out = mse.backward()
d_u = squash.backward(use2.backward(d_out))  # the deltas of the two uses, for the GEMMs
caffe = gemm(1.0, d_out.T, hidden, 1.0, np.zeros_like(W.data))  # the diff starts at 0
caffe = gemm(1.0, d_u.T, x_s, 1.0, caffe)  # beta = 1: the first use's term is added
use1.backward(d_u)  # cnnlab: each use overwrites W.grad; the first use (its backward runs last) wins
print(f"largest error: overwrite {np.abs(W.grad - numeric_W).max():.1e}, beta = 1 {np.abs(caffe - numeric_W).max():.1e}")
np.testing.assert_allclose(caffe, numeric_W, rtol=1e-6, atol=1e-8)
np.testing.assert_allclose(W.grad, d_u.T @ x_s, rtol=1e-12, atol=1e-15)  # only the first use's term
assert np.abs(W.grad - numeric_W).max() > 1e-3, "overwriting loses the second use's term"

# %% [markdown]
# ## What to remember
#
# * Back-propagation is the chain rule evaluated from the loss downwards. The sensitivity
#   $\delta = \partial E/\partial u$ of a unit is computed once and gives both the gradient of every
#   weight into that unit ($\delta$ times its input) and what is passed further down.
# * A layer is a module: `forward` keeps what it needs; `backward(dout)` *overwrites* its parameter
#   gradients and *returns* $\partial L/\partial x$ for the layer below.
# * For a linear layer on a batch: $\partial L/\partial W = \delta^T X$,
#   $\partial L/\partial b = \sum_n \delta_n$, $\partial L/\partial X = \delta W$; let the shapes
#   catch a transposition.
# * Tomasi's Algorithm 1 (per sample, running average) and one batched pass give the same gradient
#   when no layer mixes samples; the batched one is a few matrix products and much faster.
#
# Lesson 03 writes each layer's backward as a product with its **Jacobian**, and looks at those
# matrices.
