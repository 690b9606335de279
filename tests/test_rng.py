"""cnnlab's one rule for randomness (cnnlab/rng.py): rng=None draws from the library generator,
`manual_seed` resets it, an explicit rng wins."""
import threading

import numpy as np
import pytest

import cnnlab
from cnnlab import Sequential, init
from cnnlab.augment import Compose, RandomCrop, RandomHorizontalFlip, augmented_loader
from cnnlab.data import DataLoader, train_val_split
from cnnlab.gradcheck import gradcheck
from cnnlab.layers import (Conv2d, DropConnect, Dropout, Flatten, Linear, MapCombination, MaxPool2d, ReLU)
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import recipe_cnn
from cnnlab.optim import SGD, Adam
from cnnlab.pretrain import replace_head
from cnnlab.search import LogUniform, random_configs
from cnnlab.surfaces import SURFACES, trajectory
from cnnlab.train import Trainer


def weights(net):
    return [p.data.copy() for p in net.parameters()]


def same(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))


# --- two fresh layers differ (the symmetry trap of lesson 08, identical ensemble members) --------------
@pytest.mark.parametrize("make", [lambda: Linear(64, 64), lambda: Conv2d(3, 8, 3),
                                  lambda: DropConnect(16, 8), lambda: MapCombination(4, 3, 3)],
                         ids=["Linear", "Conv2d", "DropConnect", "MapCombination"])
def test_two_layers_built_without_rng_differ(make):
    a, b = make(), make()
    assert a.weight.data.dtype == np.float32
    # independent uniform draws: equal float32 entries are a rare coincidence, not a pattern
    assert np.mean(a.weight.data == b.weight.data) < 0.01
    if a.bias is not None and a.bias.data.std() > 0:  # MapCombination's bias starts at 0
        assert not np.array_equal(a.bias.data, b.bias.data)


def test_the_weights_are_still_pytorchs_uniform_init():
    layer = Linear(400, 300)
    bound = 1 / np.sqrt(400)
    assert np.abs(layer.weight.data).max() <= bound
    # 120,000 draws of U(-b, b): std b / sqrt(3) within 1% (the standard error is about 0.2%)
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.01 * bound / np.sqrt(3)


# --- manual_seed makes a whole run repeat --------------------------------------------------------------
def small_run(seed, steps=6):
    """Build, initialise, split, shuffle, augment and train with rng=None everywhere."""
    cnnlab.manual_seed(seed)
    data = np.random.default_rng(123)  # the data themselves are fixed
    X = data.standard_normal((60, 1, 8, 8)).astype(np.float32)
    y = np.arange(60) % 3
    X_train, y_train, X_val, y_val = train_val_split(X, y, 0.2)
    net = Sequential([Conv2d(1, 4, 3, padding=1), ReLU(), MaxPool2d(2), Flatten(), Linear(64, 16), ReLU(),
                      Dropout(0.5), Linear(16, 3)])
    init.apply(net, "kaiming_uniform")
    trainer = Trainer(net, CrossEntropyLoss(), Adam(net.parameters(), lr=1e-2), X_train, y_train,
                      batch_size=8, X_val=X_val, y_val=y_val,
                      augment=Compose([RandomCrop(8, padding=1), RandomHorizontalFlip()]))
    for _, (xb, yb) in zip(range(steps), trainer.loader):
        trainer.train_step(xb, yb)
    return weights(net), X_val


def test_manual_seed_repeats_a_training_run_bit_for_bit():
    first, val_first = small_run(5)
    Linear(10, 10)  # draws in between change nothing once the seed is set again
    second, val_second = small_run(5)
    assert np.array_equal(val_first, val_second)
    assert same(first, second)
    other, val_other = small_run(6)
    assert not np.array_equal(val_first, val_other)
    assert not np.array_equal(first[0], other[0])


def test_manual_seed_and_initial_seed():
    cnnlab.manual_seed(7)
    assert cnnlab.initial_seed() == 7
    a = Linear(5, 5).weight.data
    cnnlab.manual_seed(np.int64(7))   # NumPy ints are ints
    assert cnnlab.initial_seed() == 7 and type(cnnlab.initial_seed()) is int
    np.testing.assert_array_equal(Linear(5, 5).weight.data, a)
    cnnlab.manual_seed(2 ** 70)        # any size, as np.random.default_rng
    assert cnnlab.initial_seed() == 2 ** 70
    assert cnnlab.manual_seed(0) is None


