"""`backprop_stepper()`: step through one forward and one backward pass of a tiny net, and watch
Tomasi's running average (Algorithm 1) converge to the batch gradient.

The net is 2 -> H -> 2 with sigmoid units (H = 3 by default), built from `cnnlab.layers` and trained on
nothing: the widget only *looks* at one sample at a time. Every number comes from the library:

- forward: u1 = Linear1(x0), x1 = Sigmoid(u1), u2 = Linear2(x1), x2 = Sigmoid(u2);
- loss: `MSELoss()` (mean over the 2 outputs), so with two outputs E_n = 1/2 ||x2 - t||^2, Bouvrie's
  eq. (1), and dE_n/dx2 = x2 - t (Tomasi's eq. (4));
- backward: each layer's `backward` gives the next sensitivity (Bouvrie's delta, eq. (4); Tomasi's
  recursion, eq. (3)) and writes its parameter gradients (Tomasi's eq. (2), Bouvrie's eq. (5));
- Algorithm 1: `cnnlab.backprop.backprop_per_sample` on the first n samples (the running average
  after n steps), compared with `cnnlab.backprop.backprop_batched` on all N.

`BackpropStepperModel` is plain NumPy and can be driven without a browser; `BackpropStepper` adds a
stage slider (with back/next buttons), a sample slider, one figure redrawn in place, and a status line.
"""
from __future__ import annotations

import numbers

import ipywidgets as W
import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Circle

from cnnlab import Sequential
from cnnlab.backprop import backprop_batched, backprop_per_sample
from cnnlab.layers import Linear, Sigmoid
from cnnlab.losses import MSELoss, one_hot
from cnnlab.rng import as_generator
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView

__all__ = ["STAGES", "BackpropStepperModel", "BackpropStepper", "backprop_stepper"]

# The six stages: three forward (one per column of units), three backward (in reverse order).
STAGES = (
    "fwd 1: input",
    "fwd 2: hidden",
    "fwd 3: output, loss",
    "bwd 1: output \u03b4",
    "bwd 2: hidden \u03b4",
    "bwd 3: input grad",
)
# What each stage computes, in words (the figure's title).
STAGE_TITLES = (
    "forward: the input enters",
    "forward, layer 1: hidden units",
    "forward, layer 2: output units and the loss",
    "backward, layer 2: output sensitivities and gradients",
    "backward, layer 1: hidden sensitivities and gradients",
    "backward: the gradient with respect to the input",
)
FORWARD_STAGES = 3
MAX_SAMPLES = 500
MAX_HIDDEN = 6


def _count(value, name: str, low: int, high: int) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


