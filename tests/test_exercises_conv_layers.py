"""Self-checks of lesson 04: right answers pass, each typical mistake is named."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.conv_layers import check_conv_dweight, check_corr2d_valid, check_subsample_delta


def corr_right(x, k):
    (h, w), (kh, kw) = x.shape, k.shape
    out = np.zeros((h - kh + 1, w - kw + 1))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)
    return out


def test_corr2d_valid_right_answer_passes(capsys):
    check_corr2d_valid(corr_right)
    assert "\u2713" in capsys.readouterr().out


def test_corr2d_valid_hand_example():
    x = np.arange(1.0, 10.0).reshape(3, 3)
    np.testing.assert_array_equal(corr_right(x, np.array([[0.0, 1.0], [2.0, 0.0]])), [[10, 13], [19, 22]])


@pytest.mark.parametrize("answer, message", [
    (..., r"still Ellipsis"),
    (42, r"should be a function of \(x, k\), got int"),
    (lambda x, k: ..., r"still returns `...`"),
    (lambda x, k: None, r"did you forget `return out`"),
    (lambda x, k: x[k], r"raised IndexError"),
    (lambda x, k: np.zeros_like(x), r"shape \(4, 5\) = \(H - KH \+ 1, W - KW \+ 1\), got \(5, 7\): that is the input's size"),
    (lambda x, k: corr_right(x, k)[:-1, :-1], r"got \(3, 4\): one row and one column short"),
    (lambda x, k: corr_right(np.pad(x, ((k.shape[0] - 1,) * 2, (k.shape[1] - 1,) * 2)), k), r"'full' size"),
    (lambda x, k: corr_right(x, k[::-1, ::-1]), r"you flipped the kernel"),
    (lambda x, k: 2 * corr_right(x, k), r"`corr2d_valid\(x, k\)`\[0, 0\] is .* but should be"),
])
def test_corr2d_valid_mistakes_are_named(answer, message):
    with pytest.raises(CheckFailed, match=message):
        check_corr2d_valid(answer)


def dweight_setup():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((7, 6))
    delta = rng.standard_normal((5, 5))  # kernel (3, 2)
    right = np.array([[np.sum(delta * x[a:a + 5, b:b + 5]) for b in range(2)] for a in range(3)])
    return x, delta, right


def test_conv_dweight_right_answer_passes(capsys):
    x, delta, right = dweight_setup()
    check_conv_dweight(right, x, delta)
    check_conv_dweight(right.astype(np.float32), x, delta)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", [
    (lambda x, d, r: ..., r"still Ellipsis"),
    (lambda x, d, r: np.zeros_like(x), r"kernel's shape \(3, 2\), got \(7, 6\): that is the shape of the input"),
    (lambda x, d, r: d, r"got \(5, 5\): that is the shape of δ"),
    (lambda x, d, r: np.zeros((2, 3)), r"got \(2, 3\): one entry per kernel entry"),
    (lambda x, d, r: r[::-1, ::-1], r"rotated by 180°"),
    (lambda x, d, r: -r, r"wrong sign"),
    (lambda x, d, r: r / d.size, r"divided by the 25 output positions"),
    (lambda x, d, r: r + 0.1, r"`dW`\[0, 0\] is .* but should be"),
])
def test_conv_dweight_mistakes_are_named(mistake, message):
    x, delta, right = dweight_setup()
    with pytest.raises(CheckFailed, match=message):
        check_conv_dweight(mistake(x, delta, right), x, delta)


def subsample_setup():
    rng = np.random.default_rng(8)
    delta = rng.standard_normal((2, 3, 2, 3))
    beta = np.array([0.5, -2.0, 3.0])
    right = np.zeros((2, 3, 4, 6))
    for u in range(2):           # tile by hand: every pixel of block (u, v) gets beta * delta[u, v]
        for v in range(3):
            right[:, :, 2 * u:2 * u + 2, 2 * v:2 * v + 2] = (beta[None, :] * delta[:, :, u, v])[:, :, None, None]
    return delta, beta, right


def test_subsample_delta_right_answer_passes(capsys):
    delta, beta, right = subsample_setup()
    check_subsample_delta(right, delta, beta, 2)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", [
    (lambda d, b, r: ..., r"`dx_sub` is still Ellipsis"),
    (lambda d, b, r: d * b[:, None, None], r"has δ's shape \(2, 3, 2, 3\): it is not up-sampled yet"),
    (lambda d, b, r: r[:, :, :, :4], r"should have the input's shape \(2, 3, 4, 6\).*got \(2, 3, 4, 4\)"),
    (lambda d, b, r: np.kron(d, np.ones((2, 2))), r"without β"),
    (lambda d, b, r: r / 4, r"divided by k² = 4: that is average pooling"),
    (lambda d, b, r: r.transpose(0, 1, 3, 2).reshape(r.shape), r"`dx_sub`\[.*\] is .* but should be"),
])
def test_subsample_delta_mistakes_are_named(mistake, message):
    delta, beta, right = subsample_setup()
    with pytest.raises(CheckFailed, match=message):
        check_subsample_delta(mistake(delta, beta, right), delta, beta, 2)


# --- exercise 3: the conv2d kernel pair and max pooling's backward kernel ---------------------------------
from cnnlab.kernels import naive  # noqa: E402  (the lesson's given max-pool forward wraps it the same way)
from checks.conv_layers import check_conv2d_kernels, check_maxpool2d_backward  # noqa: E402


def conv_pair(flip=False, flip_dx=False, bias=True, padding=True, pad_twice=False, stride=True, crop=True,
              backward_stride=True, dx_stride=True, images=slice(None), dw_scale=1.0,
              dbias=lambda d: d.sum(axis=(0, 2, 3))):
    """A conv2d kernel pair written one output position at a time over the whole batch; each keyword
    turns one mistake on (by default it is right)."""
    def forward(x, weight, b, strides, pads):
        (sh, sw) = strides if stride else (1, 1)
        (ph, pw) = pads if padding else (0, 0)
        kernel = weight[:, :, ::-1, ::-1] if flip else weight
        kh, kw = weight.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        out = np.empty((x.shape[0], weight.shape[0], (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1))
        for u in range(out.shape[2]):
            for v in range(out.shape[3]):
                out[:, :, u, v] = np.einsum("nchw,fchw->nf", xp[:, :, u * sh:u * sh + kh, v * sw:v * sw + kw], kernel)
        if bias and b is not None:
            out += b[None, :, None, None]
        return out, (xp if pad_twice else x, kernel if flip else weight, strides, pads)

    def backward(dout, cache):
        x, weight, strides, (ph, pw) = cache
        sh, sw = strides if backward_stride else (1, 1)
        kh, kw = weight.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        kernel = weight[:, :, ::-1, ::-1] if flip_dx else weight
        dxp, dw = np.zeros_like(xp), np.zeros_like(weight)
        for u in range(dout.shape[2]):
            for v in range(dout.shape[3]):
                rows, cols = slice(u * sh, u * sh + kh), slice(v * sw, v * sw + kw)
                at = (rows, cols) if dx_stride else (slice(u, u + kh), slice(v, v + kw))
                dxp[:, :, at[0], at[1]] += np.einsum("nf,fchw->nchw", dout[:, :, u, v], kernel)
                dw += np.einsum("nf,nchw->fchw", dout[images, :, u, v], xp[images, :, rows, cols])
        dx = dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] if crop else dxp
        return dx, dw * dw_scale, dbias(dout)

    return forward, backward


def test_conv2d_kernels_right_answer_passes(capsys):
    check_conv2d_kernels(*conv_pair())
    assert "\u2713" in capsys.readouterr().out


def test_conv_pair_of_the_test_is_cnnlabs_convolution():
    """The right answer above is checked here by hand on a case small enough to work out: a 1x1x3x3 input,
    one 2x2 kernel of ones, stride 1: every output is the sum of a 2x2 block."""
    forward, backward = conv_pair()
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    out, cache = forward(x, np.ones((1, 1, 2, 2)), np.array([10.0]), (1, 1), (0, 0))
    np.testing.assert_array_equal(out[0, 0], [[0 + 1 + 3 + 4 + 10, 1 + 2 + 4 + 5 + 10], [3 + 4 + 6 + 7 + 10,
                                                                                          4 + 5 + 7 + 8 + 10]])
    dx, dw, db = backward(np.ones((1, 1, 2, 2)), cache)
    np.testing.assert_array_equal(dx[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])  # windows covering each pixel
    np.testing.assert_array_equal(dw[0, 0], [[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]])
    np.testing.assert_array_equal(db, [4.0])


def raises_on_tuple_stride(x, weight, bias, stride, padding):
    return x[:, :, ::stride], None


def ignores_a_missing_bias(x, weight, bias, stride, padding):
    out, cache = conv_pair()[0](x, weight, np.zeros(weight.shape[0]), stride, padding)
    return out + bias[None, :, None, None], cache


@pytest.mark.parametrize("pair, message", [
    ((..., conv_pair()[1]), r"`conv2d_forward` should be a function, got ellipsis"),
    ((naive.conv2d_forward, naive.conv2d_backward), r"cnnlab's own kernel"),
    ((lambda x, w, b, s, p: (..., ...), conv_pair()[1]), r"`out` of conv2d_forward.* is still Ellipsis"),
    ((lambda x, w, b, s, p: ..., conv_pair()[1]), r"conv2d_forward.* is still Ellipsis"),
    ((lambda x, w, b, s, p: conv_pair()[0](x, w, b, s, p)[0], conv_pair()[1]),
     r"should return the tuple \(out, cache\), got ndarray of shape"),
    ((raises_on_tuple_stride, conv_pair()[1]), r"raised TypeError"),
    ((ignores_a_missing_bias, conv_pair()[1]), r"bias None raised TypeError.*bias may be None"),
    ((conv_pair()[0], lambda d, c: (..., ..., ...)), r"`dx` of conv2d_backward.* is still Ellipsis"),
    ((conv_pair()[0], lambda d, c: conv_pair()[1](d, c)[:2]), r"should return the tuple \(dx, dweight, dbias\), "
                                                              r"got a tuple of 2"),
    (conv_pair(flip=True), r"the kernel is flipped: that is a true convolution"),
    (conv_pair(bias=False), r"the bias is missing"),
    (conv_pair(padding=False), r"padding=\(1, 1\).*the padding is missing"),
    ((lambda x, w, b, s, p: conv_pair()[0](x, w, b, s, (2 * p[0], 2 * p[1])), conv_pair()[1]),
     r"padding=\(1, 1\).*got \(3, 3, 6, 5\): the padding is applied twice"),
    ((lambda x, w, b, s, p: (np.zeros((2, 3, 5, 5)), None), conv_pair()[1]),
     r"got \(2, 3, 5, 5\): one output map per input channel"),
    (conv_pair(stride=False), r"stride=\(2, 2\).*the stride is ignored: output \(oh, ow\) reads the window"),
    (conv_pair(pad_twice=True), r"`dweight`: the padding is applied twice"),
    (conv_pair(flip_dx=True), r"`dx` uses the flipped kernel"),
    (conv_pair(crop=False), r"`dx` is not cropped"),
    (conv_pair(backward_stride=False), r"`dweight`: the stride is ignored in the backward pass"),
    (conv_pair(dx_stride=False), r"stride=\(2, 2\).*: `dx`: the stride is ignored in the backward pass"),
    (conv_pair(images=slice(0, 1)), r"`dweight` is not summed over the batch: only image 0"),
    (conv_pair(images=slice(-1, None)), r"`dweight` is not summed over the batch: only the last image"),
    (conv_pair(dw_scale=0.5), r"`dweight` is divided by the batch size 2"),
    (conv_pair(dw_scale=0.9), r"conv2d_backward.*: `dweight`\[0, 0, 0, 0\] is .* but should be"),
    (conv_pair(dbias=lambda d: d.sum(axis=(2, 3))), r"`dbias` should have the bias's shape \(4,\), got \(2, 4\): "
                                                    r"not summed over the batch"),
    (conv_pair(dbias=lambda d: d.sum(axis=0)), r"got \(4, 5, 5\): not summed over the positions"),
    (conv_pair(dbias=lambda d: d[0].sum(axis=(1, 2))), r"`dbias` is not summed over the batch: only image 0"),
    (conv_pair(dbias=lambda d: d.mean(axis=(0, 2, 3))), r"`dbias` is the mean of dout"),
])
def test_conv2d_kernel_mistakes_are_named(pair, message):
    with pytest.raises(CheckFailed, match=message):
        check_conv2d_kernels(*pair)


def given_maxpool_forward(x, kernel_size, stride, padding):
    """The lesson's given forward: cnnlab's output, the cache (x, kernel_size, stride, padding)."""
    return naive.maxpool2d_forward(x, kernel_size, stride, padding)[0], (x, kernel_size, stride, padding)


def pool_backward(route="first", pad_value=-np.inf, crop=True, stride=True, add=True):
    """A max-pool backward kernel, one window at a time; each keyword turns one mistake on."""
    def backward(dout, cache):
        x, (kh, kw), strides, (ph, pw) = cache
        sh, sw = strides if stride else (1, 1)
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
        dxp = np.zeros_like(xp)
        for n, c, u, v in np.ndindex(*dout.shape):
            flat = xp[n, c, u * sh:u * sh + kh, v * sw:v * sw + kw].ravel()
            g = dout[n, c, u, v]
            if route in ("every", "mean"):
                dxp[n, c, u * sh:u * sh + kh, v * sw:v * sw + kw] += g / (kh * kw if route == "mean" else 1)
                continue
            winners = {"first": [int(np.argmax(flat))], "all": np.flatnonzero(flat == flat.max()),
                       "last": [len(flat) - 1 - int(np.argmax(flat[::-1]))]}[route]
            for k in winners:
                row, col = u * sh + k // kw, v * sw + k % kw
                dxp[n, c, row, col] = dxp[n, c, row, col] + g if add else g
        return dxp[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]] if crop else dxp

    return backward


def test_maxpool2d_backward_right_answer_passes(capsys):
    check_maxpool2d_backward(pool_backward())
    assert "\u2713" in capsys.readouterr().out


def test_pool_backward_of_the_test_by_hand():
    """Kernel 3, stride 2 on a 1x1x3x5 input: two windows share column 2; ties go to the first maximum."""
    x = np.array([[[[1.0, 0.0, 9.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0], [2.0, 0.0, 0.0, 5.0, 5.0]]]])
    out, cache = given_maxpool_forward(x, (3, 3), (2, 2), (0, 0))
    np.testing.assert_array_equal(out, [[[[9.0, 9.0]]]])
    dx = pool_backward()(np.array([[[[1.0, 10.0]]]]), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 2] = 11.0  # the shared maximum collects both windows' gradients
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(pool_backward()(np.ones((1, 1, 1, 1)), (np.zeros((1, 1, 2, 2)), (2, 2), (2, 2),
                                                                           (0, 0)))[0, 0], [[1, 0], [0, 0]])


def test_the_lessons_given_forward_runs_inside_maxpool2d():
    from cnnlab.layers import MaxPool2d
    rng = np.random.default_rng(3)
    x, dout = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((2, 3, 4, 3))  # OH = (9-3)//2+1, OW = (8-3)//2+1
    mine, default = MaxPool2d(3, stride=2, kernels=(given_maxpool_forward, pool_backward())), MaxPool2d(3, stride=2)
    np.testing.assert_array_equal(mine(x), default(x))
    # a pixel collects one value, or a sum of up to 4 added in another order: equal up to rounding
    np.testing.assert_allclose(mine.backward(dout), default.backward(dout), rtol=0, atol=1e-14)


@pytest.mark.parametrize("backward, message", [
    (..., r"`maxpool2d_backward` should be a function, got ellipsis"),
    (naive.maxpool2d_backward, r"cnnlab's own kernel"),
    (lambda dout, cache: ..., r"maxpool2d_backward\(dout, cache\).* is still Ellipsis"),
    (lambda dout, cache: None, r"is still None \(did you forget `return`\?\)"),
    (lambda dout, cache: cache[0][dout], r"raised IndexError"),
    (pool_backward(route="every"), r"dout is sent to every entry of the window"),
    (pool_backward(route="mean"), r"dout is averaged over the window"),
    (pool_backward(stride=False), r"the stride is ignored"),
    (pool_backward(add=False), r"overlapping windows overwrite each other"),
    (pool_backward(crop=False), r"padding=\(1, 1\): `dx` has the padded input's shape: crop"),
    (pool_backward(pad_value=0.0), r"the padding is zeros: pad with -inf"),
    (pool_backward(route="all"), r"ties: the gradient goes to every maximum"),
    (pool_backward(route="last"), r"ties: the gradient goes to the last maximum"),
    (lambda dout, cache: 2 * pool_backward()(dout, cache), r"maxpool2d_backward.*: `dx`\[.*\] is .* but should be"),
])
def test_maxpool2d_backward_mistakes_are_named(backward, message):
    with pytest.raises(CheckFailed, match=message):
        check_maxpool2d_backward(backward)
