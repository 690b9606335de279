# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Jacobians: what a layer's backward really computes
#
# In lesson 02 every layer had a `backward` that turned the gradient with respect to its output into
# the gradient with respect to its input (and filled in the gradients of its parameters). Tomasi's
# notes describe the same step with two matrices per layer, the layer's **Jacobians**. This lesson
# builds those matrices explicitly, looks at them, and checks them:
#
# * what the two Jacobians of a layer are, and what shape they have;
# * why row $i$ of a Jacobian is what `backward` returns for the unit vector $e_i$;
# * why `backward` computes $g\,J$ *without* ever forming $J$, and how much that saves;
# * the typical structure: diagonal (point activations), banded with shared weights (convolution),
#   0/1 selection (max-pooling); the closed forms of Tomasi's appendix;
# * the chain rule as a product of Jacobians, and what singular values say about gradients that
#   shrink or grow on their way back through many layers.

# %%
# %matplotlib widget
import matplotlib.pyplot as plt
import numpy as np

import widgets
from cnnlab import Sequential
from cnnlab.data import load_fashion_mnist
from cnnlab.jacobian import (jacobian_input, jacobian_params, layer_jacobians, numerical_jacobian,
                             point_activation_jacobians, relu_maxpool_jacobians)
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from cnnlab.losses import MSELoss

# %% [markdown]
# ## Two matrices per layer
#
# Flatten everything into vectors. Layer $\ell$ reads $M$ numbers $x^{(\ell-1)}$, has $P$ parameters
# $w^{(\ell)}$ and writes $D$ numbers $x^{(\ell)}$. Tomasi treats every derivative of the error
# $E_n$ with respect to a vector as a **row** vector; then back-propagation is two
# vector-matrix products per layer (his eqs. (2) and (3)):
#
# $$\frac{\partial E_n}{\partial w^{(\ell)}} = \frac{\partial E_n}{\partial x^{(\ell)}}\,
#   \frac{\partial x^{(\ell)}}{\partial w^{(\ell)}}, \qquad
#   \frac{\partial E_n}{\partial x^{(\ell-1)}} = \frac{\partial E_n}{\partial x^{(\ell)}}\,
#   \frac{\partial x^{(\ell)}}{\partial x^{(\ell-1)}}.$$
#
# The two matrices on the right are the layer's Jacobians (Tomasi's eq. (5)). Entry $(i, j)$ of
# $J_x = \partial x^{(\ell)} / \partial x^{(\ell-1)}$ is $\partial x^{(\ell)}_i / \partial x^{(\ell-1)}_j$:
# **one row per output, one column per input**, so $J_x$ is $D \times M$ and
# $J_w = \partial x^{(\ell)} / \partial w^{(\ell)}$ is $D \times P$.
#
# `cnnlab.jacobian` forms them for one example (a batch axis of 1): `jacobian_input(layer, x)` and
# `jacobian_params(layer, x)`, the parameters flattened in `parameters()` order (weight row by row,
# then bias). Here are four layers on one 6 × 6 image (float64, as for every exact check):

# %%
x_img = np.random.default_rng(0).standard_normal((1, 1, 6, 6))
examples = {
    "Conv2d(1, 2, 3)": (Conv2d(1, 2, 3, rng=0), x_img),
    "ReLU()": (ReLU(), x_img),
    "MaxPool2d(2)": (MaxPool2d(2), x_img),
    "Linear(36, 4)": (Linear(36, 4, rng=1), x_img.reshape(1, 36)),
}
shapes = {}
for name, (layer, x) in examples.items():
    layer.astype(np.float64)
    out = layer.forward(x)
    J_x, J_w = jacobian_input(layer, x), jacobian_params(layer, x)
    shapes[name] = J_x.shape, J_w.shape
    print(f"{name:16} {str(x.shape):14} -> {str(out.shape):14} J_x {str(J_x.shape):10} J_w {J_w.shape}")

# %% [markdown]
# Check the shapes by hand. The convolution turns 36 pixels into 2 maps of 4 × 4 = 32 numbers and
# has 2 · 9 weights plus 2 biases; ReLU keeps all 36 numbers; pooling 2 × 2 windows leaves 3 × 3 = 9;
# the linear layer has a 4 × 36 weight and 4 biases.

# %%
assert shapes == {
    "Conv2d(1, 2, 3)": ((32, 36), (32, 20)),
    "ReLU()": ((36, 36), (36, 0)),
    "MaxPool2d(2)": ((9, 36), (9, 0)),
    "Linear(36, 4)": ((4, 36), (4, 148)),
}

