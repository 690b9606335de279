"""How `python -m cnnlab bench` times: alternating blocks, medians, peak memory (the thread limits are
`cnnlab.bench.threads`).

The rules are explained in `cnnlab.bench` (shared 2-core machines taught them); here is where each
one is kept:
- `interleaved(...)`: calls timed in alternating blocks, never one call of each library in turn;
- `summary(seconds)`: the median (and quartiles) of all timed calls after the warm-up;
- `layer_times(...)`: per-layer medians from instrumented training steps, in the same blocks;
- `traced_peak_mb(work)`, `max_rss_mb()`: peak memory by tracemalloc and by getrusage.

A runner is any object with `name` and the methods timed (`train_step`, `inference`,
`layer_step(clock)`), e.g. `cnnlab.bench.steps.CnnlabStep`. `clock` is a timer in seconds
(`time.perf_counter`; the tests pass a fake one).
"""
from __future__ import annotations

import statistics
import sys
import tracemalloc

__all__ = ["summary", "interleaved", "layer_times", "traced_peak_mb", "max_rss_mb"]


# --- timing ------------------------------------------------------------------------------------------------
def summary(seconds):
    """Median, quartiles and minimum of a list of durations (s), in ms: {"median", "q1", "q3", "min", "samples"}."""
    ms = sorted(s * 1e3 for s in seconds)
    q1, median, q3 = (statistics.quantiles(ms, n=4, method="inclusive") if len(ms) > 1 else (ms[0],) * 3)
    return {"median": median, "q1": q1, "q3": q3, "min": ms[0], "samples": len(ms)}


def interleaved(runners, method, repeats, block, warmup, clock):
    """Time `method` of every runner in alternating blocks; returns {name: [seconds per call]}.

    warmup untimed calls of each runner first; then `repeats` rounds, each running one block of
    `block` timed calls per runner, the first runner of the round alternating.
    """
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


def layer_times(runners, repeats, block, warmup, clock):
    """Per-layer medians (ms) from instrumented training steps (`layer_step`), in alternating blocks.

    Returns {name: {"forward": [ms per layer], "backward": [ms per layer], "loss": ms, "optimizer": ms}}.
    """
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


# --- memory ------------------------------------------------------------------------------------------------
def traced_peak_mb(work):
    """Peak of the Python allocations (NumPy's arrays included) made while `work()` runs, in MB (tracemalloc)."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    try:
        work()
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak / 1e6


def max_rss_mb():
    """The process's peak resident set size in MB (`resource.getrusage`), or None where unavailable."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e6 if sys.platform == "darwin" else rss / 1e3   # bytes on macOS, KiB on Linux
