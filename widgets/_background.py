"""Background work for the widgets: `ChunkRunner` calls a function again and again, in a daemon thread,
until it says it is done or someone presses Stop, so a widget can train while its buttons stay responsive.

Every widget that trains in the background (the training dashboard, the CNN race, the regularisation
explorer) uses this one loop; `run()` is the same loop in the calling thread, for tests and scripts.
An error in the work never reaches the notebook as a traceback: it is logged and handed to `on_error`
(which shows it on the widget's status line, e.g. `functools.partial(show_error, status)`).
"""
from __future__ import annotations

import logging
import threading

__all__ = ["ChunkRunner"]

log = logging.getLogger("widgets")


class ChunkRunner:
    """Run `work()` again and again until it returns False or `stop()` is called.

    Inputs:
    - work(): does one chunk of work (e.g. a few training steps); returns True to go on, False when done.
    - on_done(): called when the loop ends, however it ends (done, stopped or failed), in the loop's
      thread; an error in it is logged, never raised.
    - on_error(error): called (in the loop's thread, before on_done) if `work` raised; the error is
      logged and kept in `.error`, never re-raised.

    `start()` runs the loop in a daemon thread and returns False (doing nothing) while a previous loop is
    still running; `run()` runs it in the calling thread. `stop()` asks the loop to end after the current
    chunk without waiting; `join()` waits for the thread.
    """

    def __init__(self, work, on_done=None, on_error=None, name: str = "cnnlab-widget-training"):
        self.work, self.on_done, self.on_error, self.name = work, on_done, on_error, name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def running(self) -> bool:
        """True while the background thread is alive (its on_done included)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> bool:
        """Start the loop in a daemon thread; False (and nothing happens) while one is still running."""
        if self.running:
            return False
        self._reset()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return True

    def run(self) -> None:
        """The same loop in the calling thread: returns when work() is done (or has failed)."""
        self._reset()
        self._loop()

    def stop(self) -> None:
        """Ask the loop to end after the current chunk (does not wait; see `join`)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (at most `timeout` seconds); True when it has ended. Called from the
        loop's own thread (e.g. from on_done) it returns at once."""
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        return not self.running

    def _reset(self) -> None:
        self._stop.clear()
        self.error = None

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.work():
                    break
        except Exception as error:  # noqa: BLE001 - a widget shows it as text
            log.exception("background work %s failed", self.name)
            self.error = error
            if self.on_error is not None:
                try:
                    self.on_error(error)
                except Exception:  # noqa: BLE001
                    log.exception("on_error callback failed")
        finally:
            if self.on_done is not None:
                try:
                    self.on_done()
                except Exception:  # noqa: BLE001
                    log.exception("on_done callback failed")
