"""cnnlab.regularizers: penalties by hand, gradients by centred differences, max-norm projection, sparsity."""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.layers import BatchNorm1d, Conv2d, Flatten, Linear, ReLU, Tanh
from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import SGD
from cnnlab.regularizers import L1, L2, Compose, ElasticNet, MaxNorm, Regularizer, unit_norms
from cnnlab.train import Trainer

W1 = np.array([[1.0, -2.0], [0.0, 3.0], [0.5, 0.0]])
B1 = np.array([1.0, 1.0, 1.0])
W2 = np.array([[1.0, 1.0, 1.0], [-1.0, 0.0, 2.0]])
B2 = np.array([5.0, 5.0])
# By hand: sum W^2 = (1 + 4 + 9 + 0.25) + (1 + 1 + 1 + 1 + 4) = 22.25, sum |W| = 6.5 + 6 = 12.5,
# sum b^2 = 3 + 50 = 53, sum |b| = 3 + 10 = 13.


def tiny_net(dtype=np.float64):
    net = Sequential(Linear(2, 3), ReLU(), Linear(3, 2)).astype(dtype)
    net[0].weight.data[...] = W1
    net[0].bias.data[...] = B1
    net[2].weight.data[...] = W2
    net[2].bias.data[...] = B2
    return net


# --- penalty values by hand ----------------------------------------------------------------------
@pytest.mark.parametrize("reg, expected", [
    (L2(0.1), 0.1 * 0.5 * 22.25),
    (L1(0.1), 0.1 * 12.5),
    (ElasticNet(0.1, 0.2), 0.1 * 12.5 + 0.2 * 0.5 * 22.25),
    (L2(0.1, include_bias=True), 0.1 * 0.5 * (22.25 + 53)),
    (L1(0.1, include_bias=True), 0.1 * (12.5 + 13)),
    (MaxNorm(1.0), 0.0),
    (L2(0.1) + L1(0.1), 1.1125 + 1.25),
    (sum([L2(0.1), L1(0.1), MaxNorm(2.0)]), 1.1125 + 1.25),
])
def test_penalty_values_by_hand(reg, expected):
    value = reg.penalty(tiny_net())
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-12)


def test_penalty_of_a_float32_net_is_a_float():
    assert L2(0.1).penalty(tiny_net(np.float32)) == pytest.approx(1.1125, rel=1e-6)


def test_default_selection_is_weights_only_and_skips_batchnorm_gamma_and_frozen():
    net = Sequential(Linear(2, 3), BatchNorm1d(3), Linear(3, 2), Linear(2, 2))
    net[3].weight.requires_grad = False
    names = [n for n, _ in L2(1.0).named_parameters(net)]
    assert names == ["0.weight", "2.weight"]
    names = [n for n, _ in L2(1.0, include_bias=True).named_parameters(net)]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "3.bias"]
    names = [n for n, _ in L2(1.0, include_norm=True).named_parameters(net)]
    assert names == ["0.weight", "1.weight", "2.weight"]
    # gamma = 1 everywhere would add 0.5 * 3 to the penalty if it were counted
    net[1].weight.data[...] = 10.0
    expected = 0.5 * (np.sum(net[0].weight.data.astype(np.float64) ** 2)
                      + np.sum(net[2].weight.data.astype(np.float64) ** 2))
    assert L2(1.0).penalty(net) == pytest.approx(expected, rel=1e-6)


# --- gradients: centred finite differences of penalty(net) ------------------------------------------
def numeric_grad(f, p, h=1e-6):
    """Centred differences of the scalar f() with respect to every entry of Parameter p."""
    grad = np.zeros_like(p.data)
    for idx in np.ndindex(p.shape):
        old = p.data[idx]
        p.data[idx] = old + h
        plus = f()
        p.data[idx] = old - h
        minus = f()
        p.data[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def random_net(seed):
    rng = np.random.default_rng(seed)
    net = Sequential(Conv2d(2, 3, 3, rng=rng), ReLU(), Flatten(), Linear(3 * 2 * 2, 4, rng=rng)).astype(np.float64)
    for p in net.parameters():  # no entry within 0.05 of 0, where |theta| has its kink
        p.data[...] = rng.choice([-1.0, 1.0], size=p.shape) * rng.uniform(0.05, 1.0, size=p.shape)
    return net


@pytest.mark.parametrize("reg", [L2(0.3), L1(0.2), ElasticNet(0.2, 0.3), L2(0.3, include_bias=True),
                                 ElasticNet(0.1, 0.5, include_bias=True), L1(0.2) + L2(0.4)])
def test_penalty_gradient_matches_centered_differences(reg):
    net = random_net(1)
    for p in net.parameters():
        p.grad[...] = 0.0
    reg.backward(net)
    selected = {id(p) for _, p in reg.named_parameters(net)}
    for name, p in net.named_parameters():
        numeric = numeric_grad(lambda: reg.penalty(net), p)
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-6, atol=1e-8, err_msg=name)
        if id(p) not in selected:
            assert np.all(p.grad == 0), name


