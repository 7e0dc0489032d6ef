"""Jobs for the worker-pool tests (importable by spawned workers: ``tests/`` is on their ``sys.path``)."""

from __future__ import annotations

import time
from pathlib import Path


def touch_then_sleep(path: str) -> str:
    """Create ``path`` (the worker has started), then block for a minute."""
    Path(path).touch()
    time.sleep(60)
    return path