class BackpropStepperModel:
    """What the stepper shows: one sample's forward and backward pass, and Algorithm 1's running average.

    BackpropStepperModel(n_samples=20, hidden=3, rng=0)
    - net: Sequential([Linear(2, hidden), Sigmoid(), Linear(hidden, 2), Sigmoid()]) in float64.
    - X (N, 2) inputs from a standard normal; Y (N, 2) one-hot targets of the class [x_1 x_2 > 0].
    - per_sample (N, P): the gradient of E_n for each sample alone, flattened in `parameters()` order
      (weight1, bias1, weight2, bias2); running (N, P): row n-1 is Algorithm 1's average after n samples;
      batch (P,): the gradient of E = (1/N) sum_n E_n from one batched pass. `param_labels` names each
      of the P entries; `tracked` holds the indices of the three largest batch-gradient entries.

    State: `stage` (0..5, see STAGES) and `n` (1..N, 1-based as in Algorithm 1). After `update()`:
    x0, u1, x1, u2, x2, t (vectors of sample n), loss (E_n), delta2 = dE_n/du2, dx1 = dE_n/dx1,
    delta1 = dE_n/du1, dx0 = dE_n/dx0, dW1, db1, dW2, db2 (parameter gradients of E_n), average
    (running[n-1]) and distance = ||average - batch|| / ||batch||.
    """

    def __init__(self, n_samples: int = 20, hidden: int = 3, rng=0):
        self.n_samples = _count(n_samples, "n_samples", 1, MAX_SAMPLES)
        self.hidden = _count(hidden, "hidden", 1, MAX_HIDDEN)
        gen = as_generator(rng, "backprop_stepper")
        self.net = Sequential([Linear(2, self.hidden, rng=gen), Sigmoid(),
                               Linear(self.hidden, 2, rng=gen), Sigmoid()]).astype(np.float64)
        self.X = gen.standard_normal((self.n_samples, 2))
        self.Y = one_hot((self.X[:, 0] * self.X[:, 1] > 0).astype(np.int64), 2, dtype=np.float64)
        self.loss_fn = MSELoss()
        self.param_labels = self._labels()
        flat = lambda grads: np.concatenate([g.ravel() for g in grads])  # noqa: E731
        N = self.n_samples
        self.per_sample = np.stack([flat(backprop_batched(self.net, self.loss_fn, self.X[i:i + 1], self.Y[i:i + 1]))
                                    for i in range(N)])
        self.running = np.stack([flat(backprop_per_sample(self.net, self.loss_fn, self.X[:n], self.Y[:n]))
                                 for n in range(1, N + 1)])
        self.batch = flat(backprop_batched(self.net, self.loss_fn, self.X, self.Y))
        self.tracked = tuple(int(i) for i in np.argsort(-np.abs(self.batch), kind="stable")[:3])
        self.stage, self.n = 0, 1
        self.update()

    def _labels(self) -> list[str]:
        labels = []
        lin1, lin2 = self.net[0], self.net[2]
        for layer, p in ((1, lin1.weight), (1, lin1.bias), (2, lin2.weight), (2, lin2.bias)):
            symbol = "W" if p.data.ndim == 2 else "b"
            for index in np.ndindex(p.shape):
                sub = ",".join(str(i + 1) for i in index)
                labels.append(rf"$\partial E/\partial {symbol}^{{({layer})}}_{{{sub}}}$")
        return labels

    @property
    def weights(self) -> tuple[np.ndarray, np.ndarray]:
        """(W1 (H, 2), W2 (2, H)): the weights on the graph's edges, rows = receiving unit."""
        return self.net[0].weight.data, self.net[2].weight.data

    def update(self) -> None:
        if not (isinstance(self.stage, numbers.Integral) and 0 <= self.stage < len(STAGES)):
            raise ValueError(f"stage must be an int in [0, {len(STAGES)}), got {self.stage!r}")
        if not (isinstance(self.n, numbers.Integral) and 1 <= self.n <= self.n_samples):
            raise ValueError(f"sample n must be an int in [1, {self.n_samples}] (Algorithm 1 counts from 1), "
                             f"got {self.n!r}")
        lin1, sig1, lin2, sig2 = self.net
        i = self.n - 1
        x0, t = self.X[i:i + 1], self.Y[i:i + 1]
        u1 = lin1.forward(x0)
        x1 = sig1.forward(u1)
        u2 = lin2.forward(x1)
        x2 = sig2.forward(u2)
        self.loss = self.loss_fn.forward(x2, t)
        g = self.loss_fn.backward()      # dE_n/dx2 (Tomasi's eq. (4))
        delta2 = sig2.backward(g)         # dE_n/du2
        dx1 = lin2.backward(delta2)       # dE_n/dx1; writes dE_n/dW2, dE_n/db2
        delta1 = sig1.backward(dx1)       # dE_n/du1
        dx0 = lin1.backward(delta1)       # dE_n/dx0; writes dE_n/dW1, dE_n/db1
        self.x0, self.t, self.u1, self.x1, self.u2, self.x2 = (a[0] for a in (x0, t, u1, x1, u2, x2))
        self.dEdx2, self.delta2, self.dx1, self.delta1, self.dx0 = (a[0] for a in (g, delta2, dx1, delta1, dx0))
        self.dW1, self.db1 = lin1.weight.grad.copy(), lin1.bias.grad.copy()
        self.dW2, self.db2 = lin2.weight.grad.copy(), lin2.bias.grad.copy()
        self.average = self.running[i]
        self.distance = float(np.linalg.norm(self.average - self.batch) / np.linalg.norm(self.batch))

    @property
    def forward_done(self) -> int:
        """How many columns of units have their forward value (1..3)."""
        return min(self.stage + 1, FORWARD_STAGES)

    @property
    def backward_done(self) -> int:
        """How many columns, counted from the output, have their gradient (0..3)."""
        return max(self.stage - FORWARD_STAGES + 1, 0)

    def description(self) -> str:
        """The current stage as formulas with this sample's numbers (matplotlib mathtext)."""
        f = lambda v: "[" + ", ".join(f"{x:.3f}" for x in np.ravel(v)) + "]"  # noqa: E731
        m = lambda a: "[" + "; ".join(f(r)[1:-1] for r in a) + "]"  # noqa: E731
        s = self.stage
        if s == 0:
            return (rf"sample $n = {self.n}$:  $x^{{(0)}} = x_n$ = {f(self.x0)},  target $t$ = {f(self.t)}" "\n"
                    "the forward pass stores every layer's output for the backward pass")
        if s == 1:
            return (rf"$u^{{(1)}} = W^{{(1)}} x^{{(0)}} + b^{{(1)}}$ = {f(self.u1)}" "\n"
                    rf"$x^{{(1)}} = \sigma(u^{{(1)}})$ = {f(self.x1)}")
        if s == 2:
            return (rf"$x^{{(2)}} = \sigma(W^{{(2)}} x^{{(1)}} + b^{{(2)}})$ = {f(self.x2)}" "\n"
                    rf"$E_n = \frac{{1}}{{2}}\|x^{{(2)}} - t\|^2$ = {self.loss:.4f}")
        if s == 3:
            return (rf"$\delta^{{(2)}} = (x^{{(2)}} - t) \circ \sigma'(u^{{(2)}})$ = {f(self.delta2)}" "\n"
                    rf"$\partial E_n/\partial W^{{(2)}} = \delta^{{(2)}} x^{{(1)T}}$ = {m(self.dW2)},"
                    rf"  $\partial E_n/\partial b^{{(2)}} = \delta^{{(2)}}$")
        if s == 4:
            return (rf"$\delta^{{(1)}} = (W^{{(2)T}} \delta^{{(2)}}) \circ \sigma'(u^{{(1)}})$ = {f(self.delta1)}" "\n"
                    rf"$\partial E_n/\partial W^{{(1)}} = \delta^{{(1)}} x^{{(0)T}}$ = {m(self.dW1)}")
        return (rf"$\partial E_n/\partial x^{{(0)}} = W^{{(1)T}} \delta^{{(1)}}$ = {f(self.dx0)}" "\n"
                "what the first layer's backward returns; no layer below needs it")


