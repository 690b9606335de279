"""The learning-rate explorer: the recorded TrainingRun, the regime judge, and the widget
(every control at its extremes, live training in chunks, Stop, divergence shown, errors as text)."""
import asyncio

import numpy as np
import pytest
from widget_checks import changed

import widgets
from cnnlab.bench.threads import one_blas_thread
from cnnlab.data import small_fashion_mnist
from cnnlab.models import tiny_mlp
from cnnlab.optim import SGD
from cnnlab.train import Trainer
from widgets._figure import FigureView
from widgets.lr_explorer import BATCH_SIZES, LRExplorer
from widgets.training_run import TrainingRun, judge_regime

DATA = small_fashion_mnist(n_train=200, n_val=50)


# --- TrainingRun -----------------------------------------------------------------------------------

def cross_entropy(logits, y):
    """Mean -log softmax(logits)[y], by hand in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -log_p[np.arange(len(y)), y].mean()


def test_a_run_records_the_error_on_the_whole_training_set():
    X_train, y_train, X_val, y_val = DATA
    run = TrainingRun(*DATA, lr=0.1, batch_size=16, epochs=1)
    assert run.updates == [0] and run.epochs_seen == [0.0]
    run.run()
    # 200 examples in batches of 16: 13 updates (the last batch has 8); a record after every update
    assert run.updates == list(range(14)) and run.epochs_seen[-1] == 1.0
    assert run.epochs_seen[1] == pytest.approx(16 / 200)
    # with one BLAS thread, as the run evaluates: the same logits bit for bit, so the accuracy is exact by
    # construction (with other threads a near-tie could flip); the float32 losses against the float64 formula
    # agree to 1e-8 relative on every BLAS kernel measured
    with one_blas_thread():
        train_logits, val_logits = run.net(X_train), run.net(X_val)
    assert run.train_loss[-1] == pytest.approx(cross_entropy(train_logits, y_train), rel=1e-6)
    assert run.val_loss[-1] == pytest.approx(cross_entropy(val_logits, y_val), rel=1e-6)
    assert run.val_accuracy[-1] == np.mean(val_logits.argmax(axis=1) == y_val)
    assert run.status == "completed" and run.train_loss[-1] < run.train_loss[0]


def test_a_run_steps_the_real_trainer_from_the_seeded_start():
    run = TrainingRun(*DATA, lr=0.05, momentum=0.9, batch_size=64, epochs=2, seed=5).run()
    net = tiny_mlp(rng=5)
    # the run trains with one BLAS thread, and so does this Trainer: the same products on the same arrays with
    # the same thread count, so equal bit for bit by construction (other thread counts round differently)
    with one_blas_thread():
        Trainer(net, run.loss_fn, SGD(net.parameters(), lr=0.05, momentum=0.9), DATA[0], DATA[1], batch_size=64,
                rng=6).run(epochs=2)
    assert all(np.array_equal(p.data, q.data) for p, q in zip(run.net.parameters(), net.parameters()))
    again = TrainingRun(*DATA, lr=0.05, momentum=0.9, batch_size=64, epochs=2, seed=5).run()
    assert again.train_loss == run.train_loss


def test_record_every_sets_the_chunk():
    run = TrainingRun(*DATA, lr=0.1, batch_size=1, epochs=1, max_updates=12, record_every=5).run()
    assert run.updates == [0, 5, 10, 12] and run.epochs_seen == [0.0, 0.025, 0.05, 0.06]
    with pytest.raises(ValueError, match="record_every must be None or an integer >= 1, got 0.5"):
        TrainingRun(*DATA, record_every=0.5)


def test_max_updates_full_batch_and_squared_error():
    run = TrainingRun(*DATA, lr=0.5, batch_size=None, epochs=50, max_updates=7, loss="squared error").run()
    assert run.updates == list(range(8)) and run.epochs_seen[-1] == 7.0 and run.full_batch
    X_train, y_train = DATA[0], DATA[1]
    target = np.eye(10)[y_train]
    assert run.train_loss[-1] == pytest.approx(np.mean((run.net(X_train).astype(np.float64) - target) ** 2),
                                               rel=1e-6)


def test_a_huge_rate_with_squared_error_ends_diverged_not_in_an_exception():
    run = TrainingRun(*DATA, lr=100.0, batch_size=16, epochs=3, loss="squared error").run()
    assert run.status == "diverged" and run.trainer.history.diverged_at is not None
    assert np.all(np.isfinite(run.train_loss)), "only finite errors are recorded"
    assert run.judge()[0] == "diverged"


def test_run_refuses_bad_settings():
    with pytest.raises(ValueError, match="learning rate must be a positive number, got -1"):
        TrainingRun(*DATA, lr=-1)
    with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\), got 1.0"):
        TrainingRun(*DATA, momentum=1.0)
    with pytest.raises(ValueError, match=r"loss must be one of \['cross-entropy', 'squared error'\], got 'hinge'"):
        TrainingRun(*DATA, loss="hinge")
    with pytest.raises(ValueError, match=r"batch_size must be None or 0 \(full batch\) or an integer in \[1, 200\]"):
        TrainingRun(*DATA, batch_size=500)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        TrainingRun(*DATA, epochs=0)
    with pytest.raises(ValueError, match=r"y_train must be integer labels of shape \(200,\)"):
        TrainingRun(DATA[0], DATA[1][:10], DATA[2], DATA[3])
    with pytest.raises(ValueError, match="X_val has 5 features, X_train 196"):
        TrainingRun(DATA[0], DATA[1], DATA[2][:, :5], DATA[3])


# --- the regime judge, on curves made by hand ---------------------------------------------------------

@pytest.mark.parametrize("curve, regime, words", [
    ([2.3, 1.0, 0.9], "good", "fell 61%"),
    ([2.3, 2.2, 2.1], "too small", "fell only 9%"),
    ([2.3, 2.5, 2.4], "too large", "ended above where it started"),
    ([2.3, 9.0, 1.0], "too large", "shot up to 9"),
    ([2.3, 1.0, 2.0, 1.0, 2.0, 1.2], "too large", "zigzags"),  # rises 2.0 > net decrease 1.1
    ([2.3, 1.0, 1.1, 0.9], "good", "fell 61%"),  # one small rise (0.1) is not a zigzag
])
def test_judge_regime_by_hand(curve, regime, words):
    got, reason = judge_regime(curve, updates=10)
    assert got == regime and words in reason


def test_judge_regime_divergence_and_bad_input():
    assert judge_regime([2.3, 1.0], diverged_at=7) == ("diverged", "the loss became infinite at update 7")
    assert judge_regime([2.3, np.inf])[0] == "diverged"
    with pytest.raises(ValueError, match=r"at least 2 values\), got shape \(1,\)"):
        judge_regime([2.3])


# --- the widget ----------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def count_redraws_instead_of_rendering(request, monkeypatch):
    """Rendering the PNG after every run would dominate the tests: count redraws instead (one test renders
    the real picture)."""
    if request.node.name != "test_a_setting_change_renders_a_new_picture":
        monkeypatch.setattr(FigureView, "refresh", lambda view: setattr(view, "draws", view.draws + 1))


def explorer(**kw):
    kw.setdefault("epochs", 2)
    return widgets.lr_explorer(data=DATA, **kw)


def artists(w):
    lines = [w.train_line, w.val_line, w.prev_train, w.prev_val, w.blowup, *w.sweep_lines.values(),
             w.sweep_diverged, w.sweep_current]
    return [np.asarray(line.get_xydata()).copy() for line in lines] + [w.ax.get_title(), w.regime_text.get_text(),
                                                                       w.ax.get_xlabel()]



def test_every_control_at_its_extremes_changes_the_figure_without_an_error():
    w = explorer()
    controls = [(w.lr, [w.lr.min, w.lr.max]), (w.momentum, [w.momentum.max, w.momentum.min]),
                (w.batch_size, [1, 0]), (w.epochs, [w.epochs.max, w.epochs.min]),
                (w.loss, ["squared error", "cross-entropy"]), (w.x_axis, ["updates", "epochs"])]
    for control, values in controls:
        for value in values:
            if control is w.lr:
                value = 10.0 ** value
            before, draws = artists(w), w.view.draws
            control.value = value
            assert w.status.kind != "error", (control.description, value, w.status.text)
            assert w.view.draws > draws, (control.description, value)
            assert changed(before, artists(w)), (control.description, value)
    r = w.run
    assert (r.lr, r.momentum, r.batch_size, r.epochs, r.loss) == (100.0, 0.0, None, 1, "cross-entropy")


def test_the_train_button_runs_again_from_the_same_start():
    w = explorer(lr=0.3)
    first = list(w.run.train_loss)
    w.train_button.click()
    assert w.run.train_loss == first and w.previous[2] == first, "same seed, same run; the old one is greyed"


def test_a_setting_change_renders_a_new_picture():
    w = explorer()
    before = w.view.widget.value
    w.lr.value = 1.0
    assert w.view.widget.value != before


def test_divergence_is_shown_not_raised():
    w = explorer(loss="squared error", lr=100.0, batch_size=16)
    assert w.run.status == "diverged"
    assert w.status.kind == "warn" and w.status.text.startswith("diverged: the loss became infinite at update")
    assert w.regime_text.get_text() == "diverged" and len(w.blowup.get_xdata()) == 1
    assert len(w.sweep_diverged.get_xdata()) == 1 and w.sweep_diverged.get_xdata()[0] == 100.0


def test_the_sweep_collects_finished_runs_with_the_same_other_settings():
    w = explorer(lr=0.001)
    w.lr.value = 0.3
    w.lr.value = 0.001  # again: replaces the first point, does not add one
    plotted = sorted(x for line in w.sweep_lines.values() for x in line.get_xdata())
    assert plotted == pytest.approx([0.001, 0.3])
    assert 0.001 in w.sweep_lines["too small"].get_xdata(), "coloured by its regime (8 updates at 0.001: too small)"
    assert w.sweep_current.get_xdata()[0] == pytest.approx(0.001)
    w.batch_size.value = 16  # other settings: a new sweep with only this run
    assert sum(len(line.get_xdata()) for line in w.sweep_lines.values()) == 1


def test_stop_with_nothing_running_says_so():
    w = explorer()
    w.stop_button.click()
    assert "nothing to stop" in w.status.text and w.run.status == "completed"


def test_live_training_redraws_between_chunks_and_stop_ends_it_early():
    async def scenario():
        w = explorer(batch_size=1, epochs=3)  # inside a running loop: every run trains in the background
        w.pause = w.redraw_every = 0
        w.train_button.click()  # a new run replaces the first one
        assert w.run.updates == [] and "training" in w.status.text  # answered: the work is left to the loop
        while len(w.run.updates) < 4:
            await asyncio.sleep(0)
        draws = w.view.draws
        w.stop_button.click()
        await w.finished()
        return w, draws

    w, draws_before_stop = asyncio.run(scenario())
    assert w.run.status == "stopped" and w.run.trainer.epoch < 3
    assert 4 <= len(w.run.updates) < 31, "stopped after the chunk that was running"
    assert draws_before_stop >= 4, "one redraw per chunk while training"
    assert "(stopped early)" in w.status.text


def test_a_live_setting_answers_before_any_work_and_the_first_frame_follows_the_start():
    """The callback of a control computes nothing (no chunk trained, not even the error before the first
    update): it shows the status and leaves the run to the loop, whose first step records the start and draws."""
    async def scenario():
        w = explorer(epochs=2, live=True)
        await w.finished()
        records, record = [], w.run._record
        w.run._record = lambda: (records.append(w.run.trainer.global_step), record())
        draws = w.view.draws
        w.lr.value = 0.2
        answered = (list(records), w.run.trainer.global_step, w.view.draws - draws, w.status.text)
        while not records:
            await asyncio.sleep(0)
        first = (list(records), w.run.trainer.global_step, w.view.draws - draws)
        await w.finished()
        return w, answered, first

    w, answered, first = asyncio.run(scenario())
    assert answered[:3] == ([], 0, 0) and "training: lr 0.2" in answered[3]
    assert first == ([0], 0, 1), "the loop's first step records the start (no update) and draws it"
    assert w.run.status == "completed" and w.run.updates[0] == 0 and len(w.run.updates) > 2
    reference = TrainingRun(*DATA, lr=0.2, batch_size=64, epochs=2).run()
    assert w.run.train_loss == reference.train_loss, "the same run as one trained at once"


def test_a_change_during_a_live_run_replaces_it():
    async def scenario():
        w = explorer(batch_size=16, epochs=3, live=True)
        w.pause = w.redraw_every = 0
        w.train_button.click()
        while len(w.run.updates) < 3:
            await asyncio.sleep(0)
        w.lr.value = 0.3
        await w.finished()
        return w

    w = asyncio.run(scenario())
    assert w.run.lr == 0.3 and w.run.status == "completed" and w.run.epochs_seen[-1] == 3.0
    reference = TrainingRun(*DATA, lr=0.3, batch_size=16, epochs=3).run()
    assert w.run.train_loss == reference.train_loss, "the new run is not disturbed by the old one"


def test_a_failing_run_is_a_message(monkeypatch):
    w = explorer()

    def broken():
        raise RuntimeError("out of cheese")

    monkeypatch.setattr(w.run, "run", broken)
    w.lr.value = 0.2
    assert w.status.kind == "error" and "out of cheese" in w.status.text


def test_live_without_a_loop_and_bad_factory_input_are_refused():
    with pytest.raises(RuntimeError, match="live=True needs a running asyncio loop"):
        explorer(live=True)
    with pytest.raises(ValueError, match=r"menu's choices \[None, 1, 16, 64, 256\], got 7"):
        explorer(batch_size=7)
    with pytest.raises(ValueError, match=r"lr must lie in the slider's range \[1e-4, 100\], got 1000"):
        explorer(lr=1000)
    with pytest.raises(ValueError, match=r"epochs must lie in the slider's range \[1, 10\], got 0"):
        explorer(epochs=0)
    with pytest.raises(ValueError, match=r"data must be \(X_train, y_train, X_val, y_val\), got 2 items"):
        widgets.lr_explorer(data=DATA[:2])
    assert [value for _, value in BATCH_SIZES] == [1, 16, 64, 256, 0]
    assert isinstance(explorer(), LRExplorer)


def test_a_widget_built_on_a_run_shows_its_settings_and_keeps_them():
    # every setting outside the controls' usual ranges and menu: 1e-4..100, 0..0.99, 1..10 epochs, 1/16/64/256
    run = TrainingRun(*DATA, lr=3e-5, momentum=0.995, batch_size=32, epochs=12)
    w = LRExplorer(run, live=False)
    assert (w.lr.value, w.momentum.value, w.batch_size.value, w.epochs.value) == (3e-5, 0.995, 32, 12)
    assert (run.lr, run.momentum, run.batch_size, run.epochs) == (3e-5, 0.995, 32, 12)
    assert [label for label, _ in w.batch_size.options] == ["1 (online)", "16", "32", "64", "256", "full batch"]
