"""The training dashboard: Stop/Resume mid-training (with and without the thread), a learning rate that
reaches the running optimizer, divergence as a status, every control, the end-of-run results."""
import time

import numpy as np
import pytest
from widget_checks import changed

from cnnlab import Sequential
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.optim import OPTIMIZERS, Adam
from widgets._figure import FigureView
from widgets.training_dashboard import DashboardModel, TrainingDashboard, training_dashboard

# the default CNN on a little of the shipped subset: 6 steps per epoch
SMALL = dict(train_size=96, batch_size=16, source="subset", val_size=30, eval_every=3)


def tiny_model(epochs=2, **options):
    """A tiny CNN on 8x8 synthetic images of three classes (a step takes about a millisecond): for the
    tests of the controls and the thread, where Fashion-MNIST would only cost time. 9 steps per epoch."""
    gen = np.random.default_rng(0)
    X = gen.random((120, 1, 8, 8)).astype(np.float32)
    y = np.argmax(X[:, 0].reshape(120, 4, 16).mean(axis=2)[:, :3], axis=1)  # the brightest of 3 quarters
    net = Sequential(Conv2d(1, 2, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2), Conv2d(2, 3, 3, padding=1, rng=gen),
                     ReLU(), Flatten(), Linear(3 * 4 * 4, 3, rng=gen))
    settings = dict(lr=1e-2, batch_size=12, eval_every=3, data=(X, y, ("left top", "right top", "left bottom")))
    settings.update(options)
    return DashboardModel(net, epochs=epochs, **settings)


def tiny(chunk_steps=5, min_redraw_seconds=1.0, **options):
    return TrainingDashboard(tiny_model(**options), chunk_steps, min_redraw_seconds)


def wait_until(condition, timeout=30.0):
    """Poll (short sleeps) until condition() holds; False on timeout."""
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def no_render(monkeypatch):
    """Count redraws instead of rendering PNGs: rendering four figures per change would dominate the tests
    (one test below checks that a real picture changes)."""
    monkeypatch.setattr(FigureView, "refresh", lambda view: setattr(view, "draws", view.draws + 1))


def draws(dash):
    return sum(v.draws for v in (dash.curves_view, dash.filters_view, dash.maps_view, dash.results_view))


def artists_state(dash):
    lines = [np.asarray(line.get_xydata(), dtype=float).copy() for line in dash.lines.values()]
    images = [np.asarray(im.get_array(), dtype=float).copy() for im in
              [*dash.filter_images, *dash.map_images, dash.image_tile, dash.confusion_image, dash.wrong_image]
              if im is not None]
    titles = [ax.get_title() for ax in [*dash.filter_axes, *dash.map_axes, dash.ax_image, dash.ax_confusion]]
    titles += [label.get_text() for label in dash.wrong_labels]
    return lines + images + titles + [dash.ax_loss.get_xlim()]



# --- stop and resume -----------------------------------------------------------------------------------
def test_stop_and_resume_without_threads():
    model = DashboardModel(epochs=5, **SMALL)
    assert model.state == "ready" and model.steps_per_epoch == 6
    assert model.train_chunk(4) and model.step == 4
    model.stop()
    assert model.state == "paused"
    assert model.train_chunk(5) is False and model.step == 4  # stopped: the step count does not advance
    model.resume()
    assert model.train_chunk(3) and model.step == 7  # continues where it stopped
    assert [s["step"] for s in model.trainer.history.steps] == list(range(1, 8))


def test_stop_and_resume_while_the_thread_trains(no_render):
    dash = tiny(epochs=1000, chunk_steps=2, min_redraw_seconds=0.0)
    before = artists_state(dash)
    dash.train_button.click()
    assert wait_until(lambda: dash.model.step >= 3)
    assert not dash.stop_button.disabled and dash.resume_button.disabled
    dash.stop_button.click()
    assert dash.runner.join(timeout=30)
    stopped_at = dash.model.step
    assert dash.model.state == "paused" and "stopped at step" in dash.status.text
    assert not dash.resume_button.disabled and dash.stop_button.disabled
    assert "accuracy" in dash.ax_confusion.get_title()  # the results appear when training stops
    assert changed(before, artists_state(dash))
    assert dash.model.train_chunk(2) is False and dash.model.step == stopped_at  # nothing moves while stopped
    dash.resume_button.click()
    assert wait_until(lambda: dash.model.step >= stopped_at + 2)
    dash.stop_button.click()
    assert dash.runner.join(timeout=30)
    steps = [s["step"] for s in dash.model.trainer.history.steps]
    assert steps == list(range(1, dash.model.step + 1)) and dash.model.step >= stopped_at + 2


