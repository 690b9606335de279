"""Every optimizer's step against values worked out by hand from its formula (Tomasi §2, Khan §5.4)."""
import math

import numpy as np
import pytest

from cnnlab import Parameter
from cnnlab.optim import (SGD, Adadelta, Adagrad, Adam, AdamW, CosineAnnealingLR, ExponentialLR, LinearLR,
                          MomentumSchedule, OneCycleLR, RMSprop, StepLR, clip_grad_norm_, sutskever_momentum)


# eps must be > 0 (0 / 0 = NaN where v = 0); 1e-300 vanishes exactly next to every v of the hand
# computations below (float64 adds it to v >= 1e-9 without a change), so they need no eps term.
NO_EPS = 1e-300


def run(opt_class, grads, theta0=1.0, **kwargs):
    """Apply the optimizer to one scalar parameter with the given sequence of gradients."""
    p = Parameter(np.array([theta0], dtype=np.float64))
    opt = opt_class([p], **kwargs)
    values = []
    for g in grads:
        p.grad[...] = g
        opt.step()
        values.append(float(p.data[0]))
    return values, opt, p


# --- SGD ---------------------------------------------------------------------------------------------
def test_plain_sgd():
    values, _, _ = run(SGD, [0.5, 0.5, -1.0], lr=0.1)
    assert values == pytest.approx([0.95, 0.90, 1.0])


def test_sgd_momentum_velocity_form():
    # b1 = 0.5, theta1 = 1 - 0.1*0.5 = 0.95; b2 = 0.9*0.5 + 0.5 = 0.95, theta2 = 0.95 - 0.095 = 0.855
    # b3 = 0.9*0.95 - 1 = -0.145, theta3 = 0.855 + 0.0145 = 0.8695
    values, opt, p = run(SGD, [0.5, 0.5, -1.0], lr=0.1, momentum=0.9)
    assert values == pytest.approx([0.95, 0.855, 0.8695])
    assert opt.state[p]["momentum_buffer"][0] == pytest.approx(-0.145)


def test_sgd_nesterov_pytorch_form():
    # b1 = 0.5, step 0.1*(0.5 + 0.9*0.5) = 0.095 -> 0.905; b2 = 0.95, step 0.1*(0.5 + 0.855) -> 0.7695
    # b3 = 0.855 - 1 = -0.145, step 0.1*(-1 + 0.9*(-0.145)) = -0.11305 -> 0.88255
    values, _, _ = run(SGD, [0.5, 0.5, -1.0], lr=0.1, momentum=0.9, nesterov=True)
    assert values == pytest.approx([0.905, 0.7695, 0.88255])


def test_sgd_weight_decay_adds_lambda_theta_to_the_gradient():
    values, _, _ = run(SGD, [0.5], lr=0.1, weight_decay=0.1)  # g = 0.5 + 0.1*1 = 0.6
    assert values == pytest.approx([0.94])


def quadratic_grad(theta):
    return np.array([3.0, 0.2]) * theta  # f = 1.5 x^2 + 0.1 y^2


def test_momentum_equals_tomasis_velocity_iteration():
    lr, mu = 0.05, 0.8
    p = Parameter(np.array([1.0, -2.0]))
    opt = SGD([p], lr=lr, momentum=mu)
    w, v = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(25):
        v = mu * v - lr * quadratic_grad(w)  # Tomasi: v <- mu v - alpha grad E, w <- w + v
        w = w + v
        p.grad[...] = quadratic_grad(p.data)
        opt.step()
        np.testing.assert_allclose(p.data, w, rtol=1e-12)


def test_nesterov_equals_khans_look_ahead_equations_after_a_change_of_variable():
    lr, mu = 0.05, 0.8
    p = Parameter(np.array([1.0, -2.0]))
    opt = SGD([p], lr=lr, momentum=mu, nesterov=True)
    theta, a = np.array([1.0, -2.0]), np.zeros(2)
    for _ in range(25):
        a = lr * quadratic_grad(theta - mu * a) + mu * a  # Khan 5.20
        theta = theta - a                                 # Khan 5.19
        p.grad[...] = quadratic_grad(p.data)
        opt.step()
        np.testing.assert_allclose(p.data, theta - mu * a, rtol=1e-12)  # the look-ahead point


