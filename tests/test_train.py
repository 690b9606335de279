"""The training loop: modes, falling loss, divergence, early stopping, termination, checkpoints."""
import numpy as np
import pytest

from cnnlab import Sequential
from cnnlab.layers import Dropout, Linear, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import SGD, Adam, StepLR
from cnnlab.train import (CheckpointError, EarlyStopping, ModelCheckpoint, TerminationTest, Trainer, evaluate,
                          small_decrease, small_step)


def blobs(n=60, seed=0):
    """Three well separated Gaussian blobs in 2-D: an easy classification problem."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    X = (centers[y] + 0.4 * rng.standard_normal((n, 2))).astype(np.float32)
    return X, y.astype(np.int64)


def small_net(seed=0, dropout=False):
    layers = [Linear(2, 8, rng=seed), ReLU()]
    if dropout:
        layers.append(Dropout(0.8, rng=seed + 100))
    return Sequential(layers + [Linear(8, 3, rng=seed + 1)])


def make(batch_size=8, lr=0.1, net=None, **kwargs):
    X, y = blobs()
    net = net or small_net()
    return Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=lr, momentum=0.9), X, y,
                   batch_size=batch_size, rng=0, **kwargs)


@pytest.mark.parametrize("batch_size, steps_per_epoch", [(None, 1), (1, 60), (8, 8)])
def test_batch_online_and_mini_batch_modes(batch_size, steps_per_epoch):
    trainer = make(batch_size=batch_size)
    history = trainer.fit(epochs=2, progress=False)
    assert len(history.steps) == 2 * steps_per_epoch and len(history.epochs) == 2
    assert history.status == "completed" and "2 epochs" in history.message


def test_loss_falls_and_the_blobs_are_learned():
    X, y = blobs(seed=1)
    trainer = make(X_val=X, y_val=y)
    history = trainer.fit(epochs=15, progress=False)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val_accuracy[-1] > 0.95
    loss, acc = evaluate(trainer.net, CrossEntropyLoss(), X, y)
    assert loss == pytest.approx(history.val_loss[-1]) and acc == history.val_accuracy[-1]


def test_a_huge_learning_rate_is_reported_as_divergence_not_raised():
    trainer = make(lr=1e6)
    history = trainer.fit(epochs=50, progress=False)
    assert history.diverged and history.diverged_at is not None
    assert f"diverged at step {history.diverged_at}" in history.message
    assert len(history.epochs) < 50


def test_running_in_chunks_gives_the_same_weights_as_one_run():
    a, b = make(), make()
    a.run(steps=3), a.run(steps=10)
    b.run(steps=13)
    for p, q in zip(a.net.parameters(), b.net.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert a.epoch == b.epoch == 1  # 13 steps = one epoch of 8 batches + 5, evaluated at once


def test_early_stopping_restores_the_best_weights():
    X, y = blobs()
    X_val, y_val = X, (y + 1) % 3  # validation labels contradict training: val loss only gets worse
    net = small_net()
    snapshots = []

    class Snapshot:
        def on_epoch_end(self, trainer, info):
            snapshots.append(trainer.net.state_dict())

    trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1), X, y, batch_size=8, rng=0,
                      X_val=X_val, y_val=y_val, callbacks=[Snapshot(), EarlyStopping(patience=2)])
    history = trainer.fit(epochs=20, progress=False)
    assert history.status == "early_stopping" and len(history.epochs) == 3
    best = int(np.argmin(history.val_loss))
    assert best == 0 and "weights restored" in history.message
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, snapshots[best][name])


def test_early_stopping_without_validation_data_says_so():
    with pytest.raises(ValueError, match="pass validation data"):
        make(callbacks=[EarlyStopping()]).fit(epochs=1, progress=False)


def test_termination_tests_of_tomasi():
    assert small_step([1.0, 1.0], [1.0, 1.0 + 1e-9], tol=1e-6)
    assert not small_step([1.0, 1.0], [0.0, 1.0], tol=0.5)
    assert small_decrease(1.0, 1.0 + 1e-9, 1e-6) and not small_decrease(1.0, 2.0, 0.5)
    trainer = make(lr=1e-9, callbacks=[TerminationTest(step_tol=1e-4)])
    history = trainer.fit(epochs=5, progress=False)
    assert history.status == "terminated" and len(history.steps) == 2
    assert "step smaller than 0.0001 at step 2" in history.message


def test_a_stopped_run_can_go_on():
    trainer = make()
    trainer.run(steps=2)
    trainer.stop("stopped", "the Stop button was pressed")
    assert trainer.run(steps=5).status == "running" and trainer.global_step == 7


def test_checkpoint_resumes_bit_exactly_with_dropout_adam_shuffling_and_a_scheduler(tmp_path):
    X, y = blobs()
    path = tmp_path / "run" / "ckpt.pkl"

    def build(seed):
        net = small_net(seed, dropout=True)
        opt = Adam(net.parameters(), lr=0.01)
        return Trainer(net, CrossEntropyLoss(), opt, X, y, batch_size=8, rng=seed, X_val=X, y_val=y,
                       scheduler=StepLR(opt, step_size=1, gamma=0.5), callbacks=[ModelCheckpoint(path, every=2)])

    reference = build(0)
    reference.fit(epochs=4, progress=False)
    assert build(7).load(path).epoch == 4  # epoch 4's checkpoint replaced epoch 2's
    early = build(0)
    early.fit(epochs=2, progress=False)
    early.save(tmp_path / "epoch2.pkl")
    continued = build(7).load(tmp_path / "epoch2.pkl")  # other init and seed: all must come from the file
    continued.fit(epochs=4, progress=False)
    for p, q in zip(reference.net.parameters(), continued.net.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    np.testing.assert_array_equal(reference.history.val_loss, continued.history.val_loss)
    assert continued.optimizer.param_groups[0]["lr"] == reference.optimizer.param_groups[0]["lr"] == 0.01 / 16


def test_checkpoints_are_atomic_and_refused_mid_epoch(tmp_path, monkeypatch):
    trainer = make()
    path = tmp_path / "ckpt.pkl"
    trainer.save(path)
    before = path.read_bytes()
    trainer.run(steps=1)
    with pytest.raises(RuntimeError, match="between epochs"):
        trainer.save(path)
    trainer.run(steps=7)  # finishes the epoch

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("cnnlab.train.checkpoint.os.fsync", broken)
    with pytest.raises(OSError, match="disk full"):
        trainer.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.pkl"]


def test_a_damaged_checkpoint_gives_an_error_naming_the_file(tmp_path):
    trainer = make()
    path = tmp_path / "ckpt.pkl"
    trainer.save(path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=r"ckpt.pkl is not a .* cnnlab checkpoint"):
        make().load(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        make().load(tmp_path / "missing.pkl")


def test_trainer_input_errors():
    X, y = blobs()
    net = small_net()
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator, an int seed or None, got str"):
        Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1), X, y, rng="0")
    with pytest.raises(ValueError, match="X_val and y_val"):
        Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1), X, y, rng=0, X_val=X)


def test_a_regularizer_is_called_in_order_and_its_penalty_recorded_apart_from_the_loss():
    calls = []

    class Probe:
        def penalty(self, net):
            calls.append("penalty")
            return 0.25

        def backward(self, net):
            calls.append("backward")
            assert any(p.grad.any() for p in net.parameters())  # after the data backward

        def after_step(self, net):
            calls.append("after_step")

    history = make(regularizer=Probe()).run(steps=2)
    assert calls == ["penalty", "backward", "after_step"] * 2
    assert [s["penalty"] for s in history.steps] == [0.25, 0.25]
    assert all(s["loss"] != 0.25 for s in history.steps)


def test_augmentation_is_applied_seeded_and_resumed_bit_exactly(tmp_path):
    def jitter(images, rng):  # any t(images, rng) -> images works; cnnlab.augment's need (N, C, H, W)
        return images + rng.normal(0, 0.1, images.shape).astype(images.dtype)

    seen = []
    reference = make(augment=lambda x, rng: seen.append(x.copy()) or jitter(x, rng), batch_size=None)
    reference.fit(epochs=4, progress=False)
    assert len(seen) == 4
    early = make(augment=jitter, batch_size=None)
    early.fit(epochs=2, progress=False)
    early.save(tmp_path / "ck.pkl")
    resumed = make(augment=jitter, batch_size=None, net=small_net(seed=5)).load(tmp_path / "ck.pkl")
    resumed.fit(epochs=4, progress=False)
    for p, q in zip(reference.net.parameters(), resumed.net.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    plain = make(batch_size=None)
    plain.fit(epochs=4, progress=False)
    assert not np.array_equal(plain.net[0].weight.data, reference.net[0].weight.data)


def test_a_net_whose_validation_outputs_blow_up_is_reported_diverged():
    X, y = blobs()
    net = small_net()
    trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=1.0), X, y, batch_size=60, rng=0,
                      X_val=X, y_val=y)
    net[0].weight.data[...] = np.float32(3e38)  # the next forward overflows
    net[0].weight.data[0, 0] = np.float32(np.inf)
    history = trainer.fit(epochs=3, progress=False)
    assert history.diverged and "diverged" in history.message
    loss, acc = evaluate(net, CrossEntropyLoss(), X, y)  # evaluating a blown-up net reports, never raises
    assert np.isnan(loss) and acc is None


def test_a_bounded_but_huge_loss_counts_as_divergence_when_asked():
    trainer = make(diverge_above=1e-6)  # any real loss is above this
    history = trainer.fit(epochs=3, progress=False)
    assert history.diverged and history.diverged_at == 1 and len(history.steps) == 1
    assert "the mean loss of the last 1 steps" in history.message and "more than 1e-06" in history.message
    assert len(history.epochs) == 0, "the run ends at the step, not at the end of its epoch"


class ScriptedLoss(CrossEntropyLoss):
    """Cross-entropy whose forward reports the next of `losses` (the gradients stay the real ones)."""

    def __init__(self, losses):
        super().__init__()
        self.losses = iter(losses)

    def forward(self, out, y):
        super().forward(out, y)
        return next(self.losses)


def scripted(losses, **kwargs):
    X, y = blobs()
    net = small_net()
    return Trainer(net, ScriptedLoss(losses), SGD(net.parameters(), lr=0.01), X, y, rng=0, **kwargs)


def test_diverge_above_watches_the_mean_of_the_last_window_steps_after_every_step():
    # batch 8 of 60 examples: 8 steps per epoch; the means of the last two losses are 2, 2.5, 4.5, 7.5
    trainer = scripted([2.0, 3.0, 6.0, 9.0, 1.0, 1.0, 1.0, 1.0, 1.0], batch_size=8, diverge_above=5.0,
                       diverge_window=2)
    seen = []
    trainer.callbacks.append(lambda t, info: seen.append(info["step"]))
    history = trainer.run(epochs=1)
    assert history.diverged and history.diverged_at == 4 and trainer.global_step == 4
    assert "the mean loss of the last 2 steps is 7.5, more than 5" in history.message
    assert seen == [1, 2, 3], "the step that diverged ends the run before the step callbacks"
    assert trainer.run(epochs=1).diverged and trainer.global_step == 4, "a diverged run stays over"


def test_diverge_above_counts_fewer_steps_at_the_start_and_its_window_spans_epochs():
    early = scripted([9.0, 1.0], batch_size=None, diverge_above=5.0)  # one step per epoch
    assert early.run(epochs=2).diverged_at == 1, "the first step alone is the mean at the start"
    # one step per epoch, so the window of 3 steps spans three epochs: means 4, 4, 4.67, 5.33
    trainer = scripted([4.0, 4.0, 6.0, 6.0, 6.0], batch_size=None, diverge_above=5.0, diverge_window=3)
    history = trainer.run(epochs=5)
    assert history.diverged_at == 4 and len(history.epochs) == 3


@pytest.mark.parametrize("window", [0, 2.5, True])
def test_a_bad_diverge_window_is_refused(window):
    with pytest.raises(ValueError, match="diverge_window must be a whole number of steps >= 1"):
        make(diverge_above=5.0, diverge_window=window)


def test_switching_augmentation_on_keeps_the_batch_order():
    seen = {True: [], False: []}
    for on in (True, False):
        trainer = make(augment=(lambda x, rng: x) if on else None)
        trainer.train_step = lambda xb, yb, on=on: seen[on].append(yb.copy()) or {"loss": 0.0, "accuracy": None}
        trainer.run(steps=8)
    for a, b in zip(seen[True], seen[False]):
        np.testing.assert_array_equal(a, b)


def test_overflowing_squared_error_in_validation_is_divergence_not_a_warning():
    import warnings

    from cnnlab.losses import MSELoss

    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5)).astype(np.float32)
    T = rng.standard_normal((64, 3)).astype(np.float32)
    net = Sequential([Linear(5, 3, rng=0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        history = Trainer(net, MSELoss(), SGD(net.parameters(), lr=50.0), X, T, batch_size=None, rng=0,
                          X_val=X, y_val=T).run(epochs=200)
    assert history.diverged


# --- scoring in batches ------------------------------------------------------------------------------------
def _scored_net():
    from cnnlab.models import recipe_cnn

    return recipe_cnn(0, width=4).astype(np.float64)


def test_evaluate_and_predict_in_batches_agree_with_one_pass_over_all_images():
    from cnnlab.metrics import predict

    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((37, 1, 28, 28)), rng.integers(0, 10, 37)
    net = _scored_net()
    whole = evaluate(net, CrossEntropyLoss(), X, y, batch_size=len(X))
    for batch_size in (1, 7, 36, 128):  # 37 = 5 * 7 + 2: a short last batch
        loss, acc = evaluate(net, CrossEntropyLoss(), X, y, batch_size=batch_size)
        assert acc == whole[1] and loss == pytest.approx(whole[0], rel=1e-12)
        np.testing.assert_allclose(predict(net, X, batch_size=batch_size), predict(net, X, batch_size=len(X)),
                                   rtol=1e-12, atol=1e-12)


def test_scoring_memory_does_not_grow_with_the_number_of_images():
    """The peak of NumPy's allocations while scoring 600 images is that of scoring 150, give or take:
    working memory is one batch, not the data set (tracemalloc sees NumPy's buffers)."""
    import tracemalloc

    net, rng = _scored_net(), np.random.default_rng(4)
    peaks = {}
    for n in (150, 600):
        X, y = rng.standard_normal((n, 1, 28, 28)), rng.integers(0, 10, n)
        evaluate(net, CrossEntropyLoss(), X[:10], y[:10])  # warm-up
        tracemalloc.start()
        evaluate(net, CrossEntropyLoss(), X, y, batch_size=50)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    image_bytes = 28 * 28 * 8
    assert peaks[600] - peaks[150] < 50 * image_bytes, peaks  # 450 more images would add 450 * 6 KB and more


def test_a_run_stopped_on_an_epochs_last_step_resumes_without_error_and_finishes_that_epoch():
    """A Stop button pressed during an epoch's last step: that epoch's end (evaluation, callbacks) is done
    when the run resumes, and training goes on (it used to raise StopIteration from the spent batches)."""
    X, y = np.random.default_rng(0).standard_normal((40, 3)).astype(np.float32), np.arange(40) % 2
    net = Sequential([Linear(3, 2, rng=0)])
    trainer = Trainer(net, CrossEntropyLoss(), SGD(net.parameters(), lr=0.1), X, y, batch_size=10, rng=0,
                      X_val=X, y_val=y)
    stop_at = len(trainer.loader)  # the last step of epoch 1
    trainer.callbacks.append(lambda t, info: t.stop("stopped", "Stop pressed") if info["step"] == stop_at else None)
    trainer.run(epochs=3)
    assert trainer.global_step == stop_at and trainer.epoch == 0 and trainer.history.status == "stopped"
    history = trainer.run(epochs=3)
    assert history.status == "completed" and trainer.epoch == 3 and trainer.global_step == 3 * stop_at
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
