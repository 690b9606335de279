"""cnnlab.ensemble: averaging and voting by hand, and a seeded committee that beats its average member."""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.ensemble import Ensemble, average_probabilities, majority_vote
from cnnlab.layers import Dropout, Linear, Tanh
from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import SGD
from cnnlab.train import Trainer

P1 = np.array([[0.2, 0.8], [0.6, 0.4]])
P2 = np.array([[0.6, 0.4], [0.0, 1.0]])


def test_average_by_hand():
    np.testing.assert_allclose(average_probabilities([P1, P2]), [[0.4, 0.6], [0.3, 0.7]], rtol=1e-15)


def test_weighted_average_weights_are_normalized():
    expected = [[0.75 * 0.2 + 0.25 * 0.6, 0.75 * 0.8 + 0.25 * 0.4], [0.75 * 0.6, 0.75 * 0.4 + 0.25]]
    np.testing.assert_allclose(average_probabilities([P1, P2], weights=[3, 1]), expected, rtol=1e-15)
    np.testing.assert_allclose(average_probabilities([P1, P2], weights=[6.0, 2.0]), expected, rtol=1e-15)
    np.testing.assert_allclose(average_probabilities([P1, P2], weights=[1, 0]), P1)
    out = average_probabilities([P1.astype(np.float32), P2.astype(np.float32)])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)


def test_majority_vote_by_hand():
    a, b, c = np.array([0, 1, 2]), np.array([0, 2, 2]), np.array([1, 2, 0])
    np.testing.assert_array_equal(majority_vote([a, b, c], 3), [0, 2, 2])
    # probabilities vote with their argmax, mixed freely with labels
    pb = np.array([[0.9, 0.05, 0.05], [0.1, 0.2, 0.7], [0.0, 0.4, 0.6]])
    np.testing.assert_array_equal(majority_vote([a, pb, c], 3), [0, 2, 2])
    assert majority_vote([a, b, c], 3).dtype == np.int64


def test_vote_ties_go_to_the_lowest_class():
    np.testing.assert_array_equal(majority_vote([np.array([0, 2, 2]), np.array([1, 1, 0])], 3), [0, 1, 0])
    np.testing.assert_array_equal(majority_vote([np.array([2]), np.array([1]), np.array([0])], 3), [0])
    np.testing.assert_array_equal(majority_vote([np.array([3]), np.array([1])], 4), [1])


def test_weighted_vote():
    a, b, c = np.array([0, 1]), np.array([0, 2]), np.array([1, 1])
    np.testing.assert_array_equal(majority_vote([a, b, c], 3), [0, 1])
    np.testing.assert_array_equal(majority_vote([a, b, c], 3, weights=[1, 1, 3]), [1, 1])   # 3 > 2
    np.testing.assert_array_equal(majority_vote([a, b, c], 3, weights=[1, 1, 2]), [0, 1])   # 2 = 2: lowest
    np.testing.assert_array_equal(majority_vote([a, b, c], 3, weights=[0, 5, 1]), [0, 2])


def mirror_nets():
    """Net A: logits = x; net B: logits = -x (Linear with weight +-I and zero bias)."""
    nets = []
    for sign in (1.0, -1.0):
        lin = Linear(2, 2).astype(np.float64)
        lin.weight.data[...] = sign * np.eye(2)
        lin.bias.data[...] = 0.0
        nets.append(Sequential(lin, Dropout(0.5, rng=0)))
    return nets


