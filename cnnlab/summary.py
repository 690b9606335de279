"""`Module.summary()`: a table of layers, output shapes and parameter counts."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.module import Parameter, eval_mode

__all__ = ["Summary", "SummaryRow"]


@dataclass(frozen=True)
class SummaryRow:
    name: str          # dotted name in the tree ("" for the root, "0", "3.conv", ...)
    layer: str         # the module's repr without children, e.g. "Linear(in_features=4, ...)"
    output_shape: tuple  # with the batch axis shown as -1
    params: int        # parameters owned directly by this module (not its children)
    trainable: int


@dataclass(frozen=True)
class Summary:
    rows: tuple
    input_shape: tuple
    total_params: int
    trainable_params: int
    dtype: np.dtype

    @classmethod
    def of(cls, module, input_shape) -> "Summary":
        input_shape = tuple(int(d) for d in np.atleast_1d(input_shape))
        dtype = next((p.dtype for p in module.parameters()), np.dtype(np.float32))
        shapes = {}   # id(module) -> the shape of its output, seen by a forward hook
        hooks = [m.register_forward_hook(lambda m, inputs, out: shapes.__setitem__(id(m), getattr(out, "shape", None)))
                 for m in module.modules()]
        try:
            with eval_mode(module):
                module(np.zeros((2,) + input_shape, dtype=dtype))
        finally:
            for hook in hooks:
                hook.remove()
        rows = []
        for name, m in module.named_modules():
            own = [v for v in vars(m).values() if isinstance(v, Parameter)]
            shape = shapes.get(id(m))
            rows.append(SummaryRow(
                name=name or type(m).__name__,
                layer=f"{type(m).__name__}({m.extra_repr()})",
                output_shape=(-1,) + tuple(shape[1:]) if shape is not None else (),
                params=sum(p.size for p in own),
                trainable=sum(p.size for p in own if p.requires_grad),
            ))
        params = module.parameters()
        return cls(tuple(rows), input_shape, sum(p.size for p in params),
                   sum(p.size for p in params if p.requires_grad), np.dtype(dtype))

    def __str__(self) -> str:
        header = ("name", "layer", "output shape", "params")
        body = [(r.name, r.layer, str(r.output_shape) if r.output_shape else "-", f"{r.params:,}")
                for r in self.rows]
        widths = [max(len(row[i]) for row in [header] + body) for i in range(4)]
        fmt = lambda row: "  ".join(  # noqa: E731 - a one-line formatter
            cell.rjust(w) if i == 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
        rule = "-" * len(fmt(header))
        frozen = self.total_params - self.trainable_params
        lines = [f"input shape: (N, {', '.join(map(str, self.input_shape))})", rule, fmt(header), rule]
        lines += [fmt(row) for row in body]
        lines += [rule, f"total parameters: {self.total_params:,} "
                        f"({self.trainable_params:,} trainable, {frozen:,} frozen), dtype {self.dtype}"]
        return "\n".join(lines)

    __repr__ = __str__
