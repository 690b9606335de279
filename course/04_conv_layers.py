# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Convolution layers
#
# A convolution layer is a linear layer with two constraints: each output looks at a small window
# of the input only, and every window is weighed by the *same* small kernel. Both constraints
# change how the gradient is computed. This lesson derives the three gradients of a convolution
# layer (with respect to its input, its kernels and its biases) and checks each one against
# `cnnlab.layers.Conv2d`. Then it does the same for Bouvrie's trainable subsampling layer and his
# learned combinations of feature maps, and ends with what makes all of this fast.
#
# The source is Bouvrie's *Notes on Convolutional Neural Networks*, §3. He writes sensitivities
# $\delta = \partial E / \partial u$ (the gradient of the error with respect to a layer's output
# before the activation) and MATLAB's `conv2`; we translate both into the notation of PyTorch,
# which `cnnlab` follows.
#
# What you will do:
#
# * tell convolution from cross-correlation, by hand and in code;
# * write a 'valid' cross-correlation and use it for the forward pass and for $\partial E / \partial w$;
# * see that $\partial E / \partial x$ is a 'full' convolution of $\delta$ with the kernel;
# * predict output sizes from kernel size, stride and padding;
# * back-propagate through down-sampling with a Kronecker product;
# * write a convolution layer's forward and backward kernels and max pooling's backward kernel, and run
#   them inside a real network;
# * compare a loop implementation with the im2col one that `Conv2d` uses.

# %%
# %matplotlib widget
import time

import matplotlib.pyplot as plt
import numpy as np

import widgets
from cnnlab import Sequential
from cnnlab.data import load_fashion_mnist
from cnnlab.gradcheck import gradcheck
from cnnlab.layers import (AvgPool2d, Conv2d, Flatten, Linear, MapCombination, MaxPool2d, ReLU, Subsample2d,
                           Tanh)
from cnnlab.kernels import fast, naive
from cnnlab.kernels.im2col import im2col
from cnnlab.kernels.windows import conv_output_size, sliding_windows
from cnnlab.layers.subsample import downsample_sum, upsample_kron
from cnnlab.losses import CrossEntropyLoss
from cnnlab.module import no_input_grad

# %% [markdown]
# ## Convolution or cross-correlation?
#
# Slide a small kernel $w$ of size $K_H \times K_W$ over an image $x$ and, at every position, add
# up the products of the kernel with the pixels under it. That is a **cross-correlation**,
#
# $$(x \star w)[i, j] = \sum_{a=0}^{K_H-1} \sum_{b=0}^{K_W-1} x[i + a,\ j + b]\; w[a, b],$$
#
# and it is what PyTorch's `Conv2d`, and cnnlab's, computes. A **convolution** in the sense of
# signal processing (and of MATLAB's `conv2`, which Bouvrie uses) turns the kernel around first:
# its definition $(x * k)[m, n] = \sum_{a, b} x[a, b]\, k[m - a, n - b]$ walks through the kernel
# backwards. Turning a kernel around both axes is a rotation by 180°, written
# $\mathrm{rot180}(k)$, so the two operations differ only in the orientation of the kernel:
#
# $$x * k = x \star \mathrm{rot180}(k).$$
#
# A small example makes this concrete. Take
# $x = \begin{pmatrix}1&2&3\\4&5&6\\7&8&9\end{pmatrix}$ and $w = \begin{pmatrix}0&1\\2&0\end{pmatrix}$.
# The cross-correlation has one output per position where the $2\times 2$ kernel fits, and each
# output is $x[i, j+1] + 2\,x[i+1, j]$: $2 + 2\cdot 4 = 10$, $3 + 2\cdot 5 = 13$, $5 + 2\cdot 7 = 19$,
# $6 + 2\cdot 8 = 22$. A `Conv2d` with that kernel must say the same.

# %%
x_small = np.arange(1.0, 10.0).reshape(3, 3)
w_small = np.array([[0.0, 1.0], [2.0, 0.0]])

layer = Conv2d(1, 1, kernel_size=2, bias=False).astype(np.float64)
layer.weight.data[0, 0] = w_small
out_small = layer(x_small[None, None])[0, 0]  # Conv2d wants (N, C, H, W)
print(out_small)
assert np.array_equal(out_small, [[10, 13], [19, 22]])

# %% [markdown]
# Now the true convolution, straight from its definition. Reading the sum the other way round
# gives a picture: every input pixel $x[a, b]$ adds a copy of the kernel, scaled by the pixel's
# value, at offset $(a, b)$ of the output. The result is larger than $x$, because copies placed
# near the border stick out: this is the **'full'** convolution, of size
# $(H + K_H - 1) \times (W + K_W - 1)$. Its **'valid'** part keeps only the positions where the
# kernel lies entirely inside the image, $(H - K_H + 1) \times (W - K_W + 1)$ of them.

# %%
def conv2d_full(x, k):
    """True 2-D convolution, 'full' size: each pixel x[a, b] adds x[a, b] * k at offset (a, b)."""
    (h, w), (kh, kw) = x.shape, k.shape
    out = np.zeros((h + kh - 1, w + kw - 1))
    for a in range(h):
        for b in range(w):
            out[a:a + kh, b:b + kw] += x[a, b] * k
    return out


def conv2d_valid(x, k):
    """The part of the full convolution where k lies entirely inside x."""
    (h, w), (kh, kw) = x.shape, k.shape
    return conv2d_full(x, k)[kh - 1:h, kw - 1:w]


print(conv2d_valid(x_small, w_small))

# %% [markdown]
# By hand: the rotated kernel is $\mathrm{rot180}(w) = \begin{pmatrix}0&2\\1&0\end{pmatrix}$, so each
# output is $2\,x[i, j+1] + x[i+1, j]$: $4 + 4 = 8$, $6 + 5 = 11$, $10 + 7 = 17$, $12 + 8 = 20$.
# Different numbers, the same operation up to the kernel's orientation:

# %%
def rot180(k):
    """Turn a 2-D kernel around both axes (the same as np.rot90(k, 2))."""
    return k[::-1, ::-1]


assert np.array_equal(conv2d_valid(x_small, w_small), [[8, 11], [17, 20]])
layer.weight.data[0, 0] = rot180(w_small)
assert np.array_equal(conv2d_valid(x_small, w_small), layer(x_small[None, None])[0, 0])

# %% [markdown]
# Since the kernel is learned, the choice does not matter for what a network can do: a convolution
# layer with kernels $k$ is a cross-correlation layer with kernels $\mathrm{rot180}(k)$, so both
# kinds can learn the same functions and merely store their kernels rotated. It matters when you
# read formulas: Bouvrie's gradients contain
# `rot180` in several places, and translated to cross-correlations the rotations move or cancel,
# as we will see.

# %% [markdown]
# ## Exercise 1: the 'valid' cross-correlation
#
# Write `corr2d_valid(x, k)` for a 2-D array `x` of shape `(H, W)` and a kernel `k` of shape
# `(KH, KW)`. It returns an array of shape `(H - KH + 1, W - KW + 1)` with
# `out[i, j] = sum(x[i:i+KH, j:j+KW] * k)`. Two loops are fine. The rest of the lesson uses your
# function, so the self-check compares it with cnnlab's reference kernel on several shapes.

# %% tags=["exercise"]
def corr2d_valid(x, k):
    """'valid' cross-correlation of x (H, W) with k (KH, KW): shape (H - KH + 1, W - KW + 1)."""
    out = ...  # your code here
    return out


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "04-corr2d-valid-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def corr2d_valid(x, k):
    """'valid' cross-correlation of x (H, W) with k (KH, KW): shape (H - KH + 1, W - KW + 1)."""
    (h, w), (kh, kw) = x.shape, k.shape
    out = np.zeros((h - kh + 1, w - kw + 1))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)
    return out


# %% nbgrader={"grade": true, "grade_id": "04-corr2d-valid-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.conv_layers import check_corr2d_valid

check_corr2d_valid(corr2d_valid)
assert np.array_equal(corr2d_valid(x_small, w_small), [[10, 13], [19, 22]])

