"""How the widgets look inside a CNN (plain NumPy, no plotting), shared by the training dashboard and the
filter viewer.

- `train_reference_net(...)`: the CNN both widgets show by default (`cnnlab.models.default_cnn`) trained
  briefly on the shipped subset (the filter viewer's reference net, and what
  `data/make_filter_viewer_weights.py` saves);
- `conv_layers(net)`: find the Conv2d layers of any cnnlab net (whose feature maps and gradient maps the
  widgets record with `cnnlab.hooks.recording`);
- `check_net(net, who)`: refuse anything that is not a cnnlab network, in words.

The dashboard's training run is `widgets.dashboard_model.DashboardModel`; the thread that steps it is
`widgets._background.ChunkRunner`.
"""
from __future__ import annotations

import numpy as np

from cnnlab import Module
from cnnlab.data import load_fashion_mnist
from cnnlab.layers import Conv2d
from cnnlab.losses import CrossEntropyLoss
from cnnlab.metrics import accuracy, predict
from cnnlab.models import default_cnn
from cnnlab.optim import Adam
from cnnlab.rng import as_generator
from cnnlab.train import Trainer

__all__ = ["train_reference_net", "conv_layers", "check_net"]


def train_reference_net(epochs: int = 4, rng=0, steps: int | None = None):
    """`default_cnn(rng)` trained with Adam (lr 1e-3, batch 64) on the shipped subset's training split.

    steps, when given, stops earlier (after that many mini-batches). Returns (net, test_accuracy) with the
    accuracy on the subset's 1,000 test images.
    """
    gen = as_generator(rng, "train_reference_net")
    X, y, _ = load_fashion_mnist("train", source="subset")
    net = default_cnn(gen)
    trainer = Trainer(net, CrossEntropyLoss(), Adam(net.parameters(), lr=1e-3), X, y, batch_size=64, rng=gen)
    trainer.run(steps=steps, epochs=epochs)
    Xt, yt, _ = load_fashion_mnist("test", source="subset")
    return net.eval(), accuracy(predict(net, Xt), yt)


def conv_layers(net) -> list[tuple[str, Conv2d]]:
    """Every Conv2d of `net`, as (dotted name, layer), in the order the net was built."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, Conv2d)]


def check_net(net, who: str) -> None:
    if not isinstance(net, Module):
        raise TypeError(f"{who} expects a cnnlab network (a cnnlab.Module such as Sequential([...])), "
                        f"got {type(net).__name__}")