def test_stop_interrupts_a_long_chunk_and_train_starts_again(no_render):
    dash = tiny(epochs=10_000, chunk_steps=10_000)
    dash.train_button.click()
    assert wait_until(lambda: dash.model.step >= 2)
    dash.stop_button.click()  # mid-chunk: the Trainer stops after the current step
    assert dash.runner.join(timeout=30) and dash.model.step < 10_000
    first = [s["loss"] for s in dash.model.trainer.history.steps[:2]]
    dash.train_button.click()  # a new run from the initial weights: the same first steps again
    assert wait_until(lambda: dash.model.step >= 2)
    dash.stop_button.click()
    assert dash.runner.join(timeout=30)
    assert [s["loss"] for s in dash.model.trainer.history.steps[:2]] == first


def test_train_pressed_during_a_run_answers_before_the_run_ends_then_starts_afresh(no_render):
    import threading

    dash = tiny(epochs=10_000, chunk_steps=10_000)
    dash.train_button.click()
    assert wait_until(lambda: dash.model.step >= 2)
    dash.stop_button.click()
    assert dash.runner.join(timeout=30)
    first = [s["loss"] for s in dash.model.trainer.history.steps[:2]]
    gate, chunk = threading.Event(), dash.model.train_chunk

    def held(steps):  # the thread waits here until the test lets it go: it cannot end before
        gate.wait(30)
        return chunk(steps)

    dash.model.train_chunk = held
    dash.resume_button.click()
    dash.train_button.click()  # returns although the running thread cannot stop yet
    assert dash.runner.running and not gate.is_set() and "a new run starts next" in dash.status.text
    dash.model.train_chunk = chunk
    gate.set()
    assert wait_until(lambda: not dash._restart and dash.model.step >= 2)  # the new run, from the start
    dash.stop_button.click()
    assert dash.runner.join(timeout=30)
    assert [s["loss"] for s in dash.model.trainer.history.steps[:2]] == first

    dash.model.train_chunk, gate = held, threading.Event()  # Stop after Train cancels the new run
    dash.resume_button.click()
    dash.train_button.click()
    dash.stop_button.click()
    dash.model.train_chunk = chunk
    gate.set()
    assert dash.runner.join(timeout=30) and wait_until(lambda: not dash._restart)
    time.sleep(0.2)  # the waiting thread, if it restarted anything, would have by now
    assert not dash.runner.running and dash.model.state == "paused"


def test_train_answers_without_drawing_and_the_thread_draws_the_new_run_before_its_first_step(no_render):
    import threading

    dash = tiny(epochs=10_000, chunk_steps=10_000)
    dash.train_chunk(4)  # a run with curves, filters and results drawn
    drawn_in = []  # the thread of every redraw from here on
    for view in (dash.curves_view, dash.filters_view, dash.maps_view, dash.results_view):
        view.refresh = lambda: drawn_in.append(threading.current_thread().name)
    gate, chunk, seen = threading.Event(), dash.model.train_chunk, {}

    def held(steps):  # the new run's first chunk: what had been drawn by then
        seen.update(draws=len(drawn_in), curve=dash.lines["loss_raw"].get_xdata().copy())
        gate.wait(30)
        return chunk(steps)

    dash.model.train_chunk = held
    dash.train_button.click()
    assert not dash.stop_button.disabled and "training: starting" in dash.status.text  # answered
    assert wait_until(lambda: "draws" in seen)
    gate.set()
    dash.stop_button.click()
    assert dash.runner.join(timeout=30)
    dash.model.train_chunk = chunk
    assert seen["draws"] >= 4 and set(drawn_in[:seen["draws"]]) == {dash.runner.name}  # none by the click
    assert len(seen["curve"]) == 0  # the reset run's (empty) curves were drawn before its first step


