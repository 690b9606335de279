"""cnnlab.pretrain: greedy auto-encoder pre-training, transfer, freeze/unfreeze, a new head, and the
fine-tuning experiment that lesson 08 shows (Fashion-MNIST classes 0-4 -> classes 5-9 with 50 labels per class).
"""
import numpy as np
import pytest

from cnnlab import Sequential, pretrain
from cnnlab.data import load_fashion_mnist
from cnnlab.layers import BatchNorm1d, Conv2d, Flatten, Linear, ReLU, Sigmoid, Tanh
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import small_cnn
from cnnlab.optim import SGD, Adam
from cnnlab.train import Trainer


@pytest.fixture(scope="module")
def fashion():
    return load_fashion_mnist("train", source="subset"), load_fashion_mnist("test", source="subset")


def mlp(seed=0, d_in=784, out=10, act=ReLU):
    g = np.random.default_rng(seed)
    return Sequential([Flatten(), Linear(d_in, 64, rng=g), act(), Linear(64, 32, rng=g), act(), Linear(32, out, rng=g)])


# --- greedy layer-wise auto-encoders (Khan 5.1.4) -------------------------------------------------------
def test_autoencoder_pretraining_lowers_the_reconstruction_loss_layer_by_layer(fashion):
    X = fashion[0].X[:1000]
    net = mlp(0)
    head_before = net[5].weight.data.copy()
    first_before = net[1].weight.data.copy()
    results = pretrain.pretrain_autoencoders(net, X, rng=0, epochs=3)
    assert [r.index for r in results] == [1, 3]                       # the hidden layers, not the head
    for r in results:
        assert r.loss_after < 0.6 * r.loss_before
        losses = r.history.train_loss
        assert len(losses) == 3 and losses[-1] < losses[0]
    assert results[0].encoder[0] is net[1] and results[0].encoder[1] is net[2]   # the net's own modules
    assert not np.array_equal(net[1].weight.data, first_before)
    np.testing.assert_array_equal(net[5].weight.data, head_before)

    # by hand: layer 1 rebuilds the pixels, layer 3 rebuilds the codes of the pre-trained layer 1
    relu = lambda a: np.maximum(a, 0)                                                  # noqa: E731
    lin = lambda layer, a: a @ layer.weight.data.T + layer.bias.data                   # noqa: E731
    x0 = X.reshape(len(X), -1)
    h1 = relu(lin(net[1], x0))
    rec0 = lin(results[0].decoder, h1)
    assert results[0].loss_after == pytest.approx(np.mean((rec0 - x0) ** 2, dtype=np.float64), rel=1e-4)
    rec1 = lin(results[1].decoder, relu(lin(net[3], h1)))
    assert results[1].loss_after == pytest.approx(np.mean((rec1 - h1) ** 2, dtype=np.float64), rel=1e-4)
    assert results[1].decoder.weight.shape == (64, 32)


def test_autoencoder_pretraining_is_seeded_and_takes_chosen_layers():
    X = np.random.default_rng(0).random((200, 1, 4, 5)).astype(np.float32)
    a, b = mlp(1, d_in=20, act=Tanh), mlp(1, d_in=20, act=Tanh)
    pretrain.pretrain_autoencoders(a, X, rng=5, epochs=2, batch_size=32)
    pretrain.pretrain_autoencoders(b, X, rng=np.random.default_rng(5), epochs=2, batch_size=32)
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)
    c = mlp(1, d_in=20, act=Sigmoid)
    third = c[3].weight.data.copy()
    results = pretrain.pretrain_autoencoders(c, X, rng=0, layers=[1], epochs=1,
                                             optimizer=lambda params: SGD(params, lr=0.1))
    assert [r.index for r in results] == [1]
    np.testing.assert_array_equal(c[3].weight.data, third)


def test_autoencoder_pretraining_errors():
    X = np.zeros((10, 1, 4, 5), dtype=np.float32)
    with pytest.raises(TypeError, match="pretrain_autoencoders: rng must be"):
        pretrain.pretrain_autoencoders(mlp(0, d_in=20), X, rng="0")
    with pytest.raises(ValueError, match=r"\[1, 3, 5\]"):         # lists the Linear layers
        pretrain.pretrain_autoencoders(mlp(0, d_in=20), X, rng=0, layers=[2])
    with pytest.raises(ValueError, match="increasing"):
        pretrain.pretrain_autoencoders(mlp(0, d_in=20), X, rng=0, layers=[3, 1])
    with pytest.raises(ValueError, match="activation"):
        pretrain.pretrain_autoencoders(Sequential([Linear(3, 2)]), X, rng=0)
    with pytest.raises(TypeError, match="Sequential"):
        pretrain.pretrain_autoencoders(Linear(3, 2), X, rng=0)


# --- transfer, freeze, a new head (Khan 5.1.8) ------------------------------------------------------------
def test_transfer_copies_exactly_and_leaves_the_head():
    source, target = mlp(1, d_in=12), mlp(2, d_in=12)
    head = {k: v.copy() for k, v in target.state_dict().items() if k.startswith("5.")}
    assert pretrain.transfer(source, target, 2) == ["1", "3"]
    for i in (1, 3):
        for ps, pt in zip(source[i].parameters(), target[i].parameters()):
            np.testing.assert_array_equal(pt.data, ps.data)
            assert pt.data is not ps.data
    for key, value in head.items():
        np.testing.assert_array_equal(target.state_dict()[key], value)
    source[1].weight.data += 1.0                                           # copies, not shared arrays
    assert not np.array_equal(source[1].weight.data, target[1].weight.data)


