"""Self-checks for lesson 06 (gradient descent).

- `check_sgd_epoch(net, X, y, lr, batch_size, shuffle_seed, init_seed)`: one epoch of mini-batch SGD
  written by hand must give, bit for bit, the weights `cnnlab.train.Trainer` gives from the same start
  and the same shuffling seed.
- `check_largest_stable_lr(largest_stable_lr)`: 2 / lambda_max of a symmetric Hessian.
- `check_should_stop(should_stop)`: Tomasi's two termination tests (small step, small decrease).
- `check_sgd_momentum(sgd_momentum)`: the whole mini-batch loop with Tomasi's momentum and his mu_t schedule,
  compared with `cnnlab.optim.SGD` driven by `MomentumSchedule` on tiny networks.

Each check computes the right answer its own way and recognises typical mistakes by simulating them.
"""
from __future__ import annotations

import numpy as np

from cnnlab.data import DataLoader
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import tiny_mlp
from cnnlab.optim import SGD, MomentumSchedule, sutskever_momentum
from cnnlab.train import Trainer

from . import CheckFailed, has_placeholder, passed, run_student, same

__all__ = ["check_sgd_epoch", "check_largest_stable_lr", "check_should_stop", "check_sgd_momentum"]


# ---------------------------------------------------------------------------------------------
# exercise 1: one epoch of mini-batch SGD by hand
# ---------------------------------------------------------------------------------------------

def _weights(net) -> list[np.ndarray]:
    return [p.data for p in net.parameters()]


def _same(a, b) -> bool:
    return len(a) == len(b) and all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))


def _close(a, b, rtol=1e-4) -> bool:
    return len(a) == len(b) and all(same(x, y, rtol=rtol, atol=1e-6) for x, y in zip(a, b))


def _mistaken_epoch(make_net, X, y, lr, batch_size, rng, mistake: str):
    """One epoch done the way `mistake` describes; returns the final weights."""
    net, loss_fn = make_net(), CrossEntropyLoss()
    shuffle = mistake != "no shuffling"
    params = net.parameters()
    summed = [np.zeros_like(p.data) for p in params]
    loaders = 2 if mistake == "ran twice" else 1  # a fresh loader each time: the same order twice
    batches = (batch for _ in range(loaders)
               for batch in DataLoader(X, y, batch_size, shuffle=shuffle, rng=rng if shuffle else None))
    for xb, yb in batches:
        loss_fn.forward(net.forward(xb), yb)
        net.backward(loss_fn.backward())
        if mistake == "update after the loop":
            continue
        for p, acc in zip(params, summed):
            if mistake == "accumulated":
                acc += p.grad
                p.data -= lr * acc
            elif mistake == "lr twice":
                p.data -= lr * p.grad
                p.data -= lr * p.grad
            elif mistake == "ascent":
                p.data += lr * p.grad
            else:
                p.data -= lr * p.grad
    if mistake == "update after the loop":
        for p in params:
            p.data -= lr * p.grad
    return _weights(net)


_MESSAGES = {
    "no shuffling": "your weights are those of an epoch in the data's stored order: shuffle, "
                    "DataLoader(..., shuffle=True, rng=shuffle_seed), exactly as the Trainer does",
    "accumulated": "the gradient was accumulated over the batches (a running sum of p.grad): each update uses "
                   "only the current batch's gradient, which backward has just written into p.grad",
    "lr twice": "the learning rate was applied twice per batch (your weights match steps of 2 * lr): "
                "update once, p.data -= lr * p.grad",
    "ascent": "the weights moved uphill, p.data += lr * p.grad: gradient descent subtracts, p.data -= lr * p.grad",
    "update after the loop": "only one update was made, after the loop, with the last batch's gradient: "
                             "update the parameters inside the loop, once per mini-batch",
    "ran twice": "these are the weights after two passes over the data: the loop ran twice on the same network "
                 "(a re-run cell?); create the network afresh, tiny_mlp(rng=0), in the same cell as the loop",
}


