"""Tests of cnnlab.data.Whitening (PCA and ZCA whitening), on 2-D examples worked out by hand.

The main example: four points around the mean (3, -1), offsets (2, 2), (-2, -2), (1, -1), (-1, 1).
Their covariance (divided by N = 4) is (1/4) (2 * [[4, 4], [4, 4]] + 2 * [[1, -1], [-1, 1]])
= [[2.5, 1.5], [1.5, 2.5]], with eigenvalue 4 along u1 = (1, 1)/sqrt(2) and 1 along u2 = (1, -1)/sqrt(2).
- ZCA, eps = 0: W = U diag(1/2, 1) U^T = 1/2 * 1/2 [[1, 1], [1, 1]] + 1 * 1/2 [[1, -1], [-1, 1]]
  = [[0.75, -0.25], [-0.25, 0.75]]; the offsets map to (1, 1), (-1, -1), (1, -1), (-1, 1), whose
  covariance is the identity.
- ZCA, eps = 1: whitened variances 4/5 along u1 and 1/2 along u2, so the whitened covariance is
  0.8 * 1/2 [[1, 1], [1, 1]] + 0.5 * 1/2 [[1, -1], [-1, 1]] = [[0.65, 0.15], [0.15, 0.65]].
- PCA, eps = 0: coordinates (x - m) . u_i / sqrt(lambda_i): (2, 2) -> (2 sqrt(2) / 2, 0) = (sqrt(2), 0),
  (1, -1) -> (0, sqrt(2) / 1); an eigenvector's sign is arbitrary, so compared up to sign.
"""
import numpy as np
import pytest

from cnnlab.data import Whitening

MEAN = np.array([3.0, -1.0])
OFFSETS = np.array([[2.0, 2.0], [-2.0, -2.0], [1.0, -1.0], [-1.0, 1.0]])
X = MEAN + OFFSETS
S2 = np.sqrt(2.0)


def covariance(Z):
    """(1/N) sum (z - mean)(z - mean)^T, computed here independently of Whitening."""
    centred = Z - Z.mean(axis=0)
    return centred.T @ centred / len(Z)


