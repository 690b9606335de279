# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 08 · Initialisation: where training starts
#
# Gradient descent needs a first point. Tomasi's training procedure begins from initial values
# $\mathbf{w}_0$ drawn at random and improves them step by step; every lesson so far has quietly
# relied on a layer's default random weights. This lesson asks what that first draw must look like.
# The answer is surprisingly constrained: start every weight at the same value and the network
# never learns more than one feature per layer; start them too small or too large and, in a deep
# network, the signal dies out or blows up before it reaches the loss, and so does the gradient on
# its way back.
#
# Khan's §5.1 lists the remedies, and `cnnlab.init` implements each of them under PyTorch's names.
# What you will do:
#
# * see why all-equal weights (zeros or any constant) keep every hidden unit a copy of its neighbours;
# * measure activations vanishing or exploding through 20 layers with Gaussian weights of a fixed scale;
# * derive the variance rule $\mathrm{Var}(y) = n_{\text{in}} \mathrm{Var}(w)\, \mathbb{E}[x^2]$ and from it
#   LeCun's, Glorot's (Xavier) and He's initialisations;
# * check that Xavier with tanh and He with ReLU keep a 20-layer network's signal alive, both ways;
# * write Xavier's and He's initialisers yourself, and later the LSUV loop;
# * build orthogonal weights, and let LSUV fix each layer's scale on a batch of data;
# * weigh a small positive bias for ReLU units;
# * pre-train: layer-wise auto-encoders without labels, and a network trained on other classes that
#   is fine-tuned on a small task.

# %%
# %matplotlib widget
import matplotlib.pyplot as plt
import numpy as np

import cnnlab
import widgets
from cnnlab import Sequential, init, pretrain
from cnnlab.bench.threads import one_blas_thread
from cnnlab.data import load_fashion_mnist
from cnnlab.layers import Conv2d, Flatten, Linear, ReLU, Tanh
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import small_cnn
from cnnlab.optim import SGD, Adam
from cnnlab.train import Trainer

blas = one_blas_thread()  # the products here are small: one BLAS thread is faster on a busy machine

# the shipped class-balanced subset, so that every run (and every machine) sees the same images
X_all, y_all, classes = load_fashion_mnist("train", source="subset")
X_test_all, y_test_all, _ = load_fashion_mnist("test", source="subset")
print(f"training images {X_all.shape}, test images {X_test_all.shape}")
assert np.all(np.bincount(y_all) == len(y_all) // 10), "class-balanced"

# %% [markdown]
# ## Why not start from zero?
#
# Take a network with one hidden layer of 16 tanh units and set **every weight and bias to 0**. The
# hidden layer then outputs $\tanh(0) = 0$ for every image. The gradient of the output weights is
# the error signal times the hidden output, hence 0; the gradient that reaches the hidden layer is
# the error signal times the output weights, hence 0 as well. Only the output bias can move, so the
# network can at best learn how often each class occurs. Train it for an epoch and look:

# %%
X_small, y_small = X_all[:1000], y_all[:1000]


def small_mlp():
    return Sequential([Flatten(), Linear(784, 16), Tanh(), Linear(16, 10)])


def train_briefly(net, epochs=2):
    trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1), X_small, y_small, batch_size=50, rng=0)
    return trainer.fit(epochs, progress=False)


zero_net = small_mlp()
init.apply(zero_net, "zeros")
history = train_briefly(zero_net)
print("losses per epoch:", np.round(history.train_loss, 4))
print("largest |weight| after training:", [float(np.abs(zero_net[i].weight.data).max()) for i in (1, 3)])
print("output bias after training:", np.round(zero_net[3].bias.data, 4))

# %%
assert np.all(zero_net[1].weight.data == 0) and np.all(zero_net[3].weight.data == 0), "no weight ever moved"
assert np.any(zero_net[3].bias.data != 0), "only the output bias learned something"

# %% [markdown]
# Zero is a special case: the outputs are zero, so the gradients are. Any other **constant** is
# just as bad for a subtler reason, which Khan's §5.1 calls the symmetry between units. If all
# hidden units start with identical weights, they compute identical outputs, receive identical
# gradients, take identical steps, and so stay identical forever: 16 units that behave as one.

# %%
constant_net = small_mlp()
init.apply(constant_net, "constant", val=0.01)
history = train_briefly(constant_net)
W1, W2 = constant_net[1].weight.data, constant_net[3].weight.data
print("losses per epoch:", np.round(history.train_loss, 4))
print("hidden unit 0 moved by", float(np.abs(W1[0] - 0.01).max()), "; largest difference between units:",
      float(np.abs(W1 - W1[0]).max()))

# %%
assert np.abs(W1[0] - 0.01).max() > 1e-3, "the weights did change..."
assert np.allclose(W1, W1[0], rtol=0, atol=1e-6), "...but every hidden unit's weights are still the same"
assert np.allclose(W2, W2[:, :1], rtol=0, atol=1e-6), "and every output unit weighs the 16 hidden units alike"

# %% [markdown]
# Random weights break the symmetry: each unit starts somewhere else, gets a different gradient and
# learns a different feature. That is why Tomasi's $\mathbf{w}_0$ is random. The rest of the lesson is
# about **how large** those random numbers should be.

# %%
random_net = small_mlp()
init.apply(random_net, "xavier_normal", rng=0)
train_briefly(random_net)
W1 = random_net[1].weight.data
assert np.abs(W1 - W1[0]).max() > 0.05, "with random starts the units differ"

# %% [markdown]
# A layer's default weights are random for the same reason, as in PyTorch. Without `rng=`, each new
# layer draws its weights from cnnlab's own generator, one layer after the other, so two
# `Linear(16, 16)` built in a row differ too (and the members of an ensemble start from different
# points). `cnnlab.manual_seed(s)`, like `torch.manual_seed(s)`, restarts that generator: whatever
# is built after it comes out the same every time. An explicit `rng=` (a seed or a Generator), as
# in this lesson's cells, does not depend on what ran before at all.

# %%
cnnlab.manual_seed(8)
first, second = Linear(16, 16), Linear(16, 16)
cnnlab.manual_seed(8)
again = Linear(16, 16)
print("two default layers differ:", not np.array_equal(first.weight.data, second.weight.data),
      "| after manual_seed(8) the first comes back:", np.array_equal(again.weight.data, first.weight.data))

# %%
assert not np.array_equal(first.weight.data, second.weight.data), "two default layers start apart"
assert np.array_equal(again.weight.data, first.weight.data), "manual_seed repeats the draws exactly"

# %% [markdown]
# ## A fixed scale: Gaussian and uniform weights
#
# The simplest random start draws every weight from a zero-mean Gaussian with a small standard
# deviation, Khan's examples being 0.1 and 0.01 (§5.1.1), or from a uniform distribution with the
# same mean and spread (§5.1.2). Khan warns that in deep networks this goes wrong: the signal
# shrinks or grows layer after layer. We can watch it happen. The test bench is a stack of 20 blocks
# `Linear(256, 256)` → activation, fed with a batch of 128 unit-variance Gaussian vectors.
# `init.activation_stats` runs one forward pass, then one backward pass starting from a random
# $\mathcal{N}(0, 1)$ gradient at the top, and reports every layer's output standard deviation and
# the standard deviation of the gradient that reached it.

# %%
probe = np.random.default_rng(0).standard_normal((128, 256)).astype(np.float32)


def deep_net(activation, depth=20, width=256):
    layers = []
    for _ in range(depth):
        layers += [Linear(width, width), activation()]
    return Sequential(layers)


def profile(net, X=probe, backward=True):
    """Std of every block's output (after the activation) and of dL/d(output), layer 1 to the last."""
    stats = [s for s in init.activation_stats(net, X, rng=1, backward=backward) if s.kind != "Linear"]
    return np.array([s.std for s in stats]), np.array([s.grad_std if backward else np.nan for s in stats])


fixed = {}
for std in (0.1, 0.01):
    net = deep_net(ReLU)
    init.apply(net, "normal", rng=0, std=std)
    fixed[f"normal, std {std}"] = profile(net)
net = deep_net(ReLU)
init.apply(net, "uniform", rng=0, a=-np.sqrt(3) * 0.1, b=np.sqrt(3) * 0.1)  # U(-b, b) has variance b²/3 = 0.1²
fixed["uniform, std 0.1"] = profile(net)
for name, (act, grad) in fixed.items():
    print(f"{name:17s} activation std at layers 1, 10, 20: {act[0]:.3g}, {act[9]:.3g}, {act[19]:.3g}")

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
for name, (act, grad) in fixed.items():
    ax.semilogy(np.arange(1, 21), act, "o-", ms=3, label=name)
