# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Four ways to differentiate
#
# Gradient descent needs, at every step, the derivative of the training error with respect to every
# weight of the network. Khan et al. (§5.5) list four ways a computer can get a derivative:
#
# | method | how | accuracy | what it costs |
# |---|---|---|---|
# | **analytical** | you derive the formula by hand and code it | exact | your time, and your mistakes |
# | **numerical** | evaluate $f$ at nearby points, take a difference quotient | approximate | 1–2 evaluations of $f$ per input |
# | **symbolic** | a computer algebra system applies the rules of calculus to the formula | exact | expressions that swell |
# | **automatic** | the program itself is differentiated, one elementary operation at a time | exact to rounding | a small multiple of one evaluation |
#
# This lesson tries all four on one function, measures where each one breaks, and ends where the
# course needs it: back-propagation *is* automatic differentiation in reverse mode, and finite
# differences are how we check that a hand-written backward pass is right (Bouvrie §4.4).

# %%
# %matplotlib widget
import math

import matplotlib.pyplot as plt
import numpy as np

import widgets
from cnnlab import Sequential
from cnnlab import autodiff as ad
from cnnlab.autodiff import Dual
from cnnlab.gradcheck import gradcheck_network
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from cnnlab.losses import CrossEntropyLoss
from cnnlab.numdiff import central_difference, forward_difference, step_size_sweep

# %% [markdown]
# ## The running example
#
# Khan's worked example (eq. 5.36) is small enough to differentiate by hand and tangled enough to make
# it tedious:
#
# $$f(x) = \exp\!\big(\sin x + \sin^2 x\big) + \sin\!\big(e^{x} + e^{2x}\big).$$
#
# The second term oscillates faster and faster as $x$ grows, because its inner function $e^x + e^{2x}$
# grows exponentially. Written with NumPy, `f` works on a single number or on a whole array of points.

# %%
def f(x):
    return np.exp(np.sin(x) + np.sin(x) ** 2) + np.sin(np.exp(x) + np.exp(x) ** 2)


xs = np.linspace(-2, 2, 801)
print(f"f(0) = {f(0.0):.6f}   f(1) = {f(1.0):.6f}")

# %% [markdown]
# ## 1 · Analytical differentiation
#
# The chain rule, applied to each term, gives Khan's eq. 5.37:
#
# $$f'(x) = \cos\!\big(e^{2x} + e^{x}\big)\,\big(2e^{2x} + e^{x}\big)
#         + \exp\!\big(\sin^2 x + \sin x\big)\,\big(\cos x + 2\cos x \sin x\big).$$
#
# Exact, and as fast to evaluate as $f$ itself, but only as good as the person who derived it. So the
# first thing to do with a hand-derived formula is to compare it with something independent: here a
# central difference (section 2) at 801 points.

# %%
def df(x):
    return (np.cos(np.exp(2 * x) + np.exp(x)) * (2 * np.exp(2 * x) + np.exp(x))
            + np.exp(np.sin(x) ** 2 + np.sin(x)) * (np.cos(x) + 2 * np.cos(x) * np.sin(x)))


def disagreement(values, reference):
    """Largest |values - reference|, relative to |reference| (or to 1 where |reference| < 1)."""
    return np.max(np.abs(values - reference) / np.maximum(np.abs(reference), 1.0))


numeric = central_difference(f, xs, h=1e-6)
worst = disagreement(numeric, df(xs))
print(f"largest disagreement with central differences on [-2, 2]: {worst:.1e}")
assert worst < 1e-7, "eq. 5.37 agrees with finite differences everywhere on the grid"

# %%
with plt.ioff():
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(7, 4.2), sharex=True)
ax0.plot(xs, f(xs), color="C2")
ax0.set_ylabel("$f(x)$")
ax1.plot(xs, df(xs), color="C3")
ax1.axhline(0, color="gray", lw=0.5)
ax1.set_ylabel("$f'(x)$")
ax1.set_xlabel("$x$")
ax0.set_title("Khan's example (eq. 5.36) and its derivative (eq. 5.37)", fontsize=10)
fig.tight_layout()
fig

# %% [markdown]
# ## 2 · Numerical differentiation
#
# Khan's eq. 5.35, Newton's difference quotient, is the slope of the chord from $x$ to $x+h$:
#
# $$f'(x) \approx \frac{f(x+h) - f(x)}{h} \qquad \text{(forward difference)}.$$
#
# Taylor's theorem tells how wrong it is. Since $f(x+h) = f(x) + h f'(x) + \tfrac{h^2}{2}f''(x) +
# \tfrac{h^3}{6}f'''(x) + \dots$, the forward difference is off by about $\tfrac{h}{2}|f''(x)|$: the
# error shrinks only like $h$. Taking the chord from $x-h$ to $x+h$ instead cancels the $h^2$ terms:
#
# $$f'(x) \approx \frac{f(x+h) - f(x-h)}{2h} \qquad \text{(central difference)},$$
#
# off by about $\tfrac{h^2}{6}|f'''(x)|$: one more evaluation, a much better estimate.

# %%
x0, h = -1.0, 1e-4
errors = {name: abs(method(f, x0, h) - df(x0))
          for name, method in [("forward", forward_difference), ("central", central_difference)]}
print(f"at x = {x0}, h = {h:g}: forward error {errors['forward']:.1e}, central error {errors['central']:.1e}")
assert errors["central"] < errors["forward"] / 1000

