"""`dataset_gallery()`: browse a labelled image set class by class, with the class's mean image.

The model (`GalleryModel`) is plain NumPy and can be driven without a browser; `DatasetGallery` adds a
class picker, a slider over the examples of that class, and one figure that is redrawn in place.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView

__all__ = ["GalleryModel", "DatasetGallery", "dataset_gallery"]

ALL = -1  # the class picker's value for "every class"


class GalleryModel:
    """Which images the gallery shows.

    Inputs: X (N, 1, H, W) or (N, H, W) images, y (N,) integer labels in [0, len(classes)), classes.
    State: `class_index` (ALL or a class), `start` (first example of that class shown), `n` (how many).
    After `update()`: `indices` (which rows of X are shown), `images` (n_shown, H, W), `labels`,
    `count` (examples of the chosen class) and `mean_image` (H, W), the class's average picture.
    """

    def __init__(self, X, y, classes, n: int = 16):
        X = np.asarray(X)
        if X.ndim == 4 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 3:
            raise ValueError(f"images must have shape (N, 1, H, W) or (N, H, W), got {np.shape(X)}")
        y = np.asarray(y)
        if y.shape != (len(X),):
            raise ValueError(f"labels must have shape ({len(X)},) to match the images, got {y.shape}")
        if y.dtype.kind not in "iu" or (len(y) and (y.min() < 0 or y.max() >= len(classes))):
            raise ValueError(f"labels must be integers in [0, {len(classes)}), got dtype {y.dtype} "
                             f"with range [{y.min()}, {y.max()}]")
        if n < 1:
            raise ValueError(f"n (images per page) must be at least 1, got {n}")
        self.X, self.y, self.classes, self.n = X, y, tuple(classes), int(n)
        self.counts = np.bincount(y, minlength=len(self.classes))
        self.class_index, self.start = ALL, 0
        self.update()

    def members(self) -> np.ndarray:
        """Row indices of the chosen class (all rows for ALL)."""
        if self.class_index == ALL:
            return np.arange(len(self.y))
        return np.flatnonzero(self.y == self.class_index)

    @property
    def max_start(self) -> int:
        return max(len(self.members()) - self.n, 0)

    def update(self) -> None:
        if self.class_index != ALL and not 0 <= self.class_index < len(self.classes):
            raise ValueError(f"class_index must be {ALL} (all) or in [0, {len(self.classes)}), "
                             f"got {self.class_index}")
        members = self.members()
        self.start = int(np.clip(self.start, 0, self.max_start))
        self.indices = members[self.start:self.start + self.n]
        self.images = self.X[self.indices]
        self.labels = self.y[self.indices]
        self.count = len(members)
        self.mean_image = self.X[members].mean(axis=0) if len(members) else np.zeros(self.X.shape[1:])


class DatasetGallery(WidgetView):
    """The gallery widget: `.model`, the controls `.class_picker` and `.start`, the figure `.view`."""

    def __init__(self, X, y, classes, n: int = 16, columns: int = 8):
        self.model = GalleryModel(X, y, classes, n)
        super().__init__()
        options = [("all classes", ALL)] + [
            (f"{i}: {name} ({count})", i) for i, (name, count) in enumerate(zip(classes, self.model.counts))]
        self.class_picker = W.Dropdown(options=options, value=self.model.class_index, description="class")
        self.start = W.IntSlider(value=self.model.start, min=0, max=self.model.max_start, description="first image",
                                 continuous_update=False, layout=W.Layout(width="420px"))
        rows = -(-self.model.n // columns)
        self.fig, _ = new_figure(figsize=(1.1 * columns + 2.6, 1.25 * rows + 0.4))
        self.fig.clf()
        grid = self.fig.add_gridspec(rows, columns + 2)
        self.axes = [self.fig.add_subplot(grid[i // columns, i % columns]) for i in range(self.model.n)]
        self.mean_ax = self.fig.add_subplot(grid[:, columns:])
        blank = np.zeros(self.model.X.shape[1:])
        self.tiles = [ax.imshow(blank, cmap="gray_r", vmin=0, vmax=1) for ax in self.axes]
        self.mean_tile = self.mean_ax.imshow(blank, cmap="magma", vmin=0, vmax=1)
        for ax in self.axes + [self.mean_ax]:
            ax.set_xticks([]), ax.set_yticks([])
        self.fig.subplots_adjust(left=0.01, right=0.99, bottom=0.02, top=0.9, wspace=0.1, hspace=0.35)
        # the images and titles redraw alone over a saved picture of the empty axes (see FigureView)
        self.view = FigureView(self.fig, animated=[*self.tiles, self.mean_tile,
                                                   *(ax.title for ax in [*self.axes, self.mean_ax])])

        self.class_picker.observe(self.guard(self._on_class), names="value")
        self.start.observe(self.guard(self._on_start), names="value")
        self.widget = W.VBox([W.HBox([self.class_picker, self.start]), self.view.widget, self.status.widget])
        self.update()

    def _on_class(self, change) -> None:
        self.model.class_index, self.model.start = change["new"], 0
        self.model.update()
        with self.start.hold_trait_notifications():
            self.start.max = self.model.max_start
            self.start.value = 0
        self._draw()

    def _on_start(self, change) -> None:
        self.model.start = change["new"]
        self._draw_after_update()

    def _draw_after_update(self) -> None:
        self.model.update()
        self._draw()

    def update(self) -> None:
        """Read the controls, recompute the model and redraw (what every control change does)."""
        self.model.class_index, self.model.start = self.class_picker.value, self.start.value
        self._draw_after_update()

    def _draw(self) -> None:
        m = self.model
        for i, (ax, tile) in enumerate(zip(self.axes, self.tiles)):
            shown = i < len(m.indices)
            tile.set_data(m.images[i] if shown else np.zeros_like(m.mean_image))
            ax.set_title(m.classes[m.labels[i]] if shown else "", fontsize=7)
        name = "all classes" if m.class_index == ALL else m.classes[m.class_index]
        self.mean_ax.set_title(f"mean of {name}", fontsize=9)
        self.mean_tile.set_data(m.mean_image)
        self.view.refresh()
        last = m.start + len(m.indices)
        self.status.show(f"{name}: images {m.start + 1}-{last} of {m.count}; the right panel averages all "
                         f"{m.count} of them")


def dataset_gallery(X=None, y=None, classes=None, n: int = 16) -> DatasetGallery:
    """A gallery of images by class. Without arguments it shows the Fashion-MNIST training split."""
    if X is None:
        from cnnlab.data import load_fashion_mnist

        X, y, classes = load_fashion_mnist("train")
    if y is None or classes is None:
        raise ValueError("dataset_gallery needs labels y and class names together with the images X")
    return DatasetGallery(X, y, classes, n=n)