ax.set_xlabel("layer"), ax.set_ylabel("std of the layer's output")
ax.set_title("20 ReLU layers of width 256, fixed-scale weights", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()
fig

# %%
act_01, act_001 = fixed["normal, std 0.1"][0], fixed["normal, std 0.01"][0]
assert act_01[-1] > 5 * act_01[0], "std 0.1: the activations grow with depth"
assert act_001[-1] < 1e-15, "std 0.01: they vanish, below 1e-15 at layer 20"
ratio = fixed["uniform, std 0.1"][0] / act_01
assert np.all((ratio > 0.5) & (ratio < 2)), "uniform and Gaussian weights of the same variance behave alike"

# %% [markdown]
# Both standard deviations fail, in opposite directions, and whether 0.1 grows or shrinks is not
# even a property of the number 0.1: it depends on the width of the layers. The same std 0.1 with
# 64, 256 and 512 units per layer (forward pass only):

# %%
by_width = {}
for width in (64, 256, 512):
    net = deep_net(ReLU, width=width)
    init.apply(net, "normal", rng=0, std=0.1)
    X_width = np.random.default_rng(0).standard_normal((64, width)).astype(np.float32)
    by_width[width] = profile(net, X_width, backward=False)[0]
    print(f"width {width:3d}: std at layer 20 = {by_width[width][-1]:.3g}")
assert by_width[64][-1] < 1e-3 < 1e3 < by_width[512][-1], "narrow: vanishes; wide: explodes"

# %% [markdown]
# ## The variance rule
#
# Why does the width matter? Take one output of a linear layer, $y_i = \sum_{j=1}^{n_{\text{in}}} w_{ij} x_j$,
# a sum over its $n_{\text{in}}$ inputs (its **fan-in**). Assume the weights and inputs are independent
# and the weights have mean zero. Then the terms are uncorrelated, the variance of the sum is the sum
# of the variances, and $\mathrm{Var}(w x) = \mathbb{E}[w^2]\,\mathbb{E}[x^2] = \mathrm{Var}(w)\,\mathbb{E}[x^2]$, so
#
# $$\mathrm{Var}(y_i) = n_{\text{in}}\, \mathrm{Var}(w)\, \mathbb{E}[x^2].$$
#
# Khan's §5.1.5 states this proportionality to the fan-in in words. Through $L$ linear layers the factor
# $n_{\text{in}} \mathrm{Var}(w)$ is applied $L$ times: above 1 the signal explodes geometrically, below 1
# it vanishes. With std 0.1 and 256 inputs the factor is $256 \times 0.01 = 2.56$ before the ReLU. Check
# the rule on a single layer with inputs of variance 4:

# %%
rng = np.random.default_rng(1)
layer = Linear(500, 300).astype(np.float64)
init.normal_(layer.weight, std=0.05, rng=rng)
init.zeros_(layer.bias)
x = rng.normal(0.0, 2.0, size=(2000, 500))
predicted = 500 * 0.05**2 * 4.0
measured = layer(x).var()
print(f"Var(y): predicted {predicted:.3f}, measured {measured:.3f}")
assert abs(measured / predicted - 1) < 0.05

# %% [markdown]
# With zero-mean inputs $\mathbb{E}[x^2] = \mathrm{Var}(x)$, so that check cannot tell the two apart.
# After a ReLU they differ: for $z \sim \mathcal{N}(0, 4)$ the input $x = \mathrm{relu}(z)$ has
# $\mathbb{E}[x^2] = 2$ (half of 4) but mean $2/\sqrt{2\pi} \approx 0.80$, so
# $\mathrm{Var}(x) = 2 - 2/\pi \approx 1.36$. The rule with $\mathbb{E}[x^2]$ predicts
# $500 \times 0.05^2 \times 2 = 2.5$; written with $\mathrm{Var}(x)$ it would predict 1.70. Four
# draws of weights and inputs:

# %%
for seed in range(4):
    gen = np.random.default_rng(10 + seed)
    relu_layer = Linear(500, 1000).astype(np.float64)
    init.normal_(relu_layer.weight, std=0.05, rng=gen)
    init.zeros_(relu_layer.bias)
    x_relu = np.maximum(gen.normal(0.0, 2.0, size=(2000, 500)), 0)
    measured = relu_layer(x_relu).var()
    with_second_moment, with_variance = 500 * 0.05**2 * 2.0, 500 * 0.05**2 * (2 - 2 / np.pi)
    print(f"E[x^2] = {np.mean(x_relu ** 2):.3f}, Var(x) = {x_relu.var():.3f};  Var(y): measured {measured:.3f}, "
          f"n Var(w) E[x^2] = {with_second_moment:.3f}, n Var(w) Var(x) = {with_variance:.3f}")
    # the measured variance scatters by about 1.6% from draw to draw (seen over 20 draws): 0.08 is 5 times that
    assert abs(measured / with_second_moment - 1) < 0.08, "n Var(w) E[x^2] predicts Var(y)"
    assert measured / with_variance > 1.3, "n Var(w) Var(x) underestimates it (by a factor 1.47)"

# %% [markdown]
# The same rule holds for a convolution, with the right fan-in: each output of a `Conv2d` sees a
# window of $k_h \times k_w$ pixels in each of its $C_{\text{in}}$ input maps, so
# $n_{\text{in}} = C_{\text{in}} k_h k_w$ (the fans `cnnlab.init.fan_in_and_fan_out` computes).

# %%
conv = Conv2d(3, 64, kernel_size=5).astype(np.float64)
init.normal_(conv.weight, std=0.1, rng=rng)
init.zeros_(conv.bias)
fan_in, fan_out = init.fan_in_and_fan_out(conv.weight)
images = rng.standard_normal((64, 3, 16, 16))
print(f"fan_in = 3·5·5 = {fan_in}, fan_out = 64·5·5 = {fan_out}")
print(f"Var(out): predicted {fan_in * 0.1**2:.3f}, measured {conv(images).var():.3f}")
assert (fan_in, fan_out) == (75, 1600)
# each map's variance is |w_c|² Var(x), |w_c|² a sum of 75 squares: relative spread √(2/75) = 0.16 per map,
# 0.02 for the mean of 64 maps, so 0.05 is 2.5 of those
assert abs(conv(images).var() / (fan_in * 0.1**2) - 1) < 0.05

# %% [markdown]
# The backward pass has its own version of the rule. The gradient that a linear layer passes down is
# $\partial L/\partial x = W^\top\, \partial L/\partial y$: input $j$ collects the gradients of the
# $n_{\text{out}}$ outputs it feeds (its **fan-out**), so
# $\mathrm{Var}(\partial L/\partial x_j) = n_{\text{out}}\,\mathrm{Var}(w)\,\mathrm{Var}(\partial L/\partial y)$.

# %%
layer(x)
upstream = rng.standard_normal((2000, 300))
measured = layer.backward(upstream).var()
print(f"Var(dL/dx): predicted {300 * 0.05**2:.3f}, measured {measured:.3f}")
assert abs(measured / (300 * 0.05**2) - 1) < 0.05

# %% [markdown]
# ## LeCun, Xavier and He
#
# The rule says how to choose $\mathrm{Var}(w)$ so that the scale survives a layer:
#
# * **forward**: $n_{\text{in}} \mathrm{Var}(w) = 1$, i.e. $\mathrm{Var}(w) = 1/n_{\text{in}}$. This is
#   LeCun's heuristic, the first formula on Veta's parameter-initialisation slide (`init.lecun_normal_`);
# * **backward**: $n_{\text{out}} \mathrm{Var}(w) = 1$, i.e. $\mathrm{Var}(w) = 1/n_{\text{out}}$;
# * **both, as well as one number can**: Glorot and Bengio take the harmonic compromise
#   $\mathrm{Var}(w) = 2/(n_{\text{in}} + n_{\text{out}})$, Khan's eq. (5.1) and Veta's second formula.
#   This is **Xavier** initialisation (`init.xavier_normal_`, `init.xavier_uniform_`).
#
# All three assume the layer is linear. A nonlinearity changes the bookkeeping. A **ReLU** sets the
# negative half of its input to zero, which halves the second moment: for a symmetric $z$,
# $\mathbb{E}[\mathrm{relu}(z)^2] = \mathrm{Var}(z)/2$. He et al. put the factor 2 back,
# $\mathrm{Var}(w) = 2/n_{\text{in}}$, Khan's eq. (5.2) (`init.kaiming_normal_`, alias `init.he_normal_`).
# **tanh** has slope 1 at 0 but flattens away from it, so it loses a little at every layer; PyTorch's
# recommended gain $5/3$ (`init.calculate_gain("tanh")`) multiplies the standard deviation to make up for
# it (where 5/3 comes from is worked out after the twenty-layer test below). In general `calculate_gain(nonlinearity)` is the factor by which a scheme's standard deviation is
# multiplied for that nonlinearity: $\sqrt{2}$ for ReLU, which turns LeCun's $1/n_{\text{in}}$ into He's
# $2/n_{\text{in}}$.

# %%
z = np.random.default_rng(2).standard_normal(1_000_000)
print(f"E[relu(z)^2] = {np.mean(np.maximum(z, 0) ** 2):.4f} for Var(z) = 1")
assert abs(np.mean(np.maximum(z, 0) ** 2) - 0.5) < 0.005
assert np.isclose(init.calculate_gain("relu") ** 2, 2) and np.isclose(init.calculate_gain("tanh"), 5 / 3)

# %% [markdown]
# ## Exercise 1: write Xavier's and He's initialisers
#
# Write the two functions `torch.nn.init` (and `cnnlab.init`) would give you, for a weight of shape
# `(out, in)` (a `Linear`) or `(out, in, kh, kw)` (a `Conv2d`). Each **fills the array it is given in place**
# (the layer keeps its array, so a new array would be lost), draws every number from the `rng` it is given
# (a `numpy.random.Generator`: `rng.uniform(low, high, size)`, `rng.normal(mean, std, size)`; never NumPy's
# global state) and returns the weight.
#
# * The fans: each output of a convolution sees a $k_h \times k_w$ window in each of the $C_{\text{in}}$ input
#   maps, so $n_{\text{in}} = C_{\text{in}} k_h k_w$ and, the other way, $n_{\text{out}} = C_{\text{out}} k_h k_w$
#   (for a `Linear`, $k_h k_w$ is 1).
# * `xavier_uniform_(weight, gain, rng)`: Khan's eq. (5.1) with a gain, drawn from a uniform $U(-b, b)$, whose
#   variance is $b^2/3$:
#   $$\mathrm{Var}(w) = \text{gain}^2\,\frac{2}{n_{\text{in}} + n_{\text{out}}}, \qquad b = \sqrt{3\,\mathrm{Var}(w)}.$$
# * `kaiming_normal_(weight, rng)`: He's eq. (5.2) for ReLU units, drawn from a Gaussian $\mathcal{N}(0, \sigma^2)$
#   (careful: `rng.normal` takes the standard deviation $\sigma$, not the variance):
#   $$\mathrm{Var}(w) = \frac{2}{n_{\text{in}}}.$$
#
# The check fills a non-square `Linear`, conv kernels `(8, 3, 5, 3)` and `(40, 24, 3, 3)` (float32) and a 1x1
# conv, many times over, and compares the variance of 60,000 draws with the formula.

# %% tags=["exercise"]
def xavier_uniform_(weight, gain=1.0, rng=None):
    """Fill weight (out, in) or (out, in, kh, kw) in place with U(-b, b), Var = gain² 2/(fan_in + fan_out).

    Inputs: weight, a float array; gain, a number; rng, a numpy Generator (draw only from it).
    Returns weight (the same array, filled).
    """
    ...  # your code here
    return weight


def kaiming_normal_(weight, rng=None):
    """Fill weight (out, in) or (out, in, kh, kw) in place with N(0, 2/fan_in) (He, for ReLU). Returns weight."""
    ...  # your code here
    return weight


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "08-init-fills-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def fans_of(shape):
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    receptive_field = int(np.prod(shape[2:]))  # kh·kw, or 1 for a Linear
    return shape[1] * receptive_field, shape[0] * receptive_field


def xavier_uniform_(weight, gain=1.0, rng=None):
    """Fill weight (out, in) or (out, in, kh, kw) in place with U(-b, b), Var = gain² 2/(fan_in + fan_out).

    Inputs: weight, a float array; gain, a number; rng, a numpy Generator (draw only from it).
    Returns weight (the same array, filled).
    """
    fan_in, fan_out = fans_of(weight.shape)
    bound = gain * np.sqrt(6.0 / (fan_in + fan_out))
    weight[...] = rng.uniform(-bound, bound, size=weight.shape)
    return weight


def kaiming_normal_(weight, rng=None):
    """Fill weight (out, in) or (out, in, kh, kw) in place with N(0, 2/fan_in) (He, for ReLU). Returns weight."""
    fan_in, _ = fans_of(weight.shape)
    weight[...] = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=weight.shape)
    return weight


