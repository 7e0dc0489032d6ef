"""Exceptions raised for bad user input. Each message names the file/key and what to do."""

from __future__ import annotations


class MMCoopError(Exception):
    """Base class: an error the user can fix; the CLI prints its message without a traceback."""


class ConfigError(MMCoopError, ValueError):
    """An unknown or invalid configuration key, dataset, method or option."""


class DataError(MMCoopError):
    """Missing, corrupt or inconsistent data (file named in the message)."""
