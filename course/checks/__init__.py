"""Self-checks for the exercises: say what is wrong in one line, and say so loudly when all is right.

One module per lesson (`checks.conv_layers` for lesson 04, ...); this package holds the helpers they
share. A failed check raises `CheckFailed`, an AssertionError that IPython shows as its one-line message
(no traceback), and that nbval counts as a failure, so CI notices a wrong solution.

The checks are course content: they live in course/checks/, beside the notebooks, whose kernels run in
course/ and so import them as `checks` (the student edition ships the folder with the notebooks).
"""
from __future__ import annotations

import ast
import inspect
import textwrap
from contextlib import nullcontext

import numpy as np

__all__ = ["CheckFailed", "check_array", "has_placeholder", "name_mistake", "passed", "placeholder", "run_student", "same",
           "student_array"]


class CheckFailed(AssertionError):
    """An exercise answer that is not right yet; the message says why."""

    def _render_traceback_(self):  # IPython uses this instead of a traceback
        return [f"\u2717 Not yet: {self}"]


def passed(message: str) -> None:
    print(f"\u2713 {message}")


def placeholder(name: str, value, *, returned: bool = True) -> None:
    """CheckFailed if the student's `value` is still the exercise's `...` (or None).

    Inputs:
    - name: how the message names the value, as it should appear (e.g. "`dW`" or "f(x)").
    - returned: the value is what a function returned, so None suggests a missing `return`.
    """
    if value is Ellipsis or value is None:
        hint = " (did you forget `return`?)" if value is None and returned else ""
        raise CheckFailed(f"{name} is still {value!r}{hint}: replace the `...` with your code and run the cell again")


def student_array(name: str, value, shape: tuple | None = None, *, returned: bool = True) -> np.ndarray:
    """The student's answer `value` as a float64 copy.

    CheckFailed if it is still `...`/None (see `placeholder`), not numeric, or (when `shape` is given)
    not of that shape. `name` appears in the messages as given.
    """
    placeholder(name, value, returned=returned)
    try:
        got = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name} should be a numeric array, got {type(value).__name__}") from None
    if shape is not None and got.shape != shape:
        raise CheckFailed(f"{name} should have shape {shape}, got {got.shape}")
    return got


def run_student(call, what: str, *, hint: tuple[tuple[str, ...], str] | None = None, fn=None,
                quiet: bool = False):
    """Run the student's code, `call()`; an exception becomes a one-line CheckFailed "{what} raised ...".

    Inputs:
    - hint: (words, text): `text` is appended to the message when the error's message contains one of `words`.
    - fn: the student's function; if it raised and its code still holds a `...`, the message says so instead.
    - quiet: NumPy's floating-point warnings silenced (an overflow shows up as inf/NaN, which the check names).
    A CheckFailed raised inside (a helper the student called) passes unchanged.
    """
    try:
        with np.errstate(all="ignore") if quiet else nullcontext():
            return call()
    except CheckFailed:
        raise
    except Exception as error:  # noqa: BLE001 - the student's code: report it in one line
        if fn is not None and has_placeholder(fn):
            raise CheckFailed(f"{what} still contains `...`: replace every placeholder with your code and run "
                              f"the cell again") from None
        words, text = hint or ((), "")
        extra = text if any(word in str(error) for word in words) else ""
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}{extra}") from None


def has_placeholder(fn) -> bool:
    """Whether the function still holds the exercise's `...`: as a value (`x = ...`, `return ...`) or as a
    statement of its own (a body that is only `...`, which the compiler drops, so the source is read:
    IPython keeps the source of a cell's functions). `...` as an index (`p.grad[...] = 0`) is no placeholder."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):   # no source: the compiled constants are all there is
        code = getattr(fn, "__code__", None)
        return code is not None and any(c is Ellipsis for c in code.co_consts)
    indices = [node.slice for node in ast.walk(tree) if isinstance(node, ast.Subscript)]
    as_index = {id(part) for index in indices for part in ([index] + getattr(index, "elts", []))}
    return any(isinstance(node, ast.Constant) and node.value is Ellipsis and id(node) not in as_index
               for node in ast.walk(tree))


def same(a, b, rtol: float, atol: float, equal_nan: bool = False) -> bool:
    """Whether a and b have the same shape and values within the tolerances (to recognise a named mistake)."""
    return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


def name_mistake(got, mistakes, like, *, right=None, prefix: str = "") -> None:
    """Raise CheckFailed(prefix + message) for the first (wrong, message) of `mistakes` that `got` is like.

    Inputs:
    - mistakes: (wrong answer, message) pairs, each wrong answer computed the mistaken way; None is skipped.
    - like(a, b) -> bool: the comparison, with the check's tolerances (e.g. a partial of `same`).
    - right: the right answer; a mistake that gives it on these inputs is no mistake here and is skipped.
    """
    for wrong, message in mistakes:
        if wrong is None or (right is not None and like(wrong, right)):
            continue
        if like(got, wrong):
            raise CheckFailed(prefix + message)


def check_array(name: str, value, expected, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Raise CheckFailed unless `value` is an array like `expected` (shape, then values)."""
    got = student_array(f"`{name}`", value, returned=False)
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
