"""Screenshots for the browser tests: small PNGs for the course map, and "did the plot change?".

`save_png` writes a screenshot as a palette PNG no larger than `max_bytes` (the course map commits
them, so each stays small); `changed_fraction` compares two screenshots pixel by pixel.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["MAX_BYTES", "save_png", "changed_fraction", "changed_pixels", "is_blank", "decode"]

MAX_BYTES = 150_000  # every committed screenshot stays under this (the course map's budget)


def decode(png: bytes) -> np.ndarray:
    """PNG bytes -> (H, W, 3) uint8 array."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


def changed_fraction(before: bytes, after: bytes, tolerance: int = 8) -> float:
    """Fraction of pixels whose colour moved by more than `tolerance` (0-255, any channel) between
    two screenshots; 1.0 when their sizes differ (a figure that was resized has changed)."""
    a, b = decode(before), decode(after)
    if a.shape != b.shape:
        return 1.0
    moved = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > tolerance
    return float(moved.mean())


def changed_pixels(before: bytes, after: bytes, tolerance: int = 8) -> int:
    """How many pixels changed colour by more than `tolerance` between two screenshots (all of them
    when their sizes differ)."""
    a, b = decode(before), decode(after)
    if a.shape != b.shape:
        return max(a.shape[0] * a.shape[1], b.shape[0] * b.shape[1])
    return int((np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=-1) > tolerance).sum())


def is_blank(png: bytes) -> bool:
    """True when a screenshot is one flat colour (a figure that was never drawn)."""
    pixels = decode(png).reshape(-1, 3)
    return bool((pixels == pixels[0]).all())


def save_png(png: bytes, path, max_bytes: int = MAX_BYTES, max_width: int = 1100) -> int:
    """Write a screenshot to `path` as an optimised palette PNG of at most `max_bytes`: narrower than
    `max_width`, then fewer colours and a smaller width until it fits. Returns the size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(io.BytesIO(png)) as shot:
        image = shot.convert("RGB")
    width, colors = min(image.width, max_width), 256
    while True:
        scaled = image if width == image.width else image.resize(
            (width, max(1, round(image.height * width / image.width))), Image.Resampling.LANCZOS)
        buffer = io.BytesIO()
        scaled.quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG", optimize=True)
        data = buffer.getvalue()
        if len(data) <= max_bytes:
            path.write_bytes(data)
            return len(data)
        if colors > 32:
            colors //= 2
        elif width > 200:
            width = int(width * 0.8)
        else:
            raise ValueError(f"cannot fit the screenshot for {path.name} into {max_bytes} bytes "
                             f"(still {len(data)} bytes at {width} px and {colors} colours)")
