"""The recipe's label smoothing, weight decay, warm-up and schedule options, and `train --json` (tiny data)."""
import json
import math

import numpy as np
import pytest
from test_recipes_cli import edit_checkpoint_header, parse, tiny_data, train  # noqa: F401 (a fixture)

from cnnlab.cli import run_train
from cnnlab.recipes import SettingsError, recipe_defaults, train_recipe
from cnnlab.train import read_checkpoint


def quiet(**options):
    """train_recipe on the tiny data with a tiny network: 180 training images, batch 64, 3 steps per epoch."""
    return train_recipe(width=2, progress=False, log=lambda line: None, **options)


def test_the_new_options_are_recorded_and_a_resume_refuses_any_change(tiny_data, tmp_path, capsys):
    path = str(tmp_path / "run.ckpt")
    assert train("--epochs", "2", "--label-smoothing", "0.1", "--weight-decay", "0.05", "--warmup", "0.5",
                 "--checkpoint", path) == 0
    assert "AdamW (weight decay 0.05), lr=0.001, batch 64, cosine schedule after 0.5 warm-up epochs, label " \
           "smoothing 0.1, 2 epochs" in capsys.readouterr().out
    saved = read_checkpoint(path, arrays=False)
    recipe = saved["meta"]["recipe"]
    assert (recipe["label_smoothing"], recipe["weight_decay"], recipe["warmup_epochs"], recipe["schedule"]) == \
        (0.1, 0.05, 0.5, "cosine")
    assert saved["optimizer"]["type"] == "AdamW" and saved["optimizer"]["groups"][0]["weight_decay"] == 0.05
    before = (tmp_path / "run.ckpt").read_bytes()
    assert train("--epochs", "3", "--label-smoothing", "0.2", "--warmup", "1", "--checkpoint", path, "--resume") == 2
    err = capsys.readouterr().err
    for change in ("label_smoothing 0.1 saved, 0.2 requested", "weight_decay 0.05 saved, 0.0 requested",
                   "warmup_epochs 0.5 saved, 1.0 requested"):
        assert change in err
    assert err.count("\n") == 1 and (tmp_path / "run.ckpt").read_bytes() == before
    assert train("--epochs", "3", "--label-smoothing", "0.1", "--weight-decay", "0.05", "--schedule", "onecycle",
                 "--checkpoint", path, "--resume") == 2
    err = capsys.readouterr().err
    assert "warmup_epochs 0.5 saved, 0.0 requested; schedule 'cosine' saved, 'onecycle' requested" in err


def test_defaults_are_recorded_as_todays_recipe(tiny_data):
    settings = quiet(epochs=1)["settings"]
    assert {k: settings[k] for k in ("label_smoothing", "weight_decay", "warmup_epochs", "schedule", "optimizer",
                                     "lr", "batch_size", "augment")} == {
        "label_smoothing": 0.0, "weight_decay": 0.0, "warmup_epochs": 0.0, "schedule": "cosine", "optimizer": "adam",
        "lr": 0.001, "batch_size": 64, "augment": "none"}


def test_a_full_run_defaults_to_the_sweeps_combined_recipe_and_the_subset_keeps_its_own(tiny_data, capsys):
    from cnnlab.sweep import CANDIDATES, REFERENCE

    assert train("--full", "--epochs", "2", "--width", "2", "--quiet") == 0
    out = capsys.readouterr().out
    assert "AdamW (weight decay 0.05), lr=0.003" in out and "label smoothing 0.1" in out and "2 epochs" in out
    full = quiet(full=True, epochs=2)["settings"]
    winner = {**REFERENCE, **CANDIDATES["combined"]}  # the sweep's candidate the README's table names winner
    assert {k: full[k] for k in ("lr", "augment", "schedule", "label_smoothing", "weight_decay")} == \
        {k: winner[k] for k in ("lr", "augment", "schedule", "label_smoothing", "weight_decay")}
    assert recipe_defaults("full", "adam")["epochs"] == winner["epochs"] == 19
    subset = quiet(epochs=1)["settings"]
    assert (subset["lr"], subset["augment"], subset["schedule"], subset["weight_decay"]) == (0.001, "none", "cosine", 0.0)
    assert recipe_defaults("subset", "adam")["epochs"] == 12