# %% nbgrader={"grade": true, "grade_id": "08-init-fills-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.initialization import check_init_fills

check_init_fills(xavier_uniform_, kaiming_normal_)

# %% [markdown]
# Put yours to work inside a real layer and compare with the library: the variance of a large conv kernel
# must be the formula's, and `init.xavier_uniform_` must stay within your bound.

# %%
conv_big = Conv2d(32, 64, kernel_size=3).astype(np.float64)
yours = xavier_uniform_(conv_big.weight.data, 1.0, np.random.default_rng(3))
library = init.xavier_uniform_(np.empty((64, 32, 3, 3)), rng=3)
he_yours = kaiming_normal_(np.empty((64, 32, 3, 3)), np.random.default_rng(4))
print(f"Xavier Var: yours {yours.var():.3e}, library {library.var():.3e}, formula {2 / (288 + 576):.3e}")
print(f"He Var: yours {he_yours.var():.3e}, formula 2/288 = {2 / 288:.3e}")
assert yours is conv_big.weight.data, "filled in place: the layer holds your values"
assert abs(yours.var() * (288 + 576) / 2 - 1) < 0.05 and abs(he_yours.var() * 288 / 2 - 1) < 0.05
assert np.abs(library).max() <= np.abs(yours).max() * 1.01 <= 1.01 * np.sqrt(6 / (288 + 576))

# %% [markdown]
# ## Twenty layers, four starts
#
# Now the test that matters. The same 20-layer bench, four ways:
#
# * tanh with Gaussian std 0.01 (Khan's small fixed scale);
# * tanh with Xavier, gain 1;
# * tanh with Xavier and the tanh gain 5/3;
# * ReLU with He's $2/n_{\text{in}}$.
#
# Left: the activations' standard deviation per layer; right: the gradients', which travel from layer
# 20 down to layer 1.

# %%
starts = {
    "tanh, normal std 0.01": (Tanh, "normal", {"std": 0.01}),
    "tanh, Xavier, gain 1": (Tanh, "xavier_normal", {}),
    "tanh, Xavier, gain 5/3": (Tanh, "xavier_normal", {"gain": init.calculate_gain("tanh")}),
    "ReLU, He": (ReLU, "kaiming_normal", {}),
}
deep = {}
for name, (activation, scheme, options) in starts.items():
    net = deep_net(activation)
    init.apply(net, scheme, rng=0, **options)
    deep[name] = profile(net)
    print(f"{name:23s} activations: layer 1 {deep[name][0][0]:.3g}, layer 20 {deep[name][0][-1]:.3g};  "
          f"gradients: layer 20 {deep[name][1][-1]:.3g}, layer 1 {deep[name][1][0]:.3g}")

# %%
with plt.ioff():
    fig, (ax_a, ax_g) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for name, (act, grad) in deep.items():
    ax_a.semilogy(np.arange(1, 21), act, "o-", ms=3, label=name)
    ax_g.semilogy(np.arange(1, 21), grad, "o-", ms=3, label=name)
for ax, what in ((ax_a, "activations"), (ax_g, "gradients ∂L/∂h (flow right to left)")):
    ax.axhspan(0.2, 5, color="#c8e6c9", alpha=0.5, lw=0)
    ax.set_xlabel("layer"), ax.set_title(what, fontsize=10)
ax_a.set_ylabel("standard deviation")
ax_g.legend(fontsize=8, loc="lower right")
fig.tight_layout()
fig

# %% [markdown]
# The green band, a standard deviation between 0.2 and 5, is "neither vanishing nor exploding". With
# the fixed std 0.01, each tanh layer multiplies the scale by about $\sqrt{256} \times 0.01 = 0.16$:
# after 20 layers the activations are $10^{-16}$, the size of rounding errors, and the gradient that
# reaches layer 1 is just as small, so the first layers could not learn. Xavier with gain 1 is much
# better but drifts down as tanh flattens the signal; the gain 5/3 holds it steady. He's factor 2
# keeps ReLU's activations and gradients at the same scale from the first layer to the last.

