"""How fast does cnnlab train a CNN? A benchmark anyone can run: `python -m cnnlab bench`.

It times two networks of `cnnlab.models` on one batch of 1x28x28 images (Fashion-MNIST's size):

- `reference_cnn`, trained with SGD (lr 0.01, momentum 0.9):

      Conv2d(1, 16, 3, padding=1) - ReLU - MaxPool2d(2) - Conv2d(16, 32, 3, padding=1) - ReLU -
      MaxPool2d(2) - Flatten - Linear(1568, 128) - ReLU - Linear(128, 10)

- `recipe_cnn`, the course's recipe (`python -m cnnlab train`), trained with Adam (lr 1e-3):

      [Conv2d(1, 32, 3, padding=1) - BatchNorm2d - ReLU - MaxPool2d(2)] - [the same, 32 -> 64 channels] -
      Flatten - Linear(3136, 128) - ReLU - Dropout(keep 0.7) - Linear(128, 10)

- one training step = forward + CrossEntropyLoss + backward + the optimizer's step, in float32, on
  the same batch every time (data loading is not timed); neither library computes the gradient
  with respect to the images, which nobody uses (cnnlab: `with no_input_grad(net): net.backward(dout)`,
  see `cnnlab.module`);
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
Both run in one process and share its memory allocator. cnnlab's fast kernels ask glibc to keep
freed memory in the process (`cnnlab.kernels.fast.keep_freed_memory`), which spares both libraries
the page faults of fetching their large arrays afresh on every step; a PyTorch program on its own
gets much the same from glibc's dynamic thresholds once it has freed its first large tensors.

Threads: NumPy's BLAS is limited with `threadpoolctl` when it is installed; otherwise the thread
count is whatever OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS said when NumPy was
loaded (`python -m cnnlab bench --threads N` sets them and restarts itself when threadpoolctl is
missing). PyTorch gets `torch.set_num_threads(N)`.

The figures vary with the machine and with what else it is running: the report includes the
load average, and `--json` writes everything (with quartiles) for comparison.

This package runs the benchmark and assembles its result (`run_benchmark`, one network per call);
the parts: `cnnlab.bench.steps` (the networks and one training step in cnnlab and in PyTorch),
`cnnlab.bench.timing` (alternating blocks, medians, memory), `cnnlab.bench.threads` (thread limits),
`cnnlab.bench.report` (`format_report`, the table) and `cnnlab.bench.cli` (the `bench` command).
"""

from __future__ import annotations

import datetime
import importlib
import os
import platform
import time

import numpy as np

from cnnlab.bench.report import format_report
from cnnlab.bench.steps import INPUT_SHAPE, NETWORKS, NUM_CLASSES, CnnlabStep, TorchStep
from cnnlab.bench.threads import default_threads, limit_threads
from cnnlab.bench.timing import interleaved, layer_times, max_rss_mb, summary, traced_peak_mb

__all__ = ["NETWORKS", "run_benchmark", "format_report", "default_threads", "INPUT_SHAPE"]


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


def _batch(batch_size, seed):
    """The fixed batch: images (batch_size, 1, 28, 28) uniform on [0, 1) in float32, and integer labels."""
    gen = np.random.default_rng(seed + 1)
    x = gen.random((batch_size,) + INPUT_SHAPE, dtype=np.float32)
    y = gen.integers(0, NUM_CLASSES, size=batch_size)
    return x, y


def _peak_memory_mb(network, batch_size, seed):
    """Peak of NumPy's allocations (tracemalloc) while building the model and optimizer and running
    two training steps, in MB."""
    def build_and_train():
        x, y = _batch(batch_size, seed)
        runner = CnnlabStep(network.build(seed), x, y, network.optimizer)
        runner.train_step()
        runner.train_step()

    return traced_peak_mb(build_and_train)