def test_zca_without_eps_by_hand():
    zca = Whitening("zca", eps=0).fit(X)
    np.testing.assert_allclose(zca.mean_, MEAN, atol=1e-15)
    np.testing.assert_allclose(zca.eigenvalues_, [4.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(zca.matrix_, [[0.75, -0.25], [-0.25, 0.75]], atol=1e-12)
    Z = zca(X)
    np.testing.assert_allclose(Z, [[1, 1], [-1, -1], [1, -1], [-1, 1]], atol=1e-12)
    np.testing.assert_allclose(covariance(Z), np.eye(2), atol=1e-12)


def test_eps_leaves_lambda_over_lambda_plus_eps_by_hand():
    zca = Whitening("zca", eps=1.0).fit(X)
    np.testing.assert_allclose(covariance(zca(X)), [[0.65, 0.15], [0.15, 0.65]], atol=1e-12)
    pca = Whitening("pca", eps=1.0).fit(X)
    np.testing.assert_allclose(covariance(pca(X)), np.diag([4 / 5, 1 / 2]), atol=1e-12)


def test_pca_coordinates_by_hand_up_to_sign():
    pca = Whitening("pca", eps=0).fit(X)
    Z = pca(X)
    assert Z.shape == (4, 2)
    np.testing.assert_allclose(np.abs(Z), [[S2, 0], [S2, 0], [0, S2], [0, S2]], atol=1e-12)
    np.testing.assert_allclose(np.abs(pca.eigenvectors_), np.full((2, 2), 1 / S2), atol=1e-12)
    np.testing.assert_allclose(covariance(Z), np.eye(2), atol=1e-12)


def test_zca_is_pca_rotated_back():
    X = np.random.default_rng(0).normal(size=(50, 3)) @ [[2.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.5, 0.1]]
    pca, zca = Whitening("pca", eps=0.01).fit(X), Whitening("zca", eps=0.01).fit(X)
    np.testing.assert_allclose(pca(X) @ pca.eigenvectors_.T, zca(X), atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_whitened_variances_are_lambda_over_lambda_plus_eps(seed):
    """On random correlated data, the whitened training covariance has eigenvalues lambda / (lambda + eps),
    lambda being the eigenvalues of the original covariance (np.linalg.eigvalsh, computed here)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6)) * [1, 1, 1, 0.1, 0.01, 0.001]
    eps = 1e-3
    lam = np.sort(np.linalg.eigvalsh(covariance(X)))[::-1]
    for kind in ("zca", "pca"):
        Z = Whitening(kind, eps=eps).fit(X)(X)
        got = np.sort(np.linalg.eigvalsh(covariance(Z)))[::-1]
        np.testing.assert_allclose(got, lam / (lam + eps), atol=1e-10)


def test_later_splits_use_the_training_statistics():
    zca = Whitening("zca", eps=0).fit(X)
    other = np.array([[4.0, -1.0], [3.0, 0.0]])              # offsets (1, 0) and (0, 1) from the TRAINING mean
    np.testing.assert_allclose(zca(other), [[0.75, -0.25], [-0.25, 0.75]], atol=1e-12)


def test_images_keep_their_shape_and_dtype():
    rng = np.random.default_rng(0)
    images = rng.random((40, 1, 3, 2)).astype(np.float32)
    zca = Whitening("zca", eps=0.01).fit(images)
    out = zca(images[:5])
    assert out.shape == (5, 1, 3, 2) and out.dtype == np.float32
    flat = Whitening("zca", eps=0.01).fit(images.reshape(40, -1))
    np.testing.assert_allclose(out.reshape(5, -1), flat(images[:5].reshape(5, -1)), atol=1e-6)
    assert Whitening("pca", eps=0.01).fit(images)(images[:5]).shape == (5, 6)


def test_a_rank_deficient_covariance():
    """Points on the line x1 = x2: covariance 2.5 [[1, 1], [1, 1]], eigenvalues 5 and 0. eps = 0 cannot
    whiten it; eps = 1 gives whitened variances 5/6 and 0, and (1, 1) -> (1, 1) / sqrt(6)."""
    line = np.array([[1.0, 1.0], [-1.0, -1.0], [2.0, 2.0], [-2.0, -2.0]])
    with pytest.raises(ValueError, match="rank 1 of 2.*eps > 0"):
        Whitening("zca", eps=0).fit(line)
    zca = Whitening("zca", eps=1.0).fit(line)
    np.testing.assert_array_equal(zca.eigenvalues_[1], 0.0)
    np.testing.assert_allclose(zca(line[:1]), [[1 / np.sqrt(6), 1 / np.sqrt(6)]], atol=1e-12)
    np.testing.assert_allclose(np.linalg.eigvalsh(covariance(zca(line))), [0, 5 / 6], atol=1e-12)


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="kind must be one of"):
        Whitening("pcaa")
    for eps in (-1.0, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="eps must be a finite number >= 0"):
            Whitening(eps=eps)
    with pytest.raises(TypeError, match="numpy array"):
        Whitening().fit([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match="floating-point.*int64"):
        Whitening().fit(np.array([[1, 2], [3, 4]], dtype=np.int64))
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        Whitening().fit(np.ones(4))
    with pytest.raises(ValueError, match="at least 2 examples"):
        Whitening().fit(np.ones((1, 3)))
    with pytest.raises(RuntimeError, match="not fitted yet"):
        Whitening()(X)
    zca = Whitening(eps=0.1).fit(X)
    with pytest.raises(ValueError, match=r"fitted on examples of 2 features, got shape \(1, 3\)"):
        zca(np.ones((1, 3)))
    assert "fitted on 2 features" in repr(zca) and repr(Whitening()) == "Whitening(kind='zca', eps=1e-05)"
