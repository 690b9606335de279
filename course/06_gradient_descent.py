# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Gradient descent: batch, online and mini-batch
#
# Lesson 01 defined the training error $E(\mathbf{w})$ and lesson 02 computed its gradient by
# back-propagation. This lesson is about what to *do* with that gradient. The idea fits on one line,
# take a small step against the gradient and repeat, but every word in it hides a choice:
#
# * **which gradient**: of the error on all training examples (batch), on one example (online), or on
#   a small random batch of them (mini-batch);
# * **how small a step**: the learning rate, "of critical importance" in Tomasi's words: too small and
#   nothing happens, too large and the error zigzags or explodes;
# * **which direction**: the plain gradient, or a velocity that remembers earlier steps (momentum);
# * **when to stop**: when the steps stop making progress, or, for a network, when the error on
#   examples it does not train on stops falling (early stopping).
#
# We answer each with an experiment on a small network that trains in about a second.

# %%
# %matplotlib widget
import matplotlib.pyplot as plt
import numpy as np

import widgets
from cnnlab import Parameter, Sequential
from cnnlab.bench.threads import one_blas_thread
from cnnlab.data import DataLoader, downsample_flat, load_fashion_mnist, small_fashion_mnist
from cnnlab.layers import Linear
from cnnlab.losses import CrossEntropyLoss, MSELoss, one_hot
from cnnlab.models import tiny_mlp
from cnnlab.optim import SGD, MomentumSchedule, sutskever_momentum
from cnnlab.surfaces import QuadraticBowl, trajectory
from cnnlab.train import EarlyStopping, Trainer, evaluate, small_decrease, small_step
from widgets.training_run import TrainingRun

blas = one_blas_thread()  # small matrix products run faster on one core (see cnnlab.bench.threads)

# %% [markdown]
# ## The task
#
# To keep every run short, the images are shrunk: each 2 × 2 block of pixels is averaged, so a
# 28 × 28 image becomes 14 × 14 = 196 numbers. We take a fixed, class-balanced sample of the course's
# shipped Fashion-MNIST subset: 2,000 images to train on and 500 others for **validation** (Veta's
# split: the training part is what the optimizer sees, the validation part is what we judge it by,
# and the test part stays untouched until the very end). The network is a small multi-layer
# perceptron, Linear(196, 32) → ReLU → Linear(32, 10), trained with cross-entropy.

# %%
X_train, y_train, X_val, y_val = small_fashion_mnist(n_train=2000, n_val=500, seed=0)
data = (X_train, y_train, X_val, y_val)
N = len(X_train)
net = tiny_mlp(rng=0)
n_weights = sum(p.size for p in net.parameters())
print(f"training {X_train.shape}, validation {X_val.shape}; the network has {n_weights} weights")

# %%
assert X_train.shape == (2000, 196) and X_val.shape == (500, 196)
assert np.all(np.bincount(y_train) == 200) and np.all(np.bincount(y_val) == 50), "class-balanced"
assert n_weights == 196 * 32 + 32 + 32 * 10 + 10
X_full, y_full, _ = load_fashion_mnist("train", source="subset")
assert np.allclose(downsample_flat(X_full[:1])[0, 0], X_full[0, 0, :2, :2].mean()), "a 2 x 2 block average"

# %% [markdown]
# ## 1 · The training error is an average, and so is its gradient
#
# Tomasi's eq. (1) defines the training error as the mean of the per-example losses,
# $E(\mathbf{w}) = \frac{1}{N}\sum_{n=1}^{N} E_n(\mathbf{w})$. Differentiation is linear, so the gradient
# is the mean of the per-example gradients,
#
# $$\nabla E(\mathbf{w}) = \frac{1}{N}\sum_{n=1}^{N} \nabla E_n(\mathbf{w}),$$
#
# and **gradient descent** repeats the step (Khan's eqs. 5.15–5.16, with learning rate $\eta$; the box
# at the end of this section is about the index of the gradient)
#
# $$\mathbf{w}_{t+1} = \mathbf{w}_t - \eta\, \nabla E(\mathbf{w}_t).$$
#
# One forward and backward pass over all $N$ images with a *mean* loss computes $\nabla E$ in one go.
# Check it against the slow way, $N$ separate passes over one image each, averaged (in float64, so
# that only the arithmetic's rounding can differ):

# %%
def gradient(net, X, y):
    """dE/dw of the mean cross-entropy over (X, y), all parameters flattened into one vector."""
    loss_fn = CrossEntropyLoss()
    loss_fn.forward(net(X), y)
    net.backward(loss_fn.backward())
    return np.concatenate([p.grad.ravel() for p in net.parameters()])


net64 = tiny_mlp(rng=0).astype(np.float64)
X64 = X_train.astype(np.float64)
g_full = gradient(net64, X64, y_train)
per_example = np.stack([gradient(net64, X64[n:n + 1], y_train[n:n + 1]) for n in range(N)])
gap = np.abs(per_example.mean(axis=0) - g_full).max() / np.abs(g_full).max()
print(f"gradient: {g_full.size} entries; mean of the {N} per-example gradients differs by {gap:.1e} (relative)")
assert gap < 1e-12

# %% [markdown]
# > **The source says:** Khan's eqs. 5.15–5.16 are $\theta_t = \theta_{t-1} - \eta\,\delta_t$ with
# > $\delta_t = \nabla_\theta F(\theta_t)$: the gradient at the new point $\theta_t$, the one being computed.
# >
# > **We do:** the gradient at the current point, $\mathbf{w}_{t+1} = \mathbf{w}_t - \eta\,\nabla E(\mathbf{w}_t)$,
# > as `SGD` and every training loop of the course do.
# >
# > **Why:** taken literally, each step is an equation for $\theta_t$ (an *implicit* step), which a
# > network cannot solve: one forward and backward pass gives the gradient only at weights it already has.
#
# The two readings differ. On the bowl $F = \frac12(x^2 + 20y^2)$, whose gradient is
# $c \circ \theta$ with $c = (1, 20)$, the literal equation solves to $\theta_t = \theta_{t-1}/(1 + \eta c)$;
# one step with $\eta = 0.09$:

# %%
bowl_box, eta = QuadraticBowl(condition=20.0), 0.09
theta0, c = np.array(bowl_box.start), np.array([1.0, 20.0])
explicit = trajectory(bowl_box, lambda ps: SGD(ps, lr=eta), start=theta0, steps=1).points[1]
literal = theta0 / (1 + eta * c)
print(f"from {theta0}: explicit step (SGD) to {explicit}, literal eqs. 5.15-5.16 to {literal.round(4)}")
np.testing.assert_allclose(explicit, theta0 - eta * bowl_box.grad(theta0), rtol=1e-14)
np.testing.assert_allclose(literal, theta0 - eta * bowl_box.grad(literal), rtol=1e-14)  # it solves 5.15-5.16
assert explicit[1] < 0 < literal[1], "across the steep direction the explicit step overshoots, the implicit one does not"

# %% [markdown]
# ## 2 · A mini-batch gradient is a noisy estimate
#
# Computing $\nabla E$ costs a pass over all $N$ examples. A **mini-batch** of $B$ examples drawn at
# random gives the estimate $\mathbf{g}_B = \frac{1}{B}\sum_{n \in \text{batch}} \nabla E_n$ for
# $B/N$ of the price. It is right on average, but each draw misses by a random amount. With
# $\sigma^2 = \frac{1}{N}\sum_n \lVert \nabla E_n - \nabla E \rVert^2$ the spread of the per-example
# gradients, a batch of $B$ *different* examples (as a shuffled epoch gives) misses by
#
# $$\mathbb{E}\,\lVert \mathbf{g}_B - \nabla E \rVert^2 = \frac{\sigma^2}{B}\cdot\frac{N-B}{N-1},$$
#
# the variance of a sample mean: it falls like $1/B$, and the last factor (close to 1 for $B \ll N$)
# makes it vanish at $B = N$. Measure it with 200 random batches of each size:

# %%
sigma2 = np.mean(np.sum((per_example - g_full) ** 2, axis=1))
rng = np.random.default_rng(0)
sizes = np.array([1, 4, 16, 64, 256])
measured, predicted = [], []
for B in sizes:
    draws = [gradient(net64, X64[idx], y_train[idx]) for idx in (rng.choice(N, B, replace=False) for _ in range(200))]
    measured.append(np.mean(np.sum((np.array(draws) - g_full) ** 2, axis=1)))
    predicted.append(sigma2 / B * (N - B) / (N - 1))
measured, predicted = np.array(measured), np.array(predicted)
slope = np.polyfit(np.log(sizes), np.log(measured), 1)[0]
for B, m, p in zip(sizes, measured, predicted):
    print(f"B = {B:3d}: mean squared error of g_B {m:.4f}, formula {p:.4f}")
print(f"log-log slope {slope:.2f} (1/B would be -1)")

