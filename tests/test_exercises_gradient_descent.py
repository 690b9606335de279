"""Self-checks of lesson 06: the right answers pass, each typical mistake is recognised by name."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.gradient_descent import check_largest_stable_lr, check_sgd_epoch, check_should_stop
from cnnlab.data import DataLoader, small_fashion_mnist
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import tiny_mlp

X, y, _, _ = small_fashion_mnist(n_train=200, n_val=10)
LR, B, SEED = 0.1, 32, 1


# --- exercise 1: an epoch of SGD by hand --------------------------------------------------------------

def epoch_by_hand(update, shuffle=True, seed=SEED, batch_size=B, epochs=1, after_loop=False, dtype=None):
    """The student's loop; `update(p, grad_sum)` is their update line."""
    net, loss_fn = tiny_mlp(rng=0), CrossEntropyLoss()
    sums = {id(p): np.zeros_like(p.data) for p in net.parameters()}
    for _ in range(epochs):
        for xb, yb in DataLoader(X, y, batch_size, shuffle=shuffle, rng=seed if shuffle else None):
            loss_fn.forward(net(xb), yb)
            net.backward(loss_fn.backward())
            if not after_loop:
                for p in net.parameters():
                    sums[id(p)] += p.grad
                    update(p, sums[id(p)])
    if after_loop:
        for p in net.parameters():
            update(p, None)
    return net


def right(p, _):
    p.data -= LR * p.grad


def check(net):
    check_sgd_epoch(net, X, y, lr=LR, batch_size=B, shuffle_seed=SEED, init_seed=0)


def test_the_right_epoch_passes(capsys):
    check(epoch_by_hand(right))
    assert "gives the Trainer's weights bit for bit" in capsys.readouterr().out


@pytest.mark.parametrize("net, message", [
    (lambda: tiny_mlp(rng=0), "the weights are still the starting ones"),
    (lambda: epoch_by_hand(right, shuffle=False), "stored order: shuffle"),
    (lambda: epoch_by_hand(lambda p, acc: p.data.__isub__(LR * acc)), "gradient was accumulated"),
    (lambda: epoch_by_hand(lambda p, _: (right(p, _), right(p, _))), "learning rate was applied twice"),
    (lambda: epoch_by_hand(lambda p, _: p.data.__iadd__(LR * p.grad)), "moved uphill"),
    (lambda: epoch_by_hand(right, after_loop=True), "only one update was made, after the loop"),
    (lambda: epoch_by_hand(right, epochs=2), "weights after two passes over the data"),
    (lambda: epoch_by_hand(lambda p, _: p.data.__isub__((np.float64(LR) * p.grad.astype(np.float64))
                                                         .astype(np.float32) * np.float32(1 + 1e-6))),
     "almost: the weights differ"),
    (lambda: epoch_by_hand(right, batch_size=16), r"the weights differ from the Trainer's \(lr=0.1, batch_size=32"),
])
def test_each_mistake_in_the_epoch_is_named(net, message):
    with pytest.raises(CheckFailed, match=message):
        check(net())


def test_not_a_network_is_refused():
    with pytest.raises(CheckFailed, match="should be the network you trained, got Ellipsis"):
        check(...)
    from cnnlab.layers import Linear
    with pytest.raises(CheckFailed, match=r"should be tiny_mlp\(...\) \(two Linear layers\)"):
        check(Linear(196, 10))


# --- exercise 2: 2 / lambda_max -------------------------------------------------------------------------

def test_the_right_bound_passes(capsys):
    check_largest_stable_lr(lambda H: 2 / np.linalg.eigvalsh(H).max())
    assert "2 / lambda_max" in capsys.readouterr().out


@pytest.mark.parametrize("answer, message", [
    (lambda H: 2 / np.linalg.eigvalsh(H).min(), "smallest eigenvalue"),
    (lambda H: 1 / np.linalg.eigvalsh(H).max(), "forgot the factor 2"),
    (lambda H: np.linalg.eigvalsh(H).max() / 2, "upside down"),
    (lambda H: 2 / np.max(np.diag(H)), "diagonal entries of H are its eigenvalues only when H is diagonal"),
    (lambda H: 2 / np.trace(H), "trace is the sum"),
    (lambda H: 2 / np.abs(H).max(), "diagonal entries"),  # for a symmetric PSD H the largest entry is diagonal
    (lambda H: 2 / np.linalg.norm(H), "Frobenius norm"),
    (lambda H: 2 / np.linalg.eigvalsh(H), "one number, got an array of shape"),
    (lambda H: None, "returned None"),
    (lambda H: 0.1, r"largest eigenvalue 4 you return 0.1; it should be 2 / 4 = 0.5"),
    (..., "should be a function of H"),
])
def test_each_mistake_in_the_bound_is_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        check_largest_stable_lr(answer)


# --- exercise 3: the termination test --------------------------------------------------------------------

def right_stop(w_new, w_old, E_new, E_old, step_tol, loss_tol):
    return bool(np.linalg.norm(w_new - w_old) < step_tol or abs(E_new - E_old) < loss_tol)


def test_the_right_termination_test_passes(capsys):
    check_should_stop(right_stop)
    assert "small-step and the small-decrease tests" in capsys.readouterr().out


@pytest.mark.parametrize("answer, message", [
    (lambda wn, wo, En, Eo, st, lt: bool(np.linalg.norm(wn - wo) < st and abs(En - Eo) < lt), "small OR"),
    (lambda wn, wo, En, Eo, st, lt: bool(np.linalg.norm(wn - wo) < st or En - Eo < lt), "absolute change"),
    (lambda wn, wo, En, Eo, st, lt: bool(np.abs(wn - wo).max() < st or abs(En - Eo) < lt), "not its largest entry"),
    (lambda wn, wo, En, Eo, st, lt: bool(np.sum((wn - wo) ** 2) < st or abs(En - Eo) < lt), "not the squared norm"),
    (lambda wn, wo, En, Eo, st, lt: np.abs(wn - wo) < st, "one True/False, got an array"),
    (lambda wn, wo, En, Eo, st, lt: None, "return` True or False"),
    (lambda wn, wo, En, Eo, st, lt: bool(np.linalg.norm(wn - wo) < st), "test only the step"),
    (lambda wn, wo, En, Eo, st, lt: bool(abs(En - Eo) < lt), "test only the change of E"),
    (lambda wn, wo, En, Eo, st, lt: True, "for a big step that lowers E a lot .* should return False, got True"),
    (..., "should be a function"),
])
def test_each_mistake_in_the_termination_test_is_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        check_should_stop(answer)
