"""Self-checks for lesson 06 (gradient descent).

- `check_sgd_epoch(net, X, y, lr, batch_size, shuffle_seed, init_seed)`: one epoch of mini-batch SGD
  written by hand must give, bit for bit, the weights `cnnlab.train.Trainer` gives from the same start
  and the same shuffling seed.
- `check_largest_stable_lr(largest_stable_lr)`: 2 / lambda_max of a symmetric Hessian.
- `check_should_stop(should_stop)`: Tomasi's two termination tests (small step, small decrease).

Each check computes the right answer its own way and recognises typical mistakes by simulating them.
"""
from __future__ import annotations

import numpy as np

from cnnlab.data import DataLoader
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import tiny_mlp
from cnnlab.optim import SGD
from cnnlab.train import Trainer

from . import CheckFailed, passed, same

__all__ = ["check_sgd_epoch", "check_largest_stable_lr", "check_should_stop"]


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
