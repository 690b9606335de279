"""Self-checks for lesson 04 (convolution layers).

Every expected answer comes from cnnlab's naive kernels (`cnnlab.kernels.naive`), from centred finite
differences of them, or, for the subsampling layer, from `np.kron`, never from the student's code. The
wrong answers a check recognises are computed the mistaken way from the same kernels (a flipped kernel,
stride 1 instead of the stride, an input padded twice, one image instead of the batch, ...).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab.gradcheck import numerical_gradient
from cnnlab.kernels import naive
from cnnlab.kernels.windows import conv_output_size, sliding_windows, window_add

from . import CheckFailed, check_array, name_mistake, passed, placeholder, run_student, same, student_array

__all__ = ["check_corr2d_valid", "check_conv_dweight", "check_subsample_delta", "check_conv2d_kernels",
           "check_maxpool2d_backward"]


def _library_corr(x, k) -> np.ndarray:
    """cnnlab's naive Conv2d forward on one map and one kernel: the 'valid' cross-correlation."""
    return naive.conv2d_forward(x[None, None], k[None, None])[0][0, 0]


_same_values = partial(same, rtol=1e-5, atol=1e-8)


def check_corr2d_valid(corr2d_valid) -> None:
    """`corr2d_valid(x, k)` must return the 'valid' cross-correlation of a 2-D x (H, W) with k (KH, KW):
    out[i, j] = sum_{a, b} x[i + a, j + b] k[a, b], shape (H - KH + 1, W - KW + 1)."""
    placeholder("`corr2d_valid`", corr2d_valid, returned=False)
    if not callable(corr2d_valid):
        raise CheckFailed(f"`corr2d_valid` should be a function of (x, k), got {type(corr2d_valid).__name__}")
    rng = np.random.default_rng(4)
    cases = [(rng.standard_normal((5, 7)), rng.standard_normal((2, 3))),
             (rng.standard_normal((6, 5)), rng.standard_normal((3, 3))),
             (rng.standard_normal((4, 4)), rng.standard_normal((4, 4)))]
    for x, k in cases:
        (h, w), (kh, kw) = x.shape, k.shape
        got = run_student(lambda: corr2d_valid(x.copy(), k.copy()),
                          f"corr2d_valid(x, k) with x of shape {x.shape} and k of shape {k.shape}")
        if got is Ellipsis:
            raise CheckFailed("corr2d_valid still returns `...`: fill `out` with the loops and run the cell again")
        if got is None:
            raise CheckFailed("corr2d_valid returned None: did you forget `return out`?")
        expected = _library_corr(x, k)
        shape = np.shape(got)
        if shape != expected.shape:
            hint = {(h, w): "that is the input's size ('same'); 'valid' keeps only the positions where the "
                            "kernel fits entirely inside x",
                    (h - kh, w - kw): "one row and one column short: there are H - KH + 1 positions, "
                                      "so loop over range(H - KH + 1)",
                    (h + kh - 1, w + kw - 1): "that is the 'full' size; 'valid' keeps only the positions where "
                                              "the kernel fits entirely inside x"}.get(shape, "")
            raise CheckFailed(f"for x of shape {x.shape} and k of shape {k.shape} the result should have shape "
                              f"{expected.shape} = (H - KH + 1, W - KW + 1), got {shape}" + (f": {hint}" if hint else ""))
        if _same_values(got, _library_corr(x, np.rot90(k, 2))) and not _same_values(got, expected):
            raise CheckFailed("you flipped the kernel: that is a true convolution; a cross-correlation "
                              "(what Conv2d computes) uses k[a, b] as it is, out[i, j] = sum x[i+a, j+b] k[a, b]")
        check_array("corr2d_valid(x, k)", got, expected, rtol=1e-6, atol=1e-9)
    passed(f"corr2d_valid agrees with cnnlab's naive convolution kernel on {len(cases)} inputs "
           "(non-square kernel, square kernel, kernel as large as the input)")


