"""Speed work (issue 4): the fast kernels against the naive ones and an independent formula, the
buffers the layers reuse between steps (never one a caller still holds), the memory layouts that
spare copies, and the benchmark's structure (fields, aggregation with a fake clock, missing
PyTorch, the command line). Nothing here measures or compares wall-clock time."""
import importlib.util
import json
import sys

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import cnnlab.__main__ as cli
from cnnlab import Sequential, bench, models
from cnnlab.bench import cli as bench_cli
from cnnlab.bench.steps import NETWORKS, CnnlabStep
from cnnlab.bench.threads import one_blas_thread
from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.layers.conv import (conv2d_backward_fast, conv2d_backward_naive, conv2d_forward_fast,
                                conv2d_forward_naive)
from cnnlab.layers.im2col import axis_order, col2im, im2col, reusable
from cnnlab.layers.pooling import (maxpool2d_backward_fast, maxpool2d_backward_naive, maxpool2d_forward_fast,
                                   maxpool2d_forward_naive)


def random_conv_config(rng):
    """A random convolution geometry whose padded input holds at least one window."""
    while True:
        n, c, f = (int(v) for v in rng.integers(1, 4, size=3))
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        h, w = (int(v) for v in rng.integers(1, 11, size=2))
        if h + 2 * ph >= kh and w + 2 * pw >= kw:
            return (n, c, h, w), (f, c, kh, kw), (sh, sw), (ph, pw)


def pool_config(rng):
    while True:
        kh, kw = (int(v) for v in rng.integers(1, 5, size=2))
        sh, sw = (int(v) for v in rng.integers(1, 4, size=2))
        ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
        h, w = (int(v) for v in rng.integers(1, 11, size=2))
        if 2 * ph <= kh and 2 * pw <= kw and h + 2 * ph >= kh and w + 2 * pw >= kw:
            shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)), h, w)
            return shape, (kh, kw), (sh, sw), (ph, pw)