def test_backward_adds_to_the_data_gradient_and_the_total_objective_checks_out():
    rng = np.random.default_rng(2)
    net = random_net(3)
    reg = ElasticNet(0.05, 0.1)
    x = rng.normal(size=(5, 2, 4, 4))
    y = rng.integers(0, 4, size=5)
    loss_fn = CrossEntropyLoss()

    def objective():
        return loss_fn.forward(net.forward(x), y) + reg.penalty(net)

    objective()
    net.backward(loss_fn.backward())
    data_grads = {name: p.grad.copy() for name, p in net.named_parameters()}
    reg.backward(net)
    for name, p in net.named_parameters():
        numeric = numeric_grad(objective, p)
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-5, atol=1e-8, err_msg=name)
        if name.endswith("bias"):  # biases untouched by default: only the data gradient
            np.testing.assert_array_equal(p.grad, data_grads[name])
        else:
            assert not np.array_equal(p.grad, data_grads[name])


def test_l1_gradient_is_zero_at_zero_and_sign_elsewhere():
    net = Sequential(Linear(3, 1)).astype(np.float64)
    net[0].weight.data[...] = [[0.0, -2.0, 0.5]]
    net[0].weight.grad[...] = [[10.0, 10.0, 10.0]]
    L1(0.5).backward(net)
    np.testing.assert_array_equal(net[0].weight.grad, [[10.0, 9.5, 10.5]])


def test_l2_with_sgd_equals_sgd_weight_decay():
    a, b = tiny_net(), tiny_net()
    x = np.array([[0.3, -0.7], [1.2, 0.4]])
    y = np.array([0, 1])
    opt_a = SGD(a.parameters(), lr=0.1, weight_decay=0.2)
    opt_b = SGD(b.parameters(), lr=0.1)
    # weight decay applies to all parameters in SGD: give L2 the biases too
    reg = L2(0.2, include_bias=True)
    for _ in range(3):
        for net, opt, r in ((a, opt_a, None), (b, opt_b, reg)):
            loss_fn = CrossEntropyLoss()
            loss_fn.forward(net.forward(x), y)
            net.backward(loss_fn.backward())
            if r is not None:
                r.backward(net)
            opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_allclose(pa.data, pb.data, rtol=1e-12)


# --- max-norm -------------------------------------------------------------------------------------
def test_max_norm_by_hand_on_a_linear_weight():
    net = Sequential(Linear(2, 3)).astype(np.float64)
    net[0].weight.data[...] = [[3.0, 4.0], [0.3, 0.4], [0.0, -2.0]]
    net[0].bias.data[...] = [100.0, -100.0, 7.0]
    reg = MaxNorm(1.0)
    assert reg.penalty(net) == 0.0
    net[0].weight.grad[...] = 5.0
    reg.backward(net)
    np.testing.assert_array_equal(net[0].weight.grad, 5.0)  # no gradient term
    reg.after_step(net)
    np.testing.assert_allclose(net[0].weight.data, [[0.6, 0.8], [0.3, 0.4], [0.0, -1.0]], rtol=1e-15)
    np.testing.assert_array_equal(net[0].bias.data, [100.0, -100.0, 7.0])  # biases untouched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_norm_every_unit_at_most_c_and_short_units_unchanged(dtype):
    rng = np.random.default_rng(4)
    net = Sequential(Conv2d(2, 6, 3, rng=rng), ReLU(), Flatten(), Linear(6 * 4, 5, rng=rng)).astype(dtype)
    for p in (net[0].weight, net[3].weight):  # half the units far too long, half short
        p.data[...] *= np.where(np.arange(p.shape[0]) % 2 == 0, 50.0, 0.01).reshape((-1,) + (1,) * (p.data.ndim - 1))
    c = 0.5
    before = {name: p.data.copy() for name, p in net.named_parameters()}
    MaxNorm(c).after_step(net)
    for name in ("0.weight", "3.weight"):
        w0, w = before[name], dict(net.named_parameters())[name].data
        n0 = np.sqrt(np.sum(w0.reshape(len(w0), -1).astype(np.float64) ** 2, axis=1))
        n = np.sqrt(np.sum(w.reshape(len(w), -1).astype(np.float64) ** 2, axis=1))
        assert np.all(n <= c * (1 + 1e-6))
        long = n0 > c
        assert long.any() and (~long).any()
        np.testing.assert_allclose(n[long], c, rtol=1e-6)
        np.testing.assert_array_equal(w[~long], w0[~long])
        # the direction of a rescaled unit is kept
        np.testing.assert_allclose(w[long] / n[long].reshape(-1, *[1] * (w.ndim - 1)),
                                   w0[long] / n0[long].reshape(-1, *[1] * (w.ndim - 1)), rtol=1e-5, atol=1e-7)
    for name in ("0.bias", "3.bias"):
        np.testing.assert_array_equal(dict(net.named_parameters())[name].data, before[name])


