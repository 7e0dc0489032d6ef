"""Fault-injection helpers: run work in a forked child and kill it with SIGKILL, at a random
moment or at an exact point of mmcoop's own work (the n-th call of a function); a disk that
fills up (:class:`FullDisk`).

Importable as ``_faults`` (``tests/`` is on ``sys.path``, see ``conftest.py``).
"""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import signal
import traceback
import types
import warnings
from typing import Any, Callable

import pytest

CTX = mp.get_context("fork")


def _child(work: Callable[[], object]) -> None:
    try:
        warnings.simplefilter("ignore")
        work()
    except BaseException:  # noqa: BLE001 - report and fail the child
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def fork_safe_tqdm(monkeypatch: pytest.MonkeyPatch) -> None:
    """No helper threads that hold locks a forked child would inherit locked (tqdm's monitor thread)."""
    import tqdm

    if tqdm.tqdm.monitor is not None:  # started by an earlier test's progress bar
        tqdm.tqdm.monitor.exit()
        tqdm.tqdm.monitor = None
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)


def run_forked(work: Callable[[], object], kill_after: float | None = None, timeout: float = 120) -> bool:
    """Run ``work`` in a forked child; SIGKILL it after ``kill_after`` s. Returns whether a live child was killed.

    A child that exits by itself must exit 0 (else the test fails; its traceback is in the captured output).
    """
    p = CTX.Process(target=_child, args=(work,))
    p.start()
    killed = False
    if kill_after is not None:
        p.join(kill_after)
        if p.is_alive():
            os.kill(p.pid, signal.SIGKILL)
            killed = True
    p.join(timeout)
    if p.is_alive():  # never leave a stuck child behind
        os.kill(p.pid, signal.SIGKILL)
        p.join()
        pytest.fail(f"a child did not finish within {timeout} s")
    killed = killed or p.exitcode == -signal.SIGKILL
    assert killed or p.exitcode == 0, f"the child failed (exit {p.exitcode}); its traceback is in the captured output"
    return killed


def kill_at_call(module: Any, name: str, n: int, after: bool = True) -> None:
    """In this (child) process: SIGKILL itself at the ``n``-th call (1-based) of ``module.name``,
    just after the call returns (``after``) or just before it starts."""
    real = getattr(module, name)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == n and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        out = real(*args, **kwargs)
        if calls[0] == n and after:
            os.kill(os.getpid(), signal.SIGKILL)
        return out

    setattr(module, name, wrapper)


class FullDisk:
    """``os`` as ``mmcoop.utils.io`` sees it, except that files opened by fd refuse writes above ``limit`` bytes
    (a disk that fills up: ``monkeypatch.setattr(mmcoop.utils.io, "os", FullDisk(limit))``)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __getattr__(self, name):
        return getattr(os, name)

    def fdopen(self, fd, mode="r", *a, **k):
        fh = os.fdopen(fd, mode, *a, **k)
        limit = self.limit

        class Full(types.SimpleNamespace):
            def write(self, data):
                if len(data) > limit:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return fh.write(data)

            def __getattr__(self, n):
                return getattr(fh, n)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                fh.close()

        return Full()
