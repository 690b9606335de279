# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · The training problem
#
# Before a network can learn anything we have to say what "better" means. This lesson writes
# that down as one number, the **training error** $E(\mathbf{w})$, a function of the network's
# weights that is small when the network answers the training examples well. Training is then
# nothing more mysterious than walking downhill on $E$.
#
# On the way we meet the pieces every classifier in the course ends with: the **softmax**, which
# turns scores into probabilities; two ways of scoring those probabilities, **squared error** and
# **cross-entropy**, and why their gradients behave very differently; the **activation
# functions** between layers and their derivatives; and finally the **training loop** itself,
# run for real on Fashion-MNIST.

# %%
# %matplotlib widget
import matplotlib.pyplot as plt
import numpy as np

import widgets
from cnnlab.data import load_fashion_mnist
from cnnlab.gradcheck import numerical_gradient, rel_error
from cnnlab.layers import LeCunTanh, Linear, ReLU, Sigmoid, Tanh
from cnnlab.losses import CrossEntropyLoss, MSELoss, SoftmaxMSELoss, one_hot, softmax

# %% [markdown]
# ## The training set and the training error
#
# Supervised training starts from a **training set** of input-output pairs,
# $T = \{(\mathbf{x}_1, y_1), \dots, (\mathbf{x}_N, y_N)\}$: here an image $\mathbf{x}_n$ and its
# class $y_n$. The network is a function $\mathbf{f}(\mathbf{x}, \mathbf{w})$ of the input and of
# all its weights, collected in one long vector $\mathbf{w}$. A **loss** $\mathcal{L}$ compares the
# network's answer for one example with the right one, and the training error is the average of
# these per-example errors (Tomasi's eq. (1)):
#
# $$E(\mathbf{w}) = \frac{1}{N}\sum_{n=1}^{N} E_n(\mathbf{w}), \qquad
#   E_n(\mathbf{w}) = \mathcal{L}\big(y_n, \mathbf{f}(\mathbf{x}_n, \mathbf{w})\big).$$
#
# Veta writes the same objective with one more term, a **regulariser** $\lambda\,\Omega(\theta)$
# that penalises unreasonable weights; training minimises the sum
# $\frac{1}{D}\sum_t E(\mathbf{f}(x^{(t)}; \theta), y^{(t)}) + \lambda\,\Omega(\theta)$. In this
# lesson $\lambda = 0$; lesson 09 is about the second term.
#
# We take 2,000 training images, each flattened into a row of 784 pixels.

# %%
X_all, y_all, classes = load_fashion_mnist("train")
pick = np.random.default_rng(0).permutation(len(X_all))[:2000]
X = X_all[pick].reshape(len(pick), -1)  # (N, 784): one image per row
y = y_all[pick]
N = len(y)
print(f"training set: X {X.shape} {X.dtype}, y {y.shape}; classes: {', '.join(classes)}")

# %%
assert X.shape == (2000, 784) and y.shape == (2000,)
assert set(np.unique(y)) == set(range(10)), "all ten classes are in the sample"

# %% [markdown]
# The simplest network that can classify is a single **linear layer**: ten scores
# $\mathbf{z} = W\mathbf{x} + \mathbf{b}$, one per class, with $W$ of shape (10, 784). The scores are
# called **logits**. The layer below has random weights: it has not been trained at all.

# %%
classifier = Linear(784, 10, rng=0)
Z = classifier(X)  # (N, 10) logits
print("logits of the first two images:\n", Z[:2].round(2))

# %% [markdown]
# For the loss we use the one the rest of the course uses (the next sections explain it): turn the
# ten logits into probabilities $p_1, \dots, p_{10}$ with the softmax, then score an example by
# $E_n = -\log p_{y_n}$, minus the logarithm of the probability given to the *true* class. A
# certain, correct answer costs 0; a hesitant one costs more.
#
# Small random weights give small logits, hence probabilities close to $\frac{1}{10}$ for every
# class, so we should expect $E_n \approx -\log\frac{1}{10} = \ln 10 \approx 2.303$ on average.

# %%
P = softmax(Z, axis=1)
E_n = -np.log(P[np.arange(N), y])  # one error per training example
E = E_n.mean()  # Tomasi's eq. (1)
print(f"probabilities between {P.min():.3f} and {P.max():.3f}")
print(f"E(w) = {E:.4f}    ln 10 = {np.log(10):.4f}")

