"""Thread control for NumPy's BLAS (and PyTorch): how many threads a benchmark or a small training run uses.

- `default_threads()`: the cores this process may run on;
- `limit_threads(n, torch)`: n threads for NumPy's BLAS (threadpoolctl, or the *_NUM_THREADS variables
  read when NumPy loaded) and for PyTorch, restored afterwards: what `python -m cnnlab bench` uses;
- `one_blas_thread()`: NumPy's BLAS on one thread, from now on or inside a `with` block: what the
  lessons and widgets that train small networks use (two BLAS threads that wait for each other are
  much slower than one for their small matrix products on a busy 2-core machine).

threadpoolctl is optional: without it, `limit_threads` reports the environment variables and
`one_blas_thread` changes nothing.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import threading

__all__ = ["BLAS_ENV_VARS", "default_threads", "limit_threads", "one_blas_thread"]

BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def default_threads() -> int:
    """The number of CPU cores this process may run on (its default thread count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def limit_threads(n, torch):
    """Limit NumPy's BLAS and PyTorch (a module, or None) to n threads for the duration.

    Yields a description: {"requested", "torch" (its thread count, or None), "numpy_blas" (the BLAS
    thread count, None when unknown), "numpy_blas_control" (how it was set)}.
    """
    info = {"requested": n, "torch": None, "numpy_blas": None, "numpy_blas_control": None}
    limiter = None
    try:
        threadpoolctl = importlib.import_module("threadpoolctl")
    except ImportError:
        threadpoolctl = None
    if threadpoolctl is not None:
        limiter = threadpoolctl.threadpool_limits(limits=n, user_api="blas")
        blas = [lib.get("num_threads") for lib in threadpoolctl.threadpool_info() if lib.get("user_api") == "blas"]
        info["numpy_blas"] = blas[0] if blas else None
        info["numpy_blas_control"] = "threadpoolctl"
    else:
        values = {v: os.environ[v] for v in BLAS_ENV_VARS if v in os.environ}
        first = next(iter(values.values()), None)
        info["numpy_blas"] = int(first) if first is not None and first.isdigit() else None
        info["numpy_blas_control"] = ("environment " + ", ".join(f"{k}={v}" for k, v in values.items())
                                      if values else "none (threadpoolctl not installed, no *_NUM_THREADS set)")
    torch_before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
        info["torch"] = torch.get_num_threads()
    try:
        yield info
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        if torch is not None:
            torch.set_num_threads(torch_before)


class one_blas_thread:  # noqa: N801 - used like a function (and like threadpoolctl's threadpool_limits)
    """Limit NumPy's BLAS to one thread from now on; usable as a context manager to limit it only inside.

    The tiny network's matrix products are small, and two BLAS threads that wait for each other are much
    slower than one on a busy 2-core machine (a 2000 x 196 by 196 x 10 product: 33 ms on two threads,
    1 ms on one, measured while other work ran). Needs threadpoolctl, which is optional: without it
    nothing changes.

    The limit is one setting of the whole process, shared by every thread, so the calls are counted: the
    first one sets it, and the original thread counts come back when the last `with` block has ended (a
    call not used as a context manager counts for ever). Blocks that overlap in two threads, ending in
    any order, therefore never leave BLAS limited after both have ended, nor unlimited while one runs.
    threadpoolctl is designed for BLAS called from the main thread: with NumPy's OpenBLAS (pthreads, 0.3.31)
    a limit set from a worker thread was seen to be ignored once the main thread had set one. That costs
    speed only; the numbers computed are the same.
    """

    _lock = threading.Lock()
    _holders = 0  # calls whose limit is in force (a `with` block not yet ended, or a call kept for ever)
    _limiter = None  # threadpoolctl's limiter of the first holder: it restores the original counts

    def __init__(self):
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - depends on the environment
            self._held = False
            return
        cls = type(self)
        with cls._lock:
            if cls._holders == 0:
                cls._limiter = threadpool_limits(limits=1, user_api="blas")
            cls._holders += 1
        self._held = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if not self._held:
            return
        cls, self._held = type(self), False
        with cls._lock:
            cls._holders -= 1
            if cls._holders == 0:
                cls._limiter.restore_original_limits()
                cls._limiter = None