def check_sgd_epoch(net, X, y, *, lr: float, batch_size: int, shuffle_seed: int, init_seed: int = 0) -> None:
    """`net` must hold the weights of one epoch of SGD from `tiny_mlp(rng=init_seed)` (same hidden size),
    on (X, y) in mini-batches of `batch_size` drawn by DataLoader(..., shuffle=True, rng=shuffle_seed),
    updated with p.data -= lr * p.grad after every batch: bit for bit what `Trainer` does."""
    if net is Ellipsis or net is None or not hasattr(net, "parameters"):
        raise CheckFailed(f"`net` should be the network you trained, got {net!r}")
    shapes = [p.data.shape for p in net.parameters()]
    if len(shapes) != 4 or len(shapes[0]) != 2:
        raise CheckFailed(f"`net` should be tiny_mlp(...) (two Linear layers), its parameters have shapes {shapes}")
    hidden, features = shapes[0]
    classes = shapes[2][0]

    def make_net():
        return tiny_mlp(features, hidden, classes, rng=init_seed)

    start = _weights(make_net())
    got = _weights(net)
    if _same(got, start):
        raise CheckFailed("the weights are still the starting ones: the loop body is `...`, or it computes "
                          "gradients without updating p.data")
    reference = make_net()
    Trainer(reference, CrossEntropyLoss(), SGD(reference.parameters(), lr=lr), X, y, batch_size=batch_size,
            rng=shuffle_seed).run(epochs=1)
    expected = _weights(reference)
    if _same(got, expected):
        passed(f"one epoch of SGD by hand ({len(DataLoader(X, y, batch_size))} updates) gives the Trainer's "
               "weights bit for bit")
        return
    if _close(got, expected):
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(got, expected))
        raise CheckFailed(f"almost: the weights differ from the Trainer's by at most {worst:.1e}, not bit for bit; "
                          "update in place in float32, p.data -= lr * p.grad, once per batch, in the loader's order")
    for mistake, message in _MESSAGES.items():
        if _same(got, _mistaken_epoch(make_net, X, y, lr, batch_size, shuffle_seed, mistake)):
            raise CheckFailed(message)
    raise CheckFailed(f"the weights differ from the Trainer's (lr={lr}, batch_size={batch_size}, shuffle "
                      f"rng={shuffle_seed}, start tiny_mlp(rng={init_seed})); check the batch size, the "
                      "shuffling seed and that every batch does forward, loss, backward, then the update")


# ---------------------------------------------------------------------------------------------
# exercise 2: the largest stable learning rate of a quadratic
# ---------------------------------------------------------------------------------------------

