"""`optimizer_race()`: the optimizers of `cnnlab.optim.OPTIMIZERS` racing on a 2-D surface, fairly.

Every runner starts at the same point and, with gradient noise switched on, sees the same noise
sequence; each steps a real `cnnlab.optim` object on a `Parameter` of shape (2,), the very classes that
train the CNN. Diverged runs are drawn up to their last finite point and marked with a cross.

`RaceModel` is plain NumPy (drive it without a browser); `OptimizerRace` adds the controls and one figure
(contours + trajectories, the 3-D surface, loss and step size against the step) redrawn in place.
"""
from __future__ import annotations

import time
from collections import OrderedDict

import ipywidgets as W
import numpy as np

from cnnlab.optim import optimizer_spec
from cnnlab.surfaces import SURFACES, Trajectory, trajectory
from widgets._controls import spanning
from widgets._figure import FigureView
from widgets._new_figure import new_figure
from widgets._optimizers import LABELS, color, linestyle, race_lrs, race_optimizer, runner_controls, to_labels
from widgets._view import WidgetView

__all__ = ["LABELS", "color", "RaceModel", "OptimizerRace", "optimizer_race"]


def first_steps(run: Trajectory, steps: int) -> Trajectory:
    """The first `steps` steps of `run`: what a run of `steps` steps gives with the same settings."""
    ended = run.diverged_at or run.escaped_at
    if len(run.values) <= steps + 1 and (ended is None or ended <= steps):
        return run
    return Trajectory(run.points[:steps + 1], run.values[:steps + 1])


