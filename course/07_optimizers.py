# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 07 · Optimizers: momentum, Nesterov, AdaGrad, AdaDelta, RMSprop, Adam
#
# Back-propagation hands the optimizer one thing per step: the gradient of the training error at
# the current weights. What to *do* with it is the optimizer's whole job, and the seven classic
# answers differ in just two ideas:
#
# * **remember past gradients** (momentum, Nesterov): keep a running direction so that consistent
#   slopes add up and back-and-forth ones cancel;
# * **give every weight its own step size** (AdaGrad, AdaDelta, RMSprop, Adam): divide each
#   gradient entry by a running measure of how large that entry's gradients have been.
#
# Adam does both. Each section below writes one method the way Khan et al. (§5.4) write it, shows
# the few lines of `cnnlab.optim` that implement it, and runs it on a 2-D surface where you can see
# every step. Where the source documents and PyTorch write a method differently, the lesson shows that they
# compute the same thing, or how far apart they are. Then the methods race, joined by AdamW (Adam with
# decoupled weight decay, lesson 10): on a saddle, where plain gradient descent stalls, and on a real CNN.
#
# One design choice makes this possible: **a point on a 2-D surface is a `Parameter`** of shape
# `(2,)`, exactly like a CNN's weight arrays, so the race on the surface and the training of the
# network step the very same optimizer objects.

# %%
# %matplotlib widget
import inspect

import matplotlib.pyplot as plt
import numpy as np

import cnnlab.optim.adaptive
import widgets
from cnnlab import Parameter
from cnnlab.data import load_fashion_mnist
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import race_net
from cnnlab.optim import OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSprop
from cnnlab.surfaces import QuadraticBowl, Saddle, trajectory
from widgets.cnn_race_model import race_over_seeds
from widgets.optimizer_race import RaceModel, color
from widgets.surface_paths import surface_paths

# %% [markdown]
# ## The test track: an ill-conditioned bowl
#
# Most sections use the bowl $f(x, y) = \tfrac12 (x^2 + 20\,y^2)$: its curvature is 20 times larger
# across ($y$) than along ($x$). Real error surfaces are like this in many directions at once, and
# it is exactly what makes a single learning rate awkward: a rate small enough for the steep
# direction crawls along the flat one.
#
# `trajectory(surface, make_optimizer, start, steps)` wraps the start point in a `Parameter`, builds
# the optimizer on it, and then does what a training loop does: write the gradient into `.grad`,
# call `step()`, repeat. It returns the points visited and the value of $f$ at each.

# %%
bowl = QuadraticBowl(condition=20.0)
start = (-1.8, 0.6)
print("gradient at the start:", bowl.grad(np.array(start)))
run = trajectory(bowl, lambda params: SGD(params, lr=0.01), start=start, steps=3)
print("first points:\n", run.points)
assert run.points.shape == (4, 2) and np.allclose(run.points[0], start)

# %% [markdown]
# ## 1 · Gradient descent
#
# The baseline moves against the gradient with a fixed learning rate $\eta$:
#
# $$\theta_t = \theta_{t-1} - \eta\, \nabla F(\theta_{t-1}).$$
#
# This is Tomasi's momentum method with $\mu = 0$. In `cnnlab` it is `SGD` without momentum; the
# last line of its `_update` is all there is to it (you will write the rest of that method, its
# Nesterov momentum, in Exercise 2):

# %%
print(inspect.getsource(SGD._update).splitlines()[-1].strip())

# %% [markdown]
# On the bowl the two coordinates do not interact: the gradient is $(x, 20y)$, so one step multiplies
# $x$ by $(1 - \eta)$ and $y$ by $(1 - 20\eta)$. After $k$ steps
#
# $$x_k = (1-\eta)^k x_0, \qquad y_k = (1 - 20\eta)^k y_0 .$$
#
# The run must follow this formula exactly. It also predicts the largest usable rate: once
# $|1 - 20\eta| > 1$, that is $\eta > 2/20 = 0.1$, the steep coordinate overshoots more at every
# step and the run blows up.

# %%
k = np.arange(101)
slow = trajectory(bowl, lambda params: SGD(params, lr=0.01), start=start, steps=100)
zigzag = trajectory(bowl, lambda params: SGD(params, lr=0.09), start=start, steps=100)
too_big = trajectory(bowl, lambda params: SGD(params, lr=0.11), start=start, steps=200)

assert np.allclose(slow.points[:, 0], start[0] * 0.99**k) and np.allclose(slow.points[:, 1], start[1] * 0.8**k)
assert np.allclose(zigzag.points[:, 1], start[1] * (1 - 20 * 0.09) ** k), "y flips sign every step"
assert zigzag.diverged_at is None and too_big.diverged_at is not None
print(f"lr=0.01: f after 100 steps {slow.values[-1]:.3f}; lr=0.09: {zigzag.values[-1]:.2e}; "
      f"lr=0.11: diverged at step {too_big.diverged_at}")

# %%
surface_paths(bowl, {"SGD lr=0.01": slow, "SGD lr=0.09": zigzag}, yscale="log",
              title="Gradient descent: slow along x, or zig-zagging across y")

# %% [markdown]
# With $\eta = 0.01$ the steep direction is handled after a few steps, but the flat one is still far
# from 0 after 100: $x$ has only shrunk by $0.99^{100} \approx 0.37$. With $\eta = 0.09$, close to the
# limit, $y$ bounces from one wall to the other (a factor $-0.8$ per step) and $x$ shrinks by 0.91 per
# step. That is the catch: the steep direction caps the rate at $2/20$, and the cap sets the pace along
# the flat direction. The larger the ratio of the curvatures, the slower gradient descent gets. The
# next two methods ease this by remembering where they were going.

# %% [markdown]
# ## 2 · Momentum, written three ways
#
# Khan's eqs. 5.17–5.18 keep a step $a_t$ that adds the new gradient to a fraction $\gamma$ of the
# previous step (Khan prints the gradient at $\theta_t$; the box at the end of section 3 explains why we
# take it at $\theta_{t-1}$, the point the step starts from):
#
# $$a_t = \eta\, \nabla F(\theta_{t-1}) + \gamma\, a_{t-1}, \qquad \theta_t = \theta_{t-1} - a_t .$$
#
# Tomasi writes the same method with a *velocity* that already points downhill,
# $v_{t} = \mu v_{t-1} - \alpha \nabla E(w_{t-1})$, $w_t = w_{t-1} + v_t$. PyTorch, and `cnnlab`,
# keep a buffer $b$ of summed gradients without the learning rate:
#
# $$b_t = \mu\, b_{t-1} + \nabla F(\theta_{t-1}), \qquad \theta_t = \theta_{t-1} - \eta\, b_t .$$
#
# With a constant learning rate the three are one iteration: $a = \eta b$ and $v = -a$. `SGD(momentum=0.9)`
# implements the buffer form. Below, the source documents' two forms are written out as plain loops and
# compared with it:

# %%
lr, mu, steps = 0.01, 0.9, 100
pytorch_form = trajectory(bowl, lambda params: SGD(params, lr=lr, momentum=mu), start=start, steps=steps)

theta, a = np.array(start), np.zeros(2)                  # Khan, eqs. 5.17-5.18
khan = [theta]
for _ in range(steps):
    a = lr * bowl.grad(theta) + mu * a
    theta = theta - a
    khan.append(theta)

w, v = np.array(start), np.zeros(2)                      # Tomasi, velocity form
tomasi = [w]
for _ in range(steps):
    v = mu * v - lr * bowl.grad(w)
    w = w + v
    tomasi.append(w)

assert np.allclose(pytorch_form.points, khan, rtol=1e-12, atol=1e-12)
assert np.allclose(pytorch_form.points, tomasi, rtol=1e-12, atol=1e-12)
print("the three forms agree to", np.abs(pytorch_form.points - np.array(khan)).max())

# %% [markdown]
# They stop agreeing when the learning rate changes during training (a schedule). Tomasi's velocity
# keeps the old rate in the steps already taken; PyTorch's buffer holds bare gradients, so the new
# rate rescales the whole remembered velocity at once. Halve the rate after 20 steps and watch:

# %%
def tomasi_momentum(lrs, w):
    v = np.zeros(2)
    for alpha in lrs:
        v = mu * v - alpha * bowl.grad(w)
        w = w + v
    return w


point = Parameter(np.array(start))
optimizer = SGD([point], lr=0.01, momentum=mu)
lrs = [0.01] * 20 + [0.005] * 20
for t, rate in enumerate(lrs):
    optimizer.param_groups[0]["lr"] = rate
    point.grad[...] = bowl.grad(point.data)
    optimizer.step()
    if t == 19:
        assert np.allclose(point.data, tomasi_momentum(lrs[:20], np.array(start))), "same while the rate is fixed"
gap = np.abs(point.data - tomasi_momentum(lrs, np.array(start))).max()
print(f"after the rate was halved the two forms are {gap:.3g} apart")
assert gap > 1e-3

# %% [markdown]
# Back to a constant rate. With the same $\eta = 0.01$ that crawled before, momentum reaches the
# bottom: along the flat direction the gradients keep the same sign, so the steps add up to about
# $\eta / (1 - \mu) = 10\,\eta$; across the valley they alternate and largely cancel.

# %%
plain = slow
momentum = pytorch_form
print(f"f after {steps} steps: plain {plain.values[-1]:.3g}, momentum {momentum.values[-1]:.3g}")
assert momentum.values[-1] < plain.values[-1] / 1000
surface_paths(bowl, {"SGD": plain, "Momentum μ=0.9": momentum}, yscale="log",
              title="The same learning rate, with and without momentum")

