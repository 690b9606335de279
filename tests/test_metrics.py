import numpy as np
import pytest

import cnnlab.train
from cnnlab import Sequential
from cnnlab.layers import Dropout, Linear
from cnnlab.metrics import accuracy, accuracy_or_none, confusion_matrix, per_class_accuracy, predict, running_mean


def test_accuracy_from_scores_or_labels():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy(scores, [1, 0, 0]) == pytest.approx(2 / 3)
    assert accuracy(np.array([1, 1, 0]), [1, 0, 0]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match=r"y has shape \(2,\)"):
        accuracy(scores, [1, 0])


def test_accuracy_or_none_only_for_a_classification_batch():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert accuracy_or_none(scores, np.array([1, 0, 0])) == pytest.approx(2 / 3)
    assert accuracy_or_none(scores, np.array([[1.0], [0.0], [0.0]])) is None   # regression target
    assert accuracy_or_none(np.array([2.0, -1.0, 0.5]), np.array([1, 0, 1])) is None  # (N,) logits
    assert accuracy_or_none(scores, np.array([1.0, 0.0, 0.0])) is None          # float targets
    assert cnnlab.train.accuracy is accuracy  # the old import path names the one accuracy


def test_confusion_matrix_and_per_class_accuracy_by_hand():
    y = [0, 0, 1, 1, 1, 2]
    p = [0, 1, 1, 1, 2, 2]
    c = confusion_matrix(y, p, 4)
    expected = np.zeros((4, 4), int)
    expected[0, 0], expected[0, 1], expected[1, 1], expected[1, 2], expected[2, 2] = 1, 1, 2, 1, 1
    np.testing.assert_array_equal(c, expected)
    np.testing.assert_allclose(per_class_accuracy(c)[:3], [0.5, 2 / 3, 1.0])
    assert np.isnan(per_class_accuracy(c)[3])
    with pytest.raises(ValueError, match=r"predictions must lie in \[0, 2\), got range \[0, 2\]"):
        confusion_matrix([0, 1], [0, 2], 2)


def test_predict_runs_in_eval_mode_and_restores_training():
    net = Sequential([Linear(3, 2, rng=0), Dropout(0.5, rng=0)])
    X = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)  # distinct rows: the order shows
    out = predict(net, X, batch_size=2)
    # dropout is the identity in eval. Batches of 2, 2 and 1 rows against one of 5: BLAS may take another
    # path for another shape (one row apart by 2.4e-7 on OpenBLAS's Haswell and SkylakeX kernels), so the
    # rows agree to float32 rounding of a 3-term sum, not bit for bit; dropout would zero or double them
    np.testing.assert_allclose(out, Sequential(net.layers[:1])(X), rtol=1e-6, atol=1e-6)
    assert net.training


def test_running_mean_is_the_mean_of_the_last_window_values():
    values = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    # by hand: window 2 -> 1, (1+2)/2, (2+3)/2, (3+4)/2, (4+10)/2
    np.testing.assert_allclose(running_mean(values, 2), [1.0, 1.5, 2.5, 3.5, 7.0])
    # a window longer than the run averages everything so far
    np.testing.assert_allclose(running_mean([4.0, 2.0], 8), [4.0, 3.0])
    np.testing.assert_allclose(running_mean(values, 1), values)
    assert running_mean([], 8).shape == (0,)


@pytest.mark.parametrize("window", [0, -1, 2.5, True])
def test_running_mean_refuses_a_bad_window(window):
    with pytest.raises(ValueError, match="window must be an integer >= 1"):
        running_mean([1.0, 2.0], window)


def test_running_mean_refuses_a_matrix():
    with pytest.raises(ValueError, match=r"one-dimensional, got shape \(2, 2\)"):
        running_mean(np.ones((2, 2)), 2)
