"""The small networks of the course, in one place: each is a function that builds a fresh `Sequential`.

| function | what | parameters | used by |
|---|---|---|---|
| `tiny_mlp` | Linear - ReLU - Linear on 14 x 14 images | 6,634 | lesson 06, `lr_explorer` |
| `race_net` | one convolution and a classifier | 13,610 | lesson 07, `cnn_race` |
| `small_cnn` | two 5 x 5 convolutions, no padding | 5,994 | lesson 08 (LSUV, pre-training) |
| `regularization_mlp` | 784 - 128 - 10, optional BN, dropout, drop-connect | 101,770 | lesson 09, its explorer |
| `default_cnn` | two convolutions and one Linear | 9,226 | `training_dashboard`, `filter_viewer` |
| `reference_cnn` | two convolutions, two Linear | 206,922 | `python -m cnnlab bench` |
| `recipe_cnn` | two conv blocks with batch norm, dropout | 421,834 | `python -m cnnlab train`, the benchmark |

Every network takes images (N, 1, 28, 28) (the MLPs: flat or flattened features) and returns
(N, num_classes) logits, in float32 (`net.astype(np.float64)` for gradient checks). `rng` is a
numpy Generator, an int seed, or None (cnnlab's library generator, see `cnnlab.rng`); the layers
draw from it in the order they are listed, so the same seed gives the same starting weights, bit for
bit. (`regularization_mlp` gives each layer its own seed instead: see there.)
"""
from __future__ import annotations

from cnnlab.layers import (BatchNorm1d, BatchNorm2d, Conv2d, DropConnect, Dropout, Flatten, Linear, MaxPool2d,
                           ReLU)
from cnnlab.rng import as_generator
from cnnlab.sequential import Sequential

__all__ = ["tiny_mlp", "race_net", "small_cnn", "regularization_mlp", "default_cnn", "reference_cnn",
           "recipe_cnn"]


def tiny_mlp(in_features: int = 196, hidden: int = 32, num_classes: int = 10, rng=None) -> Sequential:
    """Linear(in_features, hidden) -> ReLU -> Linear(hidden, num_classes): the small task's network.

    Input (N, in_features), by default 196 = 14 x 14 downsampled Fashion-MNIST images
    (`cnnlab.data.small_fashion_mnist`); output (N, num_classes) logits. 6,634 parameters with the
    defaults (196 * 32 + 32 + 32 * 10 + 10). Used by lesson 06, `widgets.lr_explorer` (through
    `widgets.training_run.TrainingRun`) and lesson 06's exercise check.
    """
    gen = as_generator(rng, "tiny_mlp")
    return Sequential(Linear(in_features, hidden, rng=gen), ReLU(), Linear(hidden, num_classes, rng=gen))


def race_net(rng=None) -> Sequential:
    """The racing CNN: Conv2d(1, 8, 3) - ReLU - MaxPool2d(2) - Flatten - Linear(8*13*13, 10).

    Input (N, 1, 28, 28) images, output (N, 10) logits; 13,610 parameters (8 * 9 + 8 + 1352 * 10 + 10).
    Used by lesson 07 and `widgets.cnn_race` (every optimizer of the race starts from its weights).
    """
    gen = as_generator(rng, "race_net")
    return Sequential(Conv2d(1, 8, 3, rng=gen), ReLU(), MaxPool2d(2), Flatten(), Linear(8 * 13 * 13, 10, rng=gen))


def small_cnn(rng=None, num_classes: int = 10) -> Sequential:
    """A LeNet-like CNN without padding: Conv2d(1, 8, 5) - ReLU - MaxPool2d(2) - Conv2d(8, 16, 5) - ReLU -
    MaxPool2d(2) - Flatten - Linear(16*4*4, num_classes).

    Input (N, 1, 28, 28) images (28 -> 24 -> 12 -> 8 -> 4), output (N, num_classes) logits; 5,994
    parameters for 10 classes (208 + 3,216 + 2,570), 4,709 for 5. Used by lesson 08 (LSUV, supervised
    pre-training and fine-tuning) and the pre-training tests.
    """
    gen = as_generator(rng, "small_cnn")
    return Sequential([Conv2d(1, 8, 5, rng=gen), ReLU(), MaxPool2d(2), Conv2d(8, 16, 5, rng=gen), ReLU(),
                       MaxPool2d(2), Flatten(), Linear(16 * 4 * 4, num_classes, rng=gen)])


