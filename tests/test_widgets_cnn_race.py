"""The race on the CNN: fair (same weights, same batches), the real optimizers, divergence by the Trainer's rule,
every control at its extremes, Stop and Race again in the background."""
import threading
import time

import numpy as np
import pytest
from widget_checks import drive_controls

from cnnlab.bench.threads import one_blas_thread
from cnnlab.data import DataLoader, load_fashion_mnist
from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import race_net
from cnnlab.optim import Adam, AdamW
from widgets._figure import FigureView
from widgets.cnn_race import CNNRace, CNNRaceModel, cnn_race
from widgets.cnn_race_model import race_data, race_over_seeds
from widgets.optimizer_race import LABELS

TINY = dict(n_train=96, n_val=32, batch_size=32, epochs=1)  # 3 steps per epoch: every race is quick


@pytest.fixture(autouse=True)
def count_redraws_instead_of_rendering(request, monkeypatch):
    """Rendering PNGs would dominate these tests: a redraw only counts, and tests compare the artists' data.
    Tests whose name says "renders" keep the real PNG rendering."""
    if "renders" not in request.node.name:
        monkeypatch.setattr(FigureView, "refresh", lambda self: setattr(self, "draws", self.draws + 1))


@pytest.fixture(scope="module")
def data():
    X, y, _ = load_fashion_mnist("train", source="subset")
    X_val, y_val, _ = load_fashion_mnist("test", source="subset")
    return X[:96], y[:96], X_val[:32], y_val[:32]


def test_the_runs_step_the_real_optimizer_on_the_real_batches(data):
    X, y, X_val, y_val = data
    model = CNNRaceModel(*data, enabled={"Adam"}, lrs={"Adam": 0.01}, epochs=2, batch_size=32, seed=3)
    model.run()
    # the same training written out by hand: same initial weights, same shuffling seed, no Trainer. The model
    # trains with one BLAS thread, and so does this loop: the same products on the same arrays with the same
    # thread count, so the two agree bit for bit by construction (with another thread count the float32
    # products round differently: 6e-8 apart on OpenBLAS's Haswell kernel with two threads)
    net = race_net(3)
    loss_fn, optimizer = CrossEntropyLoss(), Adam(net.parameters(), lr=0.01)
    loader, losses = DataLoader(X, y, 32, shuffle=True, rng=3), []
    with one_blas_thread():
        for _ in range(2):
            for xb, yb in loader:
                losses.append(loss_fn.forward(net.forward(xb), yb))
                net.backward(loss_fn.backward())
                optimizer.step()
    np.testing.assert_array_equal(model.runs["Adam"].losses, losses)
    trained = model.runs["Adam"].trainer.net.state_dict()
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(trained[name], value)


def test_the_race_is_fair_same_weights_and_same_batch_order(data):
    # with momentum 0, "Momentum" and "Nesterov" are plain SGD: identical curves prove identical start and batches
    model = CNNRaceModel(*data, enabled={"SGD", "Momentum", "Nesterov"}, lrs={n: 0.05 for n in LABELS},
                         momentum=0.0, epochs=2, batch_size=32)
    model.run()
    curves = [model.runs[name].losses for name in ("SGD", "Momentum", "Nesterov")]
    assert len(curves[0]) == 6
    np.testing.assert_array_equal(curves[0], curves[1])
    np.testing.assert_array_equal(curves[0], curves[2])
    other = CNNRaceModel(*data, enabled={"SGD"}, lrs={"SGD": 0.05}, epochs=2, batch_size=32, seed=1)
    other.run()
    assert not np.array_equal(other.runs["SGD"].losses, curves[0]), "another seed, another race"


def test_every_optimizer_sees_the_same_first_loss(data):
    model = CNNRaceModel(*data, epochs=1, batch_size=32)
    model.run()
    first = {name: run.losses[0] for name, run in model.runs.items()}
    assert set(first) == set(LABELS) and len(first) == 8 and len(set(first.values())) == 1, first


def test_adamw_races_with_its_decoupled_decay(data):
    model = CNNRaceModel(*data, enabled={"Adam", "AdamW"}, epochs=1, batch_size=32)
    model.run()
    optimizer = model.runs["AdamW"].trainer.optimizer
    assert type(optimizer) is AdamW and optimizer.param_groups[0]["weight_decay"] == 0.01
    assert optimizer.param_groups[0]["lr"] == model.lrs["AdamW"] == model.lrs["Adam"]
    adam, adamw = model.runs["Adam"], model.runs["AdamW"]
    assert adam.losses[0] == adamw.losses[0], "same weights, same first batch"
    weights = adam.trainer.net.state_dict(), adamw.trainer.net.state_dict()
    assert any(not np.array_equal(weights[0][k], weights[1][k]) for k in weights[0]), "the decay changed the weights"
    assert model.summary()["AdamW"]["status"] == "done"


