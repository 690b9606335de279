"""`python -m cnnlab sweep`: which recipe gives the best accuracy on the full Fashion-MNIST within a time budget?

Each candidate is a set of options of `python -m cnnlab train` (`CANDIDATES`) over a reference recipe
(`REFERENCE`: Adam at 1e-3, cosine schedule, no augmentation, smoothing or decay); each (candidate, seed) is one
run of `python -m cnnlab train --full ... --quiet --json PATH` in a fresh process, with the command's default
threads. So every run pays for its own data loading, its peak memory is its own process's (the `peak_memory_mb`
the command writes), and the test set is scored once per run, by `train` itself. The sweep then chooses the
winner on the mean VALIDATION accuracy over the seeds, among the candidates whose every run trained within the
budget; the test accuracy is reported beside it and plays no part in the choice.

    python -m cnnlab sweep --dry-run                        # what would run
    python -m cnnlab sweep                                  # every candidate, seeds 0 1 2: hours of CPU
    python -m cnnlab sweep --candidates baseline onecycle --seeds 0
    python -m cnnlab sweep --data-source subset --candidates baseline --seeds 0   # a smoke run, minutes
    python -m cnnlab sweep --out runs/a.json --merge runs/b.json   # two sweeps run side by side, put together

Results go to `--out` (default runs/sweep-<data source>.json), rewritten atomically after every run. A rerun
skips the (candidate, seed) pairs the file already holds and refuses a file whose settings for a candidate
differ from the table's (rename the candidate or give another --out): runs with other settings never mix.
The Markdown table (printed, and written to `--table`) has, per candidate: its options, the seeds run,
validation and test accuracy (mean ± sample standard deviation), training time (mean and max), peak memory
(max), whether every run trained within the budget, and the winner.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from cnnlab.sweep_candidates import CANDIDATES, REFERENCE, SweepError, option_argv, train_argv

__all__ = ["CANDIDATES", "REFERENCE", "FORMAT", "SweepError", "RunFailed", "option_argv", "train_argv", "run_train_process",
           "run_sweep", "training_seconds", "load_results", "merge_results", "summarize", "markdown_table", "add_sweep_parser", "run_sweep_command"]

FORMAT = "cnnlab-sweep-1"

RESULT_FIELDS = ("status", "val_accuracy", "test_accuracy", "test_loss", "seconds", "cpu_seconds", "epochs",
                 "peak_memory_mb")


def training_seconds(run: dict):
    """The time a run is judged by: its training's CPU time (one BLAS thread: the wall time of the same run on
    an idle machine, and unaffected by other programs sharing the cores), or the wall time for a run recorded
    without it."""
    return run.get("cpu_seconds") if run.get("cpu_seconds") is not None else run.get("seconds")


class RunFailed(RuntimeError):
    """One training run ended without a result (a crash, bad data): it is not recorded and runs again next time."""


def run_train_process(argv: list[str]) -> dict:
    """Run `python -m cnnlab train ARGV --quiet --json TMP` in a fresh process with this cnnlab; its result.

    Exit 0 (done) or 3 (diverged) give the dict the command wrote (see cnnlab.cli.write_result_json); any other
    exit raises RunFailed with the command's last line of error output.
    """
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])))
    with tempfile.TemporaryDirectory(prefix="cnnlab-sweep-") as tmp:
        out = Path(tmp) / "result.json"
        done = subprocess.run([sys.executable, "-m", "cnnlab", "train", *argv, "--quiet", "--json", str(out)],
                              env=env, capture_output=True, text=True)
        if done.returncode not in (0, 3) or not out.is_file():
            said = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise RunFailed(f"exit status {done.returncode}: {said}")
        return json.loads(out.read_text())


# --- the results file ------------------------------------------------------------------------------------
def _empty() -> dict:
    return {"format": FORMAT, "candidates": {}, "runs": []}


def _save(out: Path, data: dict) -> None:
    from cnnlab.train.checkpoint import atomic_write_bytes

    atomic_write_bytes(out, (json.dumps(data, indent=1) + "\n").encode("utf-8"))


def load_results(path) -> dict:
    """The results file at `path` (an empty one if there is none), checked: SweepError says what is wrong."""
    path = Path(path)
    if not path.exists():
        return _empty()
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SweepError(f"{path} is not a sweep results file: {error}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SweepError(f"{path} is not a sweep results file (format {FORMAT!r} expected)")
    candidates, runs = data.get("candidates"), data.get("runs")
    if not isinstance(candidates, dict) or not all(isinstance(c, dict) and set(c) == {"source", "argv", "train"}
                                                   and isinstance(c["argv"], list) for c in candidates.values()):
        raise SweepError(f"{path}: 'candidates' must map names to their settings ({{'source', 'argv', 'train'}})")
    if not isinstance(runs, list):
        raise SweepError(f"{path}: 'runs' must be a list")
    for i, run in enumerate(runs):
        ok = (isinstance(run, dict) and run.get("candidate") in candidates and type(run.get("seed")) is int
              and isinstance(run.get("status"), str)
              and all(run.get(k) is None or type(run.get(k)) in (int, float) for k in RESULT_FIELDS[1:]))
        if not ok:
            raise SweepError(f"{path}: run {i} must name a candidate of the file, an integer seed, a status and "
                             f"numbers (or null) for {', '.join(RESULT_FIELDS[1:])}")
    pairs = [(run["candidate"], run["seed"]) for run in runs]
    if len(set(pairs)) < len(pairs):
        twice = sorted({pair for pair in pairs if pairs.count(pair) > 1})
        raise SweepError(f"{path} holds more than one run of {', '.join(f'{n} seed {s}' for n, s in twice)}")
    return data


def _settings(options: dict, source: str) -> dict:
    """What a candidate's runs are: its options, and every setting of `train` they imply (its defaults
    included, so that runs made before a default changed never mix with runs made after)."""
    from cnnlab.cli import add_train_parser
    from cnnlab.recipes import decoupled_decay, recipe_defaults

    parser = argparse.ArgumentParser(prog="train", add_help=False)
    add_train_parser(parser.add_subparsers(dest="command"))
    argv = train_argv(options, 0, source)
    try:
        parsed = vars(parser.parse_args(["train", *argv]))
    except SystemExit:  # argparse has printed what is wrong
        raise SweepError(f"the train command refuses the options {' '.join(argv)}") from None
    parsed.update(recipe_defaults(source, parsed["optimizer"], **{k: parsed[k] for k in (
        "epochs", "lr", "augment", "schedule", "label_smoothing", "weight_decay")}))
    parsed["weight_decay"] = decoupled_decay(parsed["optimizer"], parsed["weight_decay"])  # the decay it uses
    for key in ("command", "seed", "quiet", "json", "checkpoint", "resume", "overwrite"):
        parsed.pop(key)
    return {"source": source, "argv": option_argv(options), "train": parsed}


def _check_mixing(path, data: dict, table: dict, names, source: str) -> None:
    """SweepError if the file holds runs of one of `names` made with other settings than the table's now."""
    for name in names:
        saved, mine = data["candidates"].get(name), _settings(table[name], source)
        if saved is None or (saved["source"], saved["train"]) == (mine["source"], mine["train"]):
            continue
        keys = sorted(set(saved["train"]) | set(mine["train"]))
        changes = [f"data {saved['source']} there, {source} now"] if saved["source"] != source else []
        changes += [f"{k} {saved['train'].get(k)!r} there, {mine['train'].get(k)!r} now" for k in keys
                    if saved["train"].get(k) != mine["train"].get(k)]
        raise SweepError(f"{path} holds runs of {name!r} made with other settings ({'; '.join(changes)}): give "
                         f"another --out or rename the candidate")