# %% [markdown]
# ## 3 · Nesterov momentum
#
# Momentum overshoots: the ball runs past the bottom of the valley before it turns. Nesterov's
# variant (Khan's eqs. 5.19–5.20) takes the gradient not where the point *is* but where the
# momentum is about to carry it, the **look-ahead point** $\theta_{t-1} - \gamma a_{t-1}$ (Khan prints
# $\theta_t - \gamma a_{t-1}$: see the box at the end of this section):
#
# $$a_t = \eta\, \nabla F(\theta_{t-1} - \gamma a_{t-1}) + \gamma\, a_{t-1}, \qquad
#   \theta_t = \theta_{t-1} - a_t .$$
#
# PyTorch (and `cnnlab`'s `SGD(nesterov=True)`) formulate it without a second gradient
# point: $b_t = \mu b_{t-1} + g_t$, $\theta_t = \theta_{t-1} - \eta\,(g_t + \mu b_t)$. Why is this
# the same method? Give the look-ahead point a name, $\varphi_t = \theta_t - \gamma a_t$. Then
#
# $$\varphi_t = \theta_{t-1} - a_t - \gamma a_t = \varphi_{t-1} + \gamma a_{t-1} - a_t - \gamma a_t
#   = \varphi_{t-1} - \eta\, \nabla F(\varphi_{t-1}) - \gamma a_t ,$$
#
# using $a_t - \gamma a_{t-1} = \eta \nabla F(\varphi_{t-1})$ from eq. 5.20. With $a = \eta b$ this
# is PyTorch's update for the variable $\varphi$, and the gradient is taken where that variable is.
# So PyTorch's parameter **is** Khan's look-ahead point; both start at $\theta_0$ because $a_0 = 0$.

# %% [markdown]
# ## Exercise 1: Nesterov in Khan's form
#
# Complete the loop of Khan's eqs. 5.19–5.20: from `theta0` with $a_0 = 0$, take `steps` steps and
# return two arrays of shape `(steps + 1, d)`: every $\theta_t$ and every $a_t$, starting with
# $\theta_0$ and $a_0$. `grad(theta)` returns $\nabla F$ at a point.

# %% tags=["exercise"]
def nesterov_khan(grad, theta0, lr, gamma, steps):
    """Khan's Nesterov iteration (eqs. 5.19-5.20). Returns thetas and velocities a, both (steps + 1, d)."""
    theta = np.array(theta0, dtype=float)
    a = np.zeros_like(theta)
    thetas, velocities = [theta], [a]
    for _ in range(steps):
        a = ...      # eq. 5.20
        theta = ...  # eq. 5.19
        thetas.append(theta)
        velocities.append(a)
    return np.array(thetas), np.array(velocities)


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "07-nesterov-khan-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def nesterov_khan(grad, theta0, lr, gamma, steps):
    """Khan's Nesterov iteration (eqs. 5.19-5.20). Returns thetas and velocities a, both (steps + 1, d)."""
    theta = np.array(theta0, dtype=float)
    a = np.zeros_like(theta)
    thetas, velocities = [theta], [a]
    for _ in range(steps):
        a = lr * grad(theta - gamma * a) + gamma * a   # the gradient at the look-ahead point
        theta = theta - a
        thetas.append(theta)
        velocities.append(a)
    return np.array(thetas), np.array(velocities)


# %% nbgrader={"grade": true, "grade_id": "07-nesterov-khan-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.optimizers import check_nesterov_khan

check_nesterov_khan(nesterov_khan)

# %% [markdown]
# Now the change of variable, numerically: Khan's look-ahead points $\theta_t - \gamma a_t$ must be
# exactly the points `SGD(nesterov=True)` visits.

# %%
thetas, velocities = nesterov_khan(bowl.grad, start, lr, mu, steps)
nesterov = trajectory(bowl, lambda params: SGD(params, lr=lr, momentum=mu, nesterov=True), start=start, steps=steps)
assert np.allclose(thetas - mu * velocities, nesterov.points, rtol=1e-12, atol=1e-12)
assert not np.allclose(thetas, nesterov.points), "theta itself is a different sequence"
print("look-ahead points = SGD(nesterov=True) to", np.abs(thetas - mu * velocities - nesterov.points).max())

# %% [markdown]
# What the look-ahead buys: the gradient at the look-ahead point already feels the far wall of the
# valley, so the turn starts earlier. Along $x$, which starts at $-1.8$ and should stop at 0,
# plain momentum overshoots further to the right than Nesterov does, and ends higher.

# %%
overshoot = {"Momentum": momentum.points[:, 0].max(), "Nesterov": nesterov.points[:, 0].max()}
print("largest x reached (the target is 0):", {name: round(float(x), 3) for name, x in overshoot.items()})
assert overshoot["Nesterov"] < overshoot["Momentum"] and nesterov.values[-1] < momentum.values[-1]
surface_paths(bowl, {"Momentum": momentum, "Nesterov": nesterov}, yscale="log",
              title="Nesterov turns earlier: less overshoot")


# %% [markdown]
# > **The source says:** Khan's eq. 5.18 is $a_t = \eta \nabla F(\theta_t) + \gamma a_{t-1}$ and eq. 5.20 is
# > $a_t = \eta \nabla F(\theta_t - \gamma a_{t-1}) + \gamma a_{t-1}$, each with $\theta_t = \theta_{t-1} - a_t$:
# > the gradient is taken at (or from) the point $\theta_t$ that the step is computing.
# >
# > **We do:** $\theta_{t-1}$ in both places, the point the step starts from: the iterations of
# > sections 2 and 3, and `SGD(momentum=μ)` and `SGD(momentum=μ, nesterov=True)`.
# >
# > **Why:** read literally, every step is an equation to solve for $\theta_t$ (an *implicit* update):
# > easy on a quadratic, out of reach for a network, whose gradient is known only at weights where a
# > forward and a backward pass have run. The explicit reading is the standard method, PyTorch's too.
#
# On the bowl, $\nabla F(\theta) = c \circ \theta$ with $c = (1, 20)$, so the literal equations can be
# solved in closed form: $\theta_t = (\theta_{t-1} + \eta c \circ s - \gamma a_{t-1}) / (1 + \eta c)$, with
# the shift $s = 0$ (eq. 5.18) or $s = \gamma a_{t-1}$ (eq. 5.20). Ten steps of each reading:

# %%
curv, k = np.array([1.0, bowl.condition]), 10


def khan_momentum(nesterov, literal):
    """Khan's eqs. 5.17-5.18 (or 5.19-5.20 if nesterov) for k steps from start, a_0 = 0; returns theta_k, a_k."""
    theta, a = np.array(start), np.zeros(2)
    for _ in range(k):
        shift = mu * a if nesterov else 0.0
        if literal:  # gradient at the new point: solve for it
            new = (theta + lr * curv * shift - mu * a) / (1 + lr * curv)
            assert np.allclose(theta - new, lr * bowl.grad(new - shift) + mu * a, rtol=1e-12, atol=1e-13)
        else:
            new = theta - (lr * bowl.grad(theta - shift) + mu * a)
        theta, a = new, theta - new
    return theta, a


sgd = trajectory(bowl, lambda params: SGD(params, lr=lr, momentum=mu), start=start, steps=k).points[-1]
nag = trajectory(bowl, lambda params: SGD(params, lr=lr, momentum=mu, nesterov=True), start=start, steps=k).points[-1]
(theta_m, _), (theta_n, a_n) = khan_momentum(False, False), khan_momentum(True, False)
literal_m, literal_n = khan_momentum(False, True)[0], khan_momentum(True, True)[0]
assert np.allclose(theta_m, sgd, rtol=1e-12, atol=1e-14), "explicit 5.18 = SGD(momentum)"
assert np.allclose(theta_n - mu * a_n, nag, rtol=1e-12, atol=1e-14), "explicit 5.20: look-ahead = SGD(nesterov)"
gaps = np.abs(literal_m - theta_m).max(), np.abs(literal_n - theta_n).max()
print(f"after {k} steps, literal minus explicit: {gaps[0]:.3f} (eq. 5.18), {gaps[1]:.3f} (eq. 5.20)")
assert min(gaps) > 0.01, "the literal reading is another method"


# %% [markdown]
# ## Exercise 2: Nesterov momentum as an optimizer
#
# A training loop hands the optimizer one gradient per step, taken where the parameter is; it cannot
# ask for a gradient at a second point. That is why `cnnlab`, like PyTorch, keeps the look-ahead point
# $\varphi$ as the parameter and steps with
#
# $$b_t = \mu\, b_{t-1} + g_t, \qquad \theta_t = \theta_{t-1} - \eta\,(g_t + \mu\, b_t), \qquad b_0 = 0 .$$
#
# Write it as a real optimizer: a subclass of `cnnlab.optim.Optimizer`. The base class does the
# bookkeeping: its `step()` loops over the parameter groups, adds the `weight_decay` term $\lambda\theta$
# to the gradient (an L2 penalty: for plain SGD the same as decaying the weights, for Adam not; lesson
# 10's `AdamW` section measures the difference), counts the steps, and calls `_update(p, g, group, state)` once per parameter. You write `_update`:
# read $\mu$ and $\eta$ from `group`, keep $b$ in `state["momentum_buffer"]` (the name `cnnlab` uses,
# which the widgets read; `state` is this parameter's own dict, so every parameter has its own
# buffer), and change `p.data` in place. The check steps your class beside `SGD(nesterov=True)` on a
# scalar, a $(3, 5)$ matrix, a parameter whose gradient is zero and one with `weight_decay` in a second
# parameter group.

