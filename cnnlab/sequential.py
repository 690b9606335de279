"""`Sequential`: a chain of modules, forward left to right, backward right to left."""
from __future__ import annotations

from cnnlab.module import Module, no_input_grad, run_backward

__all__ = ["Sequential"]


class Sequential(Module):
    """Layers applied in order: out = f_L(... f_2(f_1(x))).

    `backward(dout)` runs the chain rule in reverse: each layer receives dL/d(its output) and returns
    dL/d(its input), which is the upstream gradient of the layer before it (Tomasi's backward
    recursion). Build it from a list, `Sequential([Linear(4, 8), ReLU()])`, or from arguments,
    `Sequential(Linear(4, 8), ReLU())`. Indexing, slicing, `len` and iteration work as in PyTorch;
    parameters are named "0.weight", "0.bias", ...

    Each layer runs as `layer(x)` forward and through `run_backward(layer, dout)` backward, so its
    hooks fire and a `dout` of the wrong shape is refused with the layer's name.

    Inside `no_input_grad(net)` (a training step, where nobody uses dL/d(images)) it does what
    PyTorch's autograd does when the input does not require a gradient: the layers before the
    first layer with parameters take no part (they have nothing to learn), that layer is told its
    input gradient is not wanted, and backward returns None. Every parameter's `.grad` is the same
    as after a plain `backward(dout)`.
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
            x = layer(x)
        return x

    def backward(self, dout):
        if self.needs_input_grad:
            for layer in reversed(self.layers):
                dout = run_backward(layer, dout)
            return dout
        first = next((i for i, layer in enumerate(self.layers) if layer.parameters()), len(self.layers))
        for layer in reversed(self.layers[first + 1:]):
            dout = run_backward(layer, dout)
        if first < len(self.layers):
            with no_input_grad(self.layers[first]):
                run_backward(self.layers[first], dout)
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
