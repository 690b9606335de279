# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Regularisation: closing the gap
#
# A network with a hundred thousand weights can learn five hundred images by heart. It then does
# very well on those five hundred and much worse on any other picture: it has **over-fitted**. Khan
# et al. (§5.2) sort the remedies by where they act (the last row is from Veta's list):
#
# | where | methods |
# |---|---|
# | on the weights | L2 (weight decay), L1, elastic net, max-norm |
# | on the activations | dropout, drop-connect |
# | on the statistics of a layer | batch normalisation |
# | on the data | augmentation (crops, flips, rotations, colour jitter, ...), synthetic data |
# | on the decision | ensembles of several nets |
# | on the training time | early stopping with a validation set |
# | on the architecture | a smaller network |
#
# The penalties (L2, L1, elastic net) change what is minimised: Veta writes the regularised objective
# as the data term plus a penalty weighted by $\lambda$,
#
# $$\min_\theta \; \frac{1}{D}\sum_{d=1}^{D} E\big(f(x^{(d)};\theta),\, y^{(d)}\big) \;+\; \lambda\,\Omega(\theta).$$
#
# All the others change how the minimisation is done: where the weights may go (max-norm), which net
# is trained at each step (dropout), what it is trained on (augmentation), when it stops. This lesson
# tries every one of them on the same small problem, from the same starting weights, and measures
# what each does to the gap between the training and the validation loss.

# %%
# %matplotlib widget
import matplotlib.pyplot as plt
import numpy as np

import widgets
from cnnlab import Module, Parameter
from cnnlab.augment import (Compose, ContrastJitter, RandomAffine, RandomCrop, RandomHorizontalFlip, affine)
from cnnlab.bench.threads import one_blas_thread
from cnnlab.data import load_fashion_mnist
from cnnlab.ensemble import Ensemble
from cnnlab.layers import BatchNorm1d, DropConnect, Dropout, Linear
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import regularization_mlp
from cnnlab.optim import SGD
from cnnlab.regularizers import L1, L2, ElasticNet, MaxNorm, unit_norms
from cnnlab.rng import as_generator
from cnnlab.train import EarlyStopping, Trainer, evaluate

blas = one_blas_thread()  # the products here are small: one BLAS thread is faster on a busy machine

# %% [markdown]
# ## A set small enough to memorise
#
# Veta splits the data three ways: a **training** set the optimizer sees, a **validation** set that
# is only looked at, to notice over-fitting and to choose settings such as $\lambda$, and a **test**
# set kept for the final verdict. We take 500 training and 1,000 validation images at random from
# the shipped Fashion-MNIST subset (`source="subset"`, so the numbers below are the same on every
# machine); the test set stays untouched in this lesson.

# %%
X_all, y_all, classes = load_fashion_mnist("train", source="subset")
order = np.random.default_rng(0).permutation(len(X_all))
X_train, y_train = X_all[order[:500]], y_all[order[:500]]
X_val, y_val = X_all[order[500:1500]], y_all[order[500:1500]]
print(f"training {X_train.shape}, validation {X_val.shape}")
assert len(np.intersect1d(order[:500], order[500:1500])) == 0, "no image is in both sets"

# %% [markdown]
# The network is deliberately too big for 500 images: 784 pixels → 128 hidden ReLU units → 10
# class scores, about 100,000 weights. `regularization_mlp()` (from `cnnlab.models`, the network of
# this lesson's explorer too) can add the layers of later sections (batch norm, dropout, drop-connect).
# Each layer gets its **own** seed, so adding a dropout layer does not change the initial weights of the
# others: every comparison below starts from the same point.

# %%
print(regularization_mlp(p_keep=0.5, batchnorm=True))  # with the optional batch norm and dropout layers
loss_fn = CrossEntropyLoss()


def fit(net, epochs=40, lr=0.05, shuffle_seed=1, **options):
    """SGD with momentum 0.9, mini-batches of 50 in a seeded order; options go to the Trainer."""
    trainer = Trainer(net, loss_fn, SGD(net.parameters(), lr=lr, momentum=0.9), X_train, y_train,
                      batch_size=50, X_val=X_val, y_val=y_val, rng=shuffle_seed, **options)
    return trainer.fit(epochs, progress=False)


def losses(net):
    """(training loss, validation loss), both evaluated the same way: eval mode, whole set."""
    return evaluate(net, loss_fn, X_train, y_train)[0], evaluate(net, loss_fn, X_val, y_val)[0]


def late(history):
    """The training curve's mean over the last 10 epochs: steadier than any single epoch's figure."""
    return float(np.mean(history.train_loss[-10:]))


# %% [markdown]
# Train it for 40 epochs without any regularisation and watch both losses.

# %%
base_net = regularization_mlp()
base = fit(base_net)
base_train, base_val = losses(base_net)
print(f"after 40 epochs: training loss {base_train:.3f}, validation loss {base_val:.3f}, "
      f"gap {base_val - base_train:.3f}")
print(f"best validation loss {base.val_loss.min():.3f} at epoch {base.val_loss.argmin() + 1}")

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6, 3.4))
epochs = np.arange(1, len(base.epochs) + 1)
ax.plot(epochs, base.train_loss, label="training (mean over the epoch's mini-batches)")
ax.plot(epochs, base.val_loss, label="validation")
ax.axvline(base.val_loss.argmin() + 1, color="grey", ls=":", lw=1)
ax.set_xlabel("epoch"), ax.set_ylabel("cross-entropy loss"), ax.legend(fontsize=8)
ax.set_title("no regularisation: the net memorises its 500 images", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# The training loss keeps falling towards zero while the validation loss bottoms out after fifteen
# to twenty epochs and then climbs: from there on the net learns details of its 500 images that do
# not carry over to other pictures. The **gap**, validation loss minus training loss of the final
# weights, is what every method below tries to shrink.
#
# With momentum and mini-batches of 50, the training loss of the final weights jumps from epoch to
# epoch (by about 0.1 near the end): another seed, or the same seed on a machine whose BLAS rounds
# differently, gives another draw. The checks in this lesson claim only what held with a margin across
# such draws (ten seeds, several BLAS kernels); where one epoch's figure would be luck they use
# `late`, the training curve's mean over its last ten epochs.

# %%
assert late(base) < 0.15 * base.train_loss[0] and base.train_loss[0] > 1.0, "the training loss collapses"
assert base.val_loss[-1] > 1.1 * base.val_loss.min(), "the validation loss rises again after its minimum"
assert base_val - base_train > 0.5, "a wide gap: over-fitting"

# %% [markdown]
# ## L2: weight decay
#
# The most common penalty is half the sum of the squared weights (Veta; Khan §5.2.6, but see the box
# below),
#
# $$\Omega(\theta) = \tfrac12 \sum_l\sum_{i,j} \big(\theta^l_{ij}\big)^2, \qquad
# \frac{\partial\, \lambda\Omega}{\partial \theta^l_{ij}} = \lambda\,\theta^l_{ij}.$$
#
# The ½ is there only so that the 2 from the square cancels. A gradient step on the penalised loss
# is then $\theta \leftarrow \theta - \eta(\nabla E + \lambda\theta) = (1-\eta\lambda)\,\theta - \eta\nabla E$:
# before each ordinary step every weight shrinks by the factor $1-\eta\lambda$, which is why L2 is
# also called **weight decay**. Only weights are penalised, not biases: a bias shifts a unit's
# output and does not make the function any more wiggly.
#
# `cnnlab.regularizers.L2(λ)` computes $\lambda\Omega$ and its gradient; the Trainer adds the
# gradient to each weight's `.grad` after back-propagation and records the penalty apart from the
# data loss. Check the penalty by hand:

# %%
lam = 0.01
weights = [base_net[1].weight.data, base_net[3].weight.data]
by_hand = lam * 0.5 * sum(float(np.sum(w.astype(np.float64) ** 2)) for w in weights)
print(f"λΩ = {L2(lam).penalty(base_net):.6f} (by hand {by_hand:.6f})")
assert np.isclose(L2(lam).penalty(base_net), by_hand, rtol=1e-9), "weights only, with the 1/2"

# %% [markdown]
# > **The source says:** Khan's eq. 5.12 adds $\lambda\lVert\mathbf{w}\rVert_2$, the norm itself (eq. 5.14
# > likewise $\lambda_2\lVert\mathbf{w}\rVert_2$), while the text around it adds half the squared
# > magnitude times $\lambda$ and gives the derivative $\lambda w$.
# >
# > **We do:** what the text says, $\lambda\cdot\frac12\lVert\mathbf{w}\rVert_2^2$: `L2(λ)` adds
# > $\lambda\theta$ to each weight's gradient (as does `SGD(weight_decay=λ)`; `ElasticNet` keeps the ½ too).
# >
# > **Why:** only the squared norm has the gradient $\lambda\mathbf{w}$ that shrinks each weight in
# > proportion to itself (weight decay). The norm's gradient $\lambda\mathbf{w}/\lVert\mathbf{w}\rVert_2$
# > always has length $\lambda$, however small the weights, and none at $\mathbf{w} = 0$.
#
# Both penalties differenced on a small two-layer net, against `L2`'s gradient:

# %%
from cnnlab import Sequential
from cnnlab.gradcheck import numerical_gradient

small = Sequential([Linear(8, 6, rng=0), Linear(6, 3, rng=1)]).astype(np.float64)
W = small[0].weight
stacked = lambda: np.concatenate([small[0].weight.data.ravel(), small[1].weight.data.ravel()])  # Khan's w
for p in small.parameters():
    p.grad[...] = 0.0
L2(lam).backward(small)  # adds the gradient of L2's penalty to .grad
norm_w = np.linalg.norm(stacked())
as_text = numerical_gradient(lambda: L2(lam).penalty(small), W.data)
as_printed = numerical_gradient(lambda: lam * np.linalg.norm(stacked()), W.data)  # eq. 5.12 literally
print(f"||w|| = {norm_w:.3f}; first weights: L2 grad {W.grad.ravel()[:3].round(5)}, "
      f"eq. 5.12 literally {as_printed.ravel()[:3].round(5)}")
np.testing.assert_allclose(W.grad, lam * W.data, rtol=1e-12)  # lambda w
np.testing.assert_allclose(as_text, W.grad, rtol=1e-6, atol=1e-10)  # = the half squared norm, differenced
np.testing.assert_allclose(as_printed, lam * W.data / norm_w, rtol=1e-6, atol=1e-10)  # lambda w / ||w||
assert abs(norm_w - 1) > 0.3, "so the two gradients differ by the factor ||w||"

# %% [markdown]
# PyTorch-style optimizers take the same thing as an argument, `SGD(..., weight_decay=λ)`, which
# adds $\lambda\theta$ to the gradient of **every** parameter, biases included. So the penalty and
# the optimizer option agree exactly when the penalty is told to include the biases. Two nets from
# the same start, trained for two epochs each way:

# %%
def two_epochs(optimizer_decay=0.0, regularizer=None):
    net = regularization_mlp()
    Trainer(net, loss_fn, SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=optimizer_decay),
            X_train, y_train, batch_size=50, rng=1, regularizer=regularizer).fit(2, progress=False)
    return net