def test_a_full_run_with_another_optimizer_takes_no_default_decay_and_explicit_options_win(tiny_data):
    sgd = quiet(full=True, epochs=2, optimizer="sgd", lr=0.05)["settings"]
    assert (sgd["weight_decay"], sgd["lr"], sgd["augment"], sgd["label_smoothing"]) == (0.0, 0.05, "flip", 0.1)
    plain = quiet(full=True, epochs=1, augment=False, weight_decay=0, label_smoothing=0, schedule="cosine")["settings"]
    assert (plain["augment"], plain["weight_decay"], plain["label_smoothing"], plain["schedule"]) == \
        ("none", 0.0, 0.0, "cosine")
    assert recipe_defaults("full", "adamw")["weight_decay"] == 0.05  # the recipe's decay, not AdamW's own 0.01
    with pytest.raises(SettingsError, match="data source must be one of subset, full, got 'all'"):
        recipe_defaults("all")
    with pytest.raises(SettingsError, match="no option momentum"):
        recipe_defaults("full", momentum=0.9)


@pytest.mark.parametrize("argv, kind, words", [((), "none", None), (("--augment",), "crop-flip", "crops and flips"),
                                               (("--augment", "crop-flip"), "crop-flip", "crops and flips"),
                                               (("--augment", "flip"), "flip", "flips")])
def test_the_augmentation_is_named_recorded_and_said(tiny_data, tmp_path, capsys, argv, kind, words, monkeypatch):
    import cnnlab.train

    seen = []
    real = cnnlab.train.Trainer.__init__

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("augment"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(cnnlab.train.Trainer, "__init__", spy)
    path = tmp_path / "a.ckpt"
    assert run_train(parse("train", "--epochs", "1", "--width", "2", "--checkpoint", str(path), *argv)) == 0
    printed = capsys.readouterr().out
    assert read_checkpoint(path, arrays=False)["meta"]["recipe"]["augment"] == kind
    assert "flips" not in printed if words is None else f"cosine schedule, {words}, 1 epochs" in printed
    (transform,) = seen
    if kind == "none":
        assert transform is None
    else:  # flips alone keep every image or mirror it; crops also shift it
        images = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 1, 28, 28)
        out = [transform(images.copy(), np.random.default_rng(s)) for s in range(8)]
        mirrored_or_kept = all(np.array_equal(o[i], images[i]) or np.array_equal(o[i], images[i, :, :, ::-1])
                               for o in out for i in range(2))
        assert mirrored_or_kept is (kind == "flip")


def test_a_checkpoint_written_when_augment_was_a_flag_resumes_with_its_name(tiny_data, tmp_path, capsys):
    path = tmp_path / "old.ckpt"

    def as_a_flag(value):  # as the recipe wrote the setting before flips alone were offered
        return lambda header: header["meta"]["recipe"].update(augment=value)

    assert train("--epochs", "1", "--augment", "--checkpoint", str(path)) == 0
    edit_checkpoint_header(path, as_a_flag(True))
    assert train("--epochs", "2", "--augment", "crop-flip", "--checkpoint", str(path), "--resume") == 0
    edit_checkpoint_header(path, as_a_flag(True))
    capsys.readouterr()
    assert train("--epochs", "3", "--augment", "flip", "--checkpoint", str(path), "--resume") == 2
    assert "augment 'crop-flip' saved, 'flip' requested" in capsys.readouterr().err


def test_label_smoothing_reaches_the_training_loss(tiny_data, monkeypatch):
    from cnnlab.losses import CrossEntropyLoss

    made, real = [], CrossEntropyLoss.__init__

    def spy(self, reduction="mean", label_smoothing=0.0):
        made.append(label_smoothing)
        real(self, reduction, label_smoothing)

    monkeypatch.setattr(CrossEntropyLoss, "__init__", spy)
    result = quiet(epochs=1, label_smoothing=0.2)
    assert made[0] == 0.2 and made[1:] == [0.0]  # the trainer's loss smooths; the test loss is the plain one
    assert result["test_loss"] is not None