# %% [markdown]
# ## Row $i$ of $J$ is `backward` of a unit vector
#
# A layer's `backward(g)` returns the row vector $g\,J_x$ (and leaves $g\,J_w$ in the parameters'
# `.grad`). Feed it the unit vector $e_i$ (a 1 at output $i$, zeros elsewhere) and what comes back
# is $e_i J_x$, row $i$ of the Jacobian. That is exactly how `jacobian_input` builds $J_x$: one
# backward pass per output.

# %%
conv, x = examples["Conv2d(1, 2, 3)"]
out = conv.forward(x)
i = 5
e_i = np.zeros_like(out)
e_i.flat[i] = 1.0
row_i = conv.backward(e_i).ravel()
J_conv = jacobian_input(conv, x)
print(f"row {i} from backward(e_{i}):", np.round(row_i[:12], 3), "...")
assert np.array_equal(row_i, J_conv[i])

# %% [markdown]
# Finite differences reach the same matrix from the other side: nudge **input** $j$ by $\pm\epsilon$,
# watch all outputs move, and you get **column** $j$ (`numerical_jacobian`). Two independent routes,
# one row at a time and one column at a time, must meet:

# %%
def forward():
    return conv.forward(x)


J_x_fd = numerical_jacobian(forward, x)
J_w_fd = np.concatenate([numerical_jacobian(forward, p.data) for p in conv.parameters()], axis=1)
J_w_conv = jacobian_params(conv, x)
err_x, err_w = np.abs(J_conv - J_x_fd).max(), np.abs(J_w_conv - J_w_fd).max()
print(f"max |J - finite differences|: J_x {err_x:.1e}, J_w {err_w:.1e}")
assert err_x < 1e-8 and err_w < 1e-8

# %% [markdown]
# ## Backward computes $g\,J$ without forming $J$
#
# During training the upstream gradient $g = \partial E_n / \partial x^{(\ell)}$ is a single row
# vector, and all we ever need is $g\,J_x$ and $g\,J_w$ (in column-vector language $J^\top g$, which is
# why this product is often called a vector-Jacobian product). A layer's backward computes those
# directly:

# %%
g = np.random.default_rng(1).standard_normal(out.shape)
conv.forward(x)
dx = conv.backward(g)
dw = np.concatenate([p.grad.ravel() for p in conv.parameters()])
assert np.allclose(dx.ravel(), g.ravel() @ J_conv)
assert np.allclose(dw, g.ravel() @ J_w_conv)

# %% [markdown]
# Why not simply form $J$? Take a realistic first layer for Fashion-MNIST, 32 filters of 3 × 3
# with padding 1, on one 28 × 28 image. Each output reads only 9 pixels, so its backward pass needs
# about 9 multiply-adds per output for $dx$ and 9 for $dw$. The Jacobians have an entry for every
# (output, input) pair, almost all of them zero:

# %%
X_test, _, _ = load_fashion_mnist("test")
first = Conv2d(1, 32, 3, padding=1, rng=0)
image = X_test[:1]
out_first = first.forward(image)
dx_first = first.backward(np.ones_like(out_first))  # runs fine: nothing of size D x M is needed

D, M = out_first.size, image.size
P = sum(p.size for p in first.parameters())
entries = D * M + D * P
work = 2 * 9 * D + D  # multiply-adds of backward: dx, dweight (9 per output each), dbias
print(f"D = {D:,} outputs, M = {M} inputs, P = {P} parameters")
print(f"J_x: {D:,} x {M} = {D * M:,} entries; J_w: {D:,} x {P} = {D * P:,} entries")
print(f"together {entries * 4 / 1e6:.0f} MB in float32; at most 9 of the {M} entries per row of J_x are nonzero")
print(f"backward: about {work:,} multiply-adds, {entries / work:.0f} times fewer than J has entries")

# %%
assert (D, M, P) == (32 * 28 * 28, 28 * 28, 32 * 9 + 32)
assert dx_first.shape == image.shape
assert entries > 50 * work

# %% [markdown]
# Building $J_x$ through backward would take $D$ = 25,088 backward passes, one per row: back-propagation
# gets the same $g\,J$ with a single one. The Jacobians are a way of *thinking* about backward (and of
# testing it); they are never formed in training.

# %% [markdown]
# ## What Jacobians look like
#
# ### Point activations: diagonal
#
# ReLU, sigmoid and tanh apply one scalar function $h$ to every entry: output $i$ depends on input $i$
# only, so $J_x$ is diagonal with $h'(x_i)$ on the diagonal (Tomasi's appendix).

