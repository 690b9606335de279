"""`jacobian_viewer()`: look at one layer's Jacobians inside a small net, and check them.

For the layer picked in a menu, at the input it receives inside the net, the widget shows Tomasi's two
Jacobians (eq. (5)) as images: J_x = dx^(l)/dx^(l-1) (one row per output, one column per input) and
J_w = dx^(l)/dw^(l) (one column per parameter, weight row-major then bias), both computed by
`cnnlab.jacobian` from the layer's own `backward`. A colour map centred at 0 shows the sign pattern;
a plot shows their singular values; a badge says whether they agree with finite differences (one-sided
differences too, so that the kinks of ReLU and max pooling are judged fairly).

The model (`JacobianModel`, in `widgets.jacobian_model`, whose names this module also exports) is plain
NumPy and can be driven without a browser; `JacobianViewer` adds the controls (layer, input source,
image index or seed) and one figure redrawn in place.
"""
from __future__ import annotations

import html

import ipywidgets as W
import numpy as np
from matplotlib.ticker import MaxNLocator

from widgets._figure import FigureView
from widgets._new_figure import new_figure, nice_ceil
from widgets._view import WidgetView
from widgets.jacobian_model import (SOURCES, DifferenceCheck, JacobianModel, compare_with_differences, default_net,
                                    downsample, one_sided_jacobians)

__all__ = ["DifferenceCheck", "JacobianModel", "JacobianViewer", "jacobian_viewer", "default_net",
           "downsample", "one_sided_jacobians", "compare_with_differences"]


def _badge(ok: bool, text: str) -> str:
    color, mark = ("#1a7f37", "\u2713") if ok else ("#cf222e", "\u2717")
    return (f'<span style="background:{color};color:white;padding:2px 8px;border-radius:4px;'
            f'font-weight:bold">{mark} {html.escape(text)}</span>')


class JacobianViewer(WidgetView):
    """The viewer: `.model`, the controls `.layer`, `.source`, `.sample`, the `.badge`, the figure `.view`."""

    def __init__(self, net, x=None, images=None):
        super().__init__()
        self.model = JacobianModel(net, x, images)
        m = self.model
        self.badge = W.HTML(value="")
        self.layer = W.Dropdown(options=[(name, i) for i, name in enumerate(m.layer_names())],
                                  value=m.layer_index,
                                description="layer", layout=W.Layout(width="420px"))
        self.source = W.Dropdown(options=[(SOURCES[s], s) for s in m.sources], value=m.source,
                                 description="input")
        self.sample = W.IntSlider(value=m.sample, min=0, max=m.max_sample, description=self._sample_label(),
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
        # the matrices, lines and titles redraw alone over a saved picture of the axes (see FigureView);
        # the singular values' axis tops at 1/2/5 x 10^k (a new colour scale redraws its colour bar: all)
        # (a layer without parameters hides J_w's axis lines and colour bar: FigureView watches their visibility, and
        # keeps the pictures of the last states drawn, so going back to a layer seen before blits)
        self.view = FigureView(self.fig, animated=[self.input_image, self.jx_image, self.jw_image, self.sv_x_line,
                                                   self.sv_w_line, self.input_ax.title, self.jx_ax.title,
                                                   self.jw_ax.title, self.sv_ax._left_title, self.jw_empty],
                               pictures=8)

        self.observe(lambda change: self.update(), self.layer, self.sample)
        self.observe(self._on_source, self.source)
        controls = W.HBox([self.layer, self.source, self.sample])
        self.widget = W.VBox([controls, self.badge, self.view.widget, self.status.widget])
        self._draw()

    def _sample_label(self) -> str:
        return "image #" if self.model.source == "image" else "seed"

    def _on_source(self, change) -> None:
        self.model.source = change["new"]
        with self.syncing(), self.sample.hold_trait_notifications():  # no second redraw from the slider
            self.sample.max = self.model.max_sample
            self.sample.value = 0
            self.sample.description = self._sample_label()
            self.sample.disabled = self.model.source == "custom"
        self.update()

    def update(self) -> None:
        """Read the controls, recompute the model and redraw (what every control change does)."""
        self.push_to_model(layer_index=self.layer, source=self.source, sample=self.sample)
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
        # the titles' place is fixed (y=1): left to matplotlib, every draw would measure the axes' tick labels to
        # lift a title above any at the top, and these axes have none there (the same picture, a sixth faster)
        self.input_ax.set_title(f"net input {tuple(m.x.shape[1:])}", fontsize=9, y=1.0)

        D, M = m.J_x.shape
        self._show_matrix(self.jx_ax, self.jx_image, m.J_x)
        self.jx_ax.set_title(rf"$J_x = \partial x^{{(\ell)}}/\partial x^{{(\ell-1)}}$: {D} $\times$ {M}", fontsize=9,
                           y=1.0)
        P = m.J_w.shape[1]
        has_params = P > 0
        self.jw_image.set_visible(has_params)
        self.jw_empty.set_visible(not has_params)
        self.jw_bar.ax.set_visible(has_params)
        self.jw_ax.xaxis.set_visible(has_params), self.jw_ax.yaxis.set_visible(has_params)
        # hidden when there are no parameters: limits and colours of a 1 x 1 zero matrix, the same for every such
        # layer (the state FigureView keeps a picture of)
        self._show_matrix(self.jw_ax, self.jw_image, m.J_w if has_params else np.zeros((1, 1)))
        self.jw_ax.set_title(rf"$J_w = \partial x^{{(\ell)}}/\partial w^{{(\ell)}}$: {D} $\times$ {P}", fontsize=9,
                           y=1.0)

        self.sv_x_line.set_data(np.arange(1, len(m.sv_x) + 1), m.sv_x)
        self.sv_w_line.set_data(np.arange(1, len(m.sv_w) + 1), m.sv_w)
        self.sv_ax.set_xlim(0.5, max(len(m.sv_x), len(m.sv_w), 1) + 0.5)
        top = max([1.0] + [float(s.max()) for s in (m.sv_x, m.sv_w) if s.size])
        self.sv_ax.set_ylim(0, nice_ceil(1.08 * top))
        self.sv_ax.set_title(f"singular values of layer {m.layer_index} ({type(m.layer).__name__}): "
                             f"largest {m.sv_x[0]:.3g} for $J_x$" if m.sv_x.size else "", fontsize=9, loc="left",
                             y=1.0)  # its axis tops at 2 or more: no offset text above the axes
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
