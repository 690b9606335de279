"""`momentum_explorer()`: the error of SGD with momentum on a quadratic, split by eigen-direction.

Sliders set the learning rate alpha, the momentum mu and the condition number kappa of f(w) =
1/2 sum_i lambda_i w_i^2 (eigenvalues from 1 to kappa). The figure shows |w_i(t)| for every
eigen-direction (log scale), the norm of the whole error, and the predicted envelope rate^t, where the
rate is the largest spectral radius of the directions' 2x2 iteration matrices (`widgets.momentum_model`);
beside it, the roots of those matrices in the complex plane (inside the unit circle: converging).
Two buttons set the best pair for gradient descent (mu = 0) and for momentum. Every update moves the
existing lines (`set_ydata`); a diverging setting is shown as diverged.
"""
from __future__ import annotations

import ipywidgets as W
import matplotlib as mpl
import numpy as np

from widgets._controls import log_spanning, spanning
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._view import WidgetView
from widgets.momentum_model import MomentumModel, optimal_momentum

__all__ = ["MomentumExplorer", "momentum_explorer"]

_FLOOR, _CEIL = 1e-14, 1e6  # the y range of the plot; values are clipped into it


class MomentumExplorer(WidgetView):
    """The widget: `.model` (a MomentumModel), sliders `.alpha`, `.mu`, `.kappa`, buttons `.best_gd`,
    `.best_momentum`, lines `.direction_lines` (one per eigen-direction), `.norm_line`, `.rate_line`, and
    `.root_markers` (the roots of each R_i) on `.roots_ax`."""

    def __init__(self, model: MomentumModel):
        super().__init__()
        self.model = m = model
        low, high = log_spanning(-4, 0, m.alpha)
        # fine steps: the front end snaps a value to the step, and the best rates sit on a sharp edge
        self.alpha = W.FloatLogSlider(value=m.alpha, base=10, min=low, max=high, step=0.001,
                                      description="learning rate α", readout_format=".4f",
                                      style={"description_width": "initial"})
        self.mu = W.FloatSlider(value=m.mu, min=0.0, max=max(0.99, m.mu), step=0.001, description="momentum μ",
                                readout_format=".3f", style={"description_width": "initial"})
        low, high = log_spanning(0, 4, m.kappa)
        self.kappa = W.FloatLogSlider(value=m.kappa, base=10, min=low, max=high, step=0.05,
                                      description="condition κ", readout_format=".0f",
                                      style={"description_width": "initial"},
                                      disabled=m.fixed_eigenvalues is not None)
        self.best_gd = W.Button(description="best α for μ = 0")
        self.best_momentum = W.Button(description="best (α, μ)")

        self.fig, (self.ax, self.roots_ax) = new_figure(1, 2, figsize=(9.6, 4.0), width_ratios=[2.5, 1])
        ax, t = self.ax, np.arange(m.steps + 1)
        colors = mpl.colormaps["viridis"](np.linspace(0, 0.9, m.directions))
        # right: the two roots of every R_i in the complex plane, the unit circle and the circle |r| = sqrt(mu)
        rax, angle = self.roots_ax, np.linspace(0, 2 * np.pi, 121)
        rax.plot(np.cos(angle), np.sin(angle), color="0.6", lw=1)
        (self.sqrt_mu_circle,) = rax.plot(np.cos(angle), np.sin(angle), ":", color="C3", lw=1.2)
        self._circle = np.cos(angle), np.sin(angle)
        self.root_markers = [rax.plot([0, 0], [0, 0], "o", ms=6, color=c, alpha=0.85)[0] for c in colors]
        rax.set_xlim(-1.35, 1.35), rax.set_ylim(-1.35, 1.35)
        rax.set_aspect("equal")
        rax.set_title("roots of each R_i; dotted: |r| = √μ", fontsize=9)
        rax.set_xlabel("real part", fontsize=8), rax.set_ylabel("imaginary part", fontsize=8)
        rax.tick_params(labelsize=7)
        self.direction_lines = [ax.semilogy(t, t + 1.0, lw=1.2, color=c, label=" ")[0] for c in colors]
        (self.norm_line,) = ax.semilogy(t, t + 1.0, lw=2.4, color="k", label="‖w_t‖, the whole error")
        (self.rate_line,) = ax.semilogy(t, t + 1.0, "--", lw=1.2, color="C3", label="rate^t")
        ax.set_ylim(_FLOOR, _CEIL)
        ax.set_xlim(0, m.steps)
        ax.set_xlabel("step t")
        ax.set_ylabel("|component of w_t| in each eigen-direction")
        ax.grid(True, which="major", alpha=0.3)
        self.legend = ax.legend(loc="lower left", fontsize=7.5, ncol=2, framealpha=0.9)
        ax.set_title(" ", fontsize=10)
        self.fig.tight_layout()
        # what the sliders change redraws alone over a saved picture of the axes (FigureView); the legend's
        # labels name the eigenvalues, so the legend is redrawn too
        self.view = FigureView(self.fig, animated=[*self.direction_lines, self.norm_line, self.rate_line,
                                                   *self.root_markers, self.sqrt_mu_circle, ax.title, self.legend])

        self.observe(self._on_change, self.alpha, self.mu, self.kappa)
        self.best_gd.on_click(self.guard(self._set_best_gd))
        self.best_momentum.on_click(self.guard(self._set_best_momentum))
        self.widget = W.VBox([W.HBox([self.alpha, self.mu, self.kappa]),
                              W.HBox([self.best_gd, self.best_momentum]), self.view.widget, self.status.widget])
        self.model.update()
        self._draw()

    def _on_change(self, change=None) -> None:
        self.update()

    def update(self) -> None:
        """Read the sliders, recompute the runs and move the lines (what every slider change does)."""
        self.push_to_model(alpha=self.alpha, mu=self.mu, kappa=self.kappa)
        self._draw()

    def set_pair(self, alpha: float, mu: float) -> None:
        """Move both sliders at once, then update once."""
        with self.syncing():
            self.alpha.value, self.mu.value = alpha, mu
        self.update()

    def _set_best_gd(self, button=None) -> None:
        lam = self.model.eigenvalues
        self.set_pair(2 / (lam.min() + lam.max()), 0.0)

    def _set_best_momentum(self, button=None) -> None:
        alpha, mu, _ = optimal_momentum(self.model.eigenvalues.min(), self.model.eigenvalues.max())
        self.set_pair(alpha, mu)

    def _draw(self) -> None:
        m = self.model
        t = np.arange(m.steps + 1)
        for line, text, lam, comp in zip(self.direction_lines, self.legend.get_texts(), m.eigenvalues,
                                         m.components):
            line.set_ydata(np.clip(np.abs(comp), _FLOOR, _CEIL))
            text.set_text(f"λ = {lam:.3g}")
        for marker, roots in zip(self.root_markers, m.roots):
            marker.set_data(roots.real, roots.imag)
        self.sqrt_mu_circle.set_data(np.sqrt(m.mu) * self._circle[0], np.sqrt(m.mu) * self._circle[1])
        self.norm_line.set_ydata(np.clip(m.norm, _FLOOR, _CEIL))
        with np.errstate(over="ignore", under="ignore"):
            envelope = m.norm[0] * m.rate ** t.astype(np.float64)
        self.rate_line.set_ydata(np.clip(envelope, _FLOOR, _CEIL))
        self.ax.set_title(f"α = {m.alpha:.4g}, μ = {m.mu:.3g}: rate = max ρ(R_i) = {m.rate:.4f} per step", fontsize=10)
        self.view.refresh()
        if m.rate >= 1 or m.diverged:
            self.status.show(f"rate {m.rate:.4f} ≥ 1: the run diverges (the learning rate is too large "
                             f"for λ = {m.eigenvalues.max():.3g} at this momentum)", "warn")
            return
        steps = np.log(1e-6) / np.log(m.rate) if m.rate > 0 else 1.0
        # radii within 1e-6 count as equal: a double root is computed to about sqrt(eps) ~ 1e-8
        slowest = ("every direction alike" if m.radii.min() > m.rate - 1e-6
                   else f"slowest direction λ = {m.eigenvalues[np.argmax(m.radii)]:.3g}")
        self.status.show(f"rate {m.rate:.4f} per step ({slowest}): "
                         f"about {steps:.0f} steps to shrink the error a million times")


def momentum_explorer(alpha: float = 0.01, mu: float = 0.0, kappa: float = 100.0, directions: int = 5,
                      steps: int = 150, eigenvalues=None) -> MomentumExplorer:
    """SGD with momentum on a quadratic, the error split by eigen-direction.

    alpha: learning rate (> 0); mu: momentum in [0, 1); kappa: condition number >= 1, the eigenvalues
    are `directions` values from 1 to kappa on a log scale; eigenvalues: positive values to use
    instead (the kappa slider is then disabled); steps: the length of each run.
    """
    return MomentumExplorer(MomentumModel(alpha, mu, kappa, directions, steps, eigenvalues))
