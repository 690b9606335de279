"""The training recipe and the `train` / `info` commands (on tiny data: no timing, no full run here)."""
import argparse

import numpy as np
import pytest

import cnnlab.data
from cnnlab.cli import add_info_parser, add_train_parser, info, run_info, run_train
from cnnlab.data import FashionMNIST
from cnnlab.recipes import make_optimizer, recipe_cnn, train_recipe


@pytest.fixture
def tiny_data(monkeypatch):
    """200 training and 60 test images: the recipe's code path in a second."""
    rng = np.random.default_rng(0)

    def fake(split="train", root=None, source="auto", download=False):
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


def test_recipe_cnn_shapes_and_he_initialisation():
    net = recipe_cnn(0, width=8)
    out = net.eval()(np.zeros((2, 1, 28, 28), np.float32))
    assert out.shape == (2, 10)
    conv = net[0].weight.data
    assert conv.std() == pytest.approx(np.sqrt(2 / 9), rel=0.25)  # He: Var = 2 / fan_in, fan_in = 1*3*3


def test_make_optimizer_names_the_choices():
    with pytest.raises(ValueError, match="optimizer must be one of adam, sgd"):
        make_optimizer("lion", recipe_cnn(0, width=4).parameters(), 0.1)


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
