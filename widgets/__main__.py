"""`python -m widgets bench`: how long the widgets take to react (median of repeated updates).
`python -m widgets student-edition [OUT]`: the course without solution cells, with its self-checks, in OUT
(student-edition/).
`python -m widgets assignments [OUT]`: the nbgrader course folder OUT (assignments/): every lesson's source and
its release made by `nbgrader generate_assignment` (needs the instructor extra: pip install -e '.[instructor]').
A new, empty or earlier folder of the same command only (see widgets.edition, widgets.assignments); a refusal
is a one-line error, exit 1.

Measures, for the optimizer race (7 optimizers x 300 steps on the saddle): the race itself
(`RaceModel.update`), and recompute + redraw (the figure rendered once with Agg: what ipympl does in the
kernel before it sends the picture to the browser, and what the PNG fallback does).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def bench(repeats: int = 15) -> dict:
    from widgets.optimizer_race import optimizer_race

    race = optimizer_race(steps=300, start=(-1.0, 1e-3))

    def redraw():  # what a slider change costs: the race, then the figure rendered once (PNG)
        race.update()

    return {"race_model_ms": _median_ms(race.model.update, repeats),
            "race_recompute_and_redraw_ms": _median_ms(redraw, repeats),
            "load_average": os.getloadavg()[0]}


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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m widgets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["bench", "student-edition", "assignments"])
    parser.add_argument("out", nargs="?", default=None,
                        help="student-edition, assignments: the folder to write (default: its name)")
    parser.add_argument("--repeats", type=int, default=15, help="bench: updates to time")
    args = parser.parse_args(argv)
    if args.command == "assignments":
        return _assignments(args.out or "assignments")
    args.out = args.out or "student-edition"
    if args.command == "student-edition":
        from pathlib import Path

        from widgets.edition import write_student_edition

        course = Path(__file__).resolve().parents[1] / "course"
        try:
            report = write_student_edition(course, args.out)
        except (ValueError, OSError) as error:  # a refused or unwritable folder: one line, no traceback
            raise SystemExit(f"student-edition: {error}") from None
        for name, removed in report.items():
            print(f"{name}: {removed} solution cells removed")
        checks = sorted((course / "checks").glob("*.py"))
        print(f"wrote {len(report)} notebooks" + (f" and their self-checks (checks/, {len(checks)} files)" if checks else "")
              + f" to {args.out}/")
        return
    for key, value in bench(args.repeats).items():
        print(f"{key:32s} {value:8.1f}")


if __name__ == "__main__":
    main()