# %%
assert abs(E - np.log(10)) < 0.1, "an untrained classifier is close to guessing uniformly"
assert 0.01 < P.min() and P.max() < 0.35, "no class gets much more or less than 1/10"
assert np.isclose(E, CrossEntropyLoss()(Z, y), rtol=1e-5), "the library's mean cross-entropy is eq. (1)"
assert E_n.min() < np.log(10) < E_n.max()

# %% [markdown]
# $E$ is an average, and the individual errors spread around it: some images happen to get a
# little more than $\frac{1}{10}$ on their true class, others less.

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6, 2.8))
ax.hist(E_n, bins=40, color="0.7")
ax.axvline(E, color="tab:blue", label=f"E(w) = mean = {E:.3f}")
ax.axvline(np.log(10), color="tab:red", linestyle="--", label="ln 10 (uniform guess)")
ax.set_xlabel("per-example error $E_n = -\\log p_{y_n}$"), ax.set_ylabel("images")
ax.legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# $E$ is a function of $\mathbf{w}$: other weights, another number. Multiply the same random weights
# by ten and the classifier becomes *confident* without becoming *right*, and the error grows.
# Training is the search for a $\mathbf{w}$ that makes $E$ small.

# %%
loud = Linear(784, 10, rng=0)
for p in loud.parameters():
    p.data *= 10
E_loud = CrossEntropyLoss()(loud(X), y)
print(f"E(w) = {E:.3f}    E(10 w) = {E_loud:.3f}")
assert E_loud > E + 1

# %% [markdown]
# ## Softmax: from scores to probabilities
#
# Both Veta and Wollowski finish a classifier with the **softmax**, which maps any vector of
# logits to a probability distribution:
#
# $$\sigma(\mathbf{z})_j = \frac{e^{z_j}}{\sum_i e^{z_i}}.$$
#
# Every output is positive, they add up to 1, and a larger logit always gets a larger probability.
# Adding the same constant $c$ to every logit changes nothing, because $e^{z_j + c} = e^c e^{z_j}$
# and the factor $e^c$ cancels between numerator and denominator: $\sigma(\mathbf{z} + c) =
# \sigma(\mathbf{z})$.

# %%
z = np.array([2.0, 1.0, 0.1, -1.0])
p = softmax(z)
print("p =", p.round(4), " sum =", p.sum())

# %%
assert np.isclose(p.sum(), 1) and (p > 0).all()
assert (np.argsort(p) == np.argsort(z)).all(), "the order of the logits is kept"
assert np.allclose(softmax(z + 100.0), p) and np.allclose(softmax(z - 7.5), p), "shift invariance"

# %% [markdown]
# Shift invariance is what makes the softmax computable. A badly scaled network can produce logits
# in the thousands, and $e^{1000}$ is already beyond the largest float64 (about $1.8 \times 10^{308}$):
# the formula as written then gives $\infty / \infty$, which is `nan`, for the largest logits and
# $0$ for all the others. Subtract the largest logit $m$ first: every exponent is then $\le 0$, the
# largest term is $e^0 = 1$, so the denominator is at least 1 and nothing overflows. Mathematically
# it is the same softmax.

# %%
big = np.array([1e4, 1e4 - 1.0, 0.0, -1e4])
with np.errstate(over="ignore", invalid="ignore"):  # silence NumPy's warnings to see what happens
    naive = np.exp(big) / np.exp(big).sum()
stable = softmax(big)  # cnnlab subtracts the maximum first
print("naive: ", naive)
print("stable:", stable)

# %%
assert np.isnan(naive[:2]).all(), "exp(1e4) is inf, and inf / inf is nan"
assert (naive[2:] == 0).all(), "finite / inf is 0: what is left is not a distribution"
assert np.all(np.isfinite(stable)) and np.isclose(stable.sum(), 1)
assert np.allclose(stable, softmax(big - 1e4))
assert np.isclose(stable[0], 1 / (1 + np.exp(-1.0))), "only the two top logits matter; they differ by 1"

# %% [markdown]
# ## Exercise 1: a stable softmax for a batch
#
# A network processes a batch of examples at once: the logits are a matrix `Z` of shape `(N, C)`,
# one row per example, and the softmax is applied to each row separately. Write `stable_softmax(Z)`
# so that it works for logits as large as $\pm 10^4$.
#
# Hints: `Z.max(axis=1, keepdims=True)` is the maximum of each row as an `(N, 1)` column, which
# NumPy broadcasts against `(N, C)`; do not modify `Z` in place.