# %%
relu, x = examples["ReLU()"]
J_relu = jacobian_input(relu, x)
assert np.array_equal(J_relu, np.diag(np.diag(J_relu))), "no entry off the diagonal"
assert np.array_equal(np.diag(J_relu), (x.ravel() > 0).astype(float)), "h'(x) = 1 where x > 0, else 0"

tanh = Tanh()
J_tanh = jacobian_input(tanh, x)
assert np.allclose(J_tanh, np.diag(1 - np.tanh(x.ravel()) ** 2))

# %% [markdown]
# ### Convolution: banded, with shared weights
#
# Take one 3 × 3 filter on the 6 × 6 image (no padding, so 4 × 4 outputs). Each output reads one
# 3 × 3 window, so each row of $J_x$ has 9 nonzero entries, and they are the **same nine weights** in
# every row, only shifted: moving the output one column to the right moves the row one input column
# to the right; one output row down moves it 6 input columns (one image row). A dense layer with the
# same shape would have 16 × 36 = 576 free numbers; this one has 9.

# %%
conv1 = Conv2d(1, 1, 3, bias=False, rng=2).astype(np.float64)
J_c = jacobian_input(conv1, x_img)
distinct = np.unique(J_c[J_c != 0])
print("J_x shape", J_c.shape, "| nonzeros per row:", set((J_c != 0).sum(axis=1).tolist()),
      "| distinct nonzero values:", distinct.size)
assert J_c.shape == (16, 36) and ((J_c != 0).sum(axis=1) == 9).all()
assert distinct.size == conv1.weight.size == 9
assert np.allclose(distinct, np.sort(conv1.weight.data.ravel())), "the nonzeros are the kernel weights"
assert np.array_equal(J_c[1, 1:], J_c[0, :-1]), "next output column: the row shifts by one input"
assert np.array_equal(J_c[4, 6:], J_c[0, :-6]), "next output row: the row shifts by one image row (6)"

# %% [markdown]
# ### Max-pooling: a 0/1 selection
#
# A max-pooling output copies the largest entry of its window, so its row of $J_x$ has a single 1,
# at that entry, and zeros everywhere else (Tomasi's appendix).

# %%
pool, x = examples["MaxPool2d(2)"]
J_pool = jacobian_input(pool, x)
assert set(np.unique(J_pool)) == {0.0, 1.0}
assert (J_pool.sum(axis=1) == 1).all(), "exactly one 1 per row"
assert np.array_equal(x.ravel()[J_pool.argmax(axis=1)], pool.forward(x).ravel()), "the 1 marks the maximum"

# %% [markdown]
# The three side by side (red positive, blue negative, white zero):

# %%
with plt.ioff():
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.6))
for ax, (title, J) in zip(axes, [("ReLU: diagonal", J_relu), ("Conv2d 3 × 3: banded, shared", J_c),
                                 ("MaxPool2d(2): 0/1 selection", J_pool)]):
    limit = np.abs(J).max()
    ax.imshow(J, cmap="RdBu_r", vmin=-limit, vmax=limit, interpolation="nearest")
    ax.set_title(f"{title}\n{J.shape[0]} × {J.shape[1]}", fontsize=9)
    ax.set_xlabel("input j", fontsize=8), ax.set_ylabel("output i", fontsize=8)
    ax.tick_params(labelsize=7)
fig.tight_layout()
fig

# %% [markdown]
# ## Exercise 1: the Jacobian of a linear layer followed by ReLU
#
# Tomasi's layer is $x^{(\ell)} = h(a)$ with activations $a = W x + b$. By the chain rule its input
# Jacobian is the product of the two you have just met: the diagonal of $h'(a_i)$ times $W$, i.e.
# $J_{ij} = h'(a_i)\, W_{ij}$. Build it with NumPy for ReLU ($h'(a) = 1$ for $a > 0$, else 0), at the
# input `x5`, from `W5` and `b5`. Mind the orientation: one row per output.

# %%
lin = Linear(5, 4, rng=11).astype(np.float64)
W5, b5 = lin.weight.data, lin.bias.data
x5 = np.random.default_rng(111).standard_normal((1, 5))
print("W5", W5.shape, "b5", b5.shape, "x5", x5.shape)
assert 0 < ((W5 @ x5[0] + b5) > 0).sum() < 4, "some units are active, some are not"

# %% tags=["exercise"]
a = ...  # the activations W x + b, shape (4,)
J = ...  # the Jacobian of ReLU(W x + b) with respect to x, shape (4, 5)

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "03-linear-relu-jacobian-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
a = W5 @ x5[0] + b5
J = (a > 0)[:, None] * W5