# --- the sweep -------------------------------------------------------------------------------------------
def run_sweep(out, names=None, seeds=(0, 1, 2), budget_minutes: float = 15.0, source: str = "full",
              candidates: dict | None = None, runner=run_train_process, log=print, dry_run: bool = False) -> dict:
    """Run every (candidate, seed) not yet in the results file `out`; returns {"rows", "failed", "ran"}.

    Inputs: names (candidates to run, in that order; None: all of the table), seeds, budget_minutes (a run whose
    training takes longer is marked over budget), source ("full" or "subset"), candidates (name -> train
    options; default CANDIDATES), runner (argv -> result dict, or RunFailed; default: a fresh process),
    log (one line per run), dry_run (list what would run; nothing runs or is written).
    Returns the table's rows (see summarize), the failed runs [(name, seed, message)] and how many ran.
    """
    table = CANDIDATES if candidates is None else candidates
    names = list(dict.fromkeys(table if names is None else names))  # each once, in order
    seeds = list(dict.fromkeys(seeds))
    unknown = [n for n in names if n not in table]
    if unknown:
        raise SweepError(f"unknown candidate(s) {', '.join(unknown)}; known: {', '.join(table)}")
    if source not in ("full", "subset"):
        raise SweepError(f"the data source must be 'full' or 'subset', got {source!r}")
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise SweepError(f"seeds must be whole numbers >= 0, got {list(seeds)}")
    if not (isinstance(budget_minutes, (int, float)) and budget_minutes > 0 and math.isfinite(budget_minutes)):
        raise SweepError(f"the budget must be a positive number of minutes, got {budget_minutes!r}")
    out = Path(out)
    data = load_results(out)
    _check_mixing(out, data, table, names, source)
    done = {(r["candidate"], r["seed"]) for r in data["runs"]}
    todo = [(n, s) for n in names for s in seeds if (n, s) not in done]
    log(f"{len(names) * len(seeds) - len(todo)} of {len(names) * len(seeds)} runs already in {out}; "
        f"{len(todo)} to run")
    failed, ran = [], 0
    for i, (name, seed) in enumerate(todo, 1):
        argv = train_argv(table[name], seed, source)
        if dry_run:
            log(f"[{i}/{len(todo)}] {name}, seed {seed}: python -m cnnlab train {' '.join(argv)} --quiet")
            continue
        try:
            result = runner(argv)
        except RunFailed as error:
            failed.append((name, seed, str(error)))
            log(f"[{i}/{len(todo)}] {name}, seed {seed}: FAILED ({error}); not recorded")
            continue
        ran += 1
        data["candidates"][name] = _settings(table[name], source)
        data["runs"].append({"candidate": name, "seed": seed, **{k: result.get(k) for k in RESULT_FIELDS},
                             "settings": result.get("settings"), "per_epoch": result.get("per_epoch"),
                             "machine": f"{platform.machine()} {platform.system()}, {os.cpu_count()} cores"})
        _save(out, data)
        log(f"[{i}/{len(todo)}] {name}, seed {seed}: {result.get('status')}, val {_pct(result.get('val_accuracy'))}, "
            f"test {_pct(result.get('test_accuracy'))}, {result.get('seconds') or 0:.0f} s "
            f"({result.get('cpu_seconds') or 0:.0f} s of CPU)")
    return {"rows": summarize(data, table, names, seeds, budget_minutes * 60), "failed": failed, "ran": ran}