# %%
for name in ("tanh, Xavier, gain 5/3", "ReLU, He"):
    act, grad = deep[name]
    assert np.all((act > 0.2) & (act < 5)), f"{name}: activations neither vanish nor explode"
    assert np.all((grad > 0.2) & (grad < 10)), f"{name}: nor do the gradients"
act, grad = deep["tanh, normal std 0.01"]
assert act[-1] < 1e-10 and grad[0] < 1e-10, "std 0.01: activations and gradients vanish"
assert deep["tanh, Xavier, gain 1"][0][-1] < 0.2 < deep["tanh, Xavier, gain 5/3"][0][-1], "the tanh gain matters"

# %% [markdown]
# ## Where the tanh gain 5/3 comes from
#
# The variance rule predicts what a tanh layer does to the scale. In the bench every layer is
# 256 → 256, so Xavier with gain $g$ gives $\mathrm{Var}(w) = g^2/n$, and the pre-activation $z$ of
# the next layer has variance
#
# $$q_{\ell+1} = n\,\mathrm{Var}(w)\,\mathbb{E}[\tanh(z_\ell)^2] = g^2\, \mathbb{E}[\tanh(z_\ell)^2],
# \qquad z_\ell \sim \mathcal{N}(0, q_\ell)$$
#
# (the same independence assumptions as the rule, plus Gaussian pre-activations). Since
# $\tanh(z)^2 < z^2$, with $g = 1$ the variance falls at every layer, towards 0: the drift of the
# gain-1 run. With $g > 1$ it settles at a **fixed point** $q^* > 0$. One natural gain is the one
# whose fixed point is $q^* = 1$, unit-variance pre-activations: $g = 1/\sqrt{\mathbb{E}[\tanh(u)^2]}$
# for $u \sim \mathcal{N}(0, 1)$. Backwards, each layer multiplies the gradient's variance by
# $\chi = g^2\, \mathbb{E}[\tanh'(z)^2]$, taken at the fixed point. The expectations are estimated
# from $10^5$ Gaussian samples (their sampling error moves $g$ by about 0.002):

# %%
u = np.random.default_rng(3).standard_normal(100_000)


def tanh_fixed_point(g, layers=100):
    """Iterate q <- g^2 E[tanh(sqrt(q) u)^2] from q = 1; return q after `layers` steps and chi there."""
    q = 1.0
    for _ in range(layers):
        q = g**2 * np.mean(np.tanh(np.sqrt(q) * u) ** 2)
    return q, g**2 * np.mean(1 / np.cosh(np.sqrt(q) * u) ** 4)  # tanh' = 1/cosh^2


g_unit = 1 / np.sqrt(np.mean(np.tanh(u) ** 2))
print(f"gain with fixed point q* = 1: {g_unit:.4f};  PyTorch's 5/3 = {5 / 3:.4f}")
for g in (1.0, 1.2, g_unit, 5 / 3, 2.0):
    q, chi = tanh_fixed_point(g)
    print(f"g = {g:.4f}: q after 100 layers {q:.4f}, activation std {np.sqrt(q) / g:.4f}, chi {chi:.4f}")

# %%
assert tanh_fixed_point(1.0)[0] < 0.02, "gain 1: the variance drains away"
assert abs(tanh_fixed_point(g_unit)[0] - 1) < 1e-3
assert 0.05 < 5 / 3 - g_unit < 0.1, "5/3 is near the unit fixed point's gain, but not equal to it"
assert all(tanh_fixed_point(g)[1] > 1 for g in (1.2, g_unit, 5 / 3, 2.0)), "no gain > 1 keeps the gradient's scale"

# %% [markdown]
# So 5/3 is not the solution of an equation: PyTorch's documentation gives no derivation, and the
# gain that makes unit-variance pre-activations a fixed point is 1.59, 0.07 (4.5%) below it. What the
# numbers show is that any gain in this range gives a stable forward pass: with 5/3 the recursion
# settles at $q^* \approx 1.18$, activations of standard deviation $\sqrt{q^*}/g \approx 0.65$. The
# backward pass cannot be neutral at the same time: at the fixed point $\chi > 1$ for every gain
# above 1 tried here ($\approx 1.21$ at 5/3), so the gradient should grow by about $\sqrt{\chi}$ per
# layer on its way down, $\chi^{19/2} \approx 6$ from layer 20 to layer 1. The bench, over three
# seeds of the weights (seed 0 is the run above):

# %%
q_53, chi_53 = tanh_fixed_point(5 / 3)
for seed in (0, 1, 2):
    net = deep_net(Tanh)
    init.apply(net, "xavier_normal", rng=seed, gain=5 / 3)
    act, grad = profile(net)
    print(f"seed {seed}: activation std at layer 20 {act[-1]:.3f} (predicted {np.sqrt(q_53) * 3 / 5:.3f}); "
          f"gradient std layer 1 / layer 20 {grad[0] / grad[-1]:.2f} (predicted {chi_53 ** 9.5:.2f})")
    assert abs(act[-1] / (np.sqrt(q_53) * 3 / 5) - 1) < 0.05
    # measured 5.4-5.8 against 6.0: the first layers have not reached the fixed point yet (their activations are
    # larger, so tanh' is smaller there) and the width is finite; 0.25 leaves room for both, and still fails if the
    # gradient kept its scale (ratio 1)
    assert abs(grad[0] / grad[-1] / chi_53 ** 9.5 - 1) < 0.25

# %% [markdown]
# ## LeCun's scaled tanh, with LeCun's initialisation and targets of ±1
#
# Bouvrie (§2.1) quotes a recipe of LeCun's that ties three choices together: the activation
# $f(x) = A \tanh(Bx)$ with $A = 1.7159$ and $B = 2/3$ (`LeCunTanh`), inputs normalised to mean 0 and
# variance 1, and training targets of $\pm 1$. The constants are chosen so that $f(\pm 1) = \pm 1$, where,
# Bouvrie writes, the point of maximum nonlinearity lies: targets there sit on the bend of the curve,
# not in its flat tails. The weights that go with it are LeCun's $\mathrm{Var}(w) = 1/n_{\text{in}}$,
# which keeps a pre-activation's variance at the variance of the layer's inputs. Three claims to check:
# where the bend really is, what the pairing does to the signal through depth, and what the $\pm 1$
# targets do in training.
#
# **The bend.** "Maximum nonlinearity" is where $|f''|$ peaks. With $s = \tanh(Bx)$,
# $f''(x) = -2AB^2\, s\,(1 - s^2)$, and $s(1 - s^2)$ is largest at $s = 1/\sqrt 3$, so the exact answer
# is $x^* = \tfrac32 \operatorname{artanh}(1/\sqrt 3)$. Measure it instead of trusting the algebra:
# differentiate $f$ twice numerically on a fine grid and find the peak.

# %%
from numpy.polynomial.hermite_e import hermegauss

from cnnlab.layers import LeCunTanh

A, B = LeCunTanh.A, LeCunTanh.B
x = np.linspace(-4, 4, 8001)     # grid step 1e-3 (finer, and rounding noise in f'' takes over)
f = LeCunTanh()(x)
f1 = np.gradient(f, x)           # f' and f'' by central differences on the grid
f2 = np.gradient(f1, x)
inner = slice(2, -2)             # np.gradient is one-sided at the ends
x_peak = x[inner][np.argmax(np.abs(f2[inner]) * (x[inner] > 0))]
x_exact = 1.5 * np.arctanh(1 / np.sqrt(3))
kappa = np.abs(f2) / (1 + f1**2) ** 1.5  # the curvature of the graph, for comparison
x_kappa = x[inner][np.argmax(kappa[inner] * (x[inner] > 0))]
f_at_1 = LeCunTanh()(np.array([-1.0, 1.0]))
print(f"f(-1), f(1) = {f_at_1}; A = {A}, 1/tanh(2/3) = {1 / np.tanh(B):.7f}")
print(f"|f''| peaks at x = {x_peak:.5f} (exact {x_exact:.5f}), where f = {A * np.tanh(B * x_peak):.4f}")
print(f"the curvature of the graph, |f''| / (1 + f'^2)^(3/2), peaks at x = {x_kappa:.3f}")

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(7, 3.2))
ax.plot(x, f, label="f(x) = 1.7159 tanh(2x/3)")
ax.plot(x, f1, "--", label="f'(x)")
ax.plot(x, f2, ":", label="f''(x)")
for sign in (-1, 1):
    ax.axvline(sign, color="0.7", lw=0.8), ax.axhline(sign, color="0.85", lw=0.8)
    ax.plot(sign * x_peak, f2[np.searchsorted(x, sign * x_peak)], "ko", ms=4)