def _spd(eigenvalues, seed: int) -> np.ndarray:
    """A symmetric matrix with the given eigenvalues and random (seeded) orthonormal eigenvectors."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((len(eigenvalues),) * 2))
    return (q * np.asarray(eigenvalues, dtype=float)) @ q.T


# (Hessian, its largest eigenvalue, its smallest) built from known eigenvalues, not computed
_CASES = [
    (np.array([[3.0, 1.0], [1.0, 3.0]]), 4.0, 2.0),       # eigenvalues 3 +- 1
    (_spd([0.5, 1.0, 2.0, 3.0, 7.0, 12.0], seed=6), 12.0, 0.5),
    (np.diag([1.0, 20.0]), 20.0, 1.0),                     # the ill-conditioned bowl of the lesson
]


def _mistakes(H, lam_max, lam_min) -> dict:
    return {
        "2 / lambda_min": 2 / lam_min,
        "1 / lambda_max": 1 / lam_max,
        "lambda_max / 2": lam_max / 2,
        "2 / largest diagonal entry": 2 / np.max(np.diag(H)),
        "2 / trace": 2 / np.trace(H),
        "2 / Frobenius norm": 2 / np.linalg.norm(H),
    }


_HINTS = {
    "2 / lambda_min": "you used the smallest eigenvalue: the fastest-curving direction (the largest "
                      "eigenvalue) is the one that blows up first",
    "1 / lambda_max": "you forgot the factor 2: gradient descent on a quadratic converges iff |1 - lr*lambda| < 1, "
                      "i.e. lr < 2 / lambda_max",
    "lambda_max / 2": "upside down: the bound is 2 / lambda_max",
    "2 / largest diagonal entry": "the diagonal entries of H are its eigenvalues only when H is diagonal; use "
                                  "np.linalg.eigvalsh(H)",
    "2 / trace": "the trace is the sum of all eigenvalues, not the largest one",
    "2 / Frobenius norm": "the Frobenius norm is sqrt(sum of squared eigenvalues), not the largest one",
}


def check_largest_stable_lr(largest_stable_lr) -> None:
    """largest_stable_lr(H) must return 2 / lambda_max(H), a number, for a symmetric Hessian H."""
    if largest_stable_lr is Ellipsis or not callable(largest_stable_lr):
        raise CheckFailed(f"`largest_stable_lr` should be a function of H, got {largest_stable_lr!r}")
    for H, lam_max, lam_min in _CASES:
        got = largest_stable_lr(H.copy())
        if got is None or got is Ellipsis:
            raise CheckFailed(f"largest_stable_lr returned {got!r}: finish it and `return` the learning rate")
        if np.ndim(got) != 0:
            raise CheckFailed(f"largest_stable_lr should return one number, got an array of shape {np.shape(got)}; "
                              "take the largest eigenvalue, .max()")
        got = float(got)
        if np.isclose(got, 2 / lam_max, rtol=1e-8):
            continue
        for name, value in _mistakes(H, lam_max, lam_min).items():
            if np.isclose(got, value, rtol=1e-8):
                raise CheckFailed(f"for H = {np.round(H, 3).tolist() if len(H) <= 2 else 'a 6 x 6 matrix'} you "
                                  f"return {got:.6g}, which is {name}: {_HINTS[name]}")
        raise CheckFailed(f"for a Hessian with largest eigenvalue {lam_max:g} you return {got:.6g}; "
                          f"it should be 2 / {lam_max:g} = {2 / lam_max:.6g}")
    passed("largest_stable_lr gives 2 / lambda_max for a diagonal, a 2 x 2 and a 6 x 6 Hessian")


# ---------------------------------------------------------------------------------------------
# exercise 3 (optional): Tomasi's termination tests
# ---------------------------------------------------------------------------------------------

# (w_new, w_old, E_new, E_old, step_tol, loss_tol, expected, what the case probes)
_STOP_CASES = [
    (np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-8]), 0.5, 1.5, 1e-6, 1e-9, True, "a tiny step"),
    (np.array([0.0, 0.0]), np.array([0.6, 0.8]), 0.5, 0.5 + 1e-12, 1e-6, 1e-9, True, "a tiny change of E"),
    (np.array([0.0, 0.0]), np.array([0.6, 0.8]), 0.5, 1.5, 1e-6, 1e-9, False, "a big step that lowers E a lot"),
    (np.array([0.0, 0.0]), np.array([0.6, 0.8]), 1.5, 0.5, 1e-6, 1e-9, False, "a big step that raises E"),
    (np.array([5e-4, 0.0]), np.zeros(2), 0.5, 1.5, 1e-6, 1e-9, False, "a step of length 5e-4"),
    (np.full(4, 0.8e-6), np.zeros(4), 0.5, 1.5, 1e-6, 1e-9, False,
     "a step of length 1.6e-6 whose entries are all below 1e-6"),
]

# typical mistakes, each as code, and what to say when a function behaves exactly like one of them
_STOP_MISTAKES = {
    "`and` instead of `or`": (
        lambda d, dE, st, lt: np.linalg.norm(d) < st and abs(dE) < lt,
        "the two tests are alternatives: stop when the step is small OR the change of E is small"),
    "signed change": (
        lambda d, dE, st, lt: np.linalg.norm(d) < st or dE < lt,
        "compare the absolute change, abs(E_new - E_old) < loss_tol: E_new - E_old is negative whenever E falls, "
        "so a big decrease made you stop"),
    "largest entry": (
        lambda d, dE, st, lt: np.max(np.abs(d)) < st or abs(dE) < lt,
        "measure the step with the Euclidean norm np.linalg.norm(w_new - w_old), not its largest entry: a step "
        "of length 1.6e-6 has entries of only 8e-7"),
    "squared norm": (
        lambda d, dE, st, lt: np.sum(d ** 2) < st or abs(dE) < lt,
        "use the norm, not the squared norm: a step of length 5e-4 is far above step_tol = 1e-6 (its square, "
        "2.5e-7, is not)"),
    "only the step": (
        lambda d, dE, st, lt: np.linalg.norm(d) < st,
        "you test only the step; also stop when abs(E_new - E_old) < loss_tol"),
    "only the decrease": (
        lambda d, dE, st, lt: abs(dE) < lt,
        "you test only the change of E; also stop when np.linalg.norm(w_new - w_old) < step_tol"),
}


def check_should_stop(should_stop) -> None:
    """should_stop(w_new, w_old, E_new, E_old, step_tol, loss_tol) -> bool: True when
    ||w_new - w_old|| < step_tol or |E_new - E_old| < loss_tol (Tomasi §2)."""
    if should_stop is Ellipsis or not callable(should_stop):
        raise CheckFailed(f"`should_stop` should be a function, got {should_stop!r}")
    answers = []
    for w_new, w_old, E_new, E_old, step_tol, loss_tol, _, _ in _STOP_CASES:
        got = should_stop(w_new.copy(), w_old.copy(), E_new, E_old, step_tol, loss_tol)
        if got is None or got is Ellipsis:
            raise CheckFailed(f"should_stop returned {got!r}: `return` True or False")
        if np.ndim(got) != 0:
            raise CheckFailed(f"should_stop should return one True/False, got an array of shape {np.shape(got)}: "
                              "the step size is one number, the norm of the whole difference")
        answers.append(bool(got))
    expected = [case[6] for case in _STOP_CASES]
    if answers == expected:
        passed("should_stop applies the small-step and the small-decrease tests correctly")
        return
    for name, (mistake, hint) in _STOP_MISTAKES.items():
        if answers == [bool(mistake(c[0] - c[1], c[2] - c[3], c[4], c[5])) for c in _STOP_CASES]:
            raise CheckFailed(hint)
    case = next(c for c, a in zip(_STOP_CASES, answers) if a != c[6])
    raise CheckFailed(f"for {case[7]} (step_tol={case[4]:g}, loss_tol={case[5]:g}) should_stop should return "
                      f"{case[6]}, got {not case[6]}")


# ---------------------------------------------------------------------------------------------
# exercise 4: mini-batch SGD with Tomasi's momentum and mu_t schedule, no optimizer class
# ---------------------------------------------------------------------------------------------

# (N, features, hidden, classes, batch_size, epochs, lr, mu_max, every, shuffle seed): a last batch of 3,
# online updates (batch of 1) and one batch larger than the data; `every` small so that mu_t moves
_RUNS = [(23, 7, 5, 3, 5, 2, 0.2, 0.8, 2, 3), (6, 4, 3, 2, 1, 2, 0.1, 0.95, 3, 5), (5, 3, 4, 3, 8, 4, 0.3, 0.9, 1, 7)]


def _momentum_setup(run):
    """A fresh float64 network, its data and the keyword arguments of one configuration of _RUNS."""
    n, features, hidden, classes, batch_size, epochs, lr, mu_max, every, seed = run
    data = np.random.default_rng(100 + seed)
    X, y = data.standard_normal((n, features)), data.integers(0, classes, n)
    net = tiny_mlp(features, hidden, classes, rng=seed).astype(np.float64)
    kwargs = dict(lr=lr, batch_size=batch_size, epochs=epochs, rng=np.random.default_rng(seed),
                  mu_max=mu_max, every=every)
    return net, X, y, kwargs


def _reference(run) -> list[np.ndarray]:
    """cnnlab's SGD (PyTorch's buffer form, equal to Tomasi's for a constant lr) with MomentumSchedule."""
    net, X, y, kw = _momentum_setup(run)
    optimizer = SGD(net.parameters(), lr=kw["lr"], momentum=sutskever_momentum(0, kw["mu_max"], kw["every"]))
    schedule, loss_fn = MomentumSchedule(optimizer, kw["mu_max"], kw["every"]), CrossEntropyLoss()
    for _ in range(kw["epochs"]):
        order = kw["rng"].permutation(len(X))
        for start in range(0, len(X), kw["batch_size"]):
            batch = order[start:start + kw["batch_size"]]
            loss_fn.forward(net(X[batch]), y[batch])
            net.backward(loss_fn.backward())
            optimizer.step()
            schedule.step()
    return [p.data.copy() for p in net.parameters()]