def test_a_run_completes_in_the_thread_and_shows_the_results(no_render):
    dash = tiny(epochs=1, chunk_steps=4)
    dash.train_button.click()
    assert dash.runner.join(timeout=60)
    assert dash.model.state == "completed" and dash.model.step == 9 and dash.status.kind == "ok"
    assert dash.resume_button.disabled  # nothing to resume ...
    dash.epochs.value = 2  # ... until there are more epochs to run
    assert not dash.resume_button.disabled
    dash.resume_button.click()
    assert dash.runner.join(timeout=60) and dash.model.step == 18


def test_a_failing_thread_reports_the_error_and_never_raises(no_render, monkeypatch):
    dash = tiny()
    monkeypatch.setattr(dash.model, "train_chunk", lambda steps: 1 / 0)
    dash.train_button.click()
    assert dash.runner.join(timeout=30)
    assert dash.status.kind == "error" and "division by zero" in dash.status.text
    assert dash.stop_button.disabled and not dash.train_button.disabled


# --- learning rate and divergence -----------------------------------------------------------------------------
def test_a_learning_rate_change_mid_run_reaches_the_optimizer(no_render):
    dash = tiny(optimizer="momentum", lr=1e-3)
    dash.train_chunk(3)
    dash.lr.value = 1e-2
    assert dash.model.optimizer.param_groups[0]["lr"] == pytest.approx(1e-2)
    dash.train_chunk(2)
    assert [s["lr"] for s in dash.model.trainer.history.steps] == pytest.approx([1e-3] * 3 + [1e-2] * 2)
    np.testing.assert_allclose(dash.lines["lr"].get_ydata(), [1e-3] * 3 + [1e-2] * 2)


def test_a_learning_rate_change_reaches_the_optimizer_while_the_thread_trains(no_render):
    dash = tiny(epochs=10_000, chunk_steps=1, lr=1e-3)
    dash.train_button.click()
    assert wait_until(lambda: dash.model.step >= 2)
    dash.lr.value = 1e-2
    changed_at = dash.model.step
    assert wait_until(lambda: dash.model.step >= changed_at + 3)
    dash.stop_button.click()
    assert dash.runner.join(timeout=30)
    lrs = [s["lr"] for s in dash.model.trainer.history.steps]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-2)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_diverging_learning_rate_is_shown_as_diverged_never_raised(no_render, optimizer):
    dash = training_dashboard(optimizer=optimizer, lr=10.0, **SMALL)
    assert dash.train_chunk(20) is False
    assert dash.model.state == "diverged" and dash.model.step < 20
    assert "diverged at step" in dash.status.text and dash.status.kind == "warn"
    assert dash.resume_button.disabled and dash.model.train_chunk(5) is False
    assert dash.diverged_marks[0].get_xdata()[0] == dash.model.trainer.history.diverged_at
    dash.lr.value = 1e-3  # a smaller learning rate and Train: a new run
    dash.model.reset()
    assert dash.model.train_chunk(3) and dash.model.state == "running"


# --- controls ----------------------------------------------------------------------------------------------
def test_every_control_changes_the_figure_without_an_error(no_render):
    dash = tiny(epochs=2)
    drives = [(dash.optimizer, [k for k in OPTIMIZERS if k != "adam"] + ["adam"]),
              (dash.batch_size, [32, 12]), (dash.epochs, [dash.epochs.max, 2]),
              (dash.lr, [1e-5, 10.0, 1e-3]), (dash.image, [dash.image.max, 0])]
    for control, values in drives:
        for value in values:
            dash.train_chunk(2)  # something to reset or redraw
            before, count = artists_state(dash), draws(dash)
            control.value = value
            assert dash.status.kind != "error", (control.description, value, dash.status.text)
            assert draws(dash) > count, (control.description, value)
            assert changed(before, artists_state(dash)), (control.description, value)
    assert dash.model.optimizer_name == "adam" and dash.model.batch_size == 12 and dash.model.epochs == 2
    assert isinstance(dash.model.optimizer, Adam)