def test_warm_up_then_cosine_advances_every_step_by_hand(tiny_data):
    """3 epochs of 3 steps, 1 warm-up epoch: lr (0.1, 0.4, 0.7) x 0.01 over steps 0-2, then the cosine over
    the 6 steps left, 0.01 (1 + cos(pi (t - 3) / 6)) / 2: 0.01 at step 3, 0.005 at step 6."""
    lrs = [s["lr"] for s in quiet(epochs=3, lr=0.01, warmup_epochs=1)["history"].steps]
    assert lrs == pytest.approx([0.001, 0.004, 0.007] + [0.005 * (1 + math.cos(math.pi * k / 6)) for k in range(6)],
                                rel=1e-12)
    assert lrs[6] == pytest.approx(0.005, rel=1e-12)


def test_one_cycle_advances_every_step_and_cannot_be_stretched_on_resume(tiny_data, tmp_path):
    """4 epochs of 3 steps, max lr 0.01: step 0 at 0.01 / 25, the last (step 11) at 0.01 / 25 / 1e4, the
    peak between steps 2 and 3 (0.3 x 12 - 1 = 2.6)."""
    path = tmp_path / "one.ckpt"
    result = quiet(epochs=4, lr=0.01, schedule="onecycle", checkpoint=path)
    lrs = [s["lr"] for s in result["history"].steps]
    assert len(lrs) == 12 and lrs[0] == pytest.approx(4e-4, rel=1e-12) and lrs[11] == pytest.approx(4e-8, rel=1e-9)
    assert max(lrs) in (lrs[2], lrs[3]) and max(lrs) < 0.01
    assert all(a < b for a, b in zip(lrs[:3], lrs[1:4])) and all(a > b for a, b in zip(lrs[3:], lrs[4:]))
    with pytest.raises(SettingsError, match="cannot be stretched mid-run .* resume with --epochs 4"):
        quiet(epochs=6, lr=0.01, schedule="onecycle", checkpoint=path, resume=True)
    with pytest.raises(SettingsError, match="the onecycle schedule does not fit a run of 3 steps"):
        quiet(epochs=1, schedule="onecycle")


@pytest.mark.parametrize("options, words", [
    ({"weight_decay": 0.01, "optimizer": "sgd"}, "weight_decay is decoupled weight decay \\(AdamW\\) and goes with "
                                                 "optimizer 'adam' or 'adamw' only; got optimizer 'sgd'"),
    ({"weight_decay": -0.1}, "weight_decay must be a number >= 0 \\(or None\\), got -0.1"),
    ({"label_smoothing": 1.0}, r"label_smoothing must be a number in \[0, 1\), got 1.0"),
    ({"label_smoothing": "0.1"}, r"label_smoothing must be a number in \[0, 1\), got '0.1'"),
    ({"warmup_epochs": 2, "epochs": 2}, r"warmup_epochs must be a number of epochs in \[0, epochs\) = \[0, 2\), got 2"),
    ({"warmup_epochs": float("nan")}, "warmup_epochs must be a number of epochs"),
    ({"warmup_epochs": 1, "schedule": "onecycle"}, "the one-cycle schedule has its own warm-up"),
    ({"schedule": "step"}, "schedule must be one of cosine, onecycle; got 'step'"),
])
def test_bad_options_are_refused_before_any_data_is_read(options, words):
    with pytest.raises(SettingsError, match=words):
        train_recipe(progress=False, **options)


@pytest.mark.parametrize("option, value, words", [
    ("--label-smoothing", "1", r"--label-smoothing must be in [0, 1), got 1.0"),
    ("--label-smoothing", "nan", "--label-smoothing must be in [0, 1), got nan"),
    ("--weight-decay", "-1", "--weight-decay must be a number >= 0, got -1.0"),
    ("--warmup", "inf", "--warmup must be a number >= 0, got inf")])
def test_the_command_checks_the_new_options_in_one_line(option, value, words, capsys):
    assert run_train(parse("train", option, value)) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


