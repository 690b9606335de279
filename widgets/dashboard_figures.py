"""The four figures of the training dashboard (`widgets.training_dashboard`) and how each is drawn from the
model: the curves (loss, accuracy, learning rate), the filters of the first two Conv2d layers, the feature
maps of one validation image, and the results (confusion matrix, misclassified images).

`DashboardFigures` is the drawing half of `TrainingDashboard`, which provides what it reads: `.model` (a
`DashboardModel`), the `.image` slider, `._draw_lock` (the thread and the controls never draw at once),
`._busy` (a run is going on), and the four `FigureView`s made after `_build_figures` (`.curves_view`,
`.filters_view`, `.maps_view`, `.results_view`).
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from widgets._new_figure import new_figure, nice_ceil
from widgets.filter_viewer import CMAP, MAX_INPUTS, filter_mosaic, mosaic, to_unit_range

__all__ = ["DashboardFigures", "WRONG_COLUMNS"]

WRONG_COLUMNS = 6  # misclassified images per row (two rows)
_GRAY = plt.get_cmap("gray_r").with_extremes(bad="white")


class DashboardFigures:
    """Builds the dashboard's figures (`_build_figures`) and redraws each from the model (`_draw_*`)."""

    def _build_figures(self) -> None:
        m = self.model
        self.fig_curves, (self.ax_loss, self.ax_acc, self.ax_lr) = new_figure(1, 3, figsize=(11, 2.9), dpi=72)
        self.lines = {}
        for ax, key, where in [(self.ax_loss, "loss", "upper right"), (self.ax_acc, "accuracy", "lower right")]:
            self.lines[key + "_raw"], = ax.plot([], [], "-", color="C0", alpha=0.25, lw=0.8)
            self.lines[key], = ax.plot([], [], "-", color="C0", lw=1.6, label="training (mean of 20 steps)")
            self.lines["val_" + key], = ax.plot([], [], "o-", color="C3", ms=4, lw=1.4, label="validation")
            ax.set_xlabel("step"), ax.legend(fontsize=8, loc=where)  # a fixed place: "best" costs time
        self.lines["lr"], = self.ax_lr.plot([], [], "-", color="C2", lw=1.6)
        self.lines["lr_now"], = self.ax_lr.plot([], [], "o", color="C2", ms=6)
        self.ax_loss.set_title("cross-entropy loss", fontsize=10), self.ax_acc.set_title("accuracy", fontsize=10)
        self.ax_lr.set_title("learning rate (change it any time)", fontsize=10)
        self.ax_acc.set_ylim(0, 1), self.ax_lr.set_yscale("log"), self.ax_lr.set_xlabel("step")
        self.diverged_marks = [ax.axvline(np.nan, color="C3", ls=":", lw=1.2) for ax in (self.ax_loss, self.ax_acc)]
        self.fig_curves.subplots_adjust(left=0.05, right=0.99, bottom=0.17, top=0.9, wspace=0.25)

        self.fig_filters, axes = new_figure(1, 2, figsize=(11, 3.3), dpi=72, width_ratios=(1, 2.2))
        self.fig_maps, maps_axes = new_figure(1, 3, figsize=(11, 3.6), dpi=72)
        self.filter_axes, self.map_axes = list(axes), list(maps_axes[1:])
        self.ax_image = maps_axes[0]
        convs = [m.weight.shape for m in self.model._viz_convs][:2]
        self.filter_images, self.map_images = [], []
        maps, _ = m.feature_maps(0)
        for k, ax in enumerate(self.filter_axes):
            self.filter_images.append(ax.imshow(filter_mosaic(np.zeros(convs[k])), cmap=CMAP, vmin=-1, vmax=1)
                                      if k < len(convs) else None)
            if k >= len(convs):
                ax.text(0.5, 0.5, "the net has no second Conv2d layer", ha="center", transform=ax.transAxes)
        for k, ax in enumerate(self.map_axes):
            self.map_images.append(ax.imshow(mosaic(maps[k]), cmap=CMAP, vmin=-1, vmax=1)
                                   if k < len(maps) else None)
        self.image_tile = self.ax_image.imshow(self._image(0), cmap="gray_r", vmin=0, vmax=1)
        for ax in self.filter_axes + self.map_axes + [self.ax_image]:
            ax.set_xticks([]), ax.set_yticks([])
        for fig, image, label in [(self.fig_filters, self.filter_images[0], "weight ÷ layer max |w|"),
                                  (self.fig_maps, self.map_images[0], "value ÷ layer max |value|")]:
            fig.subplots_adjust(left=0.01, right=0.9, bottom=0.03, top=0.86, wspace=0.06)
            fig.colorbar(image, cax=fig.add_axes((0.915, 0.1, 0.012, 0.7)), label=label)

        self.fig_results, (self.ax_confusion, self.ax_wrong) = new_figure(1, 2, figsize=(11, 3.8), dpi=72,
                                                                           width_ratios=(1, 1.6))
        n = len(m.classes)
        self.confusion_image = self.ax_confusion.imshow(np.zeros((n, n)), cmap="Blues", vmin=0, vmax=1)
        self.ax_confusion.set_xlabel("predicted class"), self.ax_confusion.set_ylabel("true class")
        self.ax_confusion.set_xticks(range(n)), self.ax_confusion.set_yticks(range(n))
        self.ax_confusion.set_xticklabels([str(k) for k in range(n)], fontsize=7)
        h, w = m.X_val.shape[2:]
        self._wrong_cells = [(r * (h + h // 2) + h // 2, c * (w + 2)) for r in range(2) for c in range(WRONG_COLUMNS)]
        self.wrong_image = self.ax_wrong.imshow(self._wrong_grid([]), cmap=_GRAY, vmin=0, vmax=1)
        self.wrong_labels = [self.ax_wrong.text(left + w / 2, top - 0.7, "", ha="center", va="bottom", fontsize=7)
                             for top, left in self._wrong_cells]
        self.ax_wrong.set_xticks([]), self.ax_wrong.set_yticks([]), self.ax_wrong.axis("off")
        self.fig_results.subplots_adjust(left=0.13, right=0.99, bottom=0.12, top=0.9, wspace=0.05)

    def _wrong_grid(self, indices) -> np.ndarray:
        """Up to 2 x WRONG_COLUMNS validation images (grey: the mean over channels), with room for labels."""
        X = self.model.X_val
        h, w = X.shape[2:]
        grid = np.full((2 * (h + h // 2), WRONG_COLUMNS * (w + 2) - 2), np.nan)
        for (top, left), i in zip(self._wrong_cells, indices):
            grid[top:top + h, left:left + w] = X[i].mean(axis=0)
        return grid

    def _refresh(self, name: str) -> None:
        view = getattr(self, f"{name}_view", None)
        if view is not None:  # None while __init__ draws the first picture
            view.refresh()

    def _image(self, index):
        x = self.model.X_val[index]
        return x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1).clip(0, 1)

    def _draw_curves(self) -> None:
        c, m = self.model.curves(), self.model
        for key in ("loss", "accuracy"):
            self.lines[key + "_raw"].set_data(c["step"], c[key])
            self.lines[key].set_data(c["step"], c[key + "_smooth"])
            self.lines["val_" + key].set_data(c["eval_step"], c["val_" + key])
        self.lines["lr"].set_data(c["step"], c["lr"])
        self.lines["lr_now"].set_data([max(m.step, 1)], [m.lr])
        total = max(m.epochs * m.steps_per_epoch, m.step, 1)
        for ax in (self.ax_loss, self.ax_acc, self.ax_lr):
            ax.set_xlim(0, total * 1.02)
        finite = c["loss"][np.isfinite(c["loss"])]
        top = max(np.percentile(finite, 98) if len(finite) else 2.5, *c["val_loss"][np.isfinite(c["val_loss"])], 0.1)
        self.ax_loss.set_ylim(0, nice_ceil(top * 1.05))  # limits at round values: most redraws blit the curves
        lrs = np.append(c["lr"], m.lr)
        self.ax_lr.set_ylim(10.0 ** np.floor(np.log10(lrs.min() / 2)), 10.0 ** np.ceil(np.log10(lrs.max() * 2)))
        at = m.trainer.history.diverged_at
        for mark in self.diverged_marks:
            mark.set_xdata([np.nan if at is None else at] * 2)
        self._refresh("curves")

    def _draw_filters(self) -> None:
        for k, (weight, tile) in enumerate(zip(self.model.filters(), self.filter_images)):
            if tile is None:
                continue
            scaled, scale = to_unit_range(weight, "layer")
            tile.set_data(filter_mosaic(scaled))
            out, cin, kh, kw = weight.shape
            shape = f"{out} filters, {kh}x{kw}" if cin == 1 else \
                f"{out} filters (columns) x {min(cin, MAX_INPUTS)} input maps (rows)"
            self.filter_axes[k].set_title(f"layer {k + 1}: {shape}; max |w| = {float(scale):.2g}", fontsize=9)
        self._refresh("filters")

    def _draw_maps(self) -> None:
        with self._draw_lock:
            index, m = self.image.value, self.model
            maps, probs = m.feature_maps(index)
            for k, tile in enumerate(self.map_images):
                if tile is not None:
                    scaled, scale = to_unit_range(maps[k], "layer")
                    tile.set_data(mosaic(scaled))
                    self.map_axes[k].set_title(f"feature maps of conv layer {k + 1} (max {float(scale):.2g})",
                                               fontsize=9)
            self.image_tile.set_data(self._image(index))
            guess = int(np.argmax(probs)) if np.isfinite(probs).all() else None
            label = m.classes[m.y_val[index]]
            said = "?" if guess is None else f"{m.classes[guess]} ({probs[guess]:.0%})"
            self.ax_image.set_title(f"true: {label}\nnet says: {said}", fontsize=9)
            self._refresh("maps")

    def _confusion_labels(self, labels) -> None:
        """The confusion matrix's row labels; new ones (tick labels are not animated) redraw the figure."""
        if [t.get_text() for t in self.ax_confusion.get_yticklabels()] != labels:
            self.ax_confusion.set_yticklabels(labels, fontsize=7)
            view = getattr(self, "results_view", None)
            if view is not None:
                view.invalidate()

    def _draw_results(self) -> None:
        m = self.model
        ready = m.step > 0 and not self._busy
        r = m.results() if ready else None
        n = len(m.classes)
        if r is None:
            self.confusion_image.set_data(np.zeros((n, n)))
            self.ax_confusion.set_title("confusion matrix: appears when training stops", fontsize=9)
            self._confusion_labels([m.classes[k] for k in range(n)])
        else:
            rows = r["confusion"] / np.maximum(r["confusion"].sum(axis=1, keepdims=True), 1)
            self.confusion_image.set_data(rows)
            self.ax_confusion.set_title(f"validation confusion (row-normalised), step {r['step']}: "
                                        f"accuracy {r['accuracy']:.1%}", fontsize=9)
            self._confusion_labels([f"{m.classes[k]} {acc:.0%}" if np.isfinite(acc) else m.classes[k]
                                    for k, acc in enumerate(r["per_class"])])
        shown = [] if r is None else r["wrong"][:len(self._wrong_cells)]
        self.wrong_image.set_data(self._wrong_grid(shown))
        for i, label in enumerate(self.wrong_labels):
            if i < len(shown):
                guess = "?" if r["pred"][i] < 0 else m.classes[r["pred"][i]]
                label.set_text(f"{m.classes[r['true'][i]]}\n→ {guess}")
            else:
                label.set_text("")
        what = "" if r is None else f": {len(r['wrong'])} of {len(m.y_val)}, the first {len(shown)}"
        self.ax_wrong.set_title(f"misclassified validation images (true → predicted){what}", fontsize=9)
        self._refresh("results")