# %% nbgrader={"grade": true, "grade_id": "03-linear-relu-jacobian-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.jacobians import check_linear_relu_jacobian

check_linear_relu_jacobian(J, W5, b5, x5)

# %% [markdown]
# And the library agrees: the same block as two cnnlab layers, its Jacobian formed from backward.

# %%
assert np.allclose(J, jacobian_input(Sequential([lin, ReLU()]), x5))

# %% [markdown]
# ## Tomasi's closed forms
#
# Tomasi's appendix writes both Jacobians of such a layer in closed form, with $\tilde{x} = [x; 1]$
# (the input with a 1 appended for the bias) and the Kronecker delta $\delta_{iq}$:
#
# $$\frac{\partial x^{(\ell)}_i}{\partial W_{qj}} = \delta_{iq}\, h'(a_i)\, \tilde{x}_j, \qquad
#   \frac{\partial x^{(\ell)}_i}{\partial x^{(\ell-1)}_j} = h'(a_i)\, W_{ij}.$$
#
# Output $i$ only depends on row $i$ of $W$, hence the $\delta_{iq}$: with the parameters listed row by
# row, $J_w$ is block diagonal. The
# function `point_activation_jacobians` evaluates these formulas; compare them with the Jacobians that
# backward produces for `Linear(4, 3)` followed by `Tanh` ($h'(a) = 1 - \tanh^2 a$):

# %%
block = Sequential([Linear(4, 3, rng=5), Tanh()]).astype(np.float64)
x4 = np.random.default_rng(4).standard_normal((1, 4))
W, b = block[0].weight.data, block[0].bias.data
J_w_closed, J_x_closed = point_activation_jacobians(W, b, x4[0], lambda a: 1 - np.tanh(a) ** 2)
assert np.allclose(J_x_closed, jacobian_input(block, x4))

# %% [markdown]
# For $J_w$ only the order of the columns differs. Tomasi treats the bias as an extra column of $W$
# and lists $[W \mid b]$ row by row: $W_{00}, \ldots, W_{03}, b_0, W_{10}, \ldots$. cnnlab lists the
# whole weight first, then the bias. Reorder our columns into his order and the matrices agree:

# %%
ours = jacobian_params(block, x4)
weight_columns = np.arange(12).reshape(3, 4)   # W[q, j] is column 4 q + j in cnnlab's order
bias_columns = 12 + np.arange(3)[:, None]      # b[q] is column 12 + q
tomasi_order = np.concatenate([weight_columns, bias_columns], axis=1).ravel()
print("cnnlab columns in Tomasi's order:", tomasi_order)
assert np.allclose(J_w_closed, ours[:, tomasi_order])
assert (J_w_closed[0, 5:] == 0).all(), "output 0 does not depend on rows 1 and 2 of [W | b]"

# %% [markdown]
# For ReLU followed by max-pooling, output $i$ copies the largest ReLU output in its window $P(i)$,
# at $\hat q = \arg\max_{q \in P(i)} h(a_q)$, and only that one activation matters:
#
# $$\frac{\partial x^{(\ell)}_i}{\partial W_{qj}} = \delta_{q\hat q}\, h'(a_{\hat q})\, \tilde{x}_j, \qquad
#   \frac{\partial x^{(\ell)}_i}{\partial x^{(\ell-1)}_j} = h'(a_{\hat q})\, W_{\hat q j}.$$
#
# A convolution is such a $W x + b$ too, with the banded matrix you saw above as $W$. So take a
# `Conv2d(1, 2, 3, padding=1)` on a 4 × 4 input, read off its matrix and bias vector, list the 2 × 2
# pooling windows as index sets into its 32 outputs, and compare the closed form (`relu_maxpool_jacobians`)
# with the backward of the cnnlab layers Conv2d → ReLU → MaxPool2d(2):

# %%
conv2 = Conv2d(1, 2, 3, padding=1, rng=6).astype(np.float64)
x16 = np.random.default_rng(16).standard_normal((1, 1, 4, 4))
W_conv = jacobian_input(conv2, x16)                 # (32, 16): the convolution as a matrix
b_conv = conv2.forward(np.zeros_like(x16)).ravel()  # (32,): each map's bias at every position
assert np.allclose(W_conv @ x16.ravel() + b_conv, conv2.forward(x16).ravel())

# output (c, r, s) of the pooling reads rows 2r, 2r+1 and columns 2s, 2s+1 of map c (4 x 4 = 16 each)
windows = [np.array([16 * c + 4 * (2 * r + i) + (2 * s + j) for i in (0, 1) for j in (0, 1)])
           for c in range(2) for r in range(2) for s in range(2)]
