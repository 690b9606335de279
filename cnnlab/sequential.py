"""`Sequential`: a chain of modules, forward left to right, backward right to left."""
from __future__ import annotations

from cnnlab.module import Module, Parameter, no_input_grad, run_backward

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

    A layer object may appear only once, and two layers may not share a Parameter: a layer keeps what
    its backward needs from its last forward and backward overwrites `.grad`, so a second use would
    silently corrupt the first one's gradient (lesson 02 shows how). Either is refused with an error.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential expects Modules, but item {i} is {type(layer).__name__}: {layer!r}")
        _refuse_sharing(layers)
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


def _refuse_sharing(layers) -> None:
    """ValueError if a module object occurs twice among `layers` and their sub-modules, or two of them
    hold the same Parameter (tied weights)."""
    modules, params = {}, {}
    for i, layer in enumerate(layers):
        for name, module in layer.named_modules(str(i)):
            if id(module) in modules:
                raise ValueError(
                    f"Sequential: {name} ({type(module).__name__}) is the same object as {modules[id(module)]}; a "
                    f"layer keeps what its backward needs from its last forward, so one object cannot serve two "
                    f"places: create a second {type(module).__name__}")
            modules[id(module)] = name
            for pname, p in vars(module).items():
                if isinstance(p, Parameter):
                    where = f"{name}.{pname}"
                    if id(p) in params:
                        raise ValueError(
                            f"Sequential: {where} and {params[id(p)]} are the same Parameter (tied weights); each "
                            f"layer's backward overwrites .grad, so the gradient of a shared weight would be wrong: "
                            f"give each layer its own weight, or add the per-use gradients by hand (lesson 02)")
                    params[id(p)] = where
