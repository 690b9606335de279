"""`python -m cnnlab sweep`: runs in fresh processes on the shipped subset (a tiny network, one epoch), the
results file, the choice of the winner on validation accuracy only, and the budget (with a fake runner)."""
import argparse
import json

import pytest

from cnnlab.cli import add_train_parser
from cnnlab.cli import _option_problem as train_option_problem
from cnnlab.recipes import _check_training_options
from cnnlab.sweep import (CANDIDATES, FORMAT, RunFailed, SweepError, add_sweep_parser, load_results, run_sweep,
                          run_sweep_command, train_argv)

TINY = {"tiny": {"epochs": 1, "width": 2}, "tiny-smooth": {"epochs": 1, "width": 2, "label_smoothing": 0.1}}


def parse(*argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    add_sweep_parser(sub)
    add_train_parser(sub)
    return parser.parse_args(list(argv))


def test_a_sweep_runs_each_pair_in_a_process_writes_its_results_and_skips_them_on_rerun(tmp_path, capsys):
    out, table = tmp_path / "sweep.json", tmp_path / "sweep.md"
    args = parse("sweep", "--data-source", "subset", "--seeds", "0", "1", "--out", str(out), "--table", str(table))
    assert run_sweep_command(args, candidates=TINY) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["format"] == FORMAT and sorted((r["candidate"], r["seed"]) for r in data["runs"]) == [
        ("tiny", 0), ("tiny", 1), ("tiny-smooth", 0), ("tiny-smooth", 1)]
    for run in data["runs"]:
        assert run["status"] == "completed" and 0.1 < run["val_accuracy"] <= 1 and 0.1 < run["test_accuracy"] <= 1
        assert run["settings"]["seed"] == run["seed"] and run["settings"]["width"] == 2 and run["epochs"] == 1
        assert run["settings"]["label_smoothing"] == (0.1 if run["candidate"] == "tiny-smooth" else 0.0)
        assert run["peak_memory_mb"] is None or run["peak_memory_mb"] > 10  # the child's: NumPy and the data
    seeds = {r["seed"]: r for r in data["runs"] if r["candidate"] == "tiny"}
    assert seeds[0]["val_accuracy"] != seeds[1]["val_accuracy"] or seeds[0]["test_loss"] != seeds[1]["test_loss"]
    assert data["candidates"]["tiny"]["train"]["width"] == 2 and data["candidates"]["tiny"]["source"] == "subset"
    markdown = table.read_text()
    assert markdown in printed and markdown.count("(winner)") == 1
    assert "| tiny | `--epochs 1 --width 2` | 0 1 |" in markdown or "| **tiny** (winner) |" in markdown
    assert "smoke run" in markdown
    before = out.read_bytes()

    def must_not_run(argv):
        raise AssertionError(f"ran {argv} again")

    assert run_sweep_command(args, candidates=TINY, runner=must_not_run) == 0
    assert "4 of 4 runs already in" in capsys.readouterr().out and out.read_bytes() == before


def fake_runner(results):
    """A runner answering from {(first option value, seed): (val, test, CPU seconds)}, the wall clock 100 s
    more (a busy machine); records the argv it got."""
    calls = []

    def run(argv):
        calls.append(argv)
        key = (argv[argv.index("--width") + 1], int(argv[argv.index("--seed") + 1]))
        if results[key] is None:
            raise RunFailed("exit status 1: error: something broke")
        val, test, seconds = results[key]
        return {"status": "completed", "val_accuracy": val, "test_accuracy": test, "test_loss": 0.3,
                "seconds": seconds + 100, "cpu_seconds": seconds, "epochs": 1,
                "peak_memory_mb": 400.0 + seconds / 100, "settings": {}}

    run.calls = calls
    return run


# "a" wins the test set, "b" wins validation; "c" is best on both but one run took 16 minutes
ABC = {"a": {"width": 10}, "b": {"width": 20}, "c": {"width": 30}}
SCORES = {("10", 0): (0.90, 0.95, 600), ("10", 1): (0.91, 0.94, 610), ("20", 0): (0.92, 0.91, 620),
          ("20", 1): (0.93, 0.90, 630), ("30", 0): (0.95, 0.96, 700), ("30", 1): (0.96, 0.97, 960)}


def test_the_winner_is_chosen_on_validation_accuracy_and_an_over_budget_run_cannot_win(tmp_path, capsys):
    out = tmp_path / "s.json"
    args = parse("sweep", "--seeds", "0", "1", "--out", str(out), "--data-source", "subset")
    assert run_sweep_command(args, candidates=ABC, runner=fake_runner(SCORES)) == 0
    lines = capsys.readouterr().out.splitlines()
    row = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert "**b** (winner)" in row and "| 92.50 ± 0.71 | 90.50 ± 0.71 |" in row["**b** (winner)"]
    assert "| 90.50 ± 0.71 | 94.50 ± 0.71 |" in row["a"] and "| yes |" in row["a"]  # (0.90, 0.91): sd 0.0071
    # CPU mean (700 + 960) / 2; wall mean (800 + 1060) / 2; peak 400 + 960 / 100
    assert "| 830 (960) | 930 | 410 | no (1 of 2 over) |" in row["c"]
    result = run_sweep(out, seeds=[0, 1], source="subset", candidates=ABC, runner=fake_runner(SCORES),
                       budget_minutes=17, log=lambda line: None)
    assert [r["name"] for r in result["rows"] if r["winner"]] == ["c"]  # within 17 minutes, c wins
    assert result["ran"] == 0


def test_a_failed_run_is_reported_not_recorded_and_runs_again_next_time(tmp_path, capsys):
    out = tmp_path / "s.json"
    scores = {**SCORES, ("20", 1): None}
    args = parse("sweep", "--seeds", "0", "1", "--out", str(out), "--data-source", "subset")
    assert run_sweep_command(args, candidates=ABC, runner=fake_runner(scores)) == 1
    captured = capsys.readouterr()
    assert "FAILED: b, seed 1: exit status 1: error: something broke" in captured.err
    assert "**b**" not in captured.out and "**c**" not in captured.out and "**a** (winner)" in captured.out
    assert ("b", 1) not in {(r["candidate"], r["seed"]) for r in load_results(out)["runs"]}
    runner = fake_runner(SCORES)
    assert run_sweep_command(args, candidates=ABC, runner=runner) == 0
    assert [c[c.index("--seed") + 1] for c in runner.calls] == ["1"] and "--width" in runner.calls[0]


def test_a_file_with_other_settings_for_a_candidate_is_refused_and_left_alone(tmp_path, capsys):
    out = tmp_path / "s.json"
    args = parse("sweep", "--seeds", "0", "--out", str(out), "--data-source", "subset")
    assert run_sweep_command(args, candidates=ABC, runner=fake_runner(SCORES)) == 0
    before = out.read_bytes()
    capsys.readouterr()
    changed = {**ABC, "b": {"width": 20, "lr": 0.002}}
    assert run_sweep_command(args, candidates=changed, runner=fake_runner(SCORES)) == 2
    err = capsys.readouterr().err
    assert "holds runs of 'b' made with other settings (lr 0.001 there, 0.002 now)" in err and err.count("\n") == 1
    full = parse("sweep", "--seeds", "0", "--out", str(out), "--data-source", "full", "--dry-run")
    assert run_sweep_command(full, candidates=ABC) == 2
    assert "data subset there, full now" in capsys.readouterr().err
    assert out.read_bytes() == before


@pytest.mark.parametrize("content, words", [
    ("not json", "is not a sweep results file"),
    (json.dumps({"format": "something-else"}), "is not a sweep results file"),
    (json.dumps({"format": FORMAT, "candidates": {}, "runs": [{"candidate": "x", "seed": 0}]}), "run 0 must name"),
    (json.dumps({"format": FORMAT, "candidates": {"x": {"source": "subset", "argv": [], "train": {}}},
                 "runs": [{"candidate": "x", "seed": 0, "status": "completed"}] * 2}),
     "holds more than one run of x seed 0"),
])
def test_a_damaged_results_file_is_refused_saying_why(content, words, tmp_path, capsys):
    out = tmp_path / "s.json"
    out.write_text(content)
    assert run_sweep_command(parse("sweep", "--out", str(out), "--data-source", "subset"), candidates=ABC,
                             runner=fake_runner(SCORES)) == 2
    assert words in capsys.readouterr().err and out.read_text() == content


def test_the_budget_is_judged_on_cpu_time_and_on_wall_time_only_for_runs_without_it():
    from cnnlab.sweep import summarize, training_seconds

    busy = {"seconds": 1000.0, "cpu_seconds": 850.0}   # 15 minutes of CPU, more on the clock: within 900 s
    old = {"seconds": 1000.0}                          # recorded before CPU time was: the wall clock counts
    assert (training_seconds(busy), training_seconds(old), training_seconds({"seconds": None})) == (850.0, 1000.0, None)
    run = {"candidate": "a", "status": "completed", "val_accuracy": 0.9, "test_accuracy": 0.9,
           "peak_memory_mb": 1.0}
    for times, within in ((busy, True), (old, False), ({"seconds": 800.0, "cpu_seconds": 950.0}, False)):
        data = {"runs": [{**run, "seed": 0, **times}]}
        row, = summarize(data, {"a": {"width": 10}}, ["a"], [0], budget_seconds=900)
        assert row["within_budget"] is within and row["winner"] is within


def test_dry_run_lists_the_commands_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "s.json"
    args = parse("sweep", "--candidates", "combined", "combined", "--seeds", "4", "4", "--out", str(out), "--dry-run")
    assert run_sweep_command(args) == 0
    printed = capsys.readouterr().out
    assert "0 of 1 runs already in" in printed and printed.count("combined, seed 4") == 1
    assert ("combined, seed 4: python -m cnnlab train --full --epochs 19 --augment flip --label-smoothing 0.1 "
            "--weight-decay 0.05 --schedule onecycle --lr 0.003 --seed 4 --quiet") in printed
    assert not out.exists()


def test_bad_sweep_options_are_refused_in_one_line(tmp_path, capsys):
    for argv, words in ((["--candidates", "nope"], "unknown candidate(s) nope; known: baseline, cosine-20"),
                        (["--seeds", "-1"], "seeds must be whole numbers >= 0"),
                        (["--budget-minutes", "0"], "the budget must be a positive number of minutes")):
        args = parse("sweep", "--out", str(tmp_path / "s.json"), "--dry-run", *argv)
        assert run_sweep_command(args) == 2
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1


def test_every_candidate_is_a_valid_train_command_within_the_planned_budget():
    """Each entry parses and passes the train command's and the recipe's checks; planned at 42 s of CPU an
    epoch of the default step (38-42 s measured; flips x1.05, crops and flips x1.1, width 48 x2.1, batch 128
    x0.95), each fits in 15 minutes."""
    cost = {"width": 2.1, "batch_size": 0.95}
    augment_cost = {"flip": 1.05, "crop-flip": 1.1}
    for name, options in CANDIDATES.items():
        args = parse("train", *train_argv(options, 0, "full"))
        assert train_option_problem(args) is None, name
        _check_training_options(args.epochs, args.optimizer, args.label_smoothing, args.weight_decay, args.warmup,
                                args.schedule)
        factor = 1.0
        for key, times in cost.items():
            factor *= times if options.get(key, False) not in (False, 32, 64) else 1.0
        factor *= augment_cost.get(options.get("augment"), 1.0)
        assert options["epochs"] * 42 * factor <= 15 * 60, name
    assert CANDIDATES["baseline"] == {"epochs": 10} and len(CANDIDATES) >= 6


def test_a_candidate_is_the_same_run_whatever_train_full_defaults_to():
    """Runs recorded while `train --full` defaulted to the reference recipe (10 epochs of Adam at 1e-3, cosine,
    nothing else) keep their settings: the baseline is that recipe, and each candidate changes only its options."""
    from cnnlab.sweep import _settings

    old = {"lr": 0.001, "augment": "none", "schedule": "cosine", "label_smoothing": 0.0, "weight_decay": 0.0,
           "warmup": 0.0, "optimizer": "adam", "batch_size": 64, "width": 32, "full": True, "patience": None}
    baseline = _settings(CANDIDATES["baseline"], "full")["train"]
    assert {k: baseline[k] for k in old} == old and baseline["epochs"] == 10
    for name, options in CANDIDATES.items():
        settings = _settings(options, "full")["train"]
        changed = {"warmup_epochs" if k == "warmup" else k for k in old if settings[k] != old[k]}
        assert changed <= set(options), (name, changed)


def test_a_missing_full_set_is_said_before_anything_runs(tmp_path, monkeypatch, capsys):
    import cnnlab.data

    monkeypatch.setattr(cnnlab.data, "locate_fashion_mnist", lambda *a, **k: None)
    with pytest.raises(SweepError):
        run_sweep(tmp_path / "s.json", seeds=[0], source="elsewhere", candidates=ABC, runner=fake_runner(SCORES))
    assert run_sweep_command(parse("sweep", "--out", str(tmp_path / "s.json")), candidates=ABC,
                             runner=fake_runner(SCORES)) == 1
    assert "the full Fashion-MNIST was not found" in capsys.readouterr().err
    assert not (tmp_path / "s.json").exists()


def test_the_sweep_is_a_command_of_python_m_cnnlab(tmp_path, capsys):
    from cnnlab.__main__ import main

    out = tmp_path / "s.json"
    assert main(["sweep", "--candidates", "baseline", "--seeds", "0", "--out", str(out), "--dry-run"]) == 0
    assert ("baseline, seed 0: python -m cnnlab train --full --epochs 10 --lr 0.001 --augment none --schedule cosine "
            "--label-smoothing 0 --weight-decay 0 --seed 0 --quiet") in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert "onecycle-lr3e-3" in capsys.readouterr().out and not out.exists()


def test_a_run_the_train_command_refuses_is_a_failure_with_its_message():
    from cnnlab.sweep import run_train_process

    with pytest.raises(RunFailed, match="exit status 2: --width must be at least 1, got 0"):
        run_train_process(["--width", "0", "--epochs", "1"])


def test_sweeps_run_side_by_side_merge_into_one_table_and_a_conflict_is_refused(tmp_path, capsys):
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    for out, names in ((one, ["a", "b"]), (two, ["b", "c"])):  # "b" seed 0 is in both files
        args = parse("sweep", "--seeds", "0", "1", "--out", str(out), "--data-source", "subset", "--candidates", *names)
        assert run_sweep_command(args, candidates=ABC, runner=fake_runner(SCORES)) == 0
    two_before = two.read_bytes()
    capsys.readouterr()
    merge = parse("sweep", "--seeds", "0", "1", "--out", str(one), "--data-source", "subset", "--merge", str(two))

    def must_not_run(argv):
        raise AssertionError(f"a merge ran {argv}")

    assert run_sweep_command(merge, candidates=ABC, runner=must_not_run) == 0
    out = capsys.readouterr().out
    assert "2 run(s) added" in out  # c's two runs; b's are the same runs, added once
    runs = load_results(one)["runs"]
    assert sorted((r["candidate"], r["seed"]) for r in runs) == [(n, s) for n in "abc" for s in (0, 1)]
    assert "**b** (winner)" in out and "no (1 of 2 over)" in out and two.read_bytes() == two_before
    merged = one.read_bytes()
    assert run_sweep_command(merge, candidates=ABC) == 0 and "0 run(s) added" in capsys.readouterr().out
    assert one.read_bytes() == merged

    # another result for a run the file holds, other settings, a missing file: refused, nothing written
    data = json.loads(two.read_text())
    data["runs"][0]["val_accuracy"] = 0.5
    two.write_text(json.dumps(data))
    assert run_sweep_command(merge, candidates=ABC) == 2
    assert "hold different results for b seed 0" in capsys.readouterr().err
    changed = {**ABC, "c": {"width": 30, "lr": 0.002}}
    data["runs"][0]["val_accuracy"] = 0.92
    two.write_text(json.dumps(data))
    assert run_sweep_command(merge, candidates=changed) == 2
    assert "made with other settings (lr 0.001 there, 0.002 now)" in capsys.readouterr().err
    missing = parse("sweep", "--out", str(one), "--data-source", "subset", "--merge", str(tmp_path / "none.json"))
    assert run_sweep_command(missing, candidates=ABC) == 2
    assert "none.json: no such results file" in capsys.readouterr().err
    assert one.read_bytes() == merged
