"""The course's training recipe for Fashion-MNIST, as used by `python -m cnnlab train`.

Every choice is one the lessons teach and measure:
- architecture: two convolution blocks (Conv2d 3x3 -> BatchNorm2d -> ReLU -> MaxPool2d 2) and a
  classifier (Linear -> ReLU -> Dropout -> Linear): "2 Conv + pooling + BN" in the benchmark table
  shipped with Fashion-MNIST (lessons 04, 09, 10);
- initialisation: He (kaiming_normal) for the ReLU layers, zero biases (lesson 08);
- inputs standardised with the mean and std of the training images only (lesson 10);
- regularisation: batch norm and dropout (keep 0.7); random crops with 2-pixel padding and
  horizontal flips on request (lesson 09): within the 15-minute budget they cost more accuracy (the
  net under-fits: 90.7% after 10 epochs) than they win;
- optimizer: Adam, lr 1e-3, batch 64, cosine learning-rate schedule over the run (lessons 06-07);
- model selection: 5,000 training images held out for validation; the test set is scored once.
"""
from __future__ import annotations

import time

import numpy as np

from cnnlab.sequential import Sequential

__all__ = ["recipe_cnn", "OPTIMIZER_NAMES", "make_optimizer", "train_recipe"]

OPTIMIZER_NAMES = ("adam", "sgd", "momentum", "nesterov", "rmsprop", "adagrad", "adadelta")


def recipe_cnn(rng=0, width: int = 32, hidden: int = 128, p_keep: float = 0.7,
               batch_norm: bool = True) -> Sequential:
    """The recipe's CNN for (N, 1, 28, 28) inputs: conv(width) -> conv(2 width) -> hidden -> 10 classes."""
    from cnnlab import init
    from cnnlab.layers import BatchNorm2d, Conv2d, Dropout, Flatten, Linear, MaxPool2d, ReLU

    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def block(c_in, c_out):
        layers = [Conv2d(c_in, c_out, 3, padding=1, rng=gen)]
        layers += [BatchNorm2d(c_out)] if batch_norm else []
        return layers + [ReLU(), MaxPool2d(2)]

    net = Sequential(block(1, width) + block(width, 2 * width) + [
        Flatten(), Linear(2 * width * 7 * 7, hidden, rng=gen), ReLU(), Dropout(p_keep, rng=gen),
        Linear(hidden, 10, rng=gen)])
    init.apply(net, "kaiming_normal", rng=gen)
    return net


def make_optimizer(name: str, params, lr: float):
    from cnnlab import optim

    factories = {"adam": lambda: optim.Adam(params, lr=lr), "sgd": lambda: optim.SGD(params, lr=lr),
                 "momentum": lambda: optim.SGD(params, lr=lr, momentum=0.9),
                 "nesterov": lambda: optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
                 "rmsprop": lambda: optim.RMSprop(params, lr=lr, alpha=0.9),
                 "adagrad": lambda: optim.Adagrad(params, lr=lr),
                 "adadelta": lambda: optim.Adadelta(params, lr=lr)}
    if name not in factories:
        raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_NAMES)}; got {name!r}")
    return factories[name]()


def train_recipe(full: bool = False, epochs: int = 12, lr: float = 1e-3, batch_size: int = 64,
                 optimizer: str = "adam", seed: int = 0, augment: bool = False, val_size: int = 5000,
                 checkpoint=None, resume: bool = False, progress: bool = True, width: int = 32,
                 log=print) -> dict:
    """Train the recipe on the shipped subset (or the full set) and score the test set once.

    Returns {"test_accuracy", "test_loss", "val_accuracy", "seconds", "epochs", "history", "source",
    "net"}. With `checkpoint`, the training state is saved after every epoch (atomically) and, with
    `resume`, training continues from it bit-exactly.
    """
    from cnnlab.augment import Compose, RandomCrop, RandomHorizontalFlip
    from cnnlab.data import load_fashion_mnist, train_val_split
    from cnnlab.losses import CrossEntropyLoss
    from cnnlab.metrics import accuracy, predict
    from cnnlab.optim import CosineAnnealingLR
    from cnnlab.train import ModelCheckpoint, Trainer, evaluate

    source = "full" if full else "subset"
    X, y, _ = load_fashion_mnist("train", source=source)
    X_test, y_test, _ = load_fashion_mnist("test", source=source)
    val_fraction = min(val_size / len(X), 0.1)
    X_train, y_train, X_val, y_val = train_val_split(X, y, val_fraction=val_fraction, rng=seed)
    mean, std = float(X_train.mean()), float(X_train.std())  # from the training images only
    X_train, X_val, X_test = ((a - mean) / std for a in (X_train, X_val, X_test))
    net = recipe_cnn(seed, width=width)
    opt = make_optimizer(optimizer, net.parameters(), lr)
    callbacks = [ModelCheckpoint(checkpoint)] if checkpoint else []
    trainer = Trainer(net, CrossEntropyLoss(), opt, X_train, y_train, batch_size=batch_size, rng=seed,
                      X_val=X_val, y_val=y_val, scheduler=CosineAnnealingLR(opt, T_max=epochs),
                      callbacks=callbacks,
                      augment=Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()]) if augment else None)
    if resume:
        if not checkpoint:
            raise ValueError("resume=True needs the checkpoint path to resume from")
        trainer.load(checkpoint)
        log(f"resumed from {checkpoint} at epoch {trainer.epoch}")
    log(f"training on {len(X_train)} images ({source} set), validating on {len(X_val)}; "
        f"{optimizer} lr={lr:g}, batch {batch_size}, {epochs} epochs")
    t0 = time.perf_counter()
    history = trainer.fit(epochs, progress=progress)
    seconds = time.perf_counter() - t0
    for e in history.epochs[-3:]:
        log(f"epoch {e['epoch']}: train loss {e['train_loss']:.4f}, val loss {e['val_loss']:.4f}, "
            f"val accuracy {e['val_accuracy']:.4f}")
    test_loss, _ = evaluate(net, CrossEntropyLoss(), X_test, y_test)
    test_accuracy = accuracy(predict(net, X_test), y_test)
    log(f"{history.status}: {history.message}")
    log(f"test accuracy {test_accuracy:.4f} on {len(X_test)} images (scored once), "
        f"training took {seconds:.0f} s")
    return {"test_accuracy": test_accuracy, "test_loss": test_loss,
            "val_accuracy": history.epochs[-1]["val_accuracy"] if history.epochs else None,
            "seconds": seconds, "epochs": trainer.epoch, "history": history, "source": source, "net": net}