def test_unit_norms_and_axis_option():
    w = np.array([[3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(unit_norms(w), [[5.0], [1.0]])
    np.testing.assert_allclose(unit_norms(w, axis=0), [[3.0, np.sqrt(17.0)]])
    net = Sequential(Linear(2, 2)).astype(np.float64)
    net[0].weight.data[...] = w
    MaxNorm(2.0, axis=0).after_step(net)  # column norms 3 and sqrt(17): both scaled to 2
    np.testing.assert_allclose(net[0].weight.data, [[2.0, 8 / np.sqrt(17)], [0.0, 2 / np.sqrt(17)]])


def test_compose_calls_every_member_in_order():
    net = tiny_net()
    reg = Compose([L2(1.0), MaxNorm(1.0)])
    assert len(reg) == 2 and len(L2(1.0) + (L1(1.0) + MaxNorm(1.0))) == 3
    for p in net.parameters():
        p.grad[...] = 0.0
    reg.backward(net)
    np.testing.assert_array_equal(net[0].weight.grad, W1)  # L2(1) gradient is theta; MaxNorm adds nothing
    reg.after_step(net)
    assert np.all(unit_norms(net[0].weight.data) <= 1.0 + 1e-12)


# --- L1 is sparser than L2 on the same seeded run -----------------------------------------------------
def train(reg, epochs=40, seed=0):
    """A task where only 2 of 12 inputs matter; same data, init and batch order for every regularizer."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(256, 12)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 0] - X[:, 1] > 1).astype(np.int64)
    net = Sequential(Linear(12, 8, rng=1), Tanh(), Linear(8, 3, rng=2))
    trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1), X, y, batch_size=32, rng=7,
                      regularizer=reg)
    history = trainer.fit(epochs, progress=False)
    assert history.status == "completed"
    return net, trainer, CrossEntropyLoss().forward(net.forward(X), y)


def test_l1_gives_sparser_weights_than_l2_of_matched_strength():
    net0 = Sequential(Linear(12, 8, rng=1), Tanh(), Linear(8, 3, rng=2))
    # match the strengths so that both penalties are equal at initialisation
    lam1 = 1e-2
    lam2 = lam1 * L1(1.0).penalty(net0) / L2(1.0).penalty(net0)
    sparse = {}
    for name, reg in (("l1", L1(lam1)), ("l2", L2(lam2))):
        net, _, loss = train(reg)
        assert loss < 0.8  # both still learn the task
        w = np.concatenate([net[0].weight.data.ravel(), net[2].weight.data.ravel()])
        sparse[name] = np.mean(np.abs(w) < 0.01)
    assert sparse["l1"] >= sparse["l2"] + 0.2, sparse  # about 0.56 against 0.24


# --- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, err, match", [
    (lambda: L2(-1.0), ValueError, "weight_decay must be a finite number >= 0, got -1.0"),
    (lambda: L1("0.1"), TypeError, "strength must be a number"),
    (lambda: ElasticNet(0.1, float("nan")), ValueError, "l2 must be a finite"),
    (lambda: MaxNorm(0.0), ValueError, "c must be > 0"),
    (lambda: MaxNorm(1.0, axis="rows"), TypeError, "axis must be None, an int or a tuple of ints"),
    (lambda: Compose([L2(0.1), 0.5]), TypeError, "item 1 is float"),
    (lambda: L2(0.1).penalty([1.0]), TypeError, "expects a cnnlab Module"),
    (lambda: MaxNorm(1.0).after_step(np.ones(3)), TypeError, "got ndarray"),
    (lambda: MaxNorm(1.0, axis=2).after_step(tiny_net()), ValueError, "axis 2 is out of range"),
])
def test_errors(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_base_class_is_a_no_op_regularizer():
    net = tiny_net()
    reg = Regularizer()
    assert reg.penalty(net) == 0.0
    net[0].weight.grad[...] = 1.0
    reg.backward(net)
    reg.after_step(net)
    np.testing.assert_array_equal(net[0].weight.grad, 1.0)
    np.testing.assert_array_equal(net[0].weight.data, W1)


def test_trainer_records_the_penalty_apart_and_max_norm_holds_after_every_step():
    free, _, _ = train(Regularizer(), epochs=3)
    assert max(unit_norms(p.data).max() for p in (free[0].weight, free[2].weight)) > 0.6  # would break c = 0.5
    reg = L2(1e-3) + MaxNorm(0.5)
    net, trainer, _ = train(reg, epochs=3)
    steps = trainer.history.steps
    assert len(steps) == 24
    assert all(s["penalty"] > 0 and s["penalty"] != s["loss"] for s in steps)
    assert reg.penalty(net) == pytest.approx(1e-3 * 0.5 * sum(float(np.sum(p.data.astype(np.float64) ** 2))
                                                          for p in (net[0].weight, net[2].weight)), rel=1e-6)
    for p in (net[0].weight, net[2].weight):
        assert np.all(unit_norms(p.data) <= 0.5 * (1 + 1e-6))