# %% [markdown]
# ### The step-size trade-off
#
# So make $h$ tiny? No: a computer stores $f(x)$ with a relative error of about the machine epsilon
# $\epsilon$ ($2.2\times10^{-16}$ in float64). The difference $f(x+h) - f(x)$ then carries an error of
# about $\epsilon |f(x)|$, and dividing it by $h$ amplifies it to $\epsilon|f(x)|/h$. The total
# error of the forward difference is therefore roughly
#
# $$\underbrace{\tfrac{h}{2}|f''(x)|}_{\text{truncation}} + \underbrace{\epsilon |f(x)|/h}_{\text{round-off}},$$
#
# smallest where the two balance, at $h \sim \sqrt{\epsilon} \approx 10^{-8}$. For the central
# difference the truncation error is $\propto h^2$ and the balance lies at $h \sim \sqrt[3]{\epsilon}
# \approx 6\times10^{-6}$. On a log-log plot each error curve is a V: slope $-1$ on the left
# (round-off), slope $1$ (forward) or $2$ (central) on the right (truncation).
#
# The explorer below sweeps 161 steps from $10^{-16}$ to $1$. Move $x$, and switch to float32
# ($\epsilon \approx 1.2\times10^{-7}$): the V moves up and to the right, and even the best step
# leaves an error thousands of times larger than in float64. The dashed lines are the error models
# above. (At the far left of the float32 plot $x + h$ rounds to $x$: both differences are 0.)

# %%
explorer = widgets.step_size_explorer(x=-1.0)
explorer

# %% [markdown]
# The same sweep from code, to check what the plot shows: where each error is smallest, and the
# slopes of the two arms of each V (a straight-line fit of $\log_{10}$ error against $\log_{10} h$).

# %%
hs = np.logspace(-14, -1, 131)
sweep = step_size_sweep(f, df, x0, hs)
eps = np.finfo(np.float64).eps


def slope(h, err, lo, hi):
    """Slope of log10(err) against log10(h) for lo <= h <= hi."""
    keep = (h >= lo) & (h <= hi) & (err > 0)
    return np.polyfit(np.log10(h[keep]), np.log10(err[keep]), 1)[0]


slopes = {"forward, truncation": slope(hs, sweep.forward_error, 1e-5, 1e-2),
          "central, truncation": slope(hs, sweep.central_error, 1e-3, 1e-1),
          "forward, round-off": slope(hs, sweep.forward_error, 1e-14, 1e-10),
          "central, round-off": slope(hs, sweep.central_error, 1e-14, 1e-8)}
print(f"best forward h = {sweep.best_forward_h:.1e} (sqrt(eps) = {eps ** 0.5:.1e}), "
      f"best central h = {sweep.best_central_h:.1e} (cbrt(eps) = {eps ** (1 / 3):.1e})")
print({name: round(float(s), 2) for name, s in slopes.items()})

# %%
assert abs(math.log10(sweep.best_forward_h / eps ** 0.5)) < 1, "best forward step within 10x of sqrt(eps)"
assert abs(math.log10(sweep.best_central_h / eps ** (1 / 3))) < 1, "best central step within 10x of cbrt(eps)"
assert abs(slopes["forward, truncation"] - 1) < 0.1 and abs(slopes["central, truncation"] - 2) < 0.1
assert abs(slopes["forward, round-off"] + 1) < 0.25 and abs(slopes["central, round-off"] + 1) < 0.25
assert sweep.central_error.min() < sweep.forward_error.min() / 10, "the central difference gets closer"

# %% [markdown]
# The round-off arm is ragged because rounding errors are erratic, so the very best step moves around
# from point to point; $\sqrt{\epsilon}$ and $\sqrt[3]{\epsilon}$ are rules of thumb, right to within a
# factor of ten or so. Now drive the explorer from code: switch it to float32 and move $x$.

# %%
draws = explorer.view.draws
explorer.precision.value = "float32"
assert explorer.model.eps == np.finfo(np.float32).eps and explorer.view.draws > draws
assert explorer.model.best_central_h > 1e-4, "in float32 the best step is far larger"
assert explorer.model.sweep.central_error.min() > 1000 * sweep.central_error.min(), "and far less accurate"
explorer.x.value = 0.5
assert explorer.model.x == 0.5 and explorer.view.draws > draws + 1

# %% [markdown]
# ## Exercise 1: the gradient of a function of many variables
#
# A loss depends on many weights at once. Its gradient by central differences perturbs **one entry
# at a time**: for every index $i$,
#
# $$\frac{\partial f}{\partial x_i} \approx \frac{f(x + h\,e_i) - f(x - h\,e_i)}{2h},$$
#
# where $e_i$ is the array with a 1 at index $i$ and 0 elsewhere. Complete `central_gradient` for an
# array `x` of any shape (`np.ndindex(x.shape)` visits every index). You may change `x[i]` in place,
# but put it back afterwards: the caller's array must come out unchanged.

# %% tags=["exercise"]
def central_gradient(f, x, h=1e-5):
    """Gradient of a scalar function f at x (an array of any shape) by central differences."""
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        ...  # your code: evaluate f with x[i] moved by +h and by -h, set grad[i], restore x[i]
    return grad


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "05-central-gradient-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def central_gradient(f, x, h=1e-5):
    """Gradient of a scalar function f at x (an array of any shape) by central differences."""
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        f_plus = f(x)
        x[i] = old - h
        f_minus = f(x)
        x[i] = old
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


# %% nbgrader={"grade": true, "grade_id": "05-central-gradient-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.differentiation import check_central_gradient

check_central_gradient(central_gradient)

# %% [markdown]
# Note the cost: two evaluations of $f$ for **each** of the $n$ inputs. For a network with $W$ weights
# each evaluation is a forward pass of cost $O(W)$, so the whole gradient costs $O(W^2)$ (Bouvrie
# §4.4): fine to check a layer with a few hundred weights, hopeless as a way to train.

