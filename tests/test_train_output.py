"""Progress that fits where it goes: a bar on a terminal, one line per epoch anywhere else."""
import subprocess
import sys
from types import SimpleNamespace

from test_recipes_cli import tiny_data  # noqa: F401 (a fixture)

from cnnlab.recipes import train_recipe
from cnnlab.train import EpochLog


def epoch_info(epoch, seconds, val=True):
    return {"epoch": epoch, "train_loss": 0.5 / epoch, "seconds": seconds,
            "val_loss": 0.6 / epoch if val else None, "val_accuracy": 0.8 + 0.01 * epoch if val else None}


def test_epoch_log_estimates_the_time_left_from_the_epochs_done():
    lines, ticks = [], iter([30.0, 50.0, 75.0])
    log = EpochLog(4, lines.append, clock=lambda: next(ticks))
    for epoch, seconds in ((1, 20.0), (2, 20.0), (3, 25.0)):
        log.on_epoch_end(SimpleNamespace(), epoch_info(epoch, seconds))
    # the clock started at 30 - 20 = 10: 20 s elapsed after 1 epoch, 3 left -> 60 s; then 40 s / 2 * 2 = 40 s;
    # then 65 s / 3 * 1 = 21.7 s
    assert lines == [
        "epoch 1/4: train loss 0.5000, val loss 0.6000, val accuracy 81.00%, 0:20 elapsed, about 1:00 left",
        "epoch 2/4: train loss 0.2500, val loss 0.3000, val accuracy 82.00%, 0:40 elapsed, about 0:40 left",
        "epoch 3/4: train loss 0.1667, val loss 0.2000, val accuracy 83.00%, 1:05 elapsed, about 0:22 left"]


def test_epoch_log_of_a_resumed_run_counts_its_own_epochs_and_stops_estimating_at_the_end():
    lines, ticks = [], iter([100.0, 7300.0])
    log = EpochLog(6, lines.append, clock=lambda: next(ticks))
    log.on_epoch_end(None, epoch_info(5, 100.0, val=False))  # resumed at epoch 4: one epoch done here
    log.on_epoch_end(None, epoch_info(6, 7200.0, val=False))
    assert lines == ["epoch 5/6: train loss 0.1000, 1:40 elapsed, about 1:40 left",
                     "epoch 6/6: train loss 0.0833, 2:01:40 elapsed"]


def test_the_recipe_writes_one_line_per_epoch_when_the_output_is_not_a_terminal(tiny_data, capsys):
    lines = []
    train_recipe(epochs=3, width=2, lr=3e-3, batch_size=50, progress=True, log=lines.append)
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("val accuracy" in line and "elapsed" in line for line in epochs)
    assert "about" in epochs[0] and "left" in epochs[0] and "left" not in epochs[-1]
    assert lines[-1].startswith("test accuracy"), "the last line sums up the run"
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err, "no progress bar on a non-terminal"


def test_quiet_recipe_prints_only_the_summary(tiny_data, capsys):
    lines = []
    train_recipe(epochs=2, width=2, lr=3e-3, batch_size=50, progress=False, log=lines.append)
    assert not any(line.startswith("epoch 1/") for line in lines)
    assert "\r" not in "".join(capsys.readouterr())


def test_the_train_command_redirected_to_a_file_logs_one_line_per_epoch(tmp_path):
    """The real command on the shipped subset, its output in a file: no carriage returns anywhere."""
    log = tmp_path / "train.log"
    with open(log, "w") as out:
        done = subprocess.run([sys.executable, "-m", "cnnlab", "train", "--epochs", "2", "--width", "2",
                               "--batch-size", "256"], stdout=out, stderr=subprocess.STDOUT, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text
    assert "\r" not in text
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("epoch ")] == ["epoch 1/2", "epoch 2/2"]
    assert lines[-1].startswith("test accuracy") and "scored once" in lines[-1]