def merge_results(out, others, table: dict | None = None, source: str = "full") -> int:
    """Add the runs held in the results files `others` (sweeps run side by side, or on another machine) to the
    results file `out`; returns how many runs were added. The same run held twice is added once. Nothing is
    written, and SweepError says why, if a file is missing or damaged, names a candidate the table does not
    have, made its runs with other settings than the table's, or holds another result for a (candidate, seed)."""
    table = CANDIDATES if table is None else table
    out = Path(out)
    data = load_results(out)
    held = {(r["candidate"], r["seed"]): r for r in data["runs"]}
    added = 0
    for other in map(Path, others):
        if not other.is_file():
            raise SweepError(f"{other}: no such results file")
        theirs = load_results(other)
        unknown = sorted(set(theirs["candidates"]) - set(table))
        if unknown:
            raise SweepError(f"{other} holds runs of {', '.join(unknown)}, not candidates of the table")
        _check_mixing(other, theirs, table, list(theirs["candidates"]), source)
        for run in theirs["runs"]:
            key = (run["candidate"], run["seed"])
            if key in held and held[key] != run:
                raise SweepError(f"{other} and {out} hold different results for {key[0]} seed {key[1]}")
            if key not in held:
                data["candidates"][key[0]] = theirs["candidates"][key[0]]
                data["runs"].append(run)
                held[key] = run
                added += 1
    _check_mixing(out, data, table, list(data["candidates"]), source)
    if added:
        _save(out, data)
    return added


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}%"


