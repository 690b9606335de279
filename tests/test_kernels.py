"""The kernel pairs (`cnnlab.kernels`): im2col against an independent formula, every fast kernel
against its naive twin on random awkward geometries, layers built on either set training to the same
weights, a student's own pair plugged in, memory layouts that spare copies, and the skipped input
gradient. (Each layer's backward is also checked against finite differences in its own test file.)"""
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import cnnlab.kernels.fast as fast_module
from cnnlab import Sequential
from cnnlab.kernels import KernelPair, fast, kernel_pair, naive
from cnnlab.kernels.im2col import col2im, im2col
from cnnlab.layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.module import no_input_grad
from cnnlab.optim import SGD


def random_conv_config(rng):
    """A random convolution geometry whose padded input holds at least one window."""
    while True:
        n, c, f = (int(v) for v in rng.integers(1, 4, size=3))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        h, w = (int(v) for v in rng.integers(1, 11, size=2))
        if h + 2 * ph >= kh and w + 2 * pw >= kw:
            return (n, c, h, w), (f, c, kh, kw), (sh, sw), (ph, pw)


def pool_config(rng):
    while True:
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        h, w = (int(v) for v in rng.integers(1, 11, size=2))
        if 2 * ph <= kh and 2 * pw <= kw and h + 2 * ph >= kh and w + 2 * pw >= kw:
            shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), h, w)
            return shape, (kh, kw), (sh, sw), (ph, pw)