by_optimizer = two_epochs(optimizer_decay=lam)
by_penalty = two_epochs(regularizer=L2(lam, include_bias=True))
weights_only = two_epochs(regularizer=L2(lam))
for a, b in zip(by_optimizer.parameters(), by_penalty.parameters()):
    np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)
assert not np.allclose(by_optimizer[1].bias.data, weights_only[1].bias.data, atol=1e-7), \
    "the default L2 leaves the biases alone, SGD's weight_decay does not"
print("SGD(weight_decay=λ) == L2(λ, include_bias=True) parameter for parameter")

# %% [markdown]
# Now the real run, 40 epochs with $\lambda = 0.01$ (the same data, order and starting weights as
# the unregularised run):

# %%
l2_net = regularization_mlp()
l2_hist = fit(l2_net, regularizer=L2(lam))
l2_train, l2_val = losses(l2_net)
print(f"L2: training loss {l2_train:.3f}, validation loss {l2_val:.3f}, gap {l2_val - l2_train:.3f} "
      f"(without: {base_val - base_train:.3f}); final penalty λΩ = {l2_hist.steps[-1]['penalty']:.3f}")
assert l2_val - l2_train < 0.85 * (base_val - base_train), "weight decay narrows the gap"
assert l2_val < base_val

# %% [markdown]
# ## L1 and sparse weights
#
# The L1 penalty sums absolute values instead (Veta; Khan §5.2.7):
#
# $$\Omega(\theta) = \sum_l\sum_{i,j} \big|\theta^l_{ij}\big|, \qquad
# \frac{\partial\, \lambda\Omega}{\partial \theta^l_{ij}} = \lambda\,\operatorname{sign}\big(\theta^l_{ij}\big).$$
#
# (Veta's slide puts a ½ in front of the sum but then gives the gradient $\operatorname{sign}(\theta)$,
# which belongs to the sum without the ½; we keep the gradient.) At $\theta = 0$ the absolute value has
# a kink and no slope; the usual choice, and NumPy's `np.sign`, is 0 there.
#
# The two gradients behave very differently near zero. L2 pulls a weight in proportion to its size,
# so a small weight feels almost nothing and is never pushed all the way to 0. L1 pulls every
# weight with the same force $\lambda$, however small it already is: weights that the data does not
# defend are driven to zero, and the weight matrix becomes **sparse**.
#
# ### Exercise 1: the penalty gradients
#
# Write the gradients of $\lambda\cdot\tfrac12\sum\theta^2$ and of $\lambda\sum|\theta|$ for a weight
# array `theta`, and a function that adds a penalty's gradient to the `.grad` of every **weight** of a
# network (its parameters whose names end in `"weight"`), leaving the biases alone. This is what
# `L2.backward(net)` and `L1.backward(net)` do.

# %% tags=["exercise"]
def l2_grad(theta, lam):
    """Gradient of lam * 1/2 * sum(theta**2) with respect to theta (an array like theta)."""
    return ...


def l1_grad(theta, lam):
    """Gradient of lam * sum(|theta|) with respect to theta; the slope at theta == 0 is 0."""
    return ...


def add_penalty_grads(net, lam, grad_fn):
    """Add grad_fn(p.data, lam) to p.grad for every weight of net (not the biases)."""
    for name, p in net.named_parameters():
        ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "09-penalty-grads-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def l2_grad(theta, lam):
    """Gradient of lam * 1/2 * sum(theta**2) with respect to theta (an array like theta)."""
    return lam * theta


def l1_grad(theta, lam):
    """Gradient of lam * sum(|theta|) with respect to theta; the slope at theta == 0 is 0."""
    return lam * np.sign(theta)


def add_penalty_grads(net, lam, grad_fn):
    """Add grad_fn(p.data, lam) to p.grad for every weight of net (not the biases)."""
    for name, p in net.named_parameters():
        if name.endswith("weight"):
            p.grad += grad_fn(p.data, lam)


# %% nbgrader={"grade": true, "grade_id": "09-penalty-grads-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.regularization import check_penalty_grads

check_penalty_grads(l2_grad, l1_grad, add_penalty_grads)

# %% [markdown]
# ### L1 against L2
#
# How strong is "the same strength"? The L2 gradient on a weight $w$ has size $\lambda_2|w|$, the L1
# gradient $\lambda_1$. We choose $\lambda_1 = \lambda_2\,\overline{|w_0|}$, so that both pull equally
# hard on a weight of the typical initial size $\overline{|w_0|}$, and count the weights that end
# up (nearly) zero.

# %%
def all_weights(net):
    return np.concatenate([m.weight.data.ravel() for m in net if isinstance(m, (Linear, DropConnect))])


typical = float(np.abs(all_weights(regularization_mlp())).mean())
lam1 = lam * typical
l1_net = regularization_mlp()
l1_hist = fit(l1_net, regularizer=L1(lam1))
l1_train, l1_val = losses(l1_net)


def sparsity(net, below):
    return float(np.mean(np.abs(all_weights(net)) < below))


print(f"typical |w0| = {typical:.4f}, so λ1 = {lam1:.2e} against λ2 = {lam}")
print(f"{'':>14} {'train':>6} {'val':>6} {'|w|<1e-2':>9} {'|w|<1e-3':>9}")
for name, net, (tr, va) in (("none", base_net, (base_train, base_val)), ("L2", l2_net, (l2_train, l2_val)),
                            ("L1", l1_net, (l1_train, l1_val))):
    print(f"{name:>14} {tr:6.3f} {va:6.3f} {sparsity(net, 1e-2):9.1%} {sparsity(net, 1e-3):9.1%}")

# %%
assert sparsity(l1_net, 1e-3) > 3 * sparsity(l2_net, 1e-3), "L1 drives many weights to (almost) exactly zero"
assert sparsity(l1_net, 1e-2) > sparsity(l2_net, 1e-2) > sparsity(base_net, 1e-2)

# %% [markdown]
# Which penalty held the fit back more? Don't read it off the table: its training losses are those of
# the final weights, and the L1 and L2 rows can swap places with another seed or on another machine.
# The training curves' last ten epochs are steadier, and there the order was the same in every draw:

# %%
print(f"training loss, mean of the last 10 epochs: none {late(base):.3f}, L2 {late(l2_hist):.3f}, "
      f"L1 {late(l1_hist):.3f}")
assert late(base) < late(l2_hist), "L2 holds the fit back"
assert late(l1_hist) < late(l2_hist), "...L1 less, at this strength, even though it sends most weights to zero"

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
bins = np.linspace(-6, 0.5, 66)
for name, net, color in (("no penalty", base_net, "0.5"), ("L2", l2_net, "C0"), ("L1", l1_net, "C3")):
    logs = np.log10(np.maximum(np.abs(all_weights(net)), 1e-6))
    ax.hist(logs, bins=bins, histtype="step", lw=1.6, color=color, label=name)
