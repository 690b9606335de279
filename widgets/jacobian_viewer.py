"""`jacobian_viewer()`: look at one layer's Jacobians inside a small net, and check them.

For the layer picked in a menu, at the input it receives inside the net, the widget shows Tomasi's two
Jacobians (eq. (5)) as images: J_x = dx^(l)/dx^(l-1) (one row per output, one column per input) and
J_w = dx^(l)/dw^(l) (one column per parameter, weight row-major then bias), both computed by
`cnnlab.jacobian` from the layer's own `backward`. A colour map centred at 0 shows the sign pattern;
a plot shows their singular values; a badge says whether they agree with finite differences.

Piecewise-linear layers (ReLU, max pooling) have kinks: at a tie in a pooling window, or at a ReLU
input of exactly 0, a derivative does not exist and a centred difference returns the average of the
two one-sided slopes. The check therefore also takes one-sided differences: where they disagree,
the entry sits on a kink and the analytic value only has to lie between them (it is one of the
one-sided slopes); everywhere else it must match the centred difference.

The model (`JacobianModel`) is plain NumPy and can be driven without a browser; `JacobianViewer`
adds the controls (layer, input source, image index or seed) and one figure redrawn in place.
"""
from __future__ import annotations

import copy
import html
from dataclasses import dataclass

import ipywidgets as W
import numpy as np
from matplotlib.ticker import MaxNLocator

from cnnlab import Module, Sequential
from cnnlab.jacobian import jacobian_input, jacobian_params, numerical_jacobian
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from widgets._figure import FigureView, new_figure
from widgets._guard import StatusLine, guarded

__all__ = ["DifferenceCheck", "JacobianModel", "JacobianViewer", "jacobian_viewer", "default_net",
           "downsample", "one_sided_jacobians", "compare_with_differences"]

SOURCES = {"image": "Fashion-MNIST image", "random": "random input", "custom": "your input"}
MAX_ENTRIES = 400_000  # a Jacobian bigger than this is not formed (finite differences would be slow)
SEEDS = 100