def test_sgd_rejects_bad_hyperparameters():
    p = [Parameter(np.zeros(1))]
    with pytest.raises(ValueError, match="SGD: lr must be >= 0, got -1"):
        SGD(p, lr=-1)
    SGD(p, lr=0)  # as in PyTorch, lr = 0 is allowed (a frozen run)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.5"):
        SGD(p, lr=0.1, momentum=1.5)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum"):
        SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="cnnlab.Parameter objects, got ndarray"):
        SGD([np.zeros(2)], lr=0.1)


# --- adaptive methods -----------------------------------------------------------------------------------
def test_adagrad_eq_5_21():
    # sum = 0.25 -> step 0.1/0.5*0.5 = 0.1; sum = 0.5 -> step 0.1/sqrt(0.5)*0.5; sum = 4.5 -> step 0.1/sqrt(4.5)*2
    values, opt, p = run(Adagrad, [0.5, 0.5, 2.0], lr=0.1, eps=NO_EPS)
    second = 0.9 - 0.05 / math.sqrt(0.5)
    assert values == pytest.approx([0.9, second, second - 0.2 / math.sqrt(4.5)])
    assert opt.state[p]["sum"][0] == pytest.approx(4.5)


def test_adagrad_eps_inside_versus_outside_the_square_root():
    inside, _, _ = run(Adagrad, [0.5], lr=0.1, eps=0.01)
    outside, _, _ = run(Adagrad, [0.5], lr=0.1, eps=0.01, eps_inside_sqrt=False)
    assert inside == pytest.approx([1 - 0.1 * 0.5 / math.sqrt(0.26)])
    assert outside == pytest.approx([1 - 0.1 * 0.5 / (0.5 + 0.01)])


def test_rmsprop_eqs_5_27_5_28():
    # E = 0.1 * 4 = 0.4 -> step 0.01 * 2 / sqrt(0.4); E = 0.9*0.4 + 0.1*1 = 0.46 -> step 0.01 * 1 / sqrt(0.46)
    # E = 0.9*0.46 + 0.1*9 = 1.314 -> step 0.01 * (-3) / sqrt(1.314)
    values, opt, p = run(RMSprop, [2.0, 1.0, -3.0], lr=0.01, alpha=0.9, eps=NO_EPS)
    first = 1 - 0.02 / math.sqrt(0.4)
    second = first - 0.01 / math.sqrt(0.46)
    assert values == pytest.approx([first, second, second + 0.03 / math.sqrt(1.314)])
    assert opt.effective_lr(p)[0] == pytest.approx(0.01 / math.sqrt(1.314))


def test_adam_first_step_is_lr_times_sign_whatever_the_gradient_scale():
    for g in (1e-3, 1.0, 250.0):
        values, _, _ = run(Adam, [g], lr=0.1, eps=NO_EPS)
        assert values == pytest.approx([0.9])


def test_adam_eqs_5_29_to_5_33_with_bias_correction():
    # t=2 with g = 1 then 3: m = 0.9*0.1 + 0.1*3 = 0.39, v = 0.999*0.001 + 0.001*9 = 0.009999
    # t=3 with g = -2: m = 0.9*0.39 - 0.2 = 0.151, v = 0.999*0.009999 + 0.001*4 = 0.013989001
    values, opt, p = run(Adam, [1.0, 3.0, -2.0], lr=0.1, betas=(0.9, 0.999), eps=NO_EPS)
    m_hat, v_hat = 0.39 / (1 - 0.9**2), 0.009999 / (1 - 0.999**2)
    second = 0.9 - 0.1 * m_hat / math.sqrt(v_hat)
    m3_hat, v3_hat = 0.151 / (1 - 0.9**3), 0.013989001 / (1 - 0.999**3)
    assert values == pytest.approx([0.9, second, second - 0.1 * m3_hat / math.sqrt(v3_hat)])
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.151)
    assert opt.state[p]["exp_avg_sq"][0] == pytest.approx(0.013989001)
    assert opt.state[p]["step"] == 3


def test_adam_eps_inside_the_root_damps_tiny_gradients_more_than_pytorchs_form():
    seed, _, _ = run(Adam, [1e-6], lr=0.1, eps=1e-8)                       # 0.1 * 1e-6 / sqrt(1e-12 + 1e-8)
    torch, _, _ = run(Adam, [1e-6], lr=0.1, eps=1e-8, eps_inside_sqrt=False)  # 0.1 * 1e-6 / (1e-6 + 1e-8)
    assert 1 - seed[0] == pytest.approx(0.1 * 1e-6 / math.sqrt(1e-12 + 1e-8))
    assert 1 - torch[0] == pytest.approx(0.1 * 1e-6 / (1e-6 + 1e-8))
    assert (1 - seed[0]) < 0.02 * (1 - torch[0])