ax.axvline(-2, color="k", ls=":", lw=1)
ax.set_xlabel(r"$\log_{10}|w|$ (magnitudes below $10^{-6}$ in the first bin)"), ax.set_ylabel("weights")
ax.legend(fontsize=8), ax.set_title("L2 shrinks every weight a little; L1 sends many to zero", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# L1's weights split into two groups: a mountain far to the left of $10^{-2}$, weights that only
# jitter around zero by about one step's size $\eta\lambda_1$, and the weights the data needs. A
# weight that is exactly zero (or nearly) can be removed: that is why L1 is used to find which
# connections matter. Each surviving weight has to earn its constant cost $\lambda_1$ by lowering the
# data loss; L2's cost $\tfrac12\lambda_2 w^2$ becomes negligible as $w$ shrinks, so it never insists.
#
# ## Elastic net
#
# Khan (§5.2.8) combines the two penalties, $\lambda_1|w| + \lambda_2 w^2$ per weight: the L1 part
# makes the weights sparse, the L2 part keeps groups of correlated weights together. `ElasticNet(l1,
# l2)` keeps the course's ½ on the squares, so it is exactly `L1(l1) + L2(l2)` (Khan's $\lambda_2$ is
# our `l2 / 2`), and either strength set to 0 gives back the other penalty:

# %%
net = regularization_mlp()
for p in net.parameters():
    p.grad[...] = 0.0
ElasticNet(lam1, lam).backward(net)
assert np.isclose(ElasticNet(lam1, lam).penalty(net), L1(lam1).penalty(net) + L2(lam).penalty(net), rtol=1e-12)
w = net[1].weight.data
np.testing.assert_allclose(net[1].weight.grad, lam1 * np.sign(w) + lam * w, rtol=1e-6)
assert np.all(net[1].bias.grad == 0), "biases are not penalised"

# %% [markdown]
# ## Max-norm: a projection, not a penalty
#
# Khan (§5.2.9) bounds the length of each unit's incoming weight vector, $\|\mathbf{w}_j\|_2 \le c$:
# for a `Linear` weight of shape (out, in) a unit is one row. There is no penalty term; after each
# optimizer step every row that has grown longer than $c$ is scaled back onto the ball,
#
# $$\mathbf{w}_j \leftarrow \mathbf{w}_j \cdot \frac{c}{\max(\|\mathbf{w}_j\|_2,\; c)},$$
#
# and shorter rows are left alone. `MaxNorm(c).after_step(net)` does this; the Trainer calls it right
# after `optimizer.step()`.

# %%
maxnorm_net = regularization_mlp()
c = 1.0
print(f"initial row norms of the first layer: up to {unit_norms(maxnorm_net[1].weight).max():.3f}")
maxnorm_hist = fit(maxnorm_net, regularizer=MaxNorm(c))
norms = [unit_norms(m.weight).ravel() for m in (maxnorm_net[1], maxnorm_net[3])]
at_bound = sum(int(np.sum(np.isclose(n, c, rtol=1e-5))) for n in norms)
mn_train, mn_val = losses(maxnorm_net)
print(f"after training: largest row norm {max(n.max() for n in norms):.6f}; {at_bound} of "
      f"{sum(len(n) for n in norms)} units sit on the bound c = {c}")
print(f"max-norm: training loss {mn_train:.3f}, validation loss {mn_val:.3f}, gap {mn_val - mn_train:.3f}")

# %%
assert all(np.all(n <= c * (1 + 1e-6)) for n in norms), "every unit's norm is at most c after a step"
assert at_bound > 0, "the constraint was active: some units were projected"
assert mn_val - mn_train < base_val - base_train

# %% [markdown]
# Khan adds that with the weights held in a bounded range, training survives learning rates that
# would otherwise blow up. Ten epochs at a learning rate twenty times larger, without a bound and
# with a tighter one, $c = 0.5$:

# %%
wild_net, tamed_net = regularization_mlp(), regularization_mlp()
wild = fit(wild_net, epochs=10, lr=1.0)
tamed = fit(tamed_net, epochs=10, lr=1.0, regularizer=MaxNorm(0.5))
print(f"lr = 1.0: first-epoch training loss {wild.train_loss[0]:.2f} without, {tamed.train_loss[0]:.2f} with "
      f"max-norm; validation accuracy after 10 epochs {wild.val_accuracy[-1]:.1%} against {tamed.val_accuracy[-1]:.1%}")
assert tamed.val_loss[-1] < wild.val_loss[-1] and tamed.val_accuracy[-1] > wild.val_accuracy[-1] + 0.2

# %% [markdown]
# ### Exercise 2 (optional): the projection
#
# Write `max_norm_(W, c)`: return `W` with every row whose norm exceeds `c` rescaled to norm `c`, and
# every other row unchanged. (One line with `np.linalg.norm(..., axis=1, keepdims=True)` and
# `np.minimum`.)

# %% tags=["exercise"]
def max_norm_(W, c):
    """W (out, in) -> W with each row w_j scaled by c / max(||w_j||, c)."""
    return ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "09-max-norm-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def max_norm_(W, c):
    """W (out, in) -> W with each row w_j scaled by c / max(||w_j||, c)."""
    return W * np.minimum(1.0, c / np.linalg.norm(W, axis=1, keepdims=True))


# %% nbgrader={"grade": true, "grade_id": "09-max-norm-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.regularization import check_max_norm

check_max_norm(max_norm_)

# %% [markdown]
# ## Dropout
#
# Tomasi (§3) motivates dropout as a cheap stand-in for averaging very many nets: at every
# mini-batch each unit is kept with probability $p$ and dropped (its output set to 0) otherwise, so
# each step trains a different "thinned" net, and all of them share their weights. Khan writes it
# with a mask (eqs. 5.4–5.5):
#
# $$m_i \sim \mathrm{Bernoulli}(p), \qquad \mathbf{a}_l = \mathbf{m}\circ f(\mathbf{W}\mathbf{a}_{l-1} + \mathbf{b}_l).$$
#
# At test time every unit is present, so a unit's output would on average be $1/p$ times what the
# next layer saw during training. Two ways to fix this:
#
# * **classic** (Tomasi): train with the plain mask, and once training is over multiply every weight
#   leaving a dropout layer by $p$ (the same as scaling that layer's outputs by $p$);
# * **inverted** (PyTorch and most libraries): divide the kept units by $p$ during training,
#   $\mathbf{m}\circ\mathbf{a}/p$, and do nothing at test time.
#
# Either way the test-time output equals the *expected* training-time output. Check it with
# `cnnlab.layers.Dropout`: one row of activations, repeated 20,000 times, so every copy gets its own
# mask.

# %%
p = 0.5
a = np.random.default_rng(4).uniform(0.5, 2.0, size=(1, 6))
copies = np.repeat(a, 20_000, axis=0)
for inverted in (False, True):
    layer = Dropout(p, inverted=inverted, rng=1)
    average = layer.forward(copies).mean(axis=0)          # training mode: a fresh mask per copy
    at_test = layer.eval().forward(a)[0]                   # evaluation mode
    scale = 1 / p if inverted else 1.0
    stderr = a[0] * scale * np.sqrt(p * (1 - p) / len(copies))
    name = "inverted" if inverted else "classic"
    print(f"{name:>8}: mean over masks {np.round(average, 3)}\n{'':>8}  test-time output {np.round(at_test, 3)}")
    assert np.all(np.abs(average - at_test) < 5 * stderr), "test time = expectation of training time"
    assert np.allclose(at_test, a[0] * (p if not inverted else 1.0))

# %% [markdown]
# ### Exercise 3: a dropout layer
#
# Write inverted dropout as a layer: a `Module` with a `forward` and a `backward`, which then works
# inside a `Sequential` like cnnlab's `Dropout` (`net.train()` and `net.eval()` set every layer's
# `self.training`). With keep probability $p$ and a mask $\mathbf{m}$ of the shape of $\mathbf{x}$:
#
# $$\text{training:}\quad m_i \sim \mathrm{Bernoulli}(p),\qquad \mathbf{out} = \frac{\mathbf{m}\circ\mathbf{x}}{p},
# \qquad \frac{\partial L}{\partial \mathbf{x}} = \frac{\mathbf{m}\circ\frac{\partial L}{\partial \mathbf{out}}}{p};
# \qquad\qquad
# \text{evaluation:}\quad \mathbf{out} = \mathbf{x},\qquad
# \frac{\partial L}{\partial \mathbf{x}} = \frac{\partial L}{\partial \mathbf{out}}.$$
#
# * In training mode every call draws a **fresh** mask (each mini-batch trains another thinned net),
#   from the layer's own generator `self.rng` (`self.rng.random(shape)` is uniform on $[0, 1)$, and a
#   uniform number is below $p$ with probability $p$), and keeps it in `self.mask`: True = keep.
# * Each output entry is its input entry times a number, $m_i/p$, so the Jacobian is diagonal and
#   backward multiplies `dout` by the same numbers: the **same** mask as forward, not a new one. A unit
#   dropped in forward passes no gradient back.
# * In evaluation mode the layer is the identity, forward and backward.
#
# The self-check runs your layer on a batch of 2 with 7 features and on images (3, 2, 5, 3), compares it
# with cnnlab's `Dropout` holding your mask and with finite differences, checks that the masks are
# fresh, seeded and keep a fraction $p$ of the units, and puts the layer in a `Sequential`.

# %% tags=["exercise"]
class MyDropout(Module):
    """Inverted dropout with keep probability p_keep, on inputs of any shape ((N, D), (N, C, H, W), ...)."""

    def __init__(self, p_keep=0.5, rng=None):
        self.p_keep = p_keep
        self.rng = as_generator(rng)  # a Generator (an int seed gives the same masks every time)
        self.mask = None  # the last training-mode mask: boolean, the shape of x, True = keep

    def forward(self, x):
        """x (any shape) -> out (the same shape). Training: a fresh mask; evaluation: the identity."""
        return ...

    def backward(self, dout):
        """dout (the shape of out) -> dx (the shape of x)."""
        return ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "09-dropout-layer-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
class MyDropout(Module):
    """Inverted dropout with keep probability p_keep, on inputs of any shape ((N, D), (N, C, H, W), ...)."""

    def __init__(self, p_keep=0.5, rng=None):
        self.p_keep = p_keep
        self.rng = as_generator(rng)  # a Generator (an int seed gives the same masks every time)
        self.mask = None  # the last training-mode mask: boolean, the shape of x, True = keep

    def forward(self, x):
        """x (any shape) -> out (the same shape). Training: a fresh mask; evaluation: the identity."""
        if not self.training:
            return x
        self.mask = self.rng.random(x.shape) < self.p_keep
        return x * self.mask / self.p_keep

    def backward(self, dout):
        """dout (the shape of out) -> dx (the shape of x)."""
        if not self.training:
            return dout
        return dout * self.mask / self.p_keep


# %% nbgrader={"grade": true, "grade_id": "09-dropout-layer-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.regularization_layers import check_dropout_layer

check_dropout_layer(MyDropout)

# %% [markdown]
# ### Dropout against over-fitting
#
# The same net with a dropout layer (keep probability 0.5) after the hidden ReLUs. While it trains,
# the training curve is measured on thinned nets and is therefore higher; the gap we compare is, as
# before, between the final net's losses on both sets in evaluation mode.

# %%
dropout_net = regularization_mlp(p_keep=0.5)
dropout_hist = fit(dropout_net)
do_train, do_val = losses(dropout_net)
print(f"dropout: training loss {do_train:.3f}, validation loss {do_val:.3f}, gap {do_val - do_train:.3f} "
      f"(without: {base_val - base_train:.3f})")
assert do_val - do_train < base_val - base_train, "dropout narrows the gap"
assert do_val < base_val

# %% [markdown]
# ### Weight scaling against averaging many thinned nets
#
# Tomasi's picture of dropout is an average over very many thinned nets. At test time the honest
# version of that average would run the trained net many times, each with a fresh mask, and average
# the predicted class probabilities ("Monte-Carlo dropout"). Weight scaling, evaluation mode, is the
# cheap stand-in, and the check above showed that it gives exactly the expected output *of the dropout
# layer*. Does that carry over to the whole network? In this net the dropout layer is followed by the
# output `Linear` and then the softmax. The logits are linear in the mask, so their average over masks
# is the evaluation-mode logits; the softmax is not linear, so the average of the probabilities is not
# the softmax of the evaluation-mode logits. Measure it on the trained dropout net and on two more
# trained from other seeds: 100 training-mode passes over the validation set each.

# %%
from cnnlab.losses import softmax
from cnnlab.module import eval_mode, train_mode

mc_nets = [dropout_net]
for seed in (1, 2):
    mc_nets.append(regularization_mlp(p_keep=0.5, seed=seed))
    fit(mc_nets[-1], shuffle_seed=seed + 1)


def mc_dropout(net, X, T=100):
    """(evaluation-mode logits (N, K), logits of T training-mode passes (T, N, K), each with fresh masks)."""
    with eval_mode(net):
        scaled = net(X)
    with train_mode(net):
        return scaled, np.stack([net(X) for _ in range(T)])


mc = [mc_dropout(net, X_val) for net in mc_nets]

# %% [markdown]
# For $T = 1, \dots, 100$: the accuracy of the averaged probabilities of the first $T$ passes, against
# the accuracy of evaluation mode (dashed):

# %%
ts = np.arange(1, 101)
with plt.ioff():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
mc_acc, eval_acc = [], []
for k, (scaled, passes) in enumerate(mc):
    P_running = np.cumsum(softmax(passes), axis=0) / ts[:, None, None]        # mean of the first T passes
    mc_acc.append(np.mean(P_running.argmax(axis=2) == y_val, axis=1))
    eval_acc.append(float(np.mean(scaled.argmax(axis=1) == y_val)))
    axes[0].semilogx(ts, mc_acc[-1], color=f"C{k}", label=f"seed {k}: mean of T passes")
    axes[0].axhline(eval_acc[-1], color=f"C{k}", ls="--", lw=1)
axes[0].set_xlabel("T (passes averaged)"), axes[0].set_ylabel("validation accuracy"), axes[0].legend(fontsize=8)
scaled, passes = mc[0]
axes[1].scatter(softmax(scaled).max(axis=1), softmax(passes).mean(axis=0).max(axis=1), s=3)
axes[1].plot([0, 1], [0, 1], color="k", lw=0.6)
axes[1].set_xlabel("top probability, evaluation mode"), axes[1].set_ylabel("top probability, mean of 100")
fig.tight_layout()
fig

# %%
def nll(P):
    return float(-np.mean(np.log(P[np.arange(len(y_val)), y_val])))


for k, (scaled, passes) in enumerate(mc):
    P_eval, P_mc = softmax(scaled), softmax(passes).mean(axis=0)
    single = np.mean(passes.argmax(axis=2) == y_val, axis=1).mean()
    print(f"seed {k}: accuracy one pass {single:.1%}, mean of 100 {mc_acc[k][-1]:.1%}, evaluation mode "
          f"{eval_acc[k]:.1%}; mean top probability {P_mc.max(1).mean():.3f} vs {P_eval.max(1).mean():.3f}; "
          f"validation loss {nll(P_mc):.3f} vs {nll(P_eval):.3f}; same class for "
          f"{np.mean(P_mc.argmax(1) == P_eval.argmax(1)):.1%} of the images")

# %% [markdown]
# A single thinned net is clearly worse than the full net. The average of many thinned nets comes to
# the same accuracy as weight scaling (after 100 passes the two pick the same class for all but a few
# percent of the images), but the two are not the same prediction: the averaged probabilities are less
# confident, and here they also gave a slightly lower validation loss. Weight scaling is exact for the
# logits and only an approximation after the softmax; it costs one pass instead of a hundred.

# %%
for k, (scaled, passes) in enumerate(mc):
    stderr = passes.std(axis=0) / np.sqrt(len(passes))
    assert np.all(np.abs(passes.mean(axis=0) - scaled) <= 6 * stderr + 1e-5), "logits: the average over masks"
    single = np.mean(passes.argmax(axis=2) == y_val, axis=1).mean()
    assert single < eval_acc[k] - 0.02, "one thinned net is worse than the full one"
    assert abs(mc_acc[k][-1] - eval_acc[k]) < 0.015, "100 passes: the accuracy of weight scaling"
    P_eval, P_mc = softmax(scaled), softmax(passes).mean(axis=0)
    assert np.mean(P_mc.argmax(axis=1) == P_eval.argmax(axis=1)) > 0.94, "the same class for almost every image"
    assert P_mc.max(axis=1).mean() < P_eval.max(axis=1).mean() - 0.03, "the average is less confident"
assert np.mean([nll(softmax(p).mean(axis=0)) - nll(softmax(s)) for s, p in mc]) < 0, "lower loss on average"

# %% [markdown]
# ## Drop-connect
#
# Drop-connect (Wan et al., in Khan eqs. 5.6–5.7) masks individual *connections* instead of units:
# $\mathbf{a}_l = f\big((\mathbf{M}\circ\mathbf{W})\,\mathbf{a}_{l-1} + \mathbf{b}_l\big)$ with
# $M_{ij} \sim \mathrm{Bernoulli}(p)$. cnnlab's `DropConnect` layer is a `Linear` layer that draws one
# mask per mini-batch while training and uses the expected weights $p\mathbf{W}$ at test time. Since
# the output is linear in $\mathbf{M}$, the average over many masks is exactly that test-time output:

# %%
dc = DropConnect(6, 3, p_keep=0.5, rng=0).astype(np.float64)
x = np.random.default_rng(5).standard_normal((4, 6))
outs = np.stack([dc.forward(x) for _ in range(4000)])      # training mode: a new mask each call
at_test = dc.eval().forward(x)
np.testing.assert_allclose(at_test, x @ (0.5 * dc.weight.data).T + dc.bias.data, rtol=1e-12)
assert np.all(np.abs(outs.mean(0) - at_test) < 5 * outs.std(0) / np.sqrt(len(outs))), "E[M ∘ W] = p W"
dc.train();

# %%
dc_net = regularization_mlp(dropconnect=True)
dc_hist = fit(dc_net)
dc_train, dc_val = losses(dc_net)
print(f"drop-connect on the output layer: training loss {dc_train:.3f}, validation loss {dc_val:.3f}, "
      f"gap {dc_val - dc_train:.3f} (without: {base_val - base_train:.3f})")
assert dc_val - dc_train < base_val - base_train and dc_val < base_val

# %% [markdown]
# ## Batch normalisation
#
# Batch norm (Khan eqs. 5.8–5.11) standardises every feature $j$ over the $m$ examples of the
# mini-batch and then lets the net rescale it with two learned numbers:
#
# $$\mu_j = \frac1m\sum_i x^i_j,\quad \sigma^2_j = \frac1m\sum_i (x^i_j-\mu_j)^2,\quad
# \hat x^i_j = \frac{x^i_j-\mu_j}{\sqrt{\sigma^2_j+\epsilon}},\quad y^i_j = \gamma_j\hat x^i_j + \beta_j.$$
#
# At initialisation ($\gamma = 1, \beta = 0$) the outputs of a training batch have mean 0 and
# variance (almost) 1 in every feature, whatever the layer before produced:

# %%
first = Linear(784, 128, rng=11)
h = first.forward(X_train[:50].reshape(50, -1))            # 50 examples, 128 features
bn = BatchNorm1d(128)
out = bn.forward(h)                                         # training mode: statistics of this batch
print(f"before: feature means in [{h.mean(0).min():.2f}, {h.mean(0).max():.2f}], "
      f"variances in [{h.var(0).min():.4f}, {h.var(0).max():.4f}]")
print(f"after:  feature means within {np.abs(out.mean(0)).max():.1e} of 0, "
      f"variances in [{out.var(0).min():.4f}, {out.var(0).max():.4f}]")
assert np.allclose(out.mean(0), 0, atol=1e-5)
np.testing.assert_allclose(out.var(0), h.var(0) / (h.var(0) + bn.eps), rtol=1e-3)

# %% [markdown]
# A test image comes alone, so there is no batch to take statistics from. During training the layer
# therefore keeps **running** estimates, $\hat\mu \leftarrow 0.9\,\hat\mu + 0.1\,\mu$ and the same for
# the variance (with the unbiased $\frac{m}{m-1}\sigma^2$, as PyTorch does), and evaluation mode uses
# those. After the one batch above they have moved 10% of the way from their start (0 and 1):

# %%
np.testing.assert_allclose(bn.running_mean, 0.1 * h.mean(0), rtol=1e-4, atol=1e-7)
np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * h.var(0, ddof=1), rtol=1e-4)
gen = np.random.default_rng(6)
for _ in range(100):                                        # many training batches
    bn.forward(first.forward(X_train[gen.choice(500, 50, replace=False)].reshape(50, -1)))
