"""Progress bars (tqdm when available, silent otherwise)."""

from __future__ import annotations

import sys
from typing import Iterable, TypeVar

T = TypeVar("T")


def progress_bar(it: Iterable[T], desc: str, enabled: bool = True, leave: bool = True) -> Iterable[T]:
    """Wrap ``it`` in a progress bar on stderr when ``enabled`` and tqdm is installed."""
    if not enabled:
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, desc=desc, leave=leave, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