_, J_x_closed = relu_maxpool_jacobians(W_conv, b_conv, x16.ravel(), windows)
J_x_library = jacobian_input(Sequential([conv2, ReLU(), MaxPool2d(2)]), x16)
print(f"closed form {J_x_closed.shape}, max |closed form - backward| = {np.abs(J_x_closed - J_x_library).max():.1e}")
assert np.allclose(J_x_closed, J_x_library)

# %% [markdown]
# One detail: at exactly $a = 0$ ReLU has no derivative. Tomasi takes $h'(0) = 1$, cnnlab (like
# PyTorch) takes 0. Random inputs never land there; an image with a flat background can produce
# ties in a pooling window, which the widget below deals with.

# %% [markdown]
# ## Exercise 2: $g\,J_w$ without forming $J_w$
#
# Backward never forms $J_w$; it uses the closed form. With the upstream row vector $g$ (one entry
# per output), entry $(q, j)$ of $g\,J_w$ is $\sum_i g_i\, \delta_{iq}\, h'(a_i)\, \tilde x_j =
# g_q\, h'(a_q)\, \tilde x_j$: the Kronecker delta kills the sum. So, with
# $\delta_q = g_q\, h'(a_q)$, the weight gradient is the **outer product** $\delta\, x^\top$ and the
# bias gradient is $\delta$ itself (the column of $\tilde x$ that holds the 1).
#
# For the `Linear(4, 3)` → `Tanh` block above, at input `x4` and with the upstream gradient `g3`,
# compute `dW` (shape (3, 4), like the weight) and `db` (shape (3,)) from `W`, `b`, `x4` and `g3`.

# %%
g3 = np.random.default_rng(3).standard_normal((1, 3))
print("W", W.shape, "b", b.shape, "x4", x4.shape, "g3", g3.shape)

# %% tags=["exercise"]
a = ...   # activations W x + b, shape (3,)
dW = ...  # shape (3, 4)
db = ...  # shape (3,)

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "03-tanh-layer-gradients-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
a = W @ x4[0] + b
delta = g3[0] * (1 - np.tanh(a) ** 2)
dW = np.outer(delta, x4[0])
db = delta

# %% nbgrader={"grade": true, "grade_id": "03-tanh-layer-gradients-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.jacobians import check_tanh_layer_gradients

check_tanh_layer_gradients(dW, db, W, b, x4, g3)

# %% [markdown]
# That is what the block's backward leaves in `.grad`, and it is $g\,J_w$ for the explicit $J_w$:

# %%
block.forward(x4)
block.backward(g3)
assert np.allclose(dW, block[0].weight.grad) and np.allclose(db, block[0].bias.grad)
assert np.allclose(np.concatenate([dW.ravel(), db]), g3[0] @ jacobian_params(block, x4))

# %% [markdown]
# ## The chain rule is a product of Jacobians
#
# A network is a chain of layers, so by the chain rule its Jacobian is the product of the layers'
# Jacobians, last layer on the left: $\partial x^{(L)} / \partial x^{(0)} = J^{(L)}_x \cdots J^{(1)}_x$.
# `layer_jacobians(net, x)` forms every layer's Jacobians at the input that layer receives. Multiply
# them and compare with finite differences of the whole network:

# %%
net = Sequential([Conv2d(1, 2, 3, padding=1, rng=7), ReLU(), MaxPool2d(2), Flatten(),
                  Linear(8, 3, rng=8)]).astype(np.float64)
x_net = np.random.default_rng(5).standard_normal((1, 1, 4, 4))
per_layer = layer_jacobians(net, x_net)
product = np.eye(x_net.size)
for lj in per_layer:
    print(f"layer {lj.name} {lj.layer.split('(')[0]:10} J_x {lj.J_x.shape}")
    product = lj.J_x @ product

J_net = numerical_jacobian(lambda: net.forward(x_net), x_net)
print("network Jacobian", product.shape, f"| max |product - finite differences| = {np.abs(product - J_net).max():.1e}")

# %%
assert [lj.J_x.shape for lj in per_layer] == [(32, 16), (32, 32), (8, 32), (8, 8), (3, 8)]
assert np.abs(product - J_net).max() < 1e-7
g_net = np.random.default_rng(6).standard_normal((1, 3))
net.forward(x_net)
assert np.allclose(net.backward(g_net).ravel(), g_net[0] @ product)

# %% [markdown]
# Back-propagation evaluates the same product, but from the left and with a row vector:
# $((g\,J^{(5)})\,J^{(4)}) \cdots J^{(1)}$. Every step is a vector times a matrix, never a matrix
# times a matrix, and no matrix is ever written down.