all_h = first.forward(X_train.reshape(500, -1))
one = bn.eval().forward(all_h[:1])                          # a single image, evaluation mode
np.testing.assert_allclose(one, bn.forward(all_h)[:1], rtol=1e-6, atol=1e-6)  # whatever else is in its batch
print(f"running mean vs mean over all 500 images: largest difference "
      f"{np.abs(bn.running_mean - all_h.mean(0)).max():.4f} (feature spread {all_h.std(0).mean():.3f})")
assert np.abs(bn.running_mean - all_h.mean(0)).max() < 0.25 * all_h.std(0).mean()

# %% [markdown]
# In evaluation mode an image's output no longer depends on the other images of its batch: alone or
# among 500, it is normalised by the same fixed numbers.
#
# ### Backward through batch norm
#
# Write $s_j = \sqrt{\sigma^2_j+\epsilon}$ and
# $g^i_j = \partial L/\partial \hat x^i_j = \gamma_j\,\partial L/\partial y^i_j$. Every example of the batch
# uses the same $\gamma_j$ and $\beta_j$, so by (5.11) their gradients are sums over the batch:
#
# $$\frac{\partial L}{\partial \gamma_j} = \sum_i \frac{\partial L}{\partial y^i_j}\,\hat x^i_j, \qquad
# \frac{\partial L}{\partial \beta_j} = \sum_i \frac{\partial L}{\partial y^i_j}.$$
#
# In training mode $x^i_j$ reaches the loss three ways: through its own $\hat x^i_j$, and through
# $\mu_j$ and $\sigma^2_j$, which every $\hat x^k_j$ of the batch uses. The chain rule over all three
# gives, feature by feature (derived path by path after the exercise),
#
# $$\frac{\partial L}{\partial x^i_j} = \frac{1}{s_j}\Big(g^i_j \;-\; \frac1m\sum_k g^k_j
# \;-\; \hat x^i_j\,\frac1m\sum_k g^k_j\,\hat x^k_j\Big):$$
#
# the middle term is the path through $\mu_j$, the last one the path through $\sigma^2_j$. In evaluation
# mode $\mu_j$ and $\sigma^2_j$ are the running estimates, constants, and only the first term is left,
# $\partial L/\partial x^i_j = g^i_j / s_j$.
#
# ### Exercise 4: a batch-norm layer
#
# Write `MyBatchNorm1d`, batch norm of features $(N, C)$ as a `Module`, forward and backward, in both
# modes:
#
# * training: normalise with the batch's mean and **biased** variance (5.8)-(5.10), then scale and shift
#   (5.11); update the running estimates, $\text{running} \leftarrow (1-\text{momentum})\,\text{running} +
#   \text{momentum}\cdot\text{batch value}$, the variance's with the **unbiased** $\frac{m}{m-1}\sigma^2$;
# * evaluation: normalise with `running_mean` and `running_var` (and leave them alone);
# * backward: the equations above; it overwrites `weight.grad` and `bias.grad` (shape $(C,)$) and returns
#   $\partial L/\partial x$, shape $(N, C)$. Keep in `self` what it needs from forward.
#
# The self-check compares your layer with cnnlab's `BatchNorm1d` on a batch of 5 and a batch of 2 (whose
# unbiased variance is twice the biased one), in both modes, with centred finite differences of the
# training-mode forward in float64, and inside a `Sequential`.

# %% tags=["exercise"]
class MyBatchNorm1d(Module):
    """Batch normalisation of features (Khan eqs. 5.8-5.11): x (N, C), statistics of each feature over the batch."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.eps, self.momentum = eps, momentum
        self.weight = Parameter(np.ones(num_features))  # gamma, (C,)
        self.bias = Parameter(np.zeros(num_features))  # beta, (C,)
        self.register_buffer("running_mean", np.zeros(num_features))  # (C,), saved in state_dict()
        self.register_buffer("running_var", np.ones(num_features))

    def forward(self, x):
        """x (N, C) -> y (N, C). Training: the batch's statistics (and the running ones updated);
        evaluation: the running statistics."""
        return ...

    def backward(self, dout):
        """dout (N, C) -> dx (N, C); overwrites weight.grad and bias.grad, both (C,)."""
        return ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "09-batchnorm-layer-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
class MyBatchNorm1d(Module):
    """Batch normalisation of features (Khan eqs. 5.8-5.11): x (N, C), statistics of each feature over the batch."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        self.eps, self.momentum = eps, momentum
        self.weight = Parameter(np.ones(num_features))  # gamma, (C,)
        self.bias = Parameter(np.zeros(num_features))  # beta, (C,)
        self.register_buffer("running_mean", np.zeros(num_features))  # (C,), saved in state_dict()
        self.register_buffer("running_var", np.ones(num_features))

    def forward(self, x):
        """x (N, C) -> y (N, C). Training: the batch's statistics (and the running ones updated);
        evaluation: the running statistics."""
        if self.training:
            m = x.shape[0]
            mu, var = x.mean(axis=0), x.var(axis=0)  # (5.8), (5.9): biased
            f = self.momentum
            self.running_mean = (1 - f) * self.running_mean + f * mu
            self.running_var = (1 - f) * self.running_var + f * var * m / (m - 1)  # unbiased
        else:
            mu, var = self.running_mean, self.running_var
        self.s = np.sqrt(var + self.eps)
        self.xhat = (x - mu) / self.s  # (5.10)
        return self.weight.data * self.xhat + self.bias.data  # (5.11)

    def backward(self, dout):
        """dout (N, C) -> dx (N, C); overwrites weight.grad and bias.grad, both (C,)."""
        self.weight.grad = np.sum(dout * self.xhat, axis=0)
        self.bias.grad = np.sum(dout, axis=0)
        g = self.weight.data * dout  # dL/dxhat
        if not self.training:
            return g / self.s
        return (g - g.mean(axis=0) - self.xhat * np.mean(g * self.xhat, axis=0)) / self.s


