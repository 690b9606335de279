"""Command line: `python -m cnnlab bench` times the benchmark's CNNs in cnnlab (and PyTorch, if installed;
see cnnlab.bench); `python -m cnnlab train` trains the course's recipe (see cnnlab.recipes);
`python -m cnnlab sweep` compares training recipes within a time budget (see cnnlab.sweep);
`python -m cnnlab info` reports versions and which data was found.

    python -m cnnlab bench                      # both networks, batch 64, every core, tables on stdout
    python -m cnnlab bench --threads 1          # one thread for NumPy's BLAS and for PyTorch
    python -m cnnlab bench --json result.json   # also write every figure as JSON ('-': stdout only)
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from cnnlab.bench.cli import add_bench_parser
    from cnnlab.cli import add_info_parser, add_train_parser
    from cnnlab.sweep import add_sweep_parser

    parser = argparse.ArgumentParser(
        prog="python -m cnnlab",
        description="cnnlab command line tools.",
        epilog="Run 'python -m cnnlab COMMAND --help' for a command's options.")
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.required = True
    add_bench_parser(commands)
    add_train_parser(commands)
    add_sweep_parser(commands)
    add_info_parser(commands)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.command == "bench":
        from cnnlab.bench.cli import run_bench

        return run_bench(args, argv)
    if args.command == "sweep":
        from cnnlab.sweep import run_sweep_command

        return run_sweep_command(args)
    from cnnlab import cli

    return cli.run_train(args) if args.command == "train" else cli.run_info(args)


if __name__ == "__main__":
    sys.exit(main())
