"""The widgets' speed design: an update changes what the existing artists draw (the same artist objects,
new data), blits them over the saved picture of the static part when nothing else changed (no full draw
of the figure), and recomputes only what the control affects. No wall-clock time is measured here."""
import numpy as np
import pytest

import widgets


def snapshot(get):
    value = get()
    return value if isinstance(value, str) else np.array(value, dtype=float, copy=True)


def differs(a, b) -> bool:
    if isinstance(a, str):
        return a != b
    return a.shape != b.shape or not np.array_equal(a, b, equal_nan=True)


def check_update(view, artist, data, act, blit=True):
    """`act()` changes what `artist` (kept, animated, in `view`'s figure) draws and the picture shown; with
    blit=True without drawing the whole figure again."""
    before, full, picture, draws = snapshot(data), view.full_draws, view.widget.value, view.draws
    act()
    assert artist.get_figure(root=True) is view.fig and artist.get_animated()
    assert differs(before, snapshot(data))
    assert view.draws > draws and view.widget.value != picture
    assert not view.fig.stale  # else pyplot's hook would ask ipympl for another full draw (see FigureView)
    if blit:
        assert view.full_draws == full


def test_optimizer_race_momentum_redraws_the_runs_in_place_and_reruns_only_the_momentum_runners():
    race = widgets.optimizer_race()  # 300 steps on the saddle: the limits hold for momentum 0.5
    line = race.lines["Momentum"]
    runs = dict(race.model.runs)
    check_update(race.view, line, line.get_xydata, lambda: setattr(race.momentum, "value", 0.5))
    assert race.lines["Momentum"] is line
    for name, run in race.model.runs.items():  # only the runners that use a momentum ran again
        assert (run is runs[name]) == (name not in ("Momentum", "Nesterov")), name


def test_optimizer_race_one_learning_rate_reruns_one_runner_and_the_frame_slider_blits():
    race = widgets.optimizer_race(steps=60)
    runs = dict(race.model.runs)
    check_update(race.view, race.lines["SGD"], race.lines["SGD"].get_xydata,
                 lambda: setattr(race.lr["SGD"], "value", race.lr["SGD"].value / 2))
    assert [name for name, run in race.model.runs.items() if run is not runs[name]] == ["SGD"]
    check_update(race.view, race.lines["Adam"], race.lines["Adam"].get_xydata,
                 lambda: setattr(race.frame, "value", 20))
    check_update(race.view, race.lines["Adam"], race.lines["Adam"].get_xydata,
                 lambda: setattr(race.enable["Adam"], "value", False))  # unticked: drawn empty


def test_init_explorer_redraws_its_histograms_in_place_and_skips_settings_its_scheme_ignores():
    ex = widgets.init_explorer(depth=6, batch=64)
    image = ex.images["act"]
    check_update(ex.view, image, image.get_array, lambda: setattr(ex.gain, "value", 1.5), blit=False)
    net, draws = ex.model.net, ex.view.draws
    ex.std.value = 0.1  # xavier_normal has no std: nothing to measure again
    assert ex.model.net is net and ex.view.draws == draws + 1
    ex.scheme.value = "normal"
    net = ex.model.net
    ex.std.value = 0.02  # ... "normal" has
    assert ex.model.net is not net


def test_loss_explorer_blits_a_logit_change():
    ex = widgets.loss_explorer()
    check_update(ex.view, ex.sweep_ce, ex.sweep_ce.get_xydata, lambda: setattr(ex.logit_sliders[0], "value", 3.0))
    check_update(ex.view, ex.suptitle, ex.suptitle.get_text, lambda: setattr(ex.logit_sliders[1], "value", -2.0))


def test_conv_explorer_blits_a_new_output_position():
    ex = widgets.conv_explorer()
    check_update(ex.view, ex.out_box, ex.out_box.get_xy, lambda: setattr(ex.row, "value", 5))
    check_update(ex.view, ex.artists[4], ex.artists[4].get_array, lambda: setattr(ex.col, "value", 7))


def test_filter_viewer_blits_a_new_normalisation():
    viewer = widgets.filter_viewer()
    image = viewer.panel_images[1]
    check_update(viewer.view, image, image.get_array, lambda: setattr(viewer.norm, "value", "global"))


def test_backprop_stepper_blits_a_new_stage():
    stepper = widgets.backprop_stepper()
    circle = stepper.circles[1][0]
    check_update(stepper.view, circle, circle.get_facecolor, lambda: setattr(stepper.stage, "value", 1))


def test_gallery_blits_the_next_images():
    gallery = widgets.dataset_gallery()
    check_update(gallery.view, gallery.tiles[0], gallery.tiles[0].get_array,
                 lambda: setattr(gallery.start, "value", 16))


@pytest.mark.parametrize("name", ["jacobian_viewer", "step_size", "lr_explorer"])
def test_widgets_redraw_their_lines_in_place(name):
    if name == "jacobian_viewer":
        w = widgets.jacobian_viewer(n_images=4)
        view, line, act = w.view, w.sv_x_line, lambda: setattr(w.layer, "value", 2)
    elif name == "step_size":
        w = widgets.step_size_explorer()
        view, line, act = w.view, w.fwd_line, lambda: setattr(w.x, "value", 1.25)
    else:
        w = widgets.lr_explorer(n_train=300, n_val=100, epochs=1, live=False)
        view, line, act = w.view, w.train_line, lambda: setattr(w.lr, "value", 0.5)
    check_update(view, line, line.get_xydata, act, blit=False)


def test_training_dashboard_blits_a_new_image_and_a_new_setting_before_training_redraws_the_curves_alone():
    dash = widgets.training_dashboard(epochs=1, train_size=300)
    check_update(dash.maps_view, dash.image_tile, dash.image_tile.get_array, lambda: setattr(dash.image, "value", 3))
    line = dash.lines["lr_now"]
    check_update(dash.curves_view, line, line.get_xydata, lambda: setattr(dash.lr, "value", 1e-2), blit=False)
    others = [v.draws for v in (dash.filters_view, dash.maps_view, dash.results_view)]
    curves = dash.curves_view.draws
    dash.optimizer.value = "sgd"
    # no step was trained: the initial weights, so the filters, maps and results are not drawn again
    assert dash.curves_view.draws > curves and dash.model.optimizer_name == "sgd"
    assert [v.draws for v in (dash.filters_view, dash.maps_view, dash.results_view)] == others
    dash.train_chunk(2)
    assert all(v.draws > n for v, n in zip((dash.filters_view, dash.maps_view, dash.results_view), others))


def test_the_training_widgets_stream_into_the_same_animated_curves():
    reg = widgets.regularization_explorer(n_train=50, n_val=50, hidden=16, background=False, epochs=2)
    check_update(reg.view, reg.train_line, reg.train_line.get_xydata, lambda: setattr(reg.l2, "value", 0.03),
                 blit=False)
    race = widgets.cnn_race(optimizers=["sgd", "adam"], epochs=1, n_train=64, n_val=32, background=False,
                            autostart=False)
    line = race.smooth["Adam"]
    check_update(race.view, line, line.get_xydata, race.run, blit=False)
