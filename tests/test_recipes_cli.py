"""The training recipe and the `train` / `info` commands (on tiny data: no timing, no full run here)."""
import argparse
import math

import numpy as np
import pytest

import cnnlab.data
from cnnlab.cli import add_info_parser, add_train_parser, info, run_info, run_train
from cnnlab.data import FashionMNIST
from cnnlab.optim import OPTIMIZERS
from cnnlab.recipes import SettingsError, train_recipe
from cnnlab.train import read_checkpoint


@pytest.fixture
def tiny_data(monkeypatch):
    """200 training and 60 test images, the same at every call: the recipe's code path in a second."""

    def fake(split="train", root=None, source="auto", download=False):
        rng = np.random.default_rng(0 if split == "train" else 1)
        n = 200 if split == "train" else 60
        y = np.arange(n) % 10
        X = rng.random((n, 1, 28, 28)).astype(np.float32) * 0.2
        X[np.arange(n), 0, y, :] += 0.8  # class k lights up row k: learnable
        return FashionMNIST(X, y.astype(np.int64), cnnlab.data.CLASSES)

    monkeypatch.setattr(cnnlab.data, "load_fashion_mnist", fake)


def parse(*argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_parser(sub)
    add_info_parser(sub)
    return parser.parse_args(list(argv))


def test_the_recipe_and_the_command_offer_the_registrys_optimizers():
    known = "sgd, momentum, nesterov, adagrad, adadelta, rmsprop, adam, adamw"
    with pytest.raises(SettingsError, match=f"optimizer must be one of {known}; got 'lion'"):
        train_recipe(optimizer="lion", progress=False)
    assert [parse("train", "--optimizer", name).optimizer for name in OPTIMIZERS] == list(OPTIMIZERS)
    assert parse("train").optimizer == "adam"
    with pytest.raises(SystemExit):
        parse("train", "--optimizer", "lion")


def test_the_recipe_builds_rmsprop_with_the_registrys_alpha(tiny_data, tmp_path):
    path = tmp_path / "rms.ckpt"
    result = train_recipe(epochs=1, width=4, lr=1e-3, batch_size=50, optimizer="rmsprop", progress=False,
                          checkpoint=path, log=lambda line: None)
    assert result["history"].status == "completed"
    saved = read_checkpoint(path, arrays=False)["optimizer"]
    assert saved["type"] == "RMSprop" and saved["groups"][0]["alpha"] == 0.99  # PyTorch's, as everywhere


def test_the_command_trains_adamw_with_its_own_decay_or_the_one_given(tiny_data, tmp_path, capsys):
    for extra, decay in (((), 0.01), (("--weight-decay", "0.05"), 0.05), (("--weight-decay", "0"), 0.0)):
        # 0.01: PyTorch's AdamW default; an explicit 0 is no decay, not the default
        path = tmp_path / f"adamw{decay}.ckpt"
        assert run_train(parse("train", "--optimizer", "adamw", "--epochs", "1", "--width", "2", "--quiet",
                               "--checkpoint", str(path), *extra)) == 0
        assert f"AdamW (weight decay {decay:g}), lr=0.001" in capsys.readouterr().out
        saved = read_checkpoint(path, arrays=False)
        assert saved["optimizer"]["type"] == "AdamW" and saved["optimizer"]["groups"][0]["weight_decay"] == decay
        assert (saved["meta"]["recipe"]["optimizer"], saved["meta"]["recipe"]["weight_decay"]) == ("adamw", decay)
    # the API takes the decay as given, 0 included (AdamW without decay: Adam's steps)
    result = train_recipe(epochs=1, width=2, optimizer="adamw", weight_decay=0.0, progress=False,
                          log=lambda line: None)
    assert result["settings"]["weight_decay"] == 0.0


def test_train_recipe_learns_the_tiny_task_and_scores_the_test_set_once(tiny_data):
    lines = []
    result = train_recipe(epochs=3, width=4, lr=3e-3, batch_size=20, augment=False, progress=False,
                          log=lines.append)
    assert result["epochs"] == 3 and result["history"].status == "completed"
    assert result["test_accuracy"] > 0.5  # chance is 0.1
    assert any("test accuracy" in line and "scored once" in line for line in lines)


def test_train_command_checkpoints_and_resumes(tiny_data, tmp_path, capsys):
    path = tmp_path / "ck.pkl"
    assert run_train(parse("train", "--epochs", "1", "--width", "4", "--checkpoint", str(path), "--quiet")) == 0
    assert path.exists()
    assert run_train(parse("train", "--epochs", "2", "--width", "4", "--checkpoint", str(path), "--resume",
                           "--quiet")) == 0
    assert "resumed from" in capsys.readouterr().out


def test_train_command_refuses_bad_options_with_a_message(capsys):
    assert run_train(parse("train", "--resume")) == 2
    assert "--resume needs --checkpoint" in capsys.readouterr().err
    assert run_train(parse("train", "--lr", "-1")) == 2
    assert "--lr must be positive" in capsys.readouterr().err


def test_info_reports_versions_and_data(capsys):
    found = info()
    assert found["numpy"] == np.__version__
    assert "8000 training images, checksums verified" in found["shipped subset"]
    assert run_info(parse("info")) == 0 and "shipped subset" in capsys.readouterr().out


@pytest.mark.parametrize("variable, value, words", [
    ("CNNLAB_DATA", "does-not-exist", "that folder does not exist"),
    ("CNNLAB_SYSTEM_DATA", "maybe", "got 'maybe'"),
])
def test_info_names_a_bad_data_setting_instead_of_failing(variable, value, words, monkeypatch, tmp_path):
    monkeypatch.setenv(variable, str(tmp_path / value) if variable == "CNNLAB_DATA" else value)
    found = info()
    assert found["full Fashion-MNIST"].startswith("PROBLEM:") and words in found["full Fashion-MNIST"]
    assert "checksums verified" in found["shipped subset"]


def train(*argv):
    """Run `python -m cnnlab train` on the tiny data with a tiny network; returns the exit status."""
    return run_train(parse("train", "--width", "2", "--quiet", "--batch-size", "64", *argv))


def test_resume_with_more_epochs_rebuilds_the_cosine_schedule_and_says_so(tiny_data, tmp_path, capsys):
    path = str(tmp_path / "run.ckpt")
    assert train("--epochs", "1", "--lr", "0.004", "--checkpoint", path) == 0
    capsys.readouterr()
    assert train("--epochs", "3", "--lr", "0.004", "--checkpoint", path, "--resume") == 0
    out = capsys.readouterr().out
    assert "the cosine schedule now spans 3 epochs instead of 1" in out
    assert "completed: finished 3 epochs" in out
    history = read_checkpoint(path)["history"]
    assert len(history.epochs) == 3
    # 180 training images, batch 64: 3 steps per epoch, and the schedule advances after each. Epoch 1 ran
    # the cosine over 3 steps: lr(t) = 0.004 (1 + cos(pi t / 3)) / 2 = 0.004, 0.003, 0.001; the resumed
    # run continues at step 3 of the cosine over 9 steps: 0.004 (1 + cos(pi t / 9)) / 2 for t = 3 .. 8
    assert "lr 0.003 at epoch 2" in out
    assert [s["lr"] for s in history.steps] == pytest.approx(
        [0.004, 0.003, 0.001] + [0.002 * (1 + math.cos(math.pi * t / 9)) for t in range(3, 9)], rel=1e-12)
    assert [s["lr"] for s in history.steps][3::3] == pytest.approx([0.003, 0.001], rel=1e-12)
    assert read_checkpoint(path)["meta"]["recipe"]["epochs"] == 3
    assert train("--epochs", "2", "--lr", "0.004", "--checkpoint", path, "--resume") == 0
    assert "already holds 3 epochs (asked for 2): nothing to train" in capsys.readouterr().out
    assert len(read_checkpoint(path)["history"].epochs) == 3


def test_resume_refuses_changed_settings_listing_each(tiny_data, tmp_path, capsys):
    path = str(tmp_path / "run.ckpt")
    assert train("--epochs", "1", "--checkpoint", path) == 0
    before = (tmp_path / "run.ckpt").read_bytes()
    capsys.readouterr()
    assert run_train(parse("train", "--width", "3", "--quiet", "--epochs", "2", "--checkpoint", path, "--resume",
                           "--optimizer", "sgd", "--lr", "0.1", "--seed", "4", "--augment", "--batch-size", "32",
                           "--full")) == 2
    err = capsys.readouterr().err
    for change in ("width 2 saved, 3 requested", "optimizer 'adam' saved, 'sgd' requested",
                   "lr 0.001 saved, 0.1 requested", "seed 0 saved, 4 requested", "augment 'none' saved, 'crop-flip' requested",
                   "batch_size 64 saved, 32 requested", "source 'subset' saved, 'full' requested"):
        assert change in err
    assert err.count("\n") == 1 and (tmp_path / "run.ckpt").read_bytes() == before


def test_a_fresh_run_does_not_replace_a_checkpoint_unless_asked(tiny_data, tmp_path, capsys):
    path = tmp_path / "run.ckpt"
    path.write_bytes(b"someone's file")
    assert train("--epochs", "1", "--checkpoint", str(path)) == 2
    err = capsys.readouterr().err
    assert "already exists: pass --resume" in err and "--overwrite" in err
    assert path.read_bytes() == b"someone's file"
    assert train("--epochs", "1", "--checkpoint", str(path), "--overwrite") == 0
    assert read_checkpoint(path)["epoch"] == 1


def test_bad_checkpoint_locations_are_refused_before_training(tiny_data, tmp_path, capsys):
    (tmp_path / "a_file").write_text("x")
    for where, words in ((tmp_path, "is a directory"), (tmp_path / "a_file" / "run.ckpt", "cannot write")):
        assert train("--epochs", "1", "--checkpoint", str(where)) == 2
        err = capsys.readouterr()
        assert words in err.err and err.err.count("\n") == 1 and "training on" not in err.out
    assert train("--epochs", "1", "--checkpoint", str(tmp_path / "none.ckpt"), "--resume") == 2
    assert "nothing to resume" in capsys.readouterr().err
    assert train("--epochs", "1", "--checkpoint", str(tmp_path / "x.ckpt"), "--resume", "--overwrite") == 2
    assert "give one of them" in capsys.readouterr().err
    (tmp_path / "bad.ckpt").write_bytes(b"PK not really")
    assert train("--epochs", "1", "--checkpoint", str(tmp_path / "bad.ckpt"), "--resume") == 1
    assert "bad.ckpt is not a" in capsys.readouterr().err


def test_the_reported_divergence_ends_in_one_line_exit_3_and_saves_nothing(tiny_data, tmp_path, capsys):
    path = tmp_path / "d.ckpt"  # a run that diverges at once: once it crashed formatting None, after saving
    argv = ("--optimizer", "sgd", "--lr", "300", "--batch-size", "100000", "--epochs", "5", "--checkpoint", str(path))
    assert train(*argv) == 3
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "diverged" in line]
    assert len(lines) == 1 and "try a smaller --lr" in lines[0] and "test accuracy" not in out
    assert "nothing was saved" in lines[0] and not path.exists()  # epoch 1 already had a validation loss ~1e13
    assert train(*argv, "--resume") == 2 and "nothing to resume" in capsys.readouterr().err


