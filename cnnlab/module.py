"""Parameters and modules: the two building blocks of every network in cnnlab.

A network is a tree of `Module`s. Each module computes `forward(x)` and, given the gradient of the
loss with respect to its output, `backward(dout)` returns the gradient with respect to its input and
*overwrites* the `.grad` of its own parameters (Veta's modular back-propagation: every layer knows
its forward, its backward w.r.t. the input and its backward w.r.t. its parameters).

Names follow PyTorch (`parameters()`, `train()`, `eval()`, `state_dict()`, ...) so that what a
student learns here transfers; unlike PyTorch there is no autograd: backward is written by hand.

Hooks, as in PyTorch: `register_forward_hook(hook)` calls hook(module, (x,), out) after every
`module(x)`; `register_full_backward_hook(hook)` calls hook(module, (dx,), (dout,)) after the
module's backward when a container runs it (`run_backward`, which `Sequential` uses). Both return
a handle whose `remove()` takes the hook off. Nothing else happens around a module's own
`forward` and `backward`: a subclass's methods are called as written.

Skipping an input gradient nobody needs. PyTorch never computes dL/d(images): the images do not
require a gradient, so autograd tells the first convolution (`ctx.needs_input_grad`) that its input
gradient is not wanted. Here the caller says so: inside `with no_input_grad(net):` the module's
attribute `needs_input_grad` is False, `net.backward(dout)` writes every parameter's `.grad` as usual,
and a module that can save work reads the flag (Conv2d skips its dx GEMM and col2im, Linear its dx
product, and both return None; Sequential skips the layers before its first layer with parameters
and tells that layer). Other modules compute dx as always and the caller discards it. Outside the
block nothing changes: `backward(dout)` returns dx, which gradient checks, Jacobians and saliency
maps need.
"""
from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Iterator

import numpy as np

from cnnlab.hooks import RemovableHandle

if TYPE_CHECKING:
    from cnnlab.summary import Summary

__all__ = ["Parameter", "Module", "RemovableHandle", "ForwardNotRunError", "no_input_grad", "run_backward",
           "train_mode", "eval_mode"]


class Parameter:
    """A trainable array and its gradient.

    Attributes:
    - data: ndarray, the value (float32 by default; any float dtype).
    - grad: ndarray of the same shape and dtype, zeros at start; written by the owning module's
      `backward` (overwritten, never accumulated).
    - requires_grad: when False, optimizers leave the parameter alone (a frozen layer).
    """

    def __init__(self, data, requires_grad: bool = True):
        data = np.array(data, copy=True)
        if data.dtype.kind not in "fi":
            raise TypeError(f"Parameter data must be numeric, got dtype {data.dtype}")
        if data.dtype.kind == "i":
            data = data.astype(np.float32)
        self.data = data
        self.grad = np.zeros_like(data)
        self.requires_grad = bool(requires_grad)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def astype(self, dtype) -> "Parameter":
        """Convert value and gradient to `dtype` in place; returns self."""
        self.data = self.data.astype(dtype, copy=False)
        self.grad = self.grad.astype(dtype, copy=False)
        return self

    def __repr__(self) -> str:
        frozen = "" if self.requires_grad else ", requires_grad=False"
        return f"Parameter(shape={self.shape}, dtype={self.dtype}{frozen})"