# %% tags=["exercise"]
def stable_softmax(Z):
    """Softmax of each row of Z: (N, C) -> (N, C), safe for logits as large as 1e4."""
    ...  # your code here


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "01-softmax-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def stable_softmax(Z):
    """Softmax of each row of Z: (N, C) -> (N, C), safe for logits as large as 1e4."""
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# %% nbgrader={"grade": true, "grade_id": "01-softmax-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.training_problem import check_softmax

check_softmax(stable_softmax)
assert np.allclose(stable_softmax(Z), P, atol=1e-6), "the same as cnnlab's softmax on our logits"

# %% [markdown]
# ## Measuring the error: squared error
#
# Now the loss $\mathcal{L}$. The target of a classification example is a **one-of-c** code
# (Bouvrie): a vector $\mathbf{t}$ with a 1 at the true class and 0 elsewhere. Wollowski's example
# sorts pictures into *dog, cat, boat, bird*; for a photo of a boat the target is
# $\mathbf{t} = [0, 0, 1, 0]$.
#
# The oldest way to compare the output $\mathbf{y}$ with $\mathbf{t}$ is the **squared error**
# (Wollowski's step 3, Bouvrie's eq. (1)):
#
# $$E_n = \frac{1}{2}\sum_{k=1}^{c}(t_k - y_k)^2 = \frac{1}{2}\,\lVert \mathbf{t} - \mathbf{y} \rVert^2.$$
#
# The $\frac{1}{2}$ is there for convenience: it cancels the 2 that appears when the square is
# differentiated, so $\partial E_n / \partial y_k = y_k - t_k$.

# %% [markdown]
# ## Exercise 2: Wollowski's two outputs
#
# Wollowski asks for the squared error of two outputs of the network for the boat photo:
# output 1 is $[0.2, 0.4, 0.1, 0.3]$, output 2 is $[0.1, 0.1, 0.7, 0.1]$. Compute both, `E1` and
# `E2`, with NumPy. Which output is better?

# %%
t = np.array([0.0, 0.0, 1.0, 0.0])
y1 = np.array([0.2, 0.4, 0.1, 0.3])
y2 = np.array([0.1, 0.1, 0.7, 0.1])

# %% tags=["exercise"]
E1 = ...  # squared error of output 1
E2 = ...  # squared error of output 2

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "01-wollowski-errors-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
E1 = 0.5 * np.sum((t - y1) ** 2)
E2 = 0.5 * np.sum((t - y2) ** 2)

# %% nbgrader={"grade": true, "grade_id": "01-wollowski-errors-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.training_problem import check_wollowski_errors

check_wollowski_errors(E1, E2)

# %% [markdown]
# By hand: $E_1 = \frac{1}{2}(0.04 + 0.16 + 0.81 + 0.09) = 0.55$ and
# $E_2 = \frac{1}{2}(0.01 + 0.01 + 0.09 + 0.01) = 0.06$. In cnnlab this loss is `MSELoss` with
# `reduction="half_sum"` (Bouvrie's and Wollowski's convention). PyTorch's default, `"mean"`,
# averages the squares without the $\frac{1}{2}$, which is the same loss scaled by $2/c$.

# %%
half_sum = MSELoss(reduction="half_sum")
print(f"half_sum: {half_sum(y1, t):.4f}, {half_sum(y2, t):.4f}    mean: {MSELoss()(y1, t):.4f}, {MSELoss()(y2, t):.4f}")

# %%
assert np.isclose(half_sum(y1, t), 0.55) and np.isclose(half_sum(y2, t), 0.06)
assert np.isclose(MSELoss()(y1, t), 0.55 * 2 / 4) and np.isclose(MSELoss()(y2, t), 0.06 * 2 / 4)

# %% [markdown]
# ## Measuring the error: cross-entropy
#
# Veta reads the softmax output as the network's belief $p(y = c \mid \mathbf{x}; \theta)$ and asks
# for the weights under which the training labels are most likely. Taking minus the logarithm of
# that likelihood gives the **cross-entropy** loss:
#
# $$E_n = -\sum_{c} 1_{y_n = c}\,\log p(y = c \mid \mathbf{x}_n; \theta) = -\log p_{y_n}.$$
#
# Only the probability of the true class counts. For Wollowski's outputs that is $-\log 0.1
# \approx 2.303$ and $-\log 0.7 \approx 0.357$: the same verdict as the squared error, output 2
# is better. `CrossEntropyLoss` takes logits, not probabilities (the softmax is inside it, as in
# PyTorch); since $\sigma(\log \mathbf{p}) = \mathbf{p}$ when $\mathbf{p}$ sums to 1, the logits
# $\log \mathbf{p}$ reproduce Wollowski's outputs exactly.