def _mistaken_momentum(run, mistake: str) -> list[np.ndarray]:
    """Tomasi's loop, v <- mu_t v - lr g, w <- w + v, done the way `mistake` describes."""
    net, X, y, kw = _momentum_setup(run)
    rng, n, B, lr, mu_max, every = kw["rng"], len(X), kw["batch_size"], kw["lr"], kw["mu_max"], kw["every"]
    params, loss_fn, t = net.parameters(), CrossEntropyLoss(), 0
    v, summed = [np.zeros_like(p.data) for p in params], [np.zeros_like(p.data) for p in params]
    once = rng.permutation(n) if mistake == "same order" else None
    for epoch in range(kw["epochs"]):
        if mistake == "velocity per epoch":
            v = [np.zeros_like(p.data) for p in params]
        t = 0 if mistake == "t per epoch" else t
        order = np.arange(n) if mistake == "no shuffling" else once if once is not None else rng.permutation(n)
        for start in range(0, n - B + 1 if mistake == "last dropped" else n, B):
            batch = order[start:start + B]
            loss_fn.forward(net(X[batch]), y[batch])
            net.backward(loss_fn.backward())
            mu = {"mu_max": mu_max, "mu 1/2": 0.5, "ahead": sutskever_momentum(t + 1, mu_max, every),
                  "epochs": sutskever_momentum(epoch, mu_max, every),
                  "mu_max ignored": sutskever_momentum(t, 0.99, every)}.get(mistake)
            mu = sutskever_momentum(t, mu_max, every) if mu is None else mu
            for i, p in enumerate(params):
                scale = {"last scaled": len(batch) / B, "grad / B": 1 / B, "grad / b": 1 / len(batch)}
                g = p.grad * scale.get(mistake, 1)
                if mistake == "accumulated":
                    summed[i] += g
                    g = summed[i]
                if mistake == "weight":
                    p.data = mu * p.data - lr * g
                    continue
                if mistake == "biases" and p.data.ndim == 1:
                    continue
                v[i] = -lr * g if mistake == "velocity reset" else mu * v[i] - lr * g
                p.data = p.data + {"lr twice": lr * v[i], "uphill": -v[i]}.get(mistake, v[i])
            t += 1
    return [p.data for p in net.parameters()]


