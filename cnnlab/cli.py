"""`python -m cnnlab train` and `python -m cnnlab info`: the recipe from the command line, and what was found."""
from __future__ import annotations

import argparse
import platform
import sys

__all__ = ["add_train_parser", "run_train", "add_info_parser", "run_info", "info"]


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    from cnnlab.recipes import OPTIMIZER_NAMES

    p = subparsers.add_parser(
        "train", help="train the course's CNN recipe and print the test accuracy",
        description="Train the recipe of cnnlab.recipes (2 conv blocks with batch norm, He init, dropout, "
                    "Adam with a cosine schedule) on the shipped Fashion-MNIST subset, or "
                    "on the full set with --full, and score the test set once at the end.")
    p.add_argument("--full", action="store_true", help="use the full Fashion-MNIST (60,000 + 10,000 images)")
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default="adam")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--epochs", type=int, default=None, help="epochs (default 12 on the subset, 10 with --full)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", action="store_true", help="add random crops (2-pixel padding) and flips")
    p.add_argument("--width", type=int, default=32, help="channels of the first conv layer (default 32)")
    p.add_argument("--checkpoint", metavar="PATH", help="save the training state there after every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS threads (default 1: fastest for this network on a 2-core machine)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def run_train(args) -> int:
    from cnnlab.recipes import train_recipe

    if args.resume and not args.checkpoint:
        print("--resume needs --checkpoint PATH (the file to resume from)", file=sys.stderr)
        return 2
    for name in ("lr", "batch_size", "width"):
        if getattr(args, name) <= 0:
            print(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}", file=sys.stderr)
            return 2
    epochs = args.epochs if args.epochs is not None else (10 if args.full else 12)
    if epochs < 1:
        print(f"--epochs must be at least 1, got {epochs}", file=sys.stderr)
        return 2
    limiter = _thread_limit(args.threads)
    try:
        with limiter:
            train_recipe(full=args.full, epochs=epochs, lr=args.lr, batch_size=args.batch_size,
                         optimizer=args.optimizer, seed=args.seed, augment=args.augment,
                         checkpoint=args.checkpoint, resume=args.resume, progress=not args.quiet,
                         width=args.width)
    except (FileNotFoundError, ValueError) as error:  # missing data, bad checkpoint: a message, not a trace
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


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
    full = locate_fashion_mnist()
    out["full Fashion-MNIST"] = str(full) if full else "not found (see README: Data)"
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