# %% [markdown]
# ## Exercise 3: Algorithm 1 with the Jacobians written out
#
# Now do by hand, for one example, what `backward` does without the matrices: form every layer's
# Jacobians explicitly and run the backward recursion of Tomasi's Algorithm 1 as products of a row
# vector with them. The net is
#
# $$x^{(0)} = x \;\to\; x^{(1)} = W_1 x^{(0)} + b_1 \;\to\; x^{(2)} = \tanh x^{(1)} \;\to\;
#   x^{(3)} = W_2 x^{(2)} + b_2 \;\to\; L,$$
#
# three layers in Tomasi's sense (two linear, one point activation in between). Write three functions.
#
# **`linear_jacobians(x, W)`** for $y = W x + b$ with $W$ of shape $D \times M$. Since
# $y_i = \sum_j W_{ij} x_j + b_i$: $\partial y_i / \partial x_j = W_{ij}$,
# $\partial y_i / \partial W_{qj} = \delta_{iq}\, x_j$ and $\partial y_i / \partial b_q = \delta_{iq}$.
# $J_x$ is $D \times M$. $J_w$ is $D \times (DM + D)$, with $w$ in cnnlab's `parameters()` order: $W$ flattened
# row by row ($W_{qj}$ is entry $qM + j$), then $b$. So the weight part of $J_w$ is block diagonal, one
# block $x^\top$ per row, which is the Kronecker product $I_D \otimes x^\top$, and the bias part is the
# identity $I_D$. The bias $b$ does not appear in either matrix, so the function does not take it.
#
# **`tanh_jacobian(a)`** for $y = \tanh(a)$, $a$ with $D$ entries: a point activation, so
# $J = \mathrm{diag}(h'(a_1), \ldots, h'(a_D))$ with $h'(a) = 1 - \tanh^2 a$.
#
# **`backward_with_jacobians(x, layers, dL_dout)`**: run the forward pass (remember each layer's input),
# then, from the upstream row vector $g^{(3)} = \partial L / \partial x^{(3)}$ (`dL_dout`), apply Tomasi's
# eqs. (2) and (3) layer by layer, $\ell = 3, 2, 1$:
#
# $$g_w^{(\ell)} = g^{(\ell)} J_w^{(\ell)}, \qquad g^{(\ell-1)} = g^{(\ell)} J_x^{(\ell)},$$
#
# every Jacobian evaluated at the input the layer received. The tanh layer has no parameters, only
# $J_x$. Return the gradients of the two parameter vectors, $w_1 = (W_1, b_1)$ of layer 1 and
# $w_2 = (W_2, b_2)$ of layer 3, in that order: $[g_w^{(1)}, g_w^{(3)}]$, each a vector in the order of
# the columns of its $J_w$. The check uses a net with 5 inputs, 3 hidden units and
# **one** output, so no matrix is square and a transposed one does not fit.

# %% tags=["exercise"]
def linear_jacobians(x, W):
    """Both Jacobians of y = W x + b at x (Tomasi's eq. (5)); b does not enter them.

    Inputs:
    - x: the layer's input, shape (M,)
    - W: the weight, shape (D, M)
    Returns (J_x, J_w):
    - J_x: dy/dx, shape (D, M)
    - J_w: dy/dw, shape (D, D * M + D), w = W flattened row by row, then b
    """
    J_x = ...
    J_w = ...
    return J_x, J_w


def tanh_jacobian(a):
    """dy/da of y = tanh(a), elementwise. a: shape (D,). Returns J, shape (D, D)."""
    return ...


def backward_with_jacobians(x, layers, dL_dout):
    """Algorithm 1's backward pass with explicit Jacobians, for x -> Linear -> tanh -> Linear -> loss.

    Inputs:
    - x: one example, shape (M,)
    - layers: [(W1, b1), (W2, b2)], W1 (H, M), b1 (H,), W2 (K, H), b2 (K,)
    - dL_dout: dL/dx^(3), the gradient of the loss with respect to the output, shape (K,)
    Returns [dL/dw1, dL/dw2]: shapes (H * M + H,) and (K * H + K,), each in the order of J_w's columns.
    """
    ...  # forward pass, keeping every layer's input; then g_w = g J_w and g = g J_x from the last layer down
    return ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "03-jacobian-backprop-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def linear_jacobians(x, W):
    """Both Jacobians of y = W x + b at x (Tomasi's eq. (5)); b does not enter them.

    Inputs:
    - x: the layer's input, shape (M,)
    - W: the weight, shape (D, M)
    Returns (J_x, J_w):
    - J_x: dy/dx, shape (D, M)
    - J_w: dy/dw, shape (D, D * M + D), w = W flattened row by row, then b
    """
    D = W.shape[0]
    J_x = W.copy()
    J_w = np.hstack([np.kron(np.eye(D), x[None, :]), np.eye(D)])
    return J_x, J_w