# %% nbgrader={"grade": true, "grade_id": "09-batchnorm-layer-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.regularization_layers import check_batchnorm_layer

check_batchnorm_layer(MyBatchNorm1d)

# %% [markdown]
# ### The three paths, derived
#
# Where does the compact formula come from? Take one feature and drop the index $j$; write
# $s = \sqrt{\sigma^2+\epsilon}$ and $g_k = \partial L/\partial\hat x_k$ as before. Read eqs. (5.8)-(5.10) as
# a little graph: $x \to \mu$, then $(x, \mu) \to \sigma^2$, then $(x, \mu, \sigma^2) \to \hat x$. A change of
# $x_i$ reaches the loss along three paths, and the chain rule adds them up:
#
# 1. **directly**, through $\hat x_i = (x_i - \mu)/s$ alone: $\;\dfrac{g_i}{s}$;
# 2. **through $\sigma^2$**, which every $\hat x_k$ uses:
#    $\dfrac{\partial L}{\partial\sigma^2} = \sum_k g_k\,(x_k-\mu)\cdot\big(-\tfrac12\big)(\sigma^2+\epsilon)^{-3/2}$
#    and $\dfrac{\partial\sigma^2}{\partial x_i} = \dfrac2m(x_i-\mu)$, so the path gives
#    $\;-\dfrac{\hat x_i}{m\,s}\sum_k g_k\,\hat x_k$;
# 3. **through $\mu$**, which every $\hat x_k$ (and $\sigma^2$) uses:
#    $\dfrac{\partial L}{\partial\mu} = -\dfrac1s\sum_k g_k \;+
#    \dfrac{\partial L}{\partial\sigma^2}\cdot\Big(-\dfrac2m\sum_k(x_k-\mu)\Big)$,
#    where the last sum is 0 by the definition of $\mu$, and $\dfrac{\partial\mu}{\partial x_i} = \dfrac1m$:
#    the path gives $\;-\dfrac{1}{m\,s}\sum_k g_k$.
#
# Their sum is the compact formula, $\frac1s\big(g_i - \overline{g} - \hat x_i\,\overline{g\hat x}\big)$ (bars:
# means over the batch). Below, the three paths are computed apart, exactly as derived, in float64:

# %%
from cnnlab.gradcheck import numerical_gradient


def bn_backward_paths(x, gamma, dout, eps=1e-5):
    """dL/dx of batch norm in training mode, path by path. x, dout (m, C); gamma (C,).
    Returns (direct, via_var, via_mean), each (m, C); their sum is dL/dx."""
    m = len(x)
    mu, var = x.mean(axis=0), x.var(axis=0)
    g = gamma * dout                                          # dL/dxhat
    direct = g / np.sqrt(var + eps)
    dL_dvar = -0.5 * np.sum(g * (x - mu), axis=0) * (var + eps) ** -1.5
    via_var = dL_dvar * 2 * (x - mu) / m
    dL_dmu = -np.sum(g, axis=0) / np.sqrt(var + eps)          # + dL_dvar * (-2/m) * sum(x - mu) = 0
    via_mean = np.broadcast_to(dL_dmu / m, x.shape)
    return direct, via_var, via_mean


bn_gen = np.random.default_rng(9)
x64 = bn_gen.normal(loc=[0.0, 3.0, -1.0], scale=[1.0, 0.2, 5.0], size=(8, 3))   # m = 8, C = 3 features
gamma64, dout64 = bn_gen.normal(size=3), bn_gen.normal(size=(8, 3))
paths = bn_backward_paths(x64, gamma64, dout64)
dx_paths = sum(paths)

# %% [markdown]
# Three checks of the derived sum: against the compact formula, against cnnlab's `BatchNorm1d` in
# float64, and against centred finite differences of $L = \sum_{i,j} \text{dout}^i_j\,y^i_j$ (whose
# gradient with respect to $y$ is dout) with a fresh forward pass for every perturbed entry:

# %%
s64 = np.sqrt(x64.var(axis=0) + 1e-5)
xhat64 = (x64 - x64.mean(axis=0)) / s64
g64 = gamma64 * dout64
compact = (g64 - g64.mean(axis=0) - xhat64 * np.mean(g64 * xhat64, axis=0)) / s64
np.testing.assert_allclose(dx_paths, compact, rtol=1e-10, atol=1e-12 * np.abs(compact).max())

layer = BatchNorm1d(3).astype(np.float64)
layer.weight.data[...] = gamma64
layer.forward(x64)
np.testing.assert_allclose(dx_paths, layer.backward(dout64), rtol=1e-10, atol=1e-12 * np.abs(compact).max())

x_probe = x64.copy()
numeric = numerical_gradient(lambda: np.sum(dout64 * layer.forward(x_probe)), x_probe, eps=1e-6)
print(f"largest difference from finite differences: {np.abs(dx_paths - numeric).max():.1e} "
      f"(largest gradient entry {np.abs(dx_paths).max():.2f})")
np.testing.assert_allclose(dx_paths, numeric, rtol=1e-6, atol=1e-8 * np.abs(dx_paths).max())

# %% [markdown]
# What each path does, for one feature of the batch: the path through $\mu$ subtracts the direct
# term's mean, the path through $\sigma^2$ its part along $\hat x$. So the gradient of a feature sums to 0
# over the batch (adding the same number to all $x_i$ changes no $\hat x_i$) and is, up to the
# $\epsilon$, perpendicular to $\hat x$ (stretching the batch about its mean changes no $\hat x_i$ either):
# batch norm's backward throws away exactly the two directions its forward ignores.

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(7, 3.2))
examples = np.arange(len(x64))
for k, (name, part) in enumerate(zip(("directly", "through σ²", "through μ"), paths)):
    ax.bar(examples + 0.2 * (k - 1.5), part[:, 0], 0.2, label=name)
ax.bar(examples + 0.3, dx_paths[:, 0], 0.2, color="k", label="sum: dL/dx")
ax.axhline(0, color="k", lw=0.6)
ax.set_xlabel("example i of the batch (feature 0)"), ax.set_ylabel(r"contribution to $\partial L/\partial x_i$")
ax.legend(fontsize=8, ncol=4)
fig.tight_layout()
fig

# %%
np.testing.assert_allclose(paths[2], -paths[0].mean(axis=0) * np.ones((8, 1)), rtol=1e-12)  # mu: minus the mean
np.testing.assert_allclose(dx_paths.sum(axis=0), 0, atol=1e-12 * np.abs(dx_paths).max())    # sums to 0
along_xhat = np.sum(dx_paths * xhat64, axis=0)
eps_factor = 1e-5 / (x64.var(axis=0) + 1e-5)    # what is left of the direction along xhat: eps / (var + eps)
np.testing.assert_allclose(along_xhat, eps_factor * np.sum(g64 * xhat64, axis=0) / s64, rtol=1e-6)
print(f"sum over the batch: {np.abs(dx_paths.sum(axis=0)).max():.0e}; along xhat: {np.round(along_xhat, 8)}")

# %% [markdown]
# In a net, batch norm goes after the weight layer and before the non-linearity (Khan). Its main
# effect is on the *training*: it is much faster. As a regulariser its effect depends on the
# problem; measure rather than assume:

# %%
bn_net = regularization_mlp(batchnorm=True)
bn_hist = fit(bn_net)
bn_train, bn_val = losses(bn_net)
print(f"training loss after 5 epochs: {bn_hist.train_loss[4]:.3f} with batch norm, {base.train_loss[4]:.3f} without")
print(f"batch norm: training loss {bn_train:.3f}, validation loss {bn_val:.3f}, gap {bn_val - bn_train:.3f} "
      f"(without: {base_val - base_train:.3f}); best validation loss {bn_hist.val_loss.min():.3f} at epoch "
      f"{bn_hist.val_loss.argmin() + 1} (without: {base.val_loss.min():.3f} at {base.val_loss.argmin() + 1})")
assert bn_hist.train_loss[4] < 0.75 * base.train_loss[4], "batch norm fits faster"
assert bn_val - bn_train > 0.8 * (base_val - base_train), "...but the gap stays as wide"

# %% [markdown]
# Here batch norm alone does **not** shrink the gap: it fits the 500 images faster and then
# over-fits them just as well. (It usually reaches its best validation loss several epochs sooner, but
# not with every seed.) Its regularising effect, the noise of using a different batch's
# statistics at every step, is small next to dropout's. Khan notes the other side of the coin: nets
# that use batch norm throughout often need no dropout.
#
# ### Does batch norm work by reducing "internal covariate shift"? A measurement
#
# Khan explains *why* batch norm speeds training up: every update of the weights changes the
# distribution of the inputs of all later layers, so each layer chases a moving target ("internal
# covariate shift", Ioffe and Szegedy's term; Khan writes "covariance"); batch norm pins the mean and variance of every feature and so keeps the target
# still. That is two claims: (a) batch norm reduces the change, (b) that is why it trains faster. Both
# can be measured. For (b) we need a net whose layer inputs move on purpose and that is otherwise like
# the batch-norm one: after every batch norm a layer multiplies each feature by a random number in
# $[0.5, 1.5]$ and adds a random $\mathcal N(0, 0.5^2)$ shift, both redrawn at every training step
# (Santurkar et al., "How does batch normalization help optimization?", 2018, ran this experiment on
# larger nets).

# %%
class Shake(Module):
    """Training mode: y = x * a + b with a ~ U(0.5, 1.5), b ~ N(0, 0.5^2) per feature, new at every call.
    Evaluation mode: the identity. x (N, C)."""

    def __init__(self, num_features, rng=None):
        self.num_features, self.rng = num_features, as_generator(rng)

    def forward(self, x):
        if not self.training:
            return x
        self.a = self.rng.uniform(0.5, 1.5, self.num_features).astype(x.dtype)
        return x * self.a + self.rng.normal(0.0, 0.5, self.num_features).astype(x.dtype)

    def backward(self, dout):
        return dout * self.a if self.training else dout


