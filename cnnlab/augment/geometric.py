"""Geometric augmentations: random crops with padding, flips, and one affine warp (Khan §5.2.1).

Khan lists crops, rotations, flips, scaling, translations and shearing. Rotation, scaling,
translation and shearing are all affine maps of the pixel grid, so `RandomAffine` composes them
into one 2x2 matrix A and one shift t and resamples the image once (one interpolation, not four).

Coordinates: x is the column (to the right), y the row (DOWN, as the array is displayed), both
measured from the image centre c = ((W - 1)/2, (H - 1)/2). A pixel at p moves to

    p' = A (p - c) + c + t,      A = R(angle) Sh(shear) s,

    R(a)  = [[cos a,  sin a], [-sin a, cos a]]   a counter-clockwise turn on screen (torchvision's sign;
                                                  angle = 90 is np.rot90(image) with k=1),
    Sh    = [[1, tan sx], [0, 1]] @ [[1, 0], [tan sy, 1]]   (shear angles sx, sy in degrees),
    s     = isotropic scale,  t = (tx, ty) in pixels.

The output is computed backwards (each output pixel asks where it came from,
p = A^-1 (p' - c - t) + c) and read with bilinear interpolation; outside the input the image is
`fill` (0 by default), blended smoothly at the border as PyTorch's grid_sample does with zeros.
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.augment.base import Transform, check_images, probability

__all__ = ["RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip", "RandomAffine", "affine",
           "affine_matrix", "bilinear_sample"]


def _pair(value, name: str, who: str, minimum: int) -> tuple[int, int]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{who}: {name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(value) < minimum:
        raise ValueError(f"{who}: {name} must be >= {minimum}, got {value!r}")
    return int(value[0]), int(value[1])


class RandomCrop(Transform):
    """Pad every side with `fill`, then cut a random size[0] x size[1] window from each image.

    RandomCrop(size, padding=0, fill=0.0); size: int or (h, w); padding: int or (ph, pw) added on
    top and bottom (ph) and left and right (pw). Each image gets its own window, drawn uniformly
    among all windows that lie inside the padded image. (N, C, H, W) -> (N, C, h, w). With
    size = (H, W) this is a random translation by at most `padding` pixels.
    """

    def __init__(self, size, padding=0, fill: float = 0.0):
        self.size = _pair(size, "size", "RandomCrop", 1)
        self.padding = _pair(padding, "padding", "RandomCrop", 0)
        self.fill = float(fill)

    def _apply(self, images, rng):
        n, c, height, width = images.shape
        (h, w), (ph, pw) = self.size, self.padding
        hp, wp = height + 2 * ph, width + 2 * pw
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: size {self.size} does not fit in the padded image of size "
                             f"({hp}, {wp}) (images {images.shape}, padding {self.padding})")
        padded = np.full((n, c, hp, wp), self.fill, dtype=images.dtype)
        padded[:, :, ph:ph + height, pw:pw + width] = images
        top = rng.integers(0, hp - h + 1, size=n)
        left = rng.integers(0, wp - w + 1, size=n)
        rows = (top[:, None] + np.arange(h))[:, None, :, None]        # (N, 1, h, 1)
        cols = (left[:, None] + np.arange(w))[:, None, None, :]       # (N, 1, 1, w)
        return padded[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None], rows, cols]


class _RandomFlip(Transform):
    _axis = -1

    def __init__(self, p: float = 0.5):
        self.p = probability(p, type(self).__name__)

    def _apply(self, images, rng):
        flip = rng.random(len(images)) < self.p
        out = images.copy()
        out[flip] = np.flip(images[flip], axis=self._axis)
        return out


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each image left-right (reverse the W axis) with probability p, independently per image."""

    _axis = -1


class RandomVerticalFlip(_RandomFlip):
    """Mirror each image upside down (reverse the H axis) with probability p, independently per image."""

    _axis = -2