# %% [markdown]
# ## 3 · Symbolic differentiation
#
# A computer algebra system applies the rules of calculus to a formula and returns a formula. SymPy is
# one, written in Python. It is an *optional* extra of this course: if it is not installed, the cells
# below say so and skip the SymPy part (`pip install sympy` to see it).

# %%
try:
    import sympy as sp
except ImportError:
    sp = None
    print("SymPy is not installed: the SymPy cells below are skipped (pip install sympy to run them).")
else:
    print(f"SymPy {sp.__version__} is available.")

# %% [markdown]
# SymPy differentiates eq. 5.36 and we ask it whether its answer minus eq. 5.37 simplifies to zero.
# Without SymPy the cell checks eq. 5.37 once more at the same grid, with forward-mode automatic
# differentiation (section 4), which has no step size and so should agree to rounding. "To rounding"
# is not 1e-16 everywhere: near $x = 2$ the formula takes the cosine of $e^{2x} + e^x \approx 60$,
# where one rounding of the argument (about $10^{-14}$) moves $f'$ by about $10^{-12}$, and another
# processor's `exp` may round differently. So the cells allow $10^{-10}$, still a hundred times below
# the central difference's disagreement above.

# %%
if sp is not None:
    x_ = sp.Symbol("x")
    f_sym = sp.exp(sp.sin(x_) + sp.sin(x_) ** 2) + sp.sin(sp.exp(x_) + sp.exp(x_) ** 2)
    df_sym = sp.diff(f_sym, x_)
    eq_537 = (sp.cos(sp.exp(2 * x_) + sp.exp(x_)) * (2 * sp.exp(2 * x_) + sp.exp(x_))
              + sp.exp(sp.sin(x_) ** 2 + sp.sin(x_)) * (sp.cos(x_) + 2 * sp.cos(x_) * sp.sin(x_)))
    print("SymPy: f'(x) =", df_sym)
    assert sp.simplify(df_sym - eq_537) == 0, "SymPy's derivative is Khan's eq. 5.37"
    assert disagreement(sp.lambdify(x_, df_sym, "numpy")(xs), df(xs)) < 1e-10, "the same numbers, to rounding"
else:
    khan_ad = lambda x: ad.exp(ad.sin(x) + ad.sin(x) ** 2) + ad.sin(ad.exp(x) + ad.exp(x) ** 2)
    exact = np.array([ad.derivative(khan_ad, float(x)) for x in xs])
    print(f"(no SymPy) eq. 5.37 against forward-mode AD: largest disagreement {disagreement(exact, df(xs)):.1e}")
    assert disagreement(exact, df(xs)) < 1e-10, "the same numbers, to rounding"

# %% [markdown]
# ### Expression swell
#
# Khan's symbolic example is the 10th derivative of $g(x) = e^{\sin x}$. Each derivative of
# $e^{\sin x}\,\sin^a x \cos^b x$ produces up to three new terms, by the product rule:
#
# $$\frac{d}{dx}\Big(e^{\sin x}\sin^a x\cos^b x\Big) = e^{\sin x}\Big(\sin^a x\cos^{b+1} x
#   + a\,\sin^{a-1}x\cos^{b+1}x - b\,\sin^{a+1}x\cos^{b-1}x\Big).$$
#
# So $g^{(k)}(x) = e^{\sin x}\,P_k(\sin x, \cos x)$ for a polynomial $P_k$. The cell below applies
# that one rule ten times to a dictionary $\{(a, b): \text{coefficient}\}$, which is exactly what a
# computer algebra system does, and counts the terms.

# %%
def derivative_polynomial(k):
    """P_k with d^k/dx^k exp(sin x) = exp(sin x) * sum of coeff * sin^a(x) cos^b(x), as {(a, b): coeff}."""
    poly = {(0, 0): 1}
    for _ in range(k):
        new = {}
        for (a, b), c in poly.items():
            for term, coeff in [((a, b + 1), c), ((a - 1, b + 1), a * c), ((a + 1, b - 1), -b * c)]:
                if coeff:
                    new[term] = new.get(term, 0) + coeff
        poly = {term: c for term, c in new.items() if c}
    return poly


terms = [len(derivative_polynomial(k)) for k in range(11)]
print("terms of the k-th derivative of exp(sin x), k = 0..10:", terms)

# %% [markdown]
# The numbers Khan's Matlab session prints for the 10th derivative, $256\,e^{\sin x}\cos^2 x -
# e^{\sin x}\sin x - 5440\,e^{\sin x}\cos^4 x + 2352\,e^{\sin x}\cos^6 x - \dots$, must be among our
# coefficients; and the first two derivatives, $\cos x\,e^{\sin x}$ and $(\cos^2 x - \sin x)\,e^{\sin x}$,
# are easy to check by hand.

# %%
p10 = derivative_polynomial(10)
assert p10[(0, 2)] == 256 and p10[(1, 0)] == -1 and p10[(0, 4)] == -5440 and p10[(0, 6)] == 2352
assert derivative_polynomial(1) == {(0, 1): 1}
assert derivative_polynomial(2) == {(0, 2): 1, (1, 0): -1}
assert terms[10] == 20 and all(a <= b for a, b in zip(terms, terms[1:])), "the expression only grows"
biggest = max(p10.values(), key=abs)
print(f"the 10th derivative has {terms[10]} terms; its largest coefficient is {biggest}")

# %%
if sp is not None:
    d10 = sp.diff(sp.exp(sp.sin(x_)), x_, 10)
    sympy_terms = [len(sp.Add.make_args(sp.expand(sp.diff(sp.exp(sp.sin(x_)), x_, k)))) for k in range(11)]
    print(f"SymPy: 10th derivative has {sp.count_ops(d10)} operations, {len(str(d10))} characters; "
          f"terms per order: {sympy_terms}")
    assert sympy_terms == terms, "SymPy finds the same number of terms"