# %% tags=["exercise"]
class MyNesterovSGD(Optimizer):
    """SGD with Nesterov momentum in PyTorch's form: b <- mu b + g, theta <- theta - lr (g + mu b).

    State per parameter: "momentum_buffer" (b, the parameter's shape; b = 0 before the first step).
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _update(self, p, g, group, state):
        """One step for one parameter.

        Inputs:
        - p: the Parameter; change p.data (any shape) in place.
        - g: its gradient, of p.data's shape (step() has already added weight_decay * p.data).
        - group: the hyper-parameters of p's group: group["lr"], group["momentum"].
        - state: p's own dict, kept between steps (at the first step it holds only state["step"] = 1).
        """
        ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "07-nesterov-optimizer-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
class MyNesterovSGD(Optimizer):
    """SGD with Nesterov momentum in PyTorch's form: b <- mu b + g, theta <- theta - lr (g + mu b).

    State per parameter: "momentum_buffer" (b, the parameter's shape; b = 0 before the first step).
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    def _update(self, p, g, group, state):
        mu = group["momentum"]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = np.zeros_like(p.data)
        b = state["momentum_buffer"]
        b *= mu
        b += g                                  # the buffer, with the new gradient
        p.data -= group["lr"] * (g + mu * b)    # the gradient plus the look-ahead term, new b


# %% nbgrader={"grade": true, "grade_id": "07-nesterov-optimizer-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.optimizers import check_nesterov_optimizer

check_nesterov_optimizer(MyNesterovSGD)

# %% [markdown]
# Your class is an optimizer like any other: `trajectory` runs it on the bowl, and it visits exactly
# the points of `SGD(nesterov=True)`. Here is `cnnlab`'s `_update`, which does momentum and Nesterov
# in one method:

# %%
yours = trajectory(bowl, lambda params: MyNesterovSGD(params, lr=lr, momentum=mu), start=start, steps=steps)
assert np.allclose(yours.points, nesterov.points, rtol=1e-12, atol=1e-12)
print("your Nesterov and SGD(nesterov=True) agree to", np.abs(yours.points - nesterov.points).max())
print(inspect.getsource(SGD._update))

# %% [markdown]
# ## 4 · AdaGrad: a learning rate per weight
#
# The adaptive methods attack the bowl's problem head on: give each coordinate its own rate. AdaGrad
# (Khan's eq. 5.21) divides the rate of weight $i$ by the root of the sum of all its squared
# gradients so far, with a tiny $\epsilon$ against division by zero:
#
# $$\theta^i_t = \theta^i_{t-1} - \frac{\eta}{\sqrt{\sum_{\tau=1}^{t} (\delta^i_\tau)^2 + \epsilon}}\; \delta^i_t .$$
#
# The implementation keeps that sum as the state `"sum"` and records the factor in front of
# $\delta$ as `"effective_lr"`. The denominator is computed by a helper shared by AdaGrad, RMSprop
# and Adam, which places $\epsilon$ as the source documents do, inside the root (section 8 explains the
# `inside` flag):

# %%
print(inspect.getsource(Adagrad._update))
print(inspect.getsource(cnnlab.optim.adaptive._denominator))

# %% [markdown]
# At the first step the sum is just $\delta_1^2$, so every coordinate moves by
# $\eta\,\delta/\sqrt{\delta^2 + \epsilon} \approx \eta\,\mathrm{sign}(\delta)$: the same distance
# whatever the size of its gradient. On the bowl the gradient at the start is $(-1.8, 12)$, a
# factor of almost 7 apart, and yet both coordinates move by $\eta$:

# %%
adagrad = trajectory(bowl, lambda params: Adagrad(params, lr=0.1), start=start, steps=steps)
first_step = adagrad.points[1] - adagrad.points[0]
print("first step:", first_step)
assert np.allclose(np.abs(first_step), 0.1, rtol=1e-8)
surface_paths(bowl, {"SGD lr=0.01": plain, "AdaGrad lr=0.1": adagrad}, yscale="log",
              title="AdaGrad: both coordinates move at the same pace")

# %% [markdown]
# The price is in the sum: it only grows. With a constant gradient $g$, after $t$ steps it is
# $t g^2$, and the effective rate $\eta / \sqrt{t g^2 + \epsilon}$ shrinks like $1/\sqrt t$ whether or
# not the minimum is near (Khan calls it the vanishing learning rate).
#
# ## Exercise 3 (optional): AdaGrad's effective learning rate
#
# Write `adagrad_effective_lr(lr, g, t, eps)`: the factor AdaGrad multiplies the gradient by at step
# `t` when every gradient so far was `g` (an array, one entry per weight).

# %% tags=["exercise"]
def adagrad_effective_lr(lr, g, t, eps):
    """AdaGrad's factor lr / sqrt(sum of squared gradients + eps) after t equal gradients g (eq. 5.21)."""
    return ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "07-adagrad-effective-lr-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def adagrad_effective_lr(lr, g, t, eps):
    """AdaGrad's factor lr / sqrt(sum of squared gradients + eps) after t equal gradients g (eq. 5.21)."""
    return lr / np.sqrt(t * np.square(g) + eps)


# %% nbgrader={"grade": true, "grade_id": "07-adagrad-effective-lr-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.optimizers import check_adagrad_effective_lr

check_adagrad_effective_lr(adagrad_effective_lr)

# %% [markdown]
# ## 5 · AdaDelta, in both of Khan's forms
#
# AdaDelta replaces AdaGrad's ever-growing sum by a sum over recent gradients only, kept in
# practice as an exponentially decaying average (Khan's eq. 5.23):
#
# $$E[\delta^2]_t = \gamma\, E[\delta^2]_{t-1} + (1-\gamma)\, \delta_t^2 .$$
#
# Khan then gives two update rules. The first keeps a learning rate (eqs. 5.24–5.25):
# $\theta_t = \theta_{t-1} - \eta\, \delta_t / \sqrt{E[\delta^2]_t + \epsilon}$. The second is
# Zeiler's: replace $\eta$ by a running root-mean-square of the *steps* themselves (eq. 5.26),
#
# $$\theta_t = \theta_{t-1} - \frac{\sqrt{E[(\Delta\theta)^2]_{t-1} + \epsilon}}{\sqrt{E[\delta^2]_t + \epsilon}}\; \delta_t ,$$
#
# so that the step is measured in the units of $\theta$ and needs no learning rate at all. `cnnlab`
# implements both: `Adadelta(form="eta")` and the default `form="unit_corrected"` (with `lr=1`
# exactly eq. 5.26; PyTorch's `Adadelta` is this form too).

# %%
print(inspect.getsource(Adadelta._update))

# %% [markdown]
# Look at the first form again: it is word for word RMSprop's update (section 6, eqs. 5.27–5.28),
# with AdaDelta's $\rho$ in the place of RMSprop's decay. The two classes must trace the same path:

# %%
eta_form = trajectory(bowl, lambda params: Adadelta(params, lr=0.05, rho=0.9, eps=1e-6, form="eta"), steps=steps)
rmsprop_same = trajectory(bowl, lambda params: RMSprop(params, lr=0.05, alpha=0.9, eps=1e-6), steps=steps)
assert np.array_equal(eta_form.points, rmsprop_same.points)
print("AdaDelta's eta form and RMSprop: identical paths over", steps, "steps")

# %% [markdown]
# The unit-corrected form has a cold start. Before the first step the average of squared steps is 0,
# so the numerator is just $\sqrt\epsilon = 10^{-3}$ and the first step of each coordinate is
# $\sqrt{\epsilon}\,\delta / \sqrt{(1-\rho)\,\delta^2 + \epsilon} \approx 10^{-3}/\sqrt{0.1} \approx 0.003$,
# whatever the gradient. After that the numerator is the root of the average of the method's *own*
# past steps: small steps keep the next ones small. With a steady gradient the average of squared
# steps grows by only about $(1-\rho)\,\epsilon$ per step, so the steps lengthen very slowly.

# %%
zeiler = trajectory(bowl, lambda params: Adadelta(params), start=start, steps=300)
g0 = bowl.grad(np.array(start))
by_hand = np.sqrt(1e-6) / np.sqrt(0.1 * g0**2 + 1e-6) * g0
assert np.allclose(zeiler.points[0] - zeiler.points[1], by_hand, rtol=1e-9)
lengths = np.linalg.norm(np.diff(zeiler.points, axis=0), axis=1)
assert np.all(np.diff(lengths[:10]) > 0), "the steps lengthen at first, slowly"
assert lengths.max() < 0.01, "but stay at the scale of sqrt(eps) on this bowl"
print(f"step lengths: first {lengths[0]:.4f}, 10th {lengths[9]:.4f}; f after 300 steps {zeiler.values[-1]:.3f}")

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogy(np.arange(1, 301), lengths, color=color("AdaDelta"), label="AdaDelta (eq. 5.26, lr = 1)")
ax.semilogy(np.arange(1, 101), np.linalg.norm(np.diff(adagrad.points, axis=0), axis=1),
            color=color("AdaGrad"), label="AdaGrad (lr = 0.1)")
ax.set_xlabel("step"), ax.set_ylabel("step length ‖Δθ‖"), ax.legend(fontsize=8)
ax.set_title("Zeiler's AdaDelta: steps at the scale of √ε", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# "No learning rate needed" therefore comes with a caveat: a rule whose first steps are fixed at
# about $\sqrt\epsilon$ can be very slow on a problem whose weights need to move by whole units.
# You will see it again in the race on the CNN, where AdaDelta does best with `lr` well above 1.

# %% [markdown]
# ## 6 · RMSprop
#
# RMSprop (Khan's eqs. 5.27–5.28; PyTorch calls the decay $\alpha$, Khan calls it $\gamma$) divides
# by the root of a decaying average of squared gradients:
#
# $$E[\delta^2]_t = \gamma\, E[\delta^2]_{t-1} + (1 - \gamma)\, \delta_t^2, \qquad
#   \theta_t = \theta_{t-1} - \frac{\eta}{\sqrt{E[\delta^2]_t + \epsilon}}\, \delta_t .$$

# %%
print(inspect.getsource(RMSprop._update))

# %% [markdown]
# The difference from AdaGrad is what happens over time. Feed both a constant gradient $g = 0.5$ for
# 200 steps: AdaGrad's factor is $\eta/\sqrt{t g^2 + \epsilon}$ and keeps falling; RMSprop's is
# $\eta/\sqrt{(1-\gamma^t)\,g^2 + \epsilon}$ and settles at $\eta/|g|$ (here with $\gamma = 0.9$, so that
# it settles within a few dozen steps; PyTorch's default, which the races use, is $\alpha = 0.99$).
# Both formulas must match what the optimizers report through `effective_lr`:

# %%
def effective_lrs(make_optimizer, g=0.5, steps=200):
    weight = Parameter(np.zeros(1))
    optimizer = make_optimizer([weight])
    rates = []
    for _ in range(steps):
        weight.grad[...] = g
        optimizer.step()
        rates.append(optimizer.effective_lr(weight)[0])
    return np.array(rates)


t = np.arange(1, 201)
adagrad_rates = effective_lrs(lambda ps: Adagrad(ps, lr=0.01))
rmsprop_rates = effective_lrs(lambda ps: RMSprop(ps, lr=0.01, alpha=0.9))
assert np.allclose(adagrad_rates, 0.01 / np.sqrt(t * 0.25 + 1e-10))
assert np.allclose(rmsprop_rates, 0.01 / np.sqrt((1 - 0.9**t) * 0.25 + 1e-8))
assert np.allclose(adagrad_rates, adagrad_effective_lr(0.01, 0.5, t, 1e-10)), "your exercise 3 agrees"
print(f"after 200 steps: AdaGrad {adagrad_rates[-1]:.2e}, RMSprop {rmsprop_rates[-1]:.2e} "
      f"(ratio {adagrad_rates[-1] / rmsprop_rates[-1]:.3f} = 1/sqrt(200))")

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6, 3))
ax.loglog(t, adagrad_rates, color=color("AdaGrad"), label="AdaGrad: η / sqrt(t g² + ε)")
ax.loglog(t, rmsprop_rates, color=color("RMSprop"), label="RMSprop: η / sqrt((1 − γᵗ) g² + ε)")
ax.set_xlabel("step t"), ax.set_ylabel("effective learning rate"), ax.legend(fontsize=8)
ax.set_title("Constant gradient g = 0.5: AdaGrad's rate vanishes", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# ### Khan's eq. 5.22: AdaGrad over a window
#
# Between AdaGrad's sum over *all* past gradients and the decaying averages, Khan writes one more rule,
# the idea AdaDelta starts from: sum only the last $k$ squared gradients,
#
# $$\theta^i_t = \theta^i_{t-1} - \frac{\eta}{\sqrt{\sum_{\tau=t-k+1}^{t} (\delta^i_\tau)^2 + \epsilon}}\; \delta^i_t . \qquad (5.22)$$
#
# Khan sets it aside because it has to store $k$ past gradients per weight, and `cnnlab` does not ship it
# either (an optimizer's state arrays there have the shape of their parameter, which checkpoints rely
# on). It takes a few lines in the lesson: AdaGrad with a different `_update`, which keeps the last $k$
# squares in a `deque` that drops the oldest by itself.

# %%
from collections import deque


class WindowedAdagrad(Adagrad):
    """Khan's eq. 5.22: theta <- theta - lr / sqrt(sum of the last `window` squared gradients + eps) * g.

    State per parameter: "recent" (a deque of at most `window` arrays g * g) and "effective_lr".
    """

    def __init__(self, params, lr=0.01, window=10, eps=1e-10):
        self.window = window
        super().__init__(params, lr=lr, eps=eps)

    def _update(self, p, g, group, state):
        recent = state.setdefault("recent", deque(maxlen=self.window))
        recent.append(g * g)  # the square from `window` steps ago falls out
        state["effective_lr"] = group["lr"] / np.sqrt(sum(recent) + group["eps"])
        p.data -= state["effective_lr"] * g


# %% [markdown]
# Until the window is full the sum is AdaGrad's sum, added up in the same order, so for the first $k$
# steps the two are the same optimizer, bit for bit. The difference shows when the gradients change
# scale. Feed one weight a gradient of 1 for 100 steps, then 0.01 for 200 more (a weight whose slope
# flattens out, near a minimum or on a plateau), and record the factor in front of $\delta$ for AdaGrad,
# the window of $k = 20$ and RMSprop ($\gamma = 0.9$), all with $\eta = 0.01$:

# %%
def rates_for(make_optimizer, gradients):
    """The effective learning rate after each step of one weight that receives `gradients` in turn."""
    weight = Parameter(np.zeros(1))
    optimizer = make_optimizer([weight])
    rates = []
    for g in gradients:
        weight.grad[...] = g
        optimizer.step()
        rates.append(optimizer.effective_lr(weight)[0])
    return np.array(rates)


k = 20
gradients = np.r_[np.ones(100), np.full(200, 0.01)]
drop_rates = {"AdaGrad": rates_for(lambda ps: Adagrad(ps, lr=0.01), gradients),
              f"window k = {k} (eq. 5.22)": rates_for(lambda ps: WindowedAdagrad(ps, lr=0.01, window=k), gradients),
              "RMSprop": rates_for(lambda ps: RMSprop(ps, lr=0.01, alpha=0.9), gradients)}
for name, rates in drop_rates.items():
    print(f"{name:22s} effective rate at step 100: {rates[99]:.4f}, step 120: {rates[119]:.4f}, "
          f"step 300: {rates[-1]:.4f}")

# %% [markdown]
# The same three on the bowl, $\eta = 0.1$ and a window of $k = 10$, from the usual start: the
# effective rate of the flat coordinate $x$, step by step, and the value of $f$.

# %%
def bowl_rates(make_optimizer, steps=100):
    """Effective learning rates (steps, 2) along a run on the bowl from `start`."""
    point = Parameter(np.array(start, dtype=float))
    optimizer = make_optimizer([point])
    rates = []
    for _ in range(steps):
        point.grad[...] = bowl.grad(point.data)
        optimizer.step()
        rates.append(optimizer.effective_lr(point).copy())
    return np.array(rates)


bowl_makers = {"AdaGrad": lambda ps: Adagrad(ps, lr=0.1),
               "window k = 10 (eq. 5.22)": lambda ps: WindowedAdagrad(ps, lr=0.1, window=10),
               "RMSprop": lambda ps: RMSprop(ps, lr=0.1, alpha=0.9)}
bowl_runs = {name: trajectory(bowl, make, start=start, steps=100) for name, make in bowl_makers.items()}
bowl_rate = {name: bowl_rates(make) for name, make in bowl_makers.items()}
for name, run_ in bowl_runs.items():
    print(f"{name:24s} lowest f {run_.values.min():.1e} (step {run_.values.argmin()}), after 100 steps "
          f"{run_.values[-1]:.1e}; effective rate of x: "
          f"step 10 {bowl_rate[name][9, 0]:.3f}, step 100 {bowl_rate[name][-1, 0]:.3f}")

# %%
with plt.ioff():
    fig, (ax_drop, ax_rate, ax_f) = plt.subplots(1, 3, figsize=(12, 3.3))
styles = {"AdaGrad": dict(color=color("AdaGrad")), "RMSprop": dict(color=color("RMSprop"))}
for name, rates in drop_rates.items():
    ax_drop.semilogy(np.arange(1, 301), rates, label=name, **styles.get(name, dict(color="k", ls="--")))
ax_drop.axvline(100, color="0.8", lw=0.8)
ax_drop.set_title("gradient 1, then 0.01 from step 101", fontsize=10)
for name in bowl_runs:
    style = styles.get(name, dict(color="k", ls="--"))
    ax_rate.semilogy(np.arange(1, 101), bowl_rate[name][:, 0], label=name, **style)
    ax_f.semilogy(np.arange(101), np.maximum(bowl_runs[name].values, 1e-20), label=name, **style)
ax_rate.set_title("the bowl: effective rate of x", fontsize=10), ax_f.set_title("the bowl: f(θ)", fontsize=10)
for ax in (ax_drop, ax_rate, ax_f):
    ax.set_xlabel("step")
ax_drop.set_ylabel("effective learning rate")
ax_drop.legend(fontsize=8, loc="upper left"), ax_f.legend(fontsize=8, loc="lower left")
fig.tight_layout()
fig

# %%
adagrad_d, window_d, rmsprop_d = drop_rates.values()
window_sums = np.convolve(gradients**2, np.ones(k))[:len(gradients)]  # sum of the last k squares at each step
assert np.allclose(window_d, 0.01 / np.sqrt(window_sums + 1e-10), rtol=1e-12), "eq. 5.22, step by step"
assert np.array_equal(window_d[:k], adagrad_d[:k]), "a window not yet full is AdaGrad, bit for bit"
assert np.all(np.diff(adagrad_d) <= 0), "AdaGrad's rate never rises: its sum only grows"
assert np.isclose(window_d[100 + k - 1], 0.01 / np.sqrt(k * 0.01**2 + 1e-10), rtol=1e-12), "recovered k steps after the drop"
assert window_d[100 + k - 1] > 100 * adagrad_d[100 + k - 1] and rmsprop_d[100 + k - 1] < window_d[100 + k - 1] / 5
assert np.isclose(rmsprop_d[-1], 0.01 / 0.01, rtol=1e-3), "RMSprop ends at eta / |g| (an average) ..."
assert np.isclose(rmsprop_d[-1] / window_d[-1], np.sqrt(k), rtol=1e-3), "... the window at eta / (sqrt(k) |g|) (a sum)"
adagrad_b, window_b, rmsprop_b = bowl_runs.values()
assert np.array_equal(window_b.points[:11], adagrad_b.points[:11]), "on the bowl, too: the first 10 steps are AdaGrad's"
assert np.all(np.diff(bowl_rate["AdaGrad"], axis=0) <= 0)
assert bowl_rate["window k = 10 (eq. 5.22)"][-1, 0] > 10 * bowl_rate["window k = 10 (eq. 5.22)"][:, 0].min()
assert adagrad_b.values.min() > 0.05, "AdaGrad: still far from the minimum after 100 steps"
for run_ in (window_b, rmsprop_b):
    lowest = run_.values.argmin()
    assert run_.values[lowest] < 1e-12 and run_.values[lowest:].max() > 1e-2, "a dive to the minimum, then a jump away"

# %% [markdown]
# AdaGrad remembers the large gradients of the first 100 steps for ever: once the slope flattens its
# rate stays at $\eta/10$, a hundred times too small for the new gradients. The window forgets them in
# exactly $k$ steps and then sits at $\eta/(\sqrt{k}\,|\delta|)$. RMSprop forgets gradually, at the pace of
# $\gamma^t$, and ends higher, at $\eta/|\delta|$: its $E[\delta^2]$ is a weighted *mean* of the squares,
# the window's a *sum* of $k$ of them, so at a steady gradient the window's rate is $\sqrt{k}$ times
# smaller. The two are not the same rule with different memories.
#
# On the bowl the gradients shrink as the point closes in. AdaGrad's rate only falls, and after 100 steps
# it is still at $f \approx 0.08$. The window's rate rises as the gradients shrink, and so does RMSprop's:
# both dive to within $10^{-12}$ of the minimum long before AdaGrad gets close. But a rate that grows as
# the gradient vanishes also makes the next step large: $f$ jumps back up to $10^{-2}$ or more, and the
# dive starts over. Forgetting the past cures AdaGrad's vanishing rate and brings the opposite problem:
# near a minimum, nothing holds the rate down.

# %% [markdown]
# ## 7 · Adam
#
# Adam (Khan's eqs. 5.29–5.33) combines the two ideas: a decaying average of the gradients (the
# momentum part) divided by the root of a decaying average of their squares (the RMSprop part),
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,\delta_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2)\,\delta_t^2 ,$$
#
# both started at zero. Started at zero, both are too small at first, so Adam divides each by the
# weight its terms actually carry so far (eqs. 5.31–5.32) before stepping (eq. 5.33):
#
# $$\hat m_t = \frac{m_t}{1-\beta_1^t}, \qquad \hat v_t = \frac{v_t}{1-\beta_2^t}, \qquad
#   \theta_t = \theta_{t-1} - \frac{\eta}{\sqrt{\hat v_t + \epsilon}}\, \hat m_t .$$
#
# Khan uses $\gamma_1, \gamma_2$ for the decays; PyTorch's `betas=(0.9, 0.999)` are the values Khan
# quotes as good defaults.