def affine_matrix(angle, scale=1.0, shear=(0.0, 0.0)) -> np.ndarray:
    """A = R(angle) Sh(shear) s of the module docstring; angle and shear in degrees.

    angle, scale: scalars or arrays (N,); shear: (sx, sy), each a scalar or an array (N,).
    Returns an array (..., 2, 2) acting on (x, y) = (column, row) offsets from the centre.
    """
    a = np.deg2rad(np.asarray(angle, dtype=np.float64))
    s = np.asarray(scale, dtype=np.float64)
    tx = np.tan(np.deg2rad(np.asarray(shear[0], dtype=np.float64)))
    ty = np.tan(np.deg2rad(np.asarray(shear[1], dtype=np.float64)))
    a, s, tx, ty = np.broadcast_arrays(a, s, tx, ty)
    rot = np.stack([np.stack([np.cos(a), np.sin(a)], -1), np.stack([-np.sin(a), np.cos(a)], -1)], -2)
    one = np.ones_like(tx)
    shear_m = np.stack([np.stack([one + tx * ty, tx], -1), np.stack([ty, one], -1)], -2)
    return rot @ shear_m * s[..., None, None]


def bilinear_sample(images, src_y, src_x, fill: float = 0.0) -> np.ndarray:
    """Read images at real-valued positions with bilinear interpolation, `fill` outside.

    Inputs: images (N, C, H, W); src_y, src_x (N, H2, W2): the row and column each output pixel
    reads. Returns (N, C, H2, W2) in the images' dtype. The image is treated as surrounded by
    `fill`, so a position half a pixel outside gets half the border value and half `fill`.
    """
    n, c, h, w = images.shape
    padded = np.full((n, h + 2, w + 2, c), 0.0, dtype=images.dtype)    # one ring of zeros around
    padded[:, 1:-1, 1:-1, :] = images.transpose(0, 2, 3, 1) - images.dtype.type(fill)
    y0, x0 = np.floor(src_y), np.floor(src_x)
    wy, wx = (src_y - y0).astype(images.dtype)[..., None], (src_x - x0).astype(images.dtype)[..., None]
    y0 = np.clip(y0, -2, h + 1).astype(np.int64)
    x0 = np.clip(x0, -2, w + 1).astype(np.int64)
    iy0, iy1 = np.clip(y0 + 1, 0, h + 1), np.clip(y0 + 2, 0, h + 1)    # +1: index into the padded array
    ix0, ix1 = np.clip(x0 + 1, 0, w + 1), np.clip(x0 + 2, 0, w + 1)
    k = np.arange(n)[:, None, None]
    out = ((1 - wy) * ((1 - wx) * padded[k, iy0, ix0] + wx * padded[k, iy0, ix1])
           + wy * ((1 - wx) * padded[k, iy1, ix0] + wx * padded[k, iy1, ix1]))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)) + images.dtype.type(fill)


def affine(images, angle, translate=(0.0, 0.0), scale=1.0, shear=(0.0, 0.0), fill: float = 0.0):
    """Warp images by p' = A (p - c) + c + t (module docstring); the deterministic core of RandomAffine.

    Inputs:
    - images: (N, C, H, W) floats.
    - angle: degrees, counter-clockwise on screen; a scalar or one per image (N,).
    - translate: (tx, ty) in pixels (right, down); each a scalar or (N,).
    - scale: a scalar or (N,); shear: (sx, sy) degrees, each a scalar or (N,).
    Returns new images (N, C, H, W), same dtype.
    """
    check_images(images, "affine")
    n, _, h, w = images.shape
    A = np.broadcast_to(affine_matrix(angle, scale, shear), (n, 2, 2))
    det = A[:, 0, 0] * A[:, 1, 1] - A[:, 0, 1] * A[:, 1, 0]
    if np.any(np.abs(det) < 1e-12):
        raise ValueError("affine: the map is not invertible (scale 0 or a shear of +-90 degrees)")
    inv = np.linalg.inv(A)
    tx = np.broadcast_to(np.asarray(translate[0], dtype=np.float64), (n,))
    ty = np.broadcast_to(np.asarray(translate[1], dtype=np.float64), (n,))
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing="ij")
    dx = xx[None] - cx - tx[:, None, None]                                  # p' - c - t, (N, H, W)
    dy = yy[None] - cy - ty[:, None, None]
    src_x = inv[:, 0, 0, None, None] * dx + inv[:, 0, 1, None, None] * dy + cx
    src_y = inv[:, 1, 0, None, None] * dx + inv[:, 1, 1, None, None] * dy + cy
    return bilinear_sample(images, src_y, src_x, fill)