@pytest.mark.parametrize("bad, err, match", [
    (-1, ValueError, r"manual_seed: a seed must be an int >= 0, got -1"),
    (1.0, TypeError, r"manual_seed: a seed must be an int >= 0, got float: 1.0"),
    (True, TypeError, r"manual_seed: a seed must be an int >= 0, got bool: True"),
    ("3", TypeError, r"manual_seed: a seed must be an int >= 0, got str: '3'"),
    (None, TypeError, r"manual_seed: a seed must be an int >= 0, got NoneType: None"),
    (np.random.default_rng(0), TypeError, r"got Generator"),
])
def test_bad_seeds_are_refused_and_change_nothing(bad, err, match):
    cnnlab.manual_seed(4)
    with pytest.raises(err, match=match):
        cnnlab.manual_seed(bad)
    assert cnnlab.initial_seed() == 4
    a = Linear(3, 3).weight.data
    cnnlab.manual_seed(4)
    np.testing.assert_array_equal(Linear(3, 3).weight.data, a)  # the failed call did not reset anything


@pytest.mark.parametrize("bad, err, match", [
    (-1, ValueError, r"layer: an rng seed must be a non-negative int, got -1"),
    (0.5, TypeError, r"layer: rng must be a numpy.random.Generator, an int seed or None, got float: 0.5"),
    (False, TypeError, r"got bool: False"),
    (np.random.RandomState(0), TypeError, r"got RandomState"),
])
def test_bad_rng_arguments_are_refused(bad, err, match):
    with pytest.raises(err, match=match):
        Linear(2, 2, rng=bad)


# --- an explicit rng wins and leaves the library generator alone -------------------------------------
def test_explicit_rng_wins_and_does_not_advance_the_library_generator():
    cnnlab.manual_seed(0)
    with_seed = Linear(8, 8, rng=1).weight.data
    gen = np.random.default_rng(1)
    with_generator = Linear(8, 8, rng=gen).weight.data
    after = Linear(8, 8).weight.data
    cnnlab.manual_seed(99)  # the library seed plays no part in an explicit rng
    np.testing.assert_array_equal(Linear(8, 8, rng=1).weight.data, with_seed)
    np.testing.assert_array_equal(with_generator, with_seed)
    cnnlab.manual_seed(0)
    np.testing.assert_array_equal(Linear(8, 8).weight.data, after)  # the two explicit calls drew nothing
    # a Generator's stream continues: a second layer from it differs from the first
    assert not np.array_equal(Linear(8, 8, rng=gen).weight.data, with_seed)


def test_numpy_global_random_state_is_never_used():
    np.random.seed(5)
    before = np.random.get_state()[1].copy()
    cnnlab.manual_seed(3)
    Sequential([Linear(4, 4), Dropout(0.5)])(np.ones((2, 4), np.float32))
    np.testing.assert_array_equal(np.random.get_state()[1], before)


# --- the rule holds for every function of cnnlab that takes an rng ----------------------------------------
X8 = np.linspace(-1, 1, 2 * 1 * 8 * 8, dtype=np.float32).reshape(2, 1, 8, 8)
Y20 = np.arange(20) % 2


def _net():
    return Sequential([Flatten(), Linear(64, 8, rng=0), ReLU(), Linear(8, 3, rng=1)])


def _gradcheck_upstream():
    """gradcheck's random upstream gradient G, seen through the weight gradient G^T x it leaves behind."""
    layer = Linear(3, 2, rng=0).astype(np.float64)
    assert gradcheck(layer, np.ones((1, 3))).ok
    return layer.weight.grad.copy()


def _trainer_order():
    net = _net()
    trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1),
                      np.arange(20 * 64, dtype=np.float32).reshape(20, 1, 8, 8), Y20, batch_size=20)
    return next(iter(trainer.loader))[0][:, 0, 0, 0]  # the order of the examples