def tanh_jacobian(a):
    """dy/da of y = tanh(a), elementwise. a: shape (D,). Returns J, shape (D, D)."""
    return np.diag(1 - np.tanh(a) ** 2)


def backward_with_jacobians(x, layers, dL_dout):
    """Algorithm 1's backward pass with explicit Jacobians, for x -> Linear -> tanh -> Linear -> loss.

    Inputs:
    - x: one example, shape (M,)
    - layers: [(W1, b1), (W2, b2)], W1 (H, M), b1 (H,), W2 (K, H), b2 (K,)
    - dL_dout: dL/dx^(3), the gradient of the loss with respect to the output, shape (K,)
    Returns [dL/dw1, dL/dw2]: shapes (H * M + H,) and (K * H + K,), each in the order of J_w's columns.
    """
    (W1, b1), (W2, b2) = layers
    a = W1 @ x + b1           # x^(1), the input of tanh
    h = np.tanh(a)            # x^(2), the input of layer 3
    J_x3, J_w3 = linear_jacobians(h, W2)
    J_x1, J_w1 = linear_jacobians(x, W1)
    g = dL_dout               # g^(3)
    g_w3 = g @ J_w3
    g = g @ J_x3              # g^(2)
    g = g @ tanh_jacobian(a)  # g^(1)
    g_w1 = g @ J_w1
    return [g_w1, g_w3]


# %% nbgrader={"grade": true, "grade_id": "03-jacobian-backprop-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.jacobians import check_jacobian_backprop

check_jacobian_backprop(linear_jacobians, tanh_jacobian, backward_with_jacobians)

# %% [markdown]
# The same net in cnnlab, with a squared-error loss: its backward leaves the same numbers in `.grad`,
# without forming a single Jacobian.

# %%
net3 = Sequential([Linear(4, 2, rng=12), Tanh(), Linear(2, 1, rng=13)]).astype(np.float64)
x_one = np.random.default_rng(14).standard_normal(4)
mse = MSELoss()
mse.forward(net3.forward(x_one[None]), np.array([[0.5]]))
dL_dout = mse.backward()
net3.backward(dL_dout)
gw1, gw3 = backward_with_jacobians(x_one, [(net3[0].weight.data, net3[0].bias.data),
                                           (net3[2].weight.data, net3[2].bias.data)], dL_dout[0])
assert np.allclose(gw1, np.concatenate([net3[0].weight.grad.ravel(), net3[0].bias.grad]))
assert np.allclose(gw3, np.concatenate([net3[2].weight.grad.ravel(), net3[2].bias.grad]))

# %% [markdown]
# ## The Jacobian viewer
#
# The widget shows both Jacobians of any layer of a small net (by default
# Conv2d(1, 2, 3, padding=1) → ReLU → MaxPool2d(2) → Flatten → Linear(32, 3)) at the input that
# layer receives, for a Fashion-MNIST test image shrunk to 8 × 8 or a random input. Pick a layer
# and look for the patterns above: three diagonal bands per filter in the convolution (one per row
# of the kernel), the diagonal of ReLU, a single 1 per row for pooling, the identity of Flatten.
# The plot below the matrices shows their singular values (next section). The badge compares both
# matrices with finite differences.
# Where the function has a kink (a tie in a pooling window, which a flat image background produces)
# there is no derivative, and the two one-sided slopes differ; there the badge only asks that the
# value backward uses is one of them.

# %%
viewer = widgets.jacobian_viewer()
viewer

# %% [markdown]
# Driving the viewer from code, as the tests do: choose the pooling layer, then a random input.

# %%
draws = viewer.view.draws
viewer.layer.value = 2  # MaxPool2d(2)
m = viewer.model
assert m.layer_index == 2 and viewer.view.draws > draws
assert m.J_x.shape == (32, 128) and m.J_w.shape == (32, 0), "8 x 8 maps: 2 x 64 inputs, 2 x 16 outputs"
assert (m.J_x.sum(axis=1) == 1).all(), "one 1 per row"
assert m.matches, viewer.badge.value
print(viewer.status.text)

viewer.source.value = "random"
viewer.sample.value = 7
assert m.source == "random" and m.sample == 7 and m.matches
assert np.allclose(m.x, np.random.default_rng(7).standard_normal((1, 1, 8, 8)))