# %% [markdown]
# ## Exercise 4: Adam as an optimizer
#
# Write Adam as a subclass of `Optimizer`, as in Exercise 2: `_update(p, g, group, state)` does one
# step of eqs. 5.29–5.33 for one parameter. `t` is the number of steps this parameter has taken,
# this one included (1 at the first step); `step()` counts it for you in `state["step"]`. Keep $m$
# and $v$ in `state["exp_avg"]` and `state["exp_avg_sq"]`, the names `cnnlab.optim.Adam` uses. The
# check steps your class beside `cnnlab.optim.Adam` for 12 steps on the same awkward parameters as
# before, with a large `eps` so that where you put it shows.

# %% tags=["exercise"]
class MyAdam(Optimizer):
    """Adam with bias correction (Khan eqs. 5.29-5.33, eps inside the square root).

    State per parameter: "exp_avg" (m) and "exp_avg_sq" (v), both of the parameter's shape, 0 before the first step.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, group, state):
        """One step for one parameter.

        Inputs:
        - p: the Parameter; change p.data (any shape) in place.
        - g: its gradient, of p.data's shape (step() has already added weight_decay * p.data).
        - group: the hyper-parameters of p's group: group["lr"], group["betas"] = (beta1, beta2), group["eps"].
        - state: p's own dict, kept between steps; state["step"] is t (1 at the first step).
        """
        ...


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "07-adam-optimizer-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
class MyAdam(Optimizer):
    """Adam with bias correction (Khan eqs. 5.29-5.33, eps inside the square root).

    State per parameter: "exp_avg" (m) and "exp_avg_sq" (v), both of the parameter's shape, 0 before the first step.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, group, state):
        beta1, beta2 = group["betas"]
        t = state["step"]
        if "exp_avg" not in state:
            state["exp_avg"], state["exp_avg_sq"] = np.zeros_like(p.data), np.zeros_like(p.data)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m[...] = beta1 * m + (1 - beta1) * g          # eq. 5.29
        v[...] = beta2 * v + (1 - beta2) * g**2       # eq. 5.30
        m_hat = m / (1 - beta1**t)                    # eq. 5.31
        v_hat = v / (1 - beta2**t)                    # eq. 5.32
        p.data -= group["lr"] * m_hat / np.sqrt(v_hat + group["eps"])  # eq. 5.33


