"""Module hooks (PyTorch's names and signatures): they see every layer's input, output and gradients,
can replace what they see, come off with their handle, and `recording` built on them cleans up."""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.hooks import RemovableHandle, recording
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh
from cnnlab.module import no_input_grad, run_backward


def cnn():
    rng = np.random.default_rng(0)
    return Sequential(Conv2d(1, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                      Linear(3 * 3 * 3, 4, rng=rng), Tanh()).astype(np.float64)


def test_hooks_see_every_layers_input_output_and_gradients():
    net = cnn()
    seen_forward, seen_backward = [], []
    for layer in net:
        layer.register_forward_hook(lambda m, args, out: seen_forward.append((m, args[0], out)))
        layer.register_full_backward_hook(lambda m, grad_in, grad_out: seen_backward.append((m, grad_in[0], grad_out[0])))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 1, 6, 6))
    out = net(x)
    g = rng.standard_normal(out.shape)
    dx = net.backward(g)
    # forward: in order, each layer's input is the previous layer's output, computed by hand here
    assert [m for m, _, _ in seen_forward] == list(net)
    h = x
    for layer, (_, inp, got) in zip(net, seen_forward):
        np.testing.assert_array_equal(inp, h)
        h = layer.forward(h)
        np.testing.assert_array_equal(got, h)
    # backward: in reverse order, each layer's upstream gradient is the next layer's input gradient
    assert [m for m, _, _ in seen_backward] == list(net)[::-1]
    np.testing.assert_array_equal(seen_backward[0][2], g)
    for (_, grad_in, _), (_, _, grad_out_before) in zip(seen_backward, seen_backward[1:]):
        np.testing.assert_array_equal(grad_in, grad_out_before)
    np.testing.assert_array_equal(seen_backward[-1][1], dx)


def test_the_skipped_input_gradient_reaches_the_hook_as_none():
    net = cnn()
    grads = {}
    net[0].register_full_backward_hook(lambda m, grad_in, grad_out: grads.update(dx=grad_in[0], dout=grad_out[0]))
    out = net(np.ones((2, 1, 6, 6)))
    with no_input_grad(net):
        net.backward(np.ones_like(out))
    assert grads["dx"] is None and grads["dout"].shape == (2, 3, 6, 6)


def test_a_hook_that_returns_a_value_replaces_the_output_or_the_input_gradient():
    layer = Linear(3, 2, rng=0).astype(np.float64)
    layer.register_forward_hook(lambda m, args, out: 2 * out)
    layer.register_full_backward_hook(lambda m, grad_in, grad_out: (np.zeros_like(grad_in[0]),))
    x = np.ones((4, 3))
    np.testing.assert_allclose(layer(x), 2 * layer.forward(x))
    assert not run_backward(layer, np.ones((4, 2))).any()


def test_a_removed_hook_is_not_called_again():
    layer, calls = ReLU(), []
    handle = layer.register_forward_hook(lambda *a: calls.append(1))
    assert isinstance(handle, RemovableHandle)
    layer(np.ones(3))
    handle.remove()
    handle.remove()                         # harmless twice
    layer(np.ones(3))
    with layer.register_forward_hook(lambda *a: calls.append(2)):
        layer(np.ones(3))
    layer(np.ones(3))
    assert calls == [1, 2]
    with pytest.raises(TypeError, match="a hook must be callable"):
        layer.register_full_backward_hook("not a function")


def test_recording_removes_its_hooks_even_after_an_error():
    net = cnn()
    with pytest.raises(ZeroDivisionError):
        with recording([net[0], net[4]]) as (outputs, grads):
            net(np.ones((1, 1, 6, 6)))
            assert set(outputs) == {0, 1}
            1 / 0
    assert all(not vars(m).get("_forward_hooks") and not vars(m).get("_backward_hooks") for m in net)


def test_summary_leaves_no_hook_behind():
    net = cnn()
    text = str(net.summary((1, 6, 6)))
    assert "(-1, 3, 6, 6)" in text and "(-1, 4)" in text
    assert all(not vars(m).get("_forward_hooks") for m in net.modules())
