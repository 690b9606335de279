"""cnnlab.data: the Fashion-MNIST images the course trains on, and how to feed them to a network.

- `load_fashion_mnist(split, root=None, source="auto", download=False, system=None)` -> FashionMNIST(X, y, classes)
- `CLASSES`: the ten class names, `CLASSES[label]`
- `locate_fashion_mnist(root=None, system=None)`, `download_fashion_mnist(root=None)`: the full set
  (`system=False` or `CNNLAB_SYSTEM_DATA=0` ignores Debian's system-wide copy)
- `DataLoader(X, y, batch_size, shuffle, drop_last, rng)`: mini-batches, one epoch per `iter()`
- `train_val_split(X, y, val_fraction, rng, stratify=True)`: a held-out validation set
- `DataError`: a data file is damaged (a ValueError whose message says how to repair it)
- `read_idx`, `write_idx`: the IDX file format of (Fashion-)MNIST
- `small_fashion_mnist(n_train, n_val, seed)`, `downsample_flat(X, factor)`: the small task of lessons 06
  and later (14 x 14 images, flattened)
- `Whitening(kind="zca", eps)`: PCA or ZCA whitening, `fit` on the training split, then applied to any split
"""
from cnnlab.data.batches import DataLoader, train_val_split
from cnnlab.data.fashion_mnist import (CLASSES, FashionMNIST, download_fashion_mnist,
                                       load_fashion_mnist, locate_fashion_mnist)
from cnnlab.data.idx import DataError, read_idx, write_idx
from cnnlab.data.small import downsample_flat, small_fashion_mnist
from cnnlab.data.whitening import Whitening

__all__ = ["CLASSES", "FashionMNIST", "load_fashion_mnist", "locate_fashion_mnist",
           "download_fashion_mnist", "DataLoader", "train_val_split", "DataError",
           "read_idx", "write_idx", "small_fashion_mnist", "downsample_flat", "Whitening"]
