"""What an initialisation scheme does to a deep net before any training step, measured and predicted
(the model of `widgets.init_explorer`, plain NumPy: no widgets, no plotting).

A stack of `depth` blocks [Linear(width, width), activation] receives a batch of unit-variance Gaussian
inputs; `cnnlab.init.apply` initialises it with one of cnnlab.init's schemes (LSUV included) and
`cnnlab.init.activation_stats` runs one forward pass and one backward pass from a random N(0, 1) upstream
gradient. The explorer's figure shows, for every block, the histogram of its outputs and of the gradient that
reached them (one column per block, log counts scaled to the column's peak), and the standard deviation
of both on a log scale, so that vanishing (the std falls by orders of magnitude with depth) and exploding
(it grows) are visible at a glance.

Overlaid is what the scheme predicts: the variance recursion of `widgets.init_theory` (Khan §5.1.5).

`InitModel` measures and predicts (drive it without a browser); `widgets.init_explorer.InitExplorer` adds
the controls and one figure redrawn in place. Everything is seeded: the same settings give the same picture.
"""
from __future__ import annotations

import copy
import inspect
import math
import time
from collections import OrderedDict

import numpy as np

from cnnlab import Sequential, init
from cnnlab.bench.threads import one_blas_thread
from cnnlab.layers import Linear
from widgets.init_theory import ACTIVATIONS, predicted_profile

__all__ = ["ACTIVATIONS", "RECOMMENDED_GAIN", "SCHEMES", "GAIN_SCHEMES", "STD_SCHEMES", "CONSTANT_SCHEMES", "WIDTHS",
           "MAX_DEPTH", "VANISHING", "EXPLODING", "HIST_EXAMPLES", "column_histograms", "InitModel"]

# the gain that keeps the scale of each activation (PyTorch's calculate_gain; LeCun's scaled tanh is
# built so that LeCun's Var(w) = 1/fan_in, gain 1, keeps unit-variance signals near unit variance)
RECOMMENDED_GAIN = {"tanh": init.calculate_gain("tanh"), "ReLU": init.calculate_gain("relu"),
                    "sigmoid": init.calculate_gain("sigmoid"), "linear": init.calculate_gain("linear"),
                    "LeCun tanh": 1.0}
SCHEMES = tuple(init.SCHEMES)  # every scheme of cnnlab.init, "lsuv" included
GAIN_SCHEMES = tuple(s for s, f in init.SCHEMES.items() if "gain" in inspect.signature(f).parameters)
STD_SCHEMES = ("normal", "uniform", "constant")  # their scale is the `std` control
CONSTANT_SCHEMES = ("zeros", "ones", "constant")
WIDTHS = (16, 32, 64, 128, 256, 512)
MAX_DEPTH = 40
VANISHING, EXPLODING = 1e-3, 1e3  # std thresholds of the status line's verdict
CACHE_SIZE = 32  # measurements kept (their small results only: stds, histograms, predictions)
TEMPLATES = 2  # nets of other shapes kept to copy from (see InitModel.build)
SETTINGS = ("depth", "width", "activation", "scheme", "gain", "std", "batch", "seed", "bins")
MEASURED = ("measured_settings", "seconds", "records", "act_std", "act_mean", "grad_std", "weight_variance",
            "pred_weight_variance", "pred_act_mean", "pred_act_std", "pred_grad_std", "identical_units", "act_hist",
            "act_range", "grad_hist", "grad_range")
HEAVY = ("net", "X", "stats")  # kept for the last measurement computed only (see InitModel.__getattr__)
HIST_EXAMPLES = 64  # examples of the batch whose values fill the histograms (all of them give the stds)


