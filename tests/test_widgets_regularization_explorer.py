"""The regularisation explorer: fair runs (same start, same batch order), every control at its extremes
changes the figure without an error, divergence and failures become messages, background runs stop."""
import threading
import time

import numpy as np
import pytest
from widget_checks import drive_controls

import widgets
from cnnlab.bench.threads import one_blas_thread
from cnnlab.layers import DropConnect, Dropout, Linear
from widgets._figure import FigureView
from widgets.regularization_explorer import (
    RegularizationExplorer,
    RegularizationModel,
    Settings,
    regularization_explorer,
    weight_sparsity,
)

TINY = dict(n_train=60, n_val=40, hidden=8, epochs=5)


@pytest.fixture
def no_png(monkeypatch):
    """Rendering a PNG per redraw would dominate these tests: count redraws instead (one test renders)."""
    monkeypatch.setattr(FigureView, "refresh", lambda view: setattr(view, "draws", view.draws + 1))


def tiny_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((80, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 80)
    return X[:60], y[:60], X[60:], y[60:]


def test_the_factory_is_exported():
    assert widgets.regularization_explorer is regularization_explorer


def test_every_setting_starts_from_the_same_weights():
    model = RegularizationModel(*tiny_data(), hidden=8)
    plain = model.build(Settings())
    for settings in (Settings(p_keep=0.3), Settings(batchnorm=True), Settings(dropconnect=True),
                     Settings(p_keep=0.5, batchnorm=True, dropconnect=True)):
        net = model.build(settings)
        first = [m for m in net if isinstance(m, Linear)][0]
        last = net[len(net) - 1]
        np.testing.assert_array_equal(first.weight.data, plain[1].weight.data)
        np.testing.assert_array_equal(last.weight.data, plain[3].weight.data)
        np.testing.assert_array_equal(last.bias.data, plain[3].bias.data)
    net = model.build(Settings(p_keep=0.3, dropconnect=True))
    assert any(isinstance(m, Dropout) and m.p_keep == 0.3 for m in net)
    assert isinstance(net[len(net) - 1], DropConnect)


def batches_seen(model, settings, epochs=2):
    """The label sequence of every mini-batch the Trainer draws (augmentation must not change it)."""
    model.start(settings)
    seen = []
    loader = model.trainer.loader
    for _ in range(epochs):
        seen += [yb.tolist() for _, yb in loader]
    return seen


def test_augmentation_keeps_the_batch_order_and_the_labels():
    model = RegularizationModel(*tiny_data(), hidden=8, batch_size=16)
    assert batches_seen(model, Settings(augment=True)) == batches_seen(model, Settings())


def test_identical_settings_give_identical_runs_and_the_reference_is_cached():
    model = RegularizationModel(*tiny_data(), hidden=8)
    a = model.run(Settings(p_keep=0.5, l2=0.01, epochs=3))
    b = model.run(Settings(p_keep=0.5, l2=0.01, epochs=3))
    assert a.train_loss == b.train_loss and a.val_loss == b.val_loss and len(a.val_loss) == 3
    ref = model.reference(Settings(l1=0.1, epochs=3))
    assert ref.settings == Settings(epochs=3) and model.reference(Settings(p_keep=0.2, epochs=3)) is ref
    assert model.current is b, "training the reference leaves the current run alone"


def test_the_gap_and_sparsity_are_measured_as_documented():
    model = RegularizationModel(*tiny_data(), hidden=8)
    run = model.run(Settings(epochs=2))
    # the gap compares the final weights' losses; the training loss is evaluated like the validation loss.
    # The model trains and evaluates with one BLAS thread, and so does this evaluation: the same products on
    # the same arrays with the same thread count, so equal bit for bit by construction (with another thread
    # count the float32 products round differently, and the small gap magnifies that relative difference)
    from cnnlab.train import evaluate
    with one_blas_thread():
        train_now = evaluate(model.net, model.loss_fn, model.X, model.y)[0]
    assert run.train_loss[-1] == train_now
    assert run.gap == run.val_loss[-1] - train_now
    assert weight_sparsity(np.array([0.0, 0.005, -0.02, 0.5])) == 0.5  # 2 of 4 below 1e-2
    assert run.sparsity[-1] == weight_sparsity(run.weights)


def test_l1_makes_the_weights_sparser_than_no_penalty():
    model = RegularizationModel(*tiny_data(), hidden=8)
    plain = model.run(Settings(epochs=5)).sparsity[-1]
    l1 = model.run(Settings(l1=0.01, epochs=5)).sparsity[-1]
    assert l1 > plain + 0.3


def test_max_norm_holds_every_unit_below_c():
    model = RegularizationModel(*tiny_data(), hidden=8)
    model.run(Settings(max_norm=0.25, lr=0.3, epochs=3))
    for m in model.net:
        if isinstance(m, Linear):
            assert np.linalg.norm(m.weight.data, axis=1).max() <= 0.25 * (1 + 1e-6)


def test_early_stopping_restores_and_reports_the_best_epoch(no_png):
    w = regularization_explorer(**{**TINY, "epochs": 40}, early_stopping=True, lr=0.3)
    run = w.model.current
    assert run.status == "early_stopping" and run.best_epoch is not None
    assert len(run.val_loss) == run.best_epoch + 5 and run.final == run.best_epoch - 1
    assert run.val_loss[run.final] == min(run.val_loss)
    assert w.best_line.get_visible() and w.best_line.get_xdata()[0] == run.best_epoch
    assert f"weights of epoch {run.best_epoch} restored" in w.status.text


def controls(w):
    for control in (w.l2, w.l1, w.max_norm, w.lr):
        values = [v for _, v in control.options]
        yield control, [values[0], values[-1]]
    yield w.p_keep, [w.p_keep.min, w.p_keep.max]
    yield w.epochs, [w.epochs.max, w.epochs.min]
    for box in (w.dropconnect, w.batchnorm, w.augment, w.early_stopping):
        yield box, [True, False]


def artists_state(w):
    lines = [w.train_line, w.val_line, w.sparse_line, w.end_marker, w.ref_train, w.ref_val]
    return ([np.asarray(line.get_xydata()).copy() for line in lines]
            + [w.hist.get_data().values.copy(), w.title.get_text(), w.note.get_text(), w.ax_loss.get_xlim()])



def test_every_control_at_its_extremes_changes_the_figure_without_an_error(no_png):
    w = regularization_explorer(**TINY)  # redraws counted (no_png); the artists' data are compared

    def trained_with_it(control, value, draws):
        assert w.model.current.finished, (control.description, value)
        assert getattr(w.model.current.settings, _field(w, control)) == value

    drive_controls(w, controls(w), artists_state, after=trained_with_it)


def _field(w, control):
    return {id(getattr(w, name)): name for name in ("l2", "l1", "max_norm", "p_keep", "lr", "epochs", "dropconnect",
                                                      "batchnorm", "augment", "early_stopping")}[id(control)]


def test_a_control_change_renders_a_new_picture():
    w = regularization_explorer(**TINY)
    before = w.view.widget.value
    w.p_keep.value = 0.5
    assert w.view.widget.value != before
    assert "dropout p=0.5" in w.title.get_text() and w.status.kind == "ok"


def test_a_diverging_setting_is_shown_as_diverged_not_raised(no_png):
    w = regularization_explorer(**TINY)
    w.auto.value = False
    w.lr.value, w.l2.value = 3.0, 1.0
    w.train_button.click()
    run = w.model.current
    assert run.status == "diverged" and "diverged" in run.message
    assert w.status.kind == "warn" and "diverged" in w.status.text
    assert w.note.get_text() == "diverged"


def test_with_auto_off_only_the_train_button_trains(no_png):
    w = regularization_explorer(**TINY)
    first = w.model.current
    w.auto.value = False
    w.p_keep.value = 0.4
    assert w.model.current is first
    w.train_button.click()
    assert w.model.current is not first and w.model.current.settings.p_keep == 0.4


def test_a_failing_run_is_a_message(monkeypatch, no_png):
    w = regularization_explorer(**TINY)
    monkeypatch.setattr(w.model, "step", lambda: 1 / 0)
    w.l2.value = 0.01
    assert w.status.kind == "error" and "division by zero" in w.status.text


def test_background_training_streams_and_can_be_stopped(monkeypatch, no_png):
    w = regularization_explorer(**TINY, background=True)
    run = w.wait()
    assert run.status == "completed" and len(run.val_loss) == TINY["epochs"]
    original = w.model.step
    started = threading.Event()

    def slow_step():
        started.set()
        time.sleep(0.02)
        return original()

    monkeypatch.setattr(w.model, "step", slow_step)
    w.epochs.value = 80  # a long run, in a thread
    assert started.wait(10)
    w.stop_button.click()
    run = w.wait()
    assert run.status == "stopped" and len(run.val_loss) < 80
    assert "stopped" in w.status.text


def test_a_failing_background_run_is_a_message(monkeypatch, no_png):
    w = regularization_explorer(**TINY, background=True)
    w.wait()
    monkeypatch.setattr(w.model, "step", lambda: 1 / 0)
    w.train_button.click()
    w.wait()
    assert w.status.kind == "error" and w.status.text == "Something went wrong: division by zero"
    assert isinstance(w.runner.error, ZeroDivisionError)


def test_a_run_stopped_before_it_began_says_so(no_png):
    w = regularization_explorer(**TINY)
    first = w.model.current
    w.runner.work = lambda: False  # the loop ends before its first chunk, as when Stop comes first
    w.train_button.click()
    assert w.model.current is first and w.status.kind == "info"
    assert w.status.text == "stopped before training began; press Train to train"


@pytest.mark.parametrize("kwargs, match", [
    (dict(momentum=0.9), r"unknown settings \['momentum'\]"),
    (dict(p_keep=0.0), r"p_keep .* must be in \(0, 1\], got 0.0"),
    (dict(l2=-1.0), r"l2 must be a finite number >= 0, got -1.0"),
    (dict(lr=0.0), r"lr must be a positive number"),
    (dict(epochs=0), r"epochs must be a whole number >= 1"),
    (dict(n_train=0), r"n_train and n_val must be >= 1"),
    (dict(n_train=8000), r"exceeds the 8000 images of the subset"),
    (dict(X=np.zeros((5, 28, 28), np.float32)), r"give the data X, y, X_val, y_val all together"),
])
def test_bad_factory_input_is_refused_clearly(kwargs, match):
    with pytest.raises(ValueError, match=match):
        regularization_explorer(**kwargs)


def test_bad_data_is_refused_clearly():
    X, y, Xv, yv = tiny_data()
    with pytest.raises(ValueError, match=r"X must be images of shape \(N, 1, 28, 28\), got \(60, 784\)"):
        RegularizationModel(X.reshape(60, -1), y, Xv, yv)
    with pytest.raises(ValueError, match=r"labels for X_val must be integers of shape \(20,\)"):
        RegularizationModel(X, y, Xv, yv[:5])


def test_a_starting_value_between_the_stops_is_kept(no_png):
    w = regularization_explorer(**TINY, l2=0.02)
    assert w.l2.value == 0.02 and w.model.current.settings.l2 == 0.02
    values = [v for _, v in w.l2.options]
    assert values == sorted(values)


def test_a_widget_built_on_settings_shows_them_and_trains_with_them(no_png):
    model = RegularizationModel(*tiny_data(), hidden=8)
    start = Settings(p_keep=0.05, epochs=3).check()  # outside the sliders' usual [0.1, 1] and [5, 80]
    w = RegularizationExplorer(model, start, background=False)
    assert (w.p_keep.value, w.epochs.value) == (0.05, 3)
    assert w.settings() == start