CALLS = {
    "Linear": lambda: Linear(5, 4).weight.data,
    "Conv2d": lambda: Conv2d(1, 2, 3).weight.data,
    "Dropout mask": lambda: Dropout(0.5)(np.ones((4, 16), np.float32)),
    "DropConnect mask": lambda: DropConnect(8, 4)(np.ones((2, 8), np.float32)),
    "init.normal_": lambda: init.normal_(np.zeros((4, 5))),
    "init.orthogonal_": lambda: init.orthogonal_(np.zeros((4, 5))),
    "init.kaiming_uniform_": lambda: init.kaiming_uniform_(np.zeros((4, 5))),
    "init.apply": lambda: (lambda n: (init.apply(n, "xavier_normal"), n[1].weight.data)[1])(_net()),
    "init.lsuv": lambda: (lambda n: (init.lsuv(n, X8), n[1].weight.data)[1])(_net()),
    "activation_stats": lambda: np.array([s.grad_std for s in init.activation_stats(_net(), X8)]),
    "DataLoader(shuffle=True)": lambda: next(iter(DataLoader(np.arange(20), Y20, 20, shuffle=True)))[0],
    "train_val_split": lambda: train_val_split(np.arange(20), Y20, 0.5)[2],
    "RandomHorizontalFlip": lambda: RandomHorizontalFlip()(np.arange(32.0).reshape(16, 1, 1, 2)),
    "RandomCrop": lambda: RandomCrop(8, padding=2)(X8),
    "augmented_loader": lambda: next(iter(augmented_loader(DataLoader(X8, Y20[:2], 2), RandomCrop(8, 2))))[0],
    "Trainer shuffling": _trainer_order,
    "replace_head": lambda: replace_head(_net(), 3).weight.data,
    "recipe_cnn": lambda: recipe_cnn(width=2, hidden=4)[0].weight.data,
    "random_configs": lambda: np.array([c["lr"] for c in random_configs({"lr": LogUniform(1e-4, 1)}, 5)]),
    "trajectory(noise)": lambda: trajectory(SURFACES["bowl"](), lambda ps: SGD(ps, lr=0.1), steps=5,
                                            noise=0.1).points,
    "noisy_grad": lambda: SURFACES["bowl"]().noisy_grad(np.zeros(2), 0.1),
    "gradcheck": _gradcheck_upstream,
}


@pytest.mark.parametrize("name", list(CALLS))
def test_every_rng_none_follows_manual_seed(name):
    call = CALLS[name]
    cnnlab.manual_seed(11)
    first, second = call(), call()
    assert not np.array_equal(first, second), "two calls with rng=None should draw different numbers"
    cnnlab.manual_seed(11)
    np.testing.assert_array_equal(call(), first)


# --- objects that keep drawing own their generator -------------------------------------------------------
def test_a_dropout_layer_keeps_its_own_generator():
    cnnlab.manual_seed(1)
    drop = Dropout(0.5)
    x = np.ones((8, 32), np.float32)
    masks = [drop(x).copy() for _ in range(2)]
    cnnlab.manual_seed(1)
    again = Dropout(0.5)
    Linear(6, 6)  # the library generator's later draws do not touch a layer already built
    assert same([again(x), again(x)], masks)


def test_draws_from_several_threads_never_repeat_a_generator():
    cnnlab.manual_seed(0)
    seeds, lock = [], threading.Lock()

    def work():
        for _ in range(200):
            value = cnnlab.rng.as_generator(None).integers(2 ** 62)
            with lock:
                seeds.append(value)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seeds)) == 800  # every rng=None got its own generator


def test_a_run_with_rng_none_resumes_exactly_from_a_checkpoint(tmp_path):
    """The Trainer's own generators (shuffling, augmentation, dropout masks) are saved and restored; a
    trainer built later, from other library draws, continues exactly as the original would have."""
    data = np.random.default_rng(3)
    X, y = data.standard_normal((48, 1, 4, 4)).astype(np.float32), np.arange(48) % 3

    def make():
        net = Sequential([Flatten(), Linear(16, 8), ReLU(), Dropout(0.7), Linear(8, 3)])
        return Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1, momentum=0.9), X, y,
                       batch_size=8, augment=RandomHorizontalFlip())

    cnnlab.manual_seed(2)
    original = make()
    original.run(epochs=1)
    original.save(tmp_path / "run.ckpt")  # checkpoints are taken between epochs
    original.run(epochs=3)
    resumed = make()  # other initial weights, other generators: the checkpoint replaces them all
    assert not np.array_equal(resumed.net[1].weight.data, original.net[1].weight.data)
    resumed.load(tmp_path / "run.ckpt")
    resumed.run(epochs=3)
    assert resumed.global_step == original.global_step == 18
    assert same(weights(resumed.net), weights(original.net))