# %%
assert np.all(np.abs(measured / predicted - 1) < 0.2), "the sample-mean formula predicts the noise"
assert -1.1 < slope < -0.9, "the noise falls like 1/B"

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
ax.loglog(sizes, measured, "o", label="measured (200 batches each)")
ax.loglog(sizes, predicted, "-", label=r"$\frac{\sigma^2}{B}\,\frac{N-B}{N-1}$")
ax.set_xlabel("batch size B"), ax.set_ylabel(r"$E\,\|g_B - \nabla E\|^2$")
ax.set_title("the noise of a mini-batch gradient", fontsize=10)
ax.legend(fontsize=9)
fig.tight_layout()
fig

# %% [markdown]
# ## 3 · Batch, online and mini-batch training
#
# Three ways to spend the same computation (Tomasi §2; Khan §5.3.1–5.3.3; Veta's SGD slides):
#
# * **batch**: one step per pass over the data, with the exact gradient $\nabla E$;
# * **online** (stochastic, $B = 1$): one step per example, with $\nabla E_n$: $N$ times cheaper per
#   step and very noisy;
# * **mini-batch**: one step per $B$ examples, in a new random order every epoch.
#
# An **epoch** is one pass over the training set, so it costs the same $N$ per-example gradients
# whatever $B$ is; only the number of **updates** differs: 1, $N$ or $N/B$. Tomasi's argument for
# online learning is that $N$ small steps, each taken from where the previous one landed, can follow
# the curves of the error surface, while the single batch step goes in a straight line.
#
# `TrainingRun` (the model behind this lesson's widget) trains `tiny_mlp` with `cnnlab`'s `Trainer`
# and `SGD`, from the same starting weights and in the same order of examples for every setting, and
# records $E(\mathbf{w})$ on all 2,000 training images ten times per epoch. First the same *work*,
# two epochs each:

# %%
lr = 0.05
modes = {"online (B = 1)": 1, "mini-batch (B = 16)": 16, "batch (B = N)": None}
same_work = {name: TrainingRun(*data, lr=lr, batch_size=B, epochs=2).run() for name, B in modes.items()}
for name, run in same_work.items():
    print(f"{name:20s} {run.updates[-1]:5d} updates, E(w) = {run.train_loss[0]:.3f} -> {run.train_loss[-1]:.3f}")

# %% [markdown]
# Then the same number of *updates*, 100 each (for batch training that is 100 epochs, 50 times the
# work of the runs above; for online training 100 examples, one twentieth of an epoch):

# %%
same_updates = {name: TrainingRun(*data, lr=lr, batch_size=B, epochs=100, max_updates=100, record_every=5).run()
                for name, B in modes.items()}
for name, run in same_updates.items():
    print(f"{name:20s} {run.epochs_seen[-1]:6.2f} epochs of work, E(w) = {run.train_loss[-1]:.3f}")

# %%
with plt.ioff():
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for (name, run), color in zip(same_work.items(), ["C3", "C0", "C2"]):
    ax0.plot(run.epochs_seen, run.train_loss, ".-", color=color, label=name)
for (name, run), color in zip(same_updates.items(), ["C3", "C0", "C2"]):
    ax1.plot(run.updates, run.train_loss, ".-", color=color, label=name)
ax0.set_xlabel("epochs (per-example gradients / N)"), ax0.set_ylabel("training error E(w)")
ax1.set_xlabel("updates")
ax0.set_title("the same work: 2 epochs", fontsize=10), ax1.set_title("the same number of updates: 100", fontsize=10)
ax0.legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# The two orderings are opposite, and both are what the source documents predict:

# %%
E_work = {name: run.train_loss[-1] for name, run in same_work.items()}
E_updates = {name: run.train_loss[-1] for name, run in same_updates.items()}
online, mini, batch = modes
assert E_work[online] < E_work[mini] < E_work[batch], "per unit of work, more (smaller) steps win"
assert E_work[batch] > 0.95 * same_work[batch].train_loss[0], "two batch steps hardly move E"
assert E_updates[batch] < E_updates[mini] < E_updates[online], "per update, the better gradient wins"
assert E_updates[mini] - E_updates[batch] < 0.2 * (E_updates[online] - E_updates[batch]), \
    "16 examples already give most of the full gradient's quality"

# %% [markdown]
# * Per unit of work, online beats mini-batch beats batch: two epochs give the batch method two
#   steps, the online method 4,000.
# * Per update, the exact gradient makes the best step, a batch of 16 is almost as good, and single
#   examples are far worse: the variance of their gradient is 16 times larger (section 2).
#
# Mini-batches combine the two: steps nearly as good as the batch method's, at a small fraction of the
# cost. Computers add a third reason: one matrix product over 16 examples runs much faster than 16
# products over one. Tomasi notes that batches of a few dozen are common.

# %% [markdown]
# ## Exercise 1: one epoch of mini-batch SGD by hand
#
# The `Trainer` hides a short loop. Write it yourself: for every mini-batch `(xb, yb)` that the
# `DataLoader` yields (shuffled with `rng=1`, as the Trainer's), run the network forward, compute the
# loss with `loss_fn.forward(out, yb)`, back-propagate `loss_fn.backward()` through `net.backward`,
# and update **every** parameter with `p.data -= lr * p.grad`. The check trains a second network with
# `Trainer(..., batch_size=32, rng=1)` from the same start and compares the weights **bit for bit**.

# %% tags=["exercise"]
net = tiny_mlp(rng=0)  # the same start as the Trainer's network
loss_fn = CrossEntropyLoss()
loader = DataLoader(X_train, y_train, batch_size=32, shuffle=True, rng=1)
lr = 0.1
for xb, yb in loader:
    ...  # forward, loss, backward, update every parameter

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "06-sgd-epoch-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
net = tiny_mlp(rng=0)  # the same start as the Trainer's network
loss_fn = CrossEntropyLoss()
loader = DataLoader(X_train, y_train, batch_size=32, shuffle=True, rng=1)
lr = 0.1
for xb, yb in loader:
    loss_fn.forward(net(xb), yb)
    net.backward(loss_fn.backward())
    for p in net.parameters():
        p.data -= lr * p.grad

# %% nbgrader={"grade": true, "grade_id": "06-sgd-epoch-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.gradient_descent import check_sgd_epoch

check_sgd_epoch(net, X_train, y_train, lr=0.1, batch_size=32, shuffle_seed=1, init_seed=0)

# %% [markdown]
# ## 4 · The learning rate on a quadratic bowl
#
# Tomasi calls the learning rate $\alpha$ a parameter of critical importance: too large and the steps
# overshoot, too small and progress is very slow. On a quadratic we can say exactly where the line is.
# Take the bowl $E(x, y) = \frac{1}{2}(x^2 + 20\,y^2)$, whose Hessian $H = \mathrm{diag}(1, 20)$ curves
# twenty times more steeply along $y$ than along $x$. Its gradient is $H\mathbf{w}$, so one step is
# $\mathbf{w}_{t+1} = (I - \alpha H)\,\mathbf{w}_t$ and each coordinate is multiplied by its own factor
# at every step:
#
# $$x_t = (1-\alpha)^t\,x_0, \qquad y_t = (1 - 20\alpha)^t\,y_0 .$$
#
# Descent converges exactly when every factor has magnitude below 1, $|1 - \alpha\lambda_i| < 1$ for
# every eigenvalue $\lambda_i$ of $H$, that is
#
# $$0 < \alpha < \frac{2}{\lambda_{\max}} = \frac{2}{20} = 0.1 .$$
#
# `cnnlab.surfaces.trajectory` runs the very `SGD` class that trains networks on a point of the plane.
# First check the closed form:

# %%
bowl = QuadraticBowl(condition=20)
start = np.array(bowl.start)
alpha = 0.03
path = trajectory(bowl, lambda ps: SGD(ps, lr=alpha), steps=40).points
t = np.arange(41)
closed_form = np.stack([(1 - alpha) ** t * start[0], (1 - 20 * alpha) ** t * start[1]], axis=1)
assert np.allclose(path, closed_form, rtol=1e-12, atol=1e-15)
print(f"start {start}, after 40 steps {path[-1].round(4)}: the closed form holds")

# %% [markdown]
# Four learning rates, 40 steps each:

# %%
regimes = {0.005: "too small", 0.06: "good", 0.098: "too large: zigzag", 0.105: "diverging"}
paths = {a: trajectory(bowl, lambda ps, a=a: SGD(ps, lr=a), steps=40) for a in regimes}
xs, ys = np.meshgrid(np.linspace(-2, 2, 201), np.linspace(-1, 1, 101))
with plt.ioff():
    fig, axes = plt.subplots(1, 4, figsize=(12, 2.9), sharey=True)