# %% [markdown]
# The test bed is deeper than the lesson's net: four hidden layers of 64 units on the small
# 14 × 14 task of lesson 06 (`small_fashion_mnist`, 2,000 training images), in four versions: plain
# with cnnlab's default initialisation (PyTorch's), plain with He initialisation (lesson 08), with
# batch norm, and with batch norm + `Shake`. After every training step a fixed probe of 250
# validation images goes through the net (in training mode, as the layers see data while training),
# and we keep each unit's mean and standard deviation over the probe at the inputs of layer 3 and of
# the output layer. The **shift** of a step is how far these (mean, std) pairs moved since the step
# before, averaged over the units, relative to the units' mean std.

# %%
from cnnlab import Sequential
from cnnlab.data.small import small_fashion_mnist
from cnnlab.hooks import recording
from cnnlab.init import apply
from cnnlab.layers import ReLU

X14, y14, X14_val, _ = small_fashion_mnist(2000, 500, seed=0)
probe = X14_val[:250]


def deep_mlp(kind, seed):
    """196 -> 4 x (Linear(64) [-> BatchNorm1d [-> Shake]] -> ReLU) -> Linear(10); kind: plain, he, bn, shaken."""
    layers, width = [], 196
    for depth in range(4):
        layers.append(Linear(width, 64, rng=100 * seed + depth)); width = 64
        if kind in ("bn", "shaken"):
            layers.append(BatchNorm1d(64))
        if kind == "shaken":
            layers.append(Shake(64, rng=100 * seed + 50 + depth))
        layers.append(ReLU())
    net = Sequential(layers + [Linear(64, 10, rng=100 * seed + 99)])
    if kind == "he":
        apply(net, "he_normal", rng=seed)
    return net


def train_watched(kind, seed, epochs=8):
    """Train with SGD (lr 0.05, momentum 0.9, batches of 50); returns (history, per-step probe statistics)."""
    net = deep_mlp(kind, seed)
    watched = [m for m in net if isinstance(m, ReLU)][1::2]          # their outputs: inputs of layer 3, output layer
    stats = []

    def watch(trainer, info):
        with recording(watched) as (outputs, _):
            net(probe)
        stats.append([(outputs[k].mean(axis=0), outputs[k].std(axis=0)) for k in range(2)])

    trainer = Trainer(net, loss_fn, SGD(net.parameters(), lr=0.05, momentum=0.9), X14, y14, batch_size=50,
                      rng=seed, callbacks=[watch])
    return trainer.fit(epochs, progress=False), stats


def shift(stats, k):
    """Per step: mean over units of the distance the unit's (mean, std) moved, over the units' mean std."""
    means, stds = (np.array([step[k][i] for step in stats]) for i in (0, 1))
    return np.mean(np.hypot(np.diff(means, axis=0), np.diff(stds, axis=0)), axis=1) / stds[:-1].mean(axis=1)


# %%
kinds = ("plain", "he", "bn", "shaken")
watched_runs = {(kind, seed): train_watched(kind, seed) for seed in range(3) for kind in kinds}
step_loss = {key: np.array([s["loss"] for s in h.steps]) for key, (h, _) in watched_runs.items()}
ics = {(*key, k): float(shift(stats, k).mean()) for key, (_, stats) in watched_runs.items() for k in (0, 1)}
print(f"{'':>7} {'shift, layer 3':>15} {'shift, output':>14} {'loss, steps 1-160':>18} {'loss, last 40':>14}")
for key in watched_runs:
    print(f"{key[0]:>7} {ics[(*key, 0)]:15.4f} {ics[(*key, 1)]:14.4f} {step_loss[key][:160].mean():18.3f} "
          f"{step_loss[key][-40:].mean():14.3f}  (seed {key[1]})")

# %%
with plt.ioff():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
colors = {"plain": "0.5", "he": "C2", "bn": "C0", "shaken": "C3"}
names = {"plain": "plain", "he": "plain, He init", "bn": "batch norm", "shaken": "batch norm + Shake"}
for (kind, seed), (history, stats) in watched_runs.items():
    label = names[kind] if seed == 0 else None
    axes[0].semilogy(shift(stats, 1), color=colors[kind], lw=0.6, alpha=0.6, label=label)
    smooth = np.convolve(step_loss[kind, seed], np.ones(10) / 10, mode="valid")
    axes[1].plot(np.arange(10, len(step_loss[kind, seed]) + 1), smooth, color=colors[kind], lw=1, label=label)
axes[0].set_ylabel("shift of the output layer's input"), axes[1].set_ylabel("training loss (mean of 10 steps)")
for ax in axes:
    ax.set_xlabel("step"), ax.legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# Claim (a) holds as Khan states it: with batch norm the inputs of the deeper layers moved about ten
# times less per step than in either plain net. Claim (b) does not survive the shaken net: its layer
# inputs moved five to ten times *more* than the plain nets', at every step, and yet over the first four
# epochs it trained as fast as the plain net with He initialisation (later a little slower) and far
# faster than the one with the default initialisation.
#
# What the default-initialised plain net lacks is scale: its signals shrink from layer to layer
# (lesson 08), so its loss sits near $\ln 10 \approx 2.3$ for the first fifty steps. Batch norm, shaken
# or not, gives every layer's features unit variance, as a good initialisation does (Khan names this
# too: no vanishing gradients, no saturation). Plain batch norm is still the fastest of the four; whether
# the shaken net loses against it by the moving inputs or simply by the noise, this experiment cannot
# tell. Santurkar et al., who ran the shaking experiment on larger nets, trace batch norm's speed to a
# smoother loss surface (gradients that change less from point to point, so larger steps are safe), not
# to steadier inputs.

# %%
import itertools

for seed in range(3):
    for k, plain in itertools.product((0, 1), ("plain", "he")):
        assert ics["bn", seed, k] < 0.4 * ics[plain, seed, k], "(a) batch norm steadies the layer inputs"
        assert ics["shaken", seed, k] > 3 * ics[plain, seed, k], "the shaken net's inputs move the most"
    early = {kind: step_loss[kind, seed][:160].mean() for kind in kinds}
    assert early["shaken"] < 0.85 * early["plain"], "(b) fails: far more shift, yet far faster than plain"
    assert abs(early["shaken"] - early["he"]) < 0.1, "...and as fast as plain with He initialisation"
    assert early["bn"] < min(early["shaken"], early["he"]) - 0.05, "plain batch norm: the fastest"

# %% [markdown]
# ## Data augmentation
#
# If there are too few images, make more (Khan §5.2.1): shift, crop, flip, rotate, scale or shear an
# image, or change its contrast, and it still shows the same piece of clothing. `cnnlab.augment`
# has each as a seeded transform on a batch `(N, C, H, W)`; labels are never touched.

# %%
samples = X_train[[np.flatnonzero(y_train == k)[0] for k in (0, 1, 7, 9, 8, 4)]]
gallery = {
    "original": lambda im, rng: im,
    "crop, padding 4": RandomCrop(28, padding=4),
    "horizontal flip": RandomHorizontalFlip(p=1.0),
    "rotate ±25°": RandomAffine(degrees=25),
    "scale 0.7–1.2": RandomAffine(degrees=0, scale=(0.7, 1.2)),
    "shear ±25°": RandomAffine(degrees=0, shear=25),
    "translate 15%": RandomAffine(degrees=0, translate=(0.15, 0.15)),
    "contrast ±60%": ContrastJitter(0.6),
}
with plt.ioff():
    fig, axes = plt.subplots(len(samples), len(gallery), figsize=(9, 7))
for col, (name, transform) in enumerate(gallery.items()):
    shown = transform(samples, np.random.default_rng(col))
    for row in range(len(samples)):
        axes[row, col].imshow(shown[row, 0], cmap="gray_r", vmin=0, vmax=1)
        axes[row, col].set_xticks([]), axes[row, col].set_yticks([])
    axes[0, col].set_title(name, fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# Some facts that should hold for any implementation, checked:

# %%
flip = RandomHorizontalFlip(p=1.0)
assert np.array_equal(flip(flip(samples, 0), 1), samples), "flipping twice is the identity"
turned = affine(samples, 90.0)
np.testing.assert_allclose(turned[:, :, 1:-1, 1:-1], np.rot90(samples, 1, axes=(2, 3))[:, :, 1:-1, 1:-1], atol=1e-5)
crop = RandomCrop(28, padding=4)
sample_labels = np.array([0, 1, 7, 9, 8, 4])
images, labels = crop.apply_batch(samples, sample_labels, rng=0)
assert images.shape == samples.shape and labels is sample_labels, "same shape, labels untouched"
jittered = ContrastJitter(0.6)(samples, 0)
np.testing.assert_allclose(jittered.mean(axis=(1, 2, 3)), samples.mean(axis=(1, 2, 3)), rtol=1e-5)  # each mean kept

# %% [markdown]
# Training with random 2-pixel shifts and horizontal flips: every epoch now shows the net new
# versions of its 500 images (`Trainer(augment=...)` transforms every mini-batch).

# %%
aug_net = regularization_mlp()
aug_hist = fit(aug_net, augment=Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()]))
aug_train, aug_val = losses(aug_net)
print(f"augmentation: training loss {aug_train:.3f}, validation loss {aug_val:.3f}, gap {aug_val - aug_train:.3f} "
      f"(without: {base_val - base_train:.3f})")
assert aug_val - aug_train < 0.6 * (base_val - base_train), "more varied data, smaller gap"
assert np.mean(aug_hist.val_loss[-10:]) < np.mean(base.val_loss[-10:]), "and a lower validation curve at the end"

# %% [markdown]
# ### Colour jitter along the principal colours (PCA)
#
# Khan (§5.2.1) also changes an image's colours: find the principal colour directions of the training
# pixels with PCA, and move all the colours of an image by one random amount along them (Krizhevsky et
# al.'s colour augmentation). Our images are grey, and a grey pixel has R = G = B: as RGB 3-vectors all
# pixels lie on one line, the grey diagonal, so PCA finds a single direction (brightness) and nothing
# else to vary. `rgb_pca` returns the eigenvalues and eigenvectors of the pixels' 3 × 3 colour covariance:

# %%
from cnnlab.augment import PCAColorJitter, rgb_pca

grey_values, grey_vectors = rgb_pca(np.repeat(X_train[:64], 3, axis=1))  # grey copied into R, G and B
print(f"grey images: eigenvalues {np.round(grey_values, 4)}, first axis {np.round(grey_vectors[:, 0], 3)}")
assert grey_values[1] < 1e-9 * grey_values[0], "one direction only"
np.testing.assert_allclose(np.abs(grey_vectors[:, 0]), 1 / np.sqrt(3), rtol=1e-6)  # the grey diagonal

# %% [markdown]
# So we colour a small batch ourselves: 64 training images, each garment dyed in its own random
# earthy colour on paper of a slightly varying off-white, pixel $=$ paper$\,\cdot(1-x)$ $+$
# dye$\,\cdot\,x$ for a grey value $x$. The method then has three directions to work with.

