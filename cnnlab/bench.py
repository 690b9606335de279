"""How fast does cnnlab train a CNN? A benchmark anyone can run: `python -m cnnlab bench`.

It times the reference CNN of the course on one batch of 1x28x28 images (Fashion-MNIST's size):

    Conv2d(1, 16, 3, padding=1) - ReLU - MaxPool2d(2) - Conv2d(16, 32, 3, padding=1) - ReLU -
    MaxPool2d(2) - Flatten - Linear(1568, 128) - ReLU - Linear(128, 10)

- one training step = forward + CrossEntropyLoss + backward + an SGD step with momentum
  (`cnnlab.optim.SGD`), in float32, on the same batch every time (data loading is not timed);
- ms per training step, per inference pass (eval mode, forward only), and per layer (forward and
  backward, timed inside real training steps); training and inference images per second;
- peak memory: the peak of NumPy's allocations while a fresh model and optimizer are built and
  run two training steps, measured with `tracemalloc` (which sees NumPy's arrays, not PyTorch's),
  and the process's peak resident set size (`resource.getrusage(...).ru_maxrss`), which
  includes everything the process loaded (PyTorch too, when it runs).

When PyTorch is installed (optional; cnnlab never needs it) the same network, with the same
initial weights, runs on the CPU with the same number of threads, and the ratio cnnlab / PyTorch
is reported. Timing follows three rules learnt on shared 2-core machines:
- steps are timed in alternating *blocks* (several cnnlab steps, then several PyTorch steps, the
  order swapped every round), never one step of each in turn: the BLAS worker threads of one
  library keep spinning after a call and steal the cores of the other;
- each figure is the median over all timed steps after a warm-up, not the mean or the minimum;
- per-layer times are taken inside real training steps (a kernel timed alone on warm caches
  looks faster than it is). PyTorch's per-layer figures come from running autograd layer by
  layer, which adds a little overhead to each layer.
Both run in one process and share its memory allocator; cnnlab reuses its large arrays, so it
leaves glibc's heuristics as PyTorch would find them on its own (a program that frees large
arrays on every step raises glibc's mmap threshold and saves PyTorch page faults too).

Threads: NumPy's BLAS is limited with `threadpoolctl` when it is installed; otherwise the thread
count is whatever OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS said when NumPy was
loaded (`python -m cnnlab bench --threads N` sets them and restarts itself when threadpoolctl is
missing). PyTorch gets `torch.set_num_threads(N)`.

The figures vary with the machine and with what else it is running: the report includes the
load average, and `--json` writes everything (with quartiles) for comparison.
"""
from __future__ import annotations

import contextlib
import datetime
import importlib
import os
import platform
import statistics
import sys
import time
import tracemalloc

import numpy as np

from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import SGD
from cnnlab.sequential import Sequential

__all__ = ["reference_cnn", "run_benchmark", "format_report", "default_threads", "INPUT_SHAPE"]

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
LR, MOMENTUM = 0.01, 0.9
BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def reference_cnn(rng=0) -> Sequential:
    """The benchmark's network (float32), initialised from `rng` (a numpy Generator or an int seed)."""
    gen = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return Sequential(
        Conv2d(1, 16, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
        Flatten(), Linear(32 * 7 * 7, 128, rng=gen), ReLU(), Linear(128, NUM_CLASSES, rng=gen))


def default_threads() -> int:
    """The number of CPU cores this process may run on (its default thread count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _load_torch():
    """PyTorch, or None when it is not installed (or not importable)."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        return None


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"run_benchmark: {name} must be a positive int, got {value!r}")
    return int(value)


