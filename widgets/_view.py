"""What every widget's view repeats, written once: a status line, guarded callbacks, a re-entrancy guard
for controls the view moves itself, and display in a notebook cell.

A widget is a plain model class (tests drive it without a browser), a view, and a factory function. The
view subclasses `WidgetView`:

    class Explorer(WidgetView):
        def __init__(self, model):
            super().__init__()                          # .status, the status line
            self.model = model
            self.slider = W.IntSlider(...)
            self.observe(self._on_change, self.slider)  # guarded; quiet while the view syncs controls
            self.widget = W.VBox([self.slider, self.view.widget, self.status.widget])

        def _on_change(self, change):
            ...
            with self.syncing():                        # move other controls without re-entering
                self.other.value = self.model.value

Displaying the view displays `.widget`; a failing callback shows "Something went wrong: ..." on the
status line (the traceback goes to the `widgets` logger), never a traceback in the notebook.

A burst of changes from the browser (a slider dragged, a Play button ticking faster than the figure
redraws) is coalesced: in a kernel, a change that comes from the browser waits `COALESCE_SECONDS` and
only the latest change of a control reaches the callback, so the view redraws once for the burst
instead of falling behind. A change made in Python (a notebook cell, a test, the view itself) calls
the callback at once, so code that sets `.value` and then reads the model sees the update.
"""
from __future__ import annotations

import asyncio
import contextlib

from widgets._guard import StatusLine, guarded, show_error

__all__ = ["WidgetView", "COALESCE_SECONDS", "running_loop"]

COALESCE_SECONDS = 0.03  # how long a change from the browser waits for a later one of the same control


def _from_browser(change) -> bool:
    """True when ipywidgets is applying a state the browser sent (the trait is locked while it does)."""
    owner = change.get("owner") if isinstance(change, dict) else getattr(change, "owner", None)
    name = change.get("name") if isinstance(change, dict) else getattr(change, "name", None)
    return name in (getattr(owner, "_property_lock", None) or {})


def running_loop():
    """The running asyncio loop (in a kernel), else None (plain Python, pytest)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class WidgetView:
    """Base of the widgets' views: `.status` (a StatusLine), `guard`, `observe`, `syncing`, `show_error`.

    A subclass sets `.widget` (its ipywidgets layout, with `self.status.widget` in it) in its __init__.
    """

    widget = None  # the layout, set by the subclass

    def __init__(self):
        self.status = StatusLine()
        self._syncing = 0  # depth of `with self.syncing()` blocks

    def guard(self, callback):
        """`callback` with every exception shown on the status line instead of raised."""
        return guarded(self.status)(callback)

    def observe(self, callback, *controls, names: str = "value") -> None:
        """Call `callback(change)` (guarded) when one of `controls` changes, except while the view itself
        moves controls inside `with self.syncing():`."""

        def unless_syncing(change):
            if not self._syncing:
                return callback(change)
            return None

        unless_syncing.__name__ = getattr(callback, "__name__", "callback")  # for the log of a failure
        wrapped = self._coalescing(self.guard(unless_syncing))
        for control in controls:
            control.observe(wrapped, names=names)

    @staticmethod
    def _coalescing(callback):
        """`callback`, with a burst of browser changes of one control reduced to its latest (see above)."""
        pending = {}  # (id of the control, trait name) -> latest change not yet handed to the callback

        def fire(key):
            change = pending.pop(key, None)
            if change is not None:
                callback(change)

        def on_change(change):
            loop = running_loop()
            if loop is None or not _from_browser(change):
                return callback(change)
            key = (id(change["owner"]), change["name"])
            if key not in pending:
                loop.call_later(COALESCE_SECONDS, fire, key)
            pending[key] = change
            return None

        return on_change

    @contextlib.contextmanager
    def syncing(self):
        """A block in which the view sets its own controls from the model: callbacks registered with
        `observe` do not fire (no second update, no loop)."""
        self._syncing += 1
        try:
            yield
        finally:
            self._syncing -= 1

    def push_to_model(self, **controls) -> None:
        """Copy each control's value into the model's attribute of the same name, then `model.update()`:
        what the view of a model with plain settings does when any of its controls changes."""
        for name, control in controls.items():
            setattr(self.model, name, control.value)
        self.model.update()

    def show_error(self, error: BaseException) -> None:
        """Show a failure on the status line in the words every widget uses."""
        show_error(self.status, error)

    def _repr_mimebundle_(self, **kwargs):
        if self.widget is None:
            raise TypeError(f"{type(self).__name__} has no .widget to display: its __init__ must set one")
        return self.widget._repr_mimebundle_(**kwargs)