def column_histograms(values: np.ndarray, bins: int = 41) -> tuple[np.ndarray, float, float]:
    """One histogram per row of `values` (layers, n), as the columns of an image (bins, layers).

    The range [lo, hi] is common to all layers: the extent of every layer's mean +- 3 std, within the
    smallest and largest finite value. Values outside fall into the edge bins; non-finite ones are left
    out. Each column is shown as log(1 + count) / log(1 + its largest count): 1 at the layer's peak, and
    sparse tails (or the half of a ReLU layer that is not exactly 0) stay visible. A layer whose values all
    fall into one bin shows one bright cell: the picture of a collapsed (vanished) layer.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros((bins, len(values))), -1.0, 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        clean = np.where(finite, values, np.nan)
        mean, std = np.nanmean(clean, axis=1), np.nanstd(clean, axis=1)
        lo = max(np.nanmin(mean - 3 * std), np.nanmin(clean))
        hi = min(np.nanmax(mean + 3 * std), np.nanmax(clean))
    if not hi > lo:
        center = lo
        half = max(abs(center) * 1e-3, 1e-12)
        lo, hi = center - half, center + half
    with np.errstate(invalid="ignore", over="ignore"):
        scaled = np.floor(np.nan_to_num((clean - lo) * (bins / (hi - lo)), nan=0.0, posinf=bins, neginf=-1))
    index = np.where(finite, np.clip(scaled, 0, bins - 1), -1).astype(np.int64)
    offsets = np.arange(len(values))[:, None] * bins
    keep = index >= 0
    counts = np.bincount((index + offsets)[keep], minlength=bins * len(values)).reshape(len(values), bins).T
    peak = counts.max(axis=0, keepdims=True)
    return np.log1p(counts) / np.log1p(np.maximum(peak, 1)), float(lo), float(hi)


# --- the model --------------------------------------------------------------------------------------
class InitModel:
    """A deep stack of [Linear, activation] blocks at initialisation, measured and predicted.

    Settings: depth (1..MAX_DEPTH), width, activation (a name of ACTIVATIONS), scheme (a name of
    SCHEMES), gain (schemes in GAIN_SCHEMES), std (the scale of "normal", "uniform" (U(-sqrt(3) std,
    sqrt(3) std), the same variance) and the value of "constant"), batch, seed.
    After `update()`, one entry per block: act_std, act_mean, grad_std (measured); pred_act_std,
    pred_act_mean, pred_grad_std (predicted; NaN for the constant schemes); weight_variance (measured)
    and pred_weight_variance (the scheme's formula; None for lsuv); act_hist, grad_hist ((bins, depth)
    column histograms of the first HIST_EXAMPLES examples) with act_range, grad_range; identical_units
    (every unit of the block computes the same value on every example: the symmetry never broke).
    Also `records` (what init.apply returned), `stats` (activation_stats' LayerStats of the block
    outputs), `net`, `X` (the input batch), `seconds` (the time the measurement took) and
    `measured_settings` (the values of SETTINGS it was made with).

    The last CACHE_SIZE measurements are kept (their small results: `net`, `X` and `stats` are those of
    the last measurement computed, or computed again when read): settings measured before show at once.
    `ready()` says whether `update()` would compute; a widget that must not wait runs `job()` (a copy of
    the settings, measured anywhere, e.g. in a thread), hands the result to `store()`, then calls `update()`.

    LSUV is the library's `init.lsuv` on the whole net (one forward pass, layer by layer: O(depth)).
    """

    def __init__(self, depth: int = 20, width: int = 256, activation: str = "tanh", scheme: str = "xavier_normal",
                 gain: float = 1.0, std: float = 0.01, batch: int = 256, seed: int = 0, bins: int = 41):
        self.depth, self.width, self.activation, self.scheme = depth, width, activation, scheme
        self.gain, self.std, self.batch, self.seed, self.bins = gain, std, batch, seed, bins
        self._templates, self._cache, self._heavy, self._measured = {}, OrderedDict(), {}, None
        self.update()

    def _check(self) -> None:
        for name, value, low, high in (("depth", self.depth, 1, MAX_DEPTH), ("width", self.width, 1, 4096),
                                       ("batch", self.batch, 2, 100_000), ("bins", self.bins, 2, 1000)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
                raise ValueError(f"{name} must be an int in [{low}, {high}], got {value!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {self.activation!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {list(SCHEMES)}, got {self.scheme!r}")
        for name, value in (("gain", self.gain), ("std", self.std)):
            if not (isinstance(value, (int, float, np.floating)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def build(self) -> Sequential:
        """The float64 net: depth x [Linear(width, width), activation] (before initialisation).

        Its own generator: moving a slider never draws from cnnlab's library generator, so the
        notebook's later rng=None calls do not depend on how the widget was used. Every scheme overwrites
        the layers' own initial weights and biases, so the layers are made (and their default weights
        drawn) once per depth, width, activation and seed, and each measurement starts from a copy."""
        shape = (self.depth, self.width, self.activation, self.seed)
        template = self._templates.get(shape)
        if template is None:
            act = ACTIVATIONS[self.activation]
            layers, gen = [], np.random.default_rng([self.seed, 3])
            for _ in range(self.depth):
                layers.append(Linear(self.width, self.width, rng=gen))
                if act is not None:
                    layers.append(act())
            template = Sequential(layers).astype(np.float64)
            while len(self._templates) >= TEMPLATES:
                self._templates.pop(next(iter(self._templates)), None)  # (another thread may pop it too)
            self._templates[shape] = template
        return copy.deepcopy(template)

    def scheme_options(self) -> dict:
        """Keyword arguments of init.apply for the current scheme, gain and std."""
        if self.scheme == "normal":
            return {"std": self.std}
        if self.scheme == "uniform":
            return {"a": -math.sqrt(3) * self.std, "b": math.sqrt(3) * self.std}
        if self.scheme == "constant":
            return {"val": self.std}
        if self.scheme in GAIN_SCHEMES:
            return {"gain": self.gain}
        return {}

    def _initialize(self, net: Sequential, X: np.ndarray, gen: np.random.Generator) -> list[dict]:
        if self.scheme != "lsuv":
            return init.apply(net, self.scheme, rng=gen, **self.scheme_options())
        init.lsuv(net, X, rng=gen, gain=self.gain)
        out = []
        for name, layer in init.weight_layers(net):
            fan_in, fan_out = init.fan_in_and_fan_out(layer.weight)
            out.append({"name": name, "fan_in": fan_in, "fan_out": fan_out, "predicted_variance": None,
                        "variance": float(np.var(layer.weight.data))})
        return out

    def key(self) -> tuple:
        """Every setting the measurement depends on: gain only for the schemes that use it (LSUV's
        included), std only for those whose scale it is."""
        options = tuple(sorted(self.scheme_options().items()))
        return (self.depth, self.width, self.activation, self.scheme, options,
                self.gain if self.scheme == "lsuv" else None, self.batch, self.seed, self.bins)

    # --- measuring, with a cache of what was measured ---------------------------------------------
    def ready(self) -> bool:
        """True when `update()` will not compute: these settings were measured last, or are in the cache.
        Checks the settings (ValueError with what was expected)."""
        self._check()
        key = self.key()
        return key == self._measured or key in self._cache

    def job(self):
        """A function of no arguments that measures the current settings and returns the measurement (for
        `store`). It works on a copy of the settings taken now, so it may run in another thread while the
        settings change: it touches nothing of this model but the cache of layer templates."""
        self._check()
        return self._with({name: getattr(self, name) for name in SETTINGS})._measure

    def _with(self, settings: dict) -> "InitModel":
        """A model with these settings that shares this one's layer templates, measuring nothing yet."""
        other = object.__new__(type(self))
        other.__dict__.update(settings, _templates=self._templates)
        return other

    def store(self, measurement: dict) -> None:
        """Keep a measurement made by `job()` (in the thread that reads the model): `update()` with its
        settings then shows it without computing."""
        key = measurement["key"]
        self._cache[key] = {name: measurement[name] for name in MEASURED}
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self._heavy = {name: measurement[name] for name in ("key", *HEAVY)}

    def update(self) -> None:
        """Measure and predict with the current settings; nothing to do when no setting that matters changed
        (moving `gain` under a scheme without one, `std` under a scheme that ignores it), and no computing
        when these settings were measured before (the last CACHE_SIZE measurements are kept)."""
        self._check()
        key = self.key()
        if key == self._measured:
            return
        if key not in self._cache:
            self.store(self._measure())
        self._cache.move_to_end(key)
        self.__dict__.update(self._cache[key])
        self._measured = key

    def __getattr__(self, name):
        """`net`, `X` and `stats` of the measurement shown: those of the last one computed, else computed again
        (the same seeds give the same arrays; the cache keeps only the small results)."""
        if name not in HEAVY or "_measured" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        if self._heavy.get("key") != self._measured:
            measurement = self._with(dict(zip(SETTINGS, self.measured_settings)))._measure()
            self._heavy = {k: measurement[k] for k in ("key", *HEAVY)}
        return self._heavy[name]

    def _measure(self) -> dict:
        """Measure and predict (the work of `update`): {"key", every name of MEASURED and HEAVY}."""
        t0 = time.perf_counter()
        # one BLAS thread: on a busy 2-core machine two threads that wait for each other were 5-10 times
        # slower for these 256 x 256 products (see cnnlab.bench.threads.one_blas_thread)
        with one_blas_thread():
            out = self._compute()
        return {**out, "key": self.key(), "measured_settings": tuple(getattr(self, n) for n in SETTINGS),
                "seconds": time.perf_counter() - t0}

    def _compute(self) -> dict:
        gen_data, gen_init, gen_grad = (np.random.default_rng([self.seed, k]) for k in range(3))
        X = gen_data.standard_normal((self.batch, self.width))
        net = self.build()
        with np.errstate(all="ignore"):
            records = self._initialize(net, X, gen_init)
            stats = init.activation_stats(net, X, rng=gen_grad)
        block_kind = "Linear" if ACTIVATIONS[self.activation] is None else ACTIVATIONS[self.activation].__name__
        stats = [s for s in stats if s.kind == block_kind]
        out = {"net": net, "X": X, "stats": stats, "records": records,
               "act_std": np.array([s.std for s in stats]), "act_mean": np.array([s.mean for s in stats]),
               "grad_std": np.array([s.grad_std for s in stats]),
               "weight_variance": np.array([r["variance"] for r in records])}
        predicted = [r["predicted_variance"] for r in records]
        out["pred_weight_variance"] = None if predicted[0] is None else np.array(predicted)
        if self.scheme in CONSTANT_SCHEMES:
            nan = np.full(self.depth, np.nan)
            out["pred_act_mean"], out["pred_act_std"], out["pred_grad_std"] = nan, nan.copy(), nan.copy()
        else:
            variances = out["weight_variance"] if out["pred_weight_variance"] is None else out["pred_weight_variance"]
            out["pred_act_mean"], out["pred_act_std"], out["pred_grad_std"] = predicted_profile(
                self.activation, variances, [r["fan_in"] for r in records], [r["fan_out"] for r in records],
                float(np.mean(X ** 2)))
        out["identical_units"] = np.array([
            bool(np.all(np.ptp(s.output, axis=1) <= 1e-9 * max(1.0, float(np.max(np.abs(s.output))))))
            if np.all(np.isfinite(s.output)) else False for s in stats])
        rows = min(self.batch, HIST_EXAMPLES)  # the histograms need far fewer values than the stds
        out["act_hist"], *out["act_range"] = column_histograms(np.stack([s.output[:rows].reshape(-1) for s in stats]),
                                                               self.bins)
        out["grad_hist"], *out["grad_range"] = column_histograms(np.stack([s.grad[:rows].reshape(-1) for s in stats]),
                                                                 self.bins)
        return out

    # --- words for the status line ---------------------------------------------------------------
    def formula(self) -> str:
        """What Var(w) the current scheme draws from, in words, with the value for one layer."""
        s, fan = self.scheme, self.width
        v = None if self.pred_weight_variance is None else self.pred_weight_variance[0]
        text = {
            "zeros": "every weight 0", "ones": "every weight 1", "constant": f"every weight {self.std:.3g}",
            "normal": f"N(0, {self.std:.3g}²)", "uniform": f"U(±√3·{self.std:.3g}), Var = {self.std:.3g}²",
            "orthogonal": f"gain·orthogonal, Var = gain²/{fan}",
            "lsuv": "orthogonal, then each layer divided by the std of its output on the batch",
        }.get(s)
        if text is None:
            if s.startswith("xavier"):
                text = f"Var = gain²·2/(fan_in + fan_out) = gain²·2/{2 * fan}"
            elif s.startswith(("kaiming", "he_")):
                text = f"Var = 2/fan_in = 2/{fan} (He, for ReLU)"
            else:
                text = f"Var = gain²/fan_in = gain²/{fan} (LeCun)"
        if v is not None and s not in CONSTANT_SCHEMES:
            text += f" → Var(w) = {v:.3g}"
        if s in GAIN_SCHEMES and s != "lsuv":
            text += f", gain {self.gain:.3g}"
        return text

    def verdict(self) -> tuple[str, str]:
        """(message, kind) summarising the measurement: vanishing, exploding, symmetric or healthy."""
        last, first = self.act_std[-1], self.grad_std[0]
        parts = [f"layer {self.depth} activations: std {last:.2g}"]
        if not math.isnan(self.pred_act_std[-1]):
            parts[-1] += f" (predicted {self.pred_act_std[-1]:.2g})"
        parts.append(f"gradient at layer 1: std {first:.2g}")
        if not math.isnan(self.pred_grad_std[0]):
            parts[-1] += f" (predicted {self.pred_grad_std[0]:.2g})"
        problems = []
        if self.identical_units.all():
            problems.append("every unit of every layer is identical: the symmetry can never break")
        if not np.isfinite(self.act_std).all() or not np.isfinite(self.grad_std).all():
            problems.append("values overflowed to infinity")
        elif last < VANISHING or first < VANISHING:
            problems.append("vanishing")
        elif last > EXPLODING or first > EXPLODING:
            problems.append("exploding")
        if problems:
            return " · ".join(parts) + " — " + "; ".join(problems), "warn"
        return " · ".join(parts), "info"