def check_conv_dweight(dW, x, delta) -> None:
    """dW must be dL/dw of a one-map conv layer (stride 1, no padding) with input x (H, W) and
    sensitivity delta = dL/dout (OH, OW): dW[a, b] = sum_{i, j} delta[i, j] x[i + a, j + b] (Bouvrie eq. (7))."""
    placeholder("`dW`", dW, returned=False)
    x, delta = np.asarray(x, dtype=np.float64), np.asarray(delta, dtype=np.float64)
    kh, kw = x.shape[0] - delta.shape[0] + 1, x.shape[1] - delta.shape[1] + 1
    _, cache = naive.conv2d_forward(x[None, None], np.zeros((1, 1, kh, kw)))
    _, expected, _ = naive.conv2d_backward(delta[None, None], cache)
    expected = expected[0, 0]
    shape = np.shape(dW)
    if shape != expected.shape:
        hint = {x.shape: "that is the shape of the input (and of dL/dx), not of the kernel",
                delta.shape: "that is the shape of δ; correlate x with δ to get one number per kernel entry"
                }.get(shape, "one entry per kernel entry")
        raise CheckFailed(f"`dW` should have the kernel's shape {expected.shape}, got {shape}: {hint}")
    if _same_values(dW, np.rot90(expected, 2)) and not _same_values(dW, expected):
        raise CheckFailed("`dW` is rotated by 180°: with cross-correlation no rotation is needed, "
                          "dW = corr2d_valid(x, delta) (Bouvrie's two rot180s cancel)")
    if _same_values(dW, -expected):
        raise CheckFailed("`dW` has the wrong sign: it is the gradient dL/dw, not the update -lr·dL/dw")
    if _same_values(dW, expected / delta.size):
        raise CheckFailed(f"`dW` is divided by the {delta.size} output positions: a shared weight collects the "
                          "SUM of its gradients over all positions, not their mean")
    check_array("dW", dW, expected, rtol=1e-5, atol=1e-8)
    passed("dW = x ⋆ δ ('valid'): every kernel entry sums δ times the pixel it met, over all output positions")


def check_subsample_delta(dx, delta, beta, k: int) -> None:
    """dx must be dL/dx of Subsample2d(kernel_size=k) with weights beta (C,) for dL/dout = delta (N, C, h, w):
    dx[:, j] = up(beta_j * delta[:, j]) = (beta_j * delta[:, j]) (Kronecker product) ones((k, k))."""
    placeholder("`dx_sub`", dx, returned=False)
    delta, beta = np.asarray(delta, dtype=np.float64), np.asarray(beta, dtype=np.float64)
    ones = np.ones((k, k))
    expected = np.kron(delta * beta[None, :, None, None], ones)
    shape = np.shape(dx)
    if shape == delta.shape:
        raise CheckFailed(f"`dx_sub` has δ's shape {shape}: it is not up-sampled yet; tile every value over a "
                          f"{k}×{k} block with np.kron(..., np.ones(({k}, {k})))")
    if shape != expected.shape:
        raise CheckFailed(f"`dx_sub` should have the input's shape {expected.shape} (every δ value tiled over a "
                          f"{k}×{k} block), got {shape}")
    if _same_values(dx, np.kron(delta, ones)) and not _same_values(dx, expected):
        raise CheckFailed("`dx_sub` is up(δ) without β: every map j is scaled by its own β_j in the forward pass, "
                          "so its gradient is scaled by β_j too")
    if _same_values(dx, expected / k**2):
        raise CheckFailed(f"`dx_sub` is divided by k² = {k * k}: that is average pooling; down() SUMS its block, "
                          "so every pixel receives the block's gradient unchanged")
    check_array("dx_sub", dx, expected, rtol=1e-5, atol=1e-8)
    passed("dx_sub = up(β·δ): each input pixel receives β times the sensitivity of the block it fell in")