else:
    print("(skipped: needs SymPy)")

# %% [markdown]
# One function of one variable, twenty terms after ten derivatives. A network's loss is a function of
# hundreds of thousands of weights, composed through many layers; a formula per weight would swell far
# beyond anything worth evaluating. What we want is the *numbers* of the derivative at the current
# weights, never the formula. That is what automatic differentiation computes.

# %% [markdown]
# ## 4 · Automatic differentiation, forward mode
#
# A program is a chain of elementary operations ($+$, $\times$, $\sin$, $\exp$, ...) whose derivatives
# are known. Forward mode carries the derivative *along* with every value. A **dual number**
# $a + a'\varepsilon$ with the rule $\varepsilon^2 = 0$ does exactly that: Taylor's theorem gives
# $g(a + a'\varepsilon) = g(a) + g'(a)\,a'\,\varepsilon$, so
#
# $$(a + a'\varepsilon)(b + b'\varepsilon) = ab + (a'b + ab')\,\varepsilon, \qquad
#   \sin(a + a'\varepsilon) = \sin a + \cos(a)\,a'\,\varepsilon .$$
#
# Start with $x + 1\varepsilon$ (since $dx/dx = 1$), run the program, and the $\varepsilon$ part of the
# result is $f'(x)$: Khan's Algorithm 1 with a derivative riding on every intermediate value.
# `cnnlab.autodiff.Dual(value, deriv)` is such a number.

# %% [markdown]
# ## Exercise 2: two rules of forward mode
#
# Write the product rule and the sine rule for dual numbers. Each function receives `Dual`s (read
# `a.value` and `a.deriv`) and returns a new `Dual(value, deriv)`. Use `math.sin` and `math.cos`.

# %% tags=["exercise"]
def dual_mul(a, b):
    """The Dual of a * b."""
    return ...  # your code: Dual(value of the product, derivative of the product)


def dual_sin(a):
    """The Dual of sin(a)."""
    return ...  # your code


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "05-dual-rules-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
def dual_mul(a, b):
    """The Dual of a * b."""
    return Dual(a.value * b.value, a.deriv * b.value + a.value * b.deriv)


def dual_sin(a):
    """The Dual of sin(a)."""
    return Dual(math.sin(a.value), math.cos(a.value) * a.deriv)


# %% nbgrader={"grade": true, "grade_id": "05-dual-rules-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.differentiation import check_dual_rules

check_dual_rules(dual_mul, dual_sin)

# %% [markdown]
# `cnnlab.autodiff` has these rules for every operation Khan's example needs. Below, the example is
# evaluated step by step as Khan decomposes it (eq. 5.38), on dual numbers: every row shows a value
# and its derivative with respect to $x$, computed in the same pass.

# %%
def khan_steps(x):
    """Khan's eq. 5.38: the example as nine elementary steps; returns them by name."""
    a = ad.sin(x); b = a ** 2; c = a + b; d = ad.exp(c)
    e = ad.exp(x); f = e ** 2; g = e + f; h = ad.sin(g)
    return {"x": x, "a": a, "b": b, "c": c, "d": d, "e": e, "f": f, "g": g, "h": h, "y": d + h}


steps = khan_steps(Dual(x0, 1.0))
print(f"{'node':>4}  {'value':>10}  {'d node / dx':>12}")
for name, v in steps.items():
    print(f"{name:>4}  {v.value:10.6f}  {v.deriv:12.6f}")

# %%
assert math.isclose(steps["y"].value, f(x0), rel_tol=1e-14)
assert math.isclose(steps["y"].deriv, df(x0), rel_tol=1e-13), "forward mode gives eq. 5.37's value"
assert steps["b"].deriv == 2 * steps["a"].value * steps["a"].deriv, "each row applied one rule"
forward_mode = np.array([ad.derivative(lambda x: khan_steps(x)["y"], float(x)) for x in xs])
assert disagreement(forward_mode, df(xs)) < 1e-10, "exact to rounding at all 801 points, no step size"

# %% [markdown]
# ## 5 · Automatic differentiation, reverse mode
#
# Reverse mode splits the work in two. The forward pass only computes values, but records the graph:
# which node was computed from which, and the local derivative of each step (Khan's eq. 5.40:
# $\partial d/\partial c = e^{c}$, $\partial h/\partial g = \cos g$, $\partial f/\partial e = 2e$, ...).
# Then a backward sweep, from the output to the input, computes the **adjoint** $\bar v = \partial
# y/\partial v$ of every node $v$ (Khan's Algorithm 2):
#
# $$\bar y = 1, \qquad \bar v = \sum_{\text{children } u \text{ of } v} \bar u\;\frac{\partial u}{\partial v}.$$
#
# A node used by two children collects both contributions: in Khan's eq. 5.39, $a$ feeds $b = a^2$ and
# $c = a + b$, and $e$ feeds $f = e^2$ and $g = e + f$. `cnnlab.autodiff.Var` records the graph. Here
# is the forward pass at $x = -1$; nothing has been differentiated yet.

# %%
steps = khan_steps(ad.Var(x0))
for name, node in steps.items():
    node.name = name
y = steps["y"]
val = {name: node.value for name, node in steps.items()}
for row in ad.trace(y):
    print(f"{row.name:>2} = {row.expr:<8} value {row.value:10.6f}")

# %% [markdown]
# The backward sweep starts at $y = d + h$: $\bar d = \bar h = 1$. Then $\bar g = \bar h\,\cos g$, and
# $f$ only feeds $g = e + f$, so $\bar f = \bar g \cdot 1$:

