"""Keep Python tracebacks away from students: a status line and a guard for widget callbacks."""
from __future__ import annotations

import functools
import html
import logging

import ipywidgets as W

__all__ = ["StatusLine", "guarded", "show_error"]

log = logging.getLogger("widgets")

_COLORS = {"info": "#444", "ok": "#1a7f37", "warn": "#9a6700", "error": "#cf222e"}


class StatusLine:
    """A one-line message under a widget: what happened, in words a student understands."""

    def __init__(self):
        self.widget = W.HTML(value="")
        self.text = ""
        self.kind = "info"

    def show(self, text: str, kind: str = "info") -> None:
        if kind not in _COLORS:
            raise ValueError(f"kind must be one of {sorted(_COLORS)}, got {kind!r}")
        self.text, self.kind = text, kind
        self.widget.value = f'<span style="color:{_COLORS[kind]}">{html.escape(text)}</span>'

    def clear(self) -> None:
        self.show("")


def show_error(status: StatusLine, error: BaseException) -> None:
    """Show a failure on `status` in the words every widget uses (e.g. a ChunkRunner's on_error)."""
    status.show(f"Something went wrong: {error}", "error")


def guarded(status: StatusLine):
    """Decorate a widget callback so that an exception becomes a message on `status`, not a traceback.

    The full traceback still goes to the `widgets` logger for developers.
    """

    def decorate(callback):
        @functools.wraps(callback)
        def wrapper(*args, **kwargs):
            try:
                return callback(*args, **kwargs)
            except Exception as error:  # noqa: BLE001 - every failure must reach the student as text
                log.exception("widget callback %s failed", callback.__name__)
                show_error(status, error)
                return None

        return wrapper

    return decorate
