"""`Sequential`: a chain of modules, forward left to right, backward right to left."""
from __future__ import annotations

from cnnlab.module import Module, no_input_grad

__all__ = ["Sequential"]


class Sequential(Module):
    """Layers applied in order: out = f_L(... f_2(f_1(x))).

    `backward(dout)` runs the chain rule in reverse: each layer receives dL/d(its output) and returns
    dL/d(its input), which is the upstream gradient of the layer before it (Tomasi's backward
    recursion). Build it from a list, `Sequential([Linear(4, 8), ReLU()])`, or from arguments,
    `Sequential(Linear(4, 8), ReLU())`. Indexing, slicing, `len` and iteration work as in PyTorch;
    parameters are named "0.weight", "0.bias", ...

    `backward(dout, needs_input_grad=False)` (a training step, where nobody uses dL/d(images)) does
    what PyTorch's autograd does when the input does not require a gradient: the layers before the
    first layer with parameters take no part (they have nothing to learn), that layer is told its
    input gradient is not wanted (`cnnlab.module.no_input_grad`), and the call returns None. Every
    parameter's `.grad` is the same as after `backward(dout)`, which still returns dx.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential expects Modules, but item {i} is {type(layer).__name__}: {layer!r}")
        self.layers = list(layers)

    def named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        if self.needs_input_grad:
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
            return dout
        first = next((i for i, layer in enumerate(self.layers) if layer.parameters()), len(self.layers))
        for layer in reversed(self.layers[first + 1:]):
            dout = layer.backward(dout)
        if first < len(self.layers):
            with no_input_grad(self.layers[first]):
                self.layers[first].backward(dout)
        return None

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def append(self, layer: Module) -> "Sequential":
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential.append expects a Module, got {type(layer).__name__}")
        self.layers.append(layer)
        return self