# %% [markdown]
# ## The forward pass of a layer
#
# A real layer maps $C$ input maps to $F$ output maps. Bouvrie's §3.1 writes output map $j$ as
# $x_j = f\big(\sum_{i \in M_j} x_i * k_{ij} + b_j\big)$: each input map $i$ in a chosen set $M_j$ is
# filtered with its *own* kernel $k_{ij}$, the results are added, and one bias per output map is
# added on top. `Conv2d(C, F, K)` takes all input maps ($M_j$ is everything), stores the kernels as
# `weight` of shape `(F, C, KH, KW)`, leaves the activation $f$ to a separate layer, and pads the
# input with `padding` zeros on every side first:
#
# $$\mathrm{out}[n, f] = b_f + \sum_{c=1}^{C} \mathrm{pad}(x[n, c]) \star w[f, c].$$
#
# The next cell rebuilds a layer's output from `corr2d_valid`, one output map at a time.

# %%
rng = np.random.default_rng(0)
conv = Conv2d(3, 2, kernel_size=3, padding=1, rng=rng).astype(np.float64)
x = rng.standard_normal((2, 3, 6, 5))  # N=2 images, C=3 maps of 6 x 5
out = conv(x)

xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # zero padding on the two spatial axes
by_hand = np.array([[conv.bias.data[f] + sum(corr2d_valid(xp[n, c], conv.weight.data[f, c]) for c in range(3))
                     for f in range(2)] for n in range(2)])
print("output shape", out.shape)
assert out.shape == (2, 2, 6, 5) and np.allclose(out, by_hand, rtol=0, atol=1e-12)

# %% [markdown]
# ## Stride, padding and the size of the output
#
# Along one axis, a kernel of size $K$ fits into an input of size $H$ padded by $p$ on both sides at
# $H + 2p - K + 1$ positions. With a **stride** $s$ the layer keeps only every $s$-th of them,
# starting with the first, so
#
# $$O_H = \left\lfloor \frac{H + 2p - K}{s} \right\rfloor + 1,$$
#
# and likewise for the width. Two consequences are worth knowing by heart. With stride 1 and an odd
# kernel, padding $p = (K - 1)/2$ keeps the size ("same" padding). And when $s$ does not divide
# $H + 2p - K$, the last few rows are never read by any window: the floor drops them, and their
# gradient will be zero. The formula is checked against the layer on a grid of settings:

# %%
for H in (28, 27, 9):
    for K in (1, 2, 3, 5):
        for s in (1, 2, 3):
            for p in (0, 1, 2):
                shape = Conv2d(1, 1, K, stride=s, padding=p)(np.zeros((1, 1, H, H), np.float32)).shape
                assert shape[2] == (H + 2 * p - K) // s + 1 == conv_output_size(H, K, s, p), (H, K, s, p)