_FWD_FILL, _POS_FILL, _NEG_FILL, _IDLE_FILL = "#fff3c4", "#f6c4bf", "#c6dbef", "#eeeeee"
_RADIUS = 0.34
_COLUMN_GAP, _ROW_GAP = 2.2, 1.1


class BackpropStepper(WidgetView):
    """The widget: `.model`, the controls `.stage` (and `.back`, `.next`) and `.sample`, the figure `.view`."""

    def __init__(self, model: BackpropStepperModel):
        self.model = model
        super().__init__()
        self.stage = W.SelectionSlider(options=[(label, i) for i, label in enumerate(STAGES)],
                                       value=model.stage,
                                       description="stage", continuous_update=False,
                                       layout=W.Layout(width="380px"))
        self.back = W.Button(description="\u25c0 back", layout=W.Layout(width="80px"))
        self.next = W.Button(description="next \u25b6", layout=W.Layout(width="80px"))
        self.sample = W.IntSlider(value=model.n, min=1, max=model.n_samples, description="sample n",
                                  continuous_update=False, layout=W.Layout(width="380px"))
        self._build_figure()
        # the network's units, edges and texts and the sample cursor redraw alone over a saved picture of
        # the rest (see FigureView)
        self.view = FigureView(self.fig, animated=[
            *(line for layer in self.edges for row in layer for line in row), *sum(self.circles, []),
            *sum(self.values, []), *sum(self.notes, []), *self.targets, self.loss_text, self.stage_title,
            self.formula, self.cursor, *self.avg_markers, self.distance_text])
        self.observe(lambda change: self.update(), self.stage, self.sample)
        self.back.on_click(self.guard(lambda _: self._shift(-1)))
        self.next.on_click(self.guard(lambda _: self._shift(+1)))
        self.widget = W.VBox([W.HBox([self.back, self.stage, self.next]), self.sample,
                              self.view.widget, self.status.widget])
        self.update()

    # --- figure ------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        m = self.model
        self.fig, _ = new_figure(figsize=(12, 5.4))
        self.fig.clf()
        grid = self.fig.add_gridspec(2, 2, width_ratios=[1.15, 1], height_ratios=[4, 1],
                                     left=0.01, right=0.985, top=0.9, bottom=0.17, wspace=0.12, hspace=0.08)
        self.graph_ax = self.fig.add_subplot(grid[0, 0])
        self.text_ax = self.fig.add_subplot(grid[1, 0])
        self.avg_ax = self.fig.add_subplot(grid[:, 1])
        sizes = (2, m.hidden, 2)
        dx, dy = _COLUMN_GAP, _ROW_GAP
        self.positions = [[(dx * col, dy * ((size - 1) / 2 - k)) for k in range(size)]
                          for col, size in enumerate(sizes)]
        ax = self.graph_ax
        W1, W2 = m.weights
        wmax = max(np.abs(W1).max(), np.abs(W2).max())
        self.weight_norm = mpl.colors.Normalize(-wmax, wmax)
        cmap = mpl.colormaps["RdBu_r"]
        self.edges = []  # self.edges[l][j][i]: edge from unit i of column l to unit j of column l + 1
        for col, weight in enumerate((W1, W2)):
            layer_edges = []
            for j, (xj, yj) in enumerate(self.positions[col + 1]):
                row = []
                for i, (xi, yi) in enumerate(self.positions[col]):
                    line = Line2D([xi, xj], [yi, yj], color=cmap(self.weight_norm(weight[j, i])),
                                  linewidth=1.0 + 4.0 * abs(weight[j, i]) / wmax, zorder=1, solid_capstyle="round")
                    ax.add_line(line)
                    row.append(line)
                layer_edges.append(row)
            self.edges.append(layer_edges)
        self.circles, self.values, self.notes = [], [], []
        for col in self.positions:
            circles, values, notes = [], [], []
            for (x, y) in col:
                circle = Circle((x, y), _RADIUS, facecolor=_IDLE_FILL, edgecolor="#333", linewidth=1.2, zorder=2)
                ax.add_patch(circle)
                circles.append(circle)
                values.append(ax.text(x, y, "", ha="center", va="center", fontsize=9.5, zorder=3))
                notes.append(ax.text(x, y - _RADIUS - 0.06, "", ha="center", va="top", fontsize=7.5, color="#444",
                                     zorder=3, bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8)))
            self.circles.append(circles)
            self.values.append(values)
            self.notes.append(notes)
        half = dy * (max(sizes) - 1) / 2
        # two lines: on one, the titles of the three columns overlap when six hidden units narrow the graph
        titles = ("input\n$x^{(0)}$", "hidden\n$x^{(1)} = \\sigma(u^{(1)})$", "output\n$x^{(2)} = \\sigma(u^{(2)})$")
        for col, title in enumerate(titles):
            ax.text(dx * col, half + _RADIUS + 0.2, title, ha="center", va="bottom", fontsize=9.5)
        self.targets = [ax.text(2 * dx + _RADIUS + 0.12, y, "", ha="left", va="center", fontsize=9, color="#222")
                        for (_, y) in self.positions[2]]
        self.loss_text = ax.text(2 * dx + _RADIUS + 0.12, -half - _RADIUS - 0.35, "", ha="left", va="top", fontsize=9.5)
        ax.set_xlim(-_RADIUS - 0.15, 2 * dx + _RADIUS + 0.95)
        ax.set_ylim(-half - _RADIUS - 0.75, half + _RADIUS + 0.95)  # room for two-line titles
        ax.set_aspect("equal")
        ax.axis("off")
        bar_ax = ax.inset_axes([0.0, 0.02, 0.26, 0.035])
        bar = self.fig.colorbar(mpl.cm.ScalarMappable(self.weight_norm, cmap), cax=bar_ax, orientation="horizontal")
        bar.ax.set_title("edge colour and width: weight", fontsize=7.5)
        bar.ax.tick_params(labelsize=7)
        self.stage_title = ax.set_title("", fontsize=10.5, loc="left")
        self.text_ax.axis("off")
        self.formula = self.text_ax.text(0.0, 1.0, "", ha="left", va="top", fontsize=9.5, linespacing=1.6,
                                         transform=self.text_ax.transAxes)

        ax = self.avg_ax
        n = np.arange(1, m.n_samples + 1)
        self.cursor = ax.axvline(1, color="#999", linewidth=1, zorder=0)
        self.avg_markers = []
        for c, k in enumerate(m.tracked):
            color = f"C{c}"
            ax.plot(n, m.per_sample[:, k], "o", color=color, markersize=3.5, alpha=0.4)
            ax.plot(n, m.running[:, k], "-", color=color, linewidth=1.8, label=m.param_labels[k])
            ax.axhline(m.batch[k], color=color, linestyle="--", linewidth=1)
            self.avg_markers.append(ax.plot([1], [m.running[0, k]], "o", color=color, markersize=8,
                                            markeredgecolor="black")[0])
        ax.set_xlim(0.5, m.n_samples + 0.5)
        ax.set_xlabel("samples seen, n", fontsize=9)
        # in the axes, not the x label: it changes with n and is redrawn alone (see FigureView)
        self.distance_text = ax.text(0.98, 0.03, "", transform=ax.transAxes, ha="right", va="bottom", fontsize=9,
                                     bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.85))
        ax.set_ylabel("gradient entry", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=3, frameon=False)
        ax.set_title("Algorithm 1: running average (line) of the per-sample\n"
                     r"gradients $\nabla E_n$ (dots) reaches the batch gradient $\nabla E$ (dashed)", fontsize=9.5)

    def _draw(self) -> None:
        m = self.model
        fwd = (m.x0, m.x1, m.x2)
        pre = (None, m.u1, m.u2)
        grads = (m.dx0, m.delta1, m.delta2)
        back = m.backward_done
        for col in range(3):
            has_grad = col >= 3 - back
            has_value = col < m.forward_done
            for k, (circle, value, note) in enumerate(zip(self.circles[col], self.values[col], self.notes[col])):
                if has_grad:
                    g = grads[col][k]
                    circle.set_facecolor(_POS_FILL if g > 0 else _NEG_FILL)
                    symbol = r"\partial E/\partial x" if col == 0 else r"\delta"
                    value.set_text(f"{g:+.3f}")
                    note.set_text(rf"${symbol}$, x={fwd[col][k]:.2f}")
                elif has_value:
                    circle.set_facecolor(_FWD_FILL)
                    value.set_text(f"{fwd[col][k]:.3f}")
                    note.set_text("" if pre[col] is None else f"u={pre[col][k]:.2f}")
                else:
                    circle.set_facecolor(_IDLE_FILL)
                    value.set_text("")
                    note.set_text("")
        # highlight the layer being computed: forward stage s uses layer s (s = 1, 2), backward the reverse
        active = {1: 0, 2: 1, 3: 1, 4: 0}.get(m.stage)
        for layer, layer_edges in enumerate(self.edges):
            for row in layer_edges:
                for line in row:
                    line.set_alpha(1.0 if layer == active else 0.3)
        show_out = m.forward_done == 3
        for k, text in enumerate(self.targets):
            text.set_text(f"t={m.t[k]:.0f}" if show_out else "")
        self.loss_text.set_text(f"$E_n$ = {m.loss:.4f}" if show_out else "")
        self.stage_title.set_text(f"sample n = {m.n} of {m.n_samples}. {STAGE_TITLES[m.stage]}")
        self.formula.set_text(m.description())
        self.cursor.set_xdata([m.n, m.n])
        for marker, k in zip(self.avg_markers, m.tracked):
            marker.set_data([m.n], [m.running[m.n - 1, k]])
        self.distance_text.set_text(rf"after n = {m.n}: $\|$average $- \nabla E\| \,/\, \|\nabla E\|$"
                                    f" = {m.distance:.2g}")
        self.view.refresh()
        self.status.show(self._message(), "ok" if m.n == m.n_samples else "info")

    def _message(self) -> str:
        m = self.model
        where = "forward" if m.stage < FORWARD_STAGES else "backward"
        end = (" At n = N the running average equals the batch gradient." if m.n == m.n_samples else
               f" Move n to {m.n_samples} to see it reach the batch gradient.")
        return (f"Sample {m.n} of {m.n_samples}, {where} pass: {STAGES[m.stage]}. The running average of "
                f"{m.n} per-sample gradients differs from the batch gradient by {m.distance:.2g} (relative).{end}")

    # --- controls ----------------------------------------------------------------------------
    def _shift(self, step: int) -> None:
        self.stage.value = int(np.clip(self.stage.value + step, 0, len(STAGES) - 1))

    def update(self) -> None:
        """Read the controls, recompute the model and redraw (what every control change does)."""
        self.model.stage, self.model.n = self.stage.value, self.sample.value
        self.model.update()
        self._draw()

    def close(self) -> None:
        self.view.close()


def backprop_stepper(n_samples: int = 20, hidden: int = 3, rng=0) -> BackpropStepper:
    """A 2-`hidden`-2 sigmoid net on `n_samples` random 2-D points: step through forward and backward.

    n_samples: N, between 1 and 500; hidden: units in the hidden layer, between 1 and 6 (so the graph
    stays readable); rng: a numpy Generator or an int seed (weights first, then the data).
    """
    return BackpropStepper(BackpropStepperModel(n_samples, hidden, rng))