def test_the_command_refuses_weight_decay_with_sgd_in_one_line(tiny_data, capsys):
    assert train("--weight-decay", "0.1", "--optimizer", "sgd", "--lr", "0.1") == 2
    err = capsys.readouterr().err
    assert "goes with optimizer 'adam' or 'adamw' only" in err and err.count("\n") == 1


def test_a_checkpoint_of_an_older_recipe_is_refused_naming_what_it_lacks(tiny_data, tmp_path, capsys):
    path = tmp_path / "old.ckpt"
    assert train("--epochs", "1", "--checkpoint", str(path)) == 0
    def drop_new_settings(header):  # as the recipe wrote them before these settings existed
        for key in ("label_smoothing", "schedule"):
            del header["meta"]["recipe"][key]

    edit_checkpoint_header(path, drop_new_settings)
    capsys.readouterr()
    assert train("--epochs", "2", "--checkpoint", str(path), "--resume") == 2
    err = capsys.readouterr().err
    assert "written by another version of the recipe (settings without label_smoothing, schedule)" in err
    assert "--overwrite" in err and err.count("\n") == 1


def test_train_json_writes_the_results_and_settings(tiny_data, tmp_path, capsys):
    out = tmp_path / "runs" / "result.json"
    assert train("--epochs", "1", "--seed", "3", "--label-smoothing", "0.1", "--json", str(out)) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert set(result) == {"status", "test_accuracy", "test_loss", "val_accuracy", "seconds", "cpu_seconds", "epochs",
                           "source", "kept_epoch", "settings", "peak_memory_mb", "per_epoch"}
    assert result["status"] == "completed" and result["epochs"] == 1 and result["source"] == "subset"
    assert f"test accuracy {result['test_accuracy']:.4f} on 60 images" in printed
    assert 0 <= result["val_accuracy"] <= 1 and result["seconds"] > 0 and result["kept_epoch"] is None
    assert 0 < result["cpu_seconds"] < 2 * result["seconds"] + 1  # one BLAS thread: about the wall time, or less
    assert f"training took {result['seconds']:.0f} s ({result['cpu_seconds']:.0f} s of CPU)" in printed
    assert result["settings"]["seed"] == 3 and result["settings"]["label_smoothing"] == 0.1
    assert result["settings"]["epochs"] == 1
    (epoch,) = result["per_epoch"]
    assert epoch["epoch"] == 1 and epoch["val_accuracy"] == result["val_accuracy"] and epoch["lr"] < 0.001 * 1e-6
    assert result["peak_memory_mb"] is None or result["peak_memory_mb"] > 10  # an interpreter with NumPy
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.json"]


def test_train_json_is_written_atomically_and_checked_before_training(tiny_data, tmp_path, capsys, monkeypatch):
    import os

    out = tmp_path / "result.json"
    out.write_text("the previous result")
    real = os.replace

    def fails(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fails)
    assert train("--epochs", "1", "--json", str(out)) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text() == "the previous result" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    monkeypatch.setattr(os, "replace", real)
    assert train("--epochs", "1", "--json", str(tmp_path)) == 2
    err = capsys.readouterr()
    assert "is a directory" in err.err and "training on" not in err.out


def test_a_diverged_run_writes_its_json_with_nothing_scored(tiny_data, tmp_path):
    out = tmp_path / "d.json"
    assert train("--optimizer", "sgd", "--lr", "300", "--batch-size", "100000", "--epochs", "2", "--json",
                 str(out)) == 3
    result = json.loads(out.read_text())
    assert result["status"] == "diverged" and result["test_accuracy"] is None and result["test_loss"] is None


def test_the_help_states_both_sources_defaults_from_the_recipes_table():
    import argparse

    from cnnlab.cli import add_train_parser
    from cnnlab.recipes import RECIPE_DEFAULTS

    parser = argparse.ArgumentParser()
    text = " ".join(add_train_parser(parser.add_subparsers()).format_help().split())
    full = RECIPE_DEFAULTS["full"]
    assert f"learning rate (default 0.001; with --full {full['lr']:g})" in text
    assert f"(default 12; with --full {full['epochs']})" in text and "(default none; with --full flip)" in text
    assert f"with --full {full['weight_decay']:g} for both" in text and "(default cosine; with --full onecycle;" in text