def _load():
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def run_benchmark(batch_size=64, repeats=10, block=10, warmup=10, threads=None, use_torch=True, layers=True,
                  seed=0, clock=time.perf_counter, network="reference_cnn") -> dict:
    """Time one network in cnnlab (and PyTorch, when installed); returns a JSON-ready dict.

    Inputs:
    - network: a key of NETWORKS, "reference_cnn" or "recipe_cnn".
    - batch_size: images per step (default 64, the course's batch size).
    - repeats: rounds; each round runs one block per implementation, alternating who goes first.
    - block: timed calls per block; every median is over repeats * block calls.
    - warmup: untimed calls of each kind before timing.
    - threads: threads for NumPy's BLAS and for PyTorch (default: every core this process may use).
    - use_torch: compare with PyTorch when it can be imported.
    - layers: also time every layer inside instrumented training steps.
    - seed: initial weights and data. clock: the timer (seconds).

    Returns a dict with "config" (with "network" and "optimizer"), "environment", "threads", "network"
    (layer reprs), "cnnlab" and "torch" (None without PyTorch, with the reason in "torch_missing"), each holding
    "train_step_ms" and "inference_ms" (median, q1, q3, min, samples), "train_images_per_s",
    "inference_images_per_s" (from the medians) and "layers" (per layer: forward_ms, backward_ms;
    plus loss_ms and optimizer_ms); "ratio" (cnnlab / PyTorch for "train_step" and "inference",
    or None); "max_abs_logit_difference" (both networks on the same batch before training, in evaluation mode);
    "memory" ("numpy_peak_mb" by tracemalloc, "process_max_rss_mb" by getrusage, with "method").
    """
    batch_size, repeats, block = (_check_positive(n, v) for n, v in
                                  (("batch_size", batch_size), ("repeats", repeats), ("block", block)))
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"run_benchmark: warmup must be an int >= 0, got {warmup!r}")
    threads = default_threads() if threads is None else _check_positive("threads", threads)
    if network not in NETWORKS:
        raise ValueError(f"run_benchmark: network must be one of {', '.join(NETWORKS)}, got {network!r}")
    net_spec = NETWORKS[network]
    torch = _load_torch() if use_torch else None
    result = {
        "config": {"network": network, "batch_size": batch_size, "repeats": repeats, "block": block,
                   "warmup": int(warmup), "input_shape": list(INPUT_SHAPE), "dtype": "float32",
                   "optimizer": net_spec.optimizer_text,
                   "seed": seed, "layers": bool(layers)},
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "torch": getattr(torch, "__version__", None), "platform": platform.platform(),
                        "machine": platform.machine(), "cpu_count": os.cpu_count(), "load_average_before": _load(),
                        "date": datetime.datetime.now().isoformat(timespec="seconds")},
        "torch_missing": None if torch is not None else
        ("not requested" if not use_torch else "PyTorch is not installed (pip install torch to compare)"),
    }
    x, y = _batch(batch_size, seed)
    ours = CnnlabStep(net_spec.build(seed), x, y, net_spec.optimizer)
    result["network"] = [repr(layer) for layer in ours.net]
    runners = [ours]
    with limit_threads(threads, torch) as thread_info:
        if torch is not None:
            theirs = TorchStep(torch, ours.net, x, y, net_spec)
            ref = theirs.inference().numpy()   # evaluation mode, as ours: running statistics, no dropout
            result["max_abs_logit_difference"] = float(np.max(np.abs(ours.inference() - ref)))
            runners.append(theirs)
        else:
            result["max_abs_logit_difference"] = None
        steps = interleaved(runners, "train_step", repeats, block, warmup, clock)
        inference = interleaved(runners, "inference", repeats, block, warmup, clock)
        per_layer = layer_times(runners, repeats, block, warmup, clock) if layers else None
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
    result["memory"] = {"numpy_peak_mb": _peak_memory_mb(net_spec, batch_size, seed),
                        "process_max_rss_mb": max_rss_mb(),
                        "method": "numpy_peak_mb: tracemalloc peak of NumPy allocations while building the model and "
                                  "optimizer and running two training steps (cnnlab only); process_max_rss_mb: "
                                  "resource.getrusage ru_maxrss of the whole process (includes PyTorch when loaded)"}
    result["environment"]["load_average_after"] = _load()
    return result


def _entry(name, steps, inference, per_layer, network, batch_size):
    """One implementation's figures, from the raw times."""
    step, infer = summary(steps[name]), summary(inference[name])
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