def test_stopping_and_going_on_gives_the_same_run(data):
    model = CNNRaceModel(*data, enabled={"RMSprop"}, epochs=2, batch_size=32)
    model.run(chunk=1, should_stop=lambda: len(model.runs["RMSprop"].losses) >= 4)
    assert len(model.runs["RMSprop"].losses) == 4 and not model.done
    model.run()  # same settings: the run is kept and goes on
    whole = CNNRaceModel(*data, enabled={"RMSprop"}, epochs=2, batch_size=32)
    whole.run()
    np.testing.assert_array_equal(model.runs["RMSprop"].losses, whole.runs["RMSprop"].losses)


def test_unchanged_runs_are_kept_and_more_epochs_continue_them(data):
    model = CNNRaceModel(*data, enabled={"SGD", "Adam"}, epochs=1, batch_size=32)
    model.run()
    adam, sgd = model.runs["Adam"], model.runs["SGD"]
    model.lrs["SGD"] = 0.01
    model.run()
    assert model.runs["Adam"] is adam and model.runs["SGD"] is not sgd and model.trained == ["SGD"]
    model.epochs = 2
    model.run()
    assert model.runs["Adam"] is adam and len(adam.losses) == 6 and adam.history.epochs[-1]["epoch"] == 2
    model.epochs = 1
    model.run()
    assert model.runs["Adam"] is not adam and len(model.runs["Adam"].losses) == 3, "fewer epochs: a fresh run"


def test_a_run_diverges_when_the_mean_of_its_last_8_losses_passes_blowup(data):
    free = CNNRaceModel(*data, enabled={"Adam"}, lrs={"Adam": 0.1}, epochs=4, batch_size=32, blowup=1e9)
    free.run()
    losses = free.runs["Adam"].losses
    means = [np.mean(losses[max(0, k - 8):k]) for k in range(1, len(losses) + 1)]
    # margins (the same on every BLAS kernel and thread count tried, to 1e-7): the largest loss is 12.0,
    # the largest mean 7.18, first reached at step 2
    assert max(losses) > 10.0 > max(means), "a spike that one loss would call a blow-up and 8 do not"
    for blowup in (10.0, 7.0):
        expected = next((k for k, mean in enumerate(means, start=1) if mean > blowup), None)
        model = CNNRaceModel(*data, enabled={"Adam"}, lrs={"Adam": 0.1}, epochs=4, batch_size=32, blowup=blowup)
        model.run()
        run = model.runs["Adam"]
        assert run.diverged_at == expected, blowup
        assert model.summary()["Adam"]["status"] == ("done" if expected is None else "diverged")
        np.testing.assert_array_equal(run.losses, losses[:len(run.losses)])
        assert len(run.losses) == (len(losses) if expected is None else expected)
    assert expected is not None, "7.0 is passed by a mean"


# --- the widget ---------------------------------------------------------------------------------

def artists_state(race):
    lines = [*race.raw.values(), *race.smooth.values(), *race.crosses.values(), *race.acc_lines.values()]
    return [np.asarray(line.get_xydata()).copy() for line in lines] + [race.ax_loss.get_xlim()]



def controls(race):
    for name in LABELS:
        yield race.lr[name], [10.0 ** race.lr[name].min, 10.0 ** race.lr[name].max]
        yield race.enable[name], [False, True]
    yield race.momentum, [race.momentum.min, race.momentum.max]
    yield race.epochs, [race.epochs.max, race.epochs.min]


def test_a_race_built_on_a_model_shows_the_models_settings_and_keeps_them(data):
    settings = {"SGD": 100.0, "Adam": 1e-6}  # outside the sliders' usual range 1e-5 .. 10
    model = CNNRaceModel(*data, enabled=set(settings), lrs=settings, epochs=7, momentum=0.995, batch_size=32)
    race = CNNRace(model, background=False, autostart=False)
    assert {name: race.lr[name].value for name in settings} == settings
    assert {name for name, box in race.enable.items() if box.value} == set(settings)
    assert (race.epochs.value, race.momentum.value) == (7, 0.995)
    race.start()  # reads every control into the model, then races
    assert {name: model.lrs[name] for name in settings} == settings
    assert (model.epochs, model.momentum) == (7, 0.995) and model.runs["Adam"].lr == 1e-6
    assert len(model.runs["Adam"].history.epochs) == 7


def test_names_in_any_case_and_the_registrys_cnn_learning_rates(data):
    model = CNNRaceModel(*data, enabled=["adam", "RMSPROP"], lrs={"adam": 0.02}, batch_size=32)
    assert model.enabled == {"Adam", "RMSprop"} and model.lrs["Adam"] == 0.02
    assert model.lrs["RMSprop"] == 3e-3 and model.lrs["AdaDelta"] == 10.0  # lr_cnn of cnnlab.optim.OPTIMIZERS
    with pytest.raises(ValueError, match=r"unknown optimizers \['Lion'\]"):
        CNNRaceModel(*data, lrs={"Lion": 0.1})


