"""`filter_viewer()`: what a CNN's convolution layers hold and compute, for one input image.

For a chosen Conv2d layer it shows, side by side:
- the filters (the layer's weight, (out, in, kh, kw)): trained first-layer filters should look smooth and
  structured (Veta: observing the learned features);
- the feature maps: the layer's output for the chosen image, one map per filter;
- the gradient maps: dS_c/d(feature map), how much each position of each map pushes the score S_c of a
  class c (the predicted class, or a chosen one). They come from one backward pass started with a
  one-hot upstream gradient at the output (dS_c/d scores = e_c), the same back-propagation that trains
  the net (Tomasi's backward recursion), stopped at the layer's output.

Colour normalisation (a toggle; values are divided by a positive scale, so 0 stays white and signs are
kept, and the colour bar always spans [-1, 1]):
- local: each filter or map by its own largest |value|: shapes are visible, strengths are not;
- per layer: the whole layer by its largest |value|: tiles within the layer compare;
- global: by the largest |value| of that kind (filters, maps or gradients) over all Conv2d layers:
  layers compare.

`FilterViewerModel` computes (no browser); `FilterViewer` adds the layer, image, class and normalisation
pickers and one figure redrawn in place. With no arguments the viewer shows the reference net: the default
CNN with weights shipped in `data/filter_viewer_weights.npz` (made by `data/make_filter_viewer_weights.py`),
or trained on the fly when that file is missing (once per session, cached).
"""
from __future__ import annotations

from pathlib import Path

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

from cnnlab.data import CLASSES, load_fashion_mnist
from cnnlab.hooks import recording
from cnnlab.losses import softmax
from cnnlab.models import default_cnn
from cnnlab.module import eval_mode, run_backward
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._training import check_net, conv_layers, train_reference_net
from widgets._view import WidgetView

__all__ = ["NORMALIZATIONS", "CMAP", "to_unit_range", "mosaic", "filter_mosaic", "FilterViewerModel",
           "FilterViewer", "reference_net", "filter_viewer", "WEIGHTS"]

NORMALIZATIONS = ("local", "layer", "global")
CMAP = plt.get_cmap("RdBu_r").with_extremes(bad="0.55")  # blue < 0 < red; grey gaps between tiles
WEIGHTS = Path(__file__).resolve().parents[1] / "data" / "filter_viewer_weights.npz"
MAX_TILES = 64  # feature and gradient maps shown per layer
MAX_INPUTS = 16  # input channels shown per filter


def _max_abs(a, axis=None):
    return np.max(np.abs(a), axis=axis) if np.size(a) else np.float64(0.0)


def to_unit_range(tiles, mode: str, global_max: float | None = None):
    """Divide tiles by a positive scale so that every value lies in [-1, 1] (0 stays 0, signs are kept).

    Inputs:
    - tiles: array (T, ...): T filters (T = output channels) or T maps of one layer.
    - mode: "local" (each tile by its own max |value|: every non-zero tile reaches +1 or -1),
      "layer" (all tiles by the layer's max |value|: the layer reaches 1, weak tiles look weak) or
      "global" (by `global_max`, the max |value| over every layer: layers can be compared).
    Returns (normalised tiles as float64, scale): scale has shape (T,) for "local", () otherwise. A scale
    of 0 (an all-zero tile or layer) is replaced by 1.
    """
    if mode not in NORMALIZATIONS:
        raise ValueError(f"normalisation must be one of {NORMALIZATIONS}, got {mode!r}")
    tiles = np.asarray(tiles, dtype=np.float64)
    if mode == "local":
        scale = _max_abs(tiles.reshape(len(tiles), -1), axis=1) if len(tiles) else np.ones(0)
        scale = np.where(scale > 0, scale, 1.0)
        return tiles / scale.reshape((-1,) + (1,) * (tiles.ndim - 1)), scale
    if mode == "layer":
        scale = _max_abs(tiles)
    else:
        if global_max is None:
            raise ValueError("global normalisation needs global_max, the largest |value| over all layers")
        scale = np.float64(global_max)
        if scale < _max_abs(tiles) * (1 - 1e-12):
            raise ValueError(f"global_max={float(scale):.6g} is smaller than this layer's max |value| "
                             f"{float(_max_abs(tiles)):.6g}: it must be the maximum over all layers")
    scale = np.float64(scale) if scale > 0 else np.float64(1.0)
    return tiles / scale, scale