ax.set_xlabel("x"), ax.legend(fontsize=8, loc="upper left")
ax.set_title("the peaks of |f''| (dots) against x = ±1 (grey lines)", fontsize=10)
fig.tight_layout()
fig

# %%
assert np.allclose(f_at_1, [-1, 1], rtol=0, atol=1e-5), "f(±1) = ±1 up to the rounding of A"
assert abs(A - 1 / np.tanh(B)) < 1e-5, "A is 1 / tanh(2/3) to five significant digits"
assert abs(x_peak - x_exact) < 1e-3, "the measured peak of |f''| is the algebra's, to the grid step"
assert 0.98 < x_peak < 0.995, "close to 1, but not at 1"
assert 1.4 < x_kappa < 1.5, "the curvature of the graph peaks elsewhere"

# %% [markdown]
# So the claim holds to about 1%: $|f''|$ peaks at $x^* = 0.988$, where $f = A/\sqrt 3 = 0.991$, a hair
# inside $\pm 1$ (the constants put $f(\pm 1) = \pm 1$ exactly, to the 5 digits of $A$; the bend comes
# with them only approximately). "Maximum curvature" needs a definition: the curvature of the drawn
# graph, $|f''|/(1 + f'^2)^{3/2}$, peaks at $x \approx 1.45$, because it also depends on the slope, and so
# on the units of the axes. LeCun's "nonlinearity" is $f''$.
#
# **Through depth.** With $\mathrm{Var}(w) = 1/n_{\text{in}}$ and zero biases, the variance rule says
# that the pre-activation of the next layer has the variance $q$ of this layer's outputs, and a sum of
# 256 terms is close to Gaussian, so layer by layer
# $q_{\ell+1} = \mathbb{E}\big[f(\sqrt{q_\ell}\, z)^2\big]$ with $z \sim \mathcal N(0, 1)$, from
# $q_1 = 1$ for unit-variance inputs. The expectation is a one-dimensional integral, computed here by
# Gauss–Hermite quadrature. Below: the prediction, and the 20-layer bench with `LeCunTanh` and
# `lecun_normal` from three seeds. Plain tanh with the same weights is the "tanh, Xavier, gain 1" run
# above: for a square layer Xavier's variance $2/(n_{\text{in}} + n_{\text{out}})$ is LeCun's $1/n_{\text{in}}$.

# %%
z_gh, w_gh = hermegauss(101)  # nodes and weights for E[g(z)], z ~ N(0, 1)
w_gh = w_gh / w_gh.sum()
q, predicted = 1.0, []
for _ in range(20):
    q = np.sum(w_gh * (A * np.tanh(B * np.sqrt(q) * z_gh)) ** 2)
    predicted.append(np.sqrt(q))
predicted = np.array(predicted)
chi = np.sum(w_gh * (A * B * (1 - np.tanh(B * np.sqrt(q) * z_gh) ** 2)) ** 2)  # E[f'(u)^2] there
lecun_deep = []
for seed in range(3):
    net = deep_net(LeCunTanh)
    init.apply(net, "lecun_normal", rng=seed)
    lecun_deep.append(profile(net))
print(f"predicted std: layer 1 {predicted[0]:.3f}, layer 20 {predicted[-1]:.3f}; "
      f"measured (3 seeds): {[f'{a[0]:.3f}, {a[-1]:.3f}' for a, g in lecun_deep]}")
print(f"at the fixed point q = {q:.3f}, the backward factor E[f'(u)^2] = {chi:.3f}")

# %%
with plt.ioff():
    fig, (ax_a, ax_g) = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
layers_ = np.arange(1, 21)
for seed, (act, grad) in enumerate(lecun_deep):
    ax_a.plot(layers_, act, "o", ms=3, color="C0", label="LeCun tanh + lecun_normal (3 seeds)" if seed == 0 else None)
    ax_g.plot(layers_, grad, "o", ms=3, color="C0")
ax_a.plot(layers_, predicted, "k-", lw=1, label=r"prediction $\sqrt{q_\ell}$")
ax_a.plot(layers_, deep["tanh, Xavier, gain 1"][0], "s-", ms=3, color="C3", label="plain tanh, same weights")
ax_g.plot(layers_, deep["tanh, Xavier, gain 1"][1], "s-", ms=3, color="C3")
ax_a.set_title("activations", fontsize=10), ax_g.set_title("gradients ∂L/∂h (flow right to left)", fontsize=10)
for ax in (ax_a, ax_g):
    ax.set_xlabel("layer"), ax.set_ylim(0, 1.3), ax.set_xticks([1, 5, 10, 15, 20])
ax_a.set_ylabel("standard deviation"), ax_a.legend(fontsize=8, loc="lower left")
fig.tight_layout()
fig

# %%
for act, grad in lecun_deep:
    assert np.all(np.abs(act / predicted - 1) < 0.1), "the variance recursion predicts every layer"
    assert np.all((act > 0.5) & (act < 1.0)), "a steady scale, below 1"
    assert np.all((grad > 0.8) & (grad < 1.25)), "the gradients keep their scale"
assert abs(chi - 1) < 0.03 and 0.6 < predicted[-1] < 0.65
assert deep["tanh, Xavier, gain 1"][0][-1] < 0.5 * min(act[-1] for act, _ in lecun_deep)

# %% [markdown]
# The pairing does not keep the variance at 1: the first layer already turns variance 1 into 0.75
# (the tanh squashes), and the scale settles at a standard deviation of 0.62. But it *settles*, where plain
# tanh with the same weights keeps shrinking, and at that level the backward factor is 1.02, so the
# gradients cross 20 layers at the scale they started with. The constants act as a gain built into the
# activation: since $A \tanh(Bu)$ feeds the next layer's weights, this network is the plain tanh network
# with every weight after the first multiplied by $AB = 1.14$ (the first by $B$), a gain between 1, which
# fades, and PyTorch's 5/3 for tanh.
#
# **Targets of ±1.** Now train a small network the way the recipe says: inputs standardised per pixel
# (mean 0, variance 1; a floor on the standard deviation keeps the nearly constant border pixels from
# being blown up), Linear(196, 32) → $f$ → Linear(32, 10) → $f$, LeCun's initialisation, squared error
# against one-vs-rest targets, +1 for the image's class and −1 for the nine others. The same network
# with plain tanh, which reaches ±1 only in its tails, is the comparison. After 20 epochs, count the
# **saturated** outputs, those where the slope $f'(u)$ has fallen below a tenth of its value at 0:
# there the error barely moves the weights any more.

# %%
from cnnlab.data import small_fashion_mnist
from cnnlab.losses import MSELoss, one_hot
from cnnlab.metrics import accuracy

X_small, y_small, X_small_val, y_small_val = small_fashion_mnist(n_train=2000, n_val=500, seed=0)
pixel_mean, pixel_std = X_small.mean(axis=0), np.maximum(X_small.std(axis=0), 0.05)
X_norm, X_norm_val = (X_small - pixel_mean) / pixel_std, (X_small_val - pixel_mean) / pixel_std
targets = 2 * one_hot(y_small, 10) - 1  # +1 for the class, -1 for the others


def pm1_run(activation, seed, epochs=20):
    """Train Linear-f-Linear-f with LeCun's init on +-1 targets; return (net, output pre-activations u)."""
    net = Sequential([Linear(196, 32), activation(), Linear(32, 10), activation()])
    init.apply(net, "lecun_normal", rng=seed)
    Trainer(net, MSELoss(), SGD(net.parameters(), lr=0.05, momentum=0.9), X_norm, targets, batch_size=64,
            rng=seed).run(epochs=epochs)
    return net, net[2](net[1](net[0](X_norm)))


def relative_slope(activation, u):
    """f'(u) / f'(0), both from the layer's own backward."""
    layer = activation()
    layer(np.zeros(1))
    at_zero = layer.backward(np.ones(1))[0]
    layer(u)
    return layer.backward(np.ones_like(u)) / at_zero


pm1 = {}
for activation in (LeCunTanh, Tanh):
    for seed in range(3):
        net, u = pm1_run(activation, seed)
        pm1[activation.__name__, seed] = dict(u=u, saturated=np.mean(relative_slope(activation, u) < 0.1),
                                              loss=MSELoss().forward(net(X_norm), targets),
                                              val_accuracy=accuracy(net(X_norm_val), y_small_val))
