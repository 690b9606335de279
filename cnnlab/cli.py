"""`python -m cnnlab train` and `python -m cnnlab info`: the recipe from the command line, and what was found."""
from __future__ import annotations

import argparse
import os
import platform
import sys

__all__ = ["add_train_parser", "run_train", "write_result_json", "add_info_parser", "run_info", "info"]


EXIT_CODES = {"done": 0, "unusable data or checkpoint file": 1, "bad option, checkpoint location or resume": 2,
              "the run diverged": 3, "interrupted (Ctrl-C)": 130}


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    from cnnlab.optim import OPTIMIZERS
    from cnnlab.recipes import RECIPE_DEFAULTS

    def default(key: str) -> str:  # "default X; with --full Y", from the recipe's table of defaults
        sub, full = RECIPE_DEFAULTS["subset"][key], RECIPE_DEFAULTS["full"][key]
        return f"default {sub:g}; with --full {full:g}" if isinstance(sub, float) else \
            f"default {sub}; with --full {full}"

    p = subparsers.add_parser(
        "train", help="train the course's CNN recipe and print the test accuracy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the recipe of cnnlab.recipes (2 conv blocks with batch norm, He init, dropout, "
                    "Adam with a cosine schedule advanced every step) on the shipped Fashion-MNIST subset, or "
                    "on the full set with --full (by default the winner of `cnnlab sweep`: flips, a one-cycle "
                    f"schedule, label smoothing and decoupled weight decay, {RECIPE_DEFAULTS['full']['epochs']} "
                    "epochs), and score the test set once at the end.",
        epilog="checkpoints: --checkpoint PATH saves the run (an .npz with a JSON header, no pickle) after "
               "every epoch;\n  a fresh run never replaces an existing file unless --overwrite; --resume "
               "continues it with the\n  same settings (only --epochs may change: the cosine schedule is "
               "rebuilt for the new total;\n  not with --schedule onecycle); a diverged run is never saved.\n"
               "--json PATH: the run's settings and results (accuracies, losses, seconds, peak memory) as JSON, "
               "written\n  atomically at the end (also for a diverged run).\nexit status:\n" + "".join(
                   f"  {code:3d}  {what}\n" for what, code in EXIT_CODES.items()))
    p.add_argument("--full", action="store_true", help="use the full Fashion-MNIST (60,000 + 10,000 images)")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default="adam",
                   help="one of cnnlab.optim.OPTIMIZERS, with that table's hyper-parameters (default adam)")
    p.add_argument("--lr", type=float, default=None, help=f"learning rate ({default('lr')})")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"epochs in total ({default('epochs')}); with --resume, the new total")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", nargs="?", const="crop-flip", default=None, choices=["none", "flip", "crop-flip"],
                   help="augment the training images: --augment alone or crop-flip, random crops (2-pixel padding) "
                        f"and horizontal flips; flip, the flips alone ({default('augment')})")
    p.add_argument("--width", type=int, default=32, help="channels of the first conv layer (default 32)")
    p.add_argument("--schedule", choices=["cosine", "onecycle"], default=None,
                   help="cosine: from --lr down to 0; onecycle: up from lr/25 to --lr in the first 30%% of the "
                        f"steps, then down ({default('schedule')}; both advance every step)")
    p.add_argument("--warmup", type=float, default=0.0, metavar="EPOCHS",
                   help="linear warm-up from lr/10 before the cosine, in epochs (fractions allowed; default 0)")
    p.add_argument("--label-smoothing", type=float, default=None, metavar="EPS",
                   help=f"train towards (1 - EPS) onehot + EPS/10 instead of onehot ({default('label_smoothing')})")
    p.add_argument("--weight-decay", type=float, default=None, metavar="WD",
                   help="decoupled weight decay, adam and adamw only: with adam, AdamW instead of Adam; with "
                        "adamw, its decay (default: none for adam, AdamW's own 0.01 for adamw, PyTorch's; "
                        f"with --full {RECIPE_DEFAULTS['full']['weight_decay']:g} for both)")
    p.add_argument("--checkpoint", metavar="PATH", help="save the training state there after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint (same settings)")
    p.add_argument("--overwrite", action="store_true", help="let a fresh run replace an existing --checkpoint")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (default 1: fastest for this network on a 2-core machine)")
    p.add_argument("--patience", type=int, default=None, metavar="N",
                   help="stop when the validation loss has not improved for N epochs; the test set is then "
                        "scored with the best epoch's weights (default: off)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress (default: a bar on a terminal, else one line per epoch)")
    p.add_argument("--json", metavar="PATH", help="also write the settings and results there (see below)")
    return p