class RaceModel:
    """The race: which surface, who runs, at which learning rates, for how many steps.

    The runners are the optimizers of `cnnlab.optim.OPTIMIZERS`, keyed by label ("SGD", ..., "AdamW"; the
    inputs take names or labels in any case), with the registry's hyper-parameters (RMSprop's alpha 0.99,
    PyTorch's) and its learning rates for a 2-D surface (`lr_surface`) unless `lrs` overrides them.
    State: surface_name, enabled (set of labels), lrs (label -> lr), momentum (for the runners that use
    one: Momentum, Nesterov), steps, start (x, y), noise (std of the Gaussian added to each gradient)
    and seed (of that noise).
    After `update()`: runs (label -> cnnlab.surfaces.Trajectory) and seconds (time the update took).
    A runner is rerun only when one of its own settings changed (`run_key`) or it needs more steps than it
    ran: moving one learning rate reruns one optimizer, momentum only those that use it; the cache keeps the
    last RUNS_KEPT runs per runner, so going back to settings seen before (a surface, a start) reruns nothing.
    """

    RUNS_KEPT = 8

    def __init__(self, surface: str = "saddle", enabled=None, steps: int = 300, start=None,
                 noise: float = 0.0, momentum: float = 0.9, seed: int = 0, lrs: dict | None = None):
        if surface not in SURFACES:
            raise ValueError(f"surface must be one of {sorted(SURFACES)}, got {surface!r}")
        self._surfaces: dict = {}  # name -> the Surface shown under that name (one per name: the runs keep its id)
        self.surface_name, self.surface = surface, self._surfaces.setdefault(surface, SURFACES[surface]())
        self.enabled = set(LABELS if enabled is None else to_labels(enabled))
        self.lrs = race_lrs("lr_surface", lrs)
        self.momentum, self.steps, self.noise, self.seed = momentum, int(steps), noise, seed
        self.start = tuple(self.surface.start if start is None else start)
        self.runs: dict = {}
        self._cache: dict = {}  # label -> OrderedDict run_key -> (steps, Trajectory, surface) of its last runs
        self.update()

    def run_key(self, name: str) -> tuple:
        """Everything runner `name`'s trajectory depends on besides the number of steps (momentum only for
        those that use it)."""
        mu = self.momentum if optimizer_spec(name).uses_momentum else None
        return (self.surface_name, id(self.surface), self.lrs[name], mu, tuple(map(float, self.start)),
                self.noise, self.seed if self.noise else None)

    def set_surface(self, name: str) -> None:
        if name not in SURFACES:
            raise ValueError(f"surface must be one of {sorted(SURFACES)}, got {name!r}")
        self.surface_name, self.surface = name, self._surfaces.setdefault(name, SURFACES[name]())
        self.start = tuple(self.surface.start)

    def update(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")
        t0 = time.perf_counter()
        self.runs = {name: self.run(name) for name in LABELS if name in self.enabled}
        self.seconds = time.perf_counter() - t0

    def run(self, name: str):
        """Runner `name`'s trajectory with the current settings (ticked or not), from the cache when its
        settings did not change. Fewer steps are the start of a longer run (the noise of step k is the k-th
        draw whatever the number of steps), so a shorter race is cut from the cached one."""
        key = self.run_key(name)
        runs = self._cache.setdefault(name, OrderedDict())
        cached = runs.get(key)
        if cached is None or cached[0] < self.steps:
            lr, mu = self.lrs[name], self.momentum
            run = trajectory(self.surface, lambda ps: race_optimizer(name, ps, lr, mu), start=self.start,
                             steps=self.steps, noise=self.noise, rng=self.seed if self.noise else None)
            cached = runs[key] = (self.steps, run, self.surface)  # the surface: its id stays its own
        runs.move_to_end(key)
        while len(runs) > self.RUNS_KEPT:
            runs.popitem(last=False)
        return first_steps(cached[1], self.steps)

    def summary(self) -> dict:
        """name -> (final value, steps run, diverged_at, escaped_at) for a table or an assert."""
        return {name: (float(run.values[-1]), len(run.values) - 1, run.diverged_at, run.escaped_at)
                for name, run in self.runs.items()}


class OptimizerRace(WidgetView):
    """The widget: `.model`, controls (`.surface`, `.steps`, `.noise`, `.momentum`, `.start_x`,
    `.start_y`, `.frame`, `.play`, and per optimizer `.enable[name]`, `.lr[name]`), the figure `.view`."""

    def __init__(self, model: RaceModel):
        self.model = model
        super().__init__()
        (x0, x1), (y0, y1) = model.surface.bounds
        style = {"description_width": "100px"}
        self.surface = W.Dropdown(options=[(SURFACES[k]().name, k) for k in SURFACES],
                                  value=model.surface_name, description="surface", style=style)
        # every range holds the model's value: the controls show the model's settings, never clamp them
        low, high = spanning(10, 1000, model.steps)
        self.steps = W.IntSlider(value=model.steps, min=low, max=high, step=10, description="steps",
                                 continuous_update=False, style=style)
        self.noise = W.FloatSlider(value=model.noise, min=0.0, max=max(2.0, model.noise), step=0.05,
                                   description="gradient noise", continuous_update=False, style=style)
        self.momentum = W.FloatSlider(value=model.momentum, min=0.0, max=max(0.99, model.momentum), step=0.01,
                                      description="momentum μ", continuous_update=False, style=style)
        self.start_x = W.FloatSlider(value=model.start[0], min=min(x0, model.start[0]), max=max(x1, model.start[0]),
                                     step=0.01, description="start x", continuous_update=False, style=style)
        self.start_y = W.FloatSlider(value=model.start[1], min=min(y0, model.start[1]), max=max(y1, model.start[1]),
                                     step=0.001, readout_format=".3f", description="start y",
                                     continuous_update=False, style=style)
        self.frame = W.IntSlider(value=model.steps, min=0, max=model.steps, description="show step",
                                 style=style)
        # the Play starts at the end: jslink copies its value into "show step" when the browser renders it
        self.play = W.Play(value=model.steps, min=0, max=model.steps, step=max(model.steps // 100, 1),
                           interval=40)
        W.jslink((self.play, "value"), (self.frame, "value"))
        self.enable, self.lr, rows = runner_controls(model.enabled, model.lrs, (-4, 1), step=0.05)

        self._build_figure()
        # the runs redraw alone over a saved picture of the rest (contours, 3-D surface, axes)
        self.view = FigureView(self.fig, animated=[self.start_marker, *self.lines.values(), *self.ends.values(),
                                                   *self.lines_3d.values(), *self.loss_lines.values(),
                                                   *self.step_lines.values()],
                               pictures=RaceModel.RUNS_KEPT)  # a picture per settings whose runs are kept
        self.fig.canvas.mpl_connect("button_press_event", self.guard(self.on_click))
        self.observe(self._on_surface, self.surface)
        self.observe(lambda change: self.update(), self.steps, self.noise, self.momentum, self.start_x,
                     self.start_y, *self.enable.values(), *self.lr.values())
        self.observe(lambda change: self._draw_frame(), self.frame)
        controls = W.VBox([self.surface, self.steps, self.momentum, self.noise, self.start_x, self.start_y,
                           W.HBox([self.play, self.frame]), W.HTML("<b>runners</b>"), *rows])
        self.widget = W.VBox([W.HBox([controls, self.view.widget]), self.status.widget])
        self.update()

    # --- figure ----------------------------------------------------------------------------------
    def _build_figure(self) -> None:
        self.fig, _ = new_figure(figsize=(8.4, 6.4), dpi=72)  # beside the controls in a laptop column
        self.fig.clf()
        grid = self.fig.add_gridspec(2, 2, height_ratios=(1.5, 1))
        self.ax_map = self.fig.add_subplot(grid[0, 0])
        self.ax_3d = self.fig.add_subplot(grid[0, 1], projection="3d")
        self.ax_loss = self.fig.add_subplot(grid[1, 0])
        self.ax_step = self.fig.add_subplot(grid[1, 1])
        self.lines, self.ends, self.lines_3d, self.loss_lines, self.step_lines = {}, {}, {}, {}, {}
        for name in LABELS:
            c, ls = color(name), linestyle(name)
            self.lines[name], = self.ax_map.plot([], [], ls, color=c, lw=1.6, label=name)
            self.ends[name], = self.ax_map.plot([], [], "o", color=c, ms=6)
            self.lines_3d[name], = self.ax_3d.plot([], [], [], ls, color=c, lw=1.6)
            self.loss_lines[name], = self.ax_loss.plot([], [], ls, color=c, lw=1.2)
            self.step_lines[name], = self.ax_step.plot([], [], ls, color=c, lw=1.2)
        self.start_marker, = self.ax_map.plot([], [], "k*", ms=12, zorder=5)
        # two columns: four would reach into the next axes once lecture mode raises the text to its floor
        self.ax_loss.legend(fontsize=7, ncol=2, loc="upper right", handles=list(self.lines.values()))
        self.ax_loss.set_xlabel("step"), self.ax_loss.set_ylabel("f(x, y)")
        self.ax_step.set_xlabel("step"), self.ax_step.set_ylabel("step length ‖Δθ‖")
        self.ax_step.set_yscale("log")
        self._surface_drawn = None
        self._surface_artists: dict = {}  # surface name -> (its contour, image, mesh and minima, its z range)
        self.fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.95, hspace=0.3, wspace=0.25)  # apart: one redraws alone

    def _draw_surface(self) -> None:
        """Contours and the 3-D mesh, only when the surface changes (the expensive part): made once per surface
        and kept, hidden, while another surface is shown."""
        s, name = self.model.surface, self.model.surface_name
        (x0, x1), (y0, y1) = s.bounds
        for artist in self._surface_artists.get(self._surface_drawn, ((), None))[0]:
            artist.set_visible(False)
        if name not in self._surface_artists:
            xs, ys = np.meshgrid(np.linspace(x0, x1, 160), np.linspace(y0, y1, 160))
            z = s(np.stack([xs, ys], axis=-1))
            shown = np.clip(z, *np.percentile(z, [1, 99]))
            # an image and a few contour lines draw several times faster than filled contours
            image = self.ax_map.imshow(shown, extent=(x0, x1, y0, y1), origin="lower", cmap="Greys",
                                       alpha=0.55, aspect="auto", interpolation="bilinear")
            lines = self.ax_map.contour(xs, ys, shown, levels=12, colors="grey", linewidths=0.4)
            step = 10
            mesh = self.ax_3d.plot_wireframe(xs[::step, ::step], ys[::step, ::step], shown[::step, ::step],
                                             color="grey", linewidth=0.4, alpha=0.6)
            artists = [image, lines, mesh]
            for m in s.minima:
                artists += self.ax_map.plot(*m, "w*", ms=10, mec="k")
            self._surface_artists[name] = (artists, (shown.min(), shown.max()))
        artists, self._z_range = self._surface_artists[name]
        for artist in artists:
            artist.set_visible(True)
        self.ax_map.set_xlim(x0, x1), self.ax_map.set_ylim(y0, y1)
        self.ax_map.set_title(f"{s.name}: click to move the start", fontsize=10)
        # the box of the surface (autoscaling would also keep the data limits of the surfaces shown before)
        self.ax_3d.set_xlim(x0, x1), self.ax_3d.set_ylim(y0, y1), self.ax_3d.set_zlim(*self._z_range)
        self._surface_drawn = name
        # the map and the 3-D panel show this surface: back on a surface seen before, the saved picture serves
        self.view.set_content(self.ax_map, name), self.view.set_content(self.ax_3d, name)

    def _draw_frame(self) -> None:
        k = self.frame.value
        zmin, zmax = self._z_range
        for name in LABELS:
            run = self.model.runs.get(name)
            if run is None:
                for artist in (self.lines[name], self.ends[name], self.loss_lines[name], self.step_lines[name]):
                    artist.set_data([], [])
                self.lines_3d[name].set_data_3d([], [], [])
                continue
            pts, vals = run.points[:k + 1], run.values[:k + 1]
            self.lines[name].set_data(pts[:, 0], pts[:, 1])
            self.ends[name].set_data(pts[-1:, 0], pts[-1:, 1])
            ended = run.diverged_at or run.escaped_at
            self.ends[name].set_marker(("x" if run.diverged_at else ">") if ended and k >= len(run.points) - 1 else "o")
            (x0, x1), (y0, y1) = self.model.surface.bounds
            inside = (pts[:, 0] >= x0) & (pts[:, 0] <= x1) & (pts[:, 1] >= y0) & (pts[:, 1] <= y1)
            shown = np.where(inside[:, None], pts, np.nan)  # 3-D axes do not clip: hide what left the box
            self.lines_3d[name].set_data_3d(shown[:, 0], shown[:, 1], np.clip(vals, zmin, zmax))
            self.loss_lines[name].set_data(np.arange(len(vals)), vals)
            lengths = np.linalg.norm(np.diff(pts, axis=0), axis=1)
            self.step_lines[name].set_data(np.arange(1, len(lengths) + 1), np.maximum(lengths, 1e-12))
        self.view.refresh()

    def _rescale_plots(self) -> None:
        """Limits from every runner, ticked or not (ticking one keeps them), on a coarse grid (a round number,
        a decade on the log axis; a small change of a setting keeps them): the update then redraws only the
        runs (see FigureView's blitting)."""
        runs = [self.model.run(name) for name in LABELS]
        values = [r.values for r in runs if len(r.values)]
        steps = [np.linalg.norm(np.diff(r.points, axis=0), axis=1) for r in runs]
        steps = [s[s > 0] for s in steps if len(s)]
        self.ax_loss.set_xlim(0, self.model.steps)
        if values:
            lo, hi = np.percentile(np.concatenate(values), [0, 100])
            zmin, zmax = self._z_range
            lo, hi = max(lo, zmin - (zmax - zmin)), min(hi, zmax + (zmax - zmin))
            lo, hi = lo - 0.05 * (hi - lo + 1e-9), hi + 0.05 * (hi - lo + 1e-9)
            unit = 10.0 ** np.floor(np.log10(hi - lo)) / 2
            self.ax_loss.set_ylim(np.floor(lo / unit) * unit, np.ceil(hi / unit) * unit)
        self.ax_step.set_xlim(1, max(self.model.steps, 2))
        if steps and any(len(s) for s in steps):
            allsteps = np.concatenate(steps)
            (x0, x1), (y0, y1) = self.model.surface.bounds
            box = np.hypot(x1 - x0, y1 - y0)  # a longer step leaves the map: no need to show how long
            low, high = max(allsteps.min(), 1e-8) / 2, min(allsteps.max(), 10 * box) * 2
            self.ax_step.set_ylim(10.0 ** np.floor(np.log10(low)), 10.0 ** np.ceil(np.log10(high)))

    # --- events --------------------------------------------------------------------------------------
    def _on_surface(self, change) -> None:
        self.model.set_surface(change["new"])
        (x0, x1), (y0, y1) = self.model.surface.bounds
        with self.syncing(), self.start_x.hold_trait_notifications(), self.start_y.hold_trait_notifications():
            self.start_x.min, self.start_x.max = min(x0, self.start_x.min), max(x1, self.start_x.max)
            self.start_y.min, self.start_y.max = min(y0, self.start_y.min), max(y1, self.start_y.max)
            self.start_x.min, self.start_x.max, self.start_y.min, self.start_y.max = x0, x1, y0, y1
        self._set_start(*self.model.surface.start)

    def _set_start(self, x: float, y: float) -> None:
        """Move both start sliders but run the race once."""
        with self.syncing():
            self.start_x.value, self.start_y.value = float(x), float(y)
        self.update()

    def on_click(self, event) -> None:
        """A click on the contour map moves the start point there."""
        if event.inaxes is not self.ax_map or event.xdata is None:
            return
        self._set_start(event.xdata, event.ydata)

    def update(self) -> None:
        """Read every control, rerun the race and redraw."""
        m = self.model
        m.steps, m.noise, m.momentum = self.steps.value, self.noise.value, self.momentum.value
        m.start = (self.start_x.value, self.start_y.value)
        m.enabled = {name for name, box in self.enable.items() if box.value}
        m.lrs = {name: slider.value for name, slider in self.lr.items()}
        m.update()
        if self._surface_drawn != m.surface_name:
            self._draw_surface()
        self.start_marker.set_data([m.start[0]], [m.start[1]])
        with self.syncing(), self.frame.hold_trait_notifications(), self.play.hold_trait_notifications():
            self.frame.max = self.play.max = m.steps
            self.frame.value = self.play.value = m.steps
        self._rescale_plots()
        self._draw_frame()
        self._report()

    def _report(self) -> None:
        parts = []
        for name, (value, steps, diverged_at, escaped_at) in self.model.summary().items():
            if diverged_at:
                parts.append(f"{name}: diverged at step {diverged_at}")
            elif escaped_at:
                parts.append(f"{name}: ran downhill off to infinity by step {escaped_at}")
            else:
                parts.append(f"{name}: f = {value:.3g}")
        if not parts:
            self.status.show("tick at least one optimizer to start the race", "warn")
            return
        kind = "warn" if any(s[2] for s in self.model.summary().values()) else "info"
        self.status.show(" · ".join(parts) + f"  ({self.model.seconds * 1000:.0f} ms)", kind)


def optimizer_race(surface: str = "saddle", optimizers=None, steps: int = 300, start=None,
                   noise: float = 0.0, momentum: float = 0.9, lrs: dict | None = None,
                   seed: int = 0) -> OptimizerRace:
    """The race widget. `optimizers`: names or labels of cnnlab.optim.OPTIMIZERS (default all of them);
    `lrs`: overrides of their learning rates for a surface (`lr_surface`), e.g. {"SGD": 0.05};
    `start`: (x, y), default the surface's own."""
    return OptimizerRace(RaceModel(surface, optimizers, steps, start, noise, momentum, seed, lrs=lrs))