def test_transfer_copies_buffers_into_the_target_dtype():
    def net(seed):
        g = np.random.default_rng(seed)
        return Sequential([Linear(4, 6, rng=g), BatchNorm1d(6), ReLU(), Linear(6, 2, rng=g)])

    source, target = net(0), net(1).astype(np.float64)
    source.train()
    source(np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32))  # moves the running mean
    pretrain.transfer(source, target, 2)
    assert target[1].running_mean.dtype == np.float64
    np.testing.assert_array_equal(target[1].running_mean, source[1].running_mean.astype(np.float64))
    assert np.any(target[1].running_mean != 0)


def test_transfer_errors_change_nothing():
    source, target = mlp(1, d_in=12), mlp(2, d_in=16)
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"\(64, 12\).*\(64, 16\)"):
        pretrain.transfer(source, target, 2)
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value, before[key])
    with pytest.raises(ValueError, match="n_layers"):
        pretrain.transfer(source, mlp(3, d_in=12), 4)
    conv = Sequential([Conv2d(1, 2, 3), Flatten(), Linear(2, 2)])
    with pytest.raises(ValueError, match="Conv2d"):
        pretrain.transfer(conv, mlp(3, d_in=12), 1)


@pytest.mark.parametrize("make_opt", [lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
                                      lambda ps: Adam(ps, lr=0.01, weight_decay=0.01)], ids=["sgd", "adam"])
def test_frozen_parameters_do_not_move(make_opt):
    net = mlp(0, d_in=12)
    X = np.random.default_rng(0).standard_normal((32, 1, 3, 4)).astype(np.float32)
    y = np.arange(32) % 10
    assert pretrain.freeze(net[3]) is net[3]
    frozen = [p.data.copy() for p in net[3].parameters()]
    first, head = net[1].weight.data.copy(), net[5].weight.data.copy()
    trainer = Trainer(net, CrossEntropyLoss(), make_opt(net.parameters()), X, y, batch_size=8, rng=0)
    trainer.fit(2, progress=False)
    for p, start in zip(net[3].parameters(), frozen):
        np.testing.assert_array_equal(p.data, start)
    assert not np.allclose(net[1].weight.data, first)      # the gradient still flows through the frozen layer
    assert not np.allclose(net[5].weight.data, head)
    pretrain.unfreeze(net[3])
    trainer.fit(3, progress=False)
    assert not np.allclose(net[3].weight.data, frozen[0])


def test_replace_head_gives_a_new_last_linear():
    net = mlp(0, d_in=12).astype(np.float64)
    body = [net[i] for i in range(5)]
    old = net[5]
    head = pretrain.replace_head(net, 3, rng=0)
    assert net[5] is head and head is not old
    assert (head.in_features, head.out_features, head.weight.dtype) == (32, 3, np.float64)
    assert all(net[i] is body[i] for i in range(5))
    assert not any(p is q for p in net.parameters() for q in old.parameters())
    assert net(np.zeros((2, 1, 3, 4))).shape == (2, 3)
    again = pretrain.replace_head(mlp(0, d_in=12).astype(np.float64), 3, rng=0)
    np.testing.assert_array_equal(again.weight.data, head.weight.data)       # seeded
    nested = Sequential([Sequential([Linear(4, 5), ReLU(), Linear(5, 6)]), ReLU()])
    inner_head = pretrain.replace_head(nested, 2, rng=1)
    assert nested[0][2] is inner_head and inner_head.in_features == 5
    with pytest.raises(ValueError, match="no Linear"):
        pretrain.replace_head(Sequential([ReLU()]), 2, rng=0)
    with pytest.raises(TypeError, match="replace_head: rng must be"):
        pretrain.replace_head(net, 2, rng=[0])


# --- the experiment: supervised pre-training + fine-tuning beats random init ------------------------------
def test_fine_tuning_beats_random_init_on_a_small_target_task(fashion):
    """Source: classes 0-4 (4,000 shipped images, 2 epochs of Adam). Target: classes 5-9 with 50 labelled
    images per class; both nets get the same budget (one epoch: 25 Adam steps of 10 images); the
    fine-tuned one starts from the source's two conv layers and a new head. Validation: the 500
    shipped test images of classes 5-9. Six random draws of the 250 labelled images."""
    (train, test) = fashion
    X, y = train.X, train.y
    source = small_cnn(1, num_classes=5)
    Trainer(source, CrossEntropyLoss(), Adam(source.parameters(), lr=3e-3), X[y < 5], y[y < 5], batch_size=64,
            rng=2).fit(2, progress=False)
    X_val, y_val = test.X[test.y >= 5], test.y[test.y >= 5] - 5

    margins = []
    for draw in range(6):
        rng = np.random.default_rng(100 + draw)
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 50, replace=False) for c in range(5, 10)])
        accuracy = {}
        for start in ("random", "fine-tuned"):
            net = small_cnn(10 + draw, num_classes=5)
            if start == "fine-tuned":
                assert pretrain.transfer(source, net, 2) == ["0", "3"]
                pretrain.replace_head(net, 5, rng=4)
            history = Trainer(net, CrossEntropyLoss(), Adam(net.parameters(), lr=3e-3), X[idx], y[idx] - 5,
                              batch_size=10, rng=5 + draw, X_val=X_val, y_val=y_val).fit(1, progress=False)
            accuracy[start] = history.val_accuracy[-1]
        margins.append(accuracy["fine-tuned"] - accuracy["random"])
    assert np.mean(margins) > 0.03
    assert sum(m > 0 for m in margins) >= 5
