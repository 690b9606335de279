"""`with no_input_grad(net): net.backward(dout)`: the input gradient nobody uses (the images') is
skipped, as PyTorch skips it for an input that does not require a gradient; every parameter gradient
stays what backward(dout) writes, and outside the block backward(dout) still returns dx
(cnnlab.module's docstring). A module written without the flag in mind works unchanged."""
import numpy as np
import pytest

import cnnlab.kernels.fast as fast_kernels
from cnnlab import Module, Parameter, Sequential
from cnnlab.gradcheck import numerical_gradient
from cnnlab.hooks import recording
from cnnlab.layers import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from cnnlab.losses import CrossEntropyLoss
from cnnlab.module import no_input_grad


class Scale(Module):
    """y = a * x, a module written here (it knows nothing of needs_input_grad); counts its backward calls."""

    def __init__(self, a=2.0):
        self.weight = Parameter(np.array([a]))
        self.calls = 0

    def forward(self, x):
        self.x = x
        return self.weight.data[0] * x

    def backward(self, dout):
        self.calls += 1
        self.weight.grad[...] = np.sum(dout * self.x)
        return self.weight.data[0] * dout


class Count(Module):
    """The identity without parameters; counts its backward calls."""

    calls = 0

    def forward(self, x):
        return x

    def backward(self, dout):
        self.calls += 1
        return dout


def networks():
    rng = np.random.default_rng(0)
    return {
        "conv": (Conv2d(2, 3, 3, stride=2, padding=1, rng=rng), (4, 2, 7, 6)),
        "linear, leading axes": (Linear(5, 4, rng=rng), (3, 2, 5)),
        "batchnorm (no skip of its own)": (BatchNorm2d(2), (4, 2, 3, 3)),
        "own module": (Scale(), (3, 4)),
        "cnn": (Sequential(Conv2d(1, 4, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Conv2d(4, 6, 3, rng=rng),
                           Tanh(), Flatten(), Linear(6, 3, rng=rng)), (5, 1, 6, 6)),
        "mlp from Flatten": (Sequential(Count(), Flatten(), Linear(12, 6, rng=rng), ReLU(), Linear(6, 2, rng=rng)),
                             (4, 3, 2, 2)),
        "nested": (Sequential(Sequential(Flatten(), Linear(12, 5, rng=rng)), Tanh(), Linear(5, 2, rng=rng)),
                   (4, 3, 2, 2)),
    }


SKIPS = {"conv", "linear, leading axes", "cnn", "mlp from Flatten", "nested"}   # those that can save the work


@pytest.mark.parametrize("name", list(networks()))
def test_skipping_dx_gives_the_same_parameter_gradients(name):
    module, shape = networks()[name]
    module.astype(np.float64)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    g = rng.standard_normal(module(x).shape)
    dx = np.array(module.backward(g), copy=True)
    expected = [p.grad.copy() for p in module.parameters()]
    for p in module.parameters():
        p.grad[...] = np.nan                       # so a gradient the skip forgets to write shows
    module(x)
    with no_input_grad(module):
        result = module.backward(g)
    if name in SKIPS:
        assert result is None
    else:                                          # a module that ignores the flag computes dx as always
        np.testing.assert_array_equal(result, dx)
    for p, e in zip(module.parameters(), expected, strict=True):
        np.testing.assert_array_equal(p.grad, e)
    # the flag lasted the block: backward(dout) returns dx again, every module is back to the default
    module(x)
    np.testing.assert_array_equal(module.backward(g), dx)
    assert all(m.needs_input_grad is True and "needs_input_grad" not in vars(m) for m in module.modules())


def test_the_skip_matches_centered_differences_through_a_loss():
    rng = np.random.default_rng(2)
    net = networks()["cnn"][0].astype(np.float64)
    x, y = rng.standard_normal((5, 1, 6, 6)), rng.integers(0, 3, size=5)
    loss_fn = CrossEntropyLoss()

    def loss():
        return loss_fn.forward(net.forward(x), y)

    loss()
    with no_input_grad(net):
        net.backward(loss_fn.backward())
    analytic = [p.grad.copy() for p in net.parameters()]
    for p, a in zip(net.parameters(), analytic):
        np.testing.assert_allclose(a, numerical_gradient(loss, p.data), rtol=1e-6, atol=1e-9)


def counting(monkeypatch, module, name):
    calls = []
    original = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or original(*a, **k))
    return calls