def cnhw(a):
    """The same values as a, laid out in memory as (C, N, H, W), as Conv2d leaves its output."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


# --- im2col / col2im against an independent formula --------------------------------------------------------
def test_im2col_matches_np_pad_and_sliding_window_view_on_random_configurations():
    rng = np.random.default_rng(11)
    for _ in range(25):
        x_shape, w_shape, stride, padding = random_conv_config(rng)
        x = rng.standard_normal(x_shape)
        (ph, pw), (kh, kw) = padding, w_shape[2:]
        win = sliding_window_view(np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))), (kh, kw),
                                  axis=(2, 3))[:, :, ::stride[0], ::stride[1]]   # (N, C, OH, OW, KH, KW)
        expected = win.transpose(1, 4, 5, 0, 2, 3).reshape(x_shape[1] * kh * kw, -1)
        cols, (oh, ow) = im2col(x, (kh, kw), stride, padding)
        assert (oh, ow) == win.shape[2:4]
        np.testing.assert_array_equal(cols, expected)
        # col2im is its adjoint: <im2col(x), C> = <x, col2im(C)>
        c = rng.standard_normal(cols.shape)
        np.testing.assert_allclose(np.sum(cols * c), np.sum(x * col2im(c, x_shape, (kh, kw), stride, padding)),
                                   rtol=1e-12, atol=1e-12)


# --- the fast kernels against the naive ones (float64, 1e-10) --------------------------------------------------
def test_conv_fast_kernels_match_naive_on_random_configurations():
    rng = np.random.default_rng(12)
    for _ in range(25):
        x_shape, w_shape, stride, padding = random_conv_config(rng)
        x, weight, bias = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
        out, cols = conv2d_forward_fast(x, weight, bias, stride, padding)
        expected = conv2d_forward_naive(x, weight, bias, stride, padding)
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-10)
        dout = rng.standard_normal(expected.shape)
        for fast, naive in zip(conv2d_backward_fast(dout, cols, x_shape, weight, stride, padding),
                               conv2d_backward_naive(dout, x, weight, stride, padding)):
            assert fast.shape == naive.shape
            np.testing.assert_allclose(fast, naive, rtol=0, atol=1e-10)


def test_conv_layer_reusing_its_buffers_matches_naive_as_shapes_change():
    """One layer, called on inputs of changing shapes: stale columns must never leak into a result.
    (Heights 7 and 8 give the same output size with stride 2, so the columns have the same shape.)"""
    rng = np.random.default_rng(13)
    conv = Conv2d(2, 3, 3, stride=2, padding=1, rng=rng).astype(np.float64)
    for h, w in [(7, 7), (8, 8), (7, 7), (8, 7), (7, 8), (8, 8), (5, 9)] * 3:
        x = rng.standard_normal((2, 2, h, w)) * 10
        out = conv(x)
        np.testing.assert_allclose(out, conv2d_forward_naive(x, conv.weight.data, conv.bias.data, 2, 1),
                                   rtol=0, atol=1e-10)
        dout = rng.standard_normal(out.shape)
        dx = conv.backward(dout)
        dx_ref, dw_ref, db_ref = conv2d_backward_naive(dout, x, conv.weight.data, 2, 1)
        np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=0, atol=1e-10)


def test_maxpool_fast_kernels_match_naive_in_both_layouts():
    """Random geometries (overlapping windows included), inputs with many ties, input and dout in
    (N, C, H, W) or (C, N, H, W) memory order."""
    rng = np.random.default_rng(14)
    for trial in range(24):
        shape, k, s, p = pool_config(rng)
        x = rng.integers(0, 4, size=shape).astype(np.float64)
        x_in = cnhw(x) if trial % 2 else x
        out, argmax = maxpool2d_forward_fast(x_in, k, s, p)
        np.testing.assert_array_equal(out, maxpool2d_forward_naive(x, k, s, p))
        dout = rng.standard_normal(out.shape)
        dout_in = cnhw(dout) if trial % 3 == 0 else dout
        np.testing.assert_allclose(maxpool2d_backward_fast(dout_in, argmax, shape, k, s, p),
                                   maxpool2d_backward_naive(dout, x, k, s, p), rtol=0, atol=1e-10)


def test_maxpool_layer_reusing_its_buffers_matches_naive():
    rng = np.random.default_rng(15)
    for k, s in [(2, 2), (3, 2), (2, 1)]:
        pool = MaxPool2d(k, s)
        for shape in [(2, 3, 8, 8), (2, 3, 9, 7), (2, 3, 8, 8)] * 2:
            x = cnhw(rng.integers(0, 5, size=shape).astype(np.float64))
            out = pool(x)
            np.testing.assert_array_equal(out, maxpool2d_forward_naive(x, k, s))
            dout = rng.standard_normal(out.shape)
            np.testing.assert_allclose(pool.backward(dout), maxpool2d_backward_naive(dout, x, k, s), rtol=0, atol=1e-12)


# --- buffers reused between steps -------------------------------------------------------------------------------
def address(a):
    return a.__array_interface__["data"][0]


def test_reusable_hands_out_the_same_array_only_when_nobody_holds_it():
    class Owner:
        pass

    owner = Owner()
    first = address(reusable(owner, "a", (3, 4), np.float32))      # not held
    assert address(reusable(owner, "a", (3, 4), np.float32)) == first
    held = reusable(owner, "a", (3, 4), np.float32)
    held[...] = 7.0
    other = reusable(owner, "a", (3, 4), np.float32)                # `held` is still in use
    assert address(other) != address(held)
    np.testing.assert_array_equal(held, 7.0)
    view = other[1:]                                                 # a view keeps its base in use too
    assert address(reusable(owner, "a", (3, 4), np.float32)) != address(other)
    del view
    # layout, dtype, shape and key must match; zero=True clears a reused array; None owner: always new
    t = reusable(owner, "b", (2, 3, 4, 5), np.float64, order=(1, 0, 2, 3))
    assert t.shape == (2, 3, 4, 5) and axis_order(t) == (1, 0, 2, 3) and t.dtype == np.float64
    t[...] = 1.0
    t_address = address(t)
    del t
    again = reusable(owner, "b", (2, 3, 4, 5), np.float64, order=(1, 0, 2, 3), zero=True)
    assert address(again) == t_address and not again.any()
    assert address(reusable(owner, "b", (2, 3, 4, 5), np.float64, order=(1, 0, 2, 3), key="other")) != t_address
    assert reusable(None, "a", (2,), np.float32) is not reusable(None, "a", (2,), np.float32)


def reference_net():
    return models.reference_cnn(np.random.default_rng(3))


def test_held_outputs_and_gradients_are_never_overwritten():
    """A caller that keeps a layer's output or gradient keeps its values, through later steps."""
    rng = np.random.default_rng(16)
    net = reference_net()
    x1, x2 = rng.random((4, 1, 28, 28), dtype=np.float32), rng.random((4, 1, 28, 28), dtype=np.float32)
    held, copies = [], []
    for x in (x1, x2):
        h = x
        for layer in net:
            h = layer(h)
            held.append(h)
            copies.append(h.copy())
        d = np.ones_like(h)
        for layer in reversed(net.layers):
            d = layer.backward(d)
            held.append(d)
            copies.append(d.copy())
    for a, b in zip(held, copies):
        np.testing.assert_array_equal(a, b)


