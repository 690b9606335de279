"""Colour augmentations: contrast jitter and PCA colour jitter (Khan §5.2.1, Krizhevsky et al. 2012).

PCA colour jitter ("fancy PCA"). Collect every RGB pixel of the training images as a 3-vector and
take the eigen-decomposition of their 3x3 covariance, Cov = sum_i lambda_i p_i p_i^T (eigenvalues
lambda_i >= 0, orthonormal eigenvectors p_i: the principal colour directions). For each image,
draw alpha_i ~ N(0, std^2) once (std = 0.1 in Krizhevsky et al.) and add the same vector

    delta = [p_1 p_2 p_3] [alpha_1 lambda_1, alpha_2 lambda_2, alpha_3 lambda_3]^T

to every pixel: the colours move along the directions in which the data's colours already vary,
in proportion to how much they vary there (a change of illumination colour and intensity).
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.augment.base import Transform, check_images

__all__ = ["ContrastJitter", "PCAColorJitter", "rgb_pca"]


class ContrastJitter(Transform):
    """Random contrast: out = m + f (x - m) per image, f uniform in [max(0, 1 - strength), 1 + strength].

    ContrastJitter(strength); m is the image's mean over all its channels and pixels, so the mean
    stays and the spread around it is scaled by f (torchvision's ColorJitter(contrast=strength)
    draws f the same way but blends with the grey-level mean and clips to [0, 1]; images here may
    be normalised, so nothing is clipped).
    """

    def __init__(self, strength: float):
        if not isinstance(strength, numbers.Real) or isinstance(strength, bool) or not 0 <= strength < np.inf:
            raise ValueError(f"ContrastJitter: strength must be a finite number >= 0, got {strength!r}")
        self.strength = float(strength)

    def _apply(self, images, rng):
        f = rng.uniform(max(0.0, 1.0 - self.strength), 1.0 + self.strength, size=len(images))
        f = f.astype(images.dtype)[:, None, None, None]
        mean = images.mean(axis=(1, 2, 3), keepdims=True)
        return mean + f * (images - mean)


def rgb_pca(images) -> tuple[np.ndarray, np.ndarray]:
    """Principal colour directions of RGB images (N, 3, H, W).

    Returns (eigenvalues (3,), eigenvectors (3, 3)) of the covariance of all N*H*W pixels seen as
    RGB 3-vectors (np.cov: divided by N*H*W - 1), largest eigenvalue first; eigenvector i is the
    COLUMN eigenvectors[:, i]. Computed in float64.
    """
    check_images(images, "rgb_pca", channels=3)
    pixels = images.transpose(1, 0, 2, 3).reshape(3, -1).astype(np.float64)
    if pixels.shape[1] < 2:
        raise ValueError(f"rgb_pca needs at least 2 pixels to estimate a covariance, got images {images.shape}")
    values, vectors = np.linalg.eigh(np.cov(pixels))
    order = np.argsort(values)[::-1]
    return np.clip(values[order], 0.0, None), vectors[:, order]


class PCAColorJitter(Transform):
    """Krizhevsky et al.'s PCA colour augmentation for RGB images (N, 3, H, W) (module docstring).

    PCAColorJitter(std=0.1, data=None)
    - std: standard deviation of the alphas (0.1 in the paper).
    - data: RGB images (M, 3, H, W) whose colour covariance defines lambda_i and p_i (usually the
      training set; `fit(data)` does the same later). Without it, each call uses the covariance
      of the batch it is given.
    Attributes after fitting: eigenvalues_ (3,), eigenvectors_ (3, 3) (columns).
    Every pixel of image n is shifted by eigenvectors_ @ (alpha_n * eigenvalues_), alpha_n ~ N(0, std^2 I).
    """

    def __init__(self, std: float = 0.1, data=None):
        if not isinstance(std, numbers.Real) or isinstance(std, bool) or not 0 <= std < np.inf:
            raise ValueError(f"PCAColorJitter: std must be a finite number >= 0, got {std!r}")
        self.std = float(std)
        self.eigenvalues_ = self.eigenvectors_ = None
        if data is not None:
            self.fit(data)

    def fit(self, data) -> "PCAColorJitter":
        """Take the principal colour directions from `data` (M, 3, H, W); returns self."""
        self.eigenvalues_, self.eigenvectors_ = rgb_pca(data)
        return self

    def __call__(self, images, rng=None):
        check_images(images, "PCAColorJitter", channels=3)
        return super().__call__(images, rng)

    def _apply(self, images, rng):
        if self.eigenvalues_ is None:
            values, vectors = rgb_pca(images)
        else:
            values, vectors = self.eigenvalues_, self.eigenvectors_
        alpha = rng.normal(0.0, self.std, size=(len(images), 3))
        delta = (alpha * values) @ vectors.T                              # (N, 3): sum_i alpha_i lambda_i p_i
        return images + delta.astype(images.dtype)[:, :, None, None]

    def __repr__(self) -> str:
        fitted = "" if self.eigenvalues_ is None else ", fitted"
        return f"PCAColorJitter(std={self.std}{fitted})"