def default_net(rng=0) -> Sequential:
    """Conv2d(1, 2, 3, padding=1) -> ReLU -> MaxPool2d(2) -> Flatten -> Linear(32, 3), in float64.

    For inputs of shape (1, 1, 8, 8): 2 maps of 8 x 8, pooled to 2 maps of 4 x 4 = 32 features.
    rng: a numpy Generator or int seed for the initial weights.
    """
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return Sequential([Conv2d(1, 2, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(32, 3, rng=gen)]).astype(np.float64)


def downsample(images, size: int = 8) -> np.ndarray:
    """Shrink square images (N, C, H, W) to (N, C, size, size) by averaging blocks of pixels.

    With k = H // size, the central size*k rows and columns are kept (Fashion-MNIST's border is
    background) and each k x k block is averaged: 28 x 28 -> crop 24 x 24 -> 8 x 8 for size 8.
    Returns float64.
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 4 or images.shape[2] != images.shape[3]:
        raise ValueError(f"downsample expects square images of shape (N, C, H, H), got {images.shape}")
    k = images.shape[2] // size
    if size < 1 or k < 1:
        raise ValueError(f"downsample needs 1 <= size <= H = {images.shape[2]}, got size={size}")
    start = (images.shape[2] - k * size) // 2
    crop = images[:, :, start:start + k * size, start:start + k * size]
    n, c = crop.shape[:2]
    return crop.reshape(n, c, size, k, size, k).mean(axis=(3, 5))


def one_sided_jacobians(f, x, eps: float = 1e-6):
    """Forward and backward differences of a vector function, one column per entry of x.

    f: a function of no arguments that reads `x` (perturbed in place and restored).
    Returns (forward, backward), each (f().size, x.size): column j is (f(x + eps e_j) - f(x)) / eps
    and (f(x) - f(x - eps e_j)) / eps. Their average is the centred difference of
    `cnnlab.jacobian.numerical_jacobian`; their gap is O(eps) for a smooth function and O(1) at a kink.
    """
    flat = x.reshape(-1)
    if not np.shares_memory(flat, x):
        raise ValueError("one_sided_jacobians perturbs x in place; pass a contiguous array")
    centre = np.array(f(), dtype=np.float64).ravel()
    forward = np.zeros((centre.size, flat.size))
    backward = np.zeros((centre.size, flat.size))
    for j in range(flat.size):
        old = flat[j]
        flat[j] = old + eps
        forward[:, j] = (np.array(f(), dtype=np.float64).ravel() - centre) / eps
        flat[j] = old - eps
        backward[:, j] = (centre - np.array(f(), dtype=np.float64).ravel()) / eps
        flat[j] = old
    return forward, backward


@dataclass
class DifferenceCheck:
    """How an analytic Jacobian compares with finite differences."""
    max_abs_error: float   # largest |analytic - centred difference| away from kinks
    where: tuple           # (row, column) of that largest error, () for an empty matrix
    kinks: int             # entries where the one-sided slopes differ (no derivative there)
    kinks_ok: bool         # at every kink, the analytic value lies between the one-sided slopes
    ok: bool               # the verdict: max_abs_error <= atol and kinks_ok


def compare_with_differences(J, central, forward, backward, atol: float = 1e-6,
                             kink_gap: float = 1e-3) -> DifferenceCheck:
    """Compare an analytic Jacobian J with its centred and one-sided differences (all the same shape).

    An entry is a kink when |forward - backward| > kink_gap; there J must lie in
    [min(forward, backward) - atol, max(...) + atol]. Elsewhere |J - central| must be <= atol.
    """
    J, central = np.asarray(J, dtype=np.float64), np.asarray(central, dtype=np.float64)
    if not J.shape == central.shape == np.shape(forward) == np.shape(backward):
        raise ValueError(f"compare_with_differences needs arrays of one shape, got J {J.shape}, central "
                         f"{central.shape}, forward {np.shape(forward)}, backward {np.shape(backward)}")
    kink = np.abs(forward - backward) > kink_gap
    error = np.where(kink, 0.0, np.abs(J - central))
    where = np.unravel_index(error.argmax(), error.shape) if error.size else ()
    max_error = float(error[where]) if error.size else 0.0
    low, high = np.minimum(forward, backward) - atol, np.maximum(forward, backward) + atol
    kinks_ok = bool(np.all((low <= J) & (J <= high) | ~kink))
    return DifferenceCheck(max_error, tuple(int(i) for i in where), int(kink.sum()), kinks_ok,
                           bool(max_error <= atol and kinks_ok))


class JacobianModel:
    """The Jacobians of one layer of `net` at the input it receives for one example.

    Inputs:
    - net: a cnnlab Sequential; the model works on a float64 copy in eval mode (a fixed function:
      no dropout masks drawn anew at every call), so your net is not changed.
    - x: one example with a batch axis of 1, e.g. (1, 1, 8, 8), or None.
    - images: candidate inputs (N, ...) of the same per-example shape as x, or None.
    At least one of x and images is needed (x fixes the input shape; random inputs take it too).

    State: `layer_index`, `source` ("custom", "image" or "random"), `sample` (image index or seed).
    After `update()`: `x` (the net's input), `x_in` (the layer's input), `J_x` (D, M), `J_w` (D, P),
    their centred differences `J_x_numeric`, `J_w_numeric`, the checks `check_x`, `check_w`
    (DifferenceCheck), `matches`, `max_abs_error`, and singular values `sv_x`, `sv_w` (descending).
    """

    def __init__(self, net, x=None, images=None, eps: float = 1e-6, atol: float = 1e-6):
        if not isinstance(net, Sequential):
            raise TypeError(f"net must be a cnnlab Sequential of layers, got {type(net).__name__}")
        if len(net) == 0:
            raise ValueError("net must contain at least one layer, got an empty Sequential")
        self.net = copy.deepcopy(net).astype(np.float64).eval()
        self.custom = None if x is None else self._example(x, "x")
        self.images = None
        if images is not None:
            images = np.asarray(images, dtype=np.float64)
            if images.ndim < 2 or len(images) == 0:
                raise ValueError(f"images must have shape (N, ...) with N >= 1, got {images.shape}")
            if self.custom is not None and images.shape[1:] != self.custom.shape[1:]:
                raise ValueError(f"images of shape {images.shape[1:]} do not match x of shape "
                                 f"{self.custom.shape[1:]}")
            self.images = images
        if self.custom is None and self.images is None:
            raise ValueError("JacobianModel needs an input: pass x (one example) or images (N, ...)")
        self.input_shape = (1,) + (self.custom if self.custom is not None else self.images).shape[1:]
        try:
            self.net.forward(np.zeros(self.input_shape))
        except (ValueError, TypeError) as error:
            raise ValueError(f"net cannot take an input of shape {self.input_shape}: {error}") from None
        self.eps, self.atol = float(eps), float(atol)
        self.layer_index = 0
        self.source = "custom" if self.custom is not None else "image"
        self.sample = 0
        self.update()

    @staticmethod
    def _example(x, name):
        if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
            got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
            raise TypeError(f"{name} must be a float numpy array, got {got}")
        if x.ndim < 2 or x.shape[0] != 1:
            raise ValueError(f"{name} must be one example with a batch axis of 1, e.g. (1, 1, 8, 8), "
                             f"got shape {x.shape}")
        return x.astype(np.float64)

    @property
    def sources(self) -> list[str]:
        """The input sources available: 'custom' (when x was given), 'image' (when images were), 'random'."""
        return ([s for s, have in (("custom", self.custom), ("image", self.images)) if have is not None]
                + ["random"])

    @property
    def max_sample(self) -> int:
        return len(self.images) - 1 if self.source == "image" else SEEDS - 1

    def layer_names(self) -> list[str]:
        return [f"{i}: {layer!r}" for i, layer in enumerate(self.net)]

    def net_input(self) -> np.ndarray:
        if self.source not in self.sources:
            raise ValueError(f"source must be one of {self.sources}, got {self.source!r}")
        if self.source == "custom":
            return self.custom.copy()
        if self.source == "image":
            if not 0 <= self.sample < len(self.images):
                raise ValueError(f"image index must be in [0, {len(self.images) - 1}], got {self.sample}")
            return self.images[self.sample:self.sample + 1].copy()
        return np.random.default_rng(self.sample).standard_normal(self.input_shape)

    def update(self) -> None:
        if not 0 <= self.layer_index < len(self.net):
            raise ValueError(f"layer_index must be in [0, {len(self.net) - 1}], got {self.layer_index}")
        x = self.net_input()
        x_in = x
        for layer in self.net.layers[:self.layer_index]:
            x_in = layer.forward(x_in)
        x_in = np.ascontiguousarray(x_in, dtype=np.float64)
        layer = self.layer
        out_size = layer.forward(x_in).size
        size = out_size * (x_in.size + sum(p.size for p in layer.parameters()))
        if size > MAX_ENTRIES:
            raise ValueError(f"layer {self.layer_index}'s Jacobians would have {size:,} entries (more than "
                             f"{MAX_ENTRIES:,}): use a smaller input")
        J_x, J_w = jacobian_input(layer, x_in), jacobian_params(layer, x_in)

        def f():
            return layer.forward(x_in)

        num_x = numerical_jacobian(f, x_in, self.eps)
        check_x = compare_with_differences(J_x, num_x, *one_sided_jacobians(f, x_in, self.eps), atol=self.atol)
        params = layer.parameters()
        if params:
            num_w = np.concatenate([numerical_jacobian(f, p.data, self.eps) for p in params], axis=1)
            sides = [one_sided_jacobians(f, p.data, self.eps) for p in params]
            fwd = np.concatenate([s[0] for s in sides], axis=1)
            bwd = np.concatenate([s[1] for s in sides], axis=1)
        else:
            num_w = fwd = bwd = np.zeros((out_size, 0))
        check_w = compare_with_differences(J_w, num_w, fwd, bwd, atol=self.atol)
        layer.forward(x_in)  # leave the layer as it was after a clean forward pass
        self.x, self.x_in, self.J_x, self.J_w = x, x_in, J_x, J_w
        self.J_x_numeric, self.J_w_numeric = num_x, num_w
        self.check_x, self.check_w = check_x, check_w
        self.matches = check_x.ok and check_w.ok
        self.max_abs_error = max(check_x.max_abs_error, check_w.max_abs_error)
        self.sv_x = np.linalg.svd(J_x, compute_uv=False)
        self.sv_w = np.linalg.svd(J_w, compute_uv=False) if J_w.size else np.zeros(0)

    @property
    def layer(self) -> Module:
        return self.net[self.layer_index]


def _badge(ok: bool, text: str) -> str:
    colour, mark = ("#1a7f37", "\u2713") if ok else ("#cf222e", "\u2717")
    return (f'<span style="background:{colour};color:white;padding:2px 8px;border-radius:4px;'
            f'font-weight:bold">{mark} {html.escape(text)}</span>')


class JacobianViewer:
    """The viewer: `.model`, the controls `.layer`, `.source`, `.sample`, the `.badge`, the figure `.view`."""

    def __init__(self, net, x=None, images=None):
        self.model = JacobianModel(net, x, images)
        m = self.model
        self.status = StatusLine()
        self.badge = W.HTML(value="")
        self.layer = W.Dropdown(options=[(name, i) for i, name in enumerate(m.layer_names())], value=0,
                                description="layer", layout=W.Layout(width="420px"))
        self.source = W.Dropdown(options=[(SOURCES[s], s) for s in m.sources], value=m.source,
                                 description="input")
        self.sample = W.IntSlider(value=0, min=0, max=m.max_sample, description=self._sample_label(),
                                  continuous_update=False, disabled=m.source == "custom")

        self.fig, _ = new_figure(figsize=(10, 6.4))
        self.fig.clf()
        grid = self.fig.add_gridspec(2, 3, width_ratios=[1, 2.2, 2.2], height_ratios=[1.45, 1])
        self.input_ax = self.fig.add_subplot(grid[0, 0])
        self.jx_ax = self.fig.add_subplot(grid[0, 1])
        self.jw_ax = self.fig.add_subplot(grid[0, 2])
        self.sv_ax = self.fig.add_subplot(grid[1, :])
        blank = np.zeros((1, 1))
        self.input_image = self.input_ax.imshow(blank, cmap="gray_r")
        self.input_ax.set_xticks([]), self.input_ax.set_yticks([])
        self.jx_image = self.jx_ax.imshow(blank, cmap="RdBu_r", aspect="auto", interpolation="nearest")
        self.jw_image = self.jw_ax.imshow(blank, cmap="RdBu_r", aspect="auto", interpolation="nearest")
        bars = [self.fig.colorbar(image, ax=ax, fraction=0.06, pad=0.02)
                for image, ax in ((self.jx_image, self.jx_ax), (self.jw_image, self.jw_ax))]
        for bar in bars:
            bar.ax.tick_params(labelsize=7)
        self.jw_bar = bars[1]
        self.jw_empty = self.jw_ax.text(0.5, 0.5, "this layer has\nno parameters", ha="center", va="center",
                                        transform=self.jw_ax.transAxes, fontsize=10, color="#555")
        for ax in (self.jx_ax, self.jw_ax, self.sv_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=ax is not self.sv_ax))
            ax.tick_params(labelsize=7)
        self.jx_ax.set_ylabel("output index i", fontsize=8)
        self.jx_ax.set_xlabel("input index j", fontsize=8)
        self.jw_ax.set_xlabel("parameter index (weight, then bias)", fontsize=8)
        (self.sv_x_line,) = self.sv_ax.plot([], [], "o-", ms=3, lw=1, label=r"$\partial x/\partial x_{prev}$")
        (self.sv_w_line,) = self.sv_ax.plot([], [], "s-", ms=3, lw=1, label=r"$\partial x/\partial w$")
        self.sv_ax.axhline(1.0, color="#888", lw=0.8, ls="--", label="1 (neither shrinks nor grows)")
        self.sv_ax.set_xlabel("k (largest first)", fontsize=8)
        self.sv_ax.set_ylabel(r"singular value $\sigma_k$", fontsize=8)
        self.sv_ax.legend(fontsize=8, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, frameon=False)
        self.fig.subplots_adjust(left=0.05, right=0.94, bottom=0.09, top=0.93, wspace=0.3, hspace=0.45)
        self.view = FigureView(self.fig)

        self._syncing = False
        guard = guarded(self.status)
        self.layer.observe(guard(self._on_control), names="value")
        self.source.observe(guard(self._on_source), names="value")
        self.sample.observe(guard(self._on_control), names="value")
        controls = W.HBox([self.layer, self.source, self.sample])
        self.widget = W.VBox([controls, self.badge, self.view.widget, self.status.widget])
        self._draw()

    def _sample_label(self) -> str:
        return "image #" if self.model.source == "image" else "seed"

    def _on_source(self, change) -> None:
        self.model.source = change["new"]
        self._syncing = True  # resetting the slider must not trigger a second redraw
        try:
            with self.sample.hold_trait_notifications():
                self.sample.max = self.model.max_sample
                self.sample.value = 0
                self.sample.description = self._sample_label()
                self.sample.disabled = self.model.source == "custom"
        finally:
            self._syncing = False
        self.update()

    def _on_control(self, change) -> None:
        if not self._syncing:
            self.update()

    def update(self) -> None:
        """Read the controls, recompute the model and redraw (what every control change does)."""
        m = self.model
        m.layer_index, m.source, m.sample = self.layer.value, self.source.value, self.sample.value
        m.update()
        self._draw()

    @staticmethod
    def _show_matrix(ax, image, J):
        rows, cols = J.shape
        image.set_data(J)
        image.set_extent((-0.5, cols - 0.5, rows - 0.5, -0.5))
        ax.set_xlim(-0.5, cols - 0.5), ax.set_ylim(rows - 0.5, -0.5)
        limit = float(np.abs(J).max()) or 1.0
        image.set_clim(-limit, limit)  # centred at 0: white is 0, red positive, blue negative

    def _draw(self) -> None:
        m = self.model
        picture = m.x[0]
        picture = picture[0] if picture.ndim == 3 else np.atleast_2d(picture)
        self.input_image.set_data(picture)
        self.input_image.set_extent((-0.5, picture.shape[1] - 0.5, picture.shape[0] - 0.5, -0.5))
        self.input_image.set_clim(picture.min(), picture.max() if picture.max() > picture.min() else picture.min() + 1)
        self.input_ax.set_xlim(-0.5, picture.shape[1] - 0.5), self.input_ax.set_ylim(picture.shape[0] - 0.5, -0.5)
        self.input_ax.set_title(f"net input {tuple(m.x.shape[1:])}", fontsize=9)

        D, M = m.J_x.shape
        self._show_matrix(self.jx_ax, self.jx_image, m.J_x)
        self.jx_ax.set_title(rf"$J_x = \partial x^{{(\ell)}}/\partial x^{{(\ell-1)}}$: {D} $\times$ {M}", fontsize=9)
        P = m.J_w.shape[1]
        has_params = P > 0
        self.jw_image.set_visible(has_params)
        self.jw_empty.set_visible(not has_params)
        self.jw_bar.ax.set_visible(has_params)
        self.jw_ax.xaxis.set_visible(has_params), self.jw_ax.yaxis.set_visible(has_params)
        if has_params:
            self._show_matrix(self.jw_ax, self.jw_image, m.J_w)
        self.jw_ax.set_title(rf"$J_w = \partial x^{{(\ell)}}/\partial w^{{(\ell)}}$: {D} $\times$ {P}", fontsize=9)

        self.sv_x_line.set_data(np.arange(1, len(m.sv_x) + 1), m.sv_x)
        self.sv_w_line.set_data(np.arange(1, len(m.sv_w) + 1), m.sv_w)
        self.sv_ax.set_xlim(0.5, max(len(m.sv_x), len(m.sv_w), 1) + 0.5)
        top = max([1.0] + [float(s.max()) for s in (m.sv_x, m.sv_w) if s.size])
        self.sv_ax.set_ylim(0, 1.08 * top)
        self.sv_ax.set_title(f"singular values of layer {m.layer_index} ({type(m.layer).__name__}): "
                             f"largest {m.sv_x[0]:.3g} for $J_x$" if m.sv_x.size else "", fontsize=9, loc="left")
        self.view.refresh()

        cx, cw = m.check_x, m.check_w
        kinks = cx.kinks + cw.kinks
        if m.matches:
            text = f"matches finite differences: max |error| {m.max_abs_error:.1e}"
        else:
            bad = cx if not cx.ok else cw
            which = "J_x" if bad is cx else "J_w"
            text = (f"does not match finite differences: max |error| {bad.max_abs_error:.2g} in {which} at "
                    f"(row, column) {bad.where}" if bad.kinks_ok else
                    f"does not match: at a kink of {which} the value is not one of the one-sided slopes")
        if kinks:
            text += f" ({kinks} entries at kinks, checked against one-sided slopes)"
        self.badge.value = _badge(m.matches, text)
        params = sum(p.size for p in m.layer.parameters())
        self.status.show(f"layer {m.layer_index}, {type(m.layer).__name__}: maps {M} numbers to {D}"
                         + (f" with {params} parameters" if params else ", no parameters")
                         + f"; input: {SOURCES[m.source]}"
                         + ("" if m.source == "custom" else f" #{m.sample}"), "ok" if m.matches else "warn")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def jacobian_viewer(net=None, x=None, images=None, rng=0, n_images: int = 20) -> JacobianViewer:
    """A viewer of per-layer Jacobians.

    Inputs:
    - net: a cnnlab Sequential, or None for `default_net(rng)` (for inputs of shape (1, 1, 8, 8)).
    - x: one example (1, ...) the net takes, or None.
    - images: candidate inputs (N, ...), or None: then, when x is None or has shape (1, 1, 8, 8),
      the first `n_images` Fashion-MNIST test images downsampled to 8 x 8 (`downsample`).
    The viewer works on a float64 copy of net in eval mode.
    """
    if net is None:
        net = default_net(rng)
    if images is None and (x is None or np.shape(x) == (1, 1, 8, 8)):
        from cnnlab.data import load_fashion_mnist

        images = downsample(load_fashion_mnist("test").X[:n_images], 8)
    return JacobianViewer(net, x, images)