for ax, (a, name) in zip(axes, regimes.items()):
    ax.contour(xs, ys, bowl(np.stack([xs, ys], axis=-1)), levels=np.geomspace(0.02, 12, 12), colors="0.75")
    ax.plot(*paths[a].points.T, ".-", ms=3, lw=0.8, color="C3")
    ax.plot(0, 0, "k*")
    ax.set_title(f"α = {a}: {name}", fontsize=9)
    ax.set_xlim(-2, 2), ax.set_ylim(-1, 1), ax.set_xlabel("x")
axes[0].set_ylabel("y")
fig.tight_layout()
fig

# %% [markdown]
# With $\alpha = 0.005$ the point creeps along $x$ (factor 0.995 per step); at 0.06 both coordinates
# shrink quickly; at 0.098 the $y$ factor is $1 - 1.96 = -0.96$: the point jumps from one wall of the
# valley to the other and barely settles; at 0.105 the factor is $-1.1$ and every jump is longer than
# the one before. The bound is sharp. Just below it descent converges, just above it diverges, and far
# above it the point runs off to huge values within a few steps: `trajectory` stops there and reports
# the step instead of raising an error.

# %%
def distance_after(a, steps):
    return np.linalg.norm(trajectory(bowl, lambda ps: SGD(ps, lr=a), steps=steps).points[-1])


assert distance_after(0.0999, 3000) < 0.1 * np.linalg.norm(start), "just below 2 / lambda_max: converges"
assert distance_after(0.1001, 3000) > 10 * np.linalg.norm(start), "just above: diverges"
blown = trajectory(bowl, lambda ps: SGD(ps, lr=1.0), steps=100)
print(f"alpha = 1: the y factor is -19; the run blew up at step {blown.diverged_at}")
assert blown.diverged and blown.diverged_at < 10

# %% [markdown]
# ## Exercise 2: the largest stable learning rate
#
# Write `largest_stable_lr(H)`: the bound $2/\lambda_{\max}$ for gradient descent on a quadratic with
# symmetric Hessian `H` (any size). `np.linalg.eigvalsh` gives the eigenvalues of a symmetric matrix.
# Careful: for a matrix that is not diagonal, the diagonal entries are not the eigenvalues.

# %% tags=["exercise"]
def largest_stable_lr(H):
    ...  # your code here

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "06-largest-stable-lr-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def largest_stable_lr(H):
    return 2 / np.linalg.eigvalsh(H).max()

# %% nbgrader={"grade": true, "grade_id": "06-largest-stable-lr-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.gradient_descent import check_largest_stable_lr

check_largest_stable_lr(largest_stable_lr)

# %% [markdown]
# ## 5 · The same bound on real data
#
# Is this only a fact about toy bowls? Take a linear classifier, Linear(196, 10), trained with the
# squared error against one-hot targets (Bouvrie's eq. (1), here averaged over all $N \cdot C$
# entries). Its training error is *exactly* a quadratic in the weights: for each class $c$, with
# $\tilde{\mathbf{x}}_n$ the image with a 1 appended for the bias,
# $E = \frac{1}{NC}\sum_{n,c} (\mathbf{w}_c^\top \tilde{\mathbf{x}}_n - t_{nc})^2$, whose Hessian is
# the same block for every class,
#
# $$H = \frac{2}{NC}\,\tilde{X}^\top \tilde{X} \quad (197 \times 197).$$
#
# So the bound of section 4 applies to batch gradient descent on 2,000 real images:

# %%
C = 10
X_tilde = np.hstack([X_train, np.ones((N, 1), np.float32)]).astype(np.float64)
H = 2 / (N * C) * X_tilde.T @ X_tilde
eigenvalues = np.linalg.eigvalsh(H)
lr_max = 2 / eigenvalues.max()
print(f"largest eigenvalue {eigenvalues.max():.3f} -> largest stable learning rate {lr_max:.4f}")
print(f"smallest eigenvalue {eigenvalues.min():.1e}: a bowl far more ill-conditioned than ours")
assert eigenvalues.min() < 1e-5 * eigenvalues.max()

# %%
def least_squares_run(lr, updates=600):
    classifier = Sequential(Linear(196, 10, rng=0))
    trainer = Trainer(classifier, MSELoss(), SGD(classifier.parameters(), lr=lr), X_train, one_hot(y_train, C),
                      batch_size=None, rng=0)
    return trainer.run(epochs=updates, progress=False)


below, above = least_squares_run(0.95 * lr_max), least_squares_run(1.05 * lr_max)
E_below = below.step_values("loss")
print(f"0.95 x lr_max: {below.status}, E {E_below[0]:.4f} -> {E_below[-1]:.4f}")
print(f"1.05 x lr_max: {above.status}: {above.message}")

# %%
assert below.status == "completed" and np.all(np.diff(E_below) <= 0), "below the bound, E falls at every step"
assert above.status == "diverged" and above.diverged_at > 100, "above it, the error grows until it overflows"

# %% [markdown]
# The divergence is reported, not raised: the `Trainer` watches for a loss that stops being finite,
# stops, and says at which step. Note also the smallest eigenvalue: along those directions (pixels at
# the border that are almost always background) a step of any stable size changes almost nothing.
# Real error surfaces are ill-conditioned bowls, and the learning rate is always a compromise between
# the steepest direction, which limits it, and the flattest, which it cannot speed up. Momentum
# (section 7) and the adaptive methods of lesson 07 attack that compromise.

# %% [markdown]
# ## 6 · The learning rate on the network
#
# The MLP's error is not a quadratic, and there is no formula for its bound, but the same regimes
# appear. Four runs of three epochs with mini-batches of 64, judged from the curve of $E(\mathbf{w})$ by
# `judge_regime` (its rules: *diverged* if the loss became infinite; *too large* if the error ended
# above its start, shot up on the way, or zigzagged more than it fell; *too small* if it fell by
# less than a quarter; *good* otherwise):

# %%
settings = {"lr = 0.001": dict(lr=0.001), "lr = 0.1": dict(lr=0.1), "lr = 3": dict(lr=3.0),
            "lr = 100, squared error": dict(lr=100.0, loss="squared error")}
runs = {name: TrainingRun(*data, batch_size=64, epochs=3, **kw).run() for name, kw in settings.items()}
for name, run in runs.items():
    regime, reason = run.judge()
    print(f"{name:24s} {regime:9s} {reason}")

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(7, 3.6))
for name, run in runs.items():  # relative to the start: the two losses have different scales
    ax.plot(run.epochs_seen, np.array(run.train_loss) / run.train_loss[0], ".-", label=f"{name}: {run.judge()[0]}")
ax.set_yscale("log"), ax.set_ylim(0.3, 30)
ax.set_xlabel("epochs"), ax.set_ylabel(r"$E(\mathbf{w}) \,/\, E(\mathbf{w}_0)$")
ax.legend(fontsize=8)
fig.tight_layout()
fig

# %%
judged = {name: run.judge()[0] for name, run in runs.items()}
assert judged == {"lr = 0.001": "too small", "lr = 0.1": "good", "lr = 3": "too large",
                  "lr = 100, squared error": "diverged"}
E_end = {name: run.train_loss[-1] for name, run in runs.items()}
assert E_end["lr = 0.1"] < 0.6 * E_end["lr = 0.001"]
assert E_end["lr = 3"] > 0.95 * runs["lr = 3"].train_loss[0], "too large: no better than the untrained network"
assert runs["lr = 100, squared error"].status == "diverged"

# %% [markdown]
# Two things stand out. With cross-entropy, the rate of 3 did *not* overflow in this net: every
# recorded loss is finite. Instead the first large steps pushed the hidden ReLUs into their flat zero
# region, where no gradient reaches them again, and the network is stuck at chance (measured in the
# next cell). With the squared error, the gradient grows with the error itself, which feeds back into
# larger steps and a true blow-up. And "too large" starts far below "diverged": the rate of 3 never
# produced an infinite number, yet the network learnt nothing.

# %%
stuck = runs["lr = 3"]
dead = np.mean((stuck.net[0](X_train) <= 0).all(axis=0))  # hidden units that are 0 for every image
print(f"lr = 3: {dead:.0%} of the hidden units are dead; validation accuracy {stuck.val_accuracy[-1]:.0%}")
assert dead > 0.8 and stuck.val_accuracy[-1] < 0.2
assert np.all(np.isfinite(stuck.train_loss))

# %% [markdown]
# Why did cross-entropy not blow up? Its gradient with respect to the logits is
# $\mathbf{p} - \mathbf{t}$, every entry between −1 and 1: unlike the squared error's, it does not grow
# with the error. That is a statement about one factor of the gradient, not a bound on the weights:
# the weight gradients also carry the layer inputs, which grow as the weights do. The same net with
# cross-entropy at the rate of 100 that made the squared error diverge, from two starts:

# %%
for seed in (0, 1):
    big = TrainingRun(*data, batch_size=64, epochs=3, lr=100.0, seed=seed).run()
    w_start = max(np.abs(p.data).max() for p in tiny_mlp(rng=seed).parameters())
    w_end = max(np.abs(p.data).max() for p in big.net.parameters())
    print(f"seed {seed}: {big.status}, largest loss {max(big.train_loss):.3g}, "
          f"largest |weight| {w_start:.2f} -> {w_end:.3g}")
    assert big.status != "diverged" and np.all(np.isfinite(big.train_loss))
    assert w_end > 1000 * w_start, "cross-entropy did not keep the weights small"

# %% [markdown]
# So in this net cross-entropy at a rate of 100 stayed finite, yet its largest weight grew by a factor
# of more than a thousand in three epochs: the bounded logit gradient kept the loss from feeding on
# itself, but it did not bound the weights.

# %% [markdown]
# ## The learning-rate explorer
#
# Now try it yourself. The explorer trains the same network on the same data, live: the curves grow as
# training proceeds (ten points per epoch), and every run starts from the same weights and visits the
# examples in the same order, so two runs differ only by the knob you turned.
#
# * **learning rate** (log scale), **momentum** μ (section 7), **batch size** (1 = online, 16, 64, 256,
#   or the full batch), **epochs**, and the **loss** (cross-entropy or squared error): any change
#   starts a new run; **Train** runs again, **Stop** ends a run early.
# * Left: the training error on all 2,000 training images and the validation loss; the previous run
#   in grey for comparison; the regime judged from the curve. **x axis** switches between epochs
#   (work) and updates.
# * Right: every finished run with the same batch size, momentum, loss and epochs: a learning-rate
#   sweep that you build by moving one slider. Veta's advice for choosing the rate is exactly this.
#
# Things to try: find the best learning rate for each batch size (does it grow with $B$?); compare
# online and full batch at the same rate with the x axis on *epochs*, then on *updates*; set the
# momentum to 0.9 and see which rates are now too large (why? see section 7).

# %%
explorer = widgets.lr_explorer()
explorer

# %% [markdown]
# The next cell turns the learning rate up to 3, as you would with the slider, waits for the run, and
# checks that the explorer calls it too large; then it switches to squared error at a rate of 100.

# %%
draws = explorer.view.draws
explorer.lr.value = 3.0
await explorer.finished()  # in the notebook a run trains in the background; wait for it to end
assert explorer.run.lr == 3.0 and explorer.run.judge()[0] == "too large"
assert explorer.view.draws > draws and "too large" in explorer.status.text
explorer.loss.value = "squared error"
explorer.lr.value = 100.0
await explorer.finished()
assert explorer.run.status == "diverged" and explorer.status.text.startswith("diverged")
explorer.lr.value = 0.1  # back to a good rate for you to start from
await explorer.finished()
assert explorer.run.judge()[0] == "good"

# %% [markdown]
# ## 7 · Momentum
#
# Tomasi's momentum method keeps a velocity $\mathbf{v}$, a decaying sum of past steps:
#
# $$\mathbf{v}_{t+1} = \mu_t\,\mathbf{v}_t - \alpha\,\nabla E(\mathbf{w}_t), \qquad
#   \mathbf{w}_{t+1} = \mathbf{w}_t + \mathbf{v}_{t+1},$$
#
# with $\mu_t \in [0, 1]$ ($\mu = 0$ is plain gradient descent). Components of the gradient that keep
# their sign add up across steps, those that flip sign cancel: the method speeds up along gently
# sloping directions and damps the zigzag across a narrow valley. Veta's slides write the same update,
# and so do Khan's eqs. 5.17–5.18 with $\mathbf{a} = -\mathbf{v}$ (Khan calls $\mu = 0.9$ typical).
# `cnnlab`'s `SGD` uses PyTorch's form, $\mathbf{b} \leftarrow \mu\mathbf{b} + \nabla E$,
# $\mathbf{w} \leftarrow \mathbf{w} - \alpha\mathbf{b}$, which is the same iteration with
# $\mathbf{v} = -\alpha\mathbf{b}$ while $\alpha$ is constant (lesson 07 shows it for every
# optimizer). Tomasi's two lines, run by hand on the bowl, agree with it:

# %%
mu, alpha = 0.9, 0.01
w, v = start.copy(), np.zeros(2)
by_hand = [w.copy()]
for _ in range(100):
    v = mu * v - alpha * bowl.grad(w)
    w = w + v
    by_hand.append(w.copy())
with_sgd = trajectory(bowl, lambda ps: SGD(ps, lr=alpha, momentum=mu), steps=100).points
assert np.allclose(by_hand, with_sgd, rtol=1e-12, atol=1e-14)
plain = trajectory(bowl, lambda ps: SGD(ps, lr=alpha), steps=100).points
print(f"after 100 steps at alpha = {alpha}: distance to the minimum {np.linalg.norm(plain[-1]):.3f} without "
      f"momentum, {np.linalg.norm(with_sgd[-1]):.3f} with mu = {mu}")
assert np.linalg.norm(with_sgd[-1]) < 0.2 * np.linalg.norm(plain[-1])

# %% [markdown]
# Momentum also moves the stability bound. On a quadratic, the iteration converges exactly when
# $0 < \alpha\lambda < 2(1 + \mu)$ for every eigenvalue $\lambda$ (the two roots of
# $r^2 - (1 + \mu - \alpha\lambda)\,r + \mu = 0$ must lie inside the unit circle). For the bowl with
# $\mu = 0.9$ the limit becomes $2 \cdot 1.9 / 20 = 0.19$, almost twice the plain 0.1, while a steady
# gradient is followed with the effective rate $\alpha/(1 - \mu)$, ten times $\alpha$. That is why a
# rate that is good without momentum is often too large with $\mu = 0.9$ in the explorer.

# %%
def momentum_distance(a, mu=0.9, steps=2000):
    return np.linalg.norm(trajectory(bowl, lambda ps: SGD(ps, lr=a, momentum=mu), steps=steps).points[-1])


assert momentum_distance(0.185) < 1e-6, "inside 2(1 + mu) / lambda_max = 0.19: converges"
assert trajectory(bowl, lambda ps: SGD(ps, lr=0.195, momentum=0.9), steps=2000).diverged, "outside: diverges"

# %% [markdown]
# ### Momentum, analysed: how fast, not only whether
#
# The stability bound says *whether* a run converges. The same algebra says *how fast*, and which
# $(\alpha, \mu)$ is best; this is the analysis of Goh's "Why Momentum Really Works" (Distill, 2017),
# which you can play with below. Take any quadratic $f(\mathbf{w}) = \tfrac12 \mathbf{w}^\top A \mathbf{w}$
# with symmetric $A$ whose eigenvalues $\lambda_i$ lie in $[m, L]$; $\kappa = L/m$ is its **condition
# number** (the bowl above has $\kappa = 20$). In the eigenvector basis of $A$ the coordinates do not
# interact, so it is enough to follow one direction with curvature $\lambda$.
#
# **Gradient descent.** One step multiplies direction $i$ by $1 - \alpha\lambda_i$. The error as a
# whole shrinks, in the long run, by the worst of these factors, the **rate**
# $\max_i |1 - \alpha\lambda_i|$. The factor is linear in $\lambda$, so the worst direction is $m$ or
# $L$, and the best $\alpha$ makes them equal: $1 - \alpha m = -(1 - \alpha L)$, that is
# $\alpha = 2/(m + L)$, with rate $\frac{L - m}{L + m} = \frac{\kappa - 1}{\kappa + 1}$.
#
# **Momentum.** `cnnlab`'s `SGD(lr=α, momentum=μ)` does $\mathbf{b}_t = \mu\mathbf{b}_{t-1} + \nabla f(\mathbf{w}_{t-1})$,
# $\mathbf{w}_t = \mathbf{w}_{t-1} - \alpha\mathbf{b}_t$. Since $\alpha\mathbf{b}_{t-1} = \mathbf{w}_{t-2} - \mathbf{w}_{t-1}$,
# this is Polyak's **heavy ball** with the same $\alpha$ and $\mu$ (as long as $\alpha$ is constant):
#
# $$\mathbf{w}_t = \mathbf{w}_{t-1} - \alpha \nabla f(\mathbf{w}_{t-1}) + \mu\,(\mathbf{w}_{t-1} - \mathbf{w}_{t-2}).$$
#
# In a direction with curvature $\lambda$ the gradient is $\lambda w$, so
# $w_t = (1 + \mu - \alpha\lambda)\,w_{t-1} - \mu\,w_{t-2}$: a step needs the last *two* values, and on
# the pair it is a $2\times2$ matrix,
#
# $$\begin{pmatrix} w_t \\ w_{t-1} \end{pmatrix} = R \begin{pmatrix} w_{t-1} \\ w_{t-2} \end{pmatrix},
#   \qquad R = \begin{pmatrix} 1 + \mu - \alpha\lambda & -\mu \\ 1 & 0 \end{pmatrix}.$$
#
# After $t$ steps the pair is $R^t$ times the start, which shrinks like $\rho(R)^t$, where the
# **spectral radius** $\rho(R)$ is the largest $|r|$ over the eigenvalues $r$ of $R$, the roots of
# $r^2 - (1 + \mu - \alpha\lambda)\,r + \mu = 0$ (the polynomial of the stability bound). The rate of
# the whole run is $\max_i \rho(R_i)$. For $\mu = 0$ the roots are $1 - \alpha\lambda$ and 0: gradient
# descent again.