# %%
dy_dh = 1.0
dy_dg = dy_dh * math.cos(val["g"])
dy_df = dy_dg * 1.0
print(f"dy/dg = {dy_dg:.6f}, dy/df = {dy_df:.6f}")

# %% [markdown]
# ## Exercise 3: one row of the backward sweep
#
# Compute the adjoint $\bar e = \partial y/\partial e$ from `dy_dg`, `dy_df` and the values in `val`
# (for example `val["e"]`). Look at which nodes use $e$, and at the local derivative along each edge.

# %% tags=["exercise"]
dy_de = ...  # your code

# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "05-adjoint-e-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
dy_de = dy_dg * 1.0 + dy_df * 2 * val["e"]

# %% nbgrader={"grade": true, "grade_id": "05-adjoint-e-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.differentiation import check_adjoint_e

check_adjoint_e(dy_de, x0)

# %% [markdown]
# Now the library's backward sweep fills in every adjoint at once. Check the table against the chain
# rule written out for each node (eq. 5.39 with the local derivatives of eq. 5.40), against your
# `dy_de`, and, in the last row, against eq. 5.37.

# %%
y.backward()
adj = {name: node.grad for name, node in steps.items()}
print(f"{'node':>4}  {'computed as':<8}  {'value':>10}  {'adjoint dy/d(node)':>19}")
for row in ad.trace(y):
    print(f"{row.name:>4}  {row.expr:<8}  {row.value:10.6f}  {row.adjoint:19.6f}")

# %%
close = lambda p, q: math.isclose(p, q, rel_tol=1e-12, abs_tol=1e-14)
assert adj["y"] == 1 and adj["d"] == 1 and adj["h"] == 1
assert close(adj["c"], math.exp(val["c"])) and close(adj["g"], math.cos(val["g"]))
assert close(adj["b"], adj["c"]) and close(adj["f"], adj["g"])
assert close(adj["a"], adj["c"] + adj["b"] * 2 * val["a"]), "a has two children: b and c"
assert close(adj["e"], adj["g"] + adj["f"] * 2 * val["e"]) and close(adj["e"], dy_de)
assert close(adj["x"], adj["a"] * math.cos(x0) + adj["e"] * math.exp(x0)), "x has two children: a and e"
assert close(adj["x"], df(x0)), "reverse mode gives eq. 5.37's value"

# %% [markdown]
# > **The source says:** line 4 of Khan et al.'s Algorithm 2 (backward mode) is
# > $\frac{dy_n}{dy_i} \leftarrow \sum_{j \in \mathrm{Ch}(f_i^e)} \frac{dy_n}{dy_j}\,\frac{df_i^e}{dy_i}$.
# > Taken at its word, $f_i^e$ is the step that produces $y_i$, so the factor is $dy_i/dy_i = 1$, the
# > same for every child $j$.
# >
# > **We do:** multiply each child's adjoint by that child's own local derivative, $\partial y_j/\partial y_i$,
# > as the chapter's worked example does (eq. 5.39: $\frac{dy}{da} = \frac{dy}{dc}\frac{dc}{da} + \frac{dy}{db}\frac{db}{da}$).
# >
# > **Why:** the chain rule follows each edge $i \to j$ with the derivative of that edge. With the
# > printed factor, $dy/dx$ only counts the paths from $x$ to $y$ (four in eq. 5.38).
#
# Both readings of line 4 on Khan's graph at $x = -1$, against eq. 5.37 and a central difference:

# %%
children = {"x": "ae", "a": "bc", "b": "c", "c": "d", "d": "y", "e": "fg", "f": "g", "g": "h", "h": "y"}
edge = {("x", "a"): math.cos(x0), ("x", "e"): math.exp(x0), ("a", "b"): 2 * val["a"], ("a", "c"): 1.0,
        ("b", "c"): 1.0, ("c", "d"): math.exp(val["c"]), ("d", "y"): 1.0, ("e", "f"): 2 * val["e"],
        ("e", "g"): 1.0, ("f", "g"): 1.0, ("g", "h"): math.cos(val["g"]), ("h", "y"): 1.0}  # dy_j/dy_i (eq. 5.40)


def line_4(factor):
    """Algorithm 2's sweep over the nodes in reverse order; factor(i, j) is the factor of child j's term."""
    adjoint = {"y": 1.0}
    for i in "hgfedcbax":
        adjoint[i] = sum(adjoint[j] * factor(i, j) for j in children[i])
    return adjoint["x"]


as_printed, as_meant = line_4(lambda i, j: 1.0), line_4(lambda i, j: edge[(i, j)])
print(f"dy/dx at x = -1: line 4 as printed {as_printed}, as meant {as_meant:.6f}, "
      f"eq. 5.37 {df(x0):.6f}, central difference {central_difference(f, x0, 1e-5):.6f}")
assert as_printed == 4.0, "the printed factor counts the paths x->a->b->c, x->a->c, x->e->f->g, x->e->g"
assert close(as_meant, df(x0)) and close(as_meant, adj["x"])
assert abs(central_difference(f, x0, 1e-5) - as_meant) < 1e-8 < 1 < abs(as_printed - as_meant)