# %%
boat = np.array([2])  # the label of the one example: class 2
CE1 = CrossEntropyLoss()(np.log(y1)[None, :], boat)
CE2 = CrossEntropyLoss()(np.log(y2)[None, :], boat)
print(f"cross-entropy: output 1 {CE1:.4f}, output 2 {CE2:.4f}")

# %%
assert np.isclose(CE1, -np.log(0.1)) and np.isclose(CE2, -np.log(0.7))
assert CE2 < CE1 and E2 < E1, "both losses prefer output 2"

# %% [markdown]
# The two losses differ at the extremes. The squared error of a probability vector can never
# exceed 1 (the worst case puts all mass on one wrong class: $\frac{1}{2}(1 + 1)$), while
# $-\log p_{y}$ grows without bound as $p_y \to 0$. How much each loss *cares* about a wrong
# answer shows up in its gradient, which is what training actually uses.

# %% [markdown]
# ## Gradients with respect to the logits
#
# Back-propagation starts from the derivative of the loss with respect to the network's output
# (Tomasi's eq. (4)); for a classifier, the output is the logit vector $\mathbf{z}$.
#
# **Cross-entropy.** With $E = -\log p_y = \log\sum_c e^{z_c} - z_y$, the derivative is
#
# $$\frac{\partial E}{\partial z_i} = p_i - t_i, \qquad \text{i.e.} \quad
#   \frac{\partial E}{\partial \mathbf{z}} = \mathbf{p} - \mathbf{t},$$
#
# the probabilities minus the one-hot target: simple, and exactly as large as the mistake.
#
# **Squared error after the softmax.** Now $E = \frac{1}{2}\lVert \mathbf{p} - \mathbf{t}\rVert^2$
# with $\mathbf{p} = \sigma(\mathbf{z})$, and the chain rule has to go through the softmax. Its
# Jacobian is $\partial p_k / \partial z_i = p_k(\delta_{ki} - p_i)$ (Bouvrie's eq. (8)), and with
# $\mathbf{g} = \mathbf{p} - \mathbf{t}$ the result takes the form of Bouvrie's eq. (10):
#
# $$\frac{\partial E}{\partial z_i} = \sum_k g_k\, p_k(\delta_{ki} - p_i)
#   = p_i\Big(g_i - \sum_k g_k p_k\Big).$$
#
# This is Wollowski's "gradient of MSE through an activation": the error $(y_i - a_i)$ is
# multiplied by the derivative of the output activation. Both formulas are implemented in
# `cnnlab.losses`; first confirm them against finite differences.

# %%
z = np.array([[1.0, -0.5, 0.3, 2.0]])  # one example, four classes, float64
for loss in (CrossEntropyLoss(), SoftmaxMSELoss(reduction="half_sum")):
    loss(z, boat)
    analytic = loss.backward()
    numeric = numerical_gradient(lambda: loss.forward(z, boat), z)
    error = rel_error(analytic, numeric)
    print(f"{type(loss).__name__:14s} dE/dz = {analytic[0].round(4)}   relative error {error:.1e}")
    assert error < 1e-6

# %%
ce = CrossEntropyLoss()
ce(z, boat)
assert np.allclose(ce.backward(), softmax(z, axis=1) - one_hot(boat, 4)), "dE/dz = p - t"

# %% [markdown]
# Now a **confidently wrong** output: the network is almost certain the boat is a bird. The
# softmax is *saturated*: $p_{\text{bird}} \approx 1$ and every other $p_k \approx 0$, so every
# entry of its Jacobian $p_k(\delta_{ki} - p_i)$ is close to zero, and the squared error's gradient
# with it. Cross-entropy's gradient on the boat logit is $p_{\text{boat}} - 1 \approx -1$: the
# strongest push it can give.