def test_adadelta_unit_corrected_eq_5_26():
    eps = 1e-6
    values, opt, p = run(Adadelta, [1.0, 1.0, 1.0], lr=1.0, rho=0.9, eps=eps)
    d1 = math.sqrt(eps) / math.sqrt(0.1 + eps)       # E[g^2] = 0.1, E[dtheta^2] = 0
    acc = 0.1 * d1**2
    d2 = math.sqrt(acc + eps) / math.sqrt(0.19 + eps)  # E[g^2] = 0.9*0.1 + 0.1
    acc2 = 0.9 * acc + 0.1 * d2**2
    d3 = math.sqrt(acc2 + eps) / math.sqrt(0.271 + eps)  # E[g^2] = 0.9*0.19 + 0.1
    assert values == pytest.approx([1 - d1, 1 - d1 - d2, 1 - d1 - d2 - d3], rel=1e-12)
    assert opt.state[p]["acc_delta"][0] == pytest.approx(0.9 * acc2 + 0.1 * d3**2)


def test_adadelta_eta_form_eqs_5_24_5_25():
    values, _, _ = run(Adadelta, [1.0], lr=0.1, rho=0.9, eps=NO_EPS, form="eta")
    assert values == pytest.approx([1 - 0.1 / math.sqrt(0.1)])
    with pytest.raises(ValueError, match="form must be one of"):
        Adadelta([Parameter(np.zeros(1))], form="zeiler2012")


# --- groups, frozen parameters, state ---------------------------------------------------------------------
def test_parameter_groups_give_per_layer_learning_rates():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = SGD([{"params": [a], "lr": 0.5}, {"params": [b]}], lr=0.1)
    a.grad[...] = 1
    b.grad[...] = 1
    opt.step()
    np.testing.assert_allclose(a.data, 0.5)
    np.testing.assert_allclose(b.data, 0.9)
    with pytest.raises(ValueError, match=r"unknown options \['lr_mult'\]"):
        SGD([{"params": [a], "lr_mult": 2}], lr=0.1)


def test_frozen_parameters_are_not_updated():
    a = Parameter(np.ones(2), requires_grad=False)
    b = Parameter(np.ones(2))
    opt = Adam([a, b], lr=0.1)
    a.grad[...] = b.grad[...] = 1
    opt.step()
    np.testing.assert_array_equal(a.data, 1)
    assert (b.data < 1).all() and a not in opt.state


def test_optimizer_keeps_float32_parameters_float32():
    p = Parameter(np.ones(3, dtype=np.float32))
    for cls in (SGD, Adagrad, Adadelta, RMSprop, Adam):
        opt = cls([p], lr=0.1) if cls is not Adadelta else cls([p])
        p.grad[...] = 0.3
        opt.step()
        assert p.data.dtype == np.float32


def test_zero_grad():
    p = Parameter(np.ones(2))
    p.grad[...] = 5
    SGD([p], lr=0.1).zero_grad()
    assert not p.grad.any()


def test_state_dict_round_trip_continues_bit_exactly():
    grads = [0.3, -1.2, 0.7, 2.0, -0.1]
    full, _, _ = run(Adam, grads, lr=0.05)
    p = Parameter(np.array([1.0]))
    opt = Adam([p], lr=0.05)
    for g in grads[:2]:
        p.grad[...] = g
        opt.step()
    saved, saved_theta = opt.state_dict(), p.data.copy()
    q = Parameter(saved_theta)
    resumed = Adam([q], lr=0.05)
    resumed.load_state_dict(saved)
    for g in grads[2:]:
        q.grad[...] = g
        resumed.step()
    assert float(q.data[0]) == full[-1]


def test_load_state_dict_refuses_a_mismatched_state():
    p = Parameter(np.ones(2))
    opt = SGD([p], lr=0.1, momentum=0.9)
    p.grad[...] = 1
    opt.step()
    other = SGD([Parameter(np.ones(3))], lr=0.1, momentum=0.9)
    with pytest.raises(ValueError, match=r"has shape \(2,\), the parameter has \(3,\)"):
        other.load_state_dict(opt.state_dict())


# --- schedules and clipping --------------------------------------------------------------------------------
def lrs(scheduler_class, epochs, **kwargs):
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    sched = scheduler_class(opt, **kwargs)
    out = []
    for _ in range(epochs):
        sched.step()
        out.append(sched.get_last_lr()[0])
    return out


