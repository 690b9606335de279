"""cnnlab.layers: the building blocks of a network, one concept per module.

Each layer is a `cnnlab.Module` with `forward(x)` and `backward(dout) -> dx`, plain NumPy on one
screen. The convolution and pooling layers call a pair of kernels (`cnnlab.kernels`: `fast` by
default, `naive` loops, or a student's own).
"""
from cnnlab.layers.activations import LeCunTanh, ReLU, Sigmoid, Softmax, Tanh
from cnnlab.layers.batchnorm import BatchNorm1d, BatchNorm2d
from cnnlab.layers.conv import Conv2d
from cnnlab.layers.dropout import DropConnect, Dropout
from cnnlab.layers.linear import Linear
from cnnlab.layers.mapcomb import MapCombination
from cnnlab.layers.pooling import AvgPool2d, MaxPool2d
from cnnlab.layers.shape import Flatten
from cnnlab.layers.subsample import Subsample2d

__all__ = [
    "Linear",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "Subsample2d",
    "Flatten",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "LeCunTanh",
    "Softmax",
    "Dropout",
    "DropConnect",
    "BatchNorm1d",
    "BatchNorm2d",
    "MapCombination",
]