for (name, seed), r in pm1.items():
    print(f"{name:9s} seed {seed}: squared error {r['loss']:.3f}, validation accuracy {r['val_accuracy']:.1%}, "
          f"saturated outputs {r['saturated']:.1%}")

# %%
u_saturated = {"LeCunTanh": 1.5 * np.arctanh(np.sqrt(0.9)), "Tanh": np.arctanh(np.sqrt(0.9))}  # f'(u)/f'(0) = 0.1
with plt.ioff():
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), sharey=True)
for ax, name in zip(axes, ("LeCunTanh", "Tanh")):
    u = pm1[name, 0]["u"]
    bins = np.linspace(-8, 8, 81)
    ax.hist(u[targets < 0], bins=bins, alpha=0.6, label="target −1")
    ax.hist(u[targets > 0], bins=bins, alpha=0.6, label="target +1")
    for side in (-1, 1):
        ax.axvspan(side * u_saturated[name], side * 8, color="0.85", lw=0, zorder=0)
    ax.set_yscale("log"), ax.set_xlabel("output pre-activation u")
    ax.set_title(f"{name}: {pm1[name, 0]['saturated']:.0%} of the outputs saturated (grey: f'(u) < f'(0)/10)",
                 fontsize=9)
axes[0].set_ylabel("outputs (2,000 images × 10)"), axes[0].legend(fontsize=8)
fig.tight_layout()
fig

# %%
for seed in range(3):
    lecun_run, tanh_run = pm1["LeCunTanh", seed], pm1["Tanh", seed]
    assert lecun_run["saturated"] < 0.01, "LeCun's tanh: the targets are reached on the bend"
    assert tanh_run["saturated"] > 0.5, "plain tanh: most outputs are pushed into the flat tails"
    assert lecun_run["val_accuracy"] > 0.75 and tanh_run["val_accuracy"] > 0.75
    assert tanh_run["loss"] < lecun_run["loss"], "plain tanh ends with the smaller squared error"
    assert np.isclose(relative_slope(LeCunTanh, np.array([u_saturated["LeCunTanh"]]))[0], 0.1)
mean_accuracy = {name: np.mean([pm1[name, s]["val_accuracy"] for s in range(3)]) for name in ("LeCunTanh", "Tanh")}
assert abs(mean_accuracy["LeCunTanh"] - mean_accuracy["Tanh"]) < 0.04, "no difference in accuracy at this size"

# %% [markdown]
# With plain tanh, a target of −1 is an asymptote: the squared error keeps asking for a more negative
# $u$, and about 70% of the outputs end in the tail, where the slope is below a tenth of its maximum
# and an image that is later misclassified sends almost no gradient back. With LeCun's tanh, $f(u) = -1$
# at $u = -1$, the error stops pulling there, and no output saturates. Two honest caveats from the same
# runs: the accuracy is the same either way on this small problem, and plain tanh even ends with the
# smaller squared error, because sitting in the tail a hair from −1 is exactly what its error rewards.
# The recipe buys gradients that can still move every output, not a better score on day one.

# %% [markdown]
# ## Explore: the initialisation explorer
#
# The widget builds the same kind of stack with the depth, width, activation and scheme you choose
# (every scheme of `cnnlab.init`, LSUV included) and measures it at initialisation. The two heat maps are
# histograms, one column per layer: the activations' values on the left, the gradients' on the right.
# The right panel has every layer's standard deviation on a log scale, with the vanishing and exploding
# regions shaded. The dashed lines are what the variance rule predicts when it is applied layer by layer,
# including what the activation does to the variance (a Gaussian integral, see the widget's docstring).
# The **gain** slider matters for the orthogonal, Xavier, LeCun and LSUV schemes; **std** sets the scale
# of the normal, uniform and constant ones. Things to try:
#
# * *normal* with std 0.01, then 0.1, then widen the layers;
# * Xavier with tanh at gain 1, then press *recommended gain*;
# * He (*kaiming_normal*) with ReLU, then with sigmoid; LeCun tanh with *lecun_normal*;
# * *zeros* or *ones*: the status line reports that all units are identical;
# * *lsuv* with tanh, then make the net 40 layers deep: the forward signal is held at the same scale
#   in every layer, but look at the gradients. LSUV only looks forward.

# %%
explorer = widgets.init_explorer()
explorer

# %% [markdown]
# Driving it from code, as you would with the mouse: switch the scheme to *normal* (std 0.01) and the
# signal vanishes; switch to ReLU with He's scheme and it survives all 20 layers. In the notebook the
# widget measures new settings in the background so that its controls answer at once; `await
# explorer.finished()` waits for the picture.

# %%
draws = explorer.view.draws
explorer.scheme.value = "normal"
await explorer.finished()
assert explorer.model.act_std[-1] < 1e-10 and "vanishing" in explorer.status.text
explorer.activation.value = "ReLU"
await explorer.finished()
explorer.scheme.value = "kaiming_normal"
await explorer.finished()
assert np.all((explorer.model.act_std > 0.2) & (explorer.model.act_std < 5))
assert explorer.view.draws >= draws + 3, "the figure was redrawn after every change"

# %% [markdown]
# ## Orthogonal weights
#
# A random Gaussian matrix is only roughly orthogonal (Khan §5.1.3): it stretches some directions and
# squashes others. Its singular values spread out, and in a deep linear stack these stretch factors
# multiply. An **orthogonal** matrix $Q$, with $Q^\top Q = I$, has all its singular values equal to 1:
# it rotates vectors without changing their length. Khan's recipe is to decompose a random Gaussian
# matrix (with an SVD, or a QR decomposition as PyTorch does) and keep its orthogonal factor;
# `init.orthogonal_` does that, with an optional gain.

# %%
Q = init.orthogonal_(np.empty((256, 256)), rng=0)
G = init.lecun_normal_(np.empty((256, 256)), rng=0)  # Gaussian with the same mean square, 1/256
sv_q, sv_g = np.linalg.svd(Q, compute_uv=False), np.linalg.svd(G, compute_uv=False)
print(f"orthogonal: singular values in [{sv_q.min():.6f}, {sv_q.max():.6f}]")
print(f"Gaussian:   singular values in [{sv_g.min():.4f}, {sv_g.max():.4f}]")
assert np.allclose(Q.T @ Q, np.eye(256), atol=1e-10), "QᵀQ = I"
assert sv_g.max() / sv_g.min() > 10, "a Gaussian matrix stretches some directions far more than others"

# %% [markdown]
# A conv kernel `(out, in, kh, kw)` is treated as a matrix with one row per output channel,
# `(out, in·kh·kw)`. With fewer rows than columns, the rows are orthonormal: $W W^\top = I$.

# %%
kernel = init.orthogonal_(np.empty((8, 3, 3, 3)), rng=0).reshape(8, -1)
assert np.allclose(kernel @ kernel.T, np.eye(8), atol=1e-10)

# %% [markdown]
# Through 20 *linear* layers, orthogonal weights keep the length of every single input vector, exactly.
# Gaussian weights with the same average scale keep it only on average: some inputs come out much longer,
# others much shorter.

# %%
x_lin = np.random.default_rng(4).standard_normal((128, 256))
lengths = {}
for scheme in ("orthogonal", "lecun_normal"):
    net = Sequential([Linear(256, 256) for _ in range(20)]).astype(np.float64)
    init.apply(net, scheme, rng=0)
    lengths[scheme] = np.linalg.norm(net(x_lin), axis=1) / np.linalg.norm(x_lin, axis=1)
    print(f"{scheme:12s} output length / input length: min {lengths[scheme].min():.3f}, "
          f"max {lengths[scheme].max():.3f}")
assert np.allclose(lengths["orthogonal"], 1.0, atol=1e-10)
assert lengths["lecun_normal"].max() / lengths["lecun_normal"].min() > 1.5

# %% [markdown]
# ## LSUV: let the data set the scale
#
# Every formula so far assumes something about the inputs (independent, unit variance) and about the
# activation. Mishkin and Matas' **layer-sequential unit variance** (LSUV, Khan §5.1.7) measures instead:
#
# 1. initialise every weight layer with an orthogonal matrix;
# 2. from the first layer to the last: run a batch of real data through the network, compute the variance
#    $v$ of this layer's output, and divide the layer's weights by $\sqrt{v}$; repeat until $|v - 1|$ is below
#    a tolerance.
#
# The result resembles batch normalisation (every layer's output has unit variance on the batch), done
# once before training instead of at every step. A small CNN on 256 Fashion-MNIST images
# (`cnnlab.models.small_cnn`: Conv2d(1, 8, 5) → ReLU → MaxPool2d(2) → Conv2d(8, 16, 5) → ReLU →
# MaxPool2d(2) → Flatten → Linear(256, 10)):