for K in (3, 5, 7):
    assert conv_output_size(28, K, 1, (K - 1) // 2) == 28, "'same' padding"
print("28 x 28 input:", {f"K={K}, s={s}, p={p}": conv_output_size(28, K, s, p)
                         for K, s, p in [(3, 1, 0), (3, 1, 1), (5, 1, 2), (5, 2, 0), (5, 2, 2), (3, 3, 0)]})

# %% [markdown]
# A strided convolution computes nothing new: it is the stride-1 convolution with all but every
# $s$-th row and column thrown away.

# %%
dense = Conv2d(3, 2, kernel_size=3, padding=1, rng=1).astype(np.float64)
strided = Conv2d(3, 2, kernel_size=3, stride=2, padding=1, rng=1).astype(np.float64)  # same seed: same weights
assert np.array_equal(dense.weight.data, strided.weight.data)
assert np.allclose(strided(x), dense(x)[:, :, ::2, ::2], rtol=0, atol=1e-12)

# %% [markdown]
# ## A convolution to play with
#
# The widget runs one `Conv2d` with a single input and a single output map on an image. Choose the
# image, a kernel (edge detectors, a blur, a random one), its size, the stride and the padding; the
# formula under the figure updates with the output size.
#
# The lower row is the backward pass, for $L = \mathrm{out}[\text{row}, \text{col}]$: the
# sensitivity $\delta = \partial L / \partial \mathrm{out}$ is 1 at the chosen output and 0 elsewhere.
# The orange square on the input is the **receptive field** of that output, the window it read.
# Watch what the backward pass does with it: $\partial L / \partial x$ is a copy of the kernel placed
# on the receptive field, and $\partial L / \partial w$ is the patch of the input inside it. With
# δ set to *all outputs*, both become sums over every position. Things to try:
#
# * *stripes* with a vertical and with a horizontal edge kernel: which one sees the stripes?
# * a large stride: the receptive fields stop overlapping, and some input pixels are never read;
# * padding with *all outputs*: near the border fewer windows cover a pixel, so it receives less
#   gradient.

# %%
explorer = widgets.conv_explorer()
explorer

# %% [markdown]
# Driven from code, for the tests: a $5 \times 5$ kernel with padding 2 keeps $28 \times 28$, stride 2
# halves it, and for the chosen output the two gradients are exactly the receptive
# field and the kernel, as described above.

# %%
explorer.kernel_size.value = 5
explorer.padding.value = 2
assert explorer.model.out_shape == (28, 28)
draws = explorer.view.draws
explorer.stride.value = 2
explorer.row.value, explorer.col.value = 6, 9
m = explorer.model
assert m.out_shape == ((28 + 4 - 5) // 2 + 1,) * 2 == (14, 14) and (m.row, m.col) == (6, 9)
assert explorer.view.draws > draws
top, left = m.field
assert (top, left) == (12, 18)
assert np.allclose(m.dw, m.padded[top:top + 5, left:left + 5])
dx_padded = np.zeros_like(m.padded)
dx_padded[top:top + 5, left:left + 5] = m.kernel
assert np.allclose(m.dx, dx_padded[2:-2, 2:-2])

# %% [markdown]
# ## Sensitivities and the gradient of the kernels
#
# Let $\delta = \partial E / \partial\, \mathrm{out}$ be the sensitivity map that arrives from the
# layers above. A kernel entry $w[a, b]$ is used at every output position $(i, j)$, where it
# multiplies $x[i + a, j + b]$. The chain rule adds up all these uses: Bouvrie's eq. (7) says the
# gradient of a shared weight is the sum, over all output positions, of the sensitivity there times
# the input patch the kernel met there,
#
# $$\frac{\partial E}{\partial w[a, b]} = \sum_{i, j} \delta[i, j]\; x[i + a,\ j + b]
#   = (x \star \delta)[a, b].$$
#
# Read the right-hand side again: it is a 'valid' cross-correlation of the input with $\delta$, which
# has exactly the size of the kernel. Bouvrie, who convolves in the forward pass, needs two
# rotations to write the same thing with `conv2`: $\mathrm{rot180}(\mathrm{conv2}(x,
# \mathrm{rot180}(\delta), \text{'valid'}))$. The inner rotation turns his convolution into our
# cross-correlation; the outer one is there because his kernel is our kernel rotated.
#
# ## Exercise 2: the kernel gradient
#
# Below, a one-map layer with a $3 \times 2$ kernel runs forward on a $7 \times 6$ input `x1`, and a
# sensitivity map `delta1` (random, as if it came from the layers above) is sent backward. Compute
# `dW`, the gradient of the kernel, of shape `(3, 2)`, with your `corr2d_valid`.

# %%
rng = np.random.default_rng(1)
x1 = rng.standard_normal((7, 6))
layer1 = Conv2d(1, 1, kernel_size=(3, 2), bias=False, rng=rng).astype(np.float64)
out1 = layer1(x1[None, None])
delta1 = rng.standard_normal(out1.shape[2:])  # dE/d(out), shape (5, 5)
dx1 = layer1.backward(delta1[None, None])[0, 0]
print("x1", x1.shape, "kernel", layer1.weight.shape[2:], "delta1", delta1.shape)

# %% tags=["exercise"]
dW = ...  # your code here: one call of corr2d_valid

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "04-conv-dweight-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
dW = corr2d_valid(x1, delta1)

# %% nbgrader={"grade": true, "grade_id": "04-conv-dweight-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.conv_layers import check_conv_dweight

check_conv_dweight(dW, x1, delta1)
assert np.allclose(dW, layer1.weight.grad[0, 0], rtol=0, atol=1e-12)
assert np.allclose(rot180(conv2d_valid(x1, rot180(delta1))), rot180(dW)), "Bouvrie's form, for his kernel rot180(w)"

# %% [markdown]
# The bias $b_f$ is added at every position of output map $f$, so its gradient is the sum of that
# map's sensitivities (Bouvrie §3.1.1): $\partial E / \partial b_f = \sum_{u, v} \delta_f[u, v]$,
# summed over the batch too. For a layer with several maps, the kernel $w[f, c]$ connects input map
# $c$ to output map $f$, so it correlates input map $c$ (padded, as in the forward pass) with the
# sensitivity of output map $f$, again summed over the batch. Both against the 3 → 2 layer from
# above:

# %%
delta = np.random.default_rng(2).standard_normal(out.shape)  # (N, F, OH, OW)
dx = conv.backward(delta)
dW_hand = np.array([[sum(corr2d_valid(xp[n, c], delta[n, f]) for n in range(2)) for c in range(3)]
                    for f in range(2)])
assert np.allclose(conv.weight.grad, dW_hand, rtol=0, atol=1e-12)
assert np.allclose(conv.bias.grad, delta.sum(axis=(0, 2, 3)), rtol=0, atol=1e-12)

# %% [markdown]
# ## The gradient of the input: a 'full' convolution
#
# Going down, each output position $(i, j)$ read the window $x[i:i+K_H,\ j:j+K_W]$ with the weights
# $w$. Its sensitivity $\delta[i, j]$ therefore goes back to that window weighted by the same
# entries: the window receives $\delta[i, j]\, w$. Adding this up over all positions is *exactly*
# the picture we used to define the true convolution at the start of the lesson: every value of
# $\delta$ stamps a scaled copy of the kernel. So
#
# $$\frac{\partial E}{\partial x} = \delta * w \quad(\text{'full'}) \;=\; \mathrm{pad}_{K-1}(\delta)
#   \star \mathrm{rot180}(w),$$
#
# a 'full' convolution of $\delta$ with the kernel, or equivalently a cross-correlation of $\delta$,
# zero-padded by $K - 1$, with the rotated kernel. This is Bouvrie's rule (§3.2.1, with the
# convolution and cross-correlation swapped, because his forward pass convolves): the backward pass
# applies the *other* operation at the *other* size. The 'full' size handles the borders by
# itself: a border pixel was covered by fewer windows, and the zero padding supplies the missing
# ones.

# %%
def corr2d_full(x, k):
    """'full' cross-correlation: pad x with KH-1, KW-1 zeros on every side, then 'valid'."""
    kh, kw = k.shape
    return corr2d_valid(np.pad(x, ((kh - 1, kh - 1), (kw - 1, kw - 1))), k)


w1 = layer1.weight.data[0, 0]
assert np.allclose(dx1, conv2d_full(delta1, w1), rtol=0, atol=1e-12)
assert np.allclose(dx1, corr2d_full(delta1, rot180(w1)), rtol=0, atol=1e-12)

# %% [markdown]
# With several maps, input map $c$ collects from every output map $f$ through the kernel $w[f, c]$.
# With padding, the 'full' result covers the *padded* input, and the border is cut off at the end
# (those pixels were zeros made up by the layer, not inputs of it):

# %%
dxp = np.array([[sum(conv2d_full(delta[n, f], conv.weight.data[f, c]) for f in range(2)) for c in range(3)]
                for n in range(2)])  # (N, C, H + 2p, W + 2p)
assert np.allclose(dx, dxp[:, :, 1:-1, 1:-1], rtol=0, atol=1e-12)

# %% [markdown]
# **Stride.** A strided layer is the dense layer with outputs thrown away, so its sensitivities are
# those of the dense layer with zeros in the places of the discarded outputs. Spread $\delta$ out
# with $s - 1$ zeros between its entries, and both formulas hold unchanged. Here with
# $H = W = 7$, $K = 3$, $s = 2$, where the windows cover the input exactly:

# %%
rng = np.random.default_rng(3)
x2 = rng.standard_normal((7, 7))
layer2 = Conv2d(1, 1, kernel_size=3, stride=2, bias=False, rng=rng).astype(np.float64)
delta2 = rng.standard_normal(layer2(x2[None, None]).shape[2:])  # (3, 3)
dx2 = layer2.backward(delta2[None, None])[0, 0]
spread = np.zeros((5, 5))
spread[::2, ::2] = delta2
assert np.allclose(dx2, conv2d_full(spread, layer2.weight.data[0, 0]), rtol=0, atol=1e-12)
assert np.allclose(layer2.weight.grad[0, 0], corr2d_valid(x2, spread), rtol=0, atol=1e-12)

# %% [markdown]
# Finally, the independent referee: finite differences on a layer with several maps, stride and
# padding (Bouvrie §4.4; lesson 05 looks at the method itself).

# %%
report = gradcheck(Conv2d(2, 3, kernel_size=3, stride=2, padding=1, rng=4).astype(np.float64),
                   np.random.default_rng(5).standard_normal((2, 2, 7, 6)))
print(report)
assert report.ok

# %% [markdown]
# ## Exercise 3: your own kernels inside a real layer
#
# `Conv2d` does not compute anything itself: it checks its input, keeps the parameters and calls a
# pair of **kernels**, pure functions with one signature (CS231n's). The forward kernel returns the
# output and a `cache`, anything its backward kernel will need:
#
#     out, cache = conv2d_forward(x, weight, bias, stride, padding)
#     dx, dweight, dbias = conv2d_backward(dout, cache)
#
# with `x` of shape $(N, C, H, W)$, `weight` $(F, C, K_H, K_W)$, `bias` $(F,)$ (or `None` for a layer
# built with `bias=False`: then add nothing), and `stride` $= (s_H, s_W)$, `padding` $= (p_H, p_W)$
# as pairs, which is how the layers pass them. Everything of the last sections, written for all
# images, maps and windows at once (numbered as in `cnnlab.kernels`), with $x_p$ the input
# zero-padded by $(p_H, p_W)$:
#
# $$\mathrm{out}[n, f, o_h, o_w] = b_f + \sum_{c, i, j} w[f, c, i, j]\; x_p[n, c,\ o_h s_H + i,\ o_w s_W + j] \tag{1}$$
# $$\frac{\partial L}{\partial w[f, c, i, j]} = \sum_{n, o_h, o_w} \delta[n, f, o_h, o_w]\; x_p[n, c,\ o_h s_H + i,\ o_w s_W + j] \tag{2}$$
# $$\frac{\partial L}{\partial x_p[n, c, p, q]} = \sum_{f, o_h, o_w} \delta[n, f, o_h, o_w]\; w[f, c,\ p - o_h s_H,\ q - o_w s_W] \tag{3}$$
# $$\frac{\partial L}{\partial b_f} = \sum_{n, o_h, o_w} \delta[n, f, o_h, o_w] \tag{4}$$
#
# where $\delta$ is `dout`, the output has $O_H = \lfloor (H + 2p_H - K_H)/s_H \rfloor + 1$ rows (and
# likewise columns), and (3) runs over the outputs whose window covers $(p, q)$: read it the other way
# round, as in the picture of the 'full' convolution, and output $(n, f, o_h, o_w)$ adds
# $\delta[n, f, o_h, o_w]\, w[f]$ onto the window it read. $\partial L / \partial x$ is
# $\partial L / \partial x_p$ with the padding cut off.
#
# Write `conv2d_forward` and `conv2d_backward`. Loops over the output positions are fine (slices of
# `xp` over the channels keep them to four); this is the naive kernel, and speed comes later in the
# lesson. Pad with `np.pad`, on the last two axes only.
#
# A loop over the output positions passes the check, but lesson 10 trains a whole CNN with your
# kernels, and there it is far too slow. The fast way is a loop over the $K_H \times K_W$ kernel
# offsets $(i, j)$ instead: for one offset, the entries $x_p[:, :, o_h s_H + i, o_w s_W + j]$ of
# every output are one strided slice `xp[:, :, i:i + sH*OH:sH, j:j + sW*OW:sW]` of shape
# $(N, C, O_H, O_W)$, so (1), (2) and (3) each become one array operation per offset (a product
# with `weight[:, :, i, j]` summed over the channels, e.g. with `np.einsum` or `np.tensordot`):
# nine operations for a 3 × 3 kernel instead of one per output pixel, hundreds of times faster.

# %% tags=["exercise"]
def conv2d_forward(x, weight, bias, stride, padding):
    """Formula (1). x (N, C, H, W); weight (F, C, KH, KW); bias (F,) or None; stride (SH, SW); padding (PH, PW).

    Returns (out, cache): out (N, F, OH, OW), OH = (H + 2 PH - KH) // SH + 1, OW likewise; cache for the backward.
    """
    out, cache = ..., ...  # your code here
    return out, cache


def conv2d_backward(dout, cache):
    """Formulas (2)-(4). dout (N, F, OH, OW); cache from conv2d_forward.

    Returns (dx, dweight, dbias) of shapes (N, C, H, W), (F, C, KH, KW), (F,).
    """
    dx, dweight, dbias = ..., ..., ...  # your code here
    return dx, dweight, dbias


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "04-conv2d-kernels-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def conv2d_forward(x, weight, bias, stride, padding):
    """Formula (1). x (N, C, H, W); weight (F, C, KH, KW); bias (F,) or None; stride (SH, SW); padding (PH, PW).

    Returns (out, cache): out (N, F, OH, OW), OH = (H + 2 PH - KH) // SH + 1, OW likewise; cache for the backward.
    """
    (sh, sw), (ph, pw) = stride, padding
    n_filters, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    oh, ow = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    out = np.zeros((x.shape[0], n_filters, oh, ow), dtype=x.dtype)
    for i, j in np.ndindex(kh, kw):  # (1), one kernel offset at a time, for every image and output at once
        seen = xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw]  # x_p[n, c, o_h s_H + i, o_w s_W + j]: (N, C, OH, OW)
        out += np.einsum("ncpq,fc->nfpq", seen, weight[:, :, i, j], optimize=True)
    if bias is not None:
        out += bias[:, None, None]
    return out, (x, weight, stride, padding)


def conv2d_backward(dout, cache):
    """Formulas (2)-(4). dout (N, F, OH, OW); cache from conv2d_forward.

    Returns (dx, dweight, dbias) of shapes (N, C, H, W), (F, C, KH, KW), (F,).
    """
    x, weight, (sh, sw), (ph, pw) = cache
    h, w = x.shape[2:]
    kh, kw = weight.shape[2:]
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dweight = np.zeros_like(xp), np.zeros_like(weight)
    for i, j in np.ndindex(kh, kw):  # the entries of x_p that kernel offset (i, j) read in (1)
        rows, cols = slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw)
        dweight[:, :, i, j] = np.einsum("nfpq,ncpq->fc", dout, xp[:, :, rows, cols], optimize=True)  # (2)
        dxp[:, :, rows, cols] += np.einsum("nfpq,fc->ncpq", dout, weight[:, :, i, j])  # (3), summed over f
    return dxp[:, :, ph:ph + h, pw:pw + w], dweight, dout.sum(axis=(0, 2, 3))  # (4)