def test_a_dashboard_built_on_a_model_shows_the_models_settings_and_keeps_them(no_render):
    model = tiny_model(epochs=40, optimizer="Nesterov", lr=3e-6)  # epochs and lr outside the usual ranges
    optimizer = model.optimizer
    dash = TrainingDashboard(model)
    assert (dash.optimizer.value, dash.lr.value, dash.epochs.value, dash.batch_size.value) == (
        "nesterov", 3e-6, 40, 12)
    assert dash.optimizer.label == "Nesterov (μ = 0.9)"
    assert (model.optimizer_name, model.lr, model.epochs, model.batch_size) == ("nesterov", 3e-6, 40, 12)
    assert model.optimizer is optimizer, "building the view started no new run"
    group = optimizer.param_groups[0]
    assert (group["lr"], group["momentum"], group["nesterov"]) == (3e-6, 0.9, True)


def test_the_menu_offers_every_optimizer_of_the_registry(no_render):
    dash = tiny()
    assert [value for _, value in dash.optimizer.options] == list(OPTIMIZERS)
    dash.optimizer.value = "adadelta"
    assert type(dash.model.optimizer).__name__ == "Adadelta" and dash.model.optimizer.param_groups[0]["rho"] == 0.9
    dash.optimizer.value = "adamw"
    assert type(dash.model.optimizer).__name__ == "AdamW" and dash.optimizer.label == "AdamW (decay 0.01)"
    assert dash.model.optimizer.param_groups[0]["weight_decay"] == 0.01


def test_changing_the_optimizer_or_batch_size_starts_a_new_run(no_render):
    dash = tiny()
    dash.train_chunk(4)
    dash.optimizer.value = "rmsprop"
    assert dash.model.step == 0 and dash.model.state == "ready"
    assert type(dash.model.optimizer).__name__ == "RMSprop"
    assert dash.model.optimizer.param_groups[0]["alpha"] == 0.99, "PyTorch's default, as in every other widget"
    dash.train_chunk(2)
    dash.batch_size.value = 64
    assert dash.model.step == 0 and dash.model.steps_per_epoch == 2


def test_a_control_change_renders_a_new_picture():
    dash = tiny()
    before = dash.maps_view.widget.value
    dash.image.value = 5
    assert dash.maps_view.widget.value != before


def test_a_broken_callback_is_a_message(no_render, monkeypatch):
    dash = tiny()
    monkeypatch.setattr(dash.model, "feature_maps", lambda index: 1 / 0)
    dash.image.value = 3
    assert dash.status.kind == "error" and "division by zero" in dash.status.text


# --- what the figures show ----------------------------------------------------------------------------------
def test_results_are_the_confusion_matrix_and_the_misclassified_images(no_render):
    dash = tiny(epochs=1)
    dash.train_chunk(9)
    model = dash.model
    r = model.results()
    scores = model.net.eval().forward(model.X_val)
    pred = scores.argmax(axis=1)
    counts = np.zeros((3, 3), dtype=int)
    for t, p in zip(model.y_val, pred):
        counts[t, p] += 1
    np.testing.assert_array_equal(r["confusion"], counts)
    np.testing.assert_array_equal(r["wrong"], np.flatnonzero(pred != model.y_val))
    assert r["accuracy"] == pytest.approx(np.mean(pred == model.y_val))
    first, (top, left) = r["wrong"][0], dash._wrong_cells[0]
    np.testing.assert_array_equal(dash.wrong_image.get_array()[top:top + 8, left:left + 8], model.X_val[first, 0])
    assert dash.wrong_labels[0].get_text() == f"{model.classes[model.y_val[first]]}\n→ {model.classes[pred[first]]}"