def test_learning_rate_schedules():
    assert lrs(StepLR, 5, step_size=2, gamma=0.5) == pytest.approx([1, 0.5, 0.5, 0.25, 0.25])
    assert lrs(ExponentialLR, 3, gamma=0.5) == pytest.approx([0.5, 0.25, 0.125])
    c = math.cos(math.pi / 4)
    assert lrs(CosineAnnealingLR, 5, T_max=4) == pytest.approx([(1 + c) / 2, 0.5, (1 - c) / 2, 0, 0])


def test_linear_warm_up_starts_at_once_and_holds_its_end():
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    LinearLR(opt, start_factor=0.25, total_iters=3)
    assert opt.param_groups[0]["lr"] == 0.25  # set at construction, as PyTorch does
    assert lrs(LinearLR, 5, start_factor=0.25, total_iters=3) == pytest.approx([0.5, 0.75, 1, 1, 1], abs=1e-15)
    assert lrs(LinearLR, 3, start_factor=1.0, end_factor=0.5, total_iters=2) == pytest.approx([0.75, 0.5, 0.5])


def test_cosine_with_warm_up_by_hand():
    """T_max 6 with 2 warm-up steps from 0.1: 0.1, 0.55, then the cosine over the 4 steps left."""
    opt = SGD([Parameter(np.zeros(1))], lr=1.0)
    CosineAnnealingLR(opt, T_max=6, warmup_iters=2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    c = math.cos(math.pi / 4)
    assert lrs(CosineAnnealingLR, 7, T_max=6, warmup_iters=2) == pytest.approx(
        [0.55, 1, (1 + c) / 2, 0.5, (1 - c) / 2, 0, 0], abs=1e-15)
    opt = SGD([Parameter(np.zeros(1))], lr=0.7)
    CosineAnnealingLR(opt, T_max=3)
    assert opt.param_groups[0]["lr"] == 0.7  # no warm-up: the optimizer's rate is left alone, as before


def one_cycle(opt, steps, **kwargs):
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.2, div_factor=10, final_div_factor=100, **kwargs)
    out = [(opt.param_groups[0]["lr"], sched.momentum_at(0))]
    for _ in range(steps):
        sched.step()
        out.append((opt.param_groups[0]["lr"], sched.momentum_at(sched.last_epoch)))
    return sched, out


def test_one_cycle_by_hand():
    """10 steps, peak at pct_start 10 - 1 = step 1: lr 0.1 -> 1 (step 1) -> 0.1 / 100 = 0.001 (step 9),
    cosine halves: at step 5, half-way down (x = 1/2), 0.001 + 0.999 / 2; at step 3, x = 1/4."""
    opt = Adam([Parameter(np.zeros(1))], lr=5.0, betas=(0.5, 0.999))
    sched, seen = one_cycle(opt, 10)
    lr = [a for a, _ in seen]
    c = math.cos(math.pi / 4)
    assert lr[:2] == pytest.approx([0.1, 1.0], abs=1e-15)
    assert lr[3] == pytest.approx(0.001 + 0.999 * (1 + c) / 2, abs=1e-15)
    assert lr[5] == pytest.approx(0.5005, abs=1e-15) and lr[9] == pytest.approx(0.001, abs=1e-15)
    assert lr[10] == pytest.approx(0.001 + 0.999 * (1 + math.cos(9 * math.pi / 8)) / 2, abs=1e-15)  # as PyTorch
    assert [seen[t][1] for t in (0, 1, 5, 9)] == pytest.approx([0.95, 0.85, 0.9, 0.95], abs=1e-15)
    assert opt.param_groups[0]["betas"] == pytest.approx((sched.momentum_at(10), 0.999))  # Adam: beta1 cycles
    with pytest.raises(ValueError, match="stepped 11 times, more than total_steps = 10"):
        sched.step()
    opt = SGD([Parameter(np.zeros(1))], lr=1.0, momentum=0.3)
    _, seen = one_cycle(opt, 5, anneal_strategy="linear", cycle_momentum=False)
    assert [a for a, _ in seen][3] == pytest.approx(1 - 0.999 / 4, abs=1e-15)
    assert opt.param_groups[0]["momentum"] == 0.3
    opt = SGD([Parameter(np.zeros(1))], lr=1.0, momentum=0.3)
    one_cycle(opt, 1)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.85)  # SGD: its momentum cycles