# %% nbgrader={"grade": true, "grade_id": "04-conv2d-kernels-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.conv_layers import check_conv2d_kernels

check_conv2d_kernels(conv2d_forward, conv2d_backward)

# %% [markdown]
# **Max pooling** outputs the largest value of each $K_H \times K_W$ window,
# $\mathrm{out} = \max_{q \in P} x_q$. Only the winner $\hat q$ moved the output (lesson 03: its
# Jacobian row is a single 1), so the backward pass sends $\delta$ to $\hat q$ alone:
# $\partial L / \partial x_{\hat q} \mathrel{+}= \delta$. Three details decide whether your kernel
# agrees with PyTorch's:
#
# * **ties**: when several entries of a window share the maximum, the gradient goes to the *first*
#   one in row-major order (the one `np.argmax` finds), not to all of them;
# * **padding** is with $-\infty$, never the maximum; the padded border is cut off at the end;
# * **overlapping windows** (kernel 3, stride 2, as in AlexNet): a pixel that wins two windows
#   receives the sum of both gradients.
#
# Write `maxpool2d_backward`; `maxpool2d_forward` is given. Its cache is
# `(x, kernel_size, stride, padding)`: the input and three $(h, w)$ pairs.

# %%
def maxpool2d_forward(x, kernel_size, stride, padding):
    """Max pooling (given). x (N, C, H, W); kernel_size, stride, padding: (h, w) pairs.

    Returns (out, cache): out (N, C, OH, OW), the maximum of each window of the input padded with -inf;
    cache = (x, kernel_size, stride, padding).
    """
    out, _ = naive.maxpool2d_forward(x, kernel_size, stride, padding)
    return out, (x, kernel_size, stride, padding)


# %% tags=["exercise"]
def maxpool2d_backward(dout, cache):
    """dout (N, C, OH, OW); cache = (x, (KH, KW), (SH, SW), (PH, PW)) from maxpool2d_forward.

    Returns dx (N, C, H, W): each dout value added to the first maximum (row-major) of its window.
    """
    dx = ...  # your code here
    return dx


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "04-maxpool2d-backward-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def maxpool2d_backward(dout, cache):
    """dout (N, C, OH, OW); cache = (x, (KH, KW), (SH, SW), (PH, PW)) from maxpool2d_forward.

    Returns dx (N, C, H, W): each dout value added to the first maximum (row-major) of its window.
    """
    x, (kh, kw), (sh, sw), (ph, pw) = cache
    h, w = x.shape[2:]
    oh, ow = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    offsets = list(np.ndindex(kh, kw))  # row-major, as np.argmax reads a window
    seen = np.stack([xp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] for i, j in offsets])  # (KH*KW, N, C, OH, OW)
    winner = seen.argmax(axis=0)  # per window, the first offset that holds its maximum
    dxp = np.zeros(xp.shape, dtype=dout.dtype)
    for k, (i, j) in enumerate(offsets):  # route dout to the winners; overlapping windows add up
        dxp[:, :, i:i + sh * oh:sh, j:j + sw * ow:sw] += np.where(winner == k, dout, 0)
    dx = dxp[:, :, ph:ph + h, pw:pw + w]
    return dx


# %% nbgrader={"grade": true, "grade_id": "04-maxpool2d-backward-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.conv_layers import check_maxpool2d_backward

check_maxpool2d_backward(maxpool2d_backward)

# %% [markdown]
# Now the point of the signature: your functions run inside real layers. Two copies of a small
# network, Conv2d (a $3 \times 2$ kernel, stride 2, padding 1) → ReLU → MaxPool2d(3, stride 2) →
# Flatten → Linear, built from the same seeds, one with your kernels and one with cnnlab's default
# (`fast`, im2col): the same outputs, the same gradients for every parameter and for the images.
# ReLU before max pooling produces ties (a window of zeros has as many maxima as entries), so the tie
# rule is at work here too; the last lines count the tied windows.

# %%
def small_net(conv_kernels, pool_kernels):
    return Sequential([Conv2d(2, 4, kernel_size=(3, 2), stride=2, padding=1, rng=20, kernels=conv_kernels), ReLU(),
                       MaxPool2d(3, stride=2, kernels=pool_kernels), Flatten(),
                       Linear(4 * 3 * 3, 5, rng=21)]).astype(np.float64)


mine = small_net((conv2d_forward, conv2d_backward), (maxpool2d_forward, maxpool2d_backward))
default = small_net(fast, fast)
print(mine[0], mine[2], sep="\n")
rng = np.random.default_rng(22)
x7, dout7 = rng.standard_normal((3, 2, 13, 12)), rng.standard_normal((3, 5))
out_mine, out_default = mine(x7), default(x7)
dx_mine, dx_default = mine.backward(dout7), default.backward(dout7)
# float64 sums in another order (loops against matrix products): rounding is about 1e-15 of values near 1
assert np.max(np.abs(out_mine - out_default)) < 1e-10 and np.max(np.abs(dx_mine - dx_default)) < 1e-10
for p_mine, p_default in zip(mine.parameters(), default.parameters()):
    assert np.max(np.abs(p_mine.grad - p_default.grad)) < 1e-10