def test_a_loss_of_6e9_is_divergence_and_the_last_good_checkpoint_stays(tiny_data, tmp_path, capsys, monkeypatch):
    from cnnlab.losses import CrossEntropyLoss

    real, calls = CrossEntropyLoss.forward, []

    def explodes_after_epoch_1(self, out, y):  # epoch 1: 3 training steps and 1 validation batch
        calls.append(1)
        loss = real(self, out, y)
        return 6e9 if len(calls) > 4 else loss

    path = tmp_path / "run.ckpt"
    monkeypatch.setattr(CrossEntropyLoss, "forward", explodes_after_epoch_1)
    assert train("--epochs", "3", "--checkpoint", str(path)) == 3
    out = capsys.readouterr().out
    assert f"diverged at step 4 (lr 0.001): try a smaller --lr; {path} still holds epoch 1" in out
    assert "completed" not in out and "test accuracy" not in out
    saved = read_checkpoint(path)
    assert saved["epoch"] == 1 and not saved["history"].diverged


def edit_checkpoint_header(path, edit) -> None:
    """Rewrite a checkpoint file with `edit(header)` applied to its JSON header (a forged or older file)."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
    edit(header)
    buffer = io.BytesIO()
    np.save(buffer, np.frombuffer(json.dumps(header).encode(), np.uint8))
    members["header.npy"] = buffer.getvalue()
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def test_a_checkpoint_of_a_diverged_run_is_not_resumed(tiny_data, tmp_path, capsys):
    path = tmp_path / "run.ckpt"
    assert train("--epochs", "1", "--checkpoint", str(path)) == 0
    edit_checkpoint_header(path, lambda h: h["history"].update(status="diverged", diverged_at=2,
                                                               message="diverged at step 2"))
    capsys.readouterr()
    assert train("--epochs", "2", "--checkpoint", str(path), "--resume") == 2
    assert "had diverged" in capsys.readouterr().err


def test_ctrl_c_says_what_was_saved_and_exits_130(tiny_data, tmp_path, capsys, monkeypatch):
    from cnnlab.train import Trainer

    real = Trainer._train_step
    calls = []

    def interrupted_in_epoch_2(self, xb, yb):  # 3 steps per epoch on the tiny data
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, xb, yb)

    monkeypatch.setattr(Trainer, "_train_step", interrupted_in_epoch_2)
    path = tmp_path / "run.ckpt"
    assert train("--epochs", "3", "--checkpoint", str(path)) == 130
    err = capsys.readouterr().err
    assert err == f"interrupted at epoch 2: the checkpoint {path} holds epoch 1; resume with --resume\n"
    assert read_checkpoint(path)["epoch"] == 1
    calls.clear()
    assert train("--epochs", "3") == 130
    assert capsys.readouterr().err == "interrupted at epoch 2: nothing saved: no --checkpoint\n"


@pytest.mark.parametrize("option, value, words", [
    ("--threads", "0", "--threads must be at least 1, got 0"), ("--threads", "-2", "--threads must be at least 1"),
    ("--epochs", "0", "--epochs must be at least 1, got 0"), ("--batch-size", "0", "--batch-size must be at least 1"),
    ("--width", "-1", "--width must be at least 1"), ("--lr", "nan", "--lr must be positive, got nan"),
    ("--lr", "0", "--lr must be positive")])
def test_every_numeric_option_is_checked_in_one_line(option, value, words, capsys):
    assert run_train(parse("train", option, value)) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_stale_temporaries_are_removed_before_training_with_one_line(tiny_data, tmp_path, capsys):
    path = tmp_path / "run.ckpt"
    (tmp_path / ".run.ckpt.k3j_9x2a.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".run.ckpt.notours.tmp").write_bytes(b"someone's")
    assert train("--epochs", "1", "--checkpoint", str(path)) == 0
    assert capsys.readouterr().out.count("removed 1 unfinished temporary file") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.ckpt.notours.tmp", "run.ckpt"]


def test_the_help_documents_exit_codes_and_overwrite(capsys):
    with pytest.raises(SystemExit):
        parse("train", "--help")
    out = capsys.readouterr().out
    assert "--overwrite" in out and "130  interrupted" in out and "3  the run diverged" in out


def test_an_interrupted_run_resumed_ends_exactly_as_an_uninterrupted_one(tiny_data, tmp_path, monkeypatch, capsys):
    from cnnlab.train import Trainer

    straight, broken = tmp_path / "straight.ckpt", tmp_path / "broken.ckpt"
    assert train("--epochs", "2", "--checkpoint", str(straight)) == 0
    real, calls = Trainer._train_step, []

    def interrupted_at_step_5(self, xb, yb):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(self, xb, yb)

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_train_step", interrupted_at_step_5)
        assert train("--epochs", "2", "--checkpoint", str(broken)) == 130
    assert train("--epochs", "2", "--checkpoint", str(broken), "--resume") == 0
    a, b = read_checkpoint(straight), read_checkpoint(broken)
    assert a["net"].keys() == b["net"].keys()
    for name in a["net"]:
        np.testing.assert_array_equal(a["net"][name], b["net"][name])
    assert [e["val_loss"] for e in a["history"].epochs] == [e["val_loss"] for e in b["history"].epochs]


def test_patience_stops_early_scores_the_best_epochs_weights_and_a_resume_trains_nothing(tiny_data, tmp_path, capsys):
    """lr 0.1 is too large for this task: the validation loss bottoms out after a few epochs."""
    path = tmp_path / "early.ckpt"
    lines = []
    result = train_recipe(epochs=30, width=2, lr=0.1, batch_size=50, progress=False, patience=2, val_size=40,
                          checkpoint=path, log=lines.append)
    history = result["history"]
    losses = [e["val_loss"] for e in history.epochs]
    best = int(np.argmin(losses)) + 1
    assert history.status == "early_stopping" and result["epochs"] == best + 2 < 30
    assert result["kept_epoch"] == best
    assert f"with the weights of epoch {best} (lowest validation loss, {min(losses):.4f}; the run stopped early " \
           f"at epoch {best + 2})" in lines[-1]
    saved = read_checkpoint(path)
    kept = result["net"].state_dict()
    assert all(np.array_equal(kept[k], v) for k, v in saved["net"].items()), "the checkpoint holds the kept weights"
    (stopper,) = [c for c in saved["callbacks"].values() if c["type"] == "EarlyStopping"]
    assert stopper["state"]["best_epoch"] == best and set(stopper["weights"]) == set(kept)
    assert all(np.array_equal(kept[k], v) for k, v in stopper["weights"].items())
    assert saved["meta"]["recipe"]["patience"] == 2
    again = []
    resumed = train_recipe(epochs=30, width=2, lr=0.1, batch_size=50, progress=False, patience=2, val_size=40,
                           checkpoint=path, resume=True, log=again.append)
    assert any("stopped early at epoch" in line and "nothing to train" in line for line in again)
    assert resumed["test_accuracy"] == result["test_accuracy"] and resumed["test_loss"] == result["test_loss"]
    with pytest.raises(SettingsError, match="patience 2 saved, 3 requested"):
        train_recipe(epochs=30, width=2, lr=0.1, batch_size=50, progress=False, patience=3, val_size=40,
                     checkpoint=path, resume=True, log=again.append)


def test_patience_must_be_a_whole_number_of_epochs(capsys):
    with pytest.raises(SettingsError, match="patience must be a whole number of epochs >= 1"):
        train_recipe(patience=0, progress=False)
    assert run_train(parse("train", "--patience", "0")) == 2
    assert "--patience must be at least 1" in capsys.readouterr().err