def test_every_control_at_its_extremes_changes_the_figure_without_an_error():
    race = cnn_race(background=False, **TINY)
    drive_controls(race, controls(race), artists_state)


def test_a_race_renders_a_new_picture():
    race = cnn_race(optimizers={"Adam"}, background=False, **TINY)
    before = race.view.widget.value
    race.lr["Adam"].value = 1e-4
    assert race.view.widget.value != before and race.model.runs["Adam"].lr == pytest.approx(1e-4)


def test_a_huge_learning_rate_shows_a_diverged_run_not_an_exception():
    race = cnn_race(optimizers={"Adam", "SGD"}, lrs={"Adam": 10.0}, background=False, **TINY)
    adam = race.model.summary()["Adam"]
    assert adam["status"] == "diverged" and adam["diverged_at"] is not None
    assert race.status.kind == "warn" and f"Adam at step {adam['diverged_at']}" in race.status.text
    assert race.crosses["Adam"].get_xdata()[0] == adam["diverged_at"]
    assert len(race.crosses["SGD"].get_xdata()) == 0
    assert f"diverged at step {adam['diverged_at']}" in race.table.value


def test_moving_the_rate_of_an_unticked_optimizer_enters_it_in_the_race():
    race = cnn_race(optimizers={"SGD"}, background=False, **TINY)
    starts, start = [], race.start
    race.start = lambda: (starts.append(1), start())
    race.lr["AdaGrad"].value = 0.1
    assert race.enable["AdaGrad"].value and set(race.model.runs) == {"SGD", "AdaGrad"}
    assert len(starts) == 1  # ticking the box for the user is the view's own move: no second race


def test_no_runner_ticked_says_so():
    race = cnn_race(optimizers={"Adam"}, background=False, **TINY)
    race.enable["Adam"].value = False
    assert "tick at least one" in race.status.text and race.model.runs == {} and race.table.value == ""


def test_buttons_train_in_a_background_thread_and_stop_it():
    race = cnn_race(optimizers={"SGD"}, background=True, autostart=False, **TINY)
    assert race.model.runs == {}
    race.race_button.click()
    race.wait(timeout=60)
    assert race.model.done and race.status.kind == "ok", race.status.text
    race.epochs.value = 3  # a control change restarts the race in the background
    race.stop_button.click()  # waits for the thread: nothing runs afterwards
    assert not race.runner.running
    assert race.status.kind != "error", race.status.text


def test_stop_mid_race_then_race_goes_on_with_the_same_runs(monkeypatch):
    race = cnn_race(optimizers={"SGD"}, background=True, autostart=False, **{**TINY, "epochs": 5})  # 15 steps
    race.CHUNK = 1
    advance, started = race.model.advance, threading.Event()

    def slow_advance(steps, names=None):
        started.set()
        time.sleep(0.02)
        return advance(steps, names)

    monkeypatch.setattr(race.model, "advance", slow_advance)
    race.race_button.click()
    assert started.wait(10)
    race.stop_button.click()  # heard after the current chunk; waits for the thread
    run, steps = race.model.runs["SGD"], len(race.model.runs["SGD"].losses)
    assert not race.runner.running and 1 <= steps < 15
    assert race.status.kind == "warn" and race.status.text.startswith("stopped (press Race to go on)")
    assert race.model.summary()["SGD"]["status"] == "running"
    race.race_button.click()  # same settings: the stopped run goes on
    race.wait(timeout=60)
    assert race.model.runs["SGD"] is run and len(run.losses) == 15 and race.status.kind == "ok"
    m = race.model
    whole = CNNRaceModel(m.X, m.y, m.X_val, m.y_val, enabled={"SGD"}, epochs=5, batch_size=32)
    whole.run()
    np.testing.assert_array_equal(run.losses, whole.runs["SGD"].losses)


def test_a_broken_update_is_a_message():
    race = cnn_race(optimizers={"SGD"}, background=False, **TINY)
    race.model.advance = lambda *args, **kwargs: 1 / 0
    race.epochs.value = 2
    assert race.status.kind == "error" and race.status.text == "Something went wrong: division by zero"
    background = cnn_race(optimizers={"SGD"}, background=True, autostart=False, **TINY)
    background.model.advance = lambda *args, **kwargs: 1 / 0
    background.race_button.click()
    background.wait(timeout=30)
    assert background.status.kind == "error" and background.status.text == "Something went wrong: division by zero"


