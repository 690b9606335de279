"""The benchmark's structure (fields, aggregation with a fake clock, missing PyTorch, the command line).
Nothing here measures or compares wall-clock time. (The kernels it times are tested in test_kernels.py.)"""
import importlib.util
import json
import sys

import numpy as np
import pytest

import cnnlab.__main__ as cli
import cnnlab.kernels.fast as fast_module
from cnnlab import bench, models
from cnnlab.bench import cli as bench_cli
from cnnlab.bench.steps import NETWORKS, CnnlabStep
from cnnlab.bench.threads import one_blas_thread


def reference_net():
    return models.reference_cnn(np.random.default_rng(3))


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


def test_the_benchmarks_step_skips_only_the_images_gradient(monkeypatch):
    """As PyTorch's step (images that do not require a gradient): cnnlab's step and its per-layer step
    fold back one input gradient (col2im) per step, the second convolution's, not the first's."""
    calls = []
    original = fast_module.col2im
    monkeypatch.setattr(fast_module, "col2im", lambda cols, shape, *a: calls.append(shape) or original(cols, shape, *a))
    rng = np.random.default_rng(22)
    step = CnnlabStep(reference_net(), rng.random((3, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 3),
                      NETWORKS["reference_cnn"].optimizer)
    step.train_step()
    step.layer_step(FakeClock())
    assert calls == [(3, 16, 14, 14)] * 2


@pytest.mark.parametrize("network, n_layers, conv2, optimizer", [
    ("reference_cnn", 10, (3, "Conv2d(16, 32"), "SGD(lr=0.01, momentum=0.9)"),
    ("recipe_cnn", 13, (4, "Conv2d(32, 64"), "Adam(lr=0.001)"),
])
def test_benchmark_reports_every_field_with_a_fake_clock(network, n_layers, conv2, optimizer):
    result = tiny(clock=FakeClock(), network=network)
    assert result["config"]["batch_size"] == 3 and result["config"]["dtype"] == "float32"
    assert result["config"]["network"] == network and result["config"]["optimizer"] == optimizer
    assert len(result["network"]) == n_layers
    assert result["threads"]["requested"] == 1
    ours = result["cnnlab"]
    for key in ("train_step_ms", "inference_ms"):
        assert ours[key] == {"median": pytest.approx(1.0), "q1": pytest.approx(1.0), "q3": pytest.approx(1.0),
                             "min": pytest.approx(1.0), "samples": 2}
    assert ours["train_images_per_s"] == pytest.approx(3 / 1e-3)
    assert ours["inference_images_per_s"] == pytest.approx(3 / 1e-3)
    assert [row["index"] for row in ours["layers"]] == list(range(n_layers))
    assert ours["layers"][conv2[0]]["layer"].startswith(conv2[1])
    assert all(row["forward_ms"] == pytest.approx(1.0) and row["backward_ms"] == pytest.approx(1.0)
               for row in ours["layers"])
    assert ours["loss_ms"] == pytest.approx(1.0) and ours["optimizer_ms"] == pytest.approx(1.0)
    memory = result["memory"]
    parameters_mb = sum(p.data.nbytes for p in NETWORKS[network].build(0).parameters()) / 1e6
    assert memory["numpy_peak_mb"] >= parameters_mb      # the model's float32 parameters at least
    assert "tracemalloc" in memory["method"] and "getrusage" in memory["method"]
    json.dumps(result)                             # JSON-ready
    if importlib.util.find_spec("torch") is not None:
        assert result["ratio"] == {"train_step": pytest.approx(1.0), "inference": pytest.approx(1.0)}
        assert result["threads"]["torch"] == 1
        # the same network with the same weights: float32 rounding differs by about 1e-6 on logits of size ~3,
        # another layer, weight or mode by ~1
        assert result["max_abs_logit_difference"] < 1e-4
        assert len(result["torch"]["layers"]) == n_layers
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
    (dict(network="vgg16"), "network must be one of reference_cnn, recipe_cnn, got 'vgg16'"),
])
def test_benchmark_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bench.run_benchmark(**kwargs)