# %%
dye_gen = np.random.default_rng(7)
dye = np.clip(dye_gen.normal([0.55, 0.35, 0.25], 0.15, size=(64, 3)), 0, 1)      # one colour per garment
paper = np.clip(dye_gen.normal([0.95, 0.92, 0.85], 0.03, size=(64, 3)), 0, 1)    # and per background
grey = X_train[:64]
rgb = (paper[:, :, None, None] * (1 - grey) + dye[:, :, None, None] * grey).astype(np.float32)
eigvals, eigvecs = rgb_pca(rgb)
print(f"RGB batch {rgb.shape}: eigenvalues {np.round(eigvals, 4)}")
print("principal colour directions (columns p1, p2, p3):\n", np.round(eigvecs, 2))

# %% [markdown]
# The first axis $p_1$ is nearly the grey diagonal again: most of the colour variation in this batch
# (as in photographs) is light against dark, here paper against garment. The other two are colour
# proper. With the covariance written as $\sum_i \lambda_i p_i p_i^\top$, the jitter draws
# $\alpha_i \sim \mathcal N(0, \text{std}^2)$ once per image and adds the same vector
#
# $$\delta = [p_1\; p_2\; p_3]\,[\alpha_1\lambda_1,\; \alpha_2\lambda_2,\; \alpha_3\lambda_3]^\top$$
#
# to every pixel of that image. The data's spread along $p_i$ is $\sqrt{\lambda_i}$, the shift's
# standard deviation is $\text{std}\cdot\lambda_i$: $\lambda_i$ enters once, not as its square root, so
# the shift is even more concentrated on the first axis than the colours are (here 20 : 1 against
# 4.5 : 1). And $\lambda_i$ is a variance, so the size of the shift depends on the pixels' scale: for
# pixels in $[0, 1]$ and the paper's std $= 0.1$, $\delta$ is about 0.01, too small to see. The
# pictures use std $= 1$.

# %%
jitter = PCAColorJitter(std=1.0, data=rgb)             # the directions of this batch
shifts = jitter(np.zeros((20_000, 3, 1, 1), np.float32), rng=1)[:, :, 0, 0]  # 20,000 draws of delta
pixels = rgb.transpose(0, 2, 3, 1).reshape(-1, 3)      # every pixel an RGB 3-vector
shown = pixels[np.random.default_rng(8).choice(len(pixels), 4000, replace=False)]
with plt.ioff():
    fig, axes = plt.subplots(1, 2, figsize=(8, 3), sharex=True, sharey=True)
coords = (shown - pixels.mean(0)) @ eigvecs            # coordinates along p1, p2, p3
axes[0].scatter(coords[:, 0], coords[:, 1], c=shown, s=4)
axes[0].set_title("the batch's pixels, coloured as they are", fontsize=9)
axes[1].scatter(*(shifts[:2000] @ eigvecs)[:, :2].T, s=4, color="0.3")
axes[1].set_title(r"2,000 draws of the shift $\delta$ (std = 1)", fontsize=9)
for ax in axes:
    ax.set_xlabel("along $p_1$"), ax.set_aspect("equal")
axes[0].set_ylabel("along $p_2$")
fig.tight_layout()
fig

# %%
with plt.ioff():
    fig, axes = plt.subplots(4, 8, figsize=(8, 4.4))
for row in range(4):
    shown = rgb[:8] if row == 0 else jitter(rgb[:8], rng=row)
    for col in range(8):
        axes[row, col].imshow(np.clip(shown[col].transpose(1, 2, 0), 0, 1))
        axes[row, col].set_xticks([]), axes[row, col].set_yticks([])
    axes[row, 0].set_ylabel("original" if row == 0 else f"draw {row}", fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# What the method guarantees, checked: the shift is one colour per image, so everything inside an
# image (edges, texture, every difference between two of its pixels) is unchanged; and over many
# draws the shift's coordinates along $p_1, p_2, p_3$ are independent, with mean 0 and standard
# deviations std$\cdot\lambda_i$ (20,000 draws: a standard deviation is then known to about 0.5%, a
# correlation to about 0.007; the margins are five times that).

# %%
change = jitter(rgb, rng=5) - rgb
assert np.ptp(change, axis=(2, 3)).max() < 1e-6, "the same shift at every pixel of an image"
along = shifts @ eigvecs                                # coordinates of delta along p1, p2, p3
np.testing.assert_allclose(along.std(axis=0), 1.0 * eigvals, rtol=0.025)
assert np.all(np.abs(along.mean(axis=0)) < 4 * eigvals / np.sqrt(len(along))), "mean 0"
correlations = np.corrcoef(along.T)[np.triu_indices(3, 1)]
assert np.all(np.abs(correlations) < 0.035), "independent along the three axes"
print(f"shift std along p1, p2, p3: {np.round(along.std(axis=0), 4)} (std·λ: {np.round(eigvals, 4)}); "
      f"correlations {np.round(correlations, 3)}")

# %% [markdown]
# ### Synthetic data
#
# Khan's last kind of augmentation is synthetic data used alongside the real: images from a rendering
# engine, which can make as many as one wants. We have no renderer for clothes; our stand-in is about
# the simplest generative model there is. For each class, a Gaussian in pixel space: the class's mean
# image plus random multiples of its 20 principal components (each with the spread it has in the
# data), clipped to $[0, 1]$.
#
# A renderer's knowledge of what a shoe looks like does not come from our 500 training images. So we
# fit the model twice: to the 500 training images themselves (**own**), and to the 6,500 other images of
# the shipped subset that neither the training nor the validation set uses (**other**: a model that
# knows more than our training set, as a renderer would).

# %%
def gaussian_images(X, y, n_per_class, k=20, rng=None):
    """Per class c: mean image + sum_i z_i s_i v_i, z_i ~ N(0, 1), v_i the class's k principal components
    and s_i their standard deviations. Returns (images (10 * n_per_class, 1, 28, 28) float32, labels)."""
    gen = as_generator(rng)
    images, labels = [], []
    for c in range(10):
        A = X[y == c].reshape(-1, 784).astype(np.float64)
        _, s, Vt = np.linalg.svd(A - A.mean(0), full_matrices=False)
        z = gen.standard_normal((n_per_class, k)) * s[:k] / np.sqrt(len(A) - 1)
        images.append(np.clip(A.mean(0) + z @ Vt[:k], 0, 1)), labels.append(np.full(n_per_class, c))
    return np.concatenate(images).reshape(-1, 1, 28, 28).astype(np.float32), np.concatenate(labels)


X_rest, y_rest = X_all[order[1500:]], y_all[order[1500:]]       # in neither the training nor the validation set
own = gaussian_images(X_train, y_train, 200, rng=20)
other = gaussian_images(X_rest, y_rest, 200, rng=21)
assert len(np.intersect1d(order[1500:], order[:1500])) == 0 and own[0].shape == other[0].shape == (2000, 1, 28, 28)

# %%
with plt.ioff():
    fig, axes = plt.subplots(3, 10, figsize=(9, 3))
for row, (name, (X, y)) in enumerate((("real", (X_train, y_train)), ("own", own), ("other", other))):
    for c in range(10):
        axes[row, c].imshow(X[np.flatnonzero(y == c)[0], 0], cmap="gray_r", vmin=0, vmax=1)
        axes[row, c].set_xticks([]), axes[row, c].set_yticks([])
    axes[row, 0].set_ylabel(name, fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# Ghostly overlays of several garments: no one would mistake them for photographs (the own model's
# are sharper: 20 components of some 50 images per class come close to those very images). `MixSynthetic(X_syn,
# y_syn, fraction)` replaces that fraction of every mini-batch by synthetic images, with their labels,
# so a batch stays 50 images. Because it changes labels it does not go in the Trainer's `augment=`
# (which sees images only) but wraps the Trainer's loader with `augmented_loader`:

# %%
from cnnlab.augment import MixSynthetic, augmented_loader

mix = MixSynthetic(*other, fraction=0.5)
xb, yb = mix(X_train[:50], y_train[:50], rng=0)
kept = np.setdiff1d(np.arange(50), mix.last_replaced)
assert len(mix.last_replaced) == 25 and np.array_equal(xb[kept], X_train[:50][kept]), "half replaced, half kept"


def fit_mixed(synthetic, seed):
    """40 epochs of the lesson's training, half of every batch synthetic (synthetic=None: all real)."""
    net = regularization_mlp(seed=seed)
    trainer = Trainer(net, loss_fn, SGD(net.parameters(), lr=0.05, momentum=0.9), X_train, y_train,
                      batch_size=50, X_val=X_val, y_val=y_val, rng=seed + 1)
    if synthetic is not None:
        trainer.loader = augmented_loader(trainer.loader, MixSynthetic(*synthetic, fraction=0.5), rng=seed + 50)
    return trainer.fit(40, progress=False)


# %% [markdown]
# Four seeds (starting weights, batch order, which images are replaced), each trained three ways:

# %%
mixed = {(name, seed): fit_mixed(synthetic, seed) for seed in range(4)
         for name, synthetic in (("none", None), ("own", own), ("other", other))}
late_acc = {key: float(np.mean(h.val_accuracy[-10:])) for key, h in mixed.items()}  # last 10 epochs
best_loss = {key: float(h.val_loss.min()) for key, h in mixed.items()}
for name in ("none", "own", "other"):
    print(f"{name:>5}: validation accuracy (last 10 epochs) "
          + ", ".join(f"{late_acc[name, s]:.1%}" for s in range(4))
          + "; best validation loss " + ", ".join(f"{best_loss[name, s]:.3f}" for s in range(4)))

# %%
with plt.ioff():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.3))
for name, color in (("none", "0.5"), ("own", "C0"), ("other", "C3")):
    for seed in range(4):
        label = name if seed == 0 else None
        axes[0].plot(epochs, mixed[name, seed].val_loss, color=color, lw=1, alpha=0.7, label=label)
        axes[1].plot(epochs, mixed[name, seed].val_accuracy, color=color, lw=1, alpha=0.7, label=label)
axes[0].set_ylabel("validation loss"), axes[1].set_ylabel("validation accuracy"), axes[1].set_ylim(0.6, 0.82)
for ax in axes:
    ax.set_xlabel("epoch"), ax.legend(fontsize=8)
