"""Tests of cnnlab.data's mini-batches (DataLoader) and train/validation split."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.data import DataLoader, train_val_split


def indexed(n, features=3):
    """X whose row i is full of i, and y = i: a batch tells which examples it holds."""
    return np.repeat(np.arange(n, dtype=np.float32)[:, None], features, axis=1), np.arange(n)


def epoch(loader):
    return [yb.copy() for _, yb in loader]


# ---------------------------------------------------------------- DataLoader

@settings(max_examples=60, deadline=None, database=None)
@given(n=st.integers(1, 120), batch_size=st.integers(1, 40), shuffle=st.booleans(),
       drop_last=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_batches_partition_the_data(n, batch_size, shuffle, drop_last, seed):
    X, y = indexed(n)
    loader = DataLoader(X, y, batch_size, shuffle=shuffle, drop_last=drop_last, rng=seed)
    batches = list(loader)
    assert len(batches) == len(loader) == (n // batch_size if drop_last else -(-n // batch_size))
    sizes = [len(yb) for _, yb in batches]
    assert all(s == batch_size for s in sizes[:-1]) and (not sizes or 1 <= sizes[-1] <= batch_size)
    if drop_last:
        assert all(s == batch_size for s in sizes)
    seen = np.concatenate([yb for _, yb in batches]) if batches else np.array([], int)
    assert len(np.unique(seen)) == len(seen) == (n - n % batch_size if drop_last else n)
    for xb, yb in batches:  # each x stays with its own y
        np.testing.assert_array_equal(xb[:, 0], yb.astype(np.float32))
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(len(seen)))


def test_every_epoch_covers_all_examples_once_in_a_new_order():
    X, y = indexed(100)
    loader = DataLoader(X, y, batch_size=8, shuffle=True, rng=np.random.default_rng(3))
    first, second = np.concatenate(epoch(loader)), np.concatenate(epoch(loader))
    assert sorted(first) == sorted(second) == list(range(100))
    assert not np.array_equal(first, second)
    assert not np.array_equal(first, np.arange(100))


def test_same_seed_gives_the_same_epochs_and_other_seeds_differ():
    X, y = indexed(50)
    a, b, c = (DataLoader(X, y, 7, shuffle=True, rng=seed) for seed in (5, 5, 6))
    for _ in range(3):
        ea, eb, ec = (np.concatenate(epoch(loader)) for loader in (a, b, c))
        np.testing.assert_array_equal(ea, eb)
        assert not np.array_equal(ea, ec)


def test_drop_last_and_len():
    X, y = indexed(10)
    assert [len(b) for b in epoch(DataLoader(X, y, 4))] == [4, 4, 2]
    assert [len(b) for b in epoch(DataLoader(X, y, 4, drop_last=True))] == [4, 4]
    assert len(DataLoader(X, y, 4)) == 3 and len(DataLoader(X, y, 4, drop_last=True)) == 2
    assert len(DataLoader(X, y, 10, drop_last=True)) == 1 and len(DataLoader(X, y, 11, drop_last=True)) == 0


def test_batches_are_copies_and_global_random_state_is_untouched():
    X, y = indexed(6)
    state = np.random.get_state()
    for xb, yb in DataLoader(X, y, 4, shuffle=True, rng=0):
        xb[:] = -1
        yb[:] = -1
    assert X.min() == 0 and y.min() == 0
    after = np.random.get_state()
    assert all(np.array_equal(u, v) for u, v in zip(state, after))


def test_dataloader_rejects_bad_arguments():
    X, y = indexed(5)
    with pytest.raises(TypeError, match="DataLoader: rng must be a numpy.random.Generator"):
        DataLoader(X, y, 2, shuffle=True, rng=0.5)
    with pytest.raises(ValueError, match=r"\(5, 3\).*\(4,\)"):
        DataLoader(X, y[:4])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            DataLoader(X, y, bad)
    with pytest.raises(TypeError, match="RandomState"):
        DataLoader(X, y, 2, shuffle=True, rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="empty"):
        DataLoader(X[:0], y[:0])


# ---------------------------------------------------------------- train_val_split

def labeled(counts):
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    return np.arange(len(y)) * 10 + y, y  # X encodes the index (X // 10) and the label (X % 10)


@pytest.mark.parametrize("fraction, expected", [(0.1, [1, 2, 3]), (0.25, [3, 5, 8])])
def test_stratified_split_takes_the_same_share_of_every_class(fraction, expected):
    # by hand: 10, 20, 30 examples; 0.25 * 10 = 2.5 -> 3 and 0.25 * 30 = 7.5 -> 8 (halves round up)
    X, y = labeled([10, 20, 30])
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, fraction, rng=0)
    assert np.bincount(y_val).tolist() == expected
    assert np.bincount(y_tr).tolist() == [n - e for n, e in zip([10, 20, 30], expected)]
    np.testing.assert_array_equal(X_tr % 10, y_tr)  # rows stay with their labels
    np.testing.assert_array_equal(X_val % 10, y_val)


def test_split_is_disjoint_covering_ordered_and_reproducible():
    X, y = labeled([40, 25, 35])
    X_tr, _, X_val, _ = train_val_split(X, y, 0.2, rng=np.random.default_rng(1))
    assert set(X_tr).isdisjoint(X_val)
    assert sorted(np.concatenate([X_tr, X_val])) == sorted(X)
    assert list(X_tr) == sorted(X_tr) and list(X_val) == sorted(X_val)
    again = train_val_split(X, y, 0.2, rng=1)[2]
    other = train_val_split(X, y, 0.2, rng=2)[2]
    np.testing.assert_array_equal(X_val, again)
    assert not np.array_equal(X_val, other)


def test_unstratified_split_takes_a_share_of_the_whole():
    X, y = labeled([50, 10])
    _, _, X_val, _ = train_val_split(X, y, 0.25, rng=0, stratify=False)
    assert len(X_val) == 15  # 0.25 * 60


def test_split_works_on_images_and_rejects_bad_arguments():
    X, y = np.zeros((20, 1, 28, 28), np.float32), np.tile(np.arange(2), 10)
    X_tr, y_tr, X_val, y_val = train_val_split(X, y, 0.1, rng=0)
    assert X_tr.shape == (18, 1, 28, 28) and X_val.shape == (2, 1, 28, 28) and X_tr.dtype == np.float32
    with pytest.raises(ValueError, match="train_val_split: an rng seed must be a non-negative int"):
        train_val_split(X, y, 0.1, rng=-3)
    for bad in (0, 1, -0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            train_val_split(X, y, bad, rng=0)
    with pytest.raises(ValueError, match=r"\(20, 1, 28, 28\).*\(19,\)"):
        train_val_split(X, y[:19], 0.1, rng=0)
    with pytest.raises(ValueError, match="empty"):
        train_val_split(X[:2], y[:2], 0.1, rng=0)  # 0.1 of one example per class rounds to 0
