"""An advisory, non-blocking, per-folder lock that names its holder.

`FolderLock` takes an exclusive ``flock`` on ``<folder>/.mmcoop.lock`` and
writes the holder (pid, host, start time, command) into that file. A second process
asking for the same lock gets a `RunDirError` naming the holder
at once (no waiting). The operating system drops the lock when the holder exits,
however it exits (``kill -9`` included), so a stale lock file never blocks anyone.
The file is never deleted (deleting a lock file lets two processes lock two different
files of the same name).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from mmcoop.errors import RunDirError
from mmcoop.utils.io import storage_error

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".mmcoop.lock"


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "another process (it has not written its name yet)"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid')} on host {holder.get('host')} (since {since}: {holder.get('command', '')})"


class FolderLock:
    """Exclusive advisory lock on ``folder`` for the life of a process's work there.

    Args:
        folder: the folder to lock (must exist).
        what: how to call the folder in messages, e.g. ``"run directory"``.

    Example::

        with FolderLock(run_dir):
            ...  # only this process writes run_dir
    """

    def __init__(self, folder: str | os.PathLike, what: str = "run directory") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self._fd: int | None = None
        self._fallback: Any = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._fallback is not None

    def holder(self) -> dict[str, Any]:
        """The holder recorded in the lock file (empty if unreadable)."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> "FolderLock":
        """Take the lock now or raise `RunDirError` naming the process that holds it."""
        if self.held:
            return self
        if fcntl is None:  # pragma: no cover - Windows: filelock's portable lock, holder not recorded
            from filelock import FileLock, Timeout

            lock = FileLock(str(self.path) + ".win")
            try:
                lock.acquire(timeout=0)
            except Timeout:
                raise RunDirError(f"{self.what} {self.folder} is in use by another process") from None
            self._fallback = lock
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise storage_error(e, self.path, "create the lock file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunDirError(
                f"{self.what} {self.folder} is in use by {_describe(self.holder())}; wait for it to finish, "
                "stop it, or pick another --name"
            ) from None
        except OSError as e:  # e.g. a file system without flock support
            os.close(fd)
            raise storage_error(e, self.path, "lock") from None
        self._fd = fd
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.time(),
            "command": " ".join(sys.argv)[:300],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        return self

    def release(self) -> None:
        """Drop the lock (the file stays; its holder record is cleared)."""
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            self._fallback = None
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        except OSError:
            pass
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