# %%
z_wrong = np.array([[0.0, 0.0, -6.0, 6.0]])  # dog, cat, boat, bird
ce, sq = CrossEntropyLoss(), SoftmaxMSELoss(reduction="half_sum")
E_ce, E_sq = ce(z_wrong, boat), sq(z_wrong, boat)
g_ce, g_sq = ce.backward()[0], sq.backward()[0]
p_w = softmax(z_wrong, axis=1)[0]
print(f"p = {p_w.round(6)}")
print(f"cross-entropy  E = {E_ce:7.3f}   dE/dz = {g_ce.round(4)}")
print(f"squared error  E = {E_sq:7.3f}   dE/dz = {g_sq.round(4)}")

# %%
assert np.isclose(E_ce, -np.log(p_w[2])) and E_ce > 12, "cross-entropy: a large error"
assert 0.99 < E_sq < 1, "squared error: close to its largest possible value, 1"
assert g_ce[2] < -0.99, "cross-entropy pulls the boat logit up at nearly full strength"
assert np.abs(g_sq).max() < 0.01, "the squared error's gradient has all but vanished"
assert np.abs(g_sq).max() < 0.01 * np.abs(g_ce).max()

# %% [markdown]
# On the target logit alone the squared error's gradient simplifies (use $g_t = p_t - 1$ and
# $\sum_k g_k p_k = \sum_k p_k^2 - p_t$) to $p_t\,(2p_t - 1 - \sum_k p_k^2)$: it carries a factor
# $p_t$, so the more wrong the network is, the less the squared error does about it.

# %%
assert np.isclose(g_sq[2], p_w[2] * (2 * p_w[2] - 1 - np.sum(p_w**2)))
assert np.isclose(g_ce[2], p_w[2] - 1)

# %% [markdown]
# ## The loss explorer
#
# Explore this yourself. The sliders set the four logits of Wollowski's example and the menu its
# target class. Left: the softmax probabilities (the target in orange). Middle: the gradient of each
# loss with respect to each logit, on the same scale. Right: the gradient on the target logit as
# that logit alone moves from −10 to 10; the dots mark where you are.
#
# Things to try: choose the preset *confidently wrong* and look at the middle panel: only the blue
# bars remain. Then drag the boat's logit upwards and watch the right-hand panel: cross-entropy
# pushes at full strength all the way, while the squared error only wakes up once the boat is
# already competing with the bird. The presets *Wollowski's output 1 / 2* load the two outputs of
# Exercise 2.

# %%
explorer = widgets.loss_explorer()
explorer

# %% [markdown]
# The next cell drives the explorer from code, as you would with the mouse, and checks what it shows.

# %%
draws = explorer.view.draws
explorer.preset.value = "confidently wrong"
model = explorer.model
assert model.vanishing and model.grad_ratio < 0.01
explorer.logit_sliders[2].value = 6.0  # raise the boat's logit to the bird's
assert not model.vanishing and np.isclose(model.probs[2], model.probs[3])
assert explorer.view.draws > draws, "the figure was redrawn"
print(explorer.status.text)

# %% [markdown]
# ## Exercise 3: cross-entropy and its gradient, stable for any logits
#
# `CrossEntropyLoss` computes the loss and its gradient in one go; now you write both. For a batch of
# logits $Z$ of shape $(N, C)$ and integer labels $y_1, \dots, y_N$, the training error is the *mean*
# of the per-example cross-entropies (Tomasi's eq. (1)), so each example's gradient
# $\mathbf{p}_n - \mathbf{t}_n$ is divided by $N$:
#
# $$E = -\frac{1}{N}\sum_{n=1}^{N} \log p_{n, y_n}, \qquad
#   \frac{\partial E}{\partial Z} = \frac{1}{N}\big(P - T\big), \qquad P = \sigma(Z) \text{ row by row},
#   \quad T = \text{one-hot}(y).$$
#
# The logarithm needs the same care as the softmax. Computing $P$ first and then $\log p_{n, y_n}$
# fails when the true class's logit lies far below the largest one: $p_{n, y_n} \approx e^{-1000}$
# is $0$ in floating point (the smallest positive float64 is about $5 \times 10^{-324} \approx
# e^{-744}$), and $\log 0 = -\infty$. So take the logarithm on paper instead. With each row's
# maximum $m_n = \max_i z_{ni}$,
#
# $$\log p_{nj} = z_{nj} - \log\sum_{i} e^{z_{ni}} = (z_{nj} - m_n) - \log\sum_{i} e^{z_{ni} - m_n}.$$
#
# The sum on the right lies between 1 and $C$, so its logarithm is an ordinary number, and
# $\log p_{nj}$ comes out as a large negative number instead of $-\infty$. This is the
# **log-sum-exp** trick. Subtracting $m_n$ also keeps every exponent $\le 0$, as in Exercise 1, so
# logits of $+1000$ do not overflow either.
#
# Write `cross_entropy(logits, labels)`, returning the loss (one number) and $\partial E / \partial Z$
# (the shape of `logits`). You may call your `stable_softmax` and `one_hot(labels, num_classes)`. The
# self-check runs your function on a batch of $8 \times 7$, on one example with 2 classes and on
# logits of $\pm 1000$, compares the results with `CrossEntropyLoss` and with centred finite
# differences, and names the usual mistakes: the mean in the loss, the $\frac{1}{N}$ in the
# gradient (once), the axis of the softmax, and which entry of each row belongs to its label.