def test_sutskever_momentum_schedule_of_tomasis_figure_2():
    assert [sutskever_momentum(t) for t in (0, 249, 250, 500)] == pytest.approx([0.5, 0.5, 0.75, 1 - 0.5 / 3])
    assert sutskever_momentum(10**6) == 0.99 and sutskever_momentum(10**6, mu_max=0.995) == 0.995
    opt = SGD([Parameter(np.zeros(1))], lr=0.1, momentum=0.1)
    sched = MomentumSchedule(opt, every=2)
    assert opt.param_groups[0]["momentum"] == 0.5
    sched.step(), sched.step()
    assert opt.param_groups[0]["momentum"] == 0.75
    with pytest.raises(ValueError, match="no momentum"):
        MomentumSchedule(Adam([Parameter(np.zeros(1))]))


def test_clip_grad_norm_scales_jointly_and_reports_the_norm():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    a.grad[...] = [3.0, 0.0]
    b.grad[...] = [4.0]
    norm = clip_grad_norm_([a, b], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad, b.grad]), [0.6, 0, 0.8], rtol=1e-5)
    assert clip_grad_norm_([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)  # untouched below the cap
    a.grad[0] = np.inf
    assert clip_grad_norm_([a, b], 1.0) == np.inf and a.grad[0] == np.inf


@pytest.mark.parametrize("name", ["SGD", "Momentum", "Nesterov", "AdaGrad", "AdaDelta", "RMSprop", "Adam", "AdamW"])
def test_all_eight_run_unchanged_on_a_2_vector_and_on_a_cnn(name):
    from cnnlab import Sequential
    from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
    from cnnlab.losses import CrossEntropyLoss

    make = {"SGD": lambda ps: SGD(ps, lr=0.05), "Momentum": lambda ps: SGD(ps, lr=0.05, momentum=0.9),
            "Nesterov": lambda ps: SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
            "AdaGrad": lambda ps: Adagrad(ps, lr=0.05), "AdaDelta": lambda ps: Adadelta(ps, lr=1.0),
            "RMSprop": lambda ps: RMSprop(ps, lr=0.01), "Adam": lambda ps: Adam(ps, lr=0.01),
            "AdamW": lambda ps: AdamW(ps, lr=0.01)}[name]
    point = Parameter(np.array([1.0, -1.0]))
    opt = make([point])
    for _ in range(5):
        point.grad[...] = 2 * point.data  # f = |p|^2
        opt.step()
    assert np.sum(point.data**2) < 2.0
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((16, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, 16)
    net = Sequential([Conv2d(1, 4, 3, rng=1), ReLU(), MaxPool2d(2), Flatten(), Linear(36, 3, rng=2)])
    opt, loss = make(net.parameters()), CrossEntropyLoss()
    first = loss(net(X), y)
    for _ in range(10):
        loss(net(X), y)
        net.backward(loss.backward())
        opt.step()
    assert loss(net(X), y) < first


# --- every hyper-parameter checked, at construction and in every group -------------------------------------
VALID = {SGD: dict(lr=0.1), Adagrad: dict(lr=0.1), Adadelta: dict(lr=1.0), RMSprop: dict(lr=0.01),
         Adam: dict(lr=0.01)}
NAN, INF = float("nan"), float("inf")
BAD = [  # (optimizer, bad options, error type, message)
    *[(cls, {"lr": v}, ValueError, f"{cls.__name__}: lr must be {w}>= 0, got {v}")
      for cls in VALID for v, w in [(-1, ""), (-1e-9, ""), (NAN, ""), (INF, "a finite number ")]],
    *[(cls, {"weight_decay": v}, ValueError, f"{cls.__name__}: weight_decay must be {w}>= 0, got {v}")
      for cls in VALID for v, w in [(-0.1, ""), (NAN, ""), (INF, "a finite number ")]],
    *[(cls, {"lr": "0.1"}, TypeError, f"{cls.__name__}: lr must be a real number, got '0.1' (str)") for cls in VALID],
    *[(cls, {"lr": True}, TypeError, f"{cls.__name__}: lr must be a real number, got True (bool)") for cls in VALID],
    (SGD, {"momentum": -0.5}, ValueError, "SGD: momentum must be in [0, 1), got -0.5"),
    (SGD, {"momentum": 1.0}, ValueError, "SGD: momentum must be in [0, 1), got 1.0"),
    (SGD, {"momentum": NAN}, ValueError, "SGD: momentum must be in [0, 1), got nan"),
    (SGD, {"nesterov": True}, ValueError, "SGD: nesterov=True needs a momentum > 0, got momentum=0"),
    (SGD, {"nesterov": "yes", "momentum": 0.9}, TypeError, "SGD: nesterov must be True or False, got 'yes'"),
    *[(cls, {"eps": v}, ValueError, f"{cls.__name__}: eps must be {w}> 0 (it keeps the denominator away from "
                                    f"zero where v = 0), got {v}")
      for cls in (Adagrad, Adadelta, RMSprop, Adam) for v, w in [(-1, ""), (0.0, ""), (NAN, ""),
                                                                 (INF, "a finite number ")]],
    *[(cls, {"eps_inside_sqrt": 1}, TypeError, f"{cls.__name__}: eps_inside_sqrt must be True or False, got 1")
      for cls in (Adagrad, RMSprop, Adam)],
    (Adadelta, {"rho": -0.1}, ValueError, "Adadelta: rho must be in [0, 1), got -0.1"),
    (Adadelta, {"rho": 1.5}, ValueError, "Adadelta: rho must be in [0, 1), got 1.5"),
    (Adadelta, {"rho": NAN}, ValueError, "Adadelta: rho must be in [0, 1), got nan"),
    (Adadelta, {"form": "zeiler"}, ValueError, "Adadelta: form must be one of ('unit_corrected', 'eta'), got 'zeiler'"),
    (RMSprop, {"alpha": -0.1}, ValueError, "RMSprop: alpha must be in [0, 1), got -0.1"),
    (RMSprop, {"alpha": 1.01}, ValueError, "RMSprop: alpha must be in [0, 1), got 1.01"),
    (RMSprop, {"alpha": INF}, ValueError, "RMSprop: alpha must be in [0, 1), got inf"),
    (Adam, {"betas": (0.9, 1.0)}, ValueError, "Adam: betas[1] must be in [0, 1), got 1.0"),
    (Adam, {"betas": (-0.1, 0.999)}, ValueError, "Adam: betas[0] must be in [0, 1), got -0.1"),
    (Adam, {"betas": (NAN, 0.999)}, ValueError, "Adam: betas[0] must be in [0, 1), got nan"),
    (Adam, {"betas": (0.9,)}, TypeError, "Adam: betas must be a pair (beta1, beta2), got (0.9,)"),
    (Adam, {"betas": 0.9}, TypeError, "Adam: betas must be a pair (beta1, beta2), got 0.9"),
]


@pytest.mark.parametrize("cls, bad, error, message", BAD)
def test_every_hyperparameter_is_checked_at_construction(cls, bad, error, message):
    with pytest.raises(error) as err:
        cls([Parameter(np.zeros(2))], **{**VALID[cls], **bad})
    assert str(err.value) == message


@pytest.mark.parametrize("cls, bad, error, message", BAD)
def test_every_hyperparameter_is_checked_in_parameter_groups_too(cls, bad, error, message):
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(3))
    with pytest.raises(error) as err:
        cls([{"params": [a]}, {"params": [b], **bad}], **VALID[cls])
    assert str(err.value) == message + " (parameter group 1)"
    opt = cls([a], **VALID[cls])
    with pytest.raises(error) as err:
        opt.add_param_group({"params": [b], **bad})
    assert str(err.value) == message + " (parameter group 1)"
    assert len(opt.param_groups) == 1 and opt.parameters() == [a]  # nothing added


def test_adam_with_negative_eps_no_longer_gives_nan():
    # the defect: Adam(eps=-1) was accepted and its first step was sqrt(v_hat - 1) = NaN
    with pytest.raises(ValueError, match=r"Adam: eps must be > 0 .* got -1"):
        Adam([Parameter(np.zeros(1))], eps=-1)


@pytest.mark.parametrize("cls", list(VALID))
def test_a_parameter_listed_twice_is_refused(cls):
    p, q = Parameter(np.ones(2)), Parameter(np.ones(3))
    with pytest.raises(ValueError) as err:
        cls([p, q, p], **VALID[cls])
    assert str(err.value) == (f"{cls.__name__}: Parameter(shape=(2,), dtype=float64) appears twice, at position 0 "
                              "of parameter group 0 and at position 2 of group 0; each parameter must be listed "
                              "once, or every step() would update it twice")
    with pytest.raises(ValueError, match=r"at position 0 of parameter group 0 and at position 1 of group 1"):
        cls([{"params": [p]}, {"params": [q, p], "lr": 0.5}], **VALID[cls])


def test_sgd_on_a_parameter_listed_twice_would_have_stepped_it_twice():
    p = Parameter(np.array([1.0]))
    with pytest.raises(ValueError, match="appears twice"):
        SGD([p, p], lr=0.1)
    opt = SGD([p], lr=0.1)  # listed once: one step of lr * g = 0.1
    p.grad[...] = 1.0
    opt.step()
    assert p.data[0] == pytest.approx(0.9)


def test_add_param_group_adds_a_new_parameter_with_its_own_options_and_refuses_a_known_one():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = SGD([a], lr=0.1, momentum=0.5)
    opt.add_param_group({"params": [b], "lr": 0.01})
    assert opt.param_groups[1]["lr"] == 0.01 and opt.param_groups[1]["momentum"] == 0.5  # default filled in
    a.grad[...] = b.grad[...] = 1.0
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.99)
    with pytest.raises(ValueError, match="appears twice, at position 0 of parameter group 1 and at position 0 of group 2"):
        opt.add_param_group({"params": [b]})
    with pytest.raises(TypeError, match="single Parameter"):
        SGD(a, lr=0.1)
    assert len(opt.param_groups) == 2


