"""Whitening of the inputs: PCA and ZCA (Veta's workflow, "subtract mean, whitening"; Khan §5.2.4).

Per-pixel normalisation gives every input mean 0 and variance 1 but leaves them correlated.
Whitening also removes the correlations. Take the training examples as D-vectors x_n (an image
(C, H, W) is flattened to D = C*H*W), their mean m and covariance

    Sigma = (1/N) sum_n (x_n - m)(x_n - m)^T = U diag(lambda) U^T      (eigen-decomposition)

with orthonormal eigenvectors U[:, i] and eigenvalues lambda_1 >= ... >= lambda_D >= 0. Then

    PCA whitening:  z = diag(1 / sqrt(lambda + eps)) U^T (x - m)   (coordinates along the eigenvectors)
    ZCA whitening:  z = U diag(1 / sqrt(lambda + eps)) U^T (x - m)   (the same, rotated back to pixels)

The covariance of z over the training examples is diag(lambda / (lambda + eps)) (PCA), or U times
that times U^T (ZCA): the identity wherever lambda >> eps, while directions of tiny variance (often
noise, or pixels that never change) are damped instead of blown up. Among all matrices that whiten,
ZCA's is the one that moves x least, so ZCA-whitened images still look like images (their edges).

Written with row vectors as in code, z = (x - m) @ W: this is torchvision's
`LinearTransformation(transformation_matrix=W, mean_vector=m)`, with W = `matrix_`, m = `mean_`.
The statistics come from the training split only (`fit`), and the same m and W are applied to
every later split.
"""
from __future__ import annotations

import numbers

import numpy as np

__all__ = ["Whitening"]

KINDS = ("zca", "pca")


def _flat(X, who: str) -> np.ndarray:
    """Refuse anything but a float array of examples (N, ...) with N >= 1; return it as (N, D)."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{who} expects a numpy array of examples (N, D) or images (N, C, H, W), "
                        f"got {type(X).__name__}")
    if X.dtype.kind != "f":
        raise TypeError(f"{who} expects floating-point inputs (float32 or float64), got dtype {X.dtype}; "
                        "convert with X.astype(np.float32)")
    if X.ndim < 2 or len(X) == 0:
        raise ValueError(f"{who} expects a batch of examples (N, D) or images (N, C, H, W) with N >= 1, "
                         f"got shape {X.shape}; a single example x is x[None]")
    return X.reshape(len(X), -1)


class Whitening:
    """PCA or ZCA whitening, fitted on training inputs and applied to any split (module docstring).

    Whitening(kind="zca", eps=1e-5)
    - kind: "zca" (output has the input's shape: whitened images) or "pca" (output (N, D): the
      coordinates along the principal directions, largest variance first).
    - eps: added to every eigenvalue before the inverse square root, in the units of the inputs'
      variance; it damps the directions whose variance is not well above eps (whitened variance
      lambda / (lambda + eps) instead of 1). eps = 0 needs a covariance of full rank.

    `fit(X)` with X (N, D) or (N, C, H, W), N >= 2, computes in float64:
    - mean_ (D,): the mean example;
    - eigenvalues_ (D,): the covariance's eigenvalues (divided by N), largest first, those below
      rounding (D * max * machine epsilon) set to 0;
    - eigenvectors_ (D, D): the matching eigenvectors as COLUMNS;
    - matrix_ (D, D): W with z = (x - mean_) @ W.
    `whitening(X)` then maps (M, ...) inputs with the same number of features to whitened ones, in
    X's dtype: (M, ...) for ZCA, (M, D) for PCA.
    """

    def __init__(self, kind: str = "zca", eps: float = 1e-5):
        if kind not in KINDS:
            raise ValueError(f"Whitening: kind must be one of {KINDS}, got {kind!r}")
        if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not 0 <= eps < np.inf:
            raise ValueError(f"Whitening: eps must be a finite number >= 0, got {eps!r}")
        self.kind, self.eps = kind, float(eps)
        self.mean_ = self.eigenvalues_ = self.eigenvectors_ = self.matrix_ = None

    def fit(self, X) -> "Whitening":
        """Estimate mean_, the covariance's eigen-decomposition and matrix_ from X (N, ...); returns self."""
        flat = _flat(X, "Whitening.fit")
        if len(flat) < 2:
            raise ValueError(f"Whitening.fit needs at least 2 examples to estimate a covariance, got shape {X.shape}")
        flat = flat.astype(np.float64)
        mean = flat.mean(axis=0)
        centred = flat - mean
        values, vectors = np.linalg.eigh(centred.T @ centred / len(flat))
        values, vectors = values[::-1], vectors[:, ::-1]
        values = np.where(values > len(values) * max(values[0], 0.0) * np.finfo(np.float64).eps, values, 0.0)
        if self.eps == 0 and values[-1] == 0:
            rank = int(np.count_nonzero(values))
            raise ValueError(f"Whitening(eps=0): the covariance of the {len(flat)} examples has rank {rank} of "
                             f"{len(values)} (some directions never vary), so 1/sqrt(lambda) is infinite there; "
                             "use eps > 0")
        scaled = vectors / np.sqrt(values + self.eps)                    # U diag(1 / sqrt(lambda + eps))
        self.mean_, self.eigenvalues_, self.eigenvectors_ = mean, values, vectors
        self.matrix_ = scaled @ vectors.T if self.kind == "zca" else scaled
        return self

    def __call__(self, X) -> np.ndarray:
        """Whiten X (M, ...) with the fitted mean_ and matrix_: (M, ...) for ZCA, (M, D) for PCA."""
        if self.matrix_ is None:
            raise RuntimeError("this Whitening is not fitted yet: call whitening.fit(X_train) first")
        flat = _flat(X, "Whitening")
        if flat.shape[1] != len(self.mean_):
            raise ValueError(f"Whitening was fitted on examples of {len(self.mean_)} features, got shape {X.shape} "
                             f"({flat.shape[1]} features per example)")
        out = ((flat - self.mean_) @ self.matrix_).astype(X.dtype)
        return out.reshape(X.shape) if self.kind == "zca" else out

    def __repr__(self) -> str:
        fitted = "" if self.matrix_ is None else f", fitted on {len(self.mean_)} features"
        return f"Whitening(kind={self.kind!r}, eps={self.eps}{fitted})"