# %% tags=["exercise"]
def cross_entropy(logits, labels):
    """Mean cross-entropy of a batch and its gradient, for any finite logits.

    Inputs:
    - logits: (N, C) float array, one row of class scores per example.
    - labels: (N,) integer array, values in [0, C).
    Returns (loss, dlogits):
    - loss: a float, E = -(1/N) sum_n log p[n, labels[n]], through the log-sum-exp.
    - dlogits: (N, C) array, dE/dlogits = (P - T) / N.
    """
    loss = ...
    dlogits = ...
    return loss, dlogits


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "01-cross-entropy-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def cross_entropy(logits, labels):
    """Mean cross-entropy of a batch and its gradient, for any finite logits.

    Inputs:
    - logits: (N, C) float array, one row of class scores per example.
    - labels: (N,) integer array, values in [0, C).
    Returns (loss, dlogits):
    - loss: a float, E = -(1/N) sum_n log p[n, labels[n]], through the log-sum-exp.
    - dlogits: (N, C) array, dE/dlogits = (P - T) / N.
    """
    n, c = logits.shape
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), labels].mean()
    dlogits = (stable_softmax(logits) - one_hot(labels, c)) / n
    return loss, dlogits


# %% nbgrader={"grade": true, "grade_id": "01-cross-entropy-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.training_problem import check_cross_entropy

check_cross_entropy(cross_entropy)

# %% [markdown]
# By hand: for the logits $[1000, 0, -1000]$ and the label 2,
# $\log p_2 = -2000 - \log(1 + e^{-1000} + e^{-2000}) = -2000$ to every digit a float64 holds, so
# $E = 2000$, and $\mathbf{p} = [1, e^{-1000}, e^{-2000}]$ is $[1, 0, 0]$ in floating point, so the
# gradient is $\mathbf{p} - \mathbf{t} = [1, 0, -1]$. The log of the softmax, taken after the fact,
# gives $\infty$ instead.

# %%
extreme, label = np.array([[1000.0, 0.0, -1000.0]]), np.array([2])
E_extreme, dZ_extreme = cross_entropy(extreme, label)
with np.errstate(divide="ignore"):  # log 0 = -inf: silence NumPy's warning to see what happens
    E_naive = -np.log(stable_softmax(extreme)[0, 2])
print(f"log-sum-exp: E = {E_extreme}, dE/dz = {dZ_extreme[0]}    log of the softmax: E = {E_naive}")

# %%
assert np.isclose(E_extreme, 2000.0, rtol=1e-12) and np.allclose(dZ_extreme, [[1.0, 0.0, -1.0]], atol=1e-12)
assert np.isinf(E_naive), "exp(-2000) is 0.0, and -log 0 is infinite"

# %% [markdown]
# Your function returns exactly what `CrossEntropyLoss` returns on the random classifier's logits:
# the loss, and from `backward()` the `dout` that starts back-propagation through the network. Each
# row of the gradient sums to zero: raising one logit lowers the others' probabilities by just as
# much. (In float32 "zero" means a few rounding units: the ten entries of a row are each rounded to
# about 7 digits, so their sum is off by up to a few times float32's
# $\epsilon \approx 1.2 \times 10^{-7}$, and by how much depends on the machine.)

# %%
Z8, y8 = Z[:8], y[:8]  # the first eight training images, float32 logits
E8, dZ = cross_entropy(Z8, y8)
ce = CrossEntropyLoss()
assert np.isclose(E8, ce(Z8, y8), rtol=1e-5), "float32 rounding is about 1e-7 of a loss near ln 10"
assert np.allclose(dZ, ce.backward(), atol=1e-7)
assert np.allclose(dZ.sum(axis=1), 0, atol=4 * np.finfo(np.float32).eps)

