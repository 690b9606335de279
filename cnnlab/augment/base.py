"""The transform protocol, `Compose`, input checks and `augmented_loader` (Khan §5.2.1).

A transform takes a batch of images (N, C, H, W) and a random generator and returns NEW images
(the input is never changed); labels are not its business. `t(images, rng) -> images` is the
image-only call; `t.apply_batch(images, labels, rng) -> (images, labels)` is the batch call that
training loops use, and for every transform but `MixSynthetic` it returns the labels untouched
(the very same array). Randomness comes only from `rng`: a numpy Generator, an int seed (the same
seed gives the same augmented batch, bit for bit), or None (the default) for cnnlab's library
generator, reset by `cnnlab.manual_seed` (see `cnnlab.rng`).
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.rng import as_generator

__all__ = ["Transform", "Compose", "AugmentedLoader", "augmented_loader", "check_images"]


def check_images(images, who: str, channels: int | None = None) -> np.ndarray:
    """Refuse anything but a float array of images (N, C, H, W) (with `channels` channels if given)."""
    if not isinstance(images, np.ndarray):
        raise TypeError(f"{who} expects images as a numpy array (N, C, H, W), got {type(images).__name__}")
    if images.dtype.kind != "f":
        raise TypeError(f"{who} expects floating-point images (float32 or float64), got dtype {images.dtype}; "
                        "convert with images.astype(np.float32)")
    if images.ndim != 4:
        raise ValueError(f"{who} expects a 4-D batch of images (N, C, H, W), got shape {images.shape} "
                         f"({images.ndim}-D); a single image (C, H, W) is images[None]")
    if channels is not None and images.shape[1] != channels:
        raise ValueError(f"{who} expects {channels} channels on axis 1 (RGB images (N, 3, H, W)), got shape "
                         f"{images.shape} with {images.shape[1]}")
    return images


def probability(p, who: str) -> float:
    if not isinstance(p, numbers.Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{who}: p must be a probability in [0, 1], got {p!r}")
    return float(p)


class Transform:
    """Base class. Subclasses define `_apply(images, rng) -> new images` (checked input, a Generator)."""

    needs_labels = False

    def __call__(self, images, rng=None):
        """images (N, C, H, W) float -> new images; rng: numpy Generator, int seed or None."""
        name = type(self).__name__
        check_images(images, name)
        return self._apply(images, as_generator(rng, name))

    def apply_batch(self, images, labels, rng=None):
        """(images, labels) -> (transformed images, the same labels)."""
        return self(images, rng), labels

    def _apply(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define _apply(images, rng)")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class Compose(Transform):
    """Apply transforms one after the other: `Compose([RandomCrop(28, 2), RandomHorizontalFlip()])`.

    All members draw from the one generator, in order. `compose(images, rng)` works when no member
    needs labels; with `MixSynthetic` inside, call `compose.apply_batch(images, labels, rng)`.
    """

    def __init__(self, transforms):
        transforms = list(transforms)
        for i, t in enumerate(transforms):
            if not isinstance(t, Transform):
                raise TypeError(f"Compose expects cnnlab.augment transforms, but item {i} is "
                                f"{type(t).__name__}: {t!r}")
        self.transforms = transforms
        self.needs_labels = any(t.needs_labels for t in transforms)

    def __call__(self, images, rng=None):
        if self.needs_labels:
            raise TypeError("this Compose contains a transform that changes labels (MixSynthetic): call "
                            "compose.apply_batch(images, labels, rng) -> (images, labels)")
        check_images(images, "Compose")
        gen = as_generator(rng, "Compose")
        for t in self.transforms:
            images = t(images, gen)
        return images

    def apply_batch(self, images, labels, rng=None):
        gen = as_generator(rng, "Compose")
        for t in self.transforms:
            images, labels = t.apply_batch(images, labels, gen)
        return images, labels

    def __len__(self) -> int:
        return len(self.transforms)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


class AugmentedLoader:
    """A loader whose batches are augmented on the fly; see `augmented_loader`.

    Iterating yields `transform.apply_batch(xb, yb, rng)` for every (xb, yb) of the wrapped loader;
    `len()` is the wrapped loader's. Attributes it does not have itself (X, y, batch_size, rng:
    the shuffling generator) are read from the wrapped loader, so it can stand in for a Trainer's
    `trainer.loader`. Its own generator is `augment_rng`.
    """

    def __init__(self, loader, transform, rng=None):
        if not hasattr(loader, "__iter__"):
            raise TypeError(f"augmented_loader expects an iterable of (images, labels) batches such as a "
                            f"DataLoader, got {type(loader).__name__}")
        if not (isinstance(transform, Transform) or callable(transform)):
            raise TypeError(f"augmented_loader expects a transform (e.g. cnnlab.augment.Compose([...])) or a "
                            f"function f(images, rng) -> images, got {type(transform).__name__}")
        self.loader, self.transform = loader, transform
        self.augment_rng = as_generator(rng, "augmented_loader")

    def __iter__(self):
        for xb, yb in self.loader:
            if hasattr(self.transform, "apply_batch"):
                yield self.transform.apply_batch(xb, yb, self.augment_rng)
            else:
                yield self.transform(xb, self.augment_rng), yb

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name):
        if name in ("loader", "transform", "augment_rng"):  # not set yet (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.loader, name)


def augmented_loader(loader, transform, rng=None) -> AugmentedLoader:
    """Wrap `loader` so that each batch (xb, yb) comes out as `transform.apply_batch(xb, yb, rng)`.

    Inputs:
    - loader: an iterable of (images (B, C, H, W), labels (B,)) batches, e.g. a cnnlab DataLoader.
    - transform: a cnnlab.augment transform, or any function f(images, rng) -> images.
    - rng: numpy Generator, int seed or None (a Generator seeded from cnnlab's library generator)
      for the augmentation, separate from the loader's shuffling.

    Every epoch sees new random augmentations of the same images. With a Trainer:
    `trainer.loader = augmented_loader(trainer.loader, transform, rng=1)` (a checkpoint then saves
    the shuffling generator but not `augment_rng`).
    """
    return AugmentedLoader(loader, transform, rng)
