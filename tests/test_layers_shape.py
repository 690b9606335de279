"""Flatten: the feature order, start_dim/end_dim, the backward reshape, errors."""
import numpy as np
import pytest

from cnnlab.gradcheck import gradcheck
from cnnlab.layers import Flatten


def test_feature_order_is_row_major():
    x = np.zeros((2, 3, 4, 5))
    x[1, 2, 3, 1] = 1.0
    out = Flatten()(x)
    assert out.shape == (2, 60)
    assert np.flatnonzero(out[1]).tolist() == [2 * 20 + 3 * 5 + 1]   # c*H*W + h*W + w


@pytest.mark.parametrize("start, end, expected", [(1, -1, (2, 60)), (0, -1, (120,)), (2, 3, (2, 3, 20)),
                                                  (1, 2, (2, 12, 5)), (-2, -1, (2, 3, 20))])
def test_start_and_end_dim(start, end, expected):
    assert Flatten(start, end)(np.zeros((2, 3, 4, 5))).shape == expected


def test_backward_restores_the_shape_and_values():
    rng = np.random.default_rng(0)
    flat = Flatten()
    flat(rng.standard_normal((2, 3, 2, 2)))
    dout = rng.standard_normal((2, 12))
    dx = flat.backward(dout)
    assert dx.shape == (2, 3, 2, 2)
    assert dx[1, 2, 0, 1] == dout[1, 2 * 4 + 0 * 2 + 1]


@pytest.mark.parametrize("shape", [(1, 3, 2, 2), (4, 5), (3, 2, 5, 1)])
def test_gradient_matches_finite_differences(shape):
    rng = np.random.default_rng(1)
    report = gradcheck(Flatten(), rng.standard_normal(shape), rng=rng, eps=1e-3, rtol=1e-7)
    assert report.ok, str(report)


def test_float32_and_repr():
    flat = Flatten()
    out = flat(np.ones((2, 3, 4, 4), np.float32))
    assert out.dtype == np.float32
    assert flat.backward(np.ones((2, 48), np.float32)).dtype == np.float32
    assert repr(Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


def test_errors():
    with pytest.raises(ValueError, match=r"Flatten\(start_dim=2, end_dim=-1\) does not fit an input with 2 axes"):
        Flatten(2)(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="need start_dim <= end_dim"):
        Flatten(2, 1)(np.zeros((3, 4, 5)))
    with pytest.raises(TypeError, match="start_dim must be an int"):
        Flatten(1.5)
    with pytest.raises(TypeError, match="floating-point array"):
        Flatten()(np.zeros((2, 2), np.int8))
    with pytest.raises(RuntimeError, match="before Flatten.forward"):
        Flatten().backward(np.zeros((2, 4)))