# %%
def gd_rate(alpha, eigenvalues):
    """max_i |1 - alpha lambda_i|: the factor by which gradient descent shrinks the error per step."""
    return np.abs(1 - alpha * np.asarray(eigenvalues)).max()


def momentum_rate(alpha, mu, eigenvalues):
    """max_i rho(R_i) for SGD(lr=alpha, momentum=mu); alpha and mu may be arrays of one shape (a grid)."""
    alpha, mu = np.asarray(alpha, float)[..., None], np.asarray(mu, float)[..., None]
    lam = np.asarray(eigenvalues, float)
    R = np.zeros(np.broadcast_shapes(alpha.shape, lam.shape) + (2, 2))  # one R per (alpha, mu) and direction
    R[..., 0, 0] = 1 + mu - alpha * lam
    R[..., 0, 1] = -mu
    R[..., 1, 0] = 1.0
    return np.abs(np.linalg.eigvals(R)).max(axis=(-2, -1))


# %% [markdown]
# **The best pair.** The two roots multiply to $\mu$, so $\rho(R) \ge \sqrt{\mu}$, with equality
# exactly when the roots are complex (or equal): when $(1 + \mu - \alpha\lambda)^2 \le 4\mu$, i.e.
# $(1 - \sqrt\mu)^2 \le \alpha\lambda \le (1 + \sqrt\mu)^2$. The smallest $\mu$ for which one $\alpha$
# puts *every* $\lambda \in [m, L]$ in that band makes both ends tight, $\alpha m = (1-\sqrt\mu)^2$ and
# $\alpha L = (1 + \sqrt\mu)^2$. Divide one by the other and solve:
#
# $$\mu^* = \left(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\right)^2, \qquad
#   \alpha^* = \left(\frac{2}{\sqrt L + \sqrt m}\right)^2, \qquad
#   \text{rate} = \sqrt{\mu^*} = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}.$$
#
# Where gradient descent's rate has $\kappa$, momentum's has $\sqrt\kappa$. A quadratic with eigenvalues
# $1, 3, 10, 30, 100$ ($\kappa = 100$):

# %%
lam = np.array([1.0, 3.0, 10.0, 30.0, 100.0])
m, L = lam.min(), lam.max()
kappa = L / m
alpha_gd, rate_gd = 2 / (m + L), (kappa - 1) / (kappa + 1)
alpha_star, mu_star = (2 / (np.sqrt(L) + np.sqrt(m))) ** 2, ((np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)) ** 2
rate_star = np.sqrt(mu_star)
print(f"gradient descent: alpha = {alpha_gd:.5f}, rate (kappa-1)/(kappa+1) = {rate_gd:.5f}")
print(f"momentum: alpha* = {alpha_star:.5f}, mu* = {mu_star:.5f}, rate (sqrt(kappa)-1)/(sqrt(kappa)+1) = {rate_star:.5f}")
print(f"eigenvalues of R at (alpha*, mu*): m -> {np.linalg.eigvals([[1 + mu_star - alpha_star * m, -mu_star], [1, 0]])}")

assert np.isclose(gd_rate(alpha_gd, lam), rate_gd, rtol=1e-14)
assert gd_rate(0.99 * alpha_gd, lam) > rate_gd and gd_rate(1.01 * alpha_gd, lam) > rate_gd, "2/(m+L) is the best"
assert np.isclose(momentum_rate(alpha_gd, 0.0, lam), rate_gd, rtol=1e-12), "mu = 0 is gradient descent"
# at (alpha*, mu*) the extreme directions have a double root: an O(eps) rounding in R moves a double
# root by O(sqrt(eps)) ~ 1e-8, so the claim is checked to 1e-6, not to eps
assert abs(momentum_rate(alpha_star, mu_star, lam) - rate_star) < 1e-6
assert momentum_rate(alpha_star, mu_star, lam) < 0.84 < 0.98 < rate_gd

# %% [markdown]
# The picture of Distill's analysis: the rate over a grid of $(\alpha, \mu)$. White is divergence
# (rate $\ge 1$, beyond the bound $\alpha L < 2(1 + \mu)$); the bottom row $\mu = 0$ is gradient
# descent; the darkest point is the optimum. Above $\mu^*$ a whole range of $\alpha$ gives the same
# rate $\sqrt\mu$ (all roots complex): momentum is forgiving about the learning rate there.

# %%
alphas = np.linspace(0, 0.045, 226)[1:]  # steps of 0.0002
mus = np.linspace(0, 0.995, 200)          # steps of 0.005
grid = momentum_rate(*np.meshgrid(alphas, mus), lam)  # rows: mu, columns: alpha
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
image = ax.pcolormesh(alphas, mus, np.where(grid < 1, grid, np.nan), cmap="magma", vmin=rate_star, vmax=1,
                      shading="nearest")
fig.colorbar(image, ax=ax, label="rate: error shrinks by this factor per step")
ax.plot(alpha_star, mu_star, "*", ms=14, color="C2", mec="w", label=fr"$(\alpha^*, \mu^*)$, rate {rate_star:.3f}")
ax.plot(alpha_gd, 0.0, "o", ms=9, color="C0", mec="w", clip_on=False,
        label=fr"gradient descent's best, $\mu = 0$, rate {rate_gd:.3f}")
ax.axhline(0, color="C0", lw=3)
ax.set_xlabel(r"learning rate $\alpha$"), ax.set_ylabel(r"momentum $\mu$")
ax.set_title(fr"Rate of SGD with momentum on a quadratic with $\kappa = {kappa:.0f}$", fontsize=10)
ax.legend(loc="lower right", fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# The grid's minimum sits where the formula says. How close it can get is set by the grid: at the
# first grid $\mu$ above $\mu^*$ the rate is $\sqrt\mu$, at most $\tfrac{\Delta\mu}{2\sqrt{\mu^*}}$ above
# the optimum; no grid point can beat the optimum (up to the $10^{-6}$ of the double roots).

# %%
row, col = np.unravel_index(np.argmin(grid), grid.shape)
d_alpha, d_mu = alphas[1] - alphas[0], mus[1] - mus[0]
print(f"grid minimum {grid[row, col]:.5f} at alpha = {alphas[col]:.4f}, mu = {mus[row]:.3f}; "
      f"theory {rate_star:.5f} at ({alpha_star:.4f}, {mu_star:.3f})")
assert abs(alphas[col] - alpha_star) <= d_alpha and abs(mus[row] - mu_star) <= d_mu
assert rate_star - 1e-6 <= grid.min() <= rate_star + d_mu / (2 * rate_star)
assert np.isclose(grid[0].min(), rate_gd, atol=d_alpha * L / 2), "the mu = 0 row: gradient descent's best"

# %% [markdown]
# How much does $\sqrt\kappa$ instead of $\kappa$ buy? To shrink the error by a factor $\varepsilon$ a
# method with rate $r$ needs $\log\varepsilon / \log r$ steps. Since $\log\frac{s-1}{s+1} = -2\,\mathrm{artanh}(1/s)$,
# the ratio of the two step counts is $\mathrm{artanh}(1/\sqrt\kappa) / \mathrm{artanh}(1/\kappa)$. It is at
# least $\sqrt\kappa$ (because $\mathrm{artanh}(x)/x$ grows with $x$) and exceeds it by a factor of only
# about $1 + 1/(3\kappa)$: gradient descent needs about $\sqrt\kappa$ times as many steps.

# %%
kappas = np.geomspace(2, 1e6, 200)
rate_gd_k = (kappas - 1) / (kappas + 1)
rate_hb_k = (np.sqrt(kappas) - 1) / (np.sqrt(kappas) + 1)
steps_gd, steps_hb = np.log(1e-6) / np.log(rate_gd_k), np.log(1e-6) / np.log(rate_hb_k)
with plt.ioff():
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.5))
ax1.semilogx(kappas, rate_gd_k, label=r"gradient descent $(\kappa-1)/(\kappa+1)$")
ax1.semilogx(kappas, rate_hb_k, label=r"momentum $(\sqrt{\kappa}-1)/(\sqrt{\kappa}+1)$")
ax1.set_xlabel(r"condition number $\kappa$"), ax1.set_ylabel("best rate"), ax1.legend(fontsize=8)
ax2.loglog(kappas, steps_gd, label="gradient descent")
ax2.loglog(kappas, steps_hb, label="momentum")
ax2.set_xlabel(r"condition number $\kappa$"), ax2.set_ylabel(r"steps to shrink the error $10^6$ times")
ax2.legend(fontsize=8)
fig.tight_layout()
fig

