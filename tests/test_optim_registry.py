"""The optimizer registry: every entry builds its optimizer with PyTorch's defaults; names fail clearly."""
import dataclasses

import numpy as np
import pytest

from cnnlab import Parameter
from cnnlab.optim import (OPTIMIZERS, SGD, Adadelta, Adagrad, Adam, AdamW, RMSprop, make_optimizer,
                          optimizer_spec)


def point(value=1.0):
    return Parameter(np.array([value], dtype=np.float64))


def test_the_table_offers_the_eight_optimizers_of_the_course():
    assert list(OPTIMIZERS) == ["sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw"]
    classes = {name: spec.cls for name, spec in OPTIMIZERS.items()}
    assert classes == {"sgd": SGD, "momentum": SGD, "nesterov": SGD, "adagrad": Adagrad, "adadelta": Adadelta,
                       "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}
    assert [s.name for s in OPTIMIZERS.values() if s.uses_momentum] == ["momentum", "nesterov"]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_entry_builds_its_optimizer_with_its_hyperparameters(name):
    spec = OPTIMIZERS[name]
    for lr in (spec.lr_surface, spec.lr_cnn):
        assert lr > 0
        p = point()
        optimizer = make_optimizer(name, [p], lr=lr)
        assert type(optimizer) is spec.cls
        group = optimizer.param_groups[0]
        assert group["lr"] == lr and group["params"] == [p]
        assert {k: v for k, v in group.items() if k not in ("lr", "params")} == spec.hyperparameters
        p.grad[...] = 1.0
        optimizer.step()
        assert p.data[0] < 1.0, "a positive gradient moves the point down"


def test_the_defaults_are_pytorchs():
    # PyTorch's documented defaults (torch.optim, 2.x), written out here
    rms, adam = OPTIMIZERS["rmsprop"], OPTIMIZERS["adam"]
    assert rms.default_lr == 0.01 and rms.hyperparameters["alpha"] == 0.99 and rms.hyperparameters["eps"] == 1e-8
    assert adam.default_lr == 0.001 and adam.hyperparameters["betas"] == (0.9, 0.999)
    assert adam.hyperparameters["eps"] == 1e-8
    assert OPTIMIZERS["adagrad"].default_lr == 0.01 and OPTIMIZERS["adagrad"].hyperparameters["eps"] == 1e-10
    delta = OPTIMIZERS["adadelta"]
    assert delta.default_lr == 1.0 and delta.hyperparameters["rho"] == 0.9 and delta.hyperparameters["eps"] == 1e-6
    sgd = OPTIMIZERS["sgd"].hyperparameters
    assert sgd["momentum"] == 0 and sgd["nesterov"] is False
    adamw = OPTIMIZERS["adamw"]
    assert adamw.default_lr == 0.001 and adamw.hyperparameters["betas"] == (0.9, 0.999)
    assert adamw.hyperparameters["eps"] == 1e-8 and adamw.hyperparameters["weight_decay"] == 0.01
    assert all(spec.hyperparameters["weight_decay"] == 0 for spec in OPTIMIZERS.values() if spec is not adamw)
    assert OPTIMIZERS["momentum"].hyperparameters["momentum"] == 0.9
    assert OPTIMIZERS["nesterov"].hyperparameters["momentum"] == 0.9
    assert OPTIMIZERS["nesterov"].hyperparameters["nesterov"] is True


def test_rmsprop_steps_with_alpha_099():
    # one step from v = 0 with g = 1: v = (1 - 0.99) * 1 = 0.01, theta = 1 - 0.01 / sqrt(0.01 + 1e-8)
    p = point()
    optimizer = make_optimizer("rmsprop", [p], lr=0.01)
    p.grad[...] = 1.0
    optimizer.step()
    assert p.data[0] == pytest.approx(1 - 0.01 / np.sqrt(0.01 + 1e-8), rel=1e-12)


def test_adamw_is_adam_after_a_decoupled_decay_of_001():
    # one step from theta = 1 with g = 1 at lr 0.1: m_hat = v_hat = 1, so Adam moves by 0.1 / sqrt(1 + 1e-8);
    # AdamW first shrinks theta by 1 - lr * 0.01 = 0.999, then takes the same step
    adam_step = 0.1 / np.sqrt(1 + 1e-8)
    for name, expected in (("adam", 1 - adam_step), ("adamw", 0.999 - adam_step)):
        p = point()
        optimizer = make_optimizer(name, [p], lr=0.1)
        p.grad[...] = 1.0
        optimizer.step()
        assert p.data[0] == pytest.approx(expected, rel=1e-12), name
    spec = OPTIMIZERS["adamw"]
    assert spec.label == "AdamW" and not spec.uses_momentum
    # the table's conventions: the same rates as Adam (a sweep of lr_cnn, like Adam's, chose 1e-2 again)
    assert (spec.lr_surface, spec.lr_cnn) == (OPTIMIZERS["adam"].lr_surface, OPTIMIZERS["adam"].lr_cnn)


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov"])
def test_the_momentum_entries_carry_momentum_09(name):
    # two steps of g = 1 at lr 0.1 from theta = 1:
    #   SGD: 1 - 0.1 - 0.1 = 0.8
    #   momentum: b = 1 then 1.9; theta = 0.9 then 0.9 - 0.19
    #   Nesterov: b = 1, step 0.1 * (1 + 0.9 * 1) = 0.19; b = 1.9, step 0.1 * (1 + 0.9 * 1.9) = 0.271
    first = {"sgd": 0.9, "momentum": 0.9, "nesterov": 1 - 0.19}[name]
    second = {"sgd": 0.8, "momentum": 0.9 - 0.19, "nesterov": 1 - 0.19 - 0.271}[name]
    p = point()
    optimizer = make_optimizer(name, [p], lr=0.1)
    values = []
    for _ in range(2):
        p.grad[...] = 1.0
        optimizer.step()
        values.append(p.data[0])
    assert values == pytest.approx([first, second], rel=1e-12)


def test_names_and_labels_in_any_case_find_the_entry():
    assert optimizer_spec("RMSprop") is optimizer_spec("RMSPROP") is optimizer_spec("rmsprop")
    assert optimizer_spec("rmsprop") is OPTIMIZERS["rmsprop"]
    assert [optimizer_spec(s.label).name for s in OPTIMIZERS.values()] == list(OPTIMIZERS)
    assert OPTIMIZERS["adagrad"].label == "AdaGrad"


def test_unknown_names_list_the_known_ones():
    known = "sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw"
    with pytest.raises(ValueError, match=f"unknown optimizer 'lion'; known: {known}"):
        make_optimizer("lion", [point()], lr=0.1)
    with pytest.raises(ValueError, match="unknown optimizer 3; known: sgd"):
        optimizer_spec(3)


def test_overrides_reach_the_class_and_unknown_ones_are_named():
    optimizer = make_optimizer("rmsprop", [point()], lr=0.01, alpha=0.9)
    assert optimizer.param_groups[0]["alpha"] == 0.9
    assert OPTIMIZERS["rmsprop"].hyperparameters["alpha"] == 0.99, "an override changes that optimizer only"
    with pytest.raises(TypeError, match="RMSprop .RMSprop. has no hyper-parameter beta; it takes lr, alpha, eps"):
        make_optimizer("rmsprop", [point()], lr=0.01, beta=0.9)


def test_lr_none_takes_the_class_default_and_sgd_has_none():
    assert make_optimizer("adam", [point()]).param_groups[0]["lr"] == 0.001
    assert make_optimizer("adadelta", [point()]).param_groups[0]["lr"] == 1.0
    with pytest.raises(ValueError, match="Momentum: SGD has no default learning rate; pass lr"):
        make_optimizer("momentum", [point()])


def test_nesterov_at_momentum_zero_is_plain_sgd():
    optimizer = make_optimizer("nesterov", [point()], lr=0.1, momentum=0.0)
    assert optimizer.param_groups[0]["momentum"] == 0 and optimizer.param_groups[0]["nesterov"] is False
    with pytest.raises(ValueError, match="nesterov=True needs a momentum > 0"):
        make_optimizer("nesterov", [point()], lr=0.1, momentum=0.0, nesterov=True)


def test_the_entries_are_read_only():
    spec = OPTIMIZERS["rmsprop"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.lr_cnn = 1.0
    with pytest.raises(TypeError):
        OPTIMIZERS["momentum"].options["momentum"] = 0.5
    with pytest.raises(TypeError):
        OPTIMIZERS["lion"] = spec
