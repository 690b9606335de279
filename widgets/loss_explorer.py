"""`loss_explorer()`: one example's logits, their softmax, two losses and the gradients of both.

A classifier ends in K scores (logits) z; the softmax turns them into probabilities p, and a loss
compares p with the target class t. The widget puts the two losses of lesson 01 side by side:

- cross-entropy (Veta): E = -log p_t, with gradient dE/dz = p - onehot(t);
- squared error after the softmax (Wollowski's step 3, Bouvrie eq. (1)): E = 1/2 sum_k (p_k - t_k)^2,
  whose gradient goes through the softmax Jacobian dp_k/dz_i = p_k (delta_ki - p_i) (Bouvrie eq. (8)).

When the softmax is confidently wrong (p_t close to 0, another class close to 1) that Jacobian is
close to zero, so the squared error's gradient vanishes while cross-entropy's stays near -1 on the
target logit. Both losses and gradients are computed by `cnnlab.losses` (CrossEntropyLoss,
SoftmaxMSELoss with reduction "half_sum"); this module only arranges and draws them.

The model (`LossExplorerModel`) is plain NumPy and can be driven without a browser; `LossExplorer`
adds one slider per logit, a target menu, a preset menu and one figure redrawn in place.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np

from cnnlab.losses import CrossEntropyLoss, SoftmaxMSELoss
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView

__all__ = ["LossExplorerModel", "LossExplorer", "loss_explorer", "WOLLOWSKI_CLASSES", "PRESETS"]

WOLLOWSKI_CLASSES = ("dog", "cat", "boat", "bird")  # Wollowski's example: the target [0, 0, 1, 0] is "boat"
WOLLOWSKI_OUTPUTS = ((0.2, 0.4, 0.1, 0.3), (0.1, 0.1, 0.7, 0.1))
Z_MIN, Z_MAX = -10.0, 10.0  # the range of every logit slider
VANISH_RATIO = 0.1  # squared error's gradient below this fraction of cross-entropy's counts as vanished
SWEEP_POINTS = 201


def _preset_uniform(k, target):
    return np.zeros(k), target


def _preset_right(k, target):
    z = np.zeros(k)
    z[target] = 6.0
    return z, target


def _preset_wrong(k, target):
    z = np.zeros(k)
    z[target], z[(target + 1) % k] = -6.0, 6.0
    return z, target


def _preset_wollowski(which):
    def preset(k, target):
        if k != 4:
            raise ValueError(f"Wollowski's outputs have 4 classes; this explorer has {k}")
        return np.log(np.array(WOLLOWSKI_OUTPUTS[which])), 2  # softmax(log p) = p; the target is "boat"
    return preset


# name -> function(num_classes, target) -> (logits, target)
PRESETS = {
    "all logits equal": _preset_uniform,
    "confident and right": _preset_right,
    "confidently wrong": _preset_wrong,
    "Wollowski's output 1": _preset_wollowski(0),
    "Wollowski's output 2": _preset_wollowski(1),
}


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) \
            or not 3 <= num_classes <= 5:
        raise ValueError(f"num_classes must be 3, 4 or 5 (one slider per logit), got {num_classes!r}")
    return int(num_classes)


class LossExplorerModel:
    """Softmax, cross-entropy and softmax-squared-error of one example, with their gradients.

    Inputs: logits (K,) finite, in [Z_MIN, Z_MAX], 3 <= K <= 5; target, an int in [0, K);
    class_names, K names (Wollowski's dog/cat/boat/bird for K = 4, "class k" otherwise).
    State: `logits` (K,) float64 and `target`; change them, then call `update()`.
    After `update()`:
    - probs (K,): p = softmax(z);
    - ce_loss = -log p_t and ce_grad (K,) = p - onehot(t)           (CrossEntropyLoss);
    - mse_loss = 1/2 sum (p - onehot(t))^2 and mse_grad (K,)        (SoftmaxMSELoss("half_sum"));
    - sweep_z (S,), sweep_ce_grad (S,), sweep_mse_grad (S,): the gradient on the target logit while
      z_t moves over [Z_MIN, Z_MAX] and the other logits stay where they are;
    - grad_ratio = |mse_grad| / |ce_grad| (Euclidean norms), wrong (some other class has a
      larger p than the target), vanishing (wrong and grad_ratio < VANISH_RATIO).
    """

    def __init__(self, logits=None, target: int = 2, class_names=None, num_classes: int | None = None):
        if logits is None:
            logits = np.zeros(_check_num_classes(4 if num_classes is None else num_classes))
        try:
            logits = np.array(logits, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"logits must be an array of numbers, got {logits!r}") from None
        if logits.ndim != 1 or not 3 <= len(logits) <= 5:
            raise ValueError(f"logits must be a 1-D array of 3 to 5 scores (one slider each), "
                             f"got shape {logits.shape}")
        k = len(logits)
        if num_classes is not None and k != num_classes:
            raise ValueError(f"logits must have shape ({num_classes},) for num_classes={num_classes}, "
                             f"got {logits.shape}")
        if class_names is None:
            class_names = WOLLOWSKI_CLASSES if k == 4 else tuple(f"class {i}" for i in range(k))
        class_names = tuple(str(name) for name in class_names)
        if len(class_names) != k:
            raise ValueError(f"class_names must name the {k} classes, got {len(class_names)} names")
        self.class_names = class_names
        self.logits, self.target = logits, target
        self.update()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _validate(self) -> None:
        k = self.num_classes
        z = np.asarray(self.logits, dtype=np.float64)
        if z.shape != (k,):
            raise ValueError(f"logits must have shape ({k},), got {z.shape}")
        if not np.all(np.isfinite(z)) or z.min() < Z_MIN or z.max() > Z_MAX:
            raise ValueError(f"logits must be finite and in [{Z_MIN:g}, {Z_MAX:g}], got {np.round(z, 3).tolist()}")
        t = self.target
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < k:
            raise ValueError(f"target must be a class index in [0, {k}), got {t!r}")
        self.logits, self.target = z, int(t)

    def update(self) -> None:
        self._validate()
        z, t = self.logits[None, :], np.array([self.target])
        ce, mse = CrossEntropyLoss(reduction="sum"), SoftmaxMSELoss(reduction="half_sum")
        self.ce_loss = ce.forward(z, t)
        self.ce_grad = ce.backward()[0]
        self.probs = ce.probs[0]
        self.mse_loss = mse.forward(z, t)
        self.mse_grad = mse.backward()[0]
        ce_norm = np.linalg.norm(self.ce_grad)
        self.grad_ratio = float(np.linalg.norm(self.mse_grad) / ce_norm) if ce_norm > 0 else 0.0
        self.wrong = bool(self.probs.max() > self.probs[self.target])  # another class is more likely
        self.vanishing = self.wrong and self.grad_ratio < VANISH_RATIO
        # the gradient on z_t as z_t sweeps its range: one row per sweep point; with reduction "sum"
        # (or "half_sum") every row's gradient is that row's own, so one batched call does them all
        self.sweep_z = np.linspace(Z_MIN, Z_MAX, SWEEP_POINTS)
        batch = np.repeat(z, SWEEP_POINTS, axis=0)
        batch[:, self.target] = self.sweep_z
        labels = np.full(SWEEP_POINTS, self.target)
        ce.forward(batch, labels)
        self.sweep_ce_grad = ce.backward()[:, self.target]
        mse.forward(batch, labels)
        self.sweep_mse_grad = mse.backward()[:, self.target]

    def apply_preset(self, name: str) -> None:
        """Set logits (and, for Wollowski's outputs, the target) from `PRESETS[name]`, then update."""
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {list(PRESETS)}, got {name!r}")
        self.logits, self.target = PRESETS[name](self.num_classes, self.target)
        self.update()


class LossExplorer(WidgetView):
    """The widget: `.model`, controls `.logit_sliders` (one per class), `.target`, `.preset`,
    the figure `.view` (with `.fig`) and the `.status` line."""

    def __init__(self, model: LossExplorerModel):
        super().__init__()
        self.model = m = model
        self.fig, (self.ax_p, self.ax_g, self.ax_s) = new_figure(
            1, 3, figsize=(11.5, 3.6), gridspec_kw={"width_ratios": [1, 1.25, 1.1]})
        self._build_figure()
        # bars, curves and texts redraw alone over a saved picture of the axes (see FigureView); a target
        # not shown before (tick label colours, x label) draws the axes, one shown before blits its picture
        self.view = FigureView(self.fig, animated=[*self.p_bars, *self.p_text, *self.ce_bars, *self.mse_bars,
                                                   self.sweep_ce, self.sweep_mse, self.dot_ce, self.dot_mse,
                                                   self.ax_s.title, self.suptitle], pictures=model.num_classes)
        live = self.view.interactive  # cheap to redraw on an ipympl canvas; a PNG re-render is not
        style = {"description_width": "90px"}
        self.logit_sliders = [
            W.FloatSlider(value=float(z), min=Z_MIN, max=Z_MAX, step=0.1, description=f"z{k} {name}",
                          continuous_update=live, readout_format=".2f", style=style,
                          layout=W.Layout(width="330px"))
            for k, (z, name) in enumerate(zip(m.logits, m.class_names))]
        self.target = W.Dropdown(options=[(f"{k}: {name}", k) for k, name in enumerate(m.class_names)],
                                 value=m.target, description="target class", style=style,
                                 layout=W.Layout(width="260px"))
        presets = [name for name in PRESETS if m.num_classes == 4 or not name.startswith("Wollowski")]
        self.preset = W.Dropdown(options=[("choose...", None)] + [(name, name) for name in presets],
                                 value=None, description="preset", style=style, layout=W.Layout(width="260px"))
        self.observe(self._on_control, *self.logit_sliders, self.target)
        self.observe(self._on_preset, self.preset)
        self.widget = W.VBox([W.HBox([W.VBox(self.logit_sliders), W.VBox([self.target, self.preset])]),
                              self.view.widget, self.status.widget])
        self.update()

    # --- figure ------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        m, k = self.model, self.model.num_classes
        x = np.arange(k)
        self.p_bars = self.ax_p.bar(x, np.zeros(k), color="0.6", edgecolor="black", linewidth=0.5)
        self.p_text = [self.ax_p.text(i, 0, "", ha="center", va="bottom", fontsize=8) for i in x]
        self.ax_p.set_ylim(0, 1.12)
        self.ax_p.set_ylabel("probability")
        self.ax_p.set_title("softmax p = softmax(z)", fontsize=10)

        w = 0.38
        self.ce_bars = self.ax_g.bar(x - w / 2, np.zeros(k), w, color="tab:blue", label="cross-entropy: p \u2212 t")
        self.mse_bars = self.ax_g.bar(x + w / 2, np.zeros(k), w, color="tab:red",
                                      label="squared error through softmax")
        self.ax_g.axhline(0, color="black", linewidth=0.6)
        self.ax_g.set_ylim(-1.1, 1.1)
        self.ax_g.set_title("gradient \u2202E/\u2202z\u2096 on each logit", fontsize=10)
        self.ax_g.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=8, frameon=False)
        for ax in (self.ax_p, self.ax_g):
            ax.set_xticks(x, m.class_names, fontsize=8)

        self.sweep_ce, = self.ax_s.plot([], [], color="tab:blue", label="cross-entropy")
        self.sweep_mse, = self.ax_s.plot([], [], color="tab:red", label="squared error")
        self.dot_ce, = self.ax_s.plot([], [], "o", color="tab:blue")
        self.dot_mse, = self.ax_s.plot([], [], "o", color="tab:red")
        self.ax_s.axhline(0, color="black", linewidth=0.6)
        self.ax_s.set_xlim(Z_MIN, Z_MAX)
        self.ax_s.set_ylim(-1.1, 0.15)
        self.ax_s.set_ylabel("\u2202E/\u2202z\u209c")
        self.ax_s.legend(loc="center left", fontsize=8, frameon=False)
        self.suptitle = self.fig.suptitle("", fontsize=10)
        self.fig.subplots_adjust(left=0.06, right=0.99, bottom=0.22, top=0.8, wspace=0.3)

    def _draw(self) -> None:
        m = self.model
        name = m.class_names[m.target]
        for i, (bar, text, p) in enumerate(zip(self.p_bars, self.p_text, m.probs)):
            bar.set_height(p)
            bar.set_color("tab:orange" if i == m.target else "0.6")
            bar.set_edgecolor("black")
            text.set_position((i, p + 0.02))
            text.set_text(f"{p:.3f}")
        for ax in (self.ax_p, self.ax_g):  # the target's name in orange and bold, even when p_t is 0
            for i, label in enumerate(ax.get_xticklabels()):
                label.set_color("tab:orange" if i == m.target else "black")
                label.set_fontweight("bold" if i == m.target else "normal")
        for bars, grad in ((self.ce_bars, m.ce_grad), (self.mse_bars, m.mse_grad)):
            for bar, g in zip(bars, grad):
                bar.set_height(g)
        self.sweep_ce.set_data(m.sweep_z, m.sweep_ce_grad)
        self.sweep_mse.set_data(m.sweep_z, m.sweep_mse_grad)
        zt = m.logits[m.target]
        self.dot_ce.set_data([zt], [m.ce_grad[m.target]])
        self.dot_mse.set_data([zt], [m.mse_grad[m.target]])
        self.ax_s.set_title(f"gradient on the target logit z\u209c ({name})\nas z\u209c moves, other logits fixed",
                            fontsize=10)
        self.ax_s.set_xlabel(f"z\u209c = z{m.target} ({name})")
        self.suptitle.set_text(f"target t = {name}:   cross-entropy E = \u2212log p\u209c = {m.ce_loss:.3f}"
                               f"      squared error E = \u00bd\u03a3(p \u2212 t)\u00b2 = {m.mse_loss:.3f}")
        for ax in (self.ax_p, self.ax_g, self.ax_s):  # their tick labels or x label name the target: not
            self.view.set_content(ax, m.target)           # animated: one saved picture per target (pictures=)
        self.view.refresh()
        t = m.target
        summary = (f"p({name}) = {m.probs[t]:.3f}; gradient on z{t}: cross-entropy {m.ce_grad[t]:+.3f}, "
                   f"squared error {m.mse_grad[t]:+.4f}")
        if m.vanishing:
            self.status.show(f"Confidently wrong. {summary}: the squared error's gradient is only "
                             f"{m.grad_ratio:.1%} of cross-entropy's, so learning would stall here.", "warn")
        else:
            self.status.show(f"{summary}; |squared-error gradient| / |cross-entropy gradient| = "
                             f"{m.grad_ratio:.2f}")

    # --- controls ----------------------------------------------------------------------------
    def _on_control(self, change) -> None:
        self.update()

    def _on_preset(self, change) -> None:
        if change["new"] is None:
            return
        self.model.apply_preset(change["new"])
        with self.syncing():
            for slider, z in zip(self.logit_sliders, self.model.logits):
                slider.value = float(z)
            self.target.value = self.model.target
            self.preset.value = None
        self.update()

    def update(self) -> None:
        """Read the controls, recompute the model and redraw (what every control change does)."""
        self.model.logits = np.array([s.value for s in self.logit_sliders])
        self.model.target = self.target.value
        self.model.update()
        self._draw()


def loss_explorer(num_classes: int = 4, target: int = 2, logits=None, class_names=None) -> LossExplorer:
    """Sliders for the logits of one example, a target class, and both losses with their gradients.

    Inputs:
    - num_classes: K, 3 to 5 (one slider per logit). With K = 4 the classes default to Wollowski's
      dog, cat, boat, bird and the target to "boat" (his target vector [0, 0, 1, 0]).
    - target: the true class, in [0, K).
    - logits: the starting logits (K,), each in [-10, 10]; zeros (all classes equally likely) by default.
    - class_names: K names for the classes.
    Returns a LossExplorer; display it in a notebook cell.
    """
    num_classes = _check_num_classes(num_classes)
    if logits is not None and np.shape(logits) != (num_classes,):
        raise ValueError(f"logits must have shape ({num_classes},) for num_classes={num_classes}, "
                         f"got {np.shape(logits)}")
    model = LossExplorerModel(logits, target, class_names, num_classes=num_classes)
    return LossExplorer(model)
