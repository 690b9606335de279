"""The benchmark's structure (fields, aggregation with a fake clock, missing PyTorch, the command line).
Nothing here measures or compares wall-clock time. (The kernels it times are tested in test_kernels.py.)"""
import importlib.util
import json
import sys

import numpy as np
import pytest

import cnnlab.__main__ as cli
import cnnlab.kernels.fast as fast_module
from cnnlab import bench


def reference_net():
    return bench.reference_cnn(np.random.default_rng(3))


# --- the benchmark ----------------------------------------------------------------------------------------------
def tiny(**kwargs):
    options = dict(batch_size=3, repeats=2, block=1, warmup=1, threads=1)
    options.update(kwargs)
    return bench.run_benchmark(**options)


class FakeClock:
    """Every reading is 1 ms after the previous one: each timed call then lasts exactly 1 ms."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        self.t += 1e-3
        return self.t


def test_reference_cnn_is_the_issues_network():
    net = bench.reference_cnn(0)
    assert [type(layer).__name__ for layer in net] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d",
                                                       "Flatten", "Linear", "ReLU", "Linear"]
    assert (net[0].in_channels, net[0].out_channels, net[0].kernel_size, net[0].padding) == (1, 16, (3, 3), (1, 1))
    assert (net[3].in_channels, net[3].out_channels, net[3].padding) == (16, 32, (1, 1))
    assert (net[7].in_features, net[7].out_features, net[9].out_features) == (1568, 128, 10)
    assert net(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    np.testing.assert_array_equal(net[0].weight.data, bench.reference_cnn(0)[0].weight.data)


def test_the_benchmarks_step_skips_only_the_images_gradient(monkeypatch):
    """As PyTorch's step (images that do not require a gradient): cnnlab's step and its per-layer step
    fold back one input gradient (col2im) per step, the second convolution's, not the first's."""
    from cnnlab.bench_models import CnnlabStep

    calls = []
    original = fast_module.col2im
    monkeypatch.setattr(fast_module, "col2im", lambda cols, shape, *a: calls.append(shape) or original(cols, shape, *a))
    rng = np.random.default_rng(22)
    step = CnnlabStep(reference_net(), rng.random((3, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 3))
    step.train_step()
    step.layer_step(FakeClock())
    assert calls == [(3, 16, 14, 14)] * 2


def test_benchmark_reports_every_field_with_a_fake_clock():
    result = tiny(clock=FakeClock())
    assert result["config"]["batch_size"] == 3 and result["config"]["dtype"] == "float32"
    assert result["threads"]["requested"] == 1
    ours = result["cnnlab"]
    for key in ("train_step_ms", "inference_ms"):
        assert ours[key] == {"median": pytest.approx(1.0), "q1": pytest.approx(1.0), "q3": pytest.approx(1.0),
                             "min": pytest.approx(1.0), "samples": 2}
    assert ours["train_images_per_s"] == pytest.approx(3 / 1e-3)
    assert ours["inference_images_per_s"] == pytest.approx(3 / 1e-3)
    assert [row["index"] for row in ours["layers"]] == list(range(10))
    assert ours["layers"][3]["layer"].startswith("Conv2d(16, 32")
    assert all(row["forward_ms"] == pytest.approx(1.0) and row["backward_ms"] == pytest.approx(1.0)
               for row in ours["layers"])
    assert ours["loss_ms"] == pytest.approx(1.0) and ours["optimizer_ms"] == pytest.approx(1.0)
    memory = result["memory"]
    assert memory["numpy_peak_mb"] > 0.4          # at least the 0.8 MB of float32 parameters, in MB
    assert "tracemalloc" in memory["method"] and "getrusage" in memory["method"]
    json.dumps(result)                             # JSON-ready
    if importlib.util.find_spec("torch") is not None:
        assert result["ratio"] == {"train_step": pytest.approx(1.0), "inference": pytest.approx(1.0)}
        assert result["threads"]["torch"] == 1
        assert result["max_abs_logit_difference"] < 1e-5   # the same network with the same weights
        assert len(result["torch"]["layers"]) == 10
    else:
        assert result["torch"] is None and result["ratio"] is None


def test_benchmark_with_the_real_clock_gives_consistent_figures():
    result = tiny(layers=False)
    ours = result["cnnlab"]
    step = ours["train_step_ms"]
    assert step["samples"] == 2 and 0 <= step["min"] <= step["q1"] <= step["median"] <= step["q3"]
    assert ours["train_images_per_s"] == pytest.approx(3 / (step["median"] / 1e3))
    assert ours["layers"] is None
    report = bench.format_report(result)
    assert "training step (ms)" in report and "peak memory" in report and "per layer" not in report


def test_without_pytorch_only_cnnlab_is_timed(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)       # `import torch` now raises ImportError
    result = tiny(clock=FakeClock())
    assert result["torch"] is None and result["ratio"] is None and result["max_abs_logit_difference"] is None
    assert "not installed" in result["torch_missing"] and result["environment"]["torch"] is None
    assert result["threads"]["torch"] is None
    report = bench.format_report(result)
    assert "PyTorch: PyTorch is not installed" in report and "training step (ms)" in report


def test_no_torch_option_and_thread_fallback_without_threadpoolctl(monkeypatch):
    real_import = bench.importlib.import_module

    def no_threadpoolctl(name, *args):
        if name == "threadpoolctl":
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(bench.importlib, "import_module", no_threadpoolctl)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    result = tiny(use_torch=False, layers=False, clock=FakeClock())
    assert result["torch_missing"] == "not requested"
    assert result["threads"]["numpy_blas"] == 1
    assert result["threads"]["numpy_blas_control"].startswith("environment OPENBLAS_NUM_THREADS=1")


@pytest.mark.parametrize("kwargs, message", [
    (dict(batch_size=0), "batch_size must be a positive int, got 0"),
    (dict(repeats=1.5), "repeats must be a positive int, got 1.5"),
    (dict(block=True), "block must be a positive int, got True"),
    (dict(warmup=-1), "warmup must be an int >= 0, got -1"),
    (dict(threads=0), "threads must be a positive int, got 0"),
])
def test_benchmark_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bench.run_benchmark(**kwargs)


# --- the command line -------------------------------------------------------------------------------------------
def test_cli_writes_json_and_prints_the_table(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--batch-size", "2", "--repeats", "1", "--block", "1", "--warmup", "0",
                     "--threads", "1", "--no-torch", "--no-layers", "--json", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "training step (ms)" in printed and str(path) in printed
    saved = json.loads(path.read_text())
    assert saved["config"]["batch_size"] == 2 and saved["torch"] is None
    assert saved["cnnlab"]["train_step_ms"]["samples"] == 1


def test_cli_json_to_stdout(capsys):
    assert cli.main(["bench", "--batch-size", "2", "--repeats", "1", "--block", "1", "--warmup", "0",
                     "--threads", "1", "--no-torch", "--no-layers", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["repeats"] == 1


def test_cli_help_and_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--batch-size", "--repeats", "--threads", "--json", "--no-torch"):
        assert option in text
    assert "PyTorch" in text and "median" in text
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["bench", "--batch-size", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err


def test_cli_restarts_with_thread_variables_when_threadpoolctl_is_missing(monkeypatch):
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", cli.RELAUNCHED):
        monkeypatch.delenv(var, raising=False)
    assert cli._needs_relaunch(1)
    calls = []
    monkeypatch.setattr(cli.os, "execve", lambda exe, argv, env: calls.append((argv, env)))
    cli._relaunch(3, ["bench", "--threads", "3"])
    argv, env = calls[0]
    assert argv[1:] == ["-m", "cnnlab", "bench", "--threads", "3"]
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert env[cli.RELAUNCHED] == "1"
    monkeypatch.setenv(cli.RELAUNCHED, "1")            # never twice
    assert not cli._needs_relaunch(1)