def cnhw(a):
    """The same values as a, laid out in memory as (C, N, H, W)."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def chwn(a):
    """The same values as a, laid out in memory as (C, H, W, N), as the fast convolution leaves its output."""
    return np.ascontiguousarray(a.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)


LAYOUTS = (lambda a: a, cnhw, chwn)


def axis_order(a):
    return tuple(sorted(range(a.ndim), key=lambda axis: -a.strides[axis]))


# --- im2col / col2im against an independent formula --------------------------------------------------------
def test_im2col_matches_np_pad_and_sliding_window_view_on_random_configurations():
    rng = np.random.default_rng(11)
    for _ in range(25):
        x_shape, w_shape, stride, padding = random_conv_config(rng)
        x = rng.standard_normal(x_shape)
        (ph, pw), (kh, kw) = padding, w_shape[2:]
        win = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))), (kh, kw),
                                  axis=(2, 3))[:, :, ::stride[0], ::stride[1]]   # (N, C, OH, OW, KH, KW)
        expected = win.transpose(1, 4, 5, 2, 3, 0).reshape(x_shape[1] * kh * kw, -1)   # rows (c,i,j), cols (oh,ow,n)
        cols, (oh, ow) = im2col(x, (kh, kw), stride, padding)
        assert (oh, ow) == win.shape[2:4]
        np.testing.assert_array_equal(cols, expected)
        # col2im is its adjoint: <im2col(x), C> = <x, col2im(C)>
        c = rng.standard_normal(cols.shape)
        np.testing.assert_allclose(np.sum(cols * c), np.sum(x * col2im(c, x_shape, (kh, kw), stride, padding)),
                                   rtol=1e-12, atol=1e-12)


# --- every fast kernel against its naive twin (float64, 1e-10) ------------------------------------------------
def test_conv_fast_kernels_match_naive_on_random_configurations():
    rng = np.random.default_rng(12)
    for trial in range(30):
        x_shape, w_shape, stride, padding = random_conv_config(rng)
        x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        bias = rng.standard_normal(w_shape[0]) if trial % 4 else None
        out, cache = fast.conv2d_forward(x, weight, bias, stride, padding)
        expected, naive_cache = naive.conv2d_forward(x, weight, bias, stride, padding)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
        dout = rng.standard_normal(expected.shape)
        dout = LAYOUTS[trial % 3](dout)                 # any memory layout may reach the backward
        for fast_grad, naive_grad in zip(fast.conv2d_backward(dout, cache), naive.conv2d_backward(dout, naive_cache)):
            assert fast_grad.shape == naive_grad.shape
            np.testing.assert_allclose(fast_grad, naive_grad, rtol=0, atol=1e-10)
        # the parameter gradients alone are the same
        for kernels, saved in ((fast, cache), (naive, naive_cache)):
            for alone, full in zip(kernels.conv2d_backward_weight(dout, saved),
                                   naive.conv2d_backward(dout, naive_cache)[1:]):
                np.testing.assert_allclose(alone, full, rtol=0, atol=1e-10)


def test_maxpool_fast_kernels_match_naive_in_both_layouts():
    """Random geometries (overlapping windows included), inputs with many ties, input and dout in
    (N, C, H, W), (C, N, H, W) or (C, H, W, N) memory order."""
    rng = np.random.default_rng(14)
    for trial in range(30):
        shape, k, s, p = pool_config(rng)
        x = rng.integers(0, 4, size=shape).astype(np.float64)
        out, cache = fast.maxpool2d_forward(LAYOUTS[trial % 3](x), k, s, p)
        expected, naive_cache = naive.maxpool2d_forward(x, k, s, p)
        np.testing.assert_array_equal(out, expected)
        dout = rng.standard_normal(out.shape)
        dx = fast.maxpool2d_backward(LAYOUTS[trial % 2](dout), cache)
        np.testing.assert_allclose(dx, naive.maxpool2d_backward(dout, naive_cache), rtol=0, atol=1e-10)
        assert axis_order(dx) == axis_order(out)        # the backward keeps the forward's layout


def test_avgpool_fast_kernels_match_naive():
    rng = np.random.default_rng(15)
    for trial in range(30):
        shape, k, s, p = pool_config(rng)
        x = rng.standard_normal(shape)
        out, cache = fast.avgpool2d_forward(LAYOUTS[trial % 3](x), k, s, p)
        expected, naive_cache = naive.avgpool2d_forward(x, k, s, p)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12)
        dout = rng.standard_normal(out.shape)
        np.testing.assert_allclose(fast.avgpool2d_backward(dout, cache), naive.avgpool2d_backward(dout, naive_cache),
                                   rtol=0, atol=1e-12)


def test_pool_kernels_take_stride_default_and_ints():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    for kernels in (fast, naive):
        out, _ = kernels.maxpool2d_forward(x, 2)                      # stride defaults to the kernel size
        np.testing.assert_array_equal(out[0, 0], [[5, 7], [13, 15]])  # the bottom-right entry of each 2x2 block
        out, _ = kernels.avgpool2d_forward(x, 2)
        np.testing.assert_array_equal(out[0, 0], [[2.5, 4.5], [10.5, 12.5]])
        with pytest.raises(ValueError, match="stride must be >= 1"):
            kernels.conv2d_forward(x, np.ones((1, 1, 2, 2)), None, 0, 0)


# --- layers on either kernel set ---------------------------------------------------------------------------
def cnn(kernels, rng):
    return Sequential(Conv2d(1, 3, (3, 2), stride=(2, 1), padding=1, rng=rng, kernels=kernels), ReLU(),
                      MaxPool2d(3, 2, padding=1, kernels=kernels), Conv2d(3, 4, 3, padding=1, rng=rng, kernels=kernels),
                      ReLU(), AvgPool2d(2, kernels=kernels), Flatten(), Linear(4 * 1 * 2, 5, rng=rng)).astype(np.float64)


def test_a_cnn_on_the_naive_kernels_trains_to_the_same_weights_as_on_the_fast_ones():
    rng = np.random.default_rng(30)
    x, y = rng.standard_normal((6, 1, 9, 8)), rng.integers(0, 5, 6)
    nets = [cnn(kernels, np.random.default_rng(31)) for kernels in (naive, fast)]
    for net in nets:
        loss_fn, opt = CrossEntropyLoss(), SGD(net.parameters(), lr=0.1, momentum=0.9)
        for _ in range(5):
            loss_fn(net(x), y)
            opt.zero_grad()
            with no_input_grad(net):
                assert net.backward(loss_fn.backward()) is None
            opt.step()
    first = nets[0].parameters()
    assert not np.allclose(first[0].data, cnn(naive, np.random.default_rng(31)).parameters()[0].data)  # it trained
    for p, q in zip(first, nets[1].parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=0, atol=1e-10)


def test_a_students_kernel_pair_plugs_into_conv2d():
    """Two plain functions with the kernel signature, here the naive kernels wrapped to count calls."""
    calls = []

    def my_forward(x, weight, bias, stride, padding):
        calls.append("forward")
        return naive.conv2d_forward(x, weight, bias, stride, padding)

    def my_backward(dout, cache):
        calls.append("backward")
        return naive.conv2d_backward(dout, cache)

    rng = np.random.default_rng(32)
    mine = Conv2d(2, 3, 3, stride=2, padding=1, rng=np.random.default_rng(0), kernels=(my_forward, my_backward))
    ref = Conv2d(2, 3, 3, stride=2, padding=1, rng=np.random.default_rng(0))
    x = rng.standard_normal((2, 2, 7, 6)).astype(np.float32)
    np.testing.assert_allclose(mine(x), ref(x), rtol=1e-5, atol=1e-6)
    dout = rng.standard_normal(ref(x).shape).astype(np.float32)
    np.testing.assert_allclose(mine.backward(dout), ref.backward(dout), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mine.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    assert calls == ["forward", "backward"]
    with no_input_grad(mine):                     # without a backward_weight kernel: dx computed, then dropped
        mine.backward(dout)
    np.testing.assert_allclose(mine.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)
    assert calls[-1] == "backward"
    assert "kernels=(my_forward, my_backward)" in repr(mine) and "kernels" not in repr(ref)
    assert repr(Conv2d(1, 1, 1, kernels=naive)).endswith("kernels=naive)")


def test_kernel_pairs_refuse_what_is_not_one():
    assert kernel_pair(naive, "maxpool2d", "MaxPool2d") == KernelPair(naive.maxpool2d_forward, naive.maxpool2d_backward)
    assert kernel_pair(fast, "conv2d", "Conv2d").backward_weight is fast.conv2d_backward_weight
    with pytest.raises(TypeError, match="conv2d_forward and conv2d_backward.*has no conv2d_backward"):
        Conv2d(1, 1, 1, kernels=type("Half", (), {"conv2d_forward": staticmethod(lambda *a: None)})())
    with pytest.raises(TypeError, match="maxpool2d_forward"):
        MaxPool2d(2, kernels="fast")
    with pytest.raises(TypeError, match="the backward kernel must be a function"):
        Conv2d(1, 1, 1, kernels=(naive.conv2d_forward, 3))


# --- speed that lives in the fast kernels -------------------------------------------------------------------
def reference_cnn(rng):
    return Sequential(Conv2d(1, 16, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Conv2d(16, 32, 3, padding=1, rng=rng),
                      ReLU(), MaxPool2d(2), Flatten(), Linear(1568, 128, rng=rng), ReLU(), Linear(128, 10, rng=rng))


def test_layouts_flow_without_copies():
    """The fast convolution leaves (C, H, W, N) memory order, ReLU and MaxPool2d keep it, and the
    gradient that reaches the second convolution flattens to (F, OH*OW*N) as a view."""
    rng = np.random.default_rng(20)
    net = reference_cnn(rng)
    h = rng.random((4, 1, 28, 28), dtype=np.float32)
    for layer in net[:5]:
        h = layer(h)
        assert axis_order(h) == (1, 2, 3, 0) and h.dtype == np.float32
    d = net[4].backward(chwn(rng.standard_normal(h.shape).astype(np.float32)))
    assert np.shares_memory(d.transpose(1, 2, 3, 0).reshape(32, -1), d)


def test_a_training_step_folds_back_only_the_second_convolutions_input_gradient(monkeypatch):
    """As PyTorch (images that do not require a gradient): one col2im per step, the second convolution's."""
    calls = []
    original = fast_module.col2im
    monkeypatch.setattr(fast_module, "col2im", lambda cols, shape, *a: calls.append(shape) or original(cols, shape, *a))
    rng = np.random.default_rng(22)
    net = reference_cnn(rng)
    out = net(rng.random((3, 1, 28, 28), dtype=np.float32))
    with no_input_grad(net):
        assert net.backward(np.ones_like(out)) is None
    assert calls == [(3, 16, 14, 14)]
    net.backward(np.ones_like(out))                      # outside the block: every input gradient
    assert calls[1:] == [(3, 16, 14, 14), (3, 1, 28, 28)]


def test_float32_stays_float32_and_float64_after_astype():
    rng = np.random.default_rng(19)
    net = reference_cnn(rng)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    out = net(x)
    assert out.dtype == np.float32 and net.backward(np.ones_like(out)).dtype == np.float32
    net.astype(np.float64)
    out64 = net(x.astype(np.float64))
    assert out64.dtype == np.float64 and net.backward(np.ones_like(out64)).dtype == np.float64
    assert all(p.grad.dtype == np.float64 for p in net.parameters())
    np.testing.assert_allclose(out64, out, rtol=1e-4, atol=1e-5)
