"""cnnlab.augment: data augmentation, pure NumPy, composable and seeded (Khan §5.2.1).

Every transform maps a batch of images (N, C, H, W) and a random generator to new images and
leaves labels alone: `t(images, rng)`, or `t.apply_batch(images, labels, rng) -> (images, labels)`.
The exception is `MixSynthetic`, which swaps some examples for synthetic ones, labels included.
rng is a numpy Generator, an int seed, or None for cnnlab's library generator (`cnnlab.manual_seed`).

- `base`:      Transform, Compose, augmented_loader (augment a DataLoader's batches on the fly)
- `geometric`: RandomCrop (with padding), RandomHorizontalFlip, RandomVerticalFlip, RandomAffine
               (rotation, translation, scaling, shear as one affine warp, bilinear), affine()
- `color`:     ContrastJitter, PCAColorJitter (Krizhevsky et al.), rgb_pca
- `synthetic`: MixSynthetic

    aug = Compose([RandomCrop(28, padding=2), RandomHorizontalFlip(), RandomAffine(degrees=10)])
    loader = augmented_loader(DataLoader(X, y, 64, shuffle=True, rng=0), aug, rng=1)
"""
from cnnlab.augment.base import AugmentedLoader, Compose, Transform, augmented_loader
from cnnlab.augment.color import ContrastJitter, PCAColorJitter, rgb_pca
from cnnlab.augment.geometric import (RandomAffine, RandomCrop, RandomHorizontalFlip, RandomVerticalFlip,
                                      affine, affine_matrix, bilinear_sample)
from cnnlab.augment.synthetic import MixSynthetic

__all__ = ["Transform", "Compose", "augmented_loader", "AugmentedLoader", "RandomCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomAffine", "affine", "affine_matrix", "bilinear_sample", "ContrastJitter",
           "PCAColorJitter", "rgb_pca", "MixSynthetic"]
