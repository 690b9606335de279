"""The optimizer race: a fair race of the real cnnlab.optim classes; every control works at its extremes."""
from types import SimpleNamespace

import numpy as np
import pytest
from widget_checks import drive_controls

from cnnlab.optim import OPTIMIZERS, Adam, AdamW, RMSprop
from cnnlab.surfaces import BoundedSaddle, Saddle, trajectory
from widgets._optimizers import COLORS, linestyle
from widgets.optimizer_race import LABELS, OptimizerRace, RaceModel, optimizer_race


def test_the_race_steps_the_real_optimizers():
    model = RaceModel("saddle", enabled={"Adam", "RMSprop"}, steps=50, start=(-1.0, 1e-3), lrs={"Adam": 0.05})
    direct = trajectory(Saddle(), lambda ps: Adam(ps, lr=0.05), start=(-1.0, 1e-3), steps=50)
    np.testing.assert_array_equal(model.runs["Adam"].points, direct.points)
    # RMSprop races with PyTorch's alpha = 0.99, the registry's (no second table for the race)
    lr = model.lrs["RMSprop"]
    direct = trajectory(Saddle(), lambda ps: RMSprop(ps, lr=lr, alpha=0.99), start=(-1.0, 1e-3), steps=50)
    np.testing.assert_array_equal(model.runs["RMSprop"].points, direct.points)


def test_adamw_races_as_adam_after_the_decay_and_is_drawn_apart():
    model = RaceModel("bounded_saddle", enabled={"Adam", "AdamW"}, steps=60, start=(1.5, 1e-3))
    assert model.lrs["AdamW"] == model.lrs["Adam"] == 0.05
    direct = trajectory(BoundedSaddle(), lambda ps: AdamW(ps, lr=0.05, weight_decay=0.01), start=(1.5, 1e-3),
                        steps=60)
    np.testing.assert_array_equal(model.runs["AdamW"].points, direct.points)
    # at weight decay 0 AdamW is Adam step for step (the same code on the same floats); at 0.01 it differs
    no_decay = trajectory(BoundedSaddle(), lambda ps: AdamW(ps, lr=0.05, weight_decay=0.0), start=(1.5, 1e-3),
                          steps=60)
    np.testing.assert_array_equal(no_decay.points, model.runs["Adam"].points)
    assert not np.array_equal(model.runs["AdamW"].points, model.runs["Adam"].points)
    race = OptimizerRace(model)
    assert race.lines["AdamW"].get_linestyle() == "--" and race.lines["Adam"].get_linestyle() == "-"
    assert race.lines["AdamW"].get_color() != race.lines["Adam"].get_color()
    np.testing.assert_array_equal(race.lines["AdamW"].get_xydata(), direct.points)
    assert "AdamW: f = " in race.status.text
    assert [h.get_label() for h in race.ax_loss.get_legend().legend_handles] == list(LABELS)


def test_every_optimizer_of_the_registry_runs_with_a_colour_of_its_own():
    assert list(LABELS) == [spec.label for spec in OPTIMIZERS.values()] and len(LABELS) == 8
    assert set(COLORS) == set(OPTIMIZERS) and len(set(COLORS.values())) == len(COLORS)
    assert {linestyle(name) for name in LABELS} <= {"-", "--"}
    race = optimizer_race("saddle", steps=30)
    assert set(race.model.runs) == set(LABELS) and set(race.enable) == set(race.lr) == set(LABELS)


def test_a_race_built_on_a_model_shows_the_models_settings_and_keeps_them():
    model = RaceModel("bowl", enabled={"SGD", "Adam", "Nesterov"}, steps=5, start=(3.0, -2.5), momentum=0.995,
                      noise=2.5)
    settings = {"SGD": 2e-5, "Adam": 30.0, "Nesterov": 0.002}  # the first two outside the sliders' usual ranges
    model.lrs.update(settings)
    race = OptimizerRace(model)
    assert {name: race.lr[name].value for name in settings} == settings
    assert {name for name, box in race.enable.items() if box.value} == set(settings)
    assert (race.steps.value, race.momentum.value, race.noise.value) == (5, 0.995, 2.5)
    assert (race.start_x.value, race.start_y.value) == (3.0, -2.5)
    # the view has run the race from the controls: the model's settings must have survived it
    assert {name: model.lrs[name] for name in settings} == settings
    assert (model.steps, model.momentum, model.noise, model.start) == (5, 0.995, 2.5, (3.0, -2.5))
    assert len(model.runs["Nesterov"].points) == 6 and tuple(model.runs["SGD"].points[0]) == (3.0, -2.5)


