"""Helpers shared by the widget tests (not a test module)."""
import numpy as np


def changed(before, after) -> bool:
    """True when any entry of two snapshots of a figure's artists differs (arrays by shape and values,
    NaN equal to NaN; strings and tuples by value)."""
    def differ(a, b):
        if isinstance(a, str) or isinstance(b, str):
            return a != b
        return np.shape(a) != np.shape(b) or not np.array_equal(a, b, equal_nan=True)

    return len(before) != len(after) or any(differ(a, b) for a, b in zip(before, after))


def drive_controls(widget, controls, snapshot, after=None) -> None:
    """Set every (control, values) pair in turn and assert that the widget redrew, changed its figure
    (compared through `snapshot(widget)`) and showed no error in its status line; then call
    `after(control, value, draws)` (draws: the redraw count before the change) for the test's own checks."""
    for control, values in controls:
        for value in values:
            if control.value == value:
                continue
            before, draws = snapshot(widget), widget.view.draws
            control.value = value
            assert widget.status.kind != "error", (control.description, value, widget.status.text)
            assert widget.view.draws > draws, (control.description, value)
            assert changed(before, snapshot(widget)), (control.description, value)
            if after is not None:
                after(control, value, draws)