_MOMENTUM_MESSAGES = {
    "velocity reset": "the velocity was reset at every step (your weights are plain SGD's): create one velocity "
                      "per parameter, zeros, before the loops, and keep it from step to step",
    "velocity per epoch": "the velocity starts again from zero at every epoch: create it once, before the epoch loop",
    "weight": "mu_t multiplied the weights instead of the velocity (w <- mu_t w - lr grad): mu_t scales v, "
              "v <- mu_t v - lr grad, and w only gets v added, w <- w + v",
    "lr twice": "the learning rate was applied twice (w <- w + lr v): v already holds lr, so w <- w + v",
    "uphill": "the weights moved uphill (w <- w - v): with v <- mu_t v - lr grad the update is w <- w + v",
    "mu_max": "mu_t stayed at mu_max: follow the schedule, which starts at 1/2 and rises every `every` updates",
    "mu 1/2": "mu_t stayed at 1/2, its value for t < every: compute mu_t at every update from the update counter "
              "t, with the given mu_max and every (not 250)",
    "ahead": "the schedule is one update ahead: the first update is t = 0 and uses mu_0; increase t after the update",
    "t per epoch": "the update counter t started again at 0 in every epoch: t counts the updates of the whole run",
    "epochs": "t counted epochs, not updates: mu_t rises every `every` updates (mini-batches)",
    "mu_max ignored": "mu_t rose above mu_max: mu_t = min(mu_max, 1 - 1 / (2 (t // every + 1))), with the given mu_max",
    "no shuffling": "the batches were taken in the data's stored order: shuffle at every epoch, rng.permutation(N)",
    "same order": "every epoch visited the examples in the same order: draw a new rng.permutation(N) at every epoch",
    "last dropped": "the last, smaller batch was dropped: when N is not a multiple of batch_size the last batch "
                    "holds the N % batch_size examples left over, and it gets an update too",
    "last scaled": "the last, smaller batch's step was scaled by its size / batch_size: the loss already takes the "
                   "mean over the batch's own examples, so its gradient needs no correction",
    "grad / B": "the gradient was divided by the batch size: the loss already takes the mean over the batch",
    "grad / b": "the gradient was divided by the batch size: the loss already takes the mean over the batch",
    "accumulated": "the gradient was summed over the batches: cnnlab's backward overwrites p.grad with the current "
                   "batch's gradient (no zero_grad needed), so use p.grad as it is after net.backward",
    "biases": "the biases were not updated: update every parameter of net.parameters(), biases too",
}


