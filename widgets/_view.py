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
"""
from __future__ import annotations

import contextlib

from widgets._guard import StatusLine, guarded, show_error

__all__ = ["WidgetView"]


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
        wrapped = self.guard(unless_syncing)
        for control in controls:
            control.observe(wrapped, names=names)

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