def test_a_training_step_reuses_its_large_arrays():
    """The page-fault fix: step after step, the convolution's output, columns and input gradient
    live at the same addresses, as long as nobody holds them."""
    rng = np.random.default_rng(17)
    net = reference_net()
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    conv = net[3]

    def step():
        out = net(x)
        net.backward(np.ones_like(out))
        return address(conv._reusable["out"][0]), address(conv._cols), address(conv._reusable["dx"][0])

    first = step()
    assert step() == first and step() == first


def test_same_results_with_and_without_reuse(monkeypatch):
    """Two networks with the same weights, one recycling its arrays, one making every array anew
    (REUSE_LIMIT_BYTES = 0): after three SGD steps their weights agree bit for bit."""
    import cnnlab.layers.im2col as im2col_module

    rng = np.random.default_rng(18)
    recycling, fresh = reference_net(), reference_net()
    for _ in range(3):
        x = rng.random((4, 1, 28, 28), dtype=np.float32)
        for net, limit in ((recycling, im2col_module.REUSE_LIMIT_BYTES), (fresh, 0)):
            with monkeypatch.context() as m:
                m.setattr(im2col_module, "REUSE_LIMIT_BYTES", limit)
                out = net(x)
                net.backward(out - 0.5)
                for p in net.parameters():
                    p.data -= 0.01 * p.grad
    assert "_reusable" not in vars(fresh[3]) or not fresh[3]._reusable
    assert recycling[3]._reusable
    for p, q in zip(recycling.parameters(), fresh.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_float32_stays_float32_and_float64_after_astype():
    rng = np.random.default_rng(19)
    net = reference_net()
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    out = net(x)
    assert out.dtype == np.float32 and net.backward(np.ones_like(out)).dtype == np.float32
    net.astype(np.float64)
    out64 = net(x.astype(np.float64))
    assert out64.dtype == np.float64 and net.backward(np.ones_like(out64)).dtype == np.float64
    assert all(p.grad.dtype == np.float64 for p in net.parameters())
    np.testing.assert_allclose(out64, out, rtol=1e-4, atol=1e-5)


def test_layouts_flow_without_copies():
    """Conv2d leaves (C, N, H, W) memory order, ReLU and MaxPool2d keep it, and the gradient that
    reaches the second convolution flattens to (F, N*OH*OW) as a view."""
    rng = np.random.default_rng(20)
    net = reference_net()
    h = rng.random((4, 1, 28, 28), dtype=np.float32)
    for layer in net[:5]:
        h = layer(h)
        assert axis_order(h) == (1, 0, 2, 3)
    d = rng.standard_normal(h.shape).astype(np.float32)
    d = net[4].backward(cnhw(d))
    assert np.shares_memory(d.transpose(1, 0, 2, 3).reshape(32, -1), d)


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
    import cnnlab.layers.conv as conv_module

    calls = []
    original = conv_module.col2im_into
    monkeypatch.setattr(conv_module, "col2im_into", lambda *a: calls.append(a[1].shape) or original(*a))
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
    cnnlab.recipes.make_optimizer): one step of each from the same seed gives the same weights, bit for bit
    (the same arrays, operations and dropout masks in one process)."""
    from cnnlab.losses import CrossEntropyLoss
    from cnnlab.recipes import make_optimizer

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
        import contextlib

        assert isinstance(one_blas_thread(), contextlib.nullcontext)
        return
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    before = blas_threads()
    with one_blas_thread():
        assert blas_threads() and set(blas_threads()) == {1}
    assert blas_threads() == before


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


def test_linear_and_relu_reuse_keeps_values_of_held_gradients():
    rng = np.random.default_rng(21)
    net = Sequential(Flatten(), Linear(12, 5, rng=rng), ReLU(), Linear(5, 3, rng=rng)).astype(np.float64)
    x = rng.standard_normal((4, 3, 2, 2))
    out = net(x)
    g1 = net.backward(np.ones_like(out))
    g1_copy = g1.copy()
    grad_w = net[1].weight.grad.copy()
    g2 = net.backward(2 * np.ones_like(out))
    np.testing.assert_array_equal(g1, g1_copy)
    np.testing.assert_allclose(g2, 2 * g1_copy, rtol=1e-12)
    np.testing.assert_allclose(net[1].weight.grad, 2 * grad_w, rtol=1e-12)
    # Linear's weight gradient by hand: dL/dW = dout^T x for the second layer
    h = np.maximum(x.reshape(4, 12) @ net[1].weight.data.T + net[1].bias.data, 0)
    np.testing.assert_allclose(net[3].weight.grad, 2 * np.ones((3, 4)) @ h, rtol=1e-12)
