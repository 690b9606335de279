"""Turning what a user passes into a real-valued array, with an error that says what was wrong."""
from __future__ import annotations

import numpy as np


def real_array(value, name: str) -> np.ndarray:
    """`value` as an array of real numbers: float arrays pass unchanged; integers and bools become
    float64 (as np.exp would make them); anything else raises TypeError naming `name`."""
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return array
    if array.dtype.kind in "biu":
        return array.astype(np.float64)
    raise TypeError(f"{name} must be a real number or an array of real numbers, got dtype {array.dtype}")