# --- load_state_dict: all or nothing ---------------------------------------------------------------------
def two_group_adam():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad[...], b.grad[...] = 1.0, 2.0
    opt.step()
    return opt


def assert_unchanged(opt, groups, state):
    assert [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups] == groups
    assert set(opt.state) == set(state)
    for p, s in state.items():
        assert sorted(opt.state[p]) == sorted(s)
        for key, value in s.items():
            np.testing.assert_array_equal(opt.state[p][key], value)


@pytest.mark.parametrize("corrupt, error, message", [
    (lambda sd: sd["groups"][1].update(lr=-1.0), ValueError, r"Adam: lr must be >= 0, got -1.0 \(group 1 of the state dict\)"),
    (lambda sd: sd["groups"][1].update(momentum=0.9), ValueError, r"group 1 of the state dict has options \['momentum'\]"),
    (lambda sd: sd["groups"].__setitem__(1, "lr=0.5"), TypeError, "group 1 of the state dict must be a dict"),
    (lambda sd: sd["state"][1].update(exp_avg=np.zeros(4)), ValueError, r"has shape \(4,\), the parameter has \(3,\)"),
    (lambda sd: sd["state"][1].update(step=-1), ValueError, "'step' of parameter 1 must be an integer >= 0, got -1"),
    (lambda sd: sd["state"][1].update(step=1.5), ValueError, "'step' of parameter 1 must be an integer >= 0, got 1.5"),
    (lambda sd: sd["state"][1].update(exp_avg=np.array(["a", "b", "c"])), TypeError, "must hold numbers, got dtype <U1"),
    (lambda sd: sd["state"].__setitem__("x", {}), ValueError, "refers to parameter 'x', the optimizer has 2"),
])
def test_optimizer_load_state_dict_with_a_bad_last_entry_changes_nothing(corrupt, error, message):
    source, target = two_group_adam(), two_group_adam()
    for p in target.parameters():
        p.grad[...] = -3.0
    target.step()  # target's state now differs from source's
    target.param_groups[0]["lr"] = 0.25
    groups = [{k: v for k, v in g.items() if k != "params"} for g in target.param_groups]
    state = {p: {k: np.array(v, copy=True) for k, v in s.items()} for p, s in target.state.items()}
    saved = source.state_dict()
    saved["groups"][0]["lr"] = 0.125  # a valid change in the FIRST group, which must not be applied
    corrupt(saved)
    with pytest.raises(error, match=message):
        target.load_state_dict(saved)
    assert_unchanged(target, groups, state)


