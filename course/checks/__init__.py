"""Self-checks for exercises: say what is wrong in one line, and say so loudly when all is right.

A failed check raises `CheckFailed`, an AssertionError that IPython shows as its one-line message
(no traceback), and that nbval counts as a failure, so CI notices a wrong solution.
"""
from __future__ import annotations

import numpy as np

__all__ = ["CheckFailed", "check_array", "passed", "run_student", "student_array"]


class CheckFailed(AssertionError):
    """An exercise answer that is not right yet; the message says why."""

    def _render_traceback_(self):  # IPython uses this instead of a traceback
        return [f"\u2717 Not yet: {self}"]


def passed(message: str) -> None:
    print(f"\u2713 {message}")


def student_array(name: str, value) -> np.ndarray:
    """The student's answer `value` as a float64 copy; CheckFailed if it is still `...`/None or not numeric."""
    if value is Ellipsis or value is None:
        hint = " (did you forget `return`?)" if value is None else ""
        raise CheckFailed(f"{name} is still {value!r}{hint}: replace the `...` with your code and run the cell again")
    try:
        return np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be a numeric array, got {type(value).__name__}") from None


def run_student(call, what: str):
    """Run the student's code; an exception becomes a one-line CheckFailed."""
    try:
        return call()
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001 - the student's code: report it in one line
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}") from None


def check_array(name: str, value, expected, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise CheckFailed unless `value` is an array like `expected` (shape, then values)."""
    if value is Ellipsis or value is None:
        raise CheckFailed(f"`{name}` is still {value!r}: replace it with your code and run the cell again")
    try:
        got = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise CheckFailed(f"`{name}` should be a numeric array, got {type(value).__name__}") from None
    expected = np.asarray(expected, dtype=float)
    if got.shape != expected.shape:
        raise CheckFailed(f"`{name}` should have shape {expected.shape}, got {got.shape}")
    if not np.all(np.isfinite(got)):
        raise CheckFailed(f"`{name}` contains NaN or infinity at {np.argwhere(~np.isfinite(got))[0].tolist()}")
    close = np.isclose(got, expected, rtol=rtol, atol=atol)
    if not close.all():
        where = tuple(np.argwhere(~close)[0].tolist())
        raise CheckFailed(f"`{name}`{list(where)} is {got[where]:.6g} but should be {expected[where]:.6g} "
                          f"({(~close).sum()} of {close.size} entries differ)")