def _range(value, name: str, symmetric: bool, lo_limit: float, hi_limit: float):
    """A number d -> (-d, d) when symmetric; a pair (lo, hi) -> itself; both checked against limits."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and symmetric:
        if value < 0:
            raise ValueError(f"RandomAffine: {name} as a single number must be >= 0, got {value!r}")
        value = (-value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"RandomAffine: {name} must be a number or a pair (min, max), got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not lo_limit <= lo <= hi <= hi_limit:
        raise ValueError(f"RandomAffine: {name} must satisfy {lo_limit} <= min <= max <= {hi_limit}, got {value!r}")
    return lo, hi


class RandomAffine(Transform):
    """Random rotation, translation, scaling and shear as ONE affine warp with bilinear sampling.

    RandomAffine(degrees, translate=None, scale=None, shear=None, fill=0.0), torchvision's arguments:
    - degrees: d -> angle uniform in (-d, d); or (min, max). Counter-clockwise on screen for
      positive angles, so degrees=(90, 90) is np.rot90(images, 1, axes=(2, 3)) for square images.
    - translate: (a, b) fractions: shift tx uniform in (-a W, a W), ty in (-b H, b H); None = 0.
    - scale: (min, max) scale factor drawn uniformly; None = 1.
    - shear: s -> x-shear uniform in (-s, s) degrees; (min, max) for the x-shear; or
      (xmin, xmax, ymin, ymax) for both; None = no shear. Shears stay within (-90, 90).
    - fill: the value outside the input image.
    Each image gets its own draw (angle, then tx, ty, then scale, then shears).
    """

    def __init__(self, degrees, translate=None, scale=None, shear=None, fill: float = 0.0):
        self.degrees = _range(degrees, "degrees", True, -360.0, 360.0)
        if translate is not None:
            if not isinstance(translate, (tuple, list)) or len(translate) != 2:
                raise TypeError(f"RandomAffine: translate must be a pair of fractions (a, b), got {translate!r}")
            for v in translate:
                if not isinstance(v, numbers.Real) or isinstance(v, bool) or not 0.0 <= v <= 1.0:
                    raise ValueError(f"RandomAffine: translate fractions must be in [0, 1], got {translate!r}")
            translate = (float(translate[0]), float(translate[1]))
        self.translate = translate
        self.scale = None if scale is None else _range(scale, "scale", False, 1e-6, np.inf)
        if shear is not None:
            if isinstance(shear, (tuple, list)) and len(shear) == 4:
                shear = (_range(shear[:2], "shear (x)", False, -89.9, 89.9)
                         + _range(shear[2:], "shear (y)", False, -89.9, 89.9))
            else:
                shear = _range(shear, "shear", True, -89.9, 89.9)
        self.shear = shear
        self.fill = float(fill)

    def _apply(self, images, rng):
        n, _, h, w = images.shape
        angle = rng.uniform(*self.degrees, size=n)
        tx = ty = np.zeros(n)
        if self.translate is not None:
            tx = rng.uniform(-self.translate[0] * w, self.translate[0] * w, size=n)
            ty = rng.uniform(-self.translate[1] * h, self.translate[1] * h, size=n)
        s = np.ones(n) if self.scale is None else rng.uniform(*self.scale, size=n)
        sx = sy = np.zeros(n)
        if self.shear is not None:
            sx = rng.uniform(self.shear[0], self.shear[1], size=n)
            if len(self.shear) == 4:
                sy = rng.uniform(self.shear[2], self.shear[3], size=n)
        return affine(images, angle, (tx, ty), s, (sx, sy), self.fill)
