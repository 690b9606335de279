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
