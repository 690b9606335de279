"""`python -m widgets student-edition [OUT]`: the course without solution cells, with its self-checks, in OUT
(student-edition/).
`python -m widgets assignments [OUT]`: the nbgrader course folder OUT (assignments/): every lesson's source and
its release made by `nbgrader generate_assignment` (needs the instructor extra: pip install -e '.[instructor]').
A new, empty or earlier folder of the same command only (see widgets.edition, widgets.assignments); a refusal
is a one-line error, exit 1.

`python -m widgets bench [--repeats N] [--widget NAME ...] [--json] [--tiny]`: every control of every
widget driven headless, median and worst latency per control (see widgets.bench).
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("MPLBACKEND", "Agg")


def _assignments(out: str) -> None:
    from pathlib import Path

    from widgets.assignments import write_assignments

    course = Path(__file__).resolve().parents[1] / "course"
    try:
        points = write_assignments(course, out)
    except (ValueError, OSError, ImportError, RuntimeError) as error:
        # refused, unwritable or no nbgrader: one line, no traceback; nbgrader failed: the errors it reported
        raise SystemExit(f"assignments: {error}") from None
    for name, total in points.items():
        print(f"{name}: {total} point{'' if total == 1 else 's'} of autograded self-checks")
    print(f"wrote {len(points)} assignments to {out}/ (source/ and nbgrader's release/); grade in {out}/ with nbgrader")


def _student_edition(out: str) -> None:
    from pathlib import Path

    from widgets.edition import write_student_edition

    course = Path(__file__).resolve().parents[1] / "course"
    try:
        report = write_student_edition(course, out)
    except (ValueError, OSError) as error:  # a refused or unwritable folder: one line, no traceback
        raise SystemExit(f"student-edition: {error}") from None
    for name, removed in report.items():
        print(f"{name}: {removed} solution cells removed")
    checks = sorted((course / "checks").glob("*.py"))
    print(f"wrote {len(report)} notebooks" + (f" and their self-checks (checks/, {len(checks)} files)" if checks else "")
          + f" to {out}/")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m widgets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["bench", "student-edition", "assignments"])
    parser.add_argument("out", nargs="?", default=None,
                        help="student-edition, assignments: the folder to write (default: its name)")
    parser.add_argument("--repeats", type=int, default=5, help="bench: times each control is moved")
    parser.add_argument("--widget", action="append", help="bench: only this widget (repeatable)")
    parser.add_argument("--json", action="store_true", help="bench: print the results as JSON")
    parser.add_argument("--tiny", action="store_true", help="bench: small data and runs (a quick check)")
    args = parser.parse_args(argv)
    if args.command == "assignments":
        return _assignments(args.out or "assignments")
    if args.command == "student-edition":
        return _student_edition(args.out or "student-edition")
    from widgets.bench import main as bench_main

    if args.repeats < 1:
        raise SystemExit(f"bench: --repeats must be at least 1, got {args.repeats}")
    try:
        bench_main(args.repeats, args.widget, args.json, args.tiny)
    except ValueError as error:  # an unknown widget name: one line, no traceback
        raise SystemExit(f"bench: {error}") from None


if __name__ == "__main__":
    main()
