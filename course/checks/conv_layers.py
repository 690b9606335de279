"""Self-checks for lesson 04 (convolution layers).

Every expected answer comes from cnnlab's naive kernels (`cnnlab.kernels.naive.conv2d_forward`,
`conv2d_backward`) or, for the subsampling layer, from `np.kron`, never from the student's code.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from cnnlab.kernels import naive

from . import CheckFailed, check_array, passed, placeholder, run_student, same

__all__ = ["check_corr2d_valid", "check_conv_dweight", "check_subsample_delta"]


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
