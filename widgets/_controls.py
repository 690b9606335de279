"""Slider ranges that include the model's value: a control built on a model shows the model's setting.

ipywidgets clamps a value outside [min, max] to the nearest end without a word; a widget that then read
the slider back would overwrite the model's setting. Every widget builds its ranges with these.
"""
from __future__ import annotations

import math

__all__ = ["spanning", "log_spanning"]


def spanning(low, high, *values):
    """(min, max): [low, high] widened to hold every value."""
    return min(low, *values), max(high, *values)


def log_spanning(low: int, high: int, *values) -> tuple[int, int]:
    """(min, max) exponents of a FloatLogSlider (base 10): [low, high] widened to hold every value > 0."""
    exponents = [math.log10(v) for v in values]
    return min(low, *(math.floor(e) for e in exponents)), max(high, *(math.ceil(e) for e in exponents))
