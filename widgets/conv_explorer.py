"""`conv_explorer()`: one convolution layer, forward and backward, on one image.

The model (`ConvExplorerModel`) is plain NumPy on top of `cnnlab.layers.Conv2d` (one input map, one
output map, no bias): it runs the layer's forward pass on the chosen image with the chosen kernel,
stride and padding, then its backward pass for a sensitivity map delta = dL/d(out) that is 1 at one
chosen output position (or 1 everywhere). The widget shows

    the padded input with the receptive field of the chosen output   the kernel w   the output map
    delta                       dL/dx (delta 'full'-convolved with w)       dL/dw (x correlated with delta)

and the output-size formula OH = (H + 2p - K) // s + 1 (Bouvrie §3.1; PyTorch's Conv2d). Nothing is
recomputed here that cnnlab computes: forward, dL/dx and dL/dw are the layer's own.
"""
from __future__ import annotations

from math import comb

import ipywidgets as W
import numpy as np
from matplotlib.patches import Rectangle

from cnnlab.layers.conv import Conv2d
from cnnlab.kernels.windows import conv_output_size, pad2d
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView

__all__ = ["KERNELS", "DELTAS", "kernel_preset", "synthetic_image", "ConvExplorerModel", "ConvExplorer",
           "conv_explorer"]

KERNELS = ("vertical edge", "horizontal edge", "blur", "random")
DELTAS = ("one output", "all outputs")
SYNTHETIC = ("square", "stripes")
MAX_KERNEL, MAX_STRIDE, MAX_PADDING = 7, 4, 3


def kernel_preset(name: str, size: int, seed: int = 0) -> np.ndarray:
    """A size x size kernel (float64) by name.

    - "vertical edge": Sobel's kernel generalised to any size: binomial smoothing down the rows times
      a binomial derivative across the columns (right minus left), e.g. [[-1, 0, 1], [-2, 0, 2],
      [-1, 0, 1]] for size 3; it responds to vertical edges.
    - "horizontal edge": its transpose (bottom minus top).
    - "blur": the box filter, every entry 1 / size^2.
    - "random": standard normal entries / size, from a generator seeded with (seed, size), so the
      same size always gives the same kernel.
    """
    if name not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {name!r}")
    if not isinstance(size, (int, np.integer)) or not 2 <= size <= MAX_KERNEL:
        raise ValueError(f"kernel size must be an int in [2, {MAX_KERNEL}], got {size!r}")
    smooth = np.array([comb(size - 1, i) for i in range(size)], dtype=np.float64)
    derivative = np.convolve([comb(size - 2, i) for i in range(size - 1)], [-1.0, 1.0])
    if name == "vertical edge":
        return np.outer(smooth, derivative)
    if name == "horizontal edge":
        return np.outer(derivative, smooth)
    if name == "blur":
        return np.full((size, size), 1.0 / size**2)
    return np.random.default_rng((seed, size)).standard_normal((size, size)) / size