pooled = mine[1](mine[0](x7))  # the max pool's input
windows = sliding_windows(pooled, (3, 3), (2, 2)).reshape(-1, 9)
ties = int(np.sum((windows == windows.max(axis=1, keepdims=True)).sum(axis=1) > 1))
print("pooling windows with a tie for the maximum:", ties, "of", len(windows))
assert ties > 0, "exact zeros from ReLU: the same on every machine"

# %% [markdown]
# ## The subsampling layer
#
# Bouvrie's networks alternate convolution layers with **subsampling** layers (§3.2). Each map is
# shrunk by $\mathrm{down}(\cdot)$, which adds up every distinct $n \times n$ block, then scaled by
# its own trainable factor $\beta_j$ and shifted by its own bias $b_j$:
# $x_j = f\big(\beta_j\, \mathrm{down}(x_j) + b_j\big)$. `Subsample2d(C, kernel_size=n)` is the part
# inside $f$. With $n = 2$ on the $4\times 4$ map holding $0, 1, \dots, 15$, the blocks add up to
# $0+1+4+5 = 10$, $2+3+6+7 = 18$, $8+9+12+13 = 42$ and $10+11+14+15 = 50$; with $\beta = 0.5$ and
# $b = 1$ the layer outputs $6, 10, 22, 26$.

# %%
x_sub = np.arange(16.0).reshape(1, 1, 4, 4)
assert np.array_equal(downsample_sum(x_sub, 2)[0, 0], [[10, 18], [42, 50]])
sub = Subsample2d(1, kernel_size=2).astype(np.float64)
sub.weight.data[:] = 0.5  # beta
sub.bias.data[:] = 1.0    # b
assert np.array_equal(sub(x_sub)[0, 0], [[6, 10], [22, 26]])

# %% [markdown]
# Every pixel of a block enters its block's sum with weight 1, and the sum enters the output with
# weight $\beta_j$. So each pixel receives $\beta_j$ times the sensitivity of its block: the
# sensitivity map is **up-sampled** by repeating every value over its $n \times n$ block and scaled by
# $\beta_j$. Bouvrie writes the up-sampling as a Kronecker product with a block of ones,
# $\mathrm{up}(z) = z \otimes \mathbf{1}_{n \times n}$, which NumPy computes with `np.kron`:

# %%
z = np.array([[1.0, 2.0], [3.0, 4.0]])
print(np.kron(z, np.ones((2, 2))))
assert np.array_equal(np.kron(z, np.ones((2, 2))), [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
assert np.array_equal(upsample_kron(z, 2), np.kron(z, np.ones((2, 2))))

# %% [markdown]
# The two parameters get the gradients Bouvrie derives in §3.2.1: the bias collects the sum of the
# sensitivities, $\partial E / \partial b_j = \sum_{u,v} \delta_j[u, v]$, and the factor collects
# them weighted by the down-sampled input $d_j = \mathrm{down}(x_j)$ that the forward pass saved,
# $\partial E / \partial \beta_j = \sum_{u,v} (\delta_j \circ d_j)[u, v]$.

# %%
rng = np.random.default_rng(6)
sub3 = Subsample2d(3, kernel_size=2).astype(np.float64)
sub3.weight.data[:] = [0.5, -2.0, 3.0]
x3 = rng.standard_normal((2, 3, 6, 4))
delta3 = rng.standard_normal(sub3(x3).shape)  # (2, 3, 3, 2)
dx3 = sub3.backward(delta3)
d3 = downsample_sum(x3, 2)
assert np.allclose(sub3.bias.grad, delta3.sum(axis=(0, 2, 3)))
assert np.allclose(sub3.weight.grad, (delta3 * d3).sum(axis=(0, 2, 3)))

# %% [markdown]
# ## Exercise 4 (optional): the sensitivity below a subsampling layer
#
# Compute `dx_sub`, the gradient with respect to the input `x3` of the layer `sub3` above, from
# `delta3` (shape `(2, 3, 3, 2)`), the factors `beta = sub3.weight.data` (one per map, shape `(3,)`)
# and the block size `k = 2`: scale each map by its $\beta_j$, then up-sample with `np.kron` and a
# block `np.ones((k, k))`. On an array of shape `(N, C, h, w)`, `np.kron` treats the 2-D block as
# shape `(1, 1, k, k)`, so it tiles the last two axes only and the result has shape
# `(N, C, k h, k w)`.

# %%
beta, k = sub3.weight.data, 2

# %% tags=["exercise"]
dx_sub = ...  # your code here

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "04-subsample-delta-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
dx_sub = np.kron(beta[None, :, None, None] * delta3, np.ones((k, k)))

# %% nbgrader={"grade": true, "grade_id": "04-subsample-delta-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.conv_layers import check_subsample_delta

check_subsample_delta(dx_sub, delta3, beta, k)
assert np.allclose(dx_sub, dx3)

# %% [markdown]
# Bouvrie (§3.1.1) combines this with the activation of the convolution layer below: if that layer
# computes $x = f(u)$ with $u$ the convolution's output, then its sensitivity is
# $\delta^{\ell} = \beta\,\big(f'(u) \circ \mathrm{up}(\delta^{\ell+1})\big)$. Checked on a small
# stack convolution → tanh → subsampling, where $f'(u) = 1 - \tanh^2(u)$:

# %%
rng = np.random.default_rng(7)
conv4, tanh4, sub4 = Conv2d(1, 2, 3, rng=rng).astype(np.float64), Tanh(), Subsample2d(2).astype(np.float64)
sub4.weight.data[:] = [0.7, -1.3]
x4 = rng.standard_normal((1, 1, 10, 10))
u4 = conv4(x4)
delta_above = rng.standard_normal(sub4(tanh4(u4)).shape)  # (1, 2, 4, 4)
delta_conv = tanh4.backward(sub4.backward(delta_above))    # what back-propagation computes
bouvrie = sub4.weight.data[None, :, None, None] * (1 - np.tanh(u4) ** 2) * upsample_kron(delta_above, 2)
assert np.allclose(delta_conv, bouvrie, rtol=0, atol=1e-12)

# %% [markdown]
# PyTorch has no such layer, but it has its pieces: with $\beta = 1/n^2$ and $b = 0$ the subsampling
# layer is average pooling, `AvgPool2d(n)`. A finite-difference check of the layer closes the
# section.

# %%
avg = Subsample2d(3, kernel_size=2).astype(np.float64)
avg.weight.data[:] = 1 / 4
assert np.allclose(avg(x3), AvgPool2d(2)(x3), rtol=0, atol=1e-12)
report = gradcheck(sub3, x3)
print(report)
assert report.ok

# %% [markdown]
# ### Subsampling by dropping samples
#
# Bouvrie mentions a cheaper $\mathrm{down}(\cdot)$ in passing: throw away every other sample.
# Keep every $n$-th row and column, `x[..., ::n, ::n]`, and ignore the rest. As a layer this is a
# convolution with a $1 \times 1$ kernel of weight 1 and stride $n$, so `Conv2d` computes it, backward
# included; averaging is `AvgPool2d(n)` (the subsampling layer with $\beta = 1/n^2$). Both on an image,
# and on the finest pattern an image can hold, stripes one pixel wide; then their backward passes, the
# gradient each one sends to the pixels for $\delta = 1$ at every output.

# %%
drop = Conv2d(1, 1, kernel_size=1, stride=2).astype(np.float64)
drop.weight.data[:] = 1.0
drop.bias.data[:] = 0.0
average = AvgPool2d(2)
X_sub, _, _ = load_fashion_mnist("train", source="subset")
image = X_sub[:1].astype(np.float64)                                 # (1, 1, 28, 28)
stripes = np.tile((-1.0) ** np.arange(28), (28, 1))[None, None]      # columns +1, -1, +1, ...
shifted = np.roll(stripes, 1, axis=-1)                               # the same, one pixel to the right
outputs = {name: (average(x_), drop(x_)) for name, x_ in
           (("image", image), ("stripes", stripes), ("stripes shifted by 1", shifted))}
average(image)
dx_average = average.backward(np.ones((1, 1, 14, 14)))
drop(image)
dx_drop = drop.backward(np.ones((1, 1, 14, 14)))

# %%
with plt.ioff():
    fig, axes = plt.subplots(3, 3, figsize=(7.5, 7.5))
for row, (name, (by_average, by_dropping)) in zip(axes[:2], list(outputs.items())[:2]):
    suffix = ("", "") if name == "image" else (": all 0", ": all +1")
    for ax, picture, title in zip(row, (image if name == "image" else stripes, by_average, by_dropping),
                                  (name, "averaged 2 × 2" + suffix[0], "every other sample" + suffix[1])):
        ax.imshow(picture[0, 0], cmap="gray", vmin=-1 if name != "image" else 0, vmax=1)
        ax.set_title(title, fontsize=9)
axes[2, 0].imshow(outputs["stripes shifted by 1"][1][0, 0], cmap="gray", vmin=-1, vmax=1)
axes[2, 0].set_title("stripes shifted, every other: all −1", fontsize=9)
for ax, dx, title in ((axes[2, 1], dx_average, "∂/∂pixel, averaging: 1/4"), (axes[2, 2], dx_drop, "dropping: 1 or 0")):
    ax.imshow(dx[0, 0, :8, :8], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(title + " (8 × 8 corner)", fontsize=8)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()
fig

# %%
assert np.array_equal(drop(image), image[..., ::2, ::2]), "a 1 x 1 kernel of 1 with stride 2 keeps every other sample"
assert np.array_equal(outputs["stripes"][0], np.zeros((1, 1, 14, 14))), "averaged, the stripes cancel"
assert np.array_equal(outputs["stripes"][1], np.ones((1, 1, 14, 14))), "dropped, they turn into a flat +1 ..."
assert np.array_equal(outputs["stripes shifted by 1"][1], -np.ones((1, 1, 14, 14))), "... or -1, by a 1-pixel shift"
assert np.array_equal(outputs["stripes shifted by 1"][0], outputs["stripes"][0])
assert np.allclose(dx_average, 0.25, rtol=0, atol=1e-15), "averaging: every pixel gets 1/4 of its block's delta"
kept = np.zeros((28, 28), dtype=bool)
kept[::2, ::2] = True
assert np.array_equal(dx_drop[0, 0][kept], np.ones(196)) and np.array_equal(dx_drop[0, 0][~kept], np.zeros(588)), \
    "dropping: the kept samples get delta, the three dropped pixels of every block get exactly 0"
assert gradcheck(drop, image[..., :8, :8]).ok

# %% [markdown]
# Dropping reads a quarter of the pixels and is the cheaper of the two, but it pays twice. Forward:
# whatever lies between the kept samples is invisible, and detail finer than the sampling grid comes
# back disguised: the stripes become a flat image whose brightness depends on a one-pixel shift
# (*aliasing*); averaging smooths them away, the same for both shifts. Backward: three pixels in four
# get a gradient of exactly zero, so the layer below learns only from the positions that happen to be
# kept, while averaging spreads $\delta/4$ over every pixel of the block. Bouvrie's fast down-sampling
# in "Making it fast" below does both in turn: a convolution with a block of ones (the sum), then
# every other entry of the result (the dropping), which is exact because the sum already holds the
# pixels the dropping throws away.

# %% [markdown]
# ## Learning which maps to combine
#
# Which input maps should feed which output map? Early networks fixed this by hand (the set $M_j$
# in §3.1). Bouvrie's §3.3 lets the network learn it: each input map $i$ is filtered by one kernel
# $k_i$, and output map $j$ takes a weighted mix of the results,
#
# $$u_j = \sum_{i} \alpha_{ij}\, (x_i * k_i) + b_j, \qquad
#   \alpha_{ij} = \frac{\exp(c_{ij})}{\sum_{k} \exp(c_{kj})},$$
#
# where the softmax over the input maps keeps every weight between 0 and 1 and every column
# $\alpha_{\cdot j}$ summing to 1, while the network learns the unconstrained $c_{ij}$. cnnlab's
# `MapCombination(C_in, C_out, K)` implements this (as everywhere, with cross-correlations): its
# parameters are the kernels `weight` of shape `(C_in, 1, K, K)`, the logits `c` of shape
# `(C_in, C_out)` and the biases.

# %%
rng = np.random.default_rng(8)
mix = MapCombination(3, 4, kernel_size=3, l1_penalty=0.1, rng=rng).astype(np.float64)
print("alpha at the start:\n", mix.alpha)
assert np.allclose(mix.alpha, 1 / 3), "c starts at 0: every input map weighs the same"
mix.c.data[:] = rng.standard_normal((3, 4))
alpha = mix.alpha
print("alpha after changing c:\n", alpha.round(3))
assert np.allclose(alpha.sum(axis=0), 1.0) and (alpha > 0).all() and (alpha < 1).all()

# %% [markdown]
# The forward pass, rebuilt from `corr2d_valid`; then the gradients of the kernels, the logits
# (through the softmax derivative, Bouvrie's eqs. (8)–(10)) and the biases, by finite differences:

# %%
x5 = rng.standard_normal((2, 3, 6, 6))
u5 = mix(x5)
filtered = np.array([[corr2d_valid(x5[n, i], mix.weight.data[i, 0]) for i in range(3)] for n in range(2)])
by_hand = np.einsum("nipq,ij->njpq", filtered, alpha) + mix.bias.data[None, :, None, None]
assert u5.shape == (2, 4, 4, 4) and np.allclose(u5, by_hand, rtol=0, atol=1e-12)
report = gradcheck(mix, x5)
print(report)
assert report.ok

# %% [markdown]
# ### Eqs. (9)–(10), by hand
#
# The gradient check says the logits' gradient is right; here is *why*, on a case small enough for
# paper. Bouvrie's chain runs in two links. First the weights: $u$ depends on $\alpha_i$ only through
# the term $\alpha_i\, z_i$ with $z_i = x_i * k_i$, so
# $\partial E/\partial \alpha_i = \sum_{u,v} (\delta \circ z_i)_{uv}$. Then the softmax, whose derivative is
# eq. (8), $\partial\alpha_k/\partial c_i = \delta_{ki}\,\alpha_i - \alpha_i\alpha_k$ ($\delta_{ki}$ the
# Kronecker delta), gives
#
# $$\frac{\partial E}{\partial c_i} = \sum_k \frac{\partial E}{\partial \alpha_k}\frac{\partial \alpha_k}{\partial c_i} \quad (9)
#   \qquad = \alpha_i\Big(\frac{\partial E}{\partial \alpha_i} - \sum_k \frac{\partial E}{\partial \alpha_k}\,\alpha_k\Big). \quad (10)$$
#
# In `MapCombination.backward` these are two lines, `dalpha` (the first link) and `c.grad` (eq. (10)):

# %%
import inspect

print("\n".join(line for line in inspect.getsource(MapCombination.backward).splitlines() if "dalpha" in line))

# %% [markdown]
# The tiny case: two $3 \times 3$ input maps, one output map, $2 \times 2$ kernels, logits $c = (0, \ln 3)$
# so that $\alpha = (1/4, 3/4)$, and $E = \sum_{u,v} u_{uv}$, i.e. $\delta = 1$ everywhere.
#
# $$x_1 = \begin{pmatrix} 1&2&0\\0&1&3\\2&0&1 \end{pmatrix},\ k_1 = \begin{pmatrix} 1&0\\0&1 \end{pmatrix}
#   \Rightarrow z_1 = \begin{pmatrix} 2&5\\0&2 \end{pmatrix}; \qquad
#   x_2 = \begin{pmatrix} 0&1&1\\2&0&1\\1&1&0 \end{pmatrix},\ k_2 = \begin{pmatrix} 0&1\\1&0 \end{pmatrix}
#   \Rightarrow z_2 = \begin{pmatrix} 3&1\\1&2 \end{pmatrix}$$
#
# (each $z$ entry adds the two pixels its kernel's ones sit on, as a cross-correlation). With
# $\delta = 1$: $\partial E/\partial\alpha = (9, 7)$, the sums of $z_1$ and $z_2$. Eq. (10):
# $\sum_k \frac{\partial E}{\partial\alpha_k}\alpha_k = 9/4 + 21/4 = 7.5$, so
# $\partial E/\partial c_1 = \frac14 (9 - 7.5) = 0.375$ and $\partial E/\partial c_2 = \frac34 (7 - 7.5) = -0.375$.
# Eq. (9) gets there through the matrix of eq. (8),
# $\begin{pmatrix} \alpha_1 - \alpha_1^2 & -\alpha_1\alpha_2 \\ -\alpha_1\alpha_2 & \alpha_2 - \alpha_2^2\end{pmatrix}
#  = \frac{3}{16}\begin{pmatrix} 1 & -1 \\ -1 & 1\end{pmatrix}$: $\frac{3}{16}(9 - 7) = 0.375$ and
# $\frac{3}{16}(7 - 9) = -0.375$. The same numbers from the layer, and from finite differences:

# %%
x_tiny = np.array([[[[1, 2, 0], [0, 1, 3], [2, 0, 1]], [[0, 1, 1], [2, 0, 1], [1, 1, 0]]]], dtype=float)
k_tiny = np.array([[[1, 0], [0, 1]], [[0, 1], [1, 0]]], dtype=float)
c_tiny = np.array([0.0, np.log(3.0)])
alpha_tiny = np.array([0.25, 0.75])
dE_dalpha = np.array([9.0, 7.0])                            # sums of z_1 and z_2 (delta = 1)
J = np.diag(alpha_tiny) - np.outer(alpha_tiny, alpha_tiny)  # eq. (8): J[k, i] = d alpha_k / d c_i
eq9 = J.T @ dE_dalpha                                       # sum over k of dE/dalpha_k * J[k, i]
eq10 = alpha_tiny * (dE_dalpha - dE_dalpha @ alpha_tiny)

tiny = MapCombination(2, 1, kernel_size=2).astype(np.float64)
tiny.weight.data[:, 0] = k_tiny
tiny.c.data[:, 0] = c_tiny
u_tiny = tiny(x_tiny)
tiny.backward(np.ones_like(u_tiny))                         # delta = dE/du = 1


def E_tiny(c):
    tiny.c.data[:, 0] = c
    return tiny(x_tiny).sum()


h = 1e-6
numeric = np.array([(E_tiny(c_tiny + h * e) - E_tiny(c_tiny - h * e)) / (2 * h) for e in np.eye(2)])
tiny.c.data[:, 0] = c_tiny  # back to the point of the check
print(f"eq. (9): {eq9}, eq. (10): {eq10}, layer: {tiny.c.grad[:, 0]}, finite differences: {numeric}")

# %%
assert np.allclose(tiny.alpha[:, 0], alpha_tiny, rtol=1e-12)
assert np.allclose(u_tiny[0, 0], 0.25 * np.array([[2, 5], [0, 2]]) + 0.75 * np.array([[3, 1], [1, 2]]), rtol=1e-15)
assert np.allclose(eq9, [0.375, -0.375], rtol=0, atol=1e-15) and np.allclose(eq10, eq9, rtol=0, atol=1e-15)
assert np.allclose(tiny.c.grad[:, 0], eq10, rtol=1e-12), "the layer's backward is eq. (10)"
assert np.allclose(numeric, eq10, rtol=0, atol=1e-7), "and so are the finite differences"
assert abs(eq10.sum()) < 1e-15, "adding the same number to every c_i leaves alpha unchanged: the gradient sums to 0"

# %% [markdown]
# The last check is worth a sentence: the softmax does not change when every $c_i$ of a column grows by the
# same amount, so $E$ cannot change in that direction either, and the entries of $\partial E/\partial c$
# in a column always sum to zero. Eq. (10) builds this in: $\sum_i \alpha_i\,(\partial E/\partial\alpha_i) -
# \sum_i \alpha_i \cdot \sum_k (\partial E/\partial\alpha_k)\,\alpha_k = 0$ because $\sum_i \alpha_i = 1$.

# %% [markdown]
# **The sparsity penalty.** Bouvrie wants each output map to draw on only a few input maps, and
# proposes an L1 penalty on the mixing weights, $\Omega = \lambda \sum_{i,j} |\alpha_{ij}|$
# (eq. (11)), whose gradient with respect to the logits is
# $\partial\Omega / \partial c_i = \lambda\big(|\alpha_i| - \alpha_i \sum_k |\alpha_k|\big)$
# (eq. (14)). Before trusting a regulariser, check what it does. Here every $\alpha_{ij}$ is positive
# and each column sums to 1, so $\sum_{i,j}|\alpha_{ij}| = C_\text{out}$ whatever $c$ is: the penalty
# is a constant, and eq. (14) is $\lambda(\alpha_i - \alpha_i \cdot 1) = 0$.

# %%
penalties = []
for scale in (0.0, 1.0, 10.0):
    mix.c.data[:] = scale * rng.standard_normal((3, 4))
    penalties.append(mix.penalty())
    mix(x5)
    mix.backward(np.zeros_like(u5))           # c.grad = 0 from the data term ...
    penalty_grad = mix.penalty_backward()     # ... plus the gradient of the penalty, eq. (14)
    assert np.abs(penalty_grad).max() < 1e-12 and np.abs(mix.c.grad).max() < 1e-12
print("penalty for three very different c:", [f"{value:.6f}" for value in penalties])
assert np.allclose(penalties, 0.1 * 4), "lambda * C_out, whatever c is"

# %% [markdown]
# So with softmax weights, the L1 penalty cannot make the mixture sparse: the softmax already fixes
# the L1 norm of every column. Sparsity on this simplex needs a penalty that prefers corners to
# the middle, for example $\sum_i \sqrt{\alpha_{ij}}$ or the entropy $-\sum_i \alpha_{ij} \log
# \alpha_{ij}$; cnnlab implements Bouvrie's penalty as written, so that this can be seen.

# %% [markdown]
# ## Making it fast
#
# Bouvrie's §3.4 is about speed in MATLAB. He takes a fast convolution routine as given and speeds
# up what surrounds it: `kron` for up-sampling and, for down-sampling, a convolution with a block of
# ones followed by keeping every $n$-th entry. That trick is "a strided convolution is a dense
# convolution, thinned out" from above, and it gives the same result as summing the blocks:

# %%
x6 = np.random.default_rng(9).standard_normal((28, 28))
assert np.allclose(corr2d_valid(x6, np.ones((2, 2)))[::2, ::2], downsample_sum(x6, 2), rtol=0, atol=1e-12)

# %% [markdown]
# In NumPy the convolution itself is what costs: a loop over every output position runs in the
# Python interpreter. cnnlab's `Conv2d` therefore uses **im2col**: it copies every window of the
# (padded) input once into a column of a matrix `cols` of shape $(C K_H K_W) \times (O_H O_W N)$
# (one column per output pixel and image, the image index varying fastest).
# Then the forward pass is *one* matrix product of the kernels, flattened to $F \times (C K_H K_W)$,
# with `cols`; the kernel gradient is $\delta$ (flattened) times `cols` transposed, and the input
# gradient is the kernels transposed times $\delta$, folded back onto the image.

# %%
cols, (oh, ow) = im2col(x, (3, 3), stride=(1, 1), padding=(1, 1))
print("x", x.shape, "-> cols", cols.shape, "for", (oh, ow), "outputs per map")
gemm = conv.weight.data.reshape(2, -1) @ cols + conv.bias.data[:, None]  # (F, OH*OW*N)
assert cols.shape == (3 * 3 * 3, 2 * 6 * 5)
assert np.allclose(gemm.reshape(2, 6, 5, 2).transpose(3, 0, 1, 2), conv(x), rtol=0, atol=1e-12)

# %% [markdown]
# The loops are not thrown away. cnnlab keeps every convolution and pooling computation in
# `cnnlab.kernels` as kernel pairs with the signatures of Exercise 3, in two interchangeable sets:
# `naive` (loops like yours, one formula per line; the tests' referee) and `fast` (im2col and one
# matrix product per pass). On a batch of 16 Fashion-MNIST images and 8 kernels of $5 \times 5$, in
# float64, both sets give the same forward pass and the same three gradients to $10^{-10}$; the
# timings below depend on your machine, so they are printed, not checked.

# %%
X, y, classes = load_fashion_mnist("train")
batch = X[:16].astype(np.float64)
rng = np.random.default_rng(10)
weight, bias = 0.2 * rng.standard_normal((8, 1, 5, 5)), rng.standard_normal(8)
start = time.perf_counter()
out_naive, cache = naive.conv2d_forward(batch, weight, bias)
grads_naive = naive.conv2d_backward(np.ones_like(out_naive), cache)
t_naive = time.perf_counter() - start
start = time.perf_counter()
for _ in range(10):
    out_fast, cache = fast.conv2d_forward(batch, weight, bias)
    grads_fast = fast.conv2d_backward(np.ones_like(out_fast), cache)
t_fast = (time.perf_counter() - start) / 10
print(f"naive loops: {t_naive * 1e3:.0f} ms, im2col: {t_fast * 1e3:.2f} ms, ratio {t_naive / t_fast:.0f}x")

# %%
assert np.max(np.abs(out_naive - out_fast)) < 1e-10
for g_naive, g_fast in zip(grads_naive, grads_fast):  # dx, dweight, dbias
    assert g_naive.shape == g_fast.shape and np.max(np.abs(g_naive - g_fast)) < 1e-10

# %% [markdown]
# A layer takes its pair as an argument, `kernels=`: the default is `fast`; `naive`, or your own pair
# as in Exercise 3, runs inside a real network instead. The layer itself only checks its input, keeps
# the parameters and calls its kernels.

# %%
slow = Conv2d(1, 8, kernel_size=5, rng=14, kernels=naive).astype(np.float64)
quick = Conv2d(1, 8, kernel_size=5, rng=14).astype(np.float64)
print(slow)
assert np.max(np.abs(slow(batch[:2]) - quick(batch[:2]))) < 1e-10

# %% [markdown]
# One more saving, which PyTorch makes too: nobody needs the gradient with respect to the *images*.
# The first layer's input gradient (the kernels transposed times $\delta$, folded back by col2im) is
# work thrown away, so a training step runs its backward pass inside `with no_input_grad(net):`.
# Every parameter's `.grad` is written exactly as before; the first convolution skips its input
# gradient and the call returns `None`. (PyTorch decides the same thing from `requires_grad`, which
# an input batch does not have.) `cnnlab.train.Trainer` does this in every step.

# %%
net4 = Sequential([Conv2d(1, 4, kernel_size=3, padding=1, rng=11), ReLU(), Flatten(),
                   Linear(4 * 28 * 28, 10, rng=12)]).astype(np.float64)
dout4 = np.random.default_rng(13).standard_normal((4, 10))
net4(batch[:4])
dx4 = net4.backward(dout4)
grads_with_dx = [p.grad.copy() for p in net4.parameters()]
net4(batch[:4])
with no_input_grad(net4):
    assert net4.backward(dout4) is None
assert dx4.shape == batch[:4].shape
assert all(np.array_equal(g, p.grad) for g, p in zip(grads_with_dx, net4.parameters()))

# %% [markdown]
# ## Looking at the filters
#
# Veta's slides suggest a simple sanity check of a trained network: look at the kernels of the first
# layer. Kernels that learned something are smooth and structured (edges, blobs, gradients of
# brightness); kernels that look like noise have not learned much. Here a small CNN takes 180 steps
# of mini-batch stochastic gradient descent on 3,000 images (3 passes over them in shuffled batches
# of 50, each step using the gradient of one batch's mean loss), enough to see the change begin. (The
# training loop is lesson 06's subject; here the update is just
# $w \leftarrow w - \eta\, \partial E_{\text{batch}} / \partial w$.)

# %%
rng = np.random.default_rng(0)
net = Sequential(Conv2d(1, 8, kernel_size=5, padding=2, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                 Linear(8 * 14 * 14, 10, rng=rng))
loss_fn = CrossEntropyLoss()
kernels_before = net[0].weight.data[:, 0].copy()
X_train, y_train = X[:3000], y[:3000]
losses = []
for epoch in range(3):
    order = rng.permutation(len(X_train))
    for first in range(0, len(X_train), 50):
        idx = order[first:first + 50]
        losses.append(loss_fn(net(X_train[idx]), y_train[idx]))
        net.backward(loss_fn.backward())
        for p in net.parameters():
            p.data -= 0.1 * p.grad
print(f"loss over the first 10 steps {np.mean(losses[:10]):.2f}, over the last 10 {np.mean(losses[-10:]):.2f}")
assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10])
assert len(losses) == 3 * 3000 // 50 == 180  # 180 mini-batch steps, not 180 full-batch ones

# %% [markdown]
# A number for "smooth": the mean squared difference between neighbouring kernel entries, divided by
# the variance of the entries. For independent random entries it is about 2 (the difference of two
# independent values has twice their variance); the smoother a kernel, the smaller it is.

# %%
def sq_neighbour_diff_ratio(kernels):
    """Mean squared difference of neighbouring entries / variance of the entries, over (F, K, K) kernels."""
    steps = (np.diff(kernels, axis=1) ** 2).mean() + (np.diff(kernels, axis=2) ** 2).mean()
    return steps / 2 / kernels.var(axis=(1, 2)).mean()


kernels_after = net[0].weight.data[:, 0]
learned = kernels_after - kernels_before
print(f"squared neighbour difference / variance: at the start {sq_neighbour_diff_ratio(kernels_before):.2f}, "
      f"after training {sq_neighbour_diff_ratio(kernels_after):.2f}, "
      f"of the change alone {sq_neighbour_diff_ratio(learned):.2f}")
assert sq_neighbour_diff_ratio(kernels_after) < sq_neighbour_diff_ratio(kernels_before)
assert sq_neighbour_diff_ratio(learned) < 1.0, "what training added is much smoother than noise (about 2)"

# %%
with plt.ioff():
    fig, axes = plt.subplots(3, 8, figsize=(9, 3.8))
for row, (name, kernels) in enumerate([("start", kernels_before), ("trained", kernels_after),
                                       ("change", learned)]):
    for ax, kernel in zip(axes[row], kernels):
        limit = np.abs(kernel).max()
        ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_xticks([]), ax.set_yticks([])
    axes[row, 0].set_ylabel(name)
fig.suptitle("first-layer kernels (5 × 5), red positive, blue negative", fontsize=10)
fig

# %% [markdown]
# The trained kernels still carry their random start, but the *change* (bottom row) is smooth:
# shapes a few pixels wide, light on one side and dark on the other. That is no accident. Every
# update of a kernel is a multiple of its gradient, and by eq. (7) the gradient is a cross-correlation
# of the input images with the sensitivities, so it inherits the smoothness of the images. With
# longer training the learned part dominates; lesson 10 trains a CNN properly and looks again.

# %% [markdown]
# ## What to remember
#
# * `Conv2d` computes a cross-correlation; a convolution is a cross-correlation with the kernel
#   rotated by 180°. Formulas move `rot180` around accordingly.
# * Forward: 'valid' cross-correlation of the padded input with the kernels, summed over input maps,
#   plus a bias. Output size $\lfloor (H + 2p - K)/s \rfloor + 1$.
# * Kernel gradient: 'valid' cross-correlation of the input with the sensitivities (Bouvrie's
#   eq. (7)); bias gradient: the sum of the sensitivities.
# * Input gradient: 'full' convolution of the sensitivities with the kernel. A stride spreads the
#   sensitivities out with zeros.
# * Subsampling: the sensitivity below is $\beta\,\mathrm{up}(\delta)$ with
#   $\mathrm{up}(z) = z \otimes \mathbf{1}_{n\times n}$.
# * Learned map combinations are a softmax-weighted mix; an L1 penalty on softmax weights is a
#   constant.
# * The loops teach; im2col and a matrix product make it fast, with identical results.
#
# Lesson 05 compares the ways to get derivatives at all: by hand, by finite differences, symbolically
# and automatically.
