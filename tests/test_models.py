"""cnnlab.models: every small network of the course has the documented layers, output shape and parameter
count (worked out by hand from the layer sizes), and its starting weights are set by its seed alone."""
import numpy as np
import pytest

import cnnlab
from cnnlab import models
from cnnlab.layers import BatchNorm1d, BatchNorm2d, DropConnect, Dropout, Linear

IMAGES = np.zeros((2, 1, 28, 28), np.float32)


def n_params(net):
    return sum(p.data.size for p in net.parameters())


def types(net):
    return [type(layer).__name__ for layer in net]


# (builder, input, layer types, parameters by hand)
CASES = {
    "tiny_mlp": (lambda rng: models.tiny_mlp(rng=rng), np.zeros((2, 196), np.float32),
                 ["Linear", "ReLU", "Linear"], 196 * 32 + 32 + 32 * 10 + 10),
    "race_net": (models.race_net, IMAGES, ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"],
                 8 * 1 * 3 * 3 + 8 + 8 * 13 * 13 * 10 + 10),
    "small_cnn": (models.small_cnn, IMAGES,
                  ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"],
                  8 * 25 + 8 + 16 * 8 * 25 + 16 + 16 * 4 * 4 * 10 + 10),
    "regularization_mlp": (lambda rng: models.regularization_mlp(seed=rng), IMAGES,
                           ["Flatten", "Linear", "ReLU", "Linear"], 784 * 128 + 128 + 128 * 10 + 10),
    "default_cnn": (models.default_cnn, IMAGES,
                    ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear"],
                    8 * 25 + 8 + 16 * 8 * 9 + 16 + 16 * 7 * 7 * 10 + 10),
    "reference_cnn": (models.reference_cnn, IMAGES,
                      ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU",
                       "Linear"], 16 * 9 + 16 + 32 * 16 * 9 + 32 + 1568 * 128 + 128 + 128 * 10 + 10),
    "recipe_cnn": (models.recipe_cnn, IMAGES,
                   ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d",
                    "Flatten", "Linear", "ReLU", "Dropout", "Linear"],
                   32 * 9 + 32 + 2 * 32 + 64 * 32 * 9 + 64 + 2 * 64 + 3136 * 128 + 128 + 128 * 10 + 10),
}


@pytest.mark.parametrize("name", CASES)
def test_layers_shapes_and_parameter_counts(name):
    build, x, layer_types, count = CASES[name]
    net = build(0)
    assert types(net) == layer_types
    assert n_params(net) == count
    assert all(p.data.dtype == np.float32 for p in net.parameters())
    out = net.eval()(x)
    assert out.shape == (2, 10) and out.dtype == np.float32


@pytest.mark.parametrize("name", CASES)
def test_the_seed_sets_the_starting_weights(name):
    build = CASES[name][0]
    a, b, c = build(3), build(3), build(4)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(a.parameters(), b.parameters()))
    assert not np.array_equal(a.parameters()[0].data, c.parameters()[0].data)


@pytest.mark.parametrize("name", ["tiny_mlp", "race_net", "small_cnn", "default_cnn", "reference_cnn",
                                  "recipe_cnn"])
def test_a_generator_is_used_as_is_and_none_draws_from_the_library_generator(name):
    build = CASES[name][0]
    seeded, gen = build(5), np.random.default_rng(5)
    from_gen = build(gen)   # the same draws as from seed 5; then the generator's stream has moved on
    assert all(np.array_equal(p.data, q.data) for p, q in zip(seeded.parameters(), from_gen.parameters()))
    assert not np.array_equal(build(gen).parameters()[0].data, seeded.parameters()[0].data)
    cnnlab.manual_seed(11)
    first = build(None)
    cnnlab.manual_seed(11)
    again, other = build(None), build(None)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(first.parameters(), again.parameters()))
    assert not np.array_equal(other.parameters()[0].data, first.parameters()[0].data)


def test_reference_cnn_is_the_benchmarks_network():
    net = models.reference_cnn(0)
    assert (net[0].in_channels, net[0].out_channels, net[0].kernel_size, net[0].padding) == (1, 16, (3, 3), (1, 1))
    assert (net[3].in_channels, net[3].out_channels, net[3].padding) == (16, 32, (1, 1))
    assert (net[7].in_features, net[7].out_features, net[9].out_features) == (1568, 128, 10)


def test_recipe_cnn_options_and_he_initialization():
    net = models.recipe_cnn(0, width=8)
    assert net.eval()(IMAGES).shape == (2, 10)
    assert (net[0].out_channels, net[4].out_channels, net[9].in_features) == (8, 16, 16 * 7 * 7)
    assert net[0].weight.data.std() == pytest.approx(np.sqrt(2 / 9), rel=0.25)  # He: Var = 2 / fan_in, 1*3*3
    assert not net[0].bias.data.any()
    assert isinstance(net[11], Dropout) and net[11].p_keep == 0.7
    plain = models.recipe_cnn(0, batch_norm=False, hidden=16, p_keep=0.5)
    assert not any(isinstance(m, BatchNorm2d) for m in plain) and plain[7].out_features == 16
    assert plain[9].p_keep == 0.5


@pytest.mark.parametrize("seed", range(4))
def test_recipe_cnn_starts_at_the_loss_of_a_uniform_guess(seed):
    """The output layer is drawn small: on real-looking inputs the initial loss is within 0.1 of ln 10
    (a He-scaled output layer gives 2.5-3.7), and the output weights are a tenth of He's scale."""
    from cnnlab.losses import CrossEntropyLoss
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    net = models.recipe_cnn(seed).train()
    loss = CrossEntropyLoss()(net(images), rng.integers(0, 10, 64))
    assert abs(float(loss) - np.log(10)) < 0.1
    assert net[-1].weight.data.std() == pytest.approx(0.1 * np.sqrt(2 / 128), rel=0.2)


def test_small_cnn_number_of_classes():
    net = models.small_cnn(1, num_classes=5)
    assert net.eval()(IMAGES).shape == (2, 5) and n_params(net) == 8 * 25 + 8 + 16 * 8 * 25 + 16 + 256 * 5 + 5


def test_regularization_mlp_layers_keep_their_own_seeds():
    """Switching a layer on leaves the others' starting weights as they were; drop-connect draws its weight
    as Linear does from the same seed."""
    plain = models.regularization_mlp(seed=2, hidden=16)
    full = models.regularization_mlp(p_keep=0.5, batchnorm=True, dropconnect=True, seed=2, hidden=16,
                                     dropconnect_p_keep=0.25)
    assert types(full) == ["Flatten", "Linear", "BatchNorm1d", "ReLU", "Dropout", "DropConnect"]
    assert isinstance(full[2], BatchNorm1d) and full[4].p_keep == 0.5 and full[5].p_keep == 0.25
    np.testing.assert_array_equal(full[1].weight.data, plain[1].weight.data)
    assert isinstance(plain[3], Linear) and isinstance(full[5], DropConnect)
    np.testing.assert_array_equal(full[5].weight.data, plain[3].weight.data)
    np.testing.assert_array_equal(full[1].weight.data, Linear(784, 16, rng=2 + 11).weight.data)
    other = models.regularization_mlp(seed=3, hidden=16)
    assert not np.array_equal(other[1].weight.data, plain[1].weight.data)
