"""Tomasi's Algorithm 1 (per sample, running average) agrees with batched back-propagation."""
import numpy as np

from cnnlab import Sequential
from cnnlab.backprop import backprop_batched, backprop_per_sample
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sigmoid
from cnnlab.losses import CrossEntropyLoss, MSELoss


def test_algorithm_1_equals_batched_backprop_for_a_small_cnn():
    net = Sequential([Conv2d(1, 3, 3, padding=1, rng=0), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(3 * 3 * 3, 4, rng=1)]).astype(np.float64)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((7, 1, 6, 6)), rng.integers(0, 4, 7)
    per_sample = backprop_per_sample(net, CrossEntropyLoss(), X, y)
    batched = backprop_batched(net, CrossEntropyLoss(), X, y)
    for a, b in zip(per_sample, batched):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_algorithm_1_is_the_average_of_per_sample_gradients():
    net = Sequential([Linear(3, 2, rng=2), Sigmoid()]).astype(np.float64)
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    total = [np.zeros_like(p.data) for p in net.parameters()]
    for n in range(5):  # an independent computation: sum the per-sample gradients, then divide
        grads = backprop_batched(net, MSELoss(), X[n:n + 1], Y[n:n + 1])
        total = [t + g for t, g in zip(total, grads)]
    for a, t in zip(backprop_per_sample(net, MSELoss(), X, Y), total):
        np.testing.assert_allclose(a, t / 5, rtol=1e-12)