# %%
ratio = steps_gd / steps_hb
at_1e4 = np.log(1e-6) / np.log(9999 / 10001) / (np.log(1e-6) / np.log(99 / 101))
print(f"kappa = 10^4: {np.log(1e-6) / np.log(9999 / 10001):.0f} steps without momentum, "
      f"{np.log(1e-6) / np.log(99 / 101):.0f} with: {at_1e4:.1f} times fewer")
assert at_1e4 >= 40
big = kappas >= 100
assert np.all(ratio[big] >= np.sqrt(kappas[big]) * (1 - 1e-9)) and np.all(ratio[big] <= 1.01 * np.sqrt(kappas[big]))

# %% [markdown]
# ### Runs that land on the predicted rates
#
# The rates are predictions about `cnnlab`'s `SGD`. Run it on $f(\mathbf w) = \tfrac12\sum_i \lambda_i w_i^2$
# with the five eigenvalues above, from $\mathbf w_0 = (1, \dots, 1)$, writing the gradient
# $\lambda_i w_i$ into `.grad` as a training loop would, once without momentum at $\alpha = 2/(m+L)$ and
# once with $(\alpha^*, \mu^*)$, and measure the rate as the geometric mean of
# $\|\mathbf w_{t+1}\| / \|\mathbf w_t\|$ over the tail, $t$ from 200 to 400.
#
# One subtlety: at $(\alpha^*, \mu^*)$ the extreme directions have a **double** root
# $r = \pm\sqrt{\mu^*}$, and a repeated eigenvalue of a $2\times2$ matrix that is not a multiple of $I$
# gives $R^t \sim t\,r^t$, not $r^t$. Over the window $[200, 400]$ the factor $t$ adds
# $(400/200)^{1/200} \approx 1.0035$ to the measured rate: the raw measurement lands within 1%, and
# with $\|\mathbf w_t\|/t$ it lands within 0.1%.

# %%
def run_norms(alpha, mu, steps=400):
    """||w_t|| for t = 0..steps, SGD(lr=alpha, momentum=mu) on f(w) = 1/2 sum lam_i w_i^2 from w = 1."""
    w = Parameter(np.ones_like(lam))  # float64, as lam
    optimizer = SGD([w], lr=alpha, momentum=mu)
    norms = [np.linalg.norm(w.data)]
    for _ in range(steps):
        w.grad[...] = lam * w.data
        optimizer.step()
        norms.append(np.linalg.norm(w.data))
    return np.array(norms)


def tail_rate(norms, t1=200, t2=400):
    return (norms[t2] / norms[t1]) ** (1 / (t2 - t1))


plain_norms, heavy_norms = run_norms(alpha_gd, 0.0), run_norms(alpha_star, mu_star)
t = np.arange(401)
print(f"gradient descent: measured {tail_rate(plain_norms):.5f}, predicted {rate_gd:.5f}")
print(f"momentum: measured {tail_rate(heavy_norms):.5f}, with the factor t removed "
      f"{tail_rate(heavy_norms / np.maximum(t, 1)):.5f}, predicted {rate_star:.5f}")
assert abs(tail_rate(plain_norms) / rate_gd - 1) < 0.001
assert 1 - 1e-3 < tail_rate(heavy_norms) / rate_star < 1.01
assert abs(tail_rate(heavy_norms / np.maximum(t, 1)) / rate_star - 1) < 0.001

with plt.ioff():
    fig, ax = plt.subplots(figsize=(6.8, 3.4))
ax.semilogy(t, plain_norms, color="C0", label=fr"SGD, $\alpha = 2/(m+L)$")
ax.semilogy(t, rate_gd ** t * plain_norms[0], "--", color="C0", lw=1, label=fr"${rate_gd:.3f}^t$")
ax.semilogy(t, heavy_norms, color="C1", label=r"SGD(momentum), $(\alpha^*, \mu^*)$")
ax.semilogy(t, rate_star ** t * heavy_norms[0], "--", color="C1", lw=1, label=fr"${rate_star:.3f}^t$")
ax.set_xlabel("step t"), ax.set_ylabel(r"$\|\mathbf{w}_t\|$"), ax.legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# ### The error, direction by direction
#
# The explorer runs the same iteration and splits the error by eigen-direction: each coloured line is
# $|w_i(t)|$ for one curvature $\lambda_i$ (log scale), black is $\|\mathbf w_t\|$, and the dashed red
# line is the predicted $\text{rate}^t$. On the right are the two roots of every $R_i$ (same colours): a
# run converges while all of them stay inside the unit circle. Move the sliders:
#
# * with $\mu = 0$, raise $\alpha$: the flat direction ($\lambda = 1$) speeds up until the steep one
#   ($\lambda = \kappa$) starts to zigzag and, past $2/\kappa$, explodes. **best α for μ = 0** sets $2/(m+L)$;
# * now raise $\mu$: the roots leave the real axis for the dotted circle $|r| = \sqrt\mu$, the directions
#   start to oscillate and all shrink at the same pace $\sqrt\mu$; **best (α, μ)** sets the optimum,
#   where the extreme directions' roots have just met on that circle and no direction lags behind;
# * raise $\kappa$ and watch how many steps each method needs.

# %%
momentum_widget = widgets.momentum_explorer(kappa=kappa)
momentum_widget

# %%
momentum_widget.alpha.value = alpha_star  # what moving the two sliders there does
momentum_widget.mu.value = mu_star
print(momentum_widget.status.text)
# the explorer's eigenvalues are 1, 3.16, 10, 31.6, 100: the same m and L, so the same rate
assert abs(momentum_widget.model.rate - rate_star) < 1e-6 and f"rate {rate_star:.4f}" in momentum_widget.status.text
momentum_widget.mu.value = 0.0
assert abs(momentum_widget.model.rate - gd_rate(alpha_star, momentum_widget.model.eigenvalues)) < 1e-12
momentum_widget.best_momentum.click()  # back to the optimum for you to start from
assert (momentum_widget.alpha.value, momentum_widget.mu.value) == (alpha_star, mu_star)

# %% [markdown]
# ### Tomasi's momentum schedule
#
# Tomasi's Figure 2 (after Sutskever et al.) does not keep $\mu$ fixed: it starts at $\frac{1}{2}$ and
# rises in steps every 250 updates,
#
# $$\mu_t = \min\!\left(\mu_{\max},\; 1 - \frac{1}{2}\,\frac{1}{\lfloor t/250 \rfloor + 1}\right),$$
#
# because momentum helps most late in training, when the gradients are small. `sutskever_momentum(t)`
# computes it, and `MomentumSchedule` writes it into an optimizer after every update.

# %%
t = np.arange(15000)
schedule = np.array([sutskever_momentum(k, mu_max=0.99) for k in t])
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
ax.plot(t, schedule)
ax.set_xlabel("update t"), ax.set_ylabel(r"$\mu_t$")
ax.set_title(r"Tomasi's Figure 2: $\mu_t$ with $\mu_{max} = 0.99$", fontsize=10)
fig.tight_layout()
fig

# %%
assert schedule[0] == schedule[249] == 0.5 and schedule[250] == 0.75
assert np.isclose(schedule[500], 5 / 6) and np.isclose(schedule[1000], 0.9)
first_max = np.argmax(schedule >= 0.99)
assert first_max == 12250, "1 - 1/(2k) reaches 0.99 at k = 50, i.e. t = 49 * 250"
assert np.all(np.diff(schedule) >= 0)
optimizer = SGD(tiny_mlp(rng=0).parameters(), lr=0.1, momentum=0.5)
momentum_schedule = MomentumSchedule(optimizer, mu_max=0.99)
for _ in range(250):
    momentum_schedule.step()
assert optimizer.param_groups[0]["momentum"] == 0.75

# %% [markdown]
# ### Does the schedule help? A real run
#
# Tomasi offers the schedule as "a possible" one, with a reason (momentum matters most when the
# gradients have become small) but no measurement. So measure it on this lesson's network: 40 epochs
# of mini-batches of 64 (1,280 updates) at $\alpha = 0.1$, with four momentum settings:
#
# * a constant $\mu = 0.9$ (Khan's typical value);
# * a constant $\mu = 0.99$, the schedule's ceiling from the very first update;
# * Tomasi's schedule with $\mu_{\max} = 0.99$ and blocks of 250 updates, stepped after every update by
#   a `Trainer` callback: 0.5 for the first 250 updates, then 0.75, 0.83, 0.875, 0.9 from update 1,000 and
#   0.92 for the last 30;
# * the same schedule squeezed into this short run, blocks of 25 updates, so that it reaches 0.99 at
#   update 1,225.
#
# Each setting runs from four seeds (the seed picks the initial weights and the batch order), and the
# result is the training error $E(\mathbf{w})$ on all 2,000 images after the last update.