# %% nbgrader={"grade": true, "grade_id": "07-adam-optimizer-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.optimizers import check_adam_optimizer

check_adam_optimizer(MyAdam)

# %% [markdown]
# Compare with `cnnlab`'s `_update` (it also records the effective learning rate, for the widgets).
# Then put your class where it belongs, in a training loop: 20 mini-batches of the racing CNN
# (section 11), once with `MyAdam` and once with `cnnlab.optim.Adam`, from the same weights. The
# losses agree to rounding (the network computes in float32):

# %%
print(inspect.getsource(Adam._update))
X_sub, y_sub, classes = load_fashion_mnist("train", source="subset")


def train_losses(make_optimizer, batches=20, batch_size=64):
    net, loss_fn = race_net(0), CrossEntropyLoss()
    optimizer = make_optimizer(net.parameters())
    losses = []
    for k in range(batches):
        batch = slice(k * batch_size, (k + 1) * batch_size)
        optimizer.zero_grad()
        losses.append(loss_fn.forward(net(X_sub[batch]), y_sub[batch]))
        net.backward(loss_fn.backward())
        optimizer.step()
    return np.array(losses)


mine = train_losses(lambda params: MyAdam(params, lr=0.01))
reference = train_losses(lambda params: Adam(params, lr=0.01))
print("losses with MyAdam:", np.round(mine[::4], 3))
assert np.allclose(mine, reference, rtol=1e-3), "the same training, step for step"
assert mine[-5:].mean() < 0.7 * mine[0], "and it trains"

# %% [markdown]
# ### What the bias correction is for
#
# Give Adam a constant gradient. With the correction, $\hat m_t = g$ and $\hat v_t = g^2$ exactly,
# so every step has length $\eta\,|g|/\sqrt{g^2+\epsilon} \approx \eta$ from the very first one.
# Without it, the step is $\eta\,(1-\beta_1^t)/\sqrt{1-\beta_2^t}$: since $v$ starts far more
# biased towards zero than $m$ ($\beta_2$ is closer to 1), the early steps come out *too large*:
# $0.1/\sqrt{0.001} \approx 3.2$ times $\eta$ at the first step, and worse for a while after.

# %%
weight, g, adam_lr = Parameter(np.zeros(1)), 0.5, 1e-3
adam = Adam([weight], lr=adam_lr)
corrected, uncorrected = [], []
for _ in range(2000):
    before = weight.data.copy()
    weight.grad[...] = g
    adam.step()
    corrected.append(abs(weight.data - before)[0] / adam_lr)
    state = adam.state[weight]
    uncorrected.append(state["exp_avg"][0] / np.sqrt(state["exp_avg_sq"][0] + 1e-8))  # m / sqrt(v + eps)

t = np.arange(1, 2001)
corrected, uncorrected = np.array(corrected), np.array(uncorrected)
assert np.allclose(corrected, 1, rtol=1e-6), "with the correction every step is lr"
assert np.allclose(uncorrected, (1 - 0.9**t) / np.sqrt(1 - 0.999**t + 1e-8 / g**2), rtol=1e-6)
worst = uncorrected.argmax()
print(f"without the correction: step 1 is {uncorrected[0]:.2f} lr, the largest is {uncorrected[worst]:.2f} lr "
      f"at step {worst + 1}, step 2000 is {uncorrected[-1]:.2f} lr")