# --- exercise 3: a convolution kernel pair and a max-pooling backward kernel ----------------------------

_close = partial(same, rtol=1e-6, atol=1e-9)

# (x shape, weight shape, stride, padding, with a bias): non-square kernels, odd sizes, stride 2, padding
# 1 and 2, a batch of 1, a layer without bias (Conv2d(..., bias=False) passes None)
_CONV_CASES = [((2, 3, 7, 6), (4, 3, 3, 2), (1, 1), (0, 0), True),
               ((3, 2, 9, 7), (3, 2, 3, 3), (2, 2), (1, 1), True),
               ((1, 2, 8, 7), (2, 2, 2, 3), (2, 1), (2, 1), False)]


def _describe(value) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    return f"{type(value).__name__}" + (f" of shape {value.shape}" if isinstance(value, np.ndarray) else "")


def _returned(value, what: str, names: tuple[str, ...]) -> tuple:
    """The student's function returned `value`: CheckFailed unless it is a tuple of len(names) values."""
    placeholder(what, value)
    if not isinstance(value, tuple) or len(value) != len(names):
        raise CheckFailed(f"{what} should return the tuple ({', '.join(names)}), got {_describe(value)}")
    return value


def _not_cnnlabs(fn, name: str) -> None:
    if not callable(fn):
        raise CheckFailed(f"`{name}` should be a function, got {type(fn).__name__}")
    if str(getattr(fn, "__module__", "")).startswith("cnnlab"):
        raise CheckFailed(f"`{name}` is cnnlab's own kernel ({fn.__module__}): the exercise is to write your own")


