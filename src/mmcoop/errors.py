"""Exceptions raised for bad user input. Each message names the file/key and what to do."""

from __future__ import annotations


class MMCoopError(Exception):
    """Base class: an error the user can fix; the CLI prints its message without a traceback."""


class ConfigError(MMCoopError, ValueError):
    """An unknown or invalid configuration key, dataset, method or option."""


class DataError(MMCoopError):
    """Missing, corrupt or inconsistent data (file named in the message)."""


class RunDirError(MMCoopError):
    """A run directory that cannot be used as asked: not a run, locked by another process,
    unsafe to delete, or inconsistent with what a resume asks for."""


class StorageError(MMCoopError, OSError):
    """Writing a file failed for a reason outside mmcoop (full disk, read-only folder, permissions).

    Also an `OSError` (with the original ``errno``), so code that tolerates I/O
    failures (e.g. the preprocessed-data cache, which warns and continues) still catches it.
    """

    def __init__(self, message: str, errno: int | None = None) -> None:
        OSError.__init__(self, errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class MMCoopWarning(UserWarning):
    """A warning from mmcoop about the user's data, run or setup (a stale file, a repaired run, a broken
    plugin): the CLI prints it as one line ``warning: <message>``, without Python's source location."""
