"""FolderLock (one holder, named; freed when the holder dies) and storage errors of the atomic writers."""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import os
import signal
import socket

import pytest

from mmcoop.errors import MMCoopError, RunDirError, StorageError
from mmcoop.utils.io import atomic_write_text, check_writable, remove_stale_temps, storage_error
from mmcoop.utils.lock import LOCK_NAME, FolderLock


def test_second_holder_is_refused_and_the_first_named(tmp_path):
    a = FolderLock(tmp_path).acquire()
    holder = json.loads((tmp_path / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(RunDirError, match=f"in use by pid {os.getpid()} on host {socket.gethostname()}"):
        FolderLock(tmp_path).acquire()
    a.release()
    assert (tmp_path / LOCK_NAME).read_text() == ""  # the file stays, its holder record is cleared
    with FolderLock(tmp_path) as b:
        assert b.held
    assert not b.held


def _hold_forever(folder: str, ready) -> None:
    FolderLock(folder).acquire()
    ready.set()
    signal.pause()


def test_a_killed_holder_frees_the_lock(tmp_path):
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    p = ctx.Process(target=_hold_forever, args=(str(tmp_path), ready))
    p.start()
    assert ready.wait(30)
    with pytest.raises(RunDirError, match=f"pid {p.pid}"):
        FolderLock(tmp_path).acquire()
    os.kill(p.pid, signal.SIGKILL)
    p.join(30)
    FolderLock(tmp_path).acquire().release()  # no stale lock after kill -9


def test_storage_errors_name_the_path_and_keep_errno(tmp_path):
    e = storage_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "x.pt")
    assert isinstance(e, StorageError) and isinstance(e, OSError) and isinstance(e, MMCoopError)
    assert e.errno == errno.ENOSPC and str(tmp_path / "x.pt") in str(e) and "disk is full" in str(e)
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="(a file stands where a folder is needed|is a file, not a folder)"):
        atomic_write_text(tmp_path / "file" / "inner.txt", "y")
    with pytest.raises(StorageError):
        check_writable(tmp_path / "file")
    assert check_writable(tmp_path / "new" / "dir").is_dir()
    assert list((tmp_path / "new" / "dir").iterdir()) == []  # the probe leaves nothing


def test_remove_stale_temps_only_removes_temp_files(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    stale = [tmp_path / ".config.yaml.abc.mmcoop.tmp", tmp_path / "checkpoints" / ".last.pt.x1.mmcoop.tmp"]
    keep = [tmp_path / "config.yaml", tmp_path / "notes.tmp", tmp_path / ".notes.tmp", tmp_path / ".hidden"]
    for p in stale + keep:
        p.write_text("x")
    assert remove_stale_temps(tmp_path) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)