def test_names_in_any_case_and_lrs_reach_the_model():
    model = RaceModel("bowl", enabled=["sgd", "ADAM"], steps=10, lrs={"adam": 0.2})
    assert model.enabled == {"SGD", "Adam"} and model.lrs["Adam"] == 0.2 and set(model.runs) == {"SGD", "Adam"}


def test_the_race_is_fair_same_start_and_same_noise_for_everyone():
    model = RaceModel("bowl", enabled={"SGD", "Momentum"}, steps=30, noise=0.5, momentum=0.0, seed=4)
    # with momentum 0, "Momentum" is plain SGD: identical runs prove identical start and noise
    np.testing.assert_array_equal(model.runs["SGD"].points, model.runs["Momentum"].points)
    other = RaceModel("bowl", enabled={"SGD"}, steps=30, noise=0.5, seed=5)
    assert not np.array_equal(other.runs["SGD"].points, model.runs["SGD"].points)


def test_model_refuses_unknown_names():
    with pytest.raises(ValueError, match="surface must be one of"):
        RaceModel("mountain")
    with pytest.raises(ValueError, match=r"unknown optimizers \['Lion'\]"):
        RaceModel(enabled={"Lion"})
    with pytest.raises(ValueError, match="lrs names unknown optimizers"):
        optimizer_race(lrs={"Lion": 0.1})
    for lr in (0.0, -1.0, float("nan"), "0.1"):
        with pytest.raises(ValueError, match=r"learning rates must be positive numbers, got \{'SGD': "):
            RaceModel(lrs={"SGD": lr})


def controls(race):
    yield race.surface, list(dict(race.surface.options).values()) if isinstance(race.surface.options, dict) \
        else [v for _, v in race.surface.options]
    for slider in (race.steps, race.noise, race.momentum, race.start_x, race.start_y, race.frame):
        yield slider, [slider.min, slider.max]
    for name in LABELS:
        yield race.lr[name], [race.lr[name].min, race.lr[name].max]
        yield race.enable[name], [False, True]


def artists_state(race):
    lines = [*race.lines.values(), *race.loss_lines.values(), *race.step_lines.values(), race.start_marker]
    return [np.asarray(line.get_xydata()).copy() for line in lines] + [race.ax_map.get_xlim()]



def test_every_control_at_its_extremes_changes_the_figure_without_an_error(monkeypatch):
    race = optimizer_race(steps=40)
    # rendering the PNG ~50 times would dominate the test; count redraws and compare the artists instead
    monkeypatch.setattr(race.view, "refresh", lambda: setattr(race.view, "draws", race.view.draws + 1))
    lrs = set(race.lr.values())
    settings = [(c, [10.0 ** v for v in values] if c in lrs else values) for c, values in controls(race)]
    drive_controls(race, settings, artists_state)


def test_a_control_change_renders_a_new_picture():
    race = optimizer_race(steps=40)
    before = race.view.widget.value
    race.momentum.value = 0.5
    assert race.view.widget.value != before


def test_huge_learning_rates_show_diverged_runs_not_exceptions():
    race = optimizer_race("bowl", lrs={"SGD": 10.0}, steps=100)
    summary = race.model.summary()
    assert summary["SGD"][2] is not None
    assert "SGD: diverged at step" in race.status.text and race.status.kind == "warn"
    assert race.ends["SGD"].get_marker() == "x"


def test_no_runner_ticked_says_so():
    race = optimizer_race(optimizers={"Adam"})
    race.enable["Adam"].value = False
    assert "tick at least one" in race.status.text


