"""Atomic file writes: write to a temporary file in the same folder, then rename.

Temporary files are named ``.<name>.<random>.mmcoop.tmp`` beside their target, so a process
killed mid-write leaves at most such a file (never a half-written target);
`remove_stale_temps` deletes them when the folder's owner starts again (only names
of that pattern: a user's own ``.notes.tmp`` is never touched).

Checkpoints are read by `load_checkpoint`: tensors and plain containers only
(``torch.load(weights_only=True)``), anything else refused unless the caller trusts the file.

Failures of the file system (full disk, read-only folder, missing permission) are
raised as one `StorageError` naming the path and what to do,
instead of the raw ``OSError`` (or the cryptic error ``torch.save`` gives on a full disk).
"""

from __future__ import annotations

import errno
import functools
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from mmcoop.errors import StorageError

#: The suffix of mmcoop's own temporary files (`remove_stale_temps` deletes only these).
TEMP_SUFFIX = ".mmcoop.tmp"

_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere (e.g. --out-dir on another disk)",
    errno.EDQUOT: "the disk quota is exceeded: free some space or write elsewhere (e.g. --out-dir)",
    errno.EROFS: "the file system is read-only: write elsewhere (e.g. --out-dir)",
    errno.EACCES: "permission denied: make the folder writable or write elsewhere (e.g. --out-dir)",
    errno.EPERM: "operation not permitted: make the folder writable or write elsewhere (e.g. --out-dir)",
    errno.ENOTDIR: "a path component is a file, not a folder: move that file away",
    errno.EEXIST: "a file stands where a folder is needed: move that file away",
}


def storage_error(exc: OSError, path: str | os.PathLike, action: str = "write") -> StorageError:
    """One clear `StorageError` for an ``OSError`` raised while touching ``path``."""
    if isinstance(exc, StorageError):
        return exc
    advice = _ADVICE.get(exc.errno or -1, "check that the folder exists and is writable")
    return StorageError(f"cannot {action} {path}: {exc.strerror or exc} ({advice})", exc.errno)


def _stage(path: Path, write: Callable[[io.BufferedWriter], None]) -> str:
    """Write a complete temporary file beside ``path`` (flushed and fsynced); returns its name.

    A failure removes the temporary file and raises (an ``OSError`` as `StorageError`).
    """
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise storage_error(e, path) from None
        raise
    return tmp


def _atomic(path: str | os.PathLike, write: Callable[[io.BufferedWriter], None]) -> Path:
    path = Path(path)
    tmp = _stage(path, write)
    try:
        os.replace(tmp, path)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise storage_error(e, path) from None
        raise
    return path


def _write_all(fh: io.BufferedWriter, data: bytes | bytearray | memoryview) -> None:
    fh.write(data)


def atomic_write_files(files: Mapping[Path, bytes | bytearray | memoryview]) -> list[Path]:
    """Write several files all or nothing (e.g. a report and its plots).

    Every file is first written in full to a temporary file beside its target; only when all
    of them are complete are they renamed into place. A failure (a full disk) removes the
    temporary files and any folder this call created, so nothing new is left behind and the
    files already there are unchanged.

    Args:
        files: ``{target path: content}``.

    Returns:
        The target paths, in the order given.

    Raises:
        StorageError: a file could not be written (nothing was replaced).
    """
    staged: list[tuple[str, Path]] = []
    made: list[Path] = []  # folders created here, deepest first when removed
    try:
        for path, data in files.items():
            path = Path(path)
            missing = [d for d in [path.parent, *path.parent.parents] if not d.exists()]
            made.extend(reversed(missing))
            staged.append((_stage(path, functools.partial(_write_all, data=data)), path))
    except BaseException:
        for tmp, _ in staged:
            os.unlink(tmp)
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    for i, (tmp, path) in enumerate(staged):
        try:
            os.replace(tmp, path)  # a rename in the same folder: fails only if the folder is gone
        except OSError as e:
            for left, _ in staged[i:]:
                if os.path.exists(left):
                    os.unlink(left)
            raise storage_error(e, path) from None
    return [path for _, path in staged]


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (readers see the old or the new file, never half).

    Raises:
        StorageError: the file system refused the write (message names ``path``).
    """
    return _atomic(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` atomically.

    The object is serialised in memory first, so a full disk raises a
    `StorageError` naming ``path`` (``torch.save`` writing to the file itself
    reports it as an opaque "enforce fail" RuntimeError).
    """
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getbuffer())


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line (e.g. a JSON record) to a text file, flushed and fsynced."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line.rstrip("\n") + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as e:
        raise storage_error(e, path) from None


def check_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove it writable by creating and removing a temporary file.

    Cheap check to run before expensive work whose result goes to ``folder``
    (``os.access`` is not enough: it says yes to root on a read-only mount).

    Raises:
        StorageError: the folder cannot be created or written (message names it).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mmcoop-probe.", suffix=TEMP_SUFFIX, dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise storage_error(e, folder) from None
    return folder


def remove_stale_temps(root: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.<random>.mmcoop.tmp`` files `atomic_write_bytes` leaves when killed.

    Other files, ``.notes.tmp`` included, are never touched.

    Only call this on a folder no other process is writing (e.g. under the run's lock).

    Returns:
        The paths removed.
    """
    removed = []
    for p in Path(root).rglob(f".*{TEMP_SUFFIX}"):
        if p.is_file() and not p.is_symlink():
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:
                pass
    return sorted(removed)


#: Said where a checkpoint is refused (the CLI option that loads it anyway).
TRUST_HINT = "pass --trust-run (Python: trust=True)"


def load_checkpoint(path: str | os.PathLike, trust: bool = False) -> Any:
    """Load a checkpoint onto the CPU: tensors and plain containers only, unless ``trust``.

    ``torch.load(weights_only=True)`` accepts tensors, numbers, strings, lists, tuples
    and dicts: everything mmcoop writes into a checkpoint. A file holding any other
    object (which unpickling could make run code, e.g. a crafted ``__reduce__``) is
    refused with a message, unless ``trust`` is given (then loaded with
    ``weights_only=False``: only for files whose origin you trust).

    Args:
        path: the ``.pt`` file.
        trust: load any pickled object (runs code the file may hold).

    Returns:
        The loaded object.

    Raises:
        RunDirError: the file holds objects other than tensors and plain containers
            (and ``trust`` is false); names the object and what to do.
        Exception: whatever ``torch.load`` raises for a damaged file (callers word it).

    Example:
        >>> state = load_checkpoint("runs/r/checkpoints/last.pt")  # doctest: +SKIP
    """
    import pickle

    import torch

    from mmcoop.errors import RunDirError

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "Weights only load failed" not in text:
            raise
        if not trust:
            import re

            # torch names the object as "GLOBAL posix.system was not an allowed global" or
            # "Unsupported global: GLOBAL posix.system whose module posix is blocked": keep the name only
            m = re.search(r"GLOBAL\s+([\w.]+)", text)
            found = f"the Python object {m.group(1).rstrip('.')}" if m else "a Python object"
            raise RunDirError(
                f"{path} holds {found} besides tensors and plain containers; mmcoop refuses to load it, because "
                "unpickling such an object can run code from the file. mmcoop's own checkpoints never hold one. "
                f"If you trust where this run came from, {TRUST_HINT}"
            ) from None
    return torch.load(path, map_location="cpu", weights_only=False)