def test_optimizer_load_state_dict_casts_state_to_the_parameter_dtype():
    p = Parameter(np.ones(2, dtype=np.float32))
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.load_state_dict({"groups": [{"lr": 0.2, "momentum": 0.5}],
                         "state": {"0": {"step": np.int64(3), "momentum_buffer": np.array([1.0, 2.0])}}})
    assert opt.param_groups[0]["lr"] == 0.2 and opt.param_groups[0]["momentum"] == 0.5
    assert opt.state[p]["step"] == 3 and opt.state[p]["momentum_buffer"].dtype == np.float32
    with pytest.raises(TypeError, match="expects a dict with a 'groups' list and a 'state' dict"):
        opt.load_state_dict([("groups", [])])


@pytest.mark.parametrize("make, message", [
    (lambda opt: StepLR(opt, step_size=1, gamma=-0.5), "gamma must be positive"),
    (lambda opt: StepLR(opt, step_size=1, gamma=float("nan")), "gamma must be positive"),
    (lambda opt: ExponentialLR(opt, gamma=float("inf")), "gamma must be positive"),
    (lambda opt: CosineAnnealingLR(opt, T_max=3, eta_min=-1e-3), "eta_min must be"),
    (lambda opt: MomentumSchedule(opt, mu_max=1.0), r"mu_max must be in \[0, 1\)"),
    (lambda opt: MomentumSchedule(opt, every=0), "every must be >= 1"),
    (lambda opt: LinearLR(opt, start_factor=0), r"start_factor must be in \(0, 1\]"),
    (lambda opt: CosineAnnealingLR(opt, T_max=3, warmup_iters=3), r"warmup_iters must be in \[0, T_max\)"),
    (lambda opt: OneCycleLR(opt, max_lr=0.1, total_steps=10, pct_start=0.1), "pct_start must put the peak"),
    (lambda opt: OneCycleLR(opt, max_lr=-1, total_steps=10), "max_lr must be a positive"),
    (lambda opt: OneCycleLR(opt, max_lr=1, total_steps=10, base_momentum=0.99), "base_momentum <= max_momentum"),
    (lambda opt: OneCycleLR(Adagrad([Parameter(np.zeros(2))]), max_lr=1, total_steps=10), "no momentum or beta1"),
])
def test_schedulers_refuse_settings_that_would_give_a_negative_or_broken_rate(make, message):
    opt = SGD([Parameter(np.zeros(2))], lr=0.1, momentum=0.5)
    with pytest.raises(ValueError, match=message):
        make(opt)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.5