# --- threads -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _threads(n, torch):
    """Limit NumPy's BLAS and PyTorch to n threads for the duration; yields a description."""
    info = {"requested": n, "torch": None, "numpy_blas": None, "numpy_blas_control": None}
    limiter = None
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
        blas = [lib.get("num_threads") for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
        info["numpy_blas"] = blas[0] if blas else None
        info["numpy_blas_control"] = "threadpoolctl"
    else:
        values = {v: os.environ[v] for v in BLAS_ENV_VARS if v in os.environ}
        first = next(iter(values.values()), None)
        info["numpy_blas"] = int(first) if first is not None and first.isdigit() else None
        info["numpy_blas_control"] = ("environment " + ", ".join(f"{k}={v}" for k, v in values.items())
                                      if values else "none (threadpoolctl not installed, no *_NUM_THREADS set)")
    torch_before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
        info["torch"] = torch.get_num_threads()
    try:
        yield info
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(torch_before)


# --- the two implementations ---------------------------------------------------------------------------
class _Cnnlab:
    name = "cnnlab"

    def __init__(self, net, x, y):
        self.net, self.x, self.y = net, x, y
        self.loss_fn = CrossEntropyLoss()
        self.optimizer = SGD(net.parameters(), lr=LR, momentum=MOMENTUM)

    def train_step(self):
        out = self.net.forward(self.x)
        self.loss_fn.forward(out, self.y)
        self.net.backward(self.loss_fn.backward())
        self.optimizer.step()

    def inference(self):
        self.net.eval()
        try:
            return self.net.forward(self.x)
        finally:
            self.net.train()

    def layer_step(self, clock):
        """A training step that times every layer; returns (forward s, backward s, loss s, optimizer s)."""
        layers = list(self.net)
        fwd, bwd = [0.0] * len(layers), [0.0] * len(layers)
        h = self.x
        for i, layer in enumerate(layers):
            t = clock()
            h = layer.forward(h)
            fwd[i] = clock() - t
        t = clock()
        self.loss_fn.forward(h, self.y)
        d = self.loss_fn.backward()
        loss_time = clock() - t
        for i in reversed(range(len(layers))):
            t = clock()
            d = layers[i].backward(d)
            bwd[i] = clock() - t
        t = clock()
        self.optimizer.step()
        return fwd, bwd, loss_time, clock() - t


class _Torch:
    name = "PyTorch"

    def __init__(self, torch, net, x, y):
        nn = torch.nn
        self.torch = torch
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, NUM_CLASSES))
        with torch.no_grad():  # the same initial weights as cnnlab's network (same layouts)
            for p_torch, p_ours in zip(self.net.parameters(), net.parameters(), strict=True):
                p_torch.copy_(torch.from_numpy(np.ascontiguousarray(p_ours.data)))
        self.x, self.y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=LR, momentum=MOMENTUM)

    def train_step(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.net(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def inference(self):
        self.net.eval()
        try:
            with self.torch.inference_mode():
                return self.net(self.x)
        finally:
            self.net.train()

    def layer_step(self, clock):
        """A training step run layer by layer (autograd per layer), timing each layer."""
        layers = list(self.net)
        fwd, bwd = [0.0] * len(layers), [0.0] * len(layers)
        self.optimizer.zero_grad(set_to_none=True)
        h, inputs, outputs = self.x, [], []
        for i, layer in enumerate(layers):
            t = clock()
            inp = h.detach().requires_grad_(i > 0)  # the images need no gradient, as in a plain step
            out = layer(inp)
            fwd[i] = clock() - t
            inputs.append(inp)
            outputs.append(out)
            h = out
        t = clock()
        logits = h.detach().requires_grad_()
        self.loss_fn(logits, self.y).backward()
        g = logits.grad
        loss_time = clock() - t
        for i in reversed(range(len(layers))):
            t = clock()
            outputs[i].backward(g)
            g = inputs[i].grad
            bwd[i] = clock() - t
        t = clock()
        self.optimizer.step()
        return fwd, bwd, loss_time, clock() - t


# --- timing ------------------------------------------------------------------------------------------------
def _summary(seconds):
    """Median, quartiles and minimum of a list of durations, in ms."""
    ms = sorted(s * 1e3 for s in seconds)
    q1, median, q3 = (statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else (ms[0],) * 3)
    return {"median": median, "q1": q1, "q3": q3, "min": ms[0], "samples": len(ms)}


def _interleaved(runners, method, repeats, block, warmup, clock):
    """Time `method` of every runner in alternating blocks; returns {name: [seconds per call]}."""
    for runner in runners:
        for _ in range(warmup):
            getattr(runner, method)()
    times = {runner.name: [] for runner in runners}
    for r in range(repeats):
        for runner in (runners if r % 2 == 0 else runners[::-1]):   # swap who goes first
            call = getattr(runner, method)
            for _ in range(block):
                t = clock()
                call()
                times[runner.name].append(clock() - t)
    return times


def _layer_times(runners, repeats, block, warmup, clock):
    """Per-layer medians (ms) from instrumented training steps, in alternating blocks."""
    for runner in runners:
        for _ in range(warmup):
            runner.layer_step(clock)
    samples = {runner.name: [] for runner in runners}
    for r in range(repeats):
        for runner in (runners if r % 2 == 0 else runners[::-1]):
            for _ in range(block):
                samples[runner.name].append(runner.layer_step(clock))
    result = {}
    for name, steps in samples.items():
        n_layers = len(steps[0][0])
        result[name] = {
            "forward": [statistics.median(s[0][i] for s in steps) * 1e3 for i in range(n_layers)],
            "backward": [statistics.median(s[1][i] for s in steps) * 1e3 for i in range(n_layers)],
            "loss": statistics.median(s[2] for s in steps) * 1e3,
            "optimizer": statistics.median(s[3] for s in steps) * 1e3,
        }
    return result


def _peak_memory_mb(batch_size, seed):
    """Peak of NumPy's allocations (tracemalloc) while building the model and optimizer and running
    two training steps, in MB."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    try:
        x, y = _batch(batch_size, seed)
        runner = _Cnnlab(reference_cnn(seed), x, y)
        runner.train_step()
        runner.train_step()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak / 1e6


def _max_rss_mb():
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e6 if sys.platform == "darwin" else rss / 1e3   # bytes on macOS, KiB on Linux


def _batch(batch_size, seed):
    gen = np.random.default_rng(seed + 1)
    x = gen.random((batch_size,) + INPUT_SHAPE, dtype=np.float32)
    y = gen.integers(0, NUM_CLASSES, size=batch_size)
    return x, y


def _load():
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def run_benchmark(batch_size=64, repeats=10, block=10, warmup=10, threads=None, use_torch=True, layers=True,
                  seed=0, clock=time.perf_counter) -> dict:
    """Time the reference CNN in cnnlab (and PyTorch, when installed); returns a JSON-ready dict.

    Inputs:
    - batch_size: images per step (the issue's figure: 64).
    - repeats: rounds; each round runs one block per implementation, alternating who goes first.
    - block: timed calls per block; every median is over repeats * block calls.
    - warmup: untimed calls of each kind before timing.
    - threads: threads for NumPy's BLAS and for PyTorch (default: every core this process may use).
    - use_torch: compare with PyTorch when it can be imported.
    - layers: also time every layer inside instrumented training steps.
    - seed: initial weights and data. clock: the timer (seconds).

    Returns a dict with "config", "environment", "threads", "network" (layer reprs), "cnnlab" and
    "torch" (None without PyTorch, with the reason in "torch_missing"), each holding
    "train_step_ms" and "inference_ms" (median, q1, q3, min, samples), "train_images_per_s",
    "inference_images_per_s" (from the medians) and "layers" (per layer: forward_ms, backward_ms;
    plus loss_ms and optimizer_ms); "ratio" (cnnlab / PyTorch for "train_step" and "inference",
    or None); "max_abs_logit_difference" (both networks on the same batch before training);
    "memory" ("numpy_peak_mb" by tracemalloc, "process_max_rss_mb" by getrusage, with "method").
    """
    batch_size, repeats, block = (_check_positive(n, v) for n, v in
                                  (("batch_size", batch_size), ("repeats", repeats), ("block", block)))
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"run_benchmark: warmup must be an int >= 0, got {warmup!r}")
    threads = default_threads() if threads is None else _check_positive("threads", threads)
    torch = _load_torch() if use_torch else None
    result = {
        "config": {"batch_size": batch_size, "repeats": repeats, "block": block, "warmup": int(warmup),
                   "input_shape": list(INPUT_SHAPE), "dtype": "float32",
                   "optimizer": f"SGD(lr={LR}, momentum={MOMENTUM})",
                   "seed": seed, "layers": bool(layers)},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "torch": getattr(torch, "__version__", None), "platform": platform.platform(),
                        "machine": platform.machine(), "cpu_count": os.cpu_count(), "load_average_before": _load(),
                        "date": datetime.datetime.now().isoformat(timespec="seconds")},
        "torch_missing": None if torch is not None else
        ("not requested" if not use_torch else "PyTorch is not installed (pip install torch to compare)"),
    }
    x, y = _batch(batch_size, seed)
    ours = _Cnnlab(reference_cnn(seed), x, y)
    result["network"] = [repr(layer) for layer in ours.net]
    runners = [ours]
    with _threads(threads, torch) as thread_info:
        if torch is not None:
            theirs = _Torch(torch, ours.net, x, y)
            with torch.inference_mode():
                ref = theirs.net(theirs.x).numpy()
            result["max_abs_logit_difference"] = float(np.max(np.abs(ours.inference() - ref)))
            runners.append(theirs)
        else:
            result["max_abs_logit_difference"] = None
        steps = _interleaved(runners, "train_step", repeats, block, warmup, clock)
        inference = _interleaved(runners, "inference", repeats, block, warmup, clock)
        per_layer = _layer_times(runners, repeats, block, warmup, clock) if layers else None
    result["threads"] = thread_info
    result["cnnlab"] = _entry(ours.name, steps, inference, per_layer, result["network"], batch_size)
    result["torch"] = (_entry(runners[1].name, steps, inference, per_layer, result["network"], batch_size)
                       if torch is not None else None)
    if result["torch"] is not None:
        ours, theirs = result["cnnlab"], result["torch"]
        result["ratio"] = {"train_step": ours["train_step_ms"]["median"] / theirs["train_step_ms"]["median"],
                           "inference": ours["inference_ms"]["median"] / theirs["inference_ms"]["median"]}
    else:
        result["ratio"] = None
    result["memory"] = {"numpy_peak_mb": _peak_memory_mb(batch_size, seed), "process_max_rss_mb": _max_rss_mb(),
                        "method": "numpy_peak_mb: tracemalloc peak of NumPy allocations while building the model and "
                                  "optimizer and running two training steps (cnnlab only); process_max_rss_mb: "
                                  "resource.getrusage ru_maxrss of the whole process (includes PyTorch when loaded)"}
    result["environment"]["load_average_after"] = _load()
    return result


def _entry(name, steps, inference, per_layer, network, batch_size):
    """One implementation's figures, from the raw times."""
    step, infer = _summary(steps[name]), _summary(inference[name])
    entry = {"train_step_ms": step, "inference_ms": infer,
             "train_images_per_s": batch_size / (step["median"] / 1e3),
             "inference_images_per_s": batch_size / (infer["median"] / 1e3),
             "layers": None, "loss_ms": None, "optimizer_ms": None}
    if per_layer is not None:
        times = per_layer[name]
        entry["layers"] = [{"index": i, "layer": network[i], "forward_ms": f, "backward_ms": b}
                           for i, (f, b) in enumerate(zip(times["forward"], times["backward"]))]
        entry["loss_ms"], entry["optimizer_ms"] = times["loss"], times["optimizer"]
    return entry


# --- the report -----------------------------------------------------------------------------------------------
def _fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def format_report(result: dict) -> str:
    """The benchmark's result as a plain-text table."""
    cfg, env, thr = result["config"], result["environment"], result["threads"]
    ours, theirs = result["cnnlab"], result["torch"]
    lines = [f"cnnlab benchmark: reference CNN, batch {cfg['batch_size']}, float32, input {tuple(cfg['input_shape'])}, "
             f"{cfg['optimizer']}",
             f"threads: {thr['requested']} (NumPy BLAS: {_fmt(thr['numpy_blas'], 0) if thr['numpy_blas'] else '?'} "
             f"via {thr['numpy_blas_control']}; PyTorch: {thr['torch'] if thr['torch'] is not None else '-'})",
             f"timing: median of {cfg['repeats']} x {cfg['block']} calls after {cfg['warmup']} warm-up calls, "
             "implementations interleaved in blocks",
             f"python {env['python']}, numpy {env['numpy']}, torch {env['torch'] or 'not installed'}, "
             f"{env['cpu_count']} CPUs, load average {_load_text(env['load_average_before'])} before, "
             f"{_load_text(env.get('load_average_after'))} after", ""]
    lines.append(f"{'':34s}{'cnnlab':>12s}{'PyTorch':>12s}{'ratio':>9s}")
    rows = [("training step (ms)", "train_step_ms", "train_step"), ("inference, forward only (ms)", "inference_ms",
                                                                     "inference")]
    for label, key, ratio_key in rows:
        t_ours = ours[key]["median"]
        t_theirs = theirs[key]["median"] if theirs else None
        ratio = result["ratio"][ratio_key] if result["ratio"] else None
        lines.append(f"{label:34s}{_fmt(t_ours):>12s}{_fmt(t_theirs):>12s}{_fmt(ratio):>9s}")
    for label, key in (("training images/s", "train_images_per_s"), ("inference images/s", "inference_images_per_s")):
        lines.append(f"{label:34s}{_fmt(ours[key], 0):>12s}{_fmt(theirs[key] if theirs else None, 0):>12s}")
    if ours["layers"] is not None:
        lines += ["", f"{'per layer, inside training steps (ms)':40s}{'cnnlab fwd':>11s}{'bwd':>8s}"
                      f"{'PyTorch fwd':>13s}{'bwd':>8s}"]
        for i, layer in enumerate(ours["layers"]):
            other = theirs["layers"][i] if theirs and theirs["layers"] else None
            lines.append(f"{i:2d} {_short(layer['layer']):37s}{_fmt(layer['forward_ms']):>11s}"
                         f"{_fmt(layer['backward_ms']):>8s}{_fmt(other['forward_ms'] if other else None):>13s}"
                         f"{_fmt(other['backward_ms'] if other else None):>8s}")
        for label, key in (("loss (forward + backward)", "loss_ms"), ("optimizer step", "optimizer_ms")):
            lines.append(f"   {label:37s}{_fmt(ours[key]):>11s}{'':8s}{_fmt(theirs[key] if theirs else None):>13s}")
        if theirs:
            lines.append("   (PyTorch per layer: autograd run layer by layer, a little slower than its fused step)")
    load, cpus = env["load_average_before"], env["cpu_count"]
    if load and cpus and max(load[0], (env.get("load_average_after") or [0])[0]) > cpus:
        lines += ["", f"note: the machine was busy (load average above its {cpus} CPUs): the times are inflated "
                      "and vary from run to run; the ratio, from interleaved blocks, varies less"]
    mem = result["memory"]
    lines += ["", f"peak memory: {_fmt(mem['numpy_peak_mb'], 1)} MB of NumPy arrays for model, optimizer and a "
                  f"training step (tracemalloc); process peak RSS {_fmt(mem['process_max_rss_mb'], 0)} MB (getrusage)"]
    if theirs:
        lines.append(f"same network: largest |logit difference| cnnlab vs PyTorch before training "
                     f"{result['max_abs_logit_difference']:.1e}")
    else:
        lines.append(f"PyTorch: {result['torch_missing']}")
    return "\n".join(lines)


def _short(layer_repr: str) -> str:
    return layer_repr if len(layer_repr) <= 36 else layer_repr[:33] + "..."


def _load_text(load):
    return "-" if not load else "/".join(f"{v:.1f}" for v in load)