# %% [markdown]
# ## Singular values: how much a layer can stretch a gradient
#
# The largest singular value $\sigma_1$ of $J$ bounds how much the layer can amplify any upstream
# gradient: $\lVert g\,J \rVert \le \sigma_1 \lVert g \rVert$ for every $g$, with equality when $g$ is
# the first left singular vector $u_1$. Random gradients rarely come close. Check it on the
# convolution of the network above:

# %%
J_first = per_layer[0].J_x
U, sigma, Vt = np.linalg.svd(J_first)
gs = np.random.default_rng(8).standard_normal((2000, J_first.shape[0]))
ratios = np.linalg.norm(gs @ J_first, axis=1) / np.linalg.norm(gs, axis=1)
u1 = U[:, 0]  # the first left singular vector: the upstream gradient stretched the most
print(f"singular values from {sigma[0]:.3f} down to {sigma[-1]:.3f}; "
      f"largest stretch over 2000 random g: {ratios.max():.3f}; stretch of u1: {np.linalg.norm(u1 @ J_first):.3f}")
assert ratios.max() <= sigma[0] + 1e-12
assert np.isclose(np.linalg.norm(u1 @ J_first), sigma[0])

# %% [markdown]
# Through $L$ layers a gradient is multiplied by $L$ Jacobians. If their singular values sit
# below 1 it shrinks geometrically (a **vanishing** gradient: the first layers barely learn), above 1
# it grows geometrically (an **exploding** gradient). The cleanest case: 20 linear layers whose
# weights are a scaled orthogonal matrix $s\,Q$, so that every singular value of every Jacobian is
# exactly $s$. Then the gradient's norm after $k$ layers is $s^k \lVert g \rVert$:

# %%
def orthogonal_stack(scale, depth=20, n=16, seed=0):
    gen = np.random.default_rng(seed)
    layers = [Linear(n, n, bias=False, rng=gen).astype(np.float64) for _ in range(depth)]
    for layer in layers:
        q, _ = np.linalg.qr(gen.standard_normal((n, n)))
        layer.weight.data[...] = scale * q
    return Sequential(layers)


depth, scales = 20, (0.8, 1.0, 1.25)
g16 = np.random.default_rng(9).standard_normal((1, 16))
norms = {}
for s in scales:
    stack = orthogonal_stack(s, depth)
    stack.forward(np.random.default_rng(10).standard_normal((1, 16)))
    grad, seen = g16, [np.linalg.norm(g16)]
    for layer in reversed(stack.layers):
        grad = layer.backward(grad)
        seen.append(np.linalg.norm(grad))
    norms[s] = np.array(seen)
    print(f"s = {s}: gradient norm {norms[s][0]:.2f} at the output, {norms[s][-1]:.3g} after {depth} layers")

# %%
for s in scales:
    assert np.allclose(norms[s], np.linalg.norm(g16) * s ** np.arange(depth + 1))
assert norms[0.8][-1] < 0.02 * norms[0.8][0] and norms[1.25][-1] > 50 * norms[1.25][0]

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6, 3.4))
for s in scales:
    ax.semilogy(norms[s], "o-", ms=3, label=f"every singular value = {s}")
ax.set_xticks(range(0, depth + 1, 5))
ax.set_xlabel("layers passed on the way back")
ax.set_ylabel(r"$\|\partial E / \partial x\|$")
ax.legend(fontsize=8)
ax.grid(alpha=0.3)
fig.tight_layout()
fig

# %% [markdown]
# Real layers have a spread of singular values (the viewer shows them), so the picture is less
# clean, but the lesson holds: how gradients survive the trip back through a deep net depends on
# the Jacobians' singular values, and those depend on the weights. Lesson 08 uses this to choose the
# initial weights (Xavier, He, orthogonal, LSUV).

# %% [markdown]
# ## Summary
#
# * A layer has two Jacobians (Tomasi's eq. (5)): $J_x$ ($D \times M$) and $J_w$ ($D \times P$), one row
#   per output. Row $i$ is `backward(e_i)`.
# * `backward(g)` computes $g\,J_x$ and $g\,J_w$ directly; forming $J$ would cost orders of magnitude
#   more memory and work.
# * Point activations have diagonal Jacobians, convolutions banded ones that repeat the same few
#   weights, max-pooling a single 1 per row; Tomasi's closed forms give them for a whole layer.
# * The network's Jacobian is the product of the layers' Jacobians (the chain rule), and its singular
#   values decide whether gradients vanish or explode with depth.