def test_curves_are_running_means_and_evaluations_every_eval_every_steps():
    model = tiny_model(epochs=3)
    for steps in (2, 2, 3, 2):
        model.train_chunk(steps)
    c = model.curves(window=3)
    loss = [s["loss"] for s in model.trainer.history.steps]
    expected = [np.mean(loss[max(0, i - 2):i + 1]) for i in range(len(loss))]
    np.testing.assert_allclose(c["loss_smooth"], expected)
    assert c["eval_step"].tolist() == [4.0, 7.0, 9.0]  # >= 3 steps since the last one, or an epoch ended (9)
    val_loss, val_acc = c["val_loss"][-1], c["val_accuracy"][-1]
    scores = model.net.eval().forward(model.X_val)
    assert val_acc == pytest.approx(np.mean(scores.argmax(axis=1) == model.y_val))
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert val_loss == pytest.approx(-np.mean(log_p[np.arange(len(model.y_val)), model.y_val]), rel=1e-5)
    model.train_chunk(1)
    assert len(model.evals) == 3  # one step after the last evaluation: none


def test_feature_maps_are_the_conv_outputs_of_the_chosen_image():
    model = DashboardModel(**SMALL)
    model.train_chunk(2)
    maps, probs = model.feature_maps(4)
    x = model.X_val[4:5]
    first = model.net[0].forward(x)
    second = model.net[3].forward(model.net[2].forward(model.net[1].forward(first)))
    np.testing.assert_allclose(maps[0], first[0], rtol=1e-6)
    np.testing.assert_allclose(maps[1], second[0], rtol=1e-5, atol=1e-6)
    assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0)


def test_same_seed_same_run_and_train_repeats_it():
    a, b = tiny_model(rng=3), tiny_model(rng=3)
    a.train_chunk(4), b.train_chunk(4)
    losses = [s["loss"] for s in a.trainer.history.steps]
    assert losses == [s["loss"] for s in b.trainer.history.steps]
    a.reset()
    a.train_chunk(4)
    assert [s["loss"] for s in a.trainer.history.steps] == losses
    c = tiny_model(rng=4)
    c.train_chunk(4)
    assert [s["loss"] for s in c.trainer.history.steps] != losses


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"optimizer must be one of \['sgd'.*got 'lion'"):
        DashboardModel(optimizer="lion", **SMALL)
    with pytest.raises(ValueError, match="lr .* positive finite number, got 0"):
        DashboardModel(lr=0, **SMALL)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        DashboardModel(epochs=0, **SMALL)
    with pytest.raises(ValueError, match="needs at least one cnnlab.layers.Conv2d"):
        DashboardModel(net=Sequential(Flatten(), Linear(784, 10)), **SMALL)
    with pytest.raises(ValueError, match=r"10 class scores, shape \(N, 10\); it returned shape \(2, 3\)"):
        DashboardModel(net=Sequential(Conv2d(1, 1, 28), Flatten(), Linear(1, 3)), **SMALL)
    with pytest.raises(TypeError, match="expects a cnnlab network"):
        DashboardModel(net="cnn", **SMALL)
    with pytest.raises(ValueError, match=r"cannot process images of shape \(1, 28, 28\).*3 channels"):
        DashboardModel(net=Sequential(Conv2d(3, 2, 3), Flatten(), Linear(2 * 26 * 26, 10)), **SMALL)
    with pytest.raises(ValueError, match="data labels must be 4 class indices"):
        DashboardModel(data=(np.zeros((4, 1, 8, 8), np.float32), np.array([0.0, 1.0, 0.0, 1.0])))
    model = DashboardModel(**SMALL)
    with pytest.raises(ValueError, match=r"image index must be in \[0, 30\), got 30"):
        model.feature_maps(30)


def test_any_conv_net_and_any_labeled_images_work(no_render):
    gen = np.random.default_rng(0)
    X = gen.random((60, 1, 8, 8)).astype(np.float32)
    y = (X[:, 0, :4].mean(axis=(1, 2)) > X[:, 0, 4:].mean(axis=(1, 2))).astype(np.int64)  # top brighter?
    net = Sequential(Conv2d(1, 2, 3, rng=gen), ReLU(), Flatten(), Linear(2 * 6 * 6, 2, rng=gen))
    dash = training_dashboard(net, lr=1e-2, batch_size=8, data=(X, y, ("bottom", "top")), val_size=10)
    assert dash.train_chunk(5)
    assert len(dash.filter_images) == 2 and dash.filter_images[1] is None  # one Conv2d: one filter panel
    assert "no second Conv2d" in dash.filter_axes[1].texts[0].get_text()
    assert dash.status.kind == "info"

