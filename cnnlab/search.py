"""Hyper-parameter search on a validation split (Veta's workflow): grid and random search.

    configs = grid(lr=[1e-3, 1e-2], weight_decay=[0, 1e-4])
    configs = random_configs({"lr": LogUniform(1e-4, 1e-1), "p_keep": [0.5, 0.8, 1.0]}, n=8, rng=0)
    results = search(configs, run)       # run(config) -> {"val_loss": ..., "val_accuracy": ...}
    print(results.table("val_accuracy")); results.best("val_accuracy")

`run` trains one model with the given settings (same seed and data order for every config, so the
differences are the settings') and returns its validation figures; a run that diverges or raises is
recorded as failed with the reason, and the search goes on. The test set is not touched here: it is
evaluated once, at the end, with the chosen settings.
"""
from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field

import numpy as np

from cnnlab.rng import as_generator

__all__ = ["grid", "random_configs", "LogUniform", "Uniform", "search", "SearchResults"]


@dataclass(frozen=True)
class LogUniform:
    """A value whose logarithm is uniform in [log low, log high]: for learning rates and strengths."""
    low: float
    high: float

    def __post_init__(self):
        if not 0 < self.low < self.high:
            raise ValueError(f"LogUniform needs 0 < low < high, got low={self.low}, high={self.high}")

    def sample(self, rng) -> float:
        return float(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def __post_init__(self):
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high, got low={self.low}, high={self.high}")

    def sample(self, rng) -> float:
        return float(rng.uniform(self.low, self.high))


def grid(**axes) -> list[dict]:
    """Every combination of the listed values: grid(lr=[a, b], wd=[c, d]) gives 4 configs."""
    for name, values in axes.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__") or len(list(values)) == 0:
            raise ValueError(f"grid axis {name!r} needs a non-empty list of values, got {values!r}")
    names = list(axes)
    return [dict(zip(names, combo)) for combo in itertools.product(*(list(axes[n]) for n in names))]


def random_configs(space: dict, n: int, rng=None) -> list[dict]:
    """n configs drawn from `space`: each value a list (choose one), a LogUniform/Uniform, or a constant.

    rng: a numpy Generator, an int seed (the same seed gives the same configs) or None (cnnlab's
    library generator, see `cnnlab.manual_seed`).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = as_generator(rng, "random_configs")
    configs = []
    for _ in range(n):
        config = {}
        for name, spec in space.items():
            if hasattr(spec, "sample"):
                config[name] = spec.sample(rng)
            elif isinstance(spec, (list, tuple)):
                config[name] = spec[int(rng.integers(len(spec)))]
            else:
                config[name] = spec
        configs.append(config)
    return configs


@dataclass
class SearchResults:
    rows: list = field(default_factory=list)  # {"config": {...}, "metrics": {...} or None, "error": str, "seconds"}

    def succeeded(self) -> list:
        return [r for r in self.rows if r["metrics"] is not None]

    def best(self, metric: str = "val_accuracy", maximize: bool | None = None) -> dict:
        """The config with the best `metric` (accuracy maximised, loss minimised unless told)."""
        ok = [r for r in self.succeeded() if not r["error"] and metric in r["metrics"]
              and np.isfinite(r["metrics"][metric])]  # diverged runs never win
        if not ok:
            raise ValueError(f"no successful run reported {metric!r}; failures: "
                             f"{[r['error'] for r in self.rows if r['error']]}")
        maximize = ("acc" in metric) if maximize is None else maximize
        key = (lambda r: r["metrics"][metric]) if maximize else (lambda r: -r["metrics"][metric])
        return max(ok, key=key)["config"]

    def values(self, name: str) -> np.ndarray:
        """A config value or a metric for every row (NaN where missing), for plotting."""
        out = []
        for r in self.rows:
            source = r["config"] if name in r["config"] else (r["metrics"] or {})
            out.append(float(source.get(name, np.nan)) if source.get(name) is not None else np.nan)
        return np.array(out)

    def table(self, sort_by: str | None = None) -> str:
        rows = list(self.rows)
        if sort_by is not None:
            sign = -1 if "acc" in sort_by else 1
            rows.sort(key=lambda r: sign * r["metrics"][sort_by] if r["metrics"] and sort_by in r["metrics"]
                      and np.isfinite(r["metrics"][sort_by]) else np.inf)
        keys = sorted({k for r in rows for k in r["config"]})
        metrics = sorted({k for r in rows if r["metrics"] for k in r["metrics"]})
        header = keys + metrics + ["seconds", "note"]
        body = [[_fmt(r["config"].get(k)) for k in keys] + [_fmt((r["metrics"] or {}).get(m)) for m in metrics]
                + [f"{r['seconds']:.1f}", r["error"]] for r in rows]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *body)]
        line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        return "\n".join([line(header), line(["-" * w for w in widths])] + [line(b) for b in body])

    __str__ = table


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def search(configs, run, progress: bool = False) -> SearchResults:
    """Call run(config) for every config; collect its metrics dict, or the failure, and the time."""
    configs = list(configs)
    if not configs:
        raise ValueError("search needs at least one config")
    results = SearchResults()
    iterator = configs
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(configs, desc="search", unit="config")
    for config in iterator:
        t0 = time.perf_counter()
        metrics, error = None, ""
        try:
            out = run(dict(config))
            if not isinstance(out, dict):
                raise TypeError(f"run(config) must return a dict of metrics, got {type(out).__name__}")
            bad = {k: v for k, v in out.items() if isinstance(v, float) and not np.isfinite(v)}
            metrics = {k: (float(v) if isinstance(v, (int, float, np.floating)) else v) for k, v in out.items()}
            if bad or out.get("status") == "diverged":
                error = "diverged" + (f" ({', '.join(bad)} not finite)" if bad else "")
        except Exception as exc:  # noqa: BLE001 - one failed config must not end the search
            error = f"failed: {type(exc).__name__}: {exc}"
        results.rows.append({"config": dict(config), "metrics": metrics, "error": error,
                             "seconds": time.perf_counter() - t0})
    return results