# %% [markdown]
# ## Exercise 4: reverse mode from scratch
#
# Khan et al. write the backward sweep as **Algorithm 2**. Number the nodes in the order the forward
# pass computed them, $y_0 = x$ (the input), $y_1, \dots, y_n = y$ (the output), so that every node
# comes after the nodes it is computed from. Their algorithm reads:
#
# 1. perform the forward propagation (here: record, for each node, its parents and local derivatives);
# 2. for all $i \in [n-1, 0]$:
# 3. $\qquad$ (the chain rule, using the child nodes in the graph)
# 4. $\qquad\dfrac{dy_n}{dy_i} \leftarrow \displaystyle\sum_{j \in \mathrm{Ch}(f_i^e)}
#    \frac{dy_n}{dy_j}\,\frac{df_i^e}{dy_i}$
# 5. end for;
# 6. $\dfrac{dy_n}{dx} \leftarrow \dfrac{dy_n}{dy_0}$,
#
# starting from $dy_n/dy_n = 1$, which the algorithm leaves implicit. **Line 4 as printed
# differentiates the wrong function** (the box above): the factor in the sum must change with the
# child $j$, and what is meant is $\partial y_j/\partial y_i$. We write line 4 as
# $\dfrac{\partial y_n}{\partial y_i} \leftarrow \sum_{j \in \mathrm{Ch}(i)}
# \dfrac{\partial y_n}{\partial y_j}\,\dfrac{\partial y_j}{\partial y_i}$ (for $y = \sin(x)\cdot x$,
# node $x$ has two children and the two terms are $\bar y_{\sin}\cos x$ and $\bar y_{\cdot}\,
# \sin x$: one factor $df_i/dy_i$ for both would be wrong).
#
# How to read line 4: $\mathrm{Ch}(i)$ is the set of **children** of node $i$, the nodes computed
# directly from $y_i$ (node $i$ is a *parent* of each of them). $\partial y_n/\partial y_j$ is the
# adjoint $\bar y_j$ of a child, and $\partial y_j/\partial y_i$ is the local derivative of one step,
# recorded in the forward pass (for $y_j = \sin y_i$ it is $\cos y_i$; for $y_j = y_i\, y_k$ it is
# $y_k$, the *other* factor; for $y_j = y_i + y_k$ it is 1; a plain number in $y_j = 3 y_i$ or
# $y_j = y_i + 2.5$ is a constant, not a node). Every child $j$ comes after $i$, so when the loop
# reaches $i$ all the adjoints in the sum are final. That is the one thing the order is for.
#
# A program knows a node's parents, not its children, so in code the sum is easier turned around:
# when a node's adjoint is final, **add** $\bar y_j\,\partial y_j/\partial y_i$ to the adjoint of each of
# its parents $i$. Every term of line 4 then arrives, one child at a time; that is why a node used
# twice (like $a$ and $e$ in Khan's example, or $x$ in $x \cdot x + x$) must *accumulate*, never
# overwrite. And a node may pass its adjoint on only when all its children have been visited: visit the
# nodes in **reverse topological order** (a topological order lists every node after all its parents; a
# depth-first search that appends a node once all its parents are appended gives one).
#
# Write the class. `__init__` is given: a node stores its `value`, its `parents` as a tuple of pairs
# `(parent, local derivative)`, and its adjoint in `grad`. Each operation computes its value and returns
# a **new** `Var` with its parents; a plain number on either side is a constant (`2 * x` calls
# `x.__rmul__(2)`). `backward()` sets `grad` of every node below `y` to $\partial y/\partial(\text{node})$;
# as a `cnnlab` layer's backward, it overwrites the previous result, so calling it twice gives the same
# adjoints: reset every node's `grad` to 0 before seeding $\bar y = 1$. The self-check tries a single
# operation at a time, $x\cdot x + x$, a diamond, a chain of 300 nodes and eq. 5.36 at three points,
# against `cnnlab.autodiff` and centred finite differences.

# %% tags=["exercise"]
class Var:
    """A node of a computational graph for reverse mode: y_i of Khan's Algorithm 2.

    Attributes:
    - value: the number computed in the forward pass (a float).
    - parents: tuple of (parent Var, local derivative d self / d parent) pairs; () for an input.
    - grad: the adjoint dy/d(self), set by y.backward(); 0.0 before.
    """

    def __init__(self, value, parents=()):
        self.value = float(value)
        self.parents = parents
        self.grad = 0.0

    def __add__(self, other):
        """self + other, other a Var or a plain number: d/dself = 1 (and d/dother = 1)."""
        return ...  # your code: a new Var(value, parents)

    def __radd__(self, other):
        """other + self for a plain number other."""
        return ...  # your code

    def __mul__(self, other):
        """self * other, other a Var or a plain number: d/dself = other, d/dother = self."""
        return ...  # your code

    def __rmul__(self, other):
        """other * self for a plain number other."""
        return ...  # your code

    def sin(self):
        """sin(self): d/dself = cos(self.value)."""
        return ...  # your code (math.sin, math.cos)

    def exp(self):
        """exp(self): d/dself = exp(self.value)."""
        return ...  # your code

    def backward(self):
        """Set .grad of every node of self's graph to d self / d node (Khan's Algorithm 2).

        1. list the nodes in topological order (each after all its parents);
        2. set every grad to 0, then self.grad = 1;
        3. in reverse order, add node.grad * local to the grad of each parent.
        """
        ...  # your code