def test_clicking_the_map_moves_the_start():
    race = optimizer_race(steps=20)
    race.on_click(SimpleNamespace(inaxes=race.ax_map, xdata=0.5, ydata=-0.25))
    assert race.model.start == (0.5, -0.25)
    assert all(np.allclose(run.points[0], (0.5, -0.25)) for run in race.model.runs.values())
    race.on_click(SimpleNamespace(inaxes=race.ax_loss, xdata=9.0, ydata=9.0))  # elsewhere: ignored
    assert race.model.start == (0.5, -0.25)


def test_surface_change_resets_the_start_to_the_surfaces_own():
    race = optimizer_race(steps=20)
    race.surface.value = "rosenbrock"
    assert race.model.start == tuple(race.model.surface.start)
    assert race.ax_map.get_xlim() == race.model.surface.bounds[0]


def test_a_broken_update_is_a_message():
    race = optimizer_race(steps=20)
    race.model.update = lambda: 1 / 0
    race.steps.value = 30
    assert race.status.kind == "error" and "division by zero" in race.status.text


def test_the_play_control_starts_at_the_last_step_so_the_browser_shows_whole_trajectories():
    race = optimizer_race(steps=40)
    assert race.play.value == race.frame.value == 40
    race.steps.value = 60
    assert race.play.value == race.frame.value == 60 and race.play.max == 60


def test_a_click_or_a_new_surface_runs_the_race_once():
    """The view moves the start sliders (and their ranges) itself: that runs the race once, not per slider."""
    race = optimizer_race(steps=20)
    calls, update = [], race.model.update
    race.model.update = lambda: (calls.append(1), update())
    race.on_click(SimpleNamespace(inaxes=race.ax_map, xdata=0.5, ydata=-0.25))
    assert len(calls) == 1
    race.surface.value = "rosenbrock"
    assert len(calls) == 2 and race.model.start == tuple(race.model.surface.start)


@pytest.mark.parametrize("noise", [0.0, 0.3])
def test_a_shorter_race_cut_from_the_cached_one_is_the_race_run_afresh(noise):
    model = RaceModel("bounded_saddle", steps=300, noise=noise, lrs={"SGD": 1.5})  # SGD diverges early
    model.steps = 40
    model.update()
    fresh = RaceModel("bounded_saddle", steps=40, noise=noise, lrs={"SGD": 1.5})
    assert model.runs["SGD"].diverged_at is not None and model.runs["SGD"].diverged_at <= 40
    for name, run in fresh.runs.items():
        cut = model.runs[name]
        np.testing.assert_array_equal(cut.points, run.points)
        np.testing.assert_array_equal(cut.values, run.values)
        assert (cut.diverged_at, cut.escaped_at) == (run.diverged_at, run.escaped_at)


def test_a_surface_seen_before_blits_its_saved_picture_and_equals_a_full_draw():
    race = optimizer_race(steps=40)
    drawn = []
    for ax in race.fig.axes:  # count the draws of every panel
        ax.draw = lambda renderer, ax=ax, draw=ax.draw: (drawn.append(ax), draw(renderer))
    shown, runs = {"saddle": race.view.widget.value}, {"saddle": dict(race.model.runs)}
    for name in ("bowl", "rosenbrock", "saddle", "bowl"):
        seen, drawn[:] = name in shown, []
        race.surface.value = name
        shown.setdefault(name, race.view.widget.value)
        runs.setdefault(name, dict(race.model.runs))
        assert race.view.widget.value == shown[name]
        # a surface seen before: no panel drawn (the figure's saved picture in that state), no run rerun
        assert bool(drawn) != seen, name
        if seen:
            assert all(race.model.runs[n] is runs[name][n] for n in runs[name])
    race.view.invalidate()
    race.view.refresh()
    assert race.view.widget.value == shown["bowl"]  # a full draw gives the same picture
    fresh = optimizer_race("bowl", steps=40)  # ... as a race that never showed another surface
    assert fresh.view.widget.value == shown["bowl"]


def test_the_3d_panel_spans_the_surface_whatever_was_shown_before():
    race = optimizer_race(steps=20)
    race.surface.value = "rosenbrock"
    (x0, x1), (y0, y1) = race.model.surface.bounds
    assert race.ax_3d.get_xlim() == (x0, x1) and race.ax_3d.get_ylim() == (y0, y1)