def test_ensemble_probabilities_by_hand_in_eval_mode():
    a, b = mirror_nets()
    X = np.array([[np.log(3.0), 0.0], [0.0, np.log(4.0)]])
    # softmax([ln 3, 0]) = [3/4, 1/4]; softmax([-ln 3, 0]) = [1/4, 3/4]; row 2: [1/5, 4/5] and [4/5, 1/5]
    ens = Ensemble([a, b])
    assert a.training and b.training
    np.testing.assert_allclose(ens.predict_proba(X), [[0.5, 0.5], [0.5, 0.5]], rtol=1e-12)  # dropout off
    assert a.training and b.training  # modes restored
    np.testing.assert_array_equal(ens.predict(X), [0, 0])  # exact ties: lowest class
    weighted = Ensemble([a, b], weights=[3, 1])
    np.testing.assert_allclose(weighted.predict_proba(X), [[0.625, 0.375], [0.35, 0.65]], rtol=1e-12)
    np.testing.assert_array_equal(weighted.predict(X), [0, 1])
    np.testing.assert_array_equal(weighted.vote(X), [0, 1])
    members = weighted.member_probabilities(X)
    assert len(members) == len(weighted) == 2
    np.testing.assert_allclose(members[0], [[0.75, 0.25], [0.2, 0.8]], rtol=1e-12)


def toy_data(n, seed):
    """A spiral-like 2-class problem in the square [-1, 1]^2."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    r, angle = np.hypot(X[:, 0], X[:, 1]), np.arctan2(X[:, 1], X[:, 0])
    return X.astype(np.float32), (np.sin(3 * angle + 4 * r) > 0).astype(np.int64)


def test_ensemble_of_differently_seeded_nets_beats_the_mean_member():
    X, y = toy_data(200, 0)
    X_test, y_test = toy_data(3000, 1)
    nets = []
    for s in range(5):
        net = Sequential(Linear(2, 16, rng=10 + s), Tanh(), Linear(16, 16, rng=30 + s), Tanh(),
                         Linear(16, 2, rng=20 + s))
        Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1, momentum=0.9), X, y,
                batch_size=20, rng=s).fit(60, progress=False)
        nets.append(net)
    member_acc = [np.mean(net.forward(X_test).argmax(axis=1) == y_test) for net in nets]
    ens = Ensemble(nets)
    assert np.std(member_acc) > 0.005  # the members really differ
    assert np.mean(ens.predict(X_test) == y_test) >= np.mean(member_acc)
    assert np.mean(ens.vote(X_test) == y_test) >= np.mean(member_acc)


@pytest.mark.parametrize("call, err, match", [
    (lambda: average_probabilities([]), TypeError, "non-empty list"),
    (lambda: average_probabilities(P1), TypeError, "non-empty list"),
    (lambda: average_probabilities([P1, P2[:1]]), ValueError, r"item 1 has \(1, 2\)"),
    (lambda: average_probabilities([P1, np.array([[2.0, -1.0], [0.5, 0.5]])]), ValueError,
     "item 1 is not a probability array"),
    (lambda: average_probabilities([P1, P2], weights=[1.0]), ValueError, "sequence of 2 numbers"),
    (lambda: average_probabilities([P1, P2], weights=[-1.0, 2.0]), ValueError, ">= 0 and not all 0"),
    (lambda: average_probabilities([P1, P2], weights=[0, 0]), ValueError, "not all 0"),
    (lambda: average_probabilities([np.array([[1, 0]])]), TypeError, "float array"),
    (lambda: majority_vote([np.array([0, 3])], 3), ValueError, r"outside \[0, 3\)"),
    (lambda: majority_vote([np.array([0.0, 1.0])], 3), ValueError, "integer labels"),
    (lambda: majority_vote([P1], 3), ValueError, "2 columns, expected num_classes=3"),
    (lambda: majority_vote([np.array([0, 1]), np.array([0])], 2), ValueError, "item 1 has 1"),
    (lambda: majority_vote([np.array([0])], 0), ValueError, "positive int"),
    (lambda: Ensemble([Linear(2, 2), "net"]), TypeError, "item 1 is str"),
    (lambda: Ensemble([Linear(2, 2)], weights=[1, 2]), ValueError, "sequence of 1 numbers"),
    (lambda: Ensemble([Linear(2, 2)], weights=["heavy"]), ValueError, "sequence of 1 numbers"),
])
def test_errors(call, err, match):
    with pytest.raises(err, match=match):
        call()