# --- AdamW: decoupled weight decay ---------------------------------------------------------------------
def test_adamw_decays_the_weight_then_takes_adams_step_on_the_gradient_alone():
    # lr 0.1, lambda 0.5: theta <- 0.95 theta first. Step 1 (g = 2): 0.95, then Adam's first step is
    # lr * sign(g): 0.85. Step 2 (g = -1): 0.85 * 0.95 = 0.8075; m = 0.9 * 0.2 - 0.1 = 0.08,
    # v = 0.999 * 0.004 + 0.001 = 0.004996, m_hat = 0.08 / 0.19, v_hat = 0.004996 / 0.001999.
    values, opt, p = run(AdamW, [2.0, -1.0], lr=0.1, weight_decay=0.5, eps=NO_EPS)
    second = 0.8075 - 0.1 * (0.08 / 0.19) / math.sqrt(0.004996 / 0.001999)
    assert values == pytest.approx([0.85, second])
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.08), "the moments never see the decay"
    # Adam's L2 form folds 0.5 * theta into g: 2.5 at step 1, whose first step is still lr * sign: 0.9
    assert run(Adam, [2.0], lr=0.1, weight_decay=0.5, eps=NO_EPS)[0] == pytest.approx([0.9])


def test_adamw_without_gradients_shrinks_geometrically_while_adam_l2_steps_by_lr():
    # g = 0: AdamW is pure decay, theta_t = (1 - lr lambda)^t; Adam's L2 gradient lambda theta is
    # normalised by its own root mean square, so theta falls by lr per step whatever lambda is.
    decoupled, _, _ = run(AdamW, [0.0] * 3, theta0=2.0, lr=0.1, weight_decay=0.5, eps=NO_EPS)
    assert decoupled == pytest.approx([2.0 * 0.95, 2.0 * 0.95**2, 2.0 * 0.95**3])
    # Step 1: lr * sign = 0.1. Step 2: g = lambda * 1.9 after lambda * 2, ratio 0.95 whatever lambda is:
    # m_hat / sqrt(v_hat) = (0.09 + 0.095) / 0.19 / sqrt((0.000999 + 0.0009025) / 0.001999), in units of lambda.
    step2 = 0.1 * (0.185 / 0.19) / math.sqrt(0.0019015 / 0.001999)
    coupled = [run(Adam, [0.0] * 3, theta0=2.0, lr=0.1, weight_decay=lam, eps=NO_EPS)[0] for lam in (0.5, 0.01)]
    assert coupled[0][:2] == pytest.approx([1.9, 1.9 - step2])
    assert coupled[0] == pytest.approx(coupled[1], rel=1e-12), "Adam's L2 decay does not depend on lambda"


def test_adamw_defaults_are_pytorchs():
    opt = AdamW([Parameter(np.zeros(2))])
    assert opt.defaults["lr"] == 1e-3 and opt.defaults["weight_decay"] == 1e-2
    assert opt.defaults["betas"] == (0.9, 0.999) and opt.defaults["eps"] == 1e-8
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW([Parameter(np.zeros(2))], weight_decay=-0.1)