# %%
def momentum_run(seed, momentum=None, every=250, epochs=40):
    """Train tiny_mlp(rng=seed) with SGD(lr=0.1): a constant momentum, or Tomasi's schedule if None.

    Returns (mini-batch losses per update, mu_t per update, E on the training set, validation accuracy).
    """
    net = tiny_mlp(rng=seed)
    optimizer = SGD(net.parameters(), lr=0.1, momentum=0.5 if momentum is None else momentum)
    mus, callbacks = [], [lambda trainer, info: mus.append(optimizer.param_groups[0]["momentum"])]
    if momentum is None:
        schedule = MomentumSchedule(optimizer, mu_max=0.99, every=every)  # mu_0 = 0.5, then after every update:
        callbacks.append(lambda trainer, info: schedule.step())
    trainer = Trainer(net, CrossEntropyLoss(), optimizer, X_train, y_train, batch_size=64, rng=seed,
                      callbacks=callbacks)
    history = trainer.run(epochs=epochs)
    E_final = evaluate(net, CrossEntropyLoss(), X_train, y_train)[0]
    return history.step_values("loss"), np.array(mus), E_final, evaluate(net, CrossEntropyLoss(), X_val, y_val)[1]


momentum_settings = {"constant mu = 0.9": (0.9, None), "constant mu = 0.99": (0.99, None),
                     "Tomasi's schedule to 0.99": (None, 250), "schedule, blocks of 25": (None, 25)}
momentum_runs = {name: [momentum_run(seed, mu, every) for seed in range(4)]
                 for name, (mu, every) in momentum_settings.items()}
E_momentum = {name: np.array([r[2] for r in runs_]) for name, runs_ in momentum_runs.items()}
for name, runs_ in momentum_runs.items():
    print(f"{name:26s} E after 1,280 updates: {np.round(E_momentum[name], 3)}, mean {E_momentum[name].mean():.3f}; "
          f"validation accuracy {np.mean([r[3] for r in runs_]):.1%}")

# %%
with plt.ioff():
    fig, (ax_E, ax_mu) = plt.subplots(1, 2, figsize=(10, 3.4), gridspec_kw={"width_ratios": [2, 1]})
one_epoch = np.ones(32) / 32  # a moving average over one epoch of updates smooths the mini-batch noise
for name, runs_ in momentum_runs.items():
    curves = np.array([np.convolve(r[0], one_epoch, mode="valid") for r in runs_])
    steps_ = np.arange(32, 32 + curves.shape[1])
    line, = ax_E.plot(steps_, curves.mean(axis=0), label=name)
    ax_E.fill_between(steps_, curves.min(axis=0), curves.max(axis=0), color=line.get_color(), alpha=0.2, lw=0)
    ax_mu.plot(np.arange(1, len(runs_[0][1]) + 1), runs_[0][1], color=line.get_color())
ax_E.set_yscale("log"), ax_E.set_xlabel("update"), ax_E.set_ylabel("mini-batch loss (epoch average)")
ax_E.set_title("four seeds: mean and range", fontsize=10), ax_E.legend(fontsize=8)
ax_mu.set_xlabel("update"), ax_mu.set_ylabel(r"$\mu_t$ used"), ax_mu.set_ylim(0.45, 1.0)
fig.tight_layout()
fig

# %%
schedule_mus = momentum_runs["Tomasi's schedule to 0.99"][0][1]
assert schedule_mus[0] == 0.5 and schedule_mus[249] == 0.5 and schedule_mus[250] == 0.75
assert np.isclose(schedule_mus[-1], 11 / 12), "after 1,280 updates the schedule has only reached 0.92"
assert np.all(E_momentum["Tomasi's schedule to 0.99"] < 0.3 * E_momentum["constant mu = 0.99"]), \
    "for every seed, rising to 0.99 beats starting at 0.99"
assert E_momentum["constant mu = 0.9"].mean() < 0.9 * E_momentum["Tomasi's schedule to 0.99"].mean(), \
    "at this length, a well-chosen constant mu reaches a lower training error than the schedule"
val_accuracy = {name: np.mean([r[3] for r in runs_]) for name, runs_ in momentum_runs.items()}
assert abs(val_accuracy["constant mu = 0.9"] - val_accuracy["Tomasi's schedule to 0.99"]) < 0.04
assert val_accuracy["constant mu = 0.99"] < 0.5 < val_accuracy["Tomasi's schedule to 0.99"]
squeezed = momentum_runs["schedule, blocks of 25"][0][1]
assert np.isclose(squeezed[1224], 1 - 1 / 98) and squeezed[1225] == 0.99, "mu_max reached at update 1,225"
assert np.all(E_momentum["schedule, blocks of 25"] > 2 * E_momentum["Tomasi's schedule to 0.99"]), \
    "squeezed, the schedule reaches 0.99 and fails late"
squeezed_curve = np.mean([np.convolve(r[0], one_epoch, mode="valid") for r in momentum_runs["schedule, blocks of 25"]], axis=0)
assert squeezed_curve.argmin() < 600 and squeezed_curve[-1] > 2 * squeezed_curve.min(), "its loss falls, then climbs"

# %% [markdown]
# What the runs show, on every seed: **starting** at $\mu = 0.99$ with this learning rate is a disaster
# (the effective rate $\alpha/(1-\mu)$ is 10, and the network never recovers: its validation accuracy
# stays below 50%), while the schedule, which starts at 0.5 and climbs, trains normally. So the experiment
# supports the shape of the schedule, start low. Tomasi's stated reason, that large momentum pays off late,
# when the gradients are small, does not show at this length. The schedule spends 1,000 of its
# 1,280 updates below 0.9, and a constant $\mu = 0.9$ ends with a lower training error on average (the
# two are level on the validation images). With 250-update blocks, $\mu_t$ reaches 0.99 only after 12,250
# updates: the schedule was made for runs of tens of thousands of updates, not for a 2,000-image toy. Shrink
# the blocks to fit a short run (`every=25`) and the schedule does reach 0.99 within it, and then its
# error climbs late, as the constant 0.99 failed early: the ceiling $\mu_{\max}$ has to suit the learning
# rate, whatever the path to it.

# %% [markdown]
# ## Exercise 3: mini-batch SGD with momentum and the $\mu_t$ schedule, by hand
#
# Now write the whole training loop with Tomasi's momentum, with no optimizer class: the function
# `sgd_momentum(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max, every)` trains `net` in place.
#
# * **Epochs and batches.** At the start of every epoch draw a new order of the $N$ examples with the
#   generator you are given, `rng.permutation(N)` (not a new generator: the run must be reproducible),
#   and walk through it in batches of `batch_size`. When $N$ is not a multiple of the batch size the last
#   batch is smaller, $N \bmod B$ examples, and it gets an update like the others: the loss is the *mean*
#   over the batch's own examples, so its gradient needs no correction.
# * **Gradient.** For each batch: forward, `loss_fn.forward(scores, yb)`, then
#   `net.backward(loss_fn.backward())`. `cnnlab`'s `backward` *overwrites* every `p.grad` with the
#   gradient of this batch's loss (it does not add to it, so there is nothing to zero first): use
#   `p.grad` as it is.
# * **Update.** One velocity per parameter, zeros at the start of the run, kept from step to step and
#   from epoch to epoch. At update number $t = 0, 1, 2, \dots$ (counted over the whole run, not per epoch),
#   for every parameter $\mathbf{w}$ with velocity $\mathbf{v}$,
#
# $$\mathbf{v} \leftarrow \mu_t\,\mathbf{v} - \alpha\,\nabla E_{\text{batch}}(\mathbf{w}), \qquad
#   \mathbf{w} \leftarrow \mathbf{w} + \mathbf{v}, \qquad
#   \mu_t = \min\!\left(\mu_{\max},\; 1 - \frac{1}{2}\,\frac{1}{\lfloor t/\text{every} \rfloor + 1}\right).$$
#
# This is Tomasi's form: $\mathbf{v}$ already holds the learning rate, so $\alpha$ appears once.
# PyTorch (and `cnnlab`'s `SGD`) keeps $\mathbf{b} = -\mathbf{v}/\alpha$ instead,
# $\mathbf{b} \leftarrow \mu_t\mathbf{b} + \nabla E$, $\mathbf{w} \leftarrow \mathbf{w} - \alpha\mathbf{b}$:
# with a constant $\alpha$ the same iteration, up to rounding. You may call `sutskever_momentum(t, mu_max,
# every)` for $\mu_t$ or write the formula. The check runs your function on three tiny networks in float64
# (a smaller last batch, batches of one, one batch larger than the data, `every` of 1 to 3 so that
# $\mu_t$ moves) and compares the weights with `SGD(momentum=...)` driven by `MomentumSchedule` from the
# same start and the same `rng`.