def synthetic_image(name: str, size: int = 28) -> np.ndarray:
    """A size x size test pattern in [0, 1] (float64): "square" (a bright square in the middle, edges in
    both directions) or "stripes" (vertical stripes 4 pixels wide: vertical edges only)."""
    if name not in SYNTHETIC:
        raise ValueError(f"synthetic image must be one of {SYNTHETIC}, got {name!r}")
    image = np.zeros((size, size))
    if name == "square":
        a, b = size // 4, size - size // 4
        image[a:b, a:b] = 1.0
    else:
        image[:, (np.arange(size) // 4) % 2 == 1] = 1.0
    return image


def _as_image(image) -> np.ndarray:
    """An (H, W) float64 copy of an image given as (H, W), (1, H, W) or (1, 1, H, W)."""
    a = np.asarray(image)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"image must be a numeric array, got dtype {a.dtype}")
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2 or min(a.shape) < 2:
        raise ValueError(f"image must have shape (H, W), (1, H, W) or (1, 1, H, W) with H, W >= 2, "
                         f"got {np.shape(image)}")
    if not np.all(np.isfinite(a)):
        raise ValueError("image contains NaN or infinity")
    return a.astype(np.float64)


class ConvExplorerModel:
    """One Conv2d(1, 1, K, stride, padding, bias=False) in float64, run forward and backward.

    State (set, then call `update()`): `image` (H, W), `kernel_name` (one of KERNELS), `kernel_size` K,
    `stride` s, `padding` p, `row`, `col` (the chosen output position; clamped into the output),
    `delta_mode` ("one output": delta is 1 at (row, col) and 0 elsewhere; "all outputs": delta = 1).

    After `update()`:
    - kernel (K, K); padded (H + 2p, W + 2p), the zero-padded input;
    - out (OH, OW) = the layer's forward pass, OH = (H + 2p - K) // s + 1 (`out_shape`);
    - delta (OH, OW); dx (H, W) = the layer's dL/dx for that delta; dw (K, K) = its dL/dw;
    - field: (top, left) of the receptive field of (row, col), in padded coordinates;
    - unused: (rows, cols) of the padded input that no window reads (the floor in the formula);
    - formula: the output-size formula with the numbers filled in.
    """

    def __init__(self, image, kernel: str = "vertical edge", kernel_size: int = 3, stride: int = 1,
                 padding: int = 0, delta_mode: str = "one output", seed: int = 0):
        self.image = _as_image(image)
        self.kernel_name, self.kernel_size, self.stride, self.padding = kernel, kernel_size, stride, padding
        self.delta_mode, self.seed = delta_mode, int(seed)
        self.row = self.col = 0
        self.update()

    def _validate(self) -> None:
        if self.delta_mode not in DELTAS:
            raise ValueError(f"delta_mode must be one of {DELTAS}, got {self.delta_mode!r}")
        for name, value, low, high in (("stride", self.stride, 1, MAX_STRIDE),
                                       ("padding", self.padding, 0, MAX_PADDING)):
            if not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
        h, w = self.image.shape
        k, p = self.kernel_size, self.padding
        if isinstance(k, (int, np.integer)) and (h + 2 * p < k or w + 2 * p < k):
            raise ValueError(f"a {k}x{k} kernel does not fit in the {h}x{w} image padded by {p} "
                             f"({h + 2 * p}x{w + 2 * p}): use a smaller kernel or more padding")

    def update(self) -> None:
        self._validate()
        self.kernel = kernel_preset(self.kernel_name, self.kernel_size, self.seed)
        k, s, p = self.kernel_size, self.stride, self.padding
        # rng=0: the weights are replaced at once; no draw from cnnlab's library generator
        layer = Conv2d(1, 1, k, stride=s, padding=p, bias=False, rng=0).astype(np.float64)
        layer.weight.data[0, 0] = self.kernel
        x = self.image[None, None]
        self.out = layer.forward(x)[0, 0]
        self.out_shape = self.out.shape
        self.row = int(np.clip(self.row, 0, self.out_shape[0] - 1))
        self.col = int(np.clip(self.col, 0, self.out_shape[1] - 1))
        if self.delta_mode == "one output":
            self.delta = np.zeros(self.out_shape)
            self.delta[self.row, self.col] = 1.0
        else:
            self.delta = np.ones(self.out_shape)
        self.dx = layer.backward(self.delta[None, None])[0, 0]
        self.dw = layer.weight.grad[0, 0].copy()
        self.padded = pad2d(x, (p, p))[0, 0]
        self.field = (self.row * s, self.col * s)
        h, w = self.image.shape
        self.unused = ((h + 2 * p - k) % s, (w + 2 * p - k) % s)
        oh = conv_output_size(h, k, s, p)
        self.formula = (f"OH = (H + 2p - K) // s + 1 = ({h} + 2·{p} - {k}) // {s} + 1 = {oh};   "
                        f"OW = ({w} + 2·{p} - {k}) // {s} + 1 = {self.out_shape[1]}")


def _set_image(artist, data, clim=None) -> None:
    """Show `data` in an existing AxesImage (its shape may have changed), with pixel centres on integers."""
    h, w = data.shape
    artist.set_data(data)
    artist.set_extent((-0.5, w - 0.5, h - 0.5, -0.5))
    artist.axes.set_xlim(-0.5, w - 0.5)
    artist.axes.set_ylim(h - 0.5, -0.5)
    if clim is None:
        m = float(np.abs(data).max()) or 1.0
        clim = (-m, m)
    artist.set_clim(*clim)


class ConvExplorer(WidgetView):
    """The widget: `.model`, controls (`.image_picker`, `.kernel_picker`, `.kernel_size`, `.stride`,
    `.padding`, `.row`, `.col`, `.delta_mode`), the figure `.view` and the status line `.status`."""

    def __init__(self, images: dict, kernel="vertical edge", kernel_size=3, stride=1, padding=0, seed=0):
        super().__init__()
        self.images = images
        first = next(iter(images))
        self.model = m = ConvExplorerModel(images[first], kernel, kernel_size, stride, padding, seed=seed)
        slider = dict(continuous_update=False, layout=W.Layout(width="260px"))
        self.image_picker = W.Dropdown(options=list(images), value=first, description="image")
        self.kernel_picker = W.Dropdown(options=KERNELS, value=m.kernel_name, description="kernel")
        self.kernel_size = W.IntSlider(value=m.kernel_size, min=2, max=MAX_KERNEL, description="kernel K", **slider)
        self.stride = W.IntSlider(value=m.stride, min=1, max=MAX_STRIDE, description="stride s", **slider)
        self.padding = W.IntSlider(value=m.padding, min=0, max=MAX_PADDING, description="padding p", **slider)
        self.delta_mode = W.ToggleButtons(options=DELTAS, value=m.delta_mode, description="δ")
        self.row = W.IntSlider(value=m.row, min=0, max=m.out_shape[0] - 1, description="output row", **slider)
        self.col = W.IntSlider(value=m.col, min=0, max=m.out_shape[1] - 1, description="output col", **slider)

        self.fig, axes = new_figure(2, 3, figsize=(10.5, 7.2))
        self.axes = axes.ravel()
        titles = ("input x (zero-padded)", "kernel w", r"output = $x \star w$",
                  "δ = ∂L/∂out", "∂L/∂x = 'full' conv of δ with w", r"∂L/∂w = $x \star \delta$ ('valid')")
        one = np.zeros((2, 2))
        self.artists = []
        for ax, title in zip(self.axes, titles):
            cmap = "gray_r" if title.startswith("input") else "RdBu_r"
            self.artists.append(ax.imshow(one, cmap=cmap, interpolation="nearest"))
            ax.set_title(title, fontsize=10)
            ax.set_xticks([]), ax.set_yticks([])
        self.image_box = Rectangle((0, 0), 1, 1, fill=False, ls="--", lw=1.0, ec="tab:gray")
        self.field_box = Rectangle((0, 0), 1, 1, fill=False, lw=2.0, ec="tab:orange")
        self.dx_box = Rectangle((0, 0), 1, 1, fill=False, lw=1.5, ec="tab:orange")
        self.out_box = Rectangle((0, 0), 1, 1, fill=False, lw=2.0, ec="tab:orange")
        for ax, patch in zip(self.axes[[0, 0, 4, 2]], (self.image_box, self.field_box, self.dx_box, self.out_box)):
            ax.add_patch(patch)
        self.kernel_texts = []
        self.formula_text = self.fig.text(0.5, 0.015, "", ha="center", fontsize=10, family="monospace")
        self.fig.subplots_adjust(left=0.02, right=0.98, top=0.93, bottom=0.07, wspace=0.12, hspace=0.22)
        # images, boxes and texts redraw alone over a saved picture of the axes (see FigureView); a change
        # of shape moves the limits, and that draws the whole figure
        self.view = FigureView(self.fig, animated=[*self.artists, self.image_box, self.field_box, self.dx_box,
                                                   self.out_box, self.formula_text,
                                                   *(ax.title for ax in self.axes[:4])])

        self.observe(lambda change: self.update(), self.image_picker, self.kernel_picker, self.kernel_size, self.stride,
                     self.padding, self.delta_mode, self.row, self.col)
        controls = W.VBox([W.HBox([self.image_picker, self.kernel_picker]),
                           W.HBox([self.kernel_size, self.stride, self.padding]),
                           W.HBox([self.delta_mode]), W.HBox([self.row, self.col])])
        self.widget = W.VBox([controls, self.view.widget, self.status.widget])
        self.update()

    def update(self) -> None:
        """Read the controls, recompute the model and redraw (what every control change does)."""
        m = self.model
        m.image = _as_image(self.images[self.image_picker.value])
        m.kernel_name, m.kernel_size = self.kernel_picker.value, self.kernel_size.value
        m.stride, m.padding, m.delta_mode = self.stride.value, self.padding.value, self.delta_mode.value
        m.row, m.col = self.row.value, self.col.value
        m.update()
        with self.syncing():  # the output may have shrunk: move the position sliders without re-entering
            for slider, top, value in ((self.row, m.out_shape[0] - 1, m.row), (self.col, m.out_shape[1] - 1, m.col)):
                slider.max = max(top, slider.min)
                slider.value = value
        self._draw()

    def _draw(self) -> None:
        m = self.model
        k, p = m.kernel_size, m.padding
        lo, hi = float(m.image.min()), float(m.image.max())
        panels = (m.padded, m.kernel, m.out, m.delta, m.dx, m.dw)
        for i, (artist, data) in enumerate(zip(self.artists, panels)):
            _set_image(artist, data, (min(lo, 0.0), max(hi, lo + 1e-12)) if i == 0 else None)
        h, w = m.image.shape
        self.image_box.set_bounds(p - 0.5, p - 0.5, w, h)
        self.image_box.set_visible(p > 0)
        one = m.delta_mode == "one output"
        top, left = m.field
        self.field_box.set_bounds(left - 0.5, top - 0.5, k, k)
        self.dx_box.set_bounds(left - p - 0.5, top - p - 0.5, k, k)
        self.out_box.set_bounds(m.col - 0.5, m.row - 0.5, 1, 1)
        for patch in (self.field_box, self.dx_box, self.out_box):
            patch.set_visible(one)
        for text in self.kernel_texts:
            text.remove()
        self.kernel_texts = []
        if k <= 5:
            ax = self.axes[1]
            dark = 0.6 * np.abs(m.kernel).max()  # white numbers on the dark cells
            self.kernel_texts = [ax.text(j, i, f"{m.kernel[i, j]:.2g}", ha="center", va="center", fontsize=8,
                                         color="white" if abs(m.kernel[i, j]) > dark else "black")
                                 for i in range(k) for j in range(k)]
            self.view.animate(*self.kernel_texts, new=True)
        padded = f"padded to {h + 2 * p}×{w + 2 * p}" if p else "no padding"
        self.axes[0].set_title(f"input x, {h}×{w}, {padded}", fontsize=10)
        self.axes[1].set_title(f"kernel w: {m.kernel_name}, {k}×{k}", fontsize=10)
        self.axes[2].set_title(rf"output = $x \star w$, {m.out_shape[0]}×{m.out_shape[1]}", fontsize=10)
        where = f"1 at ({m.row}, {m.col})" if one else "1 everywhere"
        self.axes[3].set_title(f"δ = ∂L/∂out: {where}", fontsize=10)
        self.formula_text.set_text(m.formula)
        self.view.refresh()
        if one:
            message = (f"output ({m.row}, {m.col}) = {m.out[m.row, m.col]:.3g} reads padded rows {top}–{top + k - 1}, "
                       f"columns {left}–{left + k - 1}; its δ sends a copy of w back there (∂L/∂x) and that "
                       f"patch of x to ∂L/∂w")
        else:
            message = "δ = 1 everywhere: ∂L/∂x sums a copy of w per output (fewer at the borders); ∂L/∂w sums all patches"
        if any(m.unused):
            message += (f". Stride {m.stride} leaves the last {m.unused[0]} row(s) and {m.unused[1]} column(s) of the "
                        "padded input unread: their gradient is 0")
        self.status.show(message, "info")


def _fashion_image() -> tuple[str, np.ndarray]:
    from cnnlab.data import load_fashion_mnist

    X, y, classes = load_fashion_mnist("test")
    first = int(np.flatnonzero(y == 9)[0])
    return f"Fashion-MNIST: {classes[9]}", X[first, 0]


def conv_explorer(image="fashion", kernel: str = "vertical edge", kernel_size: int = 3, stride: int = 1,
                  padding: int = 0, rng=0) -> ConvExplorer:
    """Explore one convolution layer: forward output, δ, ∂L/∂x and ∂L/∂w for a chosen output position.

    Inputs:
    - image: "fashion" (the first ankle boot of the Fashion-MNIST test split), "square" or "stripes"
      (28x28 synthetic patterns), or an array of shape (H, W), (1, H, W) or (1, 1, H, W). The menu
      then offers this image and the two synthetic patterns.
    - kernel: one of KERNELS; kernel_size in [2, 7]; stride in [1, 4]; padding in [0, 3].
    - rng: int seed of the "random" kernel.
    Returns a ConvExplorer (display it in a notebook cell).
    """
    if not isinstance(rng, (int, np.integer)) or isinstance(rng, bool) or rng < 0:
        raise ValueError(f"rng must be a non-negative int seed, got {rng!r}")
    if isinstance(image, str):
        if image == "fashion":
            name, array = _fashion_image()
        elif image in SYNTHETIC:
            name, array = image, synthetic_image(image)
        else:
            raise ValueError(f"image must be 'fashion', one of {SYNTHETIC} or an array, got {image!r}")
        images = {name: array}
    else:
        images = {"your image": _as_image(image)}
    for name in SYNTHETIC:
        images.setdefault(name, synthetic_image(name))
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    for name, value, low, high in (("kernel_size", kernel_size, 2, MAX_KERNEL), ("stride", stride, 1, MAX_STRIDE),
                                   ("padding", padding, 0, MAX_PADDING)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return ConvExplorer(images, kernel, kernel_size, stride, padding, seed=int(rng))