# %%
cnn = small_cnn(0)
batch = X_all[:256]
report = init.lsuv(cnn, batch, tol=0.05, rng=0)
for r in report:
    print(f"layer {r['name']} ({r['type']}): output variance {r['variance']:.4f} after {r['iterations']} rescaling(s)")

# %% [markdown]
# Check it independently: run the batch once more and measure the output of each weight layer.

# %%
outputs = {s.name: s.output for s in init.activation_stats(cnn, batch, backward=False)}
for r in report:
    assert r["converged"] and abs(np.var(outputs[r["name"]]) - 1) < 0.05, r["name"]

# %% [markdown]
# ## Exercise 2: the LSUV loop
#
# Write step 2 of LSUV, `lsuv(net, X, tol, max_iter)`, for a `Sequential` whose weight layers (`Linear`,
# `Conv2d`) already have their orthogonal start. From the first weight layer to the last:
#
# 1. measure $v = \mathrm{Var}(B)$, the variance of **all entries** of this layer's output $B$ on the batch `X`,
#    with the layers before it **already rescaled**;
# 2. if $|v - 1| < \text{tol}$, or `max_iter` rescalings were made, go on to the next layer; otherwise divide the
#    layer's weight in place, $W \leftarrow W / \sqrt{v}$, and measure again.
#
# Scaling $W$ by $c$ scales $WX$ by $c$ and its variance by $c^2$; with a bias $b$ the output is $c\,WX + b$,
# so one rescaling is not enough and the loop matters. Mishkin and Matas rerun the whole net for every
# measurement (`cnnlab.hooks.recording([layer])` catches a layer's output during `net(X)`); this lesson prefers
# the cheaper equivalent that `cnnlab.init.lsuv` uses: walk through the net once, layer by layer, keeping the
# current input `h`, so a layer's own forward, `layer(h)`, gives its output; nothing after it changes that
# output. `Sequential` can be iterated (`for layer in net`). The check compares your weights with `init.lsuv`'s
# on an MLP with biases, a CNN with `(5, 3)` and 1x1 kernels, and with `max_iter` reached.

# %% tags=["exercise"]
def lsuv(net, X, tol=0.1, max_iter=10):
    """LSUV's rescaling (Mishkin & Matas), in place: each weight layer's output on X gets variance ~1.

    Inputs: net, a Sequential of layers (weight layers Linear / Conv2d, already orthogonal); X, a batch
    (N, ...) for the first layer; tol > 0; max_iter, the most rescalings per layer. Returns net.
    """
    ...  # your code here
    return net


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "08-lsuv-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def lsuv(net, X, tol=0.1, max_iter=10):
    """LSUV's rescaling (Mishkin & Matas), in place: each weight layer's output on X gets variance ~1.

    Inputs: net, a Sequential of layers (weight layers Linear / Conv2d, already orthogonal); X, a batch
    (N, ...) for the first layer; tol > 0; max_iter, the most rescalings per layer. Returns net.
    """
    h = X                                         # the input of the current layer
    for layer in net:
        if isinstance(layer, (Linear, Conv2d)):
            rescalings = 0
            variance = np.var(layer(h))
            while abs(variance - 1) >= tol and rescalings < max_iter:
                layer.weight.data /= np.sqrt(variance)
                rescalings += 1
                variance = np.var(layer(h))
        h = layer(h)                              # with the final weights: the next layer's input
    return net


# %% nbgrader={"grade": true, "grade_id": "08-lsuv-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.initialization import check_lsuv

check_lsuv(lsuv)

# %% [markdown]
# Run yours on a 6-layer tanh network with biases, next to the library's `init.lsuv` on a copy started from
# the same orthogonal matrices: both must end with the same weights, and every layer's output with unit
# variance.

# %%
def tanh_stack():
    net = Sequential([m for _ in range(6) for m in (Linear(128, 128), Tanh())]).astype(np.float64)
    for k in range(0, 12, 2):
        net[k].bias.data[...] = np.random.default_rng(k).normal(0.0, 0.3, size=128)
    return net


x_batch = np.random.default_rng(5).normal(0.0, 3.0, size=(200, 128))
mine, theirs = tanh_stack(), tanh_stack()
init.apply(mine, "orthogonal", rng=7, bias="keep")
lsuv(mine, x_batch, tol=1e-3)
library_report = init.lsuv(theirs, x_batch, tol=1e-3, rng=7, bias="keep")
print("rescalings per layer (library):", [r["iterations"] for r in library_report])
for k in range(0, 12, 2):
    assert np.allclose(mine[k].weight.data, theirs[k].weight.data, rtol=1e-8, atol=1e-12), f"layer {k}"
assert all(r["converged"] for r in library_report)
print("your LSUV and cnnlab's agree on all 6 layers")

# %% [markdown]
# ## Biases: zero, or a little positive?
#
# Biases do not suffer from symmetry (the weights already differ), so Khan and Veta start them at 0. Veta
# adds a caveat for ReLU: a unit whose input is negative for every example outputs 0 everywhere, receives
# no gradient and may never recover (a *dead* unit), and a small positive bias pushes units towards
# their active side. Does it? Count the dead units at initialisation in a deep, narrow ReLU network (10
# layers of 16 units, where dead units are common) on 512 Fashion-MNIST images, over 5 seeds.

# %%
def dead_fraction(scheme, bias, seeds=range(5), **options):
    fractions, spread = [], []
    for seed in seeds:
        net = Sequential([Flatten(), Linear(784, 16)] + [m for _ in range(9) for m in (ReLU(), Linear(16, 16))]
                         + [ReLU()])
        init.apply(net, scheme, rng=seed, bias=bias, **options)
        outs = [s.output for s in init.activation_stats(net, X_all[:512], backward=False) if s.kind == "ReLU"]
        fractions.append(np.mean([np.all(o <= 0, axis=0).mean() for o in outs]))
        last = outs[-1]
        spread.append(last.std(axis=0).mean() / max(last.mean(), 1e-30))  # variation across images / level
    return float(np.mean(fractions)), float(np.mean(spread))


for scheme, options in (("kaiming_normal", {}), ("normal", {"std": 0.01})):
    for bias in (0.0, 0.01):
        dead, spread = dead_fraction(scheme, bias, **options)
        print(f"{scheme:14s} bias {bias:4}: {dead:6.1%} of the units dead; last layer's variation across "
              f"images / its level = {spread:.2g}")

# %% [markdown]
# First, without biases both scales kill exactly the same units. That is no coincidence: a ReLU satisfies
# $\mathrm{relu}(c z) = c\, \mathrm{relu}(z)$ for $c > 0$, and the std-0.01 weights are the He weights of the
# same seed, every layer scaled down by its own positive factor; so every pre-activation keeps its sign, and
# the weights' scale alone cannot revive a unit. Then the bias tells two different stories. With He's
# weights the pre-activations are of order 1, so a bias of 0.01 hardly moves them and the count of dead
# units barely changes. With tiny weights the weighted sums shrink layer after layer and soon are far below
# 0.01: the bias decides everything. No unit is dead, but every unit outputs almost the same value for every
# image (the variation across images is a few millionths of the level), so the units are alive yet carry
# next to no information about the input. A positive bias is a modest tweak on top of a well-scaled weight
# initialisation, not a substitute for one.

# %%
he_0, he_small = dead_fraction("kaiming_normal", 0.0)[0], dead_fraction("kaiming_normal", 0.01)[0]
(tiny_0, _), (tiny_small, tiny_spread) = dead_fraction("normal", 0.0, std=0.01), dead_fraction("normal", 0.01, std=0.01)
assert np.isclose(he_0, tiny_0), "zero biases: the weights' scale does not change which ReLU units are dead"
assert he_0 > 0.05 and abs(he_small - he_0) < 0.03, "He: a bias of 0.01 changes little"
assert tiny_small == 0.0, "tiny weights: the bias keeps every unit on..."
assert tiny_spread < 1e-3, "...but the units barely depend on the image"

