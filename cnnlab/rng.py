"""Randomness in cnnlab: always an explicit numpy Generator (or an int seed), never NumPy's global state."""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_generator"]


def as_generator(rng, who: str = "cnnlab", default_seed: int | None = None,
                 missing: type[Exception] = ValueError) -> np.random.Generator:
    """`rng` as a numpy Generator.

    rng: a Generator (used as is, so its stream continues), an int seed >= 0 (a new Generator), or None:
    then `default_seed` seeds a new Generator when given (deterministic), otherwise `missing` is raised
    with a message asking `who`'s caller for rng=. Anything else raises TypeError.
    """
    if rng is None:
        if default_seed is not None:
            return np.random.default_rng(default_seed)
        raise missing(f"{who} needs rng= (a numpy Generator or an int seed, e.g. rng=0): cnnlab never uses "
                      "NumPy's global random state, so every run can be repeated exactly")
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise ValueError(f"{who}: an rng seed must be a non-negative int, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{who}: rng must be a numpy.random.Generator or an int seed, got "
                    f"{type(rng).__name__}: {rng!r}")