# %% tags=["exercise"]
def sgd_momentum(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max=0.99, every=250):
    """Train `net` in place: mini-batch SGD with Tomasi's momentum and mu_t schedule.

    Inputs:
    - net: a cnnlab Module; every array p.data of net.parameters() is updated.
    - loss_fn: a loss that takes the mean over the batch, e.g. CrossEntropyLoss().
    - X: inputs of shape (N, D); y: integer labels of shape (N,).
    - lr: the learning rate alpha; batch_size: B (the last batch holds the N % B examples left over).
    - epochs: passes over the data; rng: a numpy Generator, one rng.permutation(N) per epoch.
    - mu_max, every: mu_t = min(mu_max, 1 - 1 / (2 * (t // every + 1))), t = 0, 1, ... counting updates.

    For every parameter w (velocity v, zeros at the start, same shape as w) and g = p.grad of the batch:
        v <- mu_t * v - lr * g
        w <- w + v
    Returns nothing.
    """
    ...  # your code here

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "06-sgd-momentum-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def sgd_momentum(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max=0.99, every=250):
    params = net.parameters()
    velocities = [np.zeros_like(p.data) for p in params]
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(X))
        for start in range(0, len(X), batch_size):
            batch = order[start:start + batch_size]
            loss_fn.forward(net(X[batch]), y[batch])
            net.backward(loss_fn.backward())
            mu = sutskever_momentum(t, mu_max, every)
            for p, v in zip(params, velocities):
                v *= mu
                v -= lr * p.grad
                p.data += v
            t += 1

# %% nbgrader={"grade": true, "grade_id": "06-sgd-momentum-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.gradient_descent import check_sgd_momentum

check_sgd_momentum(sgd_momentum)

# %% [markdown]
# ## 8 · When to stop: termination tests
#
# Outside machine learning, Tomasi notes, gradient descent is stopped when it stops making progress:
# when the **step** is small, $\lVert \mathbf{w}_t - \mathbf{w}_{t-1} \rVert$ below a tolerance, or when
# the **decrease** is small, $|E(\mathbf{w}_t) - E(\mathbf{w}_{t-1})|$ below another. `cnnlab.train`
# has both as `small_step` and `small_decrease`. On the bowl:

# %%
point = trajectory(bowl, lambda ps: SGD(ps, lr=0.06), steps=1000)
stop_at = next(k for k in range(1, len(point.values))
               if small_step(point.points[k], point.points[k - 1], 1e-6)
               or small_decrease(point.values[k], point.values[k - 1], 1e-12))
print(f"stopped after {stop_at} steps at distance {np.linalg.norm(point.points[stop_at]):.1e} from the minimum")
assert stop_at < 300 and np.linalg.norm(point.points[stop_at]) < 1e-4

# %% [markdown]
# For a network trained with mini-batches the tests are less useful. The loss the trainer sees at each
# step is measured on a *different* batch, so it jumps around even while $E(\mathbf{w})$ falls steadily;
# a small-decrease test on it fires by chance. Look at the mini-batch run of section 3:

# %%
batch_losses = same_work["mini-batch (B = 16)"].trainer.history.step_values("loss")
jumps = np.abs(np.diff(batch_losses))
E_mini = same_work["mini-batch (B = 16)"].train_loss
print(f"typical change of the mini-batch loss between steps: {np.median(jumps):.3f}; "
      f"E(w) fell on average by {(E_mini[0] - E_mini[-1]) / len(jumps):.4f} per step")
print(f"steps whose loss changed by less than 0.01: {np.mean(jumps < 0.01):.1%}")
assert np.median(jumps) > 10 * (E_mini[0] - E_mini[-1]) / len(jumps), "the noise dwarfs the progress"
assert np.any(jumps < 0.01), "a small-decrease test with tolerance 0.01 would have fired by chance"

# %% [markdown]
# ## Exercise 4 (optional): the termination test
#
# Write `should_stop(w_new, w_old, E_new, E_old, step_tol, loss_tol)`: `True` when the step is small
# (Euclidean norm of `w_new - w_old` below `step_tol`) **or** the change of the error is small (its
# absolute value below `loss_tol`), else `False`.

# %% tags=["exercise"]
def should_stop(w_new, w_old, E_new, E_old, step_tol, loss_tol):
    ...  # your code here

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "06-should-stop-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def should_stop(w_new, w_old, E_new, E_old, step_tol, loss_tol):
    small_step = np.linalg.norm(w_new - w_old) < step_tol
    small_decrease = abs(E_new - E_old) < loss_tol
    return bool(small_step or small_decrease)

# %% nbgrader={"grade": true, "grade_id": "06-should-stop-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.gradient_descent import check_should_stop

check_should_stop(should_stop)

# %% [markdown]
# ## 9 · Early stopping on the validation loss
#
# When training a network, Tomasi recommends another criterion: watch the error on a **validation
# set** and stop when it bottoms out, even though the training error would keep falling. Past that
# point the network is learning the training examples' peculiarities rather than the classes
# (over-fitting), and the weights of the best validation epoch generalise better than the last ones
# (Khan lists early stopping among the regularisers). `EarlyStopping(patience=5)` stops after five
# epochs without a new best validation loss and puts the best weights back.
#
# To see over-fitting within a second we train a wider network (64 hidden units) on only 300 images:

# %%
net = tiny_mlp(hidden=64, rng=0)
stopper = EarlyStopping(patience=5, restore_best=True)
trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1), X_train[:300], y_train[:300],
                  batch_size=16, X_val=X_val, y_val=y_val, rng=1, callbacks=[stopper])
history = trainer.run(epochs=150)
best = int(np.argmin(history.val_loss))
print(history.message)

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
epochs = np.arange(1, len(history.epochs) + 1)
ax.plot(epochs, history.train_loss, ".-", label="training loss (300 images)")
ax.plot(epochs, history.val_loss, ".-", label="validation loss (500 other images)")
ax.axvline(best + 1, color="k", ls=":", label=f"best epoch {best + 1}: weights restored")
ax.set_xlabel("epoch"), ax.set_ylabel("loss")
ax.legend(fontsize=8)
fig.tight_layout()
fig

# %%
val_now, val_accuracy = evaluate(net, CrossEntropyLoss(), X_val, y_val)
assert history.status == "early_stopping" and len(history.epochs) == best + 1 + 5
assert val_now == history.val_loss.min(), "the restored weights are those of the best validation epoch"
assert history.train_loss[-1] < history.train_loss[best], "the training loss kept falling after the best epoch"
assert history.val_loss[-1] > history.val_loss[best]

# %% [markdown]
# Only now, with the training finished and the weights chosen on the validation set, do we look at the
# test images, once:

# %%
X_test, y_test, _ = load_fashion_mnist("test", source="subset")
test_accuracy = np.mean(net(downsample_flat(X_test)).argmax(axis=1) == y_test)
print(f"validation accuracy {val_accuracy:.1%}, test accuracy {test_accuracy:.1%} (chance: 10%)")
assert test_accuracy > 0.6

# %% [markdown]
# ## What to remember
#
# * $\nabla E$ is the mean of the per-example gradients; a mini-batch of $B$ estimates it with a noise
#   that falls like $1/B$.
# * Per unit of work, many small noisy steps beat one exact step; per update, the exact step is best.
#   Mini-batches of a few dozen get most of both.
# * On a quadratic, gradient descent converges exactly when $\alpha < 2/\lambda_{\max}$; real errors
#   behave like very ill-conditioned bowls. Too small a rate is slow, too large a rate zigzags, gets
#   stuck or diverges, and a diverged run is a result to read, not a crash.
# * Momentum accumulates a velocity: faster along shallow directions, a wider stable range
#   ($\alpha\lambda < 2(1+\mu)$), and a larger effective rate $\alpha/(1-\mu)$. Tomasi raises $\mu_t$ in
#   steps during training.
# * On a quadratic with condition number $\kappa$ the best gradient descent shrinks the error by
#   $(\kappa-1)/(\kappa+1)$ per step, the best momentum, $(\alpha^*, \mu^*)$, by $(\sqrt\kappa-1)/(\sqrt\kappa+1)$:
#   about $\sqrt\kappa$ times fewer steps. The rate is the largest spectral radius of the $2\times2$ iteration
#   matrices, one per eigen-direction, and `cnnlab`'s runs land on it.
# * Stop a network by its validation loss and keep the best weights; small-step and small-decrease
#   tests belong to full-batch optimisation.
#
# Lesson 07 races momentum, Nesterov, AdaGrad, AdaDelta, RMSprop and Adam, on a saddle and on a CNN.