# %% [markdown]
# ## Unsupervised pre-training: layer by layer, without labels
#
# Before good scaling rules were known, deep networks were started in another way (Khan §5.1.4): teach each
# hidden layer, one at a time, to *encode its own input* well enough that a small decoder can rebuild it.
# Layer $k$ with input $h_{k-1}$ becomes the encoder of an auto-encoder,
#
# $$h_k = f(W_k h_{k-1} + b_k), \qquad r = V_k h_k + c_k, \qquad \text{loss} = \text{mean}\,(r - h_{k-1})^2,$$
#
# trained for a few epochs; then $V_k$ is thrown away, layer $k$ is held fixed and its codes feed layer
# $k + 1$. No label is used until the whole network is fine-tuned. `pretrain.pretrain_autoencoders` does this
# for every hidden `Linear` layer of a `Sequential`:

# %%
mlp = Sequential([Flatten(), Linear(784, 64, rng=0), ReLU(), Linear(64, 32, rng=0), ReLU(), Linear(32, 10, rng=0)])
results = pretrain.pretrain_autoencoders(mlp, X_all[:2000], rng=0, epochs=5, batch_size=32, lr=3e-3)
for r in results:
    print(f"layer {r.index}: reconstruction loss {r.loss_before:.4f} -> {r.loss_after:.4f}, per epoch "
          f"{np.round(r.history.train_loss, 4).tolist()}")

# %%
for r in results:
    assert r.loss_after < 0.6 * r.loss_before, f"layer {r.index} learned to reconstruct its input"
    assert np.all(np.diff(r.history.train_loss) < 0), "the reconstruction loss falls every epoch"

# %% [markdown]
# The first auto-encoder squeezes 784 pixels through 64 ReLU units and back. What comes out:

# %%
first = results[0]
shown = X_all[2000:2006]  # images the auto-encoder did not train on
rebuilt = first.decoder(first.encoder(shown.reshape(6, -1))).reshape(6, 28, 28)
with plt.ioff():
    fig, axes = plt.subplots(2, 6, figsize=(7, 2.6))
for i in range(6):
    axes[0, i].imshow(shown[i, 0], cmap="gray_r", vmin=0, vmax=1)
    axes[1, i].imshow(rebuilt[i], cmap="gray_r", vmin=0, vmax=1)
for ax in axes.ravel():
    ax.set_xticks([]), ax.set_yticks([])
axes[0, 0].set_ylabel("input", fontsize=8), axes[1, 0].set_ylabel("rebuilt", fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# Blurry, but recognisable, from 64 numbers per image. On 500 images it never saw, the auto-encoder does much
# better than the best reconstruction that ignores the input, the average training image:

# %%
unseen = X_all[2000:2500].reshape(500, -1)
ae_error = np.mean((first.decoder(first.encoder(unseen)) - unseen) ** 2)
mean_error = np.mean((X_all[:2000].reshape(2000, -1).mean(axis=0) - unseen) ** 2)
print(f"mean squared error: auto-encoder {ae_error:.4f}, average image {mean_error:.4f}")
assert ae_error < 0.5 * mean_error

# %% [markdown]
# Khan notes that this kind of pre-training, once a way to make deep networks trainable at all, is rarely
# used for CNNs now: it adds hyper-parameters and work, and the scaling rules above do the job.

# %% [markdown]
# ## Supervised pre-training and fine-tuning
#
# What is used everywhere is the supervised version (Khan §5.1.8): train a network on a task with plenty of
# labels, copy its first layers into a network for a related task that has only a few, give it a new output
# layer, and train (**fine-tune**) on the small task. Our version of the experiment, within Fashion-MNIST:
#
# * **source task**: classes 0–4 (T-shirt, trouser, pullover, dress, coat), all 4,000 shipped images, one epoch;
# * **target task**: classes 5–9 (sandal, shirt, sneaker, bag, ankle boot) with only **50 labelled images
#   per class**;
# * both contenders train on the target for the **same budget**, one epoch of 25 Adam steps; one starts
#   from random weights, the other from the source network's two conv layers and a new head;
# * judged on the 500 shipped test images of classes 5–9, for 4 random draws of the 250 labelled images.

# %%
source = small_cnn(1, num_classes=5)
Trainer(source, CrossEntropyLoss(), Adam(source.parameters(), lr=3e-3), X_all[y_all < 5], y_all[y_all < 5],
        batch_size=64, rng=2).fit(1, progress=False)
X_val, y_val = X_test_all[y_test_all >= 5], y_test_all[y_test_all >= 5] - 5

margins = []
for draw in range(4):
    pick = np.random.default_rng(100 + draw)
    idx = np.concatenate([pick.choice(np.flatnonzero(y_all == c), 50, replace=False) for c in range(5, 10)])
    accuracy = {}
    for start in ("random", "fine-tuned"):
        net = small_cnn(10 + draw, num_classes=5)
        if start == "fine-tuned":
            pretrain.transfer(source, net, 2)      # the two conv layers
            pretrain.replace_head(net, 5, rng=4)   # a new output layer for the new classes
        history = Trainer(net, CrossEntropyLoss(), Adam(net.parameters(), lr=3e-3), X_all[idx], y_all[idx] - 5,
                          batch_size=10, rng=5 + draw, X_val=X_val, y_val=y_val).fit(1, progress=False)
        accuracy[start] = history.val_accuracy[-1]
    margins.append(accuracy["fine-tuned"] - accuracy["random"])
    print(f"draw {draw}: random start {accuracy['random']:.1%}, fine-tuned {accuracy['fine-tuned']:.1%}")
print(f"mean advantage of fine-tuning: {np.mean(margins):+.1%}")

# %%
assert np.mean(margins) > 0.03, "on average, pre-trained conv layers give a better start"
assert sum(m > 0 for m in margins) >= 3, "and they win in (almost) every draw"

# %% [markdown]
# The conv layers learned on shirts and coats detect edges and textures that are just as useful for sandals
# and bags, so the fine-tuned network starts with features the random one has yet to find in 25 steps. The
# advantage is not guaranteed for every draw of the small training set, which is why the experiment repeats
# it. `pretrain.freeze` would keep the copied layers fixed while the new head learns, a common first stage of
# fine-tuning when the small task is very small.

# %% [markdown]
# ## Exercise 3 (optional): He's variance for a leaky ReLU
#
# A leaky ReLU keeps a slope $a$ on the negative side: $f(z) = z$ for $z > 0$ and $a z$ otherwise. For a
# symmetric $z$, half of the second moment comes from each side, so $\mathbb{E}[f(z)^2] = \frac{1 + a^2}{2}
# \mathrm{Var}(z)$. Write `he_leaky_variance(a, fan_in)`, the weight variance that keeps the forward scale
# (He's argument with this factor in place of $1/2$).

# %% tags=["exercise"]
def he_leaky_variance(a, fan_in):
    """Var(w) that keeps the scale through Linear(fan_in, ...) followed by a leaky ReLU of slope a."""
    return ...  # your code here


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "08-leaky-he-variance-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def he_leaky_variance(a, fan_in):
    """Var(w) that keeps the scale through Linear(fan_in, ...) followed by a leaky ReLU of slope a."""
    return 2 / ((1 + a**2) * fan_in)


# %% nbgrader={"grade": true, "grade_id": "08-leaky-he-variance-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.initialization import check_leaky_he_variance

check_leaky_he_variance(he_leaky_variance)
assert np.isclose(he_leaky_variance(0.1, 256), init.calculate_gain("leaky_relu", 0.1) ** 2 / 256), \
    "the same as PyTorch's gain for leaky_relu"

# %% [markdown]
# ## Summary
#
# * Equal weights (zero or any constant) keep all units of a layer identical; random weights break the
#   symmetry.
# * A linear layer multiplies the variance by $n_{\text{in}} \mathrm{Var}(w)$ on the way forward and by
#   $n_{\text{out}} \mathrm{Var}(w)$ on the way back; over many layers, any factor other than 1 makes the signal
#   vanish or explode, which is why a fixed std such as 0.1 or 0.01 fails in deep nets.
# * LeCun's $1/n_{\text{in}}$, Xavier's $2/(n_{\text{in}} + n_{\text{out}})$ and He's $2/n_{\text{in}}$ set the
#   factor to about 1, for linear/tanh units (with tanh's gain 5/3) and for ReLU units.
# * Orthogonal matrices preserve lengths exactly; LSUV then measures and fixes each layer's scale on data.
# * A small positive bias only matters when the weighted sums are of the same size.
# * Starting from learned weights (auto-encoders, or better, a network trained on a related labelled task)
#   is a third kind of initialisation; fine-tuning it wins when labels are scarce.
#
# Lesson 09 turns to what happens later in training: over-fitting, and how to hold it back.
