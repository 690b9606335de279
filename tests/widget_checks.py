"""Helpers shared by the widget tests (not a test module)."""
import numpy as np


def changed(before, after) -> bool:
    """True when any entry of two snapshots of a figure's artists differs (arrays by shape and values,
    NaN equal to NaN; strings and tuples by value)."""
    def differ(a, b):
        if isinstance(a, str) or isinstance(b, str):
            return a != b
        return np.shape(a) != np.shape(b) or not np.array_equal(a, b, equal_nan=True)

    return len(before) != len(after) or any(differ(a, b) for a, b in zip(before, after))
