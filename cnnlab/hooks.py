"""Hooks: functions called as values pass through a module, and `recording`, built on them.

`Module.register_forward_hook(hook)` and `Module.register_full_backward_hook(hook)` (PyTorch's
names and signatures, see `cnnlab.module`) return a `RemovableHandle`. `recording(modules)` uses
both to capture what flows through chosen layers of any network during a block: the feature
maps (outputs) and the gradients dL/d(output) that reach them, for the widgets, LSUV and
`cnnlab.init.activation_stats`.
"""
from __future__ import annotations

import contextlib
import itertools

__all__ = ["RemovableHandle", "recording"]

_ids = itertools.count()


class RemovableHandle:
    """What registering a hook returns: `handle.remove()` takes the hook off (again is harmless).

    Also a context manager: `with module.register_forward_hook(hook): ...` removes it on exit.
    """

    def __init__(self, hooks: dict, hook):
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {type(hook).__name__}: {hook!r}")
        self._hooks, self.id = hooks, next(_ids)
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


@contextlib.contextmanager
def recording(modules, outputs: dict | None = None, grads: dict | None = None):
    """Record what passes through `modules` while the block runs.

    Inputs:
    - modules: a list of Modules (e.g. a net's Conv2d layers).
    - outputs, grads: dicts to fill (new ones when None), keyed by the module's position i in
      `modules`: outputs[i] = what module i returned (its feature maps), grads[i] = dL/d(its
      output), the upstream gradient its backward received. The last call wins.

    Yields (outputs, grads). The module must run as `module(x)` (as `Sequential` runs its layers)
    for its output to be seen, and its backward through `run_backward` (as `Sequential` does) for
    its gradient. The hooks are removed on exit, even after an error.
    """
    outputs = {} if outputs is None else outputs
    grads = {} if grads is None else grads
    handles = []

    def keep_output(i):
        return lambda module, inputs, out: outputs.__setitem__(i, out)

    def keep_grad(i):
        return lambda module, grad_input, grad_output: grads.__setitem__(i, grad_output[0])

    try:
        for i, module in enumerate(modules):
            handles.append(module.register_forward_hook(keep_output(i)))
            handles.append(module.register_full_backward_hook(keep_grad(i)))
        yield outputs, grads
    finally:
        for handle in handles:
            handle.remove()