def _mean_std(values):
    """(mean, sample standard deviation (ddof 1; None for one value)), or (None, None) for none."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(data: dict, table: dict, names, seeds, budget_seconds: float) -> list[dict]:
    """One row per candidate in `names` from the runs of `seeds`: statistics and the winner.

    A row is {"name", "argv", "seeds" (run), "val" and "test" ((mean, std) of the accuracies), "seconds"
    ((mean, max) of `training_seconds`), "wall" (mean wall-clock seconds), "memory" (max MB), "within_budget" (every run trained within budget_seconds), "complete"
    (every seed run, none diverged), "winner"}. The winner: the highest mean validation accuracy among the
    complete rows within budget (the first in the table on a tie); the test accuracy plays no part.
    """
    rows = []
    for name in names:
        runs = sorted((r for r in data["runs"] if r["candidate"] == name and r["seed"] in seeds),
                      key=lambda r: r["seed"])
        seconds = [training_seconds(r) for r in runs if training_seconds(r) is not None]
        wall = [r["seconds"] for r in runs if r["seconds"] is not None]
        memory = [r["peak_memory_mb"] for r in runs if r["peak_memory_mb"] is not None]
        rows.append({
            "name": name, "argv": option_argv(table[name]), "seeds": [r["seed"] for r in runs],
            "val": _mean_std([r["val_accuracy"] for r in runs if r["val_accuracy"] is not None]),
            "test": _mean_std([r["test_accuracy"] for r in runs if r["test_accuracy"] is not None]),
            "seconds": (sum(seconds) / len(seconds), max(seconds)) if seconds else (None, None),
            "wall": sum(wall) / len(wall) if wall else None,
            "memory": max(memory) if memory else None,
            "within_budget": bool(runs) and all(training_seconds(r) is not None
                                                and training_seconds(r) <= budget_seconds for r in runs),
            "over": sum(training_seconds(r) is not None and training_seconds(r) > budget_seconds for r in runs),
            "complete": len(runs) == len(seeds) and all(r["status"] in ("completed", "early_stopping")
                                                        and r["val_accuracy"] is not None for r in runs),
            "diverged": sum(r["status"] == "diverged" for r in runs), "winner": False})
    eligible = [row for row in rows if row["complete"] and row["within_budget"]]
    if eligible:
        max(eligible, key=lambda row: row["val"][0])["winner"] = True  # max keeps the first of equals
    return rows


def markdown_table(rows: list[dict], budget_minutes: float, source: str) -> str:
    """The rows of `summarize` as a Markdown table, with a note saying how to read it."""
    def acc(pair):
        mean, std = pair
        return "–" if mean is None else f"{100 * mean:.2f}" + ("" if std is None else f" ± {100 * std:.2f}")

    lines = [f"| candidate | `train` options | seeds | val accuracy % | test accuracy % | training CPU s, mean (max) "
             f"| wall s, mean | peak memory MB | within {budget_minutes:g} min |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        mean, most = row["seconds"]
        budget = ("–" if not row["seeds"] else "yes" if row["within_budget"] else
                  f"no ({row['over']} of {len(row['seeds'])} over)" if row["over"] else "no (not timed)")
        if row["diverged"]:
            budget += f"; {row['diverged']} diverged"
        name = f"**{row['name']}** (winner)" if row["winner"] else row["name"]
        lines.append(f"| {name} | `{' '.join(row['argv']) or '(defaults)'}` | "
                     f"{' '.join(map(str, row['seeds'])) or 'none yet'} | {acc(row['val'])} | {acc(row['test'])} | "
                     + ("–" if mean is None else f"{mean:.0f} ({most:.0f})") + " | "
                     + ("–" if row["wall"] is None else f"{row['wall']:.0f}") + " | "
                     + ("–" if row["memory"] is None else f"{row['memory']:.0f}") + f" | {budget} |")
    data = "the full Fashion-MNIST (55,000 train / 5,000 val / 10,000 test; `--full` omitted above)" \
        if source == "full" else "the shipped subset (a smoke run: not the comparison)"
    lines += ["", f"Each candidate runs `train` with the options shown over the reference "
                  f"`{' '.join(option_argv(REFERENCE))}`. Data: {data}. Mean ± sample standard deviation over the seeds; "
                  f"training time (CPU time of the one-thread training process, judged against the budget; the "
                  f"wall-clock mean beside it grows when other programs share the machine) excludes loading and "
                  f"scoring; peak memory is the training process's. The "
                  f"winner has the highest mean validation accuracy among the candidates whose runs all "
                  f"trained within {budget_minutes:g} minutes; the test set was scored once per run and took "
                  f"no part in the choice."]
    return "\n".join(lines) + "\n"


# --- the command -------------------------------------------------------------------------------------------
def add_sweep_parser(subparsers):
    p = subparsers.add_parser(
        "sweep", help="compare training recipes within a time budget (runs `train` once per candidate and seed)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run `python -m cnnlab train` for each candidate recipe and seed in a fresh process, keep the "
                    "results in a JSON file (a rerun skips what it holds), print a Markdown table and choose the "
                    "winner on the mean validation accuracy among the candidates trained within the budget.",
        epilog="candidates:\n" + "".join(f"  {name:20s} {' '.join(option_argv(o))}\n" for name, o in CANDIDATES.items())
               + "exit status: 0 done, 1 a run failed or the data is missing, 2 bad option or results file, "
                 "130 interrupted")
    p.add_argument("--candidates", nargs="+", metavar="NAME", help="the candidates to run (default: all, listed below)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], metavar="SEED", help="default: 0 1 2")
    p.add_argument("--budget-minutes", type=float, default=15.0,
                   help="a run whose training takes longer is marked over budget and cannot win (default 15)")
    p.add_argument("--data-source", choices=["full", "subset"], default="full",
                   help="full (default) or the shipped subset, for a quick smoke run")
    p.add_argument("--out", metavar="PATH", help="the results file (default runs/sweep-<data source>.json)")
    p.add_argument("--table", metavar="PATH", help="also write the Markdown table there")
    p.add_argument("--dry-run", action="store_true", help="list the runs still to do, run nothing, write nothing")
    p.add_argument("--merge", nargs="+", metavar="PATH", help="add the runs of these results files (sweeps run side "
                   "by side or elsewhere) to --out and print the table; runs nothing")
    return p


def run_sweep_command(args, candidates: dict | None = None, runner=run_train_process) -> int:
    """Run `sweep`; returns the exit status. `candidates` and `runner` replace the table and the process (tests)."""
    out = Path(args.out or f"runs/sweep-{args.data_source}.json")
    if args.merge:
        table = CANDIDATES if candidates is None else candidates
        try:
            unknown = [n for n in args.candidates or [] if n not in table]
            if unknown:
                raise SweepError(f"unknown candidate(s) {', '.join(unknown)}; known: {', '.join(table)}")
            added = merge_results(out, args.merge, table, args.data_source)
            rows = summarize(load_results(out), table, args.candidates or list(table), args.seeds,
                             args.budget_minutes * 60)
        except SweepError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print(f"{added} run(s) added to {out}")
        _print_table(rows, args)
        return 0
    if args.data_source == "full" and not args.dry_run:
        from cnnlab.data import locate_fashion_mnist

        if locate_fashion_mnist() is None:
            print("error: the full Fashion-MNIST was not found (see README: Data; `python -m cnnlab info` says where "
                  "it was looked for); --data-source subset runs a smoke test on the shipped subset", file=sys.stderr)
            return 1
    try:
        done = run_sweep(out, names=args.candidates, seeds=args.seeds, budget_minutes=args.budget_minutes,
                         source=args.data_source, candidates=candidates, runner=runner, dry_run=args.dry_run)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {out} holds every run that finished; run the same command again to go on",
              file=sys.stderr)
        return 130
    if args.dry_run:
        return 0
    _print_table(done["rows"], args)
    for name, seed, message in done["failed"]:
        print(f"FAILED: {name}, seed {seed}: {message}", file=sys.stderr)
    return 1 if done["failed"] else 0


def _print_table(rows, args) -> None:
    """Print the Markdown table of `rows`, and write it to --table if given."""
    from cnnlab.train.checkpoint import atomic_write_bytes

    table = markdown_table(rows, args.budget_minutes, args.data_source)
    print("\n" + table, end="")
    if args.table:
        atomic_write_bytes(args.table, table.encode("utf-8"))
        print(f"table written to {args.table}")
