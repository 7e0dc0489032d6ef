"""A process pool that dies with its parent: the workers of ``mmcoop data prepare``.

`run_pool` maps a picklable function over items in spawned worker processes
(``concurrent.futures.ProcessPoolExecutor`` semantics: results as they complete, a
crashed pool restarted for the rest) and adds what the executor lacks for a long
command-line job:

- **the workers exit when the parent dies**, even by ``kill -9``: each worker watches its
  parent's process sentinel (a pipe that closes when the parent exits) from a daemon
  thread and leaves with ``os._exit`` when it closes; the multiprocessing resource
  tracker exits with them (it stops when the last process holding its pipe is gone);
- **Ctrl-C gives one message, no worker tracebacks**: workers are started with SIGINT
  ignored (set while they are spawned, inherited through ``exec``; Python keeps an
  ignored SIGINT ignored), so only the parent sees the interrupt; it cancels what has
  not started, stops the workers and re-raises ``KeyboardInterrupt`` for the caller to
  report.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


def _exit_with_parent() -> None:
    """Block until the parent process is gone, then end this process at once."""
    parent = mp.parent_process()
    if parent is not None and parent.sentinel is not None:
        from multiprocessing.connection import wait

        wait([parent.sentinel])
    else:  # no sentinel (not a multiprocessing child): poll the parent pid
        import time

        ppid = os.getppid()
        while os.getppid() == ppid:
            time.sleep(0.5)
    os._exit(1)


def _worker_init() -> None:
    """Worker start-up: one torch thread, SIGINT ignored, a watcher of the parent's life."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, name="mmcoop-parent-watch", daemon=True).start()


def _stop(ex: ProcessPoolExecutor) -> None:
    """Cancel queued work and terminate the workers of ``ex`` (after Ctrl-C)."""
    procs = list(getattr(ex, "_processes", {}).values())  # the executor has no public handle on its workers
    ex.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


def run_pool(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    record: Callable[[T, R | None, str | None], None],
    retries: int = 2,
    crash_message: str = "worker process died; rerun to retry",
) -> None:
    """Call ``fn(item)`` for every item in ``workers`` spawned processes; ``record`` each outcome as it arrives.

    Args:
        fn: a picklable (module-level) function of one item.
        items: the work (picklable).
        workers: processes (at most ``len(items)`` are started).
        record: ``record(item, result, None)`` on success, ``record(item, None, crash_message)``
            for items still pending after ``retries`` pool crashes.
        retries: pool restarts after a worker crash (a segfault in a decoder, the OOM killer).

    Raises:
        KeyboardInterrupt: Ctrl-C in the parent; the workers are stopped first.

    Example:
        >>> out = {}
        >>> run_pool(abs, [-1, -2], 2, lambda i, r, e: out.update({i: r}))  # doctest: +SKIP
        >>> out
        {-1: 1, -2: 2}
    """
    remaining = list(range(len(items)))  # positions: items need not be hashable
    for attempt in range(retries + 1):
        done: set[int] = set()
        ex = ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(remaining))),
            mp_context=mp.get_context("spawn"),
            initializer=_worker_init,
        )
        try:
            previous = signal.getsignal(signal.SIGINT)
            in_main = threading.current_thread() is threading.main_thread()
            if in_main:  # workers spawned now inherit an ignored SIGINT
                signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                futs: dict[Future, int] = {ex.submit(fn, items[i]): i for i in remaining}
            finally:
                if in_main:
                    signal.signal(signal.SIGINT, previous)
            for fut in as_completed(futs):
                i = futs[fut]
                result = fut.result()
                done.add(i)
                record(items[i], result, None)
            ex.shutdown(wait=True)
            return
        except BrokenProcessPool:
            ex.shutdown(wait=False, cancel_futures=True)
            remaining = [i for i in remaining if i not in done]
            if attempt == retries:
                for i in remaining:
                    record(items[i], None, crash_message)
        except BaseException:
            _stop(ex)
            raise