def _option_problem(args) -> str | None:
    """The first invalid option, in words, or None."""
    import math

    if args.resume and not args.checkpoint:
        return "--resume needs --checkpoint PATH (the file to resume from)"
    if args.overwrite and not args.checkpoint:
        return "--overwrite needs --checkpoint PATH (the file to replace)"
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        return f"--lr must be positive, got {args.lr}"
    if args.label_smoothing is not None and not (0 <= args.label_smoothing < 1):  # NaN fails too
        return f"--label-smoothing must be in [0, 1), got {args.label_smoothing}"
    for name in ("weight_decay", "warmup"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            return f"--{name.replace('_', '-')} must be a number >= 0, got {value}"
    for name, least in (("epochs", 1), ("batch_size", 1), ("width", 1), ("threads", 1), ("seed", 0), ("patience", 1)):
        value = getattr(args, name)
        if value is not None and value < least:
            return f"--{name.replace('_', '-')} must be at least {least}, got {value}"
    return _json_location_problem(args.json) if args.json else None


def run_train(args) -> int:
    """Run `train`; returns the exit status (see EXIT_CODES). Every failure is one line on stderr."""
    from cnnlab.recipes import SettingsError, train_recipe
    from cnnlab.train import CheckpointError

    problem = _option_problem(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        with _thread_limit(args.threads):  # options left at None take the data source's defaults
            result = train_recipe(full=args.full, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
                                  optimizer=args.optimizer, seed=args.seed, augment=args.augment,
                                  checkpoint=args.checkpoint, resume=args.resume, progress=not args.quiet,
                                  width=args.width, overwrite=args.overwrite, patience=args.patience,
                                  label_smoothing=args.label_smoothing,
                                  weight_decay=args.weight_decay,
                                  warmup_epochs=args.warmup, schedule=args.schedule)
            if args.json:
                write_result_json(args.json, result)
    except KeyboardInterrupt as interrupt:
        print(str(interrupt) or "interrupted before training started", file=sys.stderr)
        return 130
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (FileNotFoundError, CheckpointError, ValueError, OSError) as error:  # data, checkpoint, disk
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 3 if result["status"] == "diverged" else 0


def _json_location_problem(path) -> str | None:
    """Why a --json PATH could not be written, found before training (None: it can be)."""
    import tempfile
    from pathlib import Path

    path = Path(path)
    if path.is_dir():
        return f"--json {path} is a directory: give a file name, e.g. {path / 'result.json'}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as error:
        return f"--json {path} cannot be written: {error.strerror or error}"
    return None


RESULT_KEYS = ("status", "test_accuracy", "test_loss", "val_accuracy", "seconds", "cpu_seconds", "epochs", "source",
               "kept_epoch")


def write_result_json(path, result: dict) -> dict:
    """Write the scalars of `train_recipe`'s result, its settings and the process's peak memory to `path`,
    atomically, as JSON; returns what was written.

    {"status", "test_accuracy", "test_loss", "val_accuracy" (None when not scored), "seconds" (training
    only, wall clock), "cpu_seconds" (the process's CPU time over the same span), "epochs" (trained), "source", "kept_epoch" (with --patience, else None), "settings" (the run's,
    as a checkpoint records them), "peak_memory_mb" (this process's peak resident set size, by getrusage;
    None where unavailable), "per_epoch" (a list: each epoch's "epoch", "train_loss", "val_loss",
    "val_accuracy", "lr" at its end, "seconds")}.
    """
    import json

    import numpy as np

    from cnnlab.bench.timing import max_rss_mb
    from cnnlab.train.checkpoint import atomic_write_bytes

    def plain(value):  # a NumPy scalar as the Python number JSON writes
        return value.item() if isinstance(value, np.generic) else value

    out = {key: plain(result.get(key)) for key in RESULT_KEYS}
    per_epoch = ("epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds")
    out.update(settings=result["settings"], peak_memory_mb=max_rss_mb(),
               per_epoch=[{k: plain(e[k]) for k in per_epoch} for e in result["history"].epochs])
    atomic_write_bytes(path, (json.dumps(out, indent=2) + "\n").encode("utf-8"))
    return out


def _thread_limit(threads: int):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(threads)


def info() -> dict:
    """Versions, BLAS, and where the data comes from."""
    import numpy as np

    import cnnlab
    from cnnlab.data import load_fashion_mnist, locate_fashion_mnist
    from cnnlab.data.fashion_mnist import subset_dir

    out = {"python": platform.python_version(), "numpy": np.__version__, "cnnlab": cnnlab.__version__,
           "platform": platform.platform()}
    try:
        from threadpoolctl import threadpool_info
        out["blas"] = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                                for i in threadpool_info())
    except ImportError:
        out["blas"] = "unknown (threadpoolctl is not installed)"
    try:
        import torch
        out["torch"] = torch.__version__
    except ImportError:
        out["torch"] = "not installed (optional: only the benchmark compares with it)"
    try:
        full = locate_fashion_mnist()
        if full is None and os.environ.get("CNNLAB_DATA"):  # set but unusable: say what is missing
            load_fashion_mnist("test", source="full")
        out["full Fashion-MNIST"] = str(full) if full else "not found (see README: Data)"
    except (OSError, ValueError) as error:  # a bad $CNNLAB_DATA or $CNNLAB_SYSTEM_DATA
        out["full Fashion-MNIST"] = f"PROBLEM: {error}"
    try:
        X, _, _ = load_fashion_mnist("train", source="subset")
        out["shipped subset"] = f"{subset_dir()} ({len(X)} training images, checksums verified)"
    except (OSError, ValueError) as error:
        out["shipped subset"] = f"PROBLEM: {error}"
    return out


def add_info_parser(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser("info", help="report versions, BLAS and which data was found")


def run_info(args) -> int:
    for key, value in info().items():
        print(f"{key:20s} {value}")
    return 0