def test_the_recipe_step_is_the_recipes_training_step():
    """The benchmark trains recipe_cnn as `python -m cnnlab train` does (Adam, lr 1e-3, from
    cnnlab.optim.make_optimizer): one step of each from the same seed gives the same weights, bit for bit
    (the same arrays, operations and dropout masks in one process)."""
    from cnnlab.losses import CrossEntropyLoss
    from cnnlab.optim import make_optimizer

    rng = np.random.default_rng(23)
    x, y = rng.random((4, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 4)
    spec = NETWORKS["recipe_cnn"]
    step = CnnlabStep(spec.build(0), x, y, spec.optimizer)
    step.train_step()
    net, loss_fn = models.recipe_cnn(0), CrossEntropyLoss()
    optimizer = make_optimizer("adam", net.parameters(), 1e-3)
    loss_fn.forward(net(x), y)
    net.backward(loss_fn.backward())
    optimizer.step()
    for p, q in zip(step.net.parameters(), net.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    assert not np.array_equal(step.net[0].weight.data, models.recipe_cnn(0)[0].weight.data)   # it did move


def test_one_blas_thread_limits_the_blas_inside_and_restores_it():
    if importlib.util.find_spec("threadpoolctl") is None:   # optional: then it changes nothing
        with one_blas_thread() as limit:
            assert not limit._held and one_blas_thread._holders == 0
        return
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    with threadpool_limits(limits=2, user_api="blas"):  # two threads to start from, whatever the machine
        before = blas_threads()
        with one_blas_thread():
            assert blas_threads() and set(blas_threads()) == {1}
        assert blas_threads() == before


def test_one_blas_thread_blocks_that_overlap_in_two_threads_restore_only_when_both_have_ended(monkeypatch):
    """The counting, with a stand-in for threadpoolctl that records what it was asked: OpenBLAS itself
    does not reliably show another thread's setting (threadpoolctl is documented for the main thread)."""
    import sys
    import threading
    import types

    calls = []

    class Limits:  # threadpoolctl.threadpool_limits: sets the limit when made, restores when asked
        def __init__(self, limits, user_api):
            calls.append(("limit", limits, user_api))

        def restore_original_limits(self):
            calls.append(("restore",))

    monkeypatch.setitem(sys.modules, "threadpoolctl", types.SimpleNamespace(threadpool_limits=Limits))
    entered, leave = threading.Event(), threading.Event()

    def other():  # enters after this thread's block and ends after it
        with one_blas_thread():
            entered.set()
            leave.wait(30)

    first = one_blas_thread()
    first.__enter__()
    worker = threading.Thread(target=other)
    worker.start()
    assert entered.wait(30)
    first.__exit__(None, None, None)  # the first block ends while the other runs: nothing is restored
    assert calls == [("limit", 1, "blas")]
    leave.set()
    worker.join(30)
    assert calls == [("limit", 1, "blas"), ("restore",)]  # both ended: restored once

    kept = one_blas_thread()  # a call kept for ever, as the lessons make: a block inside does not undo it
    with one_blas_thread():
        pass
    assert calls[2:] == [("limit", 1, "blas")]
    kept.__exit__(None, None, None)
    kept.__exit__(None, None, None)  # a second exit is ignored
    assert calls[2:] == [("limit", 1, "blas"), ("restore",)] and one_blas_thread._holders == 0


# --- the command line -------------------------------------------------------------------------------------------
TINY_CLI = ["bench", "--batch-size", "2", "--repeats", "1", "--block", "1", "--warmup", "0", "--threads", "1",
            "--no-torch", "--no-layers"]


def test_cli_times_both_networks_writes_json_and_prints_the_tables(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert cli.main(TINY_CLI + ["--json", str(path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("training step (ms)") == 2 and str(path) in printed
    assert "benchmark: reference_cnn" in printed and "benchmark: recipe_cnn" in printed
    saved = json.loads(path.read_text())
    assert list(saved) == ["reference_cnn", "recipe_cnn"]
    for name, result in saved.items():
        assert result["config"]["network"] == name and result["config"]["batch_size"] == 2
        assert result["torch"] is None and result["cnnlab"]["train_step_ms"]["samples"] == 1


def test_cli_one_network_json_to_stdout(capsys):
    assert cli.main(TINY_CLI + ["--network", "recipe_cnn", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["recipe_cnn"] and printed["recipe_cnn"]["config"]["repeats"] == 1


def test_cli_help_and_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--network", "--batch-size", "--repeats", "--threads", "--json", "--no-torch"):
        assert option in text
    assert "PyTorch" in text and "median" in text
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["bench", "--batch-size", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["bench", "--network", "vgg16"])
    assert "invalid choice: 'vgg16'" in capsys.readouterr().err


def test_cli_restarts_with_thread_variables_when_threadpoolctl_is_missing(monkeypatch):
    monkeypatch.setattr(bench_cli.importlib.util, "find_spec", lambda name: None)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", bench_cli.RELAUNCHED):
        monkeypatch.delenv(var, raising=False)
    assert bench_cli._needs_relaunch(1)
    calls = []
    monkeypatch.setattr(bench_cli.os, "execve", lambda exe, argv, env: calls.append((argv, env)))
    bench_cli._relaunch(3, ["bench", "--threads", "3"])
    argv, env = calls[0]
    assert argv[1:] == ["-m", "cnnlab", "bench", "--threads", "3"]
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "3"
    assert env[bench_cli.RELAUNCHED] == "1"
    monkeypatch.setenv(bench_cli.RELAUNCHED, "1")            # never twice
    assert not bench_cli._needs_relaunch(1)
