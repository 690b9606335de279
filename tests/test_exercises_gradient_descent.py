"""Self-checks of lesson 06: the right answers pass, each typical mistake is recognised by name."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.gradient_descent import check_largest_stable_lr, check_sgd_epoch, check_sgd_momentum, check_should_stop
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


# --- exercise 4: the termination test --------------------------------------------------------------------

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


# --- exercise 3: mini-batch SGD with Tomasi's momentum and mu_t schedule -------------------------------

def mu_schedule(t, mu_max, every):
    """Tomasi's Figure 2, written out here (not cnnlab's sutskever_momentum)."""
    return min(mu_max, 1.0 - 1.0 / (2.0 * (t // every + 1)))


def momentum_loop(*, velocity="kept", update="tomasi", mu="schedule", order="shuffled", last="kept",
                  grad="as is", params="all"):
    """A student's sgd_momentum; each keyword other than its default is one mistake."""
    def sgd_momentum(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max=0.99, every=250):
        n, step = len(X), 0
        vel = {id(p): np.zeros_like(p.data) for p in net.parameters()}
        total = {id(p): np.zeros_like(p.data) for p in net.parameters()}
        fixed = rng.permutation(n) if order == "once" else None
        for epoch in range(epochs):
            if velocity == "per epoch":
                vel = {k: np.zeros_like(a) for k, a in vel.items()}
            if mu == "t per epoch":
                step = 0
            idx = {"shuffled": None, "stored": np.arange(n), "once": fixed,
                   "new rng": np.random.default_rng().permutation(n)}[order]
            idx = rng.permutation(n) if idx is None else idx
            ends = range(batch_size, (n + 1) if last == "dropped" else (n + batch_size), batch_size)
            for end in ends:
                rows = idx[end - batch_size:end]
                loss_fn.forward(net(X[rows]), y[rows])
                net.backward(loss_fn.backward())
                m = {"schedule": mu_schedule(step, mu_max, every), "constant": mu_max,
                     "first": mu_schedule(0, mu_max, every),
                     "ahead": mu_schedule(step + 1, mu_max, every), "t per epoch": mu_schedule(step, mu_max, every),
                     "per epoch": mu_schedule(epoch, mu_max, every), "250": mu_schedule(step, mu_max, 250)}[mu]
                for p in net.parameters():
                    if params == "weights" and p.data.ndim == 1:
                        continue
                    g = p.grad.copy()
                    if grad == "summed":
                        total[id(p)] += g
                        g = total[id(p)]
                    elif grad == "rescaled":
                        g *= len(rows) / batch_size
                    elif grad == "divided":
                        g /= len(rows)
                    elif grad == "divided by B":
                        g /= batch_size
                    v = vel[id(p)]
                    if velocity == "reset":
                        v[...] = 0.0
                    if update == "on the weight":
                        p.data[...] = m * p.data - lr * g
                        continue
                    v[...] = m * v - lr * g
                    if update == "lr twice":
                        p.data += lr * v
                    elif update == "pytorch":  # b = -v / lr: the same iteration
                        p.data -= lr * (-v / lr)
                    else:
                        p.data += v
                step += 1
    return sgd_momentum


def pytorch_buffer_form(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max=0.99, every=250):
    """PyTorch's form b <- mu b + g, w <- w - lr b, with the order from a DataLoader on the same rng."""
    buffers = [np.zeros_like(p.data) for p in net.parameters()]
    t = 0
    loader = DataLoader(X, y, batch_size, shuffle=True, rng=rng)
    for _ in range(epochs):
        for xb, yb in loader:
            loss_fn.forward(net(xb), yb)
            net.backward(loss_fn.backward())
            for p, b in zip(net.parameters(), buffers):
                b[...] = mu_schedule(t, mu_max, every) * b + p.grad
                p.data -= lr * b
            t += 1


def test_the_right_momentum_loops_pass(capsys):
    check_sgd_momentum(momentum_loop())
    check_sgd_momentum(momentum_loop(update="pytorch"))
    check_sgd_momentum(pytorch_buffer_form)
    assert capsys.readouterr().out.count("matches SGD with Tomasi's momentum schedule") == 3


def placeholder_body(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max=0.99, every=250):
    """The exercise cell as given."""
    ...  # your code here


def zeroed_after_backward(net, loss_fn, X, y, *, lr, batch_size, epochs, rng, mu_max=0.99, every=250):
    """Zeroes p.grad between backward and the update (as if zero_grad came last): nothing moves."""
    velocities = [np.zeros_like(p.data) for p in net.parameters()]
    for _ in range(epochs):
        for xb, yb in DataLoader(X, y, batch_size, shuffle=True, rng=rng):
            loss_fn.forward(net(xb), yb)
            net.backward(loss_fn.backward())
            for p, v in zip(net.parameters(), velocities):
                p.grad[...] = 0.0
                v[...] = 0.5 * v - lr * p.grad
                p.data += v


def wrong_shape(net, loss_fn, X, y, **kwargs):
    for p in net.parameters():
        p.data = p.data.ravel()


def raises(net, loss_fn, X, y, **kwargs):
    return net.parameters()[0].data[len(X) * 100]


@pytest.mark.parametrize("answer, message", [
    (momentum_loop(velocity="reset"), "velocity was reset at every step"),
    (momentum_loop(velocity="per epoch"), "starts again from zero at every epoch"),
    (momentum_loop(update="on the weight"), "multiplied the weights instead of the velocity"),
    (momentum_loop(update="lr twice"), "learning rate was applied twice"),
    (momentum_loop(mu="constant"), "stayed at mu_max"),
    (momentum_loop(mu="first"), "stayed at 1/2"),
    (momentum_loop(mu="250"), "stayed at 1/2"),
    (momentum_loop(mu="ahead"), "one update ahead"),
    (momentum_loop(mu="t per epoch"), "started again at 0 in every epoch"),
    (momentum_loop(mu="per epoch"), "t counted epochs"),
    (momentum_loop(order="stored"), "data's stored order"),
    (momentum_loop(order="once"), "same order"),
    (momentum_loop(order="new rng"), "two runs with the same rng gave different weights"),
    (momentum_loop(last="dropped"), "last, smaller batch was dropped"),
    (momentum_loop(grad="rescaled"), "scaled by its size / batch_size"),
    (momentum_loop(grad="divided"), "divided by the batch size"),
    (momentum_loop(grad="divided by B"), "divided by the batch size"),
    (momentum_loop(grad="summed"), "overwrites p.grad"),
    (momentum_loop(params="weights"), "biases were not updated"),
    (placeholder_body, "still Ellipsis"),
    (zeroed_after_backward, "the weights did not move.*never between backward and the update"),
    (wrong_shape, r"parameter 0 of the network should stay a float array of shape \(5, 7\)"),
    (raises, "sgd_momentum\\(...\\) raised IndexError"),
    (..., "should be a function, got Ellipsis"),
])
def test_each_mistake_in_the_momentum_loop_is_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        check_sgd_momentum(answer)
