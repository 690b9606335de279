"""`python -m cnnlab bench`: the benchmark's command (parsed and dispatched by `cnnlab.__main__`).

    python -m cnnlab bench                         # both networks, batch 64, every core, tables on stdout
    python -m cnnlab bench --network recipe_cnn    # one network (reference_cnn or recipe_cnn)
    python -m cnnlab bench --threads 1             # one thread for NumPy's BLAS and for PyTorch
    python -m cnnlab bench --json result.json      # also write every figure as JSON ('-': stdout only)

The JSON holds one result per network: {"reference_cnn": {...}, "recipe_cnn": {...}} (see
`cnnlab.bench.run_benchmark` for the fields).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

__all__ = ["add_bench_parser", "run_bench", "RELAUNCHED"]

RELAUNCHED = "CNNLAB_BENCH_RELAUNCHED"


def _integer_at_least(minimum: int, words: str):
    """An argparse type: an int >= minimum, or a message saying what was expected and what was given."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value
    return parse


_positive = _integer_at_least(1, "a positive integer")
_non_negative = _integer_at_least(0, "an integer >= 0")


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    from cnnlab.bench.steps import NETWORKS

    bench = subparsers.add_parser(
        "bench",
        help="time a training step of the benchmark's CNNs (and compare with PyTorch if installed)",
        description=(
            "Time cnnlab on two networks of cnnlab.models, on 1x28x28 float32 images: reference_cnn, "
            "Conv2d(1,16,3,p=1)-ReLU-MaxPool2d(2)-Conv2d(16,32,3,p=1)-ReLU-MaxPool2d(2)-Flatten-Linear(1568,128)-"
            "ReLU-Linear(128,10) with SGD and momentum, and recipe_cnn, the course's recipe (two conv blocks with "
            "batch norm, dropout) with Adam: ms per training step (forward, cross-entropy, backward, optimizer "
            "step), per inference pass and per layer; images per second; peak memory. When PyTorch is installed, "
            "the same network with the same weights runs in PyTorch on the CPU with the same number of threads, "
            "interleaved with cnnlab in blocks, and the ratio cnnlab/PyTorch is printed. Every figure is a "
            "median over repeats x block calls after a warm-up."),
        epilog=("Timings depend on what else the machine is doing: the report shows the load average. "
                "Threads: NumPy's BLAS is limited with threadpoolctl when installed; otherwise the benchmark "
                "restarts itself with OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/MKL_NUM_THREADS set."))
    bench.add_argument("--network", choices=[*NETWORKS, "all"], default="all",
                       help="the network to time (default: %(default)s, one after the other)")
    bench.add_argument("--batch-size", type=_positive, default=64, help="images per step (default: %(default)s)")
    bench.add_argument("--repeats", type=_positive, default=10,
                       help="rounds; each runs one block of cnnlab and one of PyTorch, alternating who goes first "
                            "(default: %(default)s)")
    bench.add_argument("--block", type=_positive, default=10, help="timed calls per block (default: %(default)s)")
    bench.add_argument("--warmup", type=_non_negative, default=10,
                       help="untimed calls of each kind before timing (default: %(default)s)")
    bench.add_argument("--threads", type=_positive, default=None,
                       help="threads for NumPy's BLAS and for PyTorch (default: every core this process may use)")
    bench.add_argument("--no-torch", action="store_true", help="time cnnlab only, even if PyTorch is installed")
    bench.add_argument("--no-layers", action="store_true", help="skip the per-layer timings (faster)")
    bench.add_argument("--seed", type=_non_negative, default=0,
                       help="seed of the initial weights and the batch (default: %(default)s)")
    bench.add_argument("--json", metavar="PATH", nargs="?", const="-", default=None,
                       help="write the full result as JSON to PATH; without PATH (or '-'), print JSON instead of "
                            "the tables")
    return bench


def _needs_relaunch(threads: int) -> bool:
    """True when NumPy's BLAS cannot be limited in this process but could be after a restart."""
    if os.environ.get(RELAUNCHED) or importlib.util.find_spec("threadpoolctl") is not None:
        return False
    return any(os.environ.get(var) != str(threads) for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                "MKL_NUM_THREADS"))


def _relaunch(threads: int, argv: list[str]) -> None:
    """Restart `python -m cnnlab` with the BLAS thread variables set (they are read when NumPy loads)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), **{RELAUNCHED: "1"})
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "cnnlab", *argv], env)


def run_bench(args, argv: list[str]) -> int:
    """Run `bench` with the parsed `args` (`argv`: the command line, for a restart); returns the exit status."""
    from cnnlab import bench

    threads = args.threads or bench.default_threads()
    if _needs_relaunch(threads):
        _relaunch(threads, argv)
    names = list(bench.NETWORKS) if args.network == "all" else [args.network]
    results = {}
    for name in names:
        results[name] = bench.run_benchmark(batch_size=args.batch_size, repeats=args.repeats, block=args.block,
                                            warmup=args.warmup, threads=threads, use_torch=not args.no_torch,
                                            layers=not args.no_layers, seed=args.seed, network=name)
        if args.json != "-":
            print(("\n" if len(results) > 1 else "") + bench.format_report(results[name]), flush=True)
    if args.json == "-":
        print(json.dumps(results, indent=2))
    elif args.json is not None:
        from cnnlab.train.checkpoint import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(results, indent=2).encode("utf-8"))
        print(f"\nJSON written to {args.json}")
    return 0