# %% [markdown]
# ## Activations and their derivatives
#
# Between the layers of a deep network sits an **activation function** $h$, applied to every
# entry on its own: $\mathbf{x} = h(\mathbf{a})$ (Bouvrie's eq. (2), Tomasi's point functions).
# During back-propagation the gradient passes through it by an entrywise product with $h'(\mathbf{a})$
# (Bouvrie's eq. (4)), so wherever $h'$ is close to zero the gradient is cut off, as we just saw
# for the softmax. The four activations of the course:
#
# | activation | $h(a)$ | $h'(a)$ |
# |---|---|---|
# | ReLU | $\max(a, 0)$ | 1 for $a > 0$, 0 for $a < 0$ |
# | sigmoid | $\sigma(a) = 1 / (1 + e^{-a})$ | $\sigma(a)\,(1 - \sigma(a))$ |
# | tanh | $\tanh a$ | $1 - \tanh^2 a$ |
# | LeCun's tanh | $1.7159 \tanh(\frac{2}{3}a)$ | $1.7159 \cdot \frac{2}{3}\,(1 - \tanh^2 \frac{2}{3}a)$ |
#
# A layer's `backward(dout)` returns `dout * h'(a)`, so with `dout` all ones it returns the
# derivative itself. The grid below has an even number of points, so it skips $a = 0$, where ReLU
# has no derivative.

# %%
a = np.linspace(-4, 4, 400)
layers = {"ReLU": ReLU(), "sigmoid": Sigmoid(), "tanh": Tanh(), "LeCun's tanh": LeCunTanh()}
values, slopes = {}, {}
for name, layer in layers.items():
    values[name] = layer(a)
    slopes[name] = layer.backward(np.ones_like(a))  # dout * h'(a) with dout = 1

# %%
eps = 1e-6
for name, layer in layers.items():
    numeric = (layer(a + eps) - layer(a - eps)) / (2 * eps)
    worst = np.abs(numeric - slopes[name]).max()
    print(f"{name:13s} largest |h'(a) - finite difference| = {worst:.1e}")
    assert worst < 1e-6

# %%
with plt.ioff():
    fig, axes = plt.subplots(1, 4, figsize=(11, 2.8), sharex=True)
for ax, name in zip(axes, layers):
    ax.plot(a, values[name], label="h(a)")
    ax.plot(a, slopes[name], linestyle="--", label="h'(a)")
    ax.axhline(0, color="0.8", linewidth=0.8), ax.axvline(0, color="0.8", linewidth=0.8)
    ax.set_title(name, fontsize=10), ax.set_xlabel("a")
axes[0].legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# Read the dashed curves. The sigmoid's slope is never more than $\frac{1}{4}$, so each sigmoid
# layer shrinks the gradient passing back through it at least fourfold, and both tails are flat.
# Tanh's slope reaches 1 at $a = 0$ but it saturates too. ReLU passes the gradient unchanged
# wherever the unit is active and blocks it completely where it is not.
#
# LeCun's constants (quoted by Bouvrie) are chosen so that $h(\pm 1) = \pm 1$: targets of $\pm 1$
# then lie where the function still has a healthy slope, not in its flat tails.

# %%
lecun_at_1 = LeCunTanh()(np.array([-1.0, 1.0]))
print("LeCun's tanh at -1 and 1:", lecun_at_1)
assert np.allclose(lecun_at_1, [-1.0, 1.0], atol=1e-4)
assert np.isclose(slopes["sigmoid"].max(), 0.25, atol=1e-4) and slopes["sigmoid"].max() <= 0.25
assert np.isclose(slopes["tanh"].max(), 1.0, atol=1e-3)
assert set(np.unique(slopes["ReLU"])) == {0.0, 1.0}

# %% [markdown]
# ## Exercise 4 (optional): the sigmoid's derivative
#
# Show that $\sigma'(a) = \sigma(a)(1 - \sigma(a))$ (differentiate $(1 + e^{-a})^{-1}$ and write
# $e^{-a}/(1 + e^{-a})$ as $1 - \sigma(a)$), then implement it. It has to work for $a = \pm 800$
# too, where $e^{800}$ overflows; computing $\sigma$ first and reusing it avoids that
# (`Sigmoid()(a)` is an overflow-free $\sigma$).