fig.suptitle("half of every batch synthetic (four seeds each)", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# Synthetic images from a model of *other* images lowered the best validation loss by about 0.1 in every
# seed, and raised the validation accuracy by about 2 points on average (in one seed of four hardly at
# all). Images from a model of the training set itself did not help: on average the accuracy was a
# point lower and the best validation loss no better. They add variation but no knowledge that the 500
# images did not already hold, and they take half of every batch from the real images. Synthetic data
# is worth what its generator knows beyond the training set.

# %%
gain_other = [late_acc["other", s] - late_acc["none", s] for s in range(4)]
gain_own = [late_acc["own", s] - late_acc["none", s] for s in range(4)]
print(f"accuracy gain over the real-only run: other {np.round(gain_other, 3)}, own {np.round(gain_own, 3)}")
assert all(best_loss["other", s] < best_loss["none", s] - 0.04 for s in range(4)), "other: lower in every seed"
assert np.mean(gain_other) > 0.008, "other: more accurate on average"
assert np.mean(gain_own) < 0.005, "own: no gain on average"
assert np.mean([best_loss["own", s] - best_loss["none", s] for s in range(4)]) > -0.02, "own: no lower loss"

# %% [markdown]
# ## Ensembles
#
# Nets trained from different random starts (or on different data, or with different settings) make
# partly different mistakes. Khan (§5.2.5) combines several of them by averaging their predicted
# class probabilities, $P(x) = \frac1M\sum_m P_m(x)$, or by a majority vote. Five nets from five
# seeds, each trained for 15 epochs on its own batch order:

# %%
members = [regularization_mlp(seed=10 * k) for k in range(5)]
for k, member in enumerate(members):
    fit(member, epochs=15, shuffle_seed=100 + k)
committee = Ensemble(members)
member_scores = [evaluate(m, loss_fn, X_val, y_val) for m in members]
P = committee.predict_proba(X_val)
ensemble_loss = float(-np.log(P[np.arange(len(y_val)), y_val]).mean())
ensemble_acc = float(np.mean(committee.predict(X_val) == y_val))
print("members: validation accuracy", ", ".join(f"{acc:.1%}" for _, acc in member_scores),
      f"(mean {np.mean([a for _, a in member_scores]):.1%}); ensemble {ensemble_acc:.1%}")
print(f"validation loss: members' mean {np.mean([l for l, _ in member_scores]):.3f}, ensemble {ensemble_loss:.3f}")

# %% [markdown]
# The averaged probabilities can never have a larger cross-entropy than the members have on average:
# $-\log$ is convex, so $-\log\frac1M\sum_m P_m \le \frac1M\sum_m -\log P_m$ for every image (Jensen's
# inequality). Accuracy has no such guarantee, but it usually improves too:

# %%
assert ensemble_loss <= np.mean([l for l, _ in member_scores]), "Jensen: always"
assert ensemble_acc >= np.mean([a for _, a in member_scores]), "at least as good as the average member"

# %% [markdown]
# ## Early stopping
#
# The simplest remedy of all watches the validation loss and stops when it has not improved for a
# while: training ends at the bottom of the validation error, not of the training error (Tomasi §2;
# Khan §5.2.10). The weights of the best epoch are kept aside and put back at the end.
# `EarlyStopping(patience=5)` stops after 5 epochs without a new best:

# %%
es_net = regularization_mlp()
stopper = EarlyStopping(patience=5, restore_best=True)
es_hist = fit(es_net, epochs=60, callbacks=[stopper])
es_train, es_val = losses(es_net)
print(es_hist.message)
print(f"stopped after {len(es_hist.epochs)} of 60 epochs; restored net: training loss {es_train:.3f}, "
      f"validation loss {es_val:.3f}, gap {es_val - es_train:.3f}")

# %%
assert es_hist.status == "early_stopping" and len(es_hist.epochs) == stopper.best_epoch + 5
assert stopper.best == es_hist.val_loss.min()
assert np.isclose(es_val, stopper.best, rtol=1e-6), "the restored weights are those of the best epoch"
assert es_val - es_train < base_val - base_train

# %% [markdown]
# ## Smaller architectures
#
# Veta's list of remedies starts with the bluntest one: a smaller network, with fewer weights to
# memorise the training set with. Our net has 128 hidden units, about 200 weights per training image.
# Train it with 4 to 256 hidden units (3,190 to 203,530 weights), three seeds each, otherwise exactly
# as the first run, and compare training and validation accuracy (means over the last ten epochs; the
# training accuracy as the training curve measures it, over each epoch's mini-batches):

# %%
widths = [4, 6, 8, 16, 32, 64, 128, 256]
by_width = {(w, seed): fit(regularization_mlp(hidden=w, seed=seed), shuffle_seed=seed + 1)
            for seed in range(3) for w in widths}
train_acc = {key: float(np.mean(h.train_accuracy[-10:])) for key, h in by_width.items()}
val_acc = {key: float(np.mean(h.val_accuracy[-10:])) for key, h in by_width.items()}
acc_gap = {key: train_acc[key] - val_acc[key] for key in by_width}
print(f"{'hidden':>6} {'weights':>8} {'training':>9} {'validation':>11} {'gap':>6}   (mean of 3 seeds)")
for w in widths:
    mean = lambda d: np.mean([d[w, s] for s in range(3)])
    print(f"{w:6d} {784 * w + w + 10 * w + 10:8,d} {mean(train_acc):9.1%} {mean(val_acc):11.1%} {mean(acc_gap):6.3f}")

# %%
with plt.ioff():
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
for seed in range(3):
    first = seed == 0
    axes[0].semilogx(widths, [train_acc[w, seed] for w in widths], "o-", color="C0", ms=3, lw=1,
                     base=2, label="training" if first else None)
    axes[0].semilogx(widths, [val_acc[w, seed] for w in widths], "o-", color="C1", ms=3, lw=1,
                     base=2, label="validation" if first else None)
    axes[1].semilogx(widths, [acc_gap[w, seed] for w in widths], "o-", color="C0", ms=3, lw=1, base=2)
axes[0].set_ylabel("accuracy"), axes[0].legend(fontsize=8)
axes[1].set_ylabel("gap: training − validation accuracy"), axes[1].set_ylim(0, 0.25)
for ax in axes:
    ax.set_xlabel("hidden units"), ax.set_xticks(widths, [str(w) for w in widths])
fig.tight_layout()
fig

# %% [markdown]
# From 8 hidden units on, the net already learns the 500 images (training accuracy above 90%), and
# the gap stays at about 0.2 whatever the width: more weights did not widen it, nor lower the
# validation accuracy, up to 256 units. The gap shrinks only at 4 to 6 units, and the validation
# accuracy shrinks with it: such a net is too small to fit either set well. So on this problem a
# smaller architecture regularises only by under-fitting; the methods above narrowed the gap while
# keeping, or raising, the validation accuracy.

# %%
for seed in range(3):
    wide = [w for w in widths if w >= 16]
    assert acc_gap[4, seed] < 0.7 * min(acc_gap[w, seed] for w in wide), "a much smaller net: a smaller gap"
    assert val_acc[4, seed] < min(val_acc[w, seed] for w in wide) - 0.1, "...and a worse validation accuracy"
    assert np.ptp([acc_gap[w, seed] for w in wide]) < 0.06, "from 16 units on, the gap hardly changes"
    assert val_acc[256, seed] > val_acc[32, seed] - 0.03, "more width did not hurt"

# %% [markdown]
# ## All of them side by side
#
# Every run in this chart started from the same weights and saw the same mini-batches (augmentation also
# changes the order: the Trainer seeds its augmentation generator from the shuffling one). The gap
# of the final weights and their validation loss:

# %%
results = {"none": (base_train, base_val), "L2": (l2_train, l2_val), "L1": (l1_train, l1_val),
           "max-norm": (mn_train, mn_val), "dropout": (do_train, do_val), "drop-connect": (dc_train, dc_val),
           "batch norm": (bn_train, bn_val), "augmentation": (aug_train, aug_val),
           "early stopping": (es_train, es_val)}
with plt.ioff():
    fig, ax = plt.subplots(figsize=(8, 3.4))
names = list(results)
xs = np.arange(len(names))
ax.bar(xs - 0.2, [results[n][1] for n in names], 0.4, label="validation loss", color="C1")
ax.bar(xs + 0.2, [results[n][1] - results[n][0] for n in names], 0.4, label="gap (validation − training)", color="C0")
ax.set_xticks(xs, names, rotation=30, ha="right", fontsize=8)
ax.set_ylabel("cross-entropy loss"), ax.legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# Don't read these bars as a ranking: every method has a strength ($\lambda$, $c$, $p$, the patience,
# how hard to augment) that was set once and not tuned, and on a different problem the order changes.
# What they do show is that each method works in its own way, and that they can be combined.
#
# ## The regularisation explorer
#
# Combine them yourself. Every knob retrains the small net from the same starting weights and in the
# same batch order (each random part has its own generator), and the grey curves are the run without
# any regularisation, so what changes is the knob's doing. The left panel shows the gap, the middle
# one the magnitudes of all weights (L1 piles them up to the left of the dotted line at $10^{-2}$), and
# the right one the share of weights below $10^{-2}$ during training. Things to try: dropout 0.5 with
# and without augmentation; L1 at its largest; learning rate 1 with L2 at its largest (a run that
# diverges), then the same with max-norm instead; early stopping on a run that over-fits.

# %%
explorer = widgets.regularization_explorer()
explorer

# %% [markdown]
# Driving it from code, as CI does: switch dropout on and check that the run reacted.

# %%
explorer.wait()
draws = explorer.view.draws
explorer.p_keep.value = 0.5
run = explorer.wait()
assert run.settings.p_keep == 0.5 and run.status == "completed"
assert run.gap < explorer.reference.gap, "dropout narrows the gap in the explorer too"
assert explorer.view.draws > draws, "the figure was redrawn"

# %% [markdown]
# ## What to remember
#
# * Over-fitting shows as a training loss that keeps falling while the validation loss turns up; the
#   validation set is what tells you (Veta's train / validation / test split).
# * L2 = weight decay: gradient $\lambda\theta$, identical to `SGD(weight_decay=λ)` when biases are
#   included. L1: gradient $\lambda\,\mathrm{sign}(\theta)$, sparse weights. Elastic net: both.
#   Max-norm: a projection after each step, which also tames large learning rates.
# * Dropout: keep each unit with probability $p$; classic scales by $p$ at test time, inverted by
#   $1/p$ at training time, and both make the test output the expected training output.
#   Drop-connect does the same to single weights. For the whole net, weight scaling gives the average
#   logits exactly; averaging many thinned nets reaches the same accuracy with softer probabilities.
# * Batch norm standardises features per mini-batch and keeps running statistics for test time; it
#   speeds up training more than it regularises here. It does steady each layer's inputs ("internal
#   covariate shift"), but a net whose inputs are shaken at every step trained as fast as a
#   well-initialised plain net: the steadiness is not why batch norm is fast. Its backward: three
#   paths, through $\hat x$, $\mu$ and $\sigma^2$.
# * Augmentation, ensembles and early stopping work on the data, the decision and the training time.
#   PCA colour jitter moves a whole image's colour along its data's principal colours; synthetic data
#   is worth what its generator knows beyond the training set.
# * A smaller net narrows the gap only once it is too small to fit the training set, and then it is
#   worse on the validation set too.
#
# Lesson 10 trains a real CNN on Fashion-MNIST with what the course has built so far.