@pytest.mark.parametrize("kwargs, message", [
    (dict(optimizers={"Lion"}), r"unknown optimizers \['Lion'\]"),
    (dict(lrs={"Adam": -1.0}), "learning rates must be positive"),
    (dict(epochs=0), "epochs must be an integer >= 1, got 0"),
    (dict(momentum=1.0), r"momentum must be in \[0, 1\)"),
    (dict(n_train=10**6), r"n_train must be an integer in \[1, 8000\]"),
    (dict(batch_size=0), "batch_size must be an integer"),
    (dict(data=(np.zeros((4, 28, 28)), np.zeros(4, int), np.zeros((2, 1, 28, 28)), np.zeros(2, int))),
     r"X must be images of shape \(N, 1, 28, 28\), got \(4, 28, 28\)"),
    (dict(data=(np.zeros((4, 1, 28, 28)), np.zeros(3, int), np.zeros((2, 1, 28, 28)), np.zeros(2, int))),
     r"labels for X must be integers of shape \(4,\)"),
    (dict(data=(1, 2, 3)), r"data must be \(X, y, X_val, y_val\)"),
])
def test_bad_settings_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnn_race(background=False, autostart=False, **kwargs)


def test_the_curves_stream_chunk_by_chunk():
    race = cnn_race(optimizers={"SGD", "Adam"}, background=False, autostart=False, **TINY)
    race.CHUNK, race.REDRAW_EVERY = 1, 0.0  # redraw after every step of every run
    seen, progress = [], []
    draw, report = race._draw, race._progress

    def recording_draw():
        draw()
        seen.append(len(race.smooth["Adam"].get_xdata()))

    def recording_progress():
        report()
        progress.append(race.status.text)

    race._draw, race._progress = recording_draw, recording_progress
    race.race_button.click()
    # at once (nothing trained), then a chunk of one run at a time, SGD's then Adam's (one more point), the final draw
    assert seen == [0, 0, 1, 1, 2, 2, 3, 3], seen
    assert progress == [f"training … {k} of 6 steps" for k in range(7)]
    assert race.status.kind == "ok" and "best validation accuracy" in race.status.text


def test_race_data_draws_from_the_shipped_subset_with_its_seed():
    X, y, _ = load_fashion_mnist("train", source="subset")
    X_val, y_val, _ = load_fashion_mnist("test", source="subset")
    a, b = race_data(96, 32, seed=3), race_data(96, 32, seed=4)
    assert [len(part) for part in a] == [96, 96, 32, 32] and a[0].dtype == np.float32
    assert not np.array_equal(a[0], b[0]), "another seed, another sample"
    # each drawn image is an image of the subset, with its own label, and none is drawn twice
    index = {image.tobytes(): label for image, label in zip(X, y)}
    assert [index[image.tobytes()] for image in a[0]] == list(a[1]) and len({i.tobytes() for i in a[0]}) == 96
    val_index = {image.tobytes(): label for image, label in zip(X_val, y_val)}
    assert [val_index[image.tobytes()] for image in a[2]] == list(a[3])
    # the widget races on the same sample
    race = cnn_race(optimizers={"SGD"}, background=False, autostart=False, seed=3, **TINY)
    np.testing.assert_array_equal(race.model.X, a[0])
    np.testing.assert_array_equal(race.model.y_val, a[3])
    with pytest.raises(ValueError, match=rf"n_val must be an integer in \[1, {len(X_val)}\], got True"):
        race_data(96, True)


def test_race_over_seeds_runs_the_widgets_race_once_per_seed():
    seen = []
    results = race_over_seeds([5, 2], optimizers={"SGD", "AdamW"}, epochs=1, n_train=96, n_val=32, batch_size=32,
                              on_seed=lambda seed, model: seen.append((seed, model.seed, sorted(model.runs))))
    assert seen == [(5, 5, ["AdamW", "SGD"]), (2, 2, ["AdamW", "SGD"])]
    assert set(results) == {"SGD", "AdamW"}
    for seed, k in ((5, 0), (2, 1)):  # the k-th entry is the race cnn_race(seed=seed) runs
        race = cnn_race(optimizers={"SGD", "AdamW"}, background=False, seed=seed, **TINY)
        for name, s in race.model.summary().items():
            assert results[name]["final_loss"][k] == s["final_loss"]
            assert results[name]["val_accuracy"][k] == s["val_accuracy"]
            assert not results[name]["diverged"][k]
    assert results["SGD"]["final_loss"][0] != results["SGD"]["final_loss"][1]
    blown = race_over_seeds([0], optimizers={"SGD"}, lrs={"SGD": 1e3}, epochs=1, n_train=96, n_val=32,
                            batch_size=32)
    assert blown["SGD"]["diverged"][0] and np.isnan(blown["SGD"]["final_loss"][0])
    with pytest.raises(ValueError, match=r"seeds must be one or more different seeds, got \[1, 1\]"):
        race_over_seeds([1, 1])