# %% tags=["exercise"]
def sigmoid_derivative(a):
    """sigma'(a), elementwise, for a float array a."""
    ...  # your code here


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "01-sigmoid-derivative-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def sigmoid_derivative(a):
    """sigma'(a), elementwise, for a float array a."""
    s = Sigmoid()(a)
    return s * (1 - s)


# %% nbgrader={"grade": true, "grade_id": "01-sigmoid-derivative-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.training_problem import check_sigmoid_derivative

check_sigmoid_derivative(sigmoid_derivative)

# %% [markdown]
# ## The training loop in five steps
#
# Wollowski lists what training does:
#
# 1. initialise all weights (and filters) with random values;
# 2. run the network on training examples, finishing with a softmax;
# 3. compute the error at the output;
# 4. back-propagate to get the gradient of the error with respect to every weight, and take a
#    **gradient-descent** step, $\mathbf{w} \leftarrow \mathbf{w} - \eta\, \partial E / \partial \mathbf{w}$
#    (Bouvrie's eq. (6)), with a small **learning rate** $\eta$;
# 5. repeat steps 2 to 4.
#
# Wollowski scores step 3 with the squared error; we use cross-entropy, for the reason the
# explorer showed. Here every step uses all 2,000 training images (lesson 06 compares this with
# online and mini-batch training), and the update is written out by hand: no optimizer yet.

# %%
net = Linear(784, 10, rng=0)  # step 1: random weights (the classifier from the start of the lesson)
loss_fn = CrossEntropyLoss()
lr = 0.1
losses = []
for step in range(30):  # step 5: repeat
    logits = net(X)  # step 2: run the network (the softmax is inside the loss)
    losses.append(loss_fn(logits, y))  # step 3: the training error E(w)
    net.backward(loss_fn.backward())  # step 4: dE/dW and dE/db land in .grad ...
    for param in net.parameters():
        param.data -= lr * param.grad  # ... and gradient descent moves the weights downhill
print(f"E(w) after 0, 10, 20, 29 steps: {losses[0]:.3f}, {losses[10]:.3f}, {losses[20]:.3f}, {losses[-1]:.3f}")

# %%
assert np.isclose(losses[0], E, rtol=1e-4), "step 0 is the untrained classifier of the first section"
assert np.all(np.diff(losses) < 0), "with this small learning rate every step lowers E"
assert losses[-1] < 0.5 * losses[0]

# %%
with plt.ioff():
    fig, ax = plt.subplots(figsize=(6, 2.8))
ax.plot(losses, marker=".")
ax.axhline(np.log(10), color="tab:red", linestyle="--", label="ln 10 (uniform guess)")
ax.set_xlabel("gradient-descent step"), ax.set_ylabel("training error E(w)")
ax.legend(fontsize=8)
fig.tight_layout()
fig

# %% [markdown]
# A falling training error is what we asked for, but the point of training is to do well on images
# the network has never seen. Thirty steps of a linear classifier already beat the chance level of
# 10% by a wide margin on the test images:

# %%
X_test, y_test, _ = load_fashion_mnist("test")
X_test, y_test = X_test[:1000].reshape(1000, -1), y_test[:1000]
accuracy = (net(X_test).argmax(axis=1) == y_test).mean()
print(f"test accuracy after 30 steps: {accuracy:.1%}")
assert accuracy > 0.5

# %% [markdown]
# ## Summary
#
# * Training minimises the training error $E(\mathbf{w}) = \frac{1}{N}\sum_n E_n(\mathbf{w})$, the
#   average of a per-example loss (Tomasi's eq. (1)), plus, later, a regulariser $\lambda\Omega$.
# * The softmax turns logits into probabilities; subtracting the row maximum first makes it safe
#   for any logits, and changes nothing else.
# * Squared error and cross-entropy both rank Wollowski's outputs correctly, but their gradients
#   differ: cross-entropy's is $\mathbf{p} - \mathbf{t}$ (divided by $N$ for a batch mean), while the
#   squared error's passes through the softmax Jacobian and vanishes when the network is
#   confidently wrong.
# * An activation multiplies the backward gradient by $h'(a)$: at most $\frac{1}{4}$ for the
#   sigmoid, 0 or 1 for ReLU.
# * The training loop: initialise, run forward, measure the error, back-propagate and step
#   downhill, repeat.
#
# Step 4 hid all the work inside `net.backward`. Lesson 02 opens it up: back-propagation through
# several layers, by hand, for one example and for a batch.
