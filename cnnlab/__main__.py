"""Command line: `python -m cnnlab bench` times cnnlab's reference CNN (and PyTorch's, if installed);
`python -m cnnlab train` trains the course's recipe (see cnnlab.recipes); `python -m cnnlab info` reports
versions and which data was found.

    python -m cnnlab bench                      # batch 64, every core, table on stdout
    python -m cnnlab bench --threads 1          # one thread for NumPy's BLAS and for PyTorch
    python -m cnnlab bench --json result.json   # also write every figure as JSON ('-': stdout only)

See `cnnlab.bench` for what is measured and how.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cnnlab",
        description="cnnlab command line tools.",
        epilog="Run 'python -m cnnlab COMMAND --help' for a command's options.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True
    bench = commands.add_parser(
        "bench",
        help="time a training step of the reference CNN (and compare with PyTorch if installed)",
        description=(
            "Time cnnlab on the course's reference CNN, Conv2d(1,16,3,p=1)-ReLU-MaxPool2d(2)-"
            "Conv2d(16,32,3,p=1)-ReLU-MaxPool2d(2)-Flatten-Linear(1568,128)-ReLU-Linear(128,10), on 1x28x28 "
            "float32 images: ms per training step (forward, cross-entropy, backward, SGD with momentum), per "
            "inference pass and per layer; images per second; peak memory. When PyTorch is installed, the same "
            "network with the same weights runs in PyTorch on the CPU with the same number of threads, "
            "interleaved with cnnlab in blocks, and the ratio cnnlab/PyTorch is printed. Every figure is a "
            "median over repeats x block calls after a warm-up."),
        epilog=("Timings depend on what else the machine is doing: the report shows the load average. "
                "Threads: NumPy's BLAS is limited with threadpoolctl when installed; otherwise the benchmark "
                "restarts itself with OPENBLAS_NUM_THREADS/OMP_NUM_THREADS/MKL_NUM_THREADS set."))
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
                            "the table")
    from cnnlab.cli import add_info_parser, add_train_parser

    add_train_parser(commands)
    add_info_parser(commands)
    return parser


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


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command in ("train", "info"):
        from cnnlab import cli

        return cli.run_train(args) if args.command == "train" else cli.run_info(args)
    if args.command == "bench":
        from cnnlab import bench

        threads = args.threads or bench.default_threads()
        if _needs_relaunch(threads):
            _relaunch(threads, argv)
        result = bench.run_benchmark(batch_size=args.batch_size, repeats=args.repeats, block=args.block,
                                     warmup=args.warmup, threads=threads, use_torch=not args.no_torch,
                                     layers=not args.no_layers, seed=args.seed)
        if args.json == "-":
            print(json.dumps(result, indent=2))
        else:
            print(bench.format_report(result))
            if args.json is not None:
                from cnnlab.train.checkpoint import atomic_write_bytes

                atomic_write_bytes(args.json, json.dumps(result, indent=2).encode("utf-8"))
                print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
