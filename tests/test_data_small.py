"""cnnlab.data.small: the small task's data (downsampled, flattened Fashion-MNIST, a balanced seeded sample)."""
import numpy as np
import pytest

from cnnlab.data import downsample_flat, load_fashion_mnist, small_fashion_mnist

DATA = small_fashion_mnist(n_train=200, n_val=50)


def test_downsample_flat_averages_blocks_by_hand():
    image = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    # blocks [[0,1],[4,5]] -> 2.5, [[2,3],[6,7]] -> 4.5, [[8,9],[12,13]] -> 10.5, [[10,11],[14,15]] -> 12.5
    np.testing.assert_array_equal(downsample_flat(image), [[2.5, 4.5, 10.5, 12.5]])
    with pytest.raises(ValueError, match=r"factor must be a positive int that divides H = 4 and W = 4, got 3"):
        downsample_flat(image, 3)
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, H, W\), got \(4, 4\)"):
        downsample_flat(image[0, 0])


def test_small_fashion_mnist_is_balanced_seeded_and_disjoint():
    X_train, y_train, X_val, y_val = DATA
    assert X_train.shape == (200, 196) and X_val.shape == (50, 196) and X_train.dtype == np.float32
    assert np.all(np.bincount(y_train) == 20) and np.all(np.bincount(y_val) == 5)
    both = np.concatenate([X_train, X_val])
    assert len(np.unique(both, axis=0)) == 250, "no image is both a training and a validation image"
    # every row is a downsampled image of the shipped subset, with its label
    X, y, _ = load_fashion_mnist("train", source="subset")
    small = downsample_flat(X)
    first = np.flatnonzero((small == X_train[0]).all(axis=1))
    assert len(first) == 1 and y[first[0]] == y_train[0]
    again = small_fashion_mnist(n_train=200, n_val=50)
    other = small_fashion_mnist(n_train=200, n_val=50, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(DATA, again))
    assert not np.array_equal(other[0], X_train)
    with pytest.raises(ValueError, match="needs 801 images per class, but the shipped subset has 800"):
        small_fashion_mnist(n_train=8000, n_val=10)