def _close64(a, b) -> bool:
    """float64 runs of the same iteration written two ways (Tomasi's v, PyTorch's buffer) agree to rounding."""
    return len(a) == len(b) and all(same(x, y, rtol=1e-9, atol=1e-12) for x, y in zip(a, b))


def _momentum_run(sgd_momentum, run) -> list[np.ndarray]:
    """Run the student's function on a fresh network of configuration `run`; its final weights as float64."""
    net, X, y, kw = _momentum_setup(run)
    run_student(lambda: sgd_momentum(net, CrossEntropyLoss(), X, y, **kw), "sgd_momentum(...)", fn=sgd_momentum,
                quiet=True)
    got = []
    for i, p in enumerate(net.parameters()):
        a = p.data
        if not isinstance(a, np.ndarray) or a.shape != p.grad.shape or a.dtype.kind != "f":
            raise CheckFailed(f"parameter {i} of the network should stay a float array of shape {p.grad.shape}, "
                              f"got {type(a).__name__} {getattr(a, 'shape', '')}: update p.data, keep its shape")
        got.append(np.array(a, dtype=np.float64))
    return got


def check_sgd_momentum(sgd_momentum) -> None:
    """sgd_momentum(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max, every) must train `net` in place
    like SGD(momentum) under MomentumSchedule: a new rng.permutation(N) per epoch, batches in that order (the last
    one smaller), forward, loss, backward, then v <- mu_t v - lr p.grad, p.data <- p.data + v for every parameter,
    mu_t = sutskever_momentum(t, mu_max, every) with t = 0, 1, ... counting the updates of the whole run."""
    if sgd_momentum is Ellipsis or not callable(sgd_momentum):
        raise CheckFailed(f"`sgd_momentum` should be a function, got {sgd_momentum!r}")
    got = [_momentum_run(sgd_momentum, run) for run in _RUNS]
    starts = [[p.data for p in _momentum_setup(run)[0].parameters()] for run in _RUNS]
    if all(_same(g, s) for g, s in zip(got, starts)):
        if has_placeholder(sgd_momentum):
            raise CheckFailed("sgd_momentum is still Ellipsis (its body is `...`): write the loop and run the cell "
                              "again")
        raise CheckFailed("the weights did not move: update p.data in place (or assign p.data = ...) after "
                          "net.backward; if you zero p.grad, do it before backward, never between backward and the "
                          "update")
    if not all(np.all(np.isfinite(w)) for g in got for w in g):
        raise CheckFailed("the weights became NaN or infinite: is the update w <- w + v with v <- mu_t v - lr grad?")
    if all(_close64(g, _reference(run)) for g, run in zip(got, _RUNS)):
        passed("sgd_momentum matches SGD with Tomasi's momentum schedule: shuffled epochs, a smaller last batch, "
               "online updates and one batch larger than the data")
        return
    again = _momentum_run(sgd_momentum, _RUNS[0])
    if not _same(again, got[0]):
        raise CheckFailed("two runs with the same rng gave different weights: shuffle with the rng you are given, "
                          "rng.permutation(N), not a new generator or np.random")
    for mistake, message in _MOMENTUM_MESSAGES.items():
        if all(_close64(g, _mistaken_momentum(run, mistake)) for g, run in zip(got, _RUNS)):
            raise CheckFailed(message)
    wrong = next(run for g, run in zip(got, _RUNS) if not _close64(g, _reference(run)))
    raise CheckFailed(f"the weights differ from SGD with momentum under Tomasi's schedule (N={wrong[0]}, "
                      f"batch_size={wrong[4]}, epochs={wrong[5]}, lr={wrong[6]}, mu_max={wrong[7]}, every={wrong[8]}); "
                      "check the order of the batches (one rng.permutation(N) per epoch, from the rng you are given), "
                      "the velocity update and the schedule")