assert abs(uncorrected[0] - 0.1 / np.sqrt(0.001)) < 1e-3 and uncorrected[worst] > 6

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogx(t, uncorrected, color="grey", label="without bias correction")
ax.semilogx(t, corrected, color=color("Adam"), label="Adam (eqs. 5.31–5.32)")
ax.set_xlabel("step t"), ax.set_ylabel("step length / η"), ax.legend(fontsize=8)
ax.set_title("Constant gradient: Adam's step, with and without the bias correction", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# ## 8 · Where does ε go: inside or outside the root?
#
# Khan puts $\epsilon$ inside the square root, $\sqrt{\hat v + \epsilon}$; PyTorch puts it outside,
# $\sqrt{\hat v} + \epsilon$. `cnnlab` implements the source documents' form and offers PyTorch's with
# `eps_inside_sqrt=False` (AdaGrad, RMSprop, Adam). How far apart are they? At Adam's first step
# $\hat v = g^2$, so the step divided by $\eta$ is $g/\sqrt{g^2+\epsilon}$ inside and
# $g/(|g|+\epsilon)$ outside. With $\epsilon = 10^{-8}$ the two agree for ordinary gradients and part
# ways once $|g|$ approaches $\sqrt\epsilon = 10^{-4}$:

# %%
def first_adam_step(g, inside):
    weight = Parameter(np.zeros(len(g)))
    optimizer = Adam([weight], lr=1.0, eps=1e-8, eps_inside_sqrt=inside)
    weight.grad[...] = g
    optimizer.step()
    return -weight.data


gs = np.array([1.0, 1e-2, 1e-3, 1e-4, 1e-6, 1e-8])
inside, outside = first_adam_step(gs, True), first_adam_step(gs, False)
assert np.allclose(inside, gs / np.sqrt(gs**2 + 1e-8)) and np.allclose(outside, gs / (gs + 1e-8))
print("  |g|     inside   outside")
for row in zip(gs, inside, outside):
    print("{:7.0e} {:8.4f} {:9.4f}".format(*row))
assert np.all(np.abs(inside / outside - 1)[gs >= 1e-3] < 0.01), "ordinary gradients: within 1%"
assert abs(inside[3] - 1 / np.sqrt(2)) < 1e-6, "at |g| = sqrt(eps) inside is 1/sqrt(2)"

# %% [markdown]
# For tiny gradients the two behave differently in kind. Inside the root, $\epsilon$ dominates once
# $g^2 \ll \epsilon$ and the step becomes $\eta\, g/\sqrt\epsilon$: plain gradient descent with the
# rate $\eta/\sqrt\epsilon = 10^4\eta$. Outside, the step stays about $\eta$ until $|g|$ is near
# $\epsilon$ itself. Are gradients that small in practice? Look at the gradient of the racing CNN
# on one batch of images:

# %%
net, loss_fn = race_net(0), CrossEntropyLoss()
loss_fn.forward(net(X_sub[:64]), y_sub[:64])
net.backward(loss_fn.backward())
grads = np.concatenate([np.abs(p.grad).ravel() for p in net.parameters()])
below = np.mean(grads < 1e-4)
print(f"{grads.size} gradient entries; median |g| = {np.median(grads):.1e}; {below:.1%} are below sqrt(eps) = 1e-4")
assert grads.size == sum(p.size for p in net.parameters()) == 13610
assert np.median(grads) > 1e-3 and below < 0.05, "at the start, almost every entry is far above sqrt(eps)"

# %% [markdown]
# At the start of training almost every entry of this network's gradient is far above $10^{-4}$, so
# the two forms take practically the same first step; only the small fraction of tiniest entries is
# treated differently. That fraction is where the choice matters: with $\epsilon$ inside, a weight
# whose gradients stay tiny moves by a tiny amount; with $\epsilon$ outside, it moves by about $\eta$
# whatever its gradient. (Later steps divide by an average of squared gradients rather than one
# square, so what counts is a weight's gradient history, not one gradient.)

# %% [markdown]
# ## 9 · Saddle points
#
# Khan lists saddle points among the traps of gradient descent (Fig. 5.3): places where the
# gradient vanishes without being a minimum. The simplest is $f(x, y) = x^2 - y^2$ at the origin:
# the gradient $(2x, -2y)$ is zero there, the surface curves up along $x$ and down along $y$. Start
# plain gradient descent at $(x_0, y_0) = (-1, 10^{-3})$, almost on the ridge line $y = 0$. As on
# the bowl the coordinates separate:
#
# $$x_k = (1 - 2\eta)^k x_0 \to 0, \qquad y_k = (1 + 2\eta)^k y_0 .$$
#
# The way out, along $y$, grows only as fast as the tiny offset $y_0$ is multiplied by
# $(1+2\eta)$: it takes $\ln(1/y_0) / \ln(1+2\eta)$ steps just to reach $|y| = 1$. Meanwhile $x$
# has long reached the saddle, and near it the gradient, and with it every step, is nearly zero.

# %%
saddle, saddle_start = Saddle(), (-1.0, 1e-3)
sgd_lr = 0.01
sgd_saddle = trajectory(saddle, lambda params: SGD(params, lr=sgd_lr), start=saddle_start, steps=400)
k = np.arange(401)
assert np.allclose(sgd_saddle.points[:, 0], -(1 - 2 * sgd_lr) ** k)
assert np.allclose(sgd_saddle.points[:, 1], 1e-3 * (1 + 2 * sgd_lr) ** k)
steps_to_leave = np.log(1 / 1e-3) / np.log(1 + 2 * sgd_lr)
print(f"SGD with lr = {sgd_lr} needs {steps_to_leave:.0f} steps to reach |y| = 1")
assert np.abs(sgd_saddle.points[int(np.floor(steps_to_leave)), 1]) < 1 <= np.abs(
    sgd_saddle.points[int(np.ceil(steps_to_leave)), 1])

# %% [markdown]
# Exactly on the ridge nothing helps: from $y_0 = 0$ the $y$-gradient is 0 at every step, and every
# one of the race's optimizers multiplies it by something finite (AdamW also shrinks $y$, and $0$ stays
# $0$). All of them stay on the line $y = 0$
# and slide into the saddle. Only an offset, or noise in the gradient such as a mini-batch gives,
# gets a run off the ridge.

# %%
for spec in OPTIMIZERS.values():  # each at its default learning rate for a surface
    on_ridge = trajectory(saddle, lambda params: spec.build(params, spec.lr_surface), start=(-1.0, 0.0),
                          steps=200)
    assert np.all(on_ridge.points[:, 1] == 0), spec.label
print(f"from y0 = 0 none of the {len(OPTIMIZERS)} leaves the ridge")

# %% [markdown]
# With the offset $10^{-3}$, here is how fast $|y|$ grows for each method at the default learning
# rates of the race below (and plain SGD also with a larger rate). Watch how the adaptive methods
# leave: they divide the small $y$-gradient by its own size, so they step away at full speed from the
# first step on.

# %%
saddle_runs = {spec.label: trajectory(saddle, lambda params: spec.build(params, spec.lr_surface),
                                      start=saddle_start, steps=200)
               for spec in OPTIMIZERS.values()}
saddle_runs["SGD lr=0.1"] = trajectory(saddle, lambda params: SGD(params, lr=0.1), start=saddle_start, steps=200)
with plt.ioff():
    fig, ax = plt.subplots(figsize=(7, 3.4))
for label, run in saddle_runs.items():
    ax.semilogy(np.abs(run.points[:, 1]), color=color("SGD" if label.startswith("SGD") else label),
                ls="--" if label == "SGD lr=0.1" else "-", label=label)
ax.axhline(1, color="grey", lw=0.8, ls=":")
ax.set_ylim(1e-4, 1e4), ax.set_xlabel("step"), ax.set_ylabel("|y|: distance from the ridge")
ax.legend(fontsize=7, ncol=2), ax.set_title("Leaving the saddle of x² − y² from (−1, 0.001)", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# ## 10 · The race on the saddle
#
# Now all of them at once, in the race widget of `widgets.optimizer_race`: same start, same surface,
# the learning rates you pick (log sliders), momentum, gradient noise, and a step budget. Each
# runner is a real `cnnlab.optim` object stepping a `Parameter` of shape `(2,)`, built from the one
# table of the course's optimizers, `cnnlab.optim.OPTIMIZERS` (the recipe, the dashboard and the
# race on the CNN use it too): each entry's class, its hyper-parameters (PyTorch's defaults, e.g.
# RMSprop's $\alpha = 0.99$, with momentum $0.9$ for Momentum and Nesterov) and its default
# learning rates, one for these surfaces (`lr_surface`) and one for a CNN (`lr_cnn`). The eighth
# runner, AdamW, drawn dashed, is new in this lesson: it comes right after the race.
#
# The claim to check: **with a budget of 100 steps, every method except plain SGD with a small rate
# escapes the saddle** from $(-1, 10^{-3})$. "Escaped" means the run reached $f < -1$, well below
# the saddle's value 0 (or ran off downhill towards $-\infty$, which the race reports as
# `escaped_at`).

# %%
BUDGET = 100
race = widgets.optimizer_race("saddle", start=saddle_start, steps=BUDGET)
race

# %%
def escaped(summary):
    return {name: escaped_at is not None or value < -1
            for name, (value, _, diverged_at, escaped_at) in summary.items()}


result = escaped(race.model.summary())
print(result)
assert not result["SGD"], "plain SGD with lr = 0.01 is still near the saddle"
assert len(result) == len(OPTIMIZERS) == 8 and all(out for name, out in result.items() if name != "SGD"), \
    "all others escaped"

# %% [markdown]
# Plain SGD is not hopeless; it is just slow at a small rate. Drive the widget: move SGD's
# learning-rate slider to 0.1, as you would with the mouse, and the race reruns:

# %%
draws = race.view.draws
race.lr["SGD"].value = 0.1
assert race.model.lrs["SGD"] == 0.1 and race.view.draws > draws
assert escaped(race.model.summary())["SGD"], "with lr = 0.1 SGD escapes too"

# %% [markdown]
# ### The eighth runner: AdamW
#
# The table holds one optimizer the sections above did not build: **AdamW**, PyTorch's Adam with
# *decoupled* weight decay (lesson 10 measures what the decay does to a CNN). Each step first shrinks
# the parameter, $\theta \leftarrow (1 - \eta\lambda)\,\theta$ with PyTorch's default $\lambda = 0.01$,
# then takes Adam's step on the gradient alone. On a 2-D surface that decay is the **only** difference
# from Adam: with $\lambda = 0$ the two are the same computation, and with $\lambda = 0.01$ at
# $\eta = 0.05$ each step pulls the point towards the origin by $0.05\,\%$ of its distance. The race
# above draws AdamW dashed, so that Adam's path shows through where the two coincide. Here the saddle point
# is the origin, so the decay pulls, a little, back towards the saddle: the two paths part by about
# the sum of those pulls, $\sum_k \eta\lambda\,\lVert\theta_k\rVert$.

# %%
adamw_spec = OPTIMIZERS["adamw"]
print("AdamW:", adamw_spec.hyperparameters, "lr on a surface:", adamw_spec.lr_surface)
adam_path = trajectory(saddle, lambda params: Adam(params, lr=0.05), start=saddle_start, steps=100)
adamw_path = trajectory(saddle, lambda params: adamw_spec.build(params, 0.05), start=saddle_start, steps=100)
no_decay = trajectory(saddle, lambda params: AdamW(params, lr=0.05, weight_decay=0.0), start=saddle_start,
                      steps=100)
assert np.array_equal(no_decay.points, adam_path.points), "weight decay 0: Adam, bit for bit (the same code)"
gap = np.linalg.norm(adamw_path.points[-1] - adam_path.points[-1])
pulls = np.sum(0.05 * 0.01 * np.linalg.norm(adamw_path.points[:-1], axis=1))
print(f"after 100 steps Adam and AdamW are {gap:.3f} apart; the decay's pulls add up to {pulls:.3f}")
assert 0.5 < gap / pulls < 2, "the paths part by about what the decay pulled"

# %% [markdown]
# ### A saddle with a floor: escaping to a real minimum
#
# On $x^2 - y^2$ "escaping" means falling for ever, which no real loss can do: a cross-entropy is
# never below 0. The bounded saddle of `cnnlab.surfaces` adds a floor,
#
# $$f(x, y) = x^2 - y^2 + \tfrac14 y^4, \qquad \nabla f = (2x,\; -2y + y^3).$$
#
# The gradient vanishes at the same saddle $(0, 0)$, where $f = 0$, and at $(0, \pm\sqrt2)$, where
# $f = 0 - 2 + \tfrac14 \cdot 4 = -1$ and the Hessian $\operatorname{diag}(2,\; -2 + 3y^2) =
# \operatorname{diag}(2, 4)$ is positive definite: two real minima. Near one of them
# $f + 1 \approx x^2 + 2\,(y \mp \sqrt2)^2$, so within $r$ of a minimum $f$ is at most about $-1 + 2r^2$.
# A run has **arrived** when it is within $r = 0.05$ of a minimum at $f \le -0.995$, and stays
# there; it is **stuck** when, at the end of the budget, it is still within $0.1$ of the saddle with
# $f > -0.05$: it has not yet gone 5 % of the way down.
#
# The same start as above, $(-1, 10^{-3})$, near the ridge that leads into the saddle, and a budget of
# 200 steps. The race's own model, `RaceModel` (the widget without its controls), runs every optimizer at
# the table's learning rates for 500 steps, so that we also see when the slow ones arrive; the figure
# draws its runs and the asserts read the same numbers.

# %%
FLOOR_BUDGET = 200
floor_race = RaceModel("bounded_saddle", start=saddle_start, steps=500)
minima = np.array(floor_race.surface.minima)
assert np.allclose(minima, [[0, np.sqrt(2)], [0, -np.sqrt(2)]]) and np.allclose(floor_race.surface(minima), -1)


def arrival(run, r=0.05):
    """The first step from which the run stays within r of a minimum (at f <= -1 + 2 r^2); None: not by the end."""
    to_minimum = np.min(np.linalg.norm(run.points[:, None, :] - minima, axis=2), axis=1)
    there = (to_minimum < r) & (run.values <= -1 + 2 * r**2)
    return len(there) - int(np.argmax(~there[::-1])) if there[-1] else None


arrivals = {name: arrival(run) for name, run in floor_race.runs.items()}
print("step of arrival at a minimum:", arrivals)
fig = surface_paths(floor_race.surface, floor_race.runs, title="From (−1, 0.001) on x² − y² + y⁴/4: 500 steps")
fig.axes[1].axvline(FLOOR_BUDGET, color="grey", lw=0.8, ls=":")
fig

# %%
arrived = {name for name, step in arrivals.items() if step is not None and step <= FLOOR_BUDGET}
at_budget = {name: (run.points[FLOOR_BUDGET], run.values[FLOOR_BUDGET]) for name, run in floor_race.runs.items()}
stuck = {name for name, (point, value) in at_budget.items() if np.linalg.norm(point) < 0.1 and value > -0.05}
print("arrived within", FLOOR_BUDGET, "steps:", sorted(arrived), "· stuck at the saddle:", sorted(stuck))
assert arrived == {"Momentum", "Nesterov", "AdaGrad", "RMSprop", "Adam", "AdamW"}
assert max(arrivals[name] for name in arrived) < 0.6 * FLOOR_BUDGET, "they arrive with time to spare"
assert stuck == {"SGD"}
# while |y| is small the floor's y^3 is negligible: SGD leaves as on x^2 - y^2, y_k = (1 + 2 lr)^k y_0
assert np.isclose(at_budget["SGD"][0][1], 1e-3 * (1 + 2 * 0.01) ** FLOOR_BUDGET, rtol=0.01)
assert arrivals["SGD"] > 1.5 * FLOOR_BUDGET and arrivals["AdaDelta"] > 1.5 * FLOOR_BUDGET

# %% [markdown]
# Six of the eight arrive, all within about half the budget. Plain SGD at its small rate is still at
# the saddle after 200 steps: its way out grows by the factor $1 + 2\eta$ per step exactly as on the
# open saddle, and it arrives only after 430 steps. AdaDelta is the surprise. On the open saddle it fled
# fastest of the table's runners; here it reaches the height of a minimum, $y \approx \sqrt2$, within 50 steps, and
# then crawls along $x$, the direction whose gradient it has seen shrink from the start, and arrives only
# after 326 steps. The saddle is behind it, the minimum is not yet reached: escaping a saddle and
# converging are two different things.

# %%
open_saddle_at_100 = {spec.label: saddle_runs[spec.label].values[100] for spec in OPTIMIZERS.values()}
assert min(open_saddle_at_100, key=open_saddle_at_100.get) == "AdaDelta", "on x^2 - y^2 it was lowest at step 100"
adadelta = floor_race.runs["AdaDelta"].points
assert abs(adadelta[50, 1] - np.sqrt(2)) < 0.01 and adadelta[50, 0] < -0.5, "at the minimum's height, far along x"
assert np.all(np.abs(np.diff(adadelta[100:201, 0])) < 0.005), "then x moves by less than 0.005 a step"

# %% [markdown]
# Things to try: switch the gradient noise on and start exactly on the ridge (`start y` = 0); give
# momentum 0.99; pick the bounded saddle in the race's menu and watch who arrives and who oscillates
# around the minimum; try the monkey saddle, where the gradient vanishes to second order; find the
# learning rate at which each method starts to diverge on the Rosenbrock valley.

# %% [markdown]
# ## 11 · The race on a real CNN
#
# A 2-D surface shows *how* each method moves. Whether that matters on a real network is a separate
# question, so the last race trains the same small CNN with each optimizer:
# `Conv2d(1, 8, 3) – ReLU – MaxPool2d(2) – Flatten – Linear(1352, 10)` (13,610 weights) on 2,000
# Fashion-MNIST training images of the shipped subset, mini-batches of 64, two epochs; validation on
# 500 test images.
#
# The race is fair in two ways the widget guarantees: every run **starts from the same weights** (one
# `state_dict`, loaded into each network) and **sees the same mini-batches in the same order** (each
# run's `Trainer` shuffles with the same seed). The learning rates were tuned for this set-up, one
# per optimizer (see below). Training streams the loss curves as it goes; **Stop** halts it, **Race**
# continues or restarts with the new settings; a run that blows up is marked, not raised.

# %%
print("learning rates:", {spec.label: spec.lr_cnn for spec in OPTIMIZERS.values()})
cnn = widgets.cnn_race(epochs=2)
cnn

# %%
cnn.wait()  # training runs in the background in a notebook; wait for it before checking
summary = cnn.model.summary()
first_losses = {name: run.losses[0] for name, run in cnn.model.runs.items()}
print({name: f"{s['val_accuracy']:.1%}" for name, s in summary.items()})
assert len(set(first_losses.values())) == 1, "same weights, same first batch: the same first loss for all"
assert all(s["status"] == "done" and s["diverged_at"] is None for s in summary.values())
assert all(s["final_loss"] < 0.5 * run.losses[0] for s, run in zip(summary.values(), cnn.model.runs.values()))
assert all(s["val_accuracy"] > 0.5 for s in summary.values()), "every optimizer learned something"

# %% [markdown]
# Drive it once: push plain SGD's learning rate to 10. Only that run is retrained (the others'
# settings did not change, so their finished runs are kept), and it blows up:

# %%
draws, adam_run = cnn.view.draws, cnn.model.runs["Adam"]
cnn.lr["SGD"].value = 10.0
cnn.wait()
sgd = cnn.model.summary()["SGD"]
print(cnn.status.text)
assert sgd["lr"] == 10.0 and sgd["diverged_at"] is not None and sgd["status"] == "diverged"
assert cnn.model.runs["Adam"] is adam_run and cnn.view.draws > draws
assert "diverged" in cnn.status.text

# %% [markdown]
# ## What the race does and does not show
#
# It shows that the eight methods, given a tuned learning rate, all train this network, and how
# differently their losses fall in the first steps (the adaptive methods' large early steps; AdaDelta's
# tuned rate, 10, well above Zeiler's 1). It does **not** rank the methods:
#
# * **one seed**: one sample of images, one initialisation and one batch order. Another seed can
#   reorder close finishers (section 12 repeats the race over five seeds);
# * **tuned rates**: each rate is the best of a coarse sweep for *this* net, data and budget
#   (`lr_cnn` in `cnnlab.optim.OPTIMIZERS`); a method's result says as much about its rate as about
#   the method;
# * **a toy budget**: 64 steps on 2,000 images. Methods that start fast are favoured; over a longer
#   training the order can change;
# * **a small validation set**: an accuracy measured on 500 images has a standard error of about
#   $\sqrt{p(1-p)/500}$, nearly two percentage points at $p = 0.8$.

# %%
accuracies = {name: s["val_accuracy"] for name, s in cnn.model.summary().items() if name != "SGD"}
p = np.mean(list(accuracies.values()))
standard_error = np.sqrt(p * (1 - p) / len(cnn.model.y_val))
spread = max(accuracies.values()) - min(accuracies.values())
print(f"mean accuracy {p:.1%}, standard error {standard_error:.1%}, best minus worst {spread:.1%} "
      f"= {spread / standard_error:.1f} standard errors")
assert 0.01 < standard_error < 0.03

# %% [markdown]
# Two methods whose accuracies differ by one or two standard errors may well swap places on another
# validation sample. A fair ranking repeats the race over several seeds, tunes every method's rate
# with the same effort, and reports means with their spread. The widget makes one race cheap; a
# ranking needs many.

# %% [markdown]
# ## 12 · The race over five seeds, with error bars
#
# So repeat it. `race_over_seeds` (in `widgets.cnn_race_model`) runs the very race of the widget,
# `CNNRaceModel` with the same network, learning rates and two epochs, once per seed, exactly as
# `widgets.cnn_race(seed=s)` would: each seed draws its own 2,000 training and 500 validation images,
# its own initial weights and its own batch order, so the spread over seeds covers all three. Seed 0
# is the race above. Five races of eight runs took about 15 seconds on one core here; a line per seed
# says how far it got.

# %%
SEEDS = range(5)
seeded = race_over_seeds(SEEDS, epochs=2, on_seed=lambda seed, model: print(f"seed {seed}: raced", flush=True))
names = list(seeded)
final_loss = np.array([seeded[name]["final_loss"] for name in names])  # (optimizers, seeds)
accuracy = np.array([seeded[name]["val_accuracy"] for name in names])
# seed 0 is the widget's race above (`summary` was read before SGD's rate was changed): the same code on
# the same arrays, so the same numbers bit for bit
assert all(seeded[name]["val_accuracy"][0] == summary[name]["val_accuracy"] and
           seeded[name]["final_loss"][0] == summary[name]["final_loss"] for name in names)
with plt.ioff():
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
for ax, values, what in zip(axes, (final_loss, accuracy), ("training loss, last epoch", "validation accuracy")):
    for i, (name, row) in enumerate(zip(names, values)):
        ax.errorbar(i, row.mean(), yerr=row.std(ddof=1), fmt="o", color=color(name), capsize=4, ms=6)
        ax.plot(np.full(len(row), i + 0.25), row, ".", color=color(name), alpha=0.6, ms=4)
    ax.set_xticks(range(len(names)), names, rotation=40, fontsize=8)
    ax.set_title(f"{what}: mean ± std over {len(SEEDS)} seeds (dots: each seed)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
fig.tight_layout()
for name, losses, accs in zip(names, final_loss, accuracy):
    print(f"{name:9s} loss {losses.mean():.3f} ± {losses.std(ddof=1):.3f}   "
          f"accuracy {accs.mean():.1%} ± {accs.std(ddof=1):.1%}")
fig

# %% [markdown]
# What five seeds support, and what they do not:
#
# * every optimizer trains on every seed: none diverges, each at least halves the loss of a uniform
#   guess ($\ln 10$) and reaches more than 50 % validation accuracy;
# * **plain SGD ends with the highest training loss.** Nesterov and all five adaptive methods end below
#   it on every one of the five seeds, and their mean is below SGD's by more than the standard
#   deviation of either;
# * Momentum's mean is below SGD's as well, but by less than their two spreads together: five seeds do
#   not separate it from SGD (the dots show it behind SGD on one seed);
# * in validation accuracy Adam's mean beats SGD's by more than either spread; Adam, AdamW and Nesterov
#   have the three best means, but on some seed Adam and Nesterov are a few images out of 500 apart:
#   no ranking among them;
# * AdamW is Adam here: its decay shrinks the weights by a factor $1 - 10^{-4}$ a step, 0.6 % over the
#   64 steps, and moves the final loss by less than 0.01 and the accuracy by at most 5 images on every
#   seed.
#
# These are claims about this network, these tuned rates and this budget of two epochs, nothing more.

# %%
mean, spread = dict(zip(names, final_loss.mean(axis=1))), dict(zip(names, final_loss.std(axis=1, ddof=1)))
loss_of = dict(zip(names, final_loss))
assert not any(seeded[name]["diverged"].any() for name in names)
assert np.all(final_loss < 0.5 * np.log(10)) and np.all(accuracy > 0.5), "everyone trains, on every seed"
for name in ("Nesterov", "AdaGrad", "AdaDelta", "RMSprop", "Adam", "AdamW"):
    assert np.all(loss_of[name] < loss_of["SGD"]), f"{name} ends below SGD on every seed"
    assert mean["SGD"] - mean[name] > max(spread["SGD"], spread[name]), f"{name}: by more than either spread"
assert 0 < mean["SGD"] - mean["Momentum"] < spread["SGD"] + spread["Momentum"], "Momentum: within the spreads"
acc_of = dict(zip(names, accuracy))
acc_lead = acc_of["Adam"].mean() - acc_of["SGD"].mean()
assert acc_lead > max(acc_of["Adam"].std(ddof=1), acc_of["SGD"].std(ddof=1)), "Adam's accuracy beats SGD's"
assert set(sorted(names, key=lambda name: acc_of[name].mean())[-3:]) == {"Adam", "AdamW", "Nesterov"}
assert np.min(np.abs(acc_of["Adam"] - acc_of["Nesterov"])) <= 0.01, "within 5 images of Nesterov on some seed"
assert np.all(np.abs(loss_of["AdamW"] - loss_of["Adam"]) < 0.01) and np.all(
    np.abs(acc_of["AdamW"] - acc_of["Adam"]) <= 0.01), "AdamW is Adam at this budget"

# %% [markdown]
# ## Summary
#
# * Gradient descent takes one rate for all directions; on an ill-conditioned surface that rate is
#   either too slow along the flat directions or zig-zags across the steep ones.
# * **Momentum** sums past gradients: Khan's $a_t$, Tomasi's $v_t$ and PyTorch's $b_t$ are the same
#   iteration at a constant rate ($a = \eta b = -v$). **Nesterov** takes the gradient at the
#   look-ahead point; PyTorch's form is Khan's after the change of variable $\varphi = \theta - \gamma a$.
# * **AdaGrad** gives each weight its own rate, but its sum of squares makes the rate vanish;
#   **AdaDelta** and **RMSprop** use a decaying average instead (AdaDelta's $\eta$ form *is* RMSprop);
#   Zeiler's unit-corrected AdaDelta needs no rate but starts with steps of about $\sqrt\epsilon$.
# * **Adam** divides a momentum by an RMS; its bias correction keeps the first steps from being
#   several times too long. Where $\epsilon$ sits matters only for gradients near or below
#   $\sqrt\epsilon$.
# * At a **saddle** the gradient vanishes; plain gradient descent leaves only as fast as its tiny
#   offset grows, while momentum and the adaptive methods escape within the budget. With a floor under
#   the saddle, escaping and arriving differ: AdaDelta leaves at once and arrives late.
# * **AdamW** is Adam with decoupled weight decay; on a surface and in a two-epoch race it moves as Adam.
# * A race on one seed with tuned rates and a toy budget shows behaviour, not a ranking. Over five seeds
#   the wide gaps hold (Nesterov and the adaptive methods end below plain SGD's training loss on every
#   seed); the narrow ones do not.
