"""Per-layer Jacobians: rows from backward of unit vectors, checked three ways: against finite differences,
against closed forms (point activations, ReLU with max pooling), and as factors of the network's Jacobian."""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.jacobian import (jacobian_input, jacobian_params, jacobians, layer_jacobians, numerical_jacobian,
                             point_activation_jacobians, relu_maxpool_jacobians)
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sigmoid, Tanh


def rng():
    return np.random.default_rng(42)


@pytest.mark.parametrize("make, shape", [
    (lambda: Linear(5, 3, rng=1), (1, 5)),
    (lambda: Sigmoid(), (1, 7)),
    (lambda: Conv2d(2, 3, (2, 3), stride=2, padding=1, rng=2), (1, 2, 5, 6)),
    (lambda: MaxPool2d(3, stride=2), (1, 2, 5, 5)),
])
def test_jacobians_from_backward_match_centered_differences(make, shape):
    layer = make().astype(np.float64)
    x = rng().permutation(np.prod(shape)).reshape(shape).astype(np.float64) / 10  # distinct: no pool ties
    J_x = jacobian_input(layer, x)
    np.testing.assert_allclose(J_x, numerical_jacobian(lambda: layer.forward(x), x), atol=1e-8)
    assert J_x.shape == (layer.forward(x).size, x.size)
    params = layer.parameters()
    if params:
        J_w = jacobian_params(layer, x)
        numeric = np.concatenate(
            [numerical_jacobian(lambda: layer.forward(x), p.data) for p in params], axis=1)
        np.testing.assert_allclose(J_w, numeric, atol=1e-8)


@pytest.mark.parametrize("make, shape", [
    (lambda: Conv2d(2, 3, (2, 3), stride=2, padding=1, rng=2), (1, 2, 5, 6)),
    (lambda: Tanh(), (1, 4)),
])
def test_one_sweep_gives_both_jacobians_exactly_as_the_two_functions(make, shape):
    layer = make().astype(np.float64)
    x = rng().standard_normal(shape)
    J_x, J_w = jacobians(layer, x)  # the same backward passes: the same numbers, bit for bit
    np.testing.assert_array_equal(J_x, jacobian_input(layer, x))
    np.testing.assert_array_equal(J_w, jacobian_params(layer, x))
    assert J_w.shape == (J_x.shape[0], sum(p.size for p in layer.parameters()))


def test_computing_a_jacobian_leaves_parameter_gradients_untouched():
    layer = Linear(3, 2, rng=0).astype(np.float64)
    layer.weight.grad[...] = 7.0
    held = layer.weight.grad
    jacobian_params(layer, np.ones((1, 3)))
    assert layer.weight.grad is held and (held == 7.0).all()


def test_backward_is_the_jacobian_transpose_times_a_vector():
    layer = Conv2d(1, 2, 3, padding=1, rng=3).astype(np.float64)
    x = rng().standard_normal((1, 1, 4, 5))
    g = rng().standard_normal(layer.forward(x).shape)
    dx = layer.backward(g)
    np.testing.assert_allclose(dx.ravel(), jacobian_input(layer, x).T @ g.ravel(), atol=1e-12)


def test_convolution_jacobian_is_banded_and_shares_weights():
    layer = Conv2d(1, 1, 3, rng=4).astype(np.float64)
    J = jacobian_input(layer, rng().standard_normal((1, 1, 5, 5)))
    # every output depends on exactly 3 x 3 inputs, always through the same nine weights
    assert ((J != 0).sum(axis=1) == 9).all()
    nonzero = np.sort(J[J != 0].reshape(9, 9), axis=1)
    np.testing.assert_allclose(nonzero, np.tile(np.sort(layer.weight.data.ravel()), (9, 1)))


def test_max_pool_jacobian_selects_one_input_per_output():
    x = rng().permutation(16).reshape(1, 1, 4, 4).astype(np.float64)
    J = jacobian_input(MaxPool2d(2), x)
    assert set(np.unique(J)) == {0.0, 1.0} and (J.sum(axis=1) == 1).all()
    assert x.ravel()[J.argmax(axis=1)].tolist() == [
        x[0, 0, :2, :2].max(), x[0, 0, :2, 2:].max(), x[0, 0, 2:, :2].max(), x[0, 0, 2:, 2:].max()]


def test_point_activation_closed_form_matches_linear_then_tanh():
    net = Sequential([Linear(4, 3, rng=5), Tanh()]).astype(np.float64)
    x = rng().standard_normal((1, 4))
    W, b = net[0].weight.data, net[0].bias.data
    J_w, J_x = point_activation_jacobians(W, b, x[0], lambda a: 1 - np.tanh(a) ** 2)
    np.testing.assert_allclose(J_x, jacobian_input(net, x), atol=1e-12)
    # our parameter order is [W row-major, b]; the closed form stacks [W | b] row by row
    ours = jacobian_params(net, x)
    order = np.concatenate([np.arange(12).reshape(3, 4), 12 + np.arange(3)[:, None]], axis=1).ravel()
    np.testing.assert_allclose(J_w, ours[:, order], atol=1e-12)


def test_relu_maxpool_closed_form_matches_finite_differences():
    r = rng()
    W, b, x = r.standard_normal((6, 4)), r.standard_normal(6), r.standard_normal(4)
    windows = [np.array([0, 1, 2]), np.array([2, 3, 4]), np.array([4, 5])]  # overlapping

    def f():
        a = np.maximum(W @ x + b, 0)
        return np.array([a[w].max() for w in windows])

    J_w, J_x = relu_maxpool_jacobians(W, b, x, windows)
    np.testing.assert_allclose(J_x, numerical_jacobian(f, x), atol=1e-8)
    Wb = np.concatenate([W, b[:, None]], axis=1)

    def g():
        a = np.maximum(Wb[:, :4] @ x + Wb[:, 4], 0)
        return np.array([a[w].max() for w in windows])

    np.testing.assert_allclose(J_w, numerical_jacobian(g, Wb), atol=1e-8)


def test_product_of_layer_jacobians_is_the_network_jacobian():
    net = Sequential([Conv2d(1, 2, 3, padding=1, rng=6), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(8, 3, rng=7)]).astype(np.float64)
    x = rng().standard_normal((1, 1, 4, 4))
    layers = layer_jacobians(net, x)
    assert [lj.J_x.shape for lj in layers] == [(32, 16), (32, 32), (8, 32), (8, 8), (3, 8)]
    product = np.eye(x.size)
    for lj in layers:
        product = lj.J_x @ product
    np.testing.assert_allclose(product, numerical_jacobian(lambda: net.forward(x), x), atol=1e-7)
    # and the gradient of a loss through the net is g times that product (Tomasi eq. 3)
    g = rng().standard_normal((1, 3))
    net.forward(x)
    np.testing.assert_allclose(net.backward(g).ravel(), g.ravel() @ product, atol=1e-12)


def test_numerical_jacobian_perturbs_a_non_contiguous_x_in_place():
    base = np.array([[1.0, 9.0, 2.0], [3.0, 9.0, -1.0]])
    x = base[:, ::2]                                          # a view with strides, not contiguous
    J = numerical_jacobian(lambda: x ** 2, x, 1e-6)
    np.testing.assert_allclose(J, np.diag(2 * np.array([1.0, 2.0, 3.0, -1.0])), atol=1e-7)
    np.testing.assert_array_equal(base[:, 1], [9.0, 9.0])     # the entries between were not touched
