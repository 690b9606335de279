"""The widgets' one background loop, `ChunkRunner`: runs until done or stopped, one loop at a time, errors
reach `on_error` (and so the status line) and never the caller, `run()` is the same loop in this thread."""
import functools
import logging
import threading

from widgets._background import ChunkRunner
from widgets._guard import StatusLine, show_error


def counting(limit):
    """work() that returns True `limit - 1` times, then False; `calls` lists the threads it ran in."""
    calls = []

    def work():
        calls.append(threading.current_thread())
        return len(calls) < limit

    return work, calls


def wait_for(condition, timeout=10.0):
    event = threading.Event()
    for _ in range(int(timeout / 0.005)):
        if condition():
            return True
        event.wait(0.005)
    return condition()


def test_it_runs_until_work_says_done_then_calls_on_done_in_its_thread():
    work, calls = counting(5)
    done = []
    runner = ChunkRunner(work, on_done=lambda: done.append(threading.current_thread()))
    assert runner.start() and runner.join(timeout=10)
    assert len(calls) == 5 and len(done) == 1
    assert set(calls) == set(done) and done[0] is not threading.main_thread()
    assert not runner.running and runner.error is None


def test_stop_ends_an_endless_loop_and_a_second_start_is_refused_while_it_runs():
    first, release = threading.Event(), threading.Event()
    calls, done = [], []

    def work():
        calls.append(1)
        first.set()
        release.wait(10)
        return True  # never done by itself

    runner = ChunkRunner(work, on_done=lambda: done.append(True))
    assert runner.start()
    assert first.wait(10) and runner.running
    assert not runner.start(), "one loop at a time"
    runner.stop()
    release.set()
    assert runner.join(timeout=10) and not runner.running
    assert len(calls) == 1, "stop is heard after the current chunk"
    assert done == [True]
    # a stopped runner starts again: stop() does not stick to the next loop
    release.clear()
    calls.clear()
    assert runner.start() and wait_for(lambda: len(calls) == 1)
    runner.stop()
    release.set()
    assert runner.join(timeout=10) and done == [True, True]


def test_an_error_in_work_reaches_on_error_and_the_status_line_never_the_caller(caplog):
    status, order = StatusLine(), []
    report = functools.partial(show_error, status)

    def work():
        order.append("work")
        return 1 / 0

    runner = ChunkRunner(work, on_done=lambda: order.append("done"),
                         on_error=lambda error: (order.append(type(error).__name__), report(error)))
    with caplog.at_level(logging.ERROR, logger="widgets"):
        assert runner.start() and runner.join(timeout=10)
    assert order == ["work", "ZeroDivisionError", "done"]
    assert isinstance(runner.error, ZeroDivisionError)
    assert status.kind == "error" and status.text == "Something went wrong: division by zero"
    assert "Traceback" not in status.text
    assert any("ZeroDivisionError" in (r.exc_text or "") for r in caplog.records), "the traceback is logged"
    work_ok, _ = counting(1)
    runner.work = work_ok
    assert runner.start() and runner.join(timeout=10) and runner.error is None, "a new loop forgets the error"


def test_run_is_the_same_loop_in_the_calling_thread():
    work, calls = counting(3)
    done = []
    runner = ChunkRunner(work, on_done=lambda: done.append(True))
    runner.stop()  # a stop asked before the loop does not carry over
    runner.run()
    assert calls == [threading.current_thread()] * 3 and done == [True] and not runner.running
    status = StatusLine()
    failing = ChunkRunner(lambda: [][0], on_error=functools.partial(show_error, status))
    failing.run()  # returns: the error is shown, not raised
    assert isinstance(failing.error, IndexError) and status.kind == "error" and "out of range" in status.text


def test_failing_callbacks_are_logged_not_raised_and_join_from_on_done_returns(caplog):
    joined = []

    def on_done():
        joined.append(runner.join(timeout=1))  # from the loop's own thread: must not wait for itself
        raise RuntimeError("on_done broke")

    runner = ChunkRunner(lambda: 1 / 0, on_done=on_done, on_error=lambda error: [][0])
    with caplog.at_level(logging.ERROR, logger="widgets"):
        assert runner.start() and runner.join(timeout=10)
    assert joined == [False], "join() from on_done returns at once (the thread is still alive then)"
    messages = [r.getMessage() for r in caplog.records]
    assert "on_error callback failed" in messages and "on_done callback failed" in messages


def test_join_with_a_timeout_says_whether_the_thread_ended():
    release = threading.Event()
    runner = ChunkRunner(lambda: not release.wait(10))
    runner.start()
    assert runner.join(timeout=0.05) is False and runner.running
    release.set()
    assert runner.join(timeout=10) is True