def _loadable(name: str, value, target: np.ndarray) -> np.ndarray:
    """`value` converted to `target`'s dtype for `load_state_dict`, or an error saying why it cannot be."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"load_state_dict: {name!r} must be an array of numbers, got {type(value).__name__} "
                        f"({error})") from None
    if array.shape != target.shape:
        raise ValueError(f"load_state_dict: {name!r} has shape {target.shape} in the module but "
                         f"{array.shape} in the state dict")
    floating = target.dtype.kind == "f"
    if array.dtype.kind not in ("fiu" if floating else "iu"):
        raise TypeError(f"load_state_dict: {name!r} is {target.dtype} in the module, so the state dict must "
                        f"hold {'real numbers' if floating else 'integers'}; got dtype {array.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(target.dtype)
    if floating and np.any(np.isfinite(array) & ~np.isfinite(converted)):
        raise ValueError(f"load_state_dict: {name!r} holds values up to {np.max(np.abs(array))}, too large for "
                         f"the module's {target.dtype} (they would become inf)")
    if not floating and np.any(converted != array):
        raise ValueError(f"load_state_dict: {name!r} holds values outside the range of the module's "
                         f"{target.dtype}: {array}")
    return converted


class ForwardNotRunError(AttributeError, RuntimeError):
    """A module has no such attribute: usually a value its forward saves, asked for by a backward run first."""


@contextlib.contextmanager
def no_input_grad(module):
    """Within the block, `module.needs_input_grad` is False; afterwards it is what it was (even after an error).

    A training step runs `with no_input_grad(net): net.backward(dout)`: nobody uses dL/d(images),
    so the modules that can skip computing their input gradient do (see the module docstring).
    """
    missing = object()
    previous = vars(module).get("needs_input_grad", missing)
    module.needs_input_grad = False
    try:
        yield module
    finally:
        if previous is missing:
            del module.needs_input_grad
        else:
            module.needs_input_grad = previous


class Module:
    """Base class of every layer and network.

    A subclass defines `forward(x) -> out` and `backward(dout) -> dx`:
    - x: the input, e.g. images of shape (N, C, H, W) or features of shape (N, D);
    - dout: dL/d(out), the same shape as `out`;
    - dx: dL/dx, the same shape as `x`; `backward` also overwrites each parameter's `.grad`.

    `module(x)` runs `forward(x)` and then the forward hooks; a container runs a child's backward
    with `run_backward(child, dout)`, which checks `dout` against the shape of the child's last
    output and then calls the backward hooks. A module's own `forward` and `backward` are never
    wrapped: a subclass with a plain `backward(self, dout)` works anywhere.

    Inside `no_input_grad(module)` the attribute `needs_input_grad` is False (otherwise True, a
    class attribute), and a `backward` that can skip computing dx reads it (see the module
    docstring).

    Parameters (`Parameter` attributes), sub-modules (`Module` attributes, or lists of them) and
    buffers (arrays registered with `register_buffer`, e.g. BatchNorm's running mean) are found
    in the order they were assigned, so a layer that sets `self.weight` before `self.bias` lists
    weight first, as PyTorch does.
    """

    training: bool = True
    needs_input_grad: bool = True   # False only inside `with no_input_grad(module):`

    # --- computation -------------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not define forward(x)")

    def backward(self, dout):
        raise NotImplementedError(f"{type(self).__name__} does not define backward(dout)")

    def __call__(self, x):
        """forward(x), then each forward hook (a hook that returns a value replaces the output)."""
        out = self.forward(x)
        for hook in list(self.__dict__.get("_forward_hooks", {}).values()):
            result = hook(self, (x,), out)
            if result is not None:
                out = result
        self.__dict__["_output_shape"] = getattr(out, "shape", None)
        return out

    def __getattr__(self, name):
        # reached only when an attribute is missing, typically a value that forward saves for backward
        kind = type(self).__name__
        if name.startswith("__"):
            raise AttributeError(f"{kind!r} object has no attribute {name!r}")
        raise ForwardNotRunError(f"{kind!r} object has no attribute {name!r} (if forward saves it, "
                                 f"{kind}.backward() was called before {kind}.forward())")

    # --- hooks ---------------------------------------------------------------------------------
    def register_forward_hook(self, hook) -> "RemovableHandle":
        """Call hook(module, (x,), out) after every `module(x)`; returns a handle (`handle.remove()`)."""
        return RemovableHandle(self.__dict__.setdefault("_forward_hooks", {}), hook)

    def register_full_backward_hook(self, hook) -> "RemovableHandle":
        """Call hook(module, (dx,), (dout,)) after the module's backward, when a container runs it
        (`run_backward`); dx is None when the input gradient was skipped. A hook that returns a
        tuple replaces (dx,). Returns a handle (`handle.remove()`)."""
        return RemovableHandle(self.__dict__.setdefault("_backward_hooks", {}), hook)

    # --- the tree: children, parameters, buffers ------------------------------------------
    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, Module):
                        yield f"{name}.{i}", item

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module (named `prefix`) and every descendant, depth first, in assignment order."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for mod_name, module in self.named_modules(prefix):
            for name, value in vars(module).items():
                if isinstance(value, Parameter):
                    yield (f"{mod_name}.{name}" if mod_name else name), value

    def parameters(self) -> list[Parameter]:
        """Every Parameter of this module and its sub-modules (weight before bias), each once.

        A Parameter reachable by two names (a module referenced twice) is listed once, so an optimizer
        built from `net.parameters()` steps it once. (Sequential refuses a layer used at two places.)
        """
        unique = {id(p): p for _, p in self.named_parameters()}
        return list(unique.values())

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Keep `value` as a non-trainable array that is saved in `state_dict` and cast by `astype`."""
        buffers = self.__dict__.setdefault("_buffer_names", [])
        if name not in buffers:
            buffers.append(name)
        setattr(self, name, np.asarray(value))

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, module in self.named_modules(prefix):
            for name in module.__dict__.get("_buffer_names", []):
                yield (f"{mod_name}.{name}" if mod_name else name), getattr(module, name)

    # --- modes, dtype, gradients -----------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active, batch statistics); returns self."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off, running statistics); returns self."""
        return self.train(False)

    def astype(self, dtype) -> "Module":
        """Cast every parameter, gradient and float buffer to `dtype` (e.g. np.float64 for gradient checks)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"astype expects a floating dtype such as np.float32 or np.float64, got {dtype}")
        for p in self.parameters():
            p.astype(dtype)
        for module in self.modules():
            for name in module.__dict__.get("_buffer_names", []):
                value = getattr(module, name)
                if value.dtype.kind == "f":
                    setattr(module, name, value.astype(dtype))
        return self

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad[...] = 0

    # --- saving and loading ----------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, keyed by dotted name ("0.weight", "3.running_mean")."""
        state = OrderedDict((name, p.data.copy()) for name, p in self.named_parameters())
        state.update((name, np.array(b, copy=True)) for name, b in self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy arrays from `state_dict` (name -> array, as `state_dict()` returns) into this module.

        All or nothing: every name, shape and dtype is checked, and every value converted to its
        target's dtype, before anything is assigned. Raises KeyError listing missing or unexpected
        names (when `strict`); ValueError on a shape mismatch or a value its target's dtype cannot
        hold (a finite float that would overflow to inf, an integer count out of range); TypeError
        on a value that is not an array of real numbers (integers only for integer buffers).
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a mapping name -> array (what state_dict() returns), "
                            f"got {type(state_dict).__name__}")
        params = dict(self.named_parameters())
        buffers = dict(self.named_buffers())
        own = set(params) | set(buffers)
        missing = sorted(own - set(state_dict))
        unexpected = sorted(set(state_dict) - own)
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        updates = []
        for name, value in state_dict.items():
            if name in own:
                target = params[name].data if name in params else buffers[name]
                updates.append((target, _loadable(name, value, target)))
        for target, value in updates:  # nothing below can fail: every value already has its target's shape and dtype
            target[...] = value

    # --- display ---------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            child_repr = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {child_repr}")
        lines.append(")")
        return "\n".join(lines)

    def summary(self, input_shape) -> "Summary":
        """A table of every layer's output shape and parameter count for one input.

        input_shape: the shape of one example without the batch axis, e.g. (1, 28, 28).
        Runs one forward pass in eval mode on zeros (batch of 2) and restores the mode.
        """
        from cnnlab.summary import Summary  # local import: summary builds on this module

        return Summary.of(self, input_shape)


def run_backward(module: Module, dout):
    """`module.backward(dout)`, checked and hooked: what a container calls for each of its modules.

    Refuses a `dout` that is not an array of the shape of the module's last output (when it ran as
    `module(x)`), then calls the backward and each backward hook with ((dx,), (dout,)). Returns dx.
    """
    name = type(module).__name__
    if not isinstance(dout, np.ndarray):
        raise TypeError(f"{name}.backward() expects dout as a numpy array, got {type(dout).__name__}")
    expected = module.__dict__.get("_output_shape")
    if expected is not None and dout.shape != expected:
        raise ValueError(f"{name}.backward() expected dout of shape {expected} (the shape its forward returned), "
                         f"got {dout.shape}")
    dx = module.backward(dout)
    for hook in list(module.__dict__.get("_backward_hooks", {}).values()):
        result = hook(module, (dx,), (dout,))
        if result is not None:
            dx = result[0]
    return dx


@contextlib.contextmanager
def train_mode(net: Module, mode: bool = True):
    """Run the block with `net.train(mode)`, then give every sub-module back its own mode.

    Unlike `net.train(was_training)`, which sets one mode everywhere, a layer that was in evaluation
    mode inside a training network (a frozen batch norm) stays so. Yields `net`.
    """
    modes = [(module, module.training) for module in net.modules()]
    net.train(mode)
    try:
        yield net
    finally:
        for module, training in modes:
            module.training = training


def eval_mode(net: Module):
    """`train_mode(net, False)`: the block runs in evaluation mode, then every module's own mode is back."""
    return train_mode(net, False)