def regularization_mlp(p_keep: float = 1.0, batchnorm: bool = False, dropconnect: bool = False, seed: int = 0,
                       hidden: int = 128, dropconnect_p_keep: float = 0.5) -> Sequential:
    """Flatten - Linear(784, hidden) [- BatchNorm1d] - ReLU [- Dropout(p_keep)] - Linear or DropConnect(hidden, 10).

    A network deliberately too big for the few hundred images it is trained on, so that regularisation
    has something to fix. Input (N, 1, 28, 28) or (N, 784), output (N, 10) logits; 101,770 parameters
    with hidden = 128 (784 * 128 + 128 + 128 * 10 + 10; batch norm adds 2 * hidden).
    Each layer has its own seed (first Linear seed + 11, output layer seed + 12, dropout mask seed + 13),
    so switching a layer on or off leaves the others' starting weights as they were; DropConnect
    draws its weights exactly as Linear does from the same seed. dropconnect_p_keep: the keep
    probability of the drop-connect output layer. Used by lesson 09 and `widgets.regularization_explorer`.
    """
    layers = [Flatten(), Linear(784, hidden, rng=seed + 11)]
    if batchnorm:
        layers.append(BatchNorm1d(hidden))
    layers.append(ReLU())
    if p_keep < 1:
        layers.append(Dropout(p_keep, rng=seed + 13))
    layers.append(DropConnect(hidden, 10, dropconnect_p_keep, rng=seed + 12) if dropconnect
                  else Linear(hidden, 10, rng=seed + 12))
    return Sequential(layers)


def default_cnn(rng=None) -> Sequential:
    """The widgets' CNN: Conv2d(1, 8, 5, padding=2) - ReLU - MaxPool2d(2) - Conv2d(8, 16, 3, padding=1) - ReLU -
    MaxPool2d(2) - Flatten - Linear(784, 10).

    Input (N, 1, 28, 28) images, output (N, 10) logits; 9,226 parameters (208 + 1,168 + 7,850). The 5x5
    first layer leaves room for the smooth, structured filters Veta asks to look for. Used by
    `widgets.training_dashboard` and `widgets.filter_viewer` when they are given no network (the filter
    viewer's shipped weights are this network trained: `data/make_filter_viewer_weights.py`).
    """
    gen = as_generator(rng, "default_cnn")
    return Sequential(Conv2d(1, 8, 5, padding=2, rng=gen), ReLU(), MaxPool2d(2),
                      Conv2d(8, 16, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
                      Flatten(), Linear(16 * 7 * 7, 10, rng=gen))


def reference_cnn(rng=None) -> Sequential:
    """The benchmark's CNN: Conv2d(1, 16, 3, padding=1) - ReLU - MaxPool2d(2) - Conv2d(16, 32, 3, padding=1) -
    ReLU - MaxPool2d(2) - Flatten - Linear(1568, 128) - ReLU - Linear(128, 10).

    Input (N, 1, 28, 28) images, output (N, 10) logits; 206,922 parameters (160 + 4,640 + 200,832 +
    1,290). Used by `python -m cnnlab bench` (`cnnlab.bench`) and the speed tests.
    """
    gen = as_generator(rng, "reference_cnn")
    return Sequential(
        Conv2d(1, 16, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
        Flatten(), Linear(32 * 7 * 7, 128, rng=gen), ReLU(), Linear(128, 10, rng=gen))


def recipe_cnn(rng=None, width: int = 32, hidden: int = 128, p_keep: float = 0.7,
               batch_norm: bool = True) -> Sequential:
    """The course's recipe network: two conv blocks (Conv2d 3x3, padding 1 -> BatchNorm2d -> ReLU -> MaxPool2d 2),
    then Flatten -> Linear(2 width * 7 * 7, hidden) -> ReLU -> Dropout(p_keep) -> Linear(hidden, 10);
    He (kaiming_normal) initialisation with zero biases, the output layer's weights then scaled by 0.1 so that
    every class starts near probability 1/10 and the initial loss near ln 10 (lesson 10, "Babysitting a run").

    Input (N, 1, 28, 28) images, output (N, 10) logits; 421,834 parameters with the defaults (convolutions
    320 + 18,496, batch norm 64 + 128, Linear 401,536 + 1,290). batch_norm=False leaves the BatchNorm2d
    layers out. rng draws the layers' default weights, then the He weights; the Dropout layer keeps
    drawing its masks from it during training. Used by `python -m cnnlab train` (`cnnlab.recipes`) and the benchmark
    (`python -m cnnlab bench --network recipe_cnn`).
    """
    from cnnlab import init

    gen = as_generator(rng, "recipe_cnn")

    def block(c_in, c_out):
        layers = [Conv2d(c_in, c_out, 3, padding=1, rng=gen)]
        layers += [BatchNorm2d(c_out)] if batch_norm else []
        return layers + [ReLU(), MaxPool2d(2)]

    net = Sequential(block(1, width) + block(width, 2 * width) + [
        Flatten(), Linear(2 * width * 7 * 7, hidden, rng=gen), ReLU(), Dropout(p_keep, rng=gen),
        Linear(hidden, 10, rng=gen)])
    init.apply(net, "kaiming_normal", rng=gen)
    net[-1].weight.data *= 0.1  # small scores at the start: the initial loss is ln C, not a confident guess
    return net