def _check_values(name: str, got, expected, what: str, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """check_array, its message starting with the case `what`."""
    try:
        check_array(name, got, expected, rtol=rtol, atol=atol)
    except CheckFailed as failed:
        raise CheckFailed(f"{what}: {failed}") from None


def _pad(x, padding) -> np.ndarray:
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _conv_grads(x, weight, dout, stride, padding):
    """cnnlab's (dx, dweight, dbias) for L = sum(out * dout), out = conv(x, weight) (formulas (2)-(4))."""
    _, cache = naive.conv2d_forward(x, weight, None, stride, padding)
    return naive.conv2d_backward(dout, cache)


def _corner(dout, shape) -> np.ndarray:
    """dout in the top-left corner of zeros of `shape`: output (oh, ow) read at (oh, ow), not (oh*sh, ow*sw)."""
    full = np.zeros(shape)
    full[:, :, :dout.shape[2], :dout.shape[3]] = dout
    return full


def _out_shape(x_shape, weight_shape, stride, padding) -> tuple:
    return (x_shape[0], weight_shape[0], conv_output_size(x_shape[2], weight_shape[2], stride[0], padding[0]),
            conv_output_size(x_shape[3], weight_shape[3], stride[1], padding[1]))


def _check_conv_forward(forward, x, weight, bias, stride, padding):
    """The student's (out, cache) for one case, out checked against cnnlab's naive kernel."""
    what = (f"conv2d_forward(x, weight, bias, stride={stride}, padding={padding}) with x {x.shape}, "
            f"weight {weight.shape}" + (", bias None" if bias is None else ""))
    ret = run_student(lambda: forward(x.copy(), weight.copy(), None if bias is None else bias.copy(), stride,
                                      padding), what, fn=forward,
                      hint=(("NoneType",), ": bias may be None (a layer built with bias=False): then add nothing"))
    out, cache = _returned(ret, what, ("out", "cache"))
    out = student_array(f"`out` of {what}", out)
    expected = naive.conv2d_forward(x, weight, bias, stride, padding)[0]
    if out.shape != expected.shape:
        hints = {_out_shape(x.shape, weight.shape, (1, 1), padding): "the stride is ignored: output (oh, ow) "
                 "reads the window starting at (oh * SH, ow * SW)",
                 _out_shape(x.shape, weight.shape, stride, (0, 0)): "the padding is missing: pad x with PH rows "
                 "and PW columns of zeros on each side first",
                 _out_shape(x.shape, weight.shape, stride, (2 * padding[0], 2 * padding[1])): "the padding is "
                 "applied twice",
                 (x.shape[0], x.shape[1]) + expected.shape[2:]: "one output map per input channel: out has F maps, "
                 "one per kernel weight[f], each summing over all C input channels"}
        hint = hints.get(out.shape, "OH = (H + 2 PH - KH) // SH + 1, OW likewise")
        raise CheckFailed(f"`out` of {what} should have shape {expected.shape}, got {out.shape}: {hint}")
    flipped = naive.conv2d_forward(x, weight[:, :, ::-1, ::-1], bias, stride, padding)[0]
    name_mistake(out, [(flipped, "the kernel is flipped: that is a true convolution; Conv2d computes a "
                                 "cross-correlation, w[f, c, i, j] times xp[n, c, oh*SH + i, ow*SW + j] (formula (1))"),
                       (None if bias is None else naive.conv2d_forward(x, weight, None, stride, padding)[0],
                        "the bias is missing: add bias[f] to every value of output map f")],
                 _close, right=expected, prefix=f"{what}: ")
    _check_values("out", out, expected, what)
    return cache


def _check_conv_backward(backward, cache, x, weight, dout, stride, padding, with_bias):
    """The student's (dx, dweight, dbias) for one case, against cnnlab's naive kernel and the named mistakes."""
    what = f"conv2d_backward(dout, cache) for stride={stride}, padding={padding}, x {x.shape}, weight {weight.shape}"
    ret = run_student(lambda: backward(dout.copy(), cache), what, fn=backward)
    dx, dweight, dbias = _returned(ret, what, ("dx", "dweight", "dbias"))
    dx, dweight = student_array(f"`dx` of {what}", dx), student_array(f"`dweight` of {what}", dweight)
    right_dx, right_dw, right_db = _conv_grads(x, weight, dout, stride, padding)
    n = x.shape[0]
    stride_one = _conv_grads(x, weight, _corner(dout, _out_shape(x.shape, weight.shape, (1, 1), padding)), (1, 1),
                             padding)
    stride_text = ("the stride is ignored in the backward pass: output (oh, ow) read the window starting at "
                   "(oh * SH, ow * SW), so that is where its gradient goes")
    prefix = f"{what}: "

    if dweight.shape != weight.shape:
        raise CheckFailed(f"{prefix}`dweight` should have the weight's shape {weight.shape}, got {dweight.shape}"
                          + (": sum over the batch too, one gradient per kernel entry" if dweight.shape[:1] == (n,)
                             and n != weight.shape[0] else ""))
    xp = _pad(x, padding)  # padded once more by the backward pass: windows on _pad(xp)
    twice = _conv_grads(xp, weight, _corner(dout, _out_shape(xp.shape, weight.shape, stride, padding)), stride, padding)
    name_mistake(dweight, [
        (right_dw[:, :, ::-1, ::-1], "`dweight` is rotated by 180°: with cross-correlation no kernel is flipped, "
                                     "dweight[f, c, i, j] = sum dout[n, f, oh, ow] xp[n, c, oh*SH + i, ow*SW + j]"),
        (stride_one[1], f"`dweight`: {stride_text}"),
        (twice[1], "`dweight`: the padding is applied twice: the cache already holds a padded input, or the "
                   "backward pads it again"),
        (_conv_grads(x[:1], weight, dout[:1], stride, padding)[1], "`dweight` is not summed over the batch: "
                                                                   "only image 0 contributes"),
        (_conv_grads(x[-1:], weight, dout[-1:], stride, padding)[1],
         "`dweight` is not summed over the batch: only the last image contributes (= instead of +=?)"),
        (right_dw / n, f"`dweight` is divided by the batch size {n}: a kernel collects the SUM over images and "
                       "positions (the loss's mean is already in dout)")], _close, right=right_dw, prefix=prefix)
    _check_values("dweight", dweight, right_dw, what)

    if with_bias:
        dbias = student_array(f"`dbias` of {what}", dbias)
        f, oh, ow = dout.shape[1:]
        shape_hints = {(n, f): "not summed over the batch", (f, oh, ow): "not summed over the positions",
                       dout.shape: "not summed at all", (f, 1, 1): "keepdims: it must have the bias's shape"}
        if dbias.shape != right_db.shape:
            hint = shape_hints.get(dbias.shape, "one value per output map")
            raise CheckFailed(f"{prefix}`dbias` should have the bias's shape {right_db.shape}, got {dbias.shape}: "
                              f"{hint}; dbias[f] = sum of dout[n, f, oh, ow] over n, oh and ow")
        name_mistake(dbias, [
            (dout[0].sum(axis=(1, 2)), "`dbias` is not summed over the batch: only image 0 contributes"),
            (dout[-1].sum(axis=(1, 2)), "`dbias` is not summed over the batch: only the last image contributes"),
            (dout.mean(axis=(0, 2, 3)), "`dbias` is the mean of dout; it must be the sum over images and positions"),
            (dout.sum(axis=(0, 2, 3)) / n, f"`dbias` is divided by the batch size {n}; it must be the sum")],
                     _close, right=right_db, prefix=prefix)
        _check_values("dbias", dbias, right_db, what)

    if dx.shape != x.shape:
        if dx.shape == _pad(x, padding).shape:
            uncropped = _conv_grads(_pad(x, padding), weight, dout, stride, (0, 0))[0]
            text = ("`dx` is not cropped: it is the gradient of the padded input; cut the padding off, "
                    "dxp[:, :, PH:PH + H, PW:PW + W]" if _close(dx, uncropped) else
                    "`dx` has the padded input's shape: crop the padding (and pad only once)")
            raise CheckFailed(prefix + text)
        raise CheckFailed(f"{prefix}`dx` should have the shape of x, {x.shape}, got {dx.shape}")
    name_mistake(dx, [
        (_conv_grads(x, weight[:, :, ::-1, ::-1], dout, stride, padding)[0],
         "`dx` uses the flipped kernel: in a cross-correlation layer each window gets dout times w[f] as it is"),
        (stride_one[0], f"`dx`: {stride_text}")], _close, right=right_dx, prefix=prefix)
    _check_values("dx", dx, right_dx, what)


def check_conv2d_kernels(conv2d_forward, conv2d_backward) -> None:
    """A conv2d kernel pair with cnnlab's signatures (formulas (1)-(4) of `cnnlab.kernels`):
    conv2d_forward(x, weight, bias, stride, padding) -> (out, cache) and conv2d_backward(dout, cache) ->
    (dx, dweight, dbias), with stride and padding given as (h, w) pairs, as the layers pass them.

    Run on three awkward cases in float64, compared with cnnlab's naive kernels, then the three gradients
    of a fourth case with centred finite differences of cnnlab's naive forward pass.
    """
    _not_cnnlabs(conv2d_forward, "conv2d_forward")
    _not_cnnlabs(conv2d_backward, "conv2d_backward")
    rng = np.random.default_rng(404)
    for x_shape, w_shape, stride, padding, with_bias in _CONV_CASES:
        x, weight = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        bias = rng.standard_normal(w_shape[0]) if with_bias else None
        dout = rng.standard_normal(_out_shape(x_shape, w_shape, stride, padding))
        cache = _check_conv_forward(conv2d_forward, x, weight, bias, stride, padding)
        _check_conv_backward(conv2d_backward, cache, x, weight, dout, stride, padding, with_bias)

    x, weight, bias = rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    stride, padding = (2, 2), (1, 2)
    dout = rng.standard_normal(_out_shape(x.shape, weight.shape, stride, padding))

    def loss():  # cnnlab's forward pass: the referee is independent of the student's code
        return np.sum(naive.conv2d_forward(x, weight, bias, stride, padding)[0] * dout)

    numeric = [numerical_gradient(loss, a) for a in (x, weight, bias)]
    what = f"conv2d_forward for x {x.shape}, weight {weight.shape}, stride={stride}, padding={padding}"
    _, cache = _returned(run_student(lambda: conv2d_forward(x.copy(), weight.copy(), bias.copy(), stride, padding),
                                     what), what, ("out", "cache"))
    what = f"conv2d_backward for x {x.shape}, weight {weight.shape}, stride={stride}, padding={padding}"
    got = _returned(run_student(lambda: conv2d_backward(dout.copy(), cache), what), what, ("dx", "dweight", "dbias"))
    for name, value, num in zip(("dx", "dweight", "dbias"), got, numeric):
        _check_values(name, student_array(f"`{name}` of {what}", value), num, f"{what}, against finite differences",
                      rtol=1e-6, atol=1e-8)
    passed("conv2d_forward and conv2d_backward agree with cnnlab's naive kernels on 3 awkward cases (non-square "
           "kernels, stride 2, padding 1 and 2, a batch of 1, no bias) and with finite differences on a fourth")


# (x shape, kernel_size, stride, padding, values): overlapping windows (kernel 3, stride 2), padding with
# windows whose real pixels are all negative, a non-square window on small integers (ties in most windows)
_POOL_CASES = [((2, 3, 7, 9), (3, 3), (2, 2), (0, 0), "normal"),
               ((1, 2, 6, 5), (3, 3), (2, 2), (1, 1), "negative"),
               ((2, 2, 6, 7), (2, 3), (2, 3), (0, 0), "ties")]


def _pool_route(x, kernel_size, stride, padding, dout, choose) -> np.ndarray:
    """dx when every window sends dout times choose(window values) (0/1 per offset, row-major) back."""
    (ph, pw), (h, w) = padding, x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    windows = sliding_windows(xp, kernel_size, stride).reshape(*dout.shape, -1)
    mask = choose(windows).astype(float)
    dxp = window_add((mask * dout[..., None]).reshape(*dout.shape, *kernel_size), xp.shape, stride)
    return dxp[:, :, ph:ph + h, pw:pw + w]


def _all_maxima(windows):
    return windows == windows.max(axis=-1, keepdims=True)


def _last_maximum(windows):
    last = windows.shape[-1] - 1 - np.argmax(windows[..., ::-1], axis=-1)
    return np.arange(windows.shape[-1]) == last[..., None]


def _maxpool_grad(x, kernel_size, stride, padding, dout) -> np.ndarray:
    _, cache = naive.maxpool2d_forward(x, kernel_size, stride, padding)
    return naive.maxpool2d_backward(dout, cache)


def check_maxpool2d_backward(maxpool2d_backward) -> None:
    """`maxpool2d_backward(dout, cache) -> dx` for the cache (x, kernel_size, stride, padding) of the lesson's
    maxpool2d_forward (pairs (h, w)): each dout value goes to the first maximum (row-major) of its window,
    the -inf padding is cropped, and a pixel in several windows receives the sum of what they send.

    Run on three awkward cases in float64 against cnnlab's naive kernels, the first also against centred
    finite differences of cnnlab's forward pass.
    """
    _not_cnnlabs(maxpool2d_backward, "maxpool2d_backward")
    rng = np.random.default_rng(405)
    for x_shape, kernel_size, stride, padding, values in _POOL_CASES:
        x = {"normal": lambda: rng.standard_normal(x_shape),
             "negative": lambda: rng.standard_normal(x_shape) - 2.5,
             "ties": lambda: rng.integers(0, 3, size=x_shape).astype(float)}[values]()
        out = naive.maxpool2d_forward(x, kernel_size, stride, padding)[0]
        dout = rng.standard_normal(out.shape)
        cache = (x.copy(), kernel_size, stride, padding)
        what = (f"maxpool2d_backward(dout, cache) for x {x_shape}, kernel_size={kernel_size}, stride={stride}, "
                f"padding={padding}")
        ret = run_student(lambda: maxpool2d_backward(dout.copy(), cache), what, fn=maxpool2d_backward, quiet=True)
        dx = student_array(f"`dx` of {what}", ret)
        right = _maxpool_grad(x, kernel_size, stride, padding, dout)
        prefix = f"{what}: "
        (ph, pw), (kh, kw) = padding, kernel_size
        if dx.shape != x.shape:
            if dx.shape == _pad(x, padding).shape:
                raise CheckFailed(prefix + "`dx` has the padded input's shape: crop the padding off, "
                                           "dxp[:, :, PH:PH + H, PW:PW + W]")
            raise CheckFailed(f"{prefix}`dx` should have the shape of x, {x.shape}, got {dx.shape}")
        _, avg_cache = naive.avgpool2d_forward(x, kernel_size, stride, padding)
        averaged = naive.avgpool2d_backward(dout, avg_cache)
        stride_one = _maxpool_grad(x, kernel_size, (1, 1), padding,
                                   _corner(dout, naive.maxpool2d_forward(x, kernel_size, (1, 1), padding)[0].shape))
        zero_padded = _maxpool_grad(_pad(x, padding), kernel_size, stride, (0, 0), dout)[:, :, ph:ph + x.shape[2],
                                                                                          pw:pw + x.shape[3]]
        name_mistake(dx, [
            (averaged * kh * kw, "dout is sent to every entry of the window; only the maximum affected the "
                                 "output, so only it receives the gradient"),
            (averaged, "dout is averaged over the window: that is average pooling; max pooling sends all of dout "
                       "to the maximum"),
            (stride_one, "the stride is ignored: output (oh, ow) read the window starting at (oh * SH, ow * SW), "
                         "so that is where its gradient goes"),
            (zero_padded, "the padding is zeros: pad with -inf (as the forward pass does), or a window whose real "
                          "pixels are all negative sends its gradient into the padding, where it is lost"),
            (_pool_route(x, kernel_size, stride, padding, dout, _all_maxima),
             "ties: the gradient goes to every maximum of the window; it must go to the first one only "
             "(row-major, as np.argmax finds it)"),
            (_pool_route(x, kernel_size, stride, padding, dout, _last_maximum),
             "ties: the gradient goes to the last maximum of the window (>= instead of >?); it must go to the "
             "first one (row-major, as np.argmax finds it)")], _close, right=right, prefix=prefix)
        if not _close(dx, right):
            routed = naive.maxpool2d_backward(np.ones_like(dout), naive.maxpool2d_forward(x, kernel_size, stride,
                                                                                           padding)[1])
            wrong = ~np.isclose(dx, right, rtol=1e-6, atol=1e-9)
            if np.isfinite(dx).all() and (routed[wrong] >= 2).all():
                raise CheckFailed(prefix + "overlapping windows overwrite each other: a pixel that is the maximum "
                                           "of several windows must receive the SUM of their gradients (+=, not =)")
        _check_values("dx", dx, right, what)
        if values == "normal":
            def loss():  # cnnlab's forward pass: the referee is independent of the student's code
                return np.sum(naive.maxpool2d_forward(x, kernel_size, stride, padding)[0] * dout)

            _check_values("dx", dx, numerical_gradient(loss, x), f"{what}, against finite differences",
                          rtol=1e-6, atol=1e-8)
    passed("maxpool2d_backward agrees with cnnlab's naive kernel on 3 awkward cases (overlapping windows, -inf "
           "padding, ties, a non-square window) and with finite differences")