# %% jupyter={"source_hidden": true} nbgrader={"grade": false, "grade_id": "05-var-solution", "locked": false, "schema_version": 3, "solution": true, "task": false} tags=["solution"]
class Var:
    """A node of a computational graph for reverse mode: y_i of Khan's Algorithm 2.

    Attributes:
    - value: the number computed in the forward pass (a float).
    - parents: tuple of (parent Var, local derivative d self / d parent) pairs; () for an input.
    - grad: the adjoint dy/d(self), set by y.backward(); 0.0 before.
    """

    def __init__(self, value, parents=()):
        self.value = float(value)
        self.parents = parents
        self.grad = 0.0

    def __add__(self, other):
        if isinstance(other, Var):
            return Var(self.value + other.value, ((self, 1.0), (other, 1.0)))
        return Var(self.value + other, ((self, 1.0),))

    def __radd__(self, other):
        return self + other

    def __mul__(self, other):
        if isinstance(other, Var):
            return Var(self.value * other.value, ((self, other.value), (other, self.value)))
        return Var(self.value * other, ((self, float(other)),))

    def __rmul__(self, other):
        return self * other

    def sin(self):
        return Var(math.sin(self.value), ((self, math.cos(self.value)),))

    def exp(self):
        value = math.exp(self.value)
        return Var(value, ((self, value),))

    def backward(self):
        order, seen = [], set()

        def visit(node):
            if id(node) in seen:
                return
            seen.add(id(node))
            for parent, _ in node.parents:
                visit(parent)
            order.append(node)

        visit(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in node.parents:
                parent.grad += node.grad * local


# %% nbgrader={"grade": true, "grade_id": "05-var-check", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false}
from checks.differentiation import check_var

check_var(Var)

# %% [markdown]
# Your class now differentiates Khan's example, and with it anything written with $+$, $\times$,
# $\sin$ and $\exp$: here is eq. 5.36 once more, at $x = -1$, against eq. 5.37.

# %%
x_mine = Var(x0)
a_mine = x_mine.sin()
e_mine = x_mine.exp()
y_mine = (a_mine + a_mine * a_mine).exp() + (e_mine + e_mine * e_mine).sin()
y_mine.backward()
print(f"your reverse mode: dy/dx = {x_mine.grad:.12f};  eq. 5.37: {df(x0):.12f}")
assert close(x_mine.grad, df(x0)) and close(a_mine.grad, adj["a"]) and close(e_mine.grad, adj["e"])

# %% [markdown]
# ## What each mode costs: one pass per input, or one pass per output
#
# For $f(x)$ with one input both modes need one pass. They differ when there are many. Forward mode
# seeds **one input** with derivative 1 and gets $\partial f/\partial x_i$ for that input only: the
# gradient of a function of $n$ inputs takes $n$ passes. Reverse mode gets the derivative of **one
# output** with respect to every node in one backward sweep: the whole gradient for the price of about
# two evaluations, whatever $n$ is. (For $m$ outputs and $n$ inputs: $n$ forward passes or $m$ backward
# sweeps for the full Jacobian.)
#
# A training loss has one output and as many inputs as the network has weights, so reverse mode wins
# by a factor of about $n$. Here is a logistic loss $L(w) = \log(1 + e^{-w\cdot a})$ of $n$ weights,
# whose gradient $-a/(1 + e^{w\cdot a})$ we know exactly:

# %%
def logistic_loss(w, a):
    z = 0.0
    for wi, ai in zip(w, a):
        z = z + wi * ai
    return ad.log(1 + ad.exp(-z))


def gradient_both_ways(n, rng):
    a, w = rng.standard_normal(n).tolist(), (0.1 * rng.standard_normal(n)).tolist()
    forward = [logistic_loss([Dual(v, float(i == j)) for j, v in enumerate(w)], a).deriv for i in range(n)]
    weights = [ad.Var(v) for v in w]
    loss = logistic_loss(weights, a)
    loss.backward()
    exact = -np.array(a) / (1 + math.exp(np.dot(w, a)))
    ops = len(loss.nodes()) - n             # elementary operations in one evaluation
    return np.array(forward), np.array([v.grad for v in weights]), exact, ops


rng = np.random.default_rng(0)
print(f"{'n':>4} {'ops per pass':>13} {'forward mode: n passes':>23} {'reverse mode: 1 + 1 sweep':>26}")
for n in (10, 50, 200):
    fwd, rev, exact, ops = gradient_both_ways(n, rng)
    print(f"{n:4d} {ops:13d} {n * ops:23d} {2 * ops:26d}")
    assert np.allclose(fwd, exact, rtol=1e-12, atol=1e-15) and np.allclose(rev, exact, rtol=1e-12, atol=1e-15)

# %% [markdown]
# Back-propagation is reverse-mode automatic differentiation, with one difference in grain: instead of
# recording scalar operations, each layer of `cnnlab` is one node of the graph, and its hand-written
# `backward(dout)` is the adjoint rule for a whole array at once ($\bar x = J^\top \bar y$, lesson 03).
# That is why a layer's backward has to be right, and why we check it.

# %% [markdown]
# ## 6 · Checking a whole CNN with finite differences
#
# Bouvrie (§4.4) calls the finite-difference check indispensable: a network with a wrong gradient
# often still *seems* to learn, just worse, so wrong code would go unnoticed. The recipe: for each
# weight $w_i$ of an error $E$, a central difference
#
# $$\frac{\partial E}{\partial w_i} \approx \frac{E(w_i + h) - E(w_i - h)}{2h},$$
#
# compared with what back-propagation returns (Bouvrie calls the step $\epsilon$; the box below
# is about its size).
#
# `cnnlab.gradcheck.gradcheck_network` does this for every layer of a network separately (its input
# and each parameter) and for the whole chain network + loss. It insists on float64: section 2
# showed what float32 does to differences.
# A small CNN, checked end to end:

# %%
gen = np.random.default_rng(0)
cnn = Sequential([Conv2d(1, 2, 3, rng=gen), MaxPool2d(2), ReLU(), Flatten(),
                  Linear(8, 6, rng=gen), Tanh(), Linear(6, 3, rng=gen)]).astype(np.float64)
images, labels = gen.standard_normal((2, 1, 6, 6)), gen.integers(0, 3, 2)
report = gradcheck_network(cnn, images, CrossEntropyLoss(), labels, rng=0)
print(report)

# %%
assert report.ok and report.max_rel_error < 1e-6, "every layer's backward agrees with finite differences"
n_weights = sum(p.size for p in cnn.parameters())
assert n_weights == (2 * 1 * 3 * 3 + 2) + (6 * 8 + 6) + (3 * 6 + 3)
print(f"{n_weights} weights: {2 * n_weights} forward passes to difference them all, one backward pass to get them")

# %% [markdown]
# > **The source says:** Bouvrie (§4.4) differences with a step $\epsilon$ and suggests about
# > $\epsilon = 10^{-8}$.
# >
# > **We do:** $\epsilon = 10^{-6}$, the default of `cnnlab.gradcheck`, in float64.
# >
# > **Why:** $10^{-8} \approx \sqrt{\epsilon_\text{machine}}$ is the best step of a *forward* difference.
# > Bouvrie's difference is central, whose errors balance near $\sqrt[3]{\epsilon_\text{machine}} \approx
# > 6\times10^{-6}$ (section 2); at $10^{-8}$ the round-off term $\epsilon_\text{machine}|E|/h$ is 100 times
# > what it is at $10^{-6}$.
#
# The whole gradient of the CNN above by central differences with both steps, against back-propagation
# (the root-mean-square error over all its weights):

# %%
from cnnlab.gradcheck import numerical_gradient

loss_fn = CrossEntropyLoss()
loss_fn.forward(cnn(images), labels)
cnn.backward(loss_fn.backward())
exact = np.concatenate([p.grad.ravel() for p in cnn.parameters()])


def difference_error(step):
    """RMS distance between back-propagation and central differences with this step, over every weight."""
    numeric = [numerical_gradient(lambda: loss_fn.forward(cnn(images), labels), p.data, step)
               for p in cnn.parameters()]
    return np.sqrt(np.mean((np.concatenate([g.ravel() for g in numeric]) - exact) ** 2))


bouvrie_error, cnnlab_error = difference_error(1e-8), difference_error(1e-6)
print(f"RMS error: step 1e-8 {bouvrie_error:.1e}, step 1e-6 {cnnlab_error:.1e} "
      f"(ratio {bouvrie_error / cnnlab_error:.0f}); RMS gradient {np.sqrt(np.mean(exact ** 2)):.1e}")
assert bouvrie_error > 20 * cnnlab_error, "the smaller step loses to round-off"
assert bouvrie_error < 1e-6, "still a usable check, only a coarser one"

# %% [markdown]
# ### What a bug looks like
#
# The table below runs the same check on a menu of example networks. Two contain a deliberately wrong
# backward pass: a `Tanh` that computes $1 - x^2$ from its *input* instead of $1 - \tanh^2 x$ from its
# output, and a `Linear` that averages its bias gradient over the batch instead of summing it. Look at
# how precisely the per-layer rows point at the culprit, while the end-to-end rows (network+loss) only
# tell that something below is wrong.
#
# Two more things to try. *ReLU before max-pool* fails without any bug: ReLU outputs exact zeros, a
# pooling window of zeros is a tie, and at a tie the maximum has no derivative, so the two one-sided
# differences disagree. (Pooling first, as in the CNN above, computes the same function and avoids
# the ties.) And **float32** makes even the correct CNN fail, in every row, with errors of the same
# order as the buggy layer's, both thousands of times the tolerance: a check in float32 cannot tell a
# bug from rounding. (Which of the two is larger depends on the machine: float32 rounding changes with
# the processor's matrix-product kernels, so one laptop shows 0.17 for the correct CNN, another 0.05.)

# %%
table = widgets.gradcheck_table()
table

# %% [markdown]
# Driving the table from code: pick the buggy Tanh, then switch the correct CNN to float32.

# %%
table.network.value = "small CNN with a buggy Tanh"
assert table.model.failed_layers == ["5: TanhFromInput", "network+loss"], "the report points at layer 5"
bug_error = max(r.max_rel_error for r in table.model.report.rows if r.layer == "5: TanhFromInput")
assert bug_error > 1e-2 and "FAIL" in table.table.value

table.network.value = "small CNN (correct)"
assert table.model.report.ok and table.model.report.max_rel_error < 1e-6
table.precision.value = "float32"
noise = table.model.report.max_rel_error
tolerance = table.model.report.rtol
print(f"buggy Tanh (float64): {bug_error:.1e};  correct CNN in float32: up to {noise:.1e};  tolerance {tolerance:g}")
assert not table.model.report.ok, "in float32 even the correct network fails the check"
assert min(noise, bug_error) > 1000 * tolerance, "rounding and a real bug: both far beyond the tolerance"
assert noise > bug_error / 10, "float32 round-off: errors of the same order as a real bug's"

# %% [markdown]
# ## Summary
#
# * **Analytical** derivatives are exact and fast, but written by hand: check them.
# * **Numerical** derivatives need only evaluations of $f$. Their error is truncation ($O(h)$ forward,
#   $O(h^2)$ central) plus round-off ($\epsilon|f|/h$): the best step is near $\sqrt\epsilon$ or
#   $\sqrt[3]\epsilon$, and the accuracy is limited. Central differences in float64 are the standard
#   check; at $O(W^2)$ for $W$ weights they are never the way to train.
# * **Symbolic** derivatives are exact formulas, and the formulas swell.
# * **Automatic** differentiation is exact to rounding and costs a small multiple of one evaluation:
#   forward mode one pass per input, reverse mode one sweep per output. A loss has one output, so
#   training uses reverse mode, which is back-propagation.
#
# Lesson 06 uses these gradients to walk downhill.