def test_conv_and_linear_do_no_input_gradient_work_when_skipping(monkeypatch):
    """Conv2d skips its dcols GEMM and col2im; Linear its dx product."""
    col2im_calls = counting(monkeypatch, fast_kernels, "col2im")
    rng = np.random.default_rng(3)
    conv, linear = Conv2d(2, 3, 3, rng=rng), Linear(4, 3, rng=rng)
    for layer, x in ((conv, rng.random((2, 2, 5, 5), dtype=np.float32)), (linear, rng.random((2, 4), dtype=np.float32))):
        out = layer(x)
        with no_input_grad(layer):
            assert layer.backward(np.ones_like(out)) is None
    assert col2im_calls == []
    conv.backward(np.ones_like(conv(rng.random((2, 2, 5, 5), dtype=np.float32))))
    assert col2im_calls == [1]


def test_sequential_skips_the_layers_before_its_first_layer_with_parameters():
    net, _ = networks()["mlp from Flatten"]
    counter = net[0]
    x = np.random.default_rng(4).random((4, 3, 2, 2), dtype=np.float32)
    with no_input_grad(net):
        net.backward(np.ones_like(net(x)))
    assert counter.calls == 0
    assert net.backward(np.ones_like(net(x))).shape == x.shape and counter.calls == 1
    # nothing with parameters: nothing to do
    free = Sequential(Count(), ReLU())
    with no_input_grad(free):
        assert free.backward(np.ones_like(free(x))) is None and free[0].calls == 0


def test_recording_hooks_see_the_gradients_while_the_first_layer_skips(monkeypatch):
    """The hooks (cnnlab.hooks.recording) do not get in the way: the second convolution folds back its dx,
    the first does not, and both receive their upstream gradient."""
    col2im_calls = counting(monkeypatch, fast_kernels, "col2im")
    net, _ = networks()["cnn"]
    x = np.random.default_rng(5).random((5, 1, 6, 6), dtype=np.float32)
    with recording([net[0], net[3]]) as (outputs, grads), no_input_grad(net):
        assert net.backward(np.ones_like(net(x))) is None
    assert set(grads) == {0, 1} and grads[0].shape == outputs[0].shape
    assert col2im_calls == [1]                     # the second convolution's dx only


def test_a_students_module_with_a_plain_backward_trains_inside_sequential():
    """No wrapper around a subclass: Scale (written here, knows nothing of flags or hooks) learns a = 3."""
    from cnnlab.losses import MSELoss
    from cnnlab.optim import Adam

    rng = np.random.default_rng(6)
    net = Sequential(Scale(0.5), Tanh(), Linear(4, 4, rng=rng)).astype(np.float64)
    target = Sequential(Scale(3.0), Tanh(), Linear(4, 4, rng=np.random.default_rng(7))).astype(np.float64)
    net[2].load_state_dict(target[2].state_dict())
    net[2].weight.requires_grad = net[2].bias.requires_grad = False     # only Scale's a has to be found
    opt, loss_fn = Adam(net.parameters(), lr=0.05), MSELoss()
    x = rng.standard_normal((64, 4)) * 0.3
    first = loss_fn(net(x), target(x))
    for _ in range(300):
        loss_fn(net(x), target(x))
        opt.zero_grad()
        with no_input_grad(net):
            net.backward(loss_fn.backward())
        opt.step()
    assert loss_fn(net(x), target(x)) < 1e-4 * first
    assert abs(net[0].weight.data[0] - 3.0) < 0.01
    assert net[0].calls == 300                     # its own backward ran, every step


def test_the_flag_is_restored_after_an_error():
    class Broken(Module):
        def __init__(self):
            self.weight = Parameter(np.ones(1))

        def forward(self, x):
            return x

        def backward(self, dout):
            assert not self.needs_input_grad
            raise FloatingPointError("boom")

    broken = Broken()
    net = Sequential(broken, Scale())
    net(np.ones(3))
    with pytest.raises(FloatingPointError), no_input_grad(broken):
        broken.backward(np.ones(3))
    with pytest.raises(FloatingPointError), no_input_grad(net):
        net.backward(np.ones(3))
    assert all("needs_input_grad" not in vars(m) for m in net.modules())