def mosaic(tiles, columns: int | None = None, pad: int = 1) -> np.ndarray:
    """Lay out T small images (T, h, w) on a grid, row by row, with `pad` pixels of NaN between them
    (drawn as grey gaps). columns: tiles per row (default: a near-square grid). Returns a 2-D array."""
    tiles = np.asarray(tiles, dtype=np.float64)
    if tiles.ndim != 3:
        raise ValueError(f"mosaic expects tiles of shape (T, h, w), got {tiles.shape}")
    t, h, w = tiles.shape
    columns = max(1, int(np.ceil(np.sqrt(t)))) if columns is None else max(1, int(columns))
    rows = max(1, -(-t // columns))
    out = np.full((rows * (h + pad) - pad, columns * (w + pad) - pad), np.nan)
    for k in range(t):
        r, c = divmod(k, columns)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = tiles[k]
    return out


def filter_mosaic(weight, max_inputs: int = MAX_INPUTS, columns: int | None = None) -> np.ndarray:
    """A Conv2d weight (out, in, kh, kw) as one picture: a grid of filters when in == 1 (`columns` per row,
    default near-square), else one column per filter (output channel) and one row per input channel (the
    first `max_inputs`)."""
    weight = np.asarray(weight)
    if weight.ndim != 4:
        raise ValueError(f"a Conv2d weight has shape (out, in, kh, kw), got {weight.shape}")
    if weight.shape[1] == 1:
        return mosaic(weight[:, 0], columns)
    shown = np.swapaxes(weight[:, :max_inputs], 0, 1)  # (in, out, kh, kw): row = input channel
    return mosaic(shown.reshape(-1, *shown.shape[2:]), columns=weight.shape[0])


class FilterViewerModel:
    """Filters, feature maps and gradient maps of `net` for the images `x`.

    Inputs: net, any cnnlab net with at least one Conv2d that maps x to class scores (N, K); x, one image
    (C, H, W) or a batch (N, C, H, W) (cast to the net's float dtype); classes, K names (default: the
    Fashion-MNIST names when K = 10, else "class k").
    State: `layer` (index into `convs`), `image` (index into x), `target` (None = the predicted class, or
    a class index), `norm` (one of NORMALIZATIONS).
    After `update()`: `weights`, `maps`, `grads` (one array per Conv2d: (out, in, kh, kw), (out, H, W),
    (out, H, W)), `scores`, `probs`, `predicted`, `target_class`, and for the chosen layer `shown` =
    {"filters" | "maps" | "grads": (values in [-1, 1], scale)} (see `to_unit_range`).
    The net is run in eval mode; every module's training mode and every parameter's `.grad` are restored
    afterwards.
    """

    def __init__(self, net, x, classes=None, labels=None):
        check_net(net, "filter_viewer")
        self.net, self.convs = net, conv_layers(net)
        if not self.convs:
            raise ValueError(f"filter_viewer shows convolution filters, but the net ({type(net).__name__}) has no "
                             "cnnlab.layers.Conv2d layer")
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise TypeError(f"x must be a numeric image array, got dtype {x.dtype}")
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or len(x) == 0:
            raise ValueError(f"x must be one image (C, H, W) or a batch of images (N, C, H, W), got shape {x.shape}")
        self.x = x.astype(self.convs[0][1].weight.dtype, copy=False)
        try:
            with eval_mode(net), np.errstate(all="ignore"):
                out = net.forward(self.x[:1])
        except Exception as error:  # noqa: BLE001 - any failure here means x does not fit the net
            raise ValueError(f"the net cannot process images of shape {self.x.shape[1:]}: {error}") from None
        if out.ndim != 2:
            raise ValueError(f"the net must end in class scores of shape (N, K); for one image it returned {out.shape}")
        k = out.shape[1]
        if classes is None:
            classes = CLASSES if k == len(CLASSES) else tuple(f"class {i}" for i in range(k))
        if len(classes) != k:
            raise ValueError(f"classes has {len(classes)} names but the net gives {k} class scores")
        self.classes = tuple(classes)
        self.labels = None if labels is None else np.asarray(labels).reshape(-1)
        if self.labels is not None and (self.labels.shape != (len(self.x),) or self.labels.dtype.kind not in "iu"
                                        or self.labels.min() < 0 or self.labels.max() >= k):
            raise ValueError(f"labels must be {len(self.x)} integers in [0, {k}), got {self.labels.dtype} "
                             f"of shape {self.labels.shape}")
        self.layer, self.image, self.target, self.norm = 0, 0, None, "layer"
        self.update()

    def _check_state(self) -> None:
        if not 0 <= self.layer < len(self.convs):
            raise ValueError(f"layer must be in [0, {len(self.convs)}), got {self.layer}")
        if not 0 <= self.image < len(self.x):
            raise ValueError(f"image must be in [0, {len(self.x)}), got {self.image}")
        if self.target is not None and not 0 <= self.target < len(self.classes):
            raise ValueError(f"target must be None (the predicted class) or in [0, {len(self.classes)}), "
                             f"got {self.target}")
        if self.norm not in NORMALIZATIONS:
            raise ValueError(f"norm must be one of {NORMALIZATIONS}, got {self.norm!r}")

    def update(self) -> None:
        self._check_state()
        net, modules = self.net, [m for _, m in self.convs]
        grads_before = [p.grad.copy() for p in net.parameters()]
        try:
            with eval_mode(net), recording(modules) as (outputs, grads), np.errstate(all="ignore"):
                scores = net(self.x[self.image:self.image + 1])
                self.predicted = int(np.argmax(scores[0]))
                self.target_class = self.predicted if self.target is None else int(self.target)
                upstream = np.zeros_like(scores)
                upstream[0, self.target_class] = 1  # dS_c/d(scores) = e_c
                run_backward(net, upstream)
        finally:
            for p, g in zip(net.parameters(), grads_before):
                p.grad[...] = g
        unused = [self.convs[i][0] for i in range(len(modules)) if i not in outputs or i not in grads]
        if unused:
            raise ValueError(f"the Conv2d layers {unused} took no part in the forward and backward pass")
        self.scores = scores[0].astype(np.float64)
        self.probs = softmax(self.scores)
        self.weights = [m.weight.data.copy() for m in modules]
        self.maps = [outputs[i][0].copy() for i in range(len(modules))]
        self.grads = [grads[i][0].copy() for i in range(len(modules))]
        self.shown = {kind: to_unit_range(arrays[self.layer], self.norm, max(_max_abs(a) for a in arrays))
                      for kind, arrays in (("filters", self.weights), ("maps", self.maps), ("grads", self.grads))}


_REFERENCE: dict = {}  # the reference net, built once per session


def reference_net():
    """The default CNN with the shipped weights (data/filter_viewer_weights.npz); if that file is missing,
    the same recipe trained here for two epochs on the shipped subset (about half a minute, done once)."""
    if "net" not in _REFERENCE:
        net = default_cnn(0)
        if WEIGHTS.is_file():
            with np.load(WEIGHTS, allow_pickle=False) as stored:
                try:
                    net.load_state_dict({name: stored[name] for name in stored.files})
                except (KeyError, ValueError) as error:
                    raise ValueError(f"{WEIGHTS} does not hold the default CNN's weights ({error}); rebuild it "
                                     "with `python data/make_filter_viewer_weights.py`") from None
            _REFERENCE["net"] = net.eval()
        else:
            _REFERENCE["net"] = train_reference_net(epochs=2)[0]
    return _REFERENCE["net"]


def _picture(image) -> tuple[np.ndarray, str]:
    """An input image (C, H, W) as something imshow draws: grey for one channel, RGB for three."""
    if image.shape[0] == 3:
        lo, hi = image.min(), image.max()
        return np.moveaxis((image - lo) / (hi - lo if hi > lo else 1), 0, -1), None
    return image[0], "gray_r"


class FilterViewer(WidgetView):
    """The widget: `.model`, the controls `.layer`, `.image`, `.target`, `.norm`, the figure `.view`, `.status`."""

    def __init__(self, model: FilterViewerModel):
        self.model = m = model
        super().__init__()
        style = {"description_width": "70px"}
        self.layer = W.Dropdown(options=[(f"{name}: {conv!r}", k) for k, (name, conv) in enumerate(m.convs)],
                                value=m.layer, description="layer", style=style, layout=W.Layout(width="420px"))
        self.image = W.IntSlider(value=m.image, min=0, max=len(m.x) - 1, description="image", disabled=len(m.x) == 1,
                                 continuous_update=False, style=style)
        self.target = W.Dropdown(options=[("the predicted class", -1)] + [(f"{k}: {c}", k) for k, c in
                                                                          enumerate(m.classes)],
                                 value=-1 if m.target is None else int(m.target), description="gradient of",
                                 style=style)
        self.norm = W.ToggleButtons(options=[("local (each tile)", "local"), ("per layer", "layer"),
                                             ("global (all layers)", "global")], value=m.norm,
                                    description="colours", style=style)
        self.fig, axes = new_figure(1, 4, figsize=(13, 4.2), dpi=72, width_ratios=(0.8, 1.4, 1.4, 1.4))
        self.ax_input, *self.panel_axes = axes
        for ax in axes:
            ax.set_xticks([]), ax.set_yticks([])
        self.fig.subplots_adjust(left=0.01, right=0.9, bottom=0.03, top=0.8, wspace=0.08)
        lo, hi = float(m.x.min()), float(m.x.max())
        picture, cmap = _picture(m.x[m.image])
        self.input_tile = self.ax_input.imshow(picture, cmap=cmap, vmin=lo, vmax=hi if hi > lo else lo + 1)
        self.panel_images = [ax.imshow(tiles, cmap=CMAP, vmin=-1, vmax=1, interpolation="nearest")
                             for ax, (_, tiles) in zip(self.panel_axes, self._panels())]
        self.fig.colorbar(self.panel_images[0], cax=self.fig.add_axes((0.915, 0.12, 0.012, 0.6)),
                          label="value ÷ scale (see the titles)")
        # the pictures and titles redraw alone over a saved picture of the axes (see FigureView); a layer
        # of another shape moves the limits, and that draws the whole figure
        self.view = FigureView(self.fig, animated=[self.input_tile, *self.panel_images,
                                                   *(ax.title for ax in axes)])
        self.observe(lambda change: self.update(), self.layer, self.image, self.target, self.norm)
        self.widget = W.VBox([W.HBox([self.layer, self.target]), W.HBox([self.image, self.norm]),
                              self.view.widget, self.status.widget])
        self.update()

    def _panels(self) -> list[tuple[str, np.ndarray]]:
        m = self.model
        filters, fscale = m.shown["filters"]
        maps, mscale = m.shown["maps"]
        grads, gscale = m.shown["grads"]
        how = {"local": "each tile ÷ its own max |·|", "layer": "÷ layer max |·| = {:.2g}",
               "global": "÷ max |·| over all layers = {:.2g}"}[m.norm]
        out, cin, kh, kw = m.weights[m.layer].shape
        layout = f"{out} filters {kh}x{kw}" if cin == 1 else \
            f"{out} filters (columns) x {min(cin, MAX_INPUTS)}{'' if cin <= MAX_INPUTS else f' of {cin}'} inputs (rows)"
        n = len(maps)
        more = "" if n <= MAX_TILES else f" (first {MAX_TILES} of {n})"
        name = m.classes[m.target_class]
        return [(f"filters: {layout}\n{how.format(float(np.max(fscale)))}", filter_mosaic(filters)),
                (f"feature maps{more}\n{how.format(float(np.max(mscale)))}", mosaic(maps[:MAX_TILES])),
                (f"gradient maps dS/d(map), S = score of {name}{more}\n{how.format(float(np.max(gscale)))}",
                 mosaic(grads[:MAX_TILES]))]

    def update(self) -> None:
        """Read the controls, recompute the model and redraw."""
        m = self.model
        m.layer, m.image, m.norm = self.layer.value, self.image.value, self.norm.value
        m.target = None if self.target.value < 0 else self.target.value
        m.update()
        picture, _ = _picture(m.x[m.image])
        self.input_tile.set_data(picture)
        for ax, image, (title, tiles) in zip(self.panel_axes, self.panel_images, self._panels()):
            image.set_data(tiles)
            image.set_extent((-0.5, tiles.shape[1] - 0.5, tiles.shape[0] - 0.5, -0.5))
            ax.set_xlim(-0.5, tiles.shape[1] - 0.5), ax.set_ylim(tiles.shape[0] - 0.5, -0.5)
            ax.set_title(title, fontsize=9)
        true = "" if m.labels is None else f": {m.classes[m.labels[m.image]]}"
        self.ax_input.set_title(f"input {m.image}{true}\nnet says: {m.classes[m.predicted]} "
                                f"({m.probs[m.predicted]:.0%})", fontsize=9)
        self.view.refresh()
        name, conv = m.convs[m.layer]
        self.status.show(f"layer {name} ({conv!r}); gradients of the score of {m.classes[m.target_class]} "
                         f"(p = {m.probs[m.target_class]:.2f}); colours: {m.norm} normalisation")


def filter_viewer(net=None, x=None, *, labels=None, classes=None) -> FilterViewer:
    """The filter viewer (see the module docstring).

    net: a cnnlab net with a Conv2d that maps x to class scores (default: the reference net); x: one image
    (C, H, W) or a batch (N, C, H, W) (default: the Fashion-MNIST test images, with their labels);
    labels: the true classes of x (optional, shown above the image); classes: names of the net's K classes.
    """
    if net is None:
        net = reference_net()
    if x is None:
        x, labels, _ = load_fashion_mnist("test")
    return FilterViewer(FilterViewerModel(net, x, classes, labels))
