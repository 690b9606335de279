"""Self-checks of lesson 00: a wrong answer is named precisely; a right one passes."""
import numpy as np
import pytest

from checks import CheckFailed
from checks.welcome import check_class_means


def data():
    rng = np.random.default_rng(3)
    X = rng.random((30, 1, 4, 4)).astype(np.float32)
    y = np.arange(30) % 3
    return X, y


def test_check_class_means_accepts_the_right_answer_and_names_common_mistakes(capsys):
    X, y = data()
    right = np.stack([X[y == k, 0].mean(axis=0) for k in range(3)])
    check_class_means(right, X, y, num_classes=3)
    assert "\u2713" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="drop the channel axis"):
        check_class_means(right[:, None], X, y, num_classes=3)
    with pytest.raises(CheckFailed, match="one mean image per class"):
        check_class_means(X[:, 0].mean(axis=0), X, y, num_classes=3)
    with pytest.raises(CheckFailed, match="should be"):
        check_class_means(right[::-1], X, y, num_classes=3)
