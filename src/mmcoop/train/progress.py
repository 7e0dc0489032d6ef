"""Progress bars (tqdm on a terminal; nothing when stderr is piped or tqdm is missing).

A bar is only drawn when its stream is a terminal: piped or redirected logs get the
one-line-per-epoch summary of :class:`~mmcoop.train.callbacks.ConsoleLine` instead of
carriage-return bars such as ``val: 0it [00:00, ?it/s]``.
"""

from __future__ import annotations

import sys
from typing import Iterable, TextIO, TypeVar

T = TypeVar("T")


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stderr``) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


def progress_bar(it: Iterable[T], desc: str, enabled: bool = True, leave: bool = False) -> Iterable[T]:
    """Wrap ``it`` in a progress bar on stderr when ``enabled``, stderr is a terminal and tqdm is installed.

    Args:
        it: the iterable (a loader).
        desc: the bar's label.
        enabled: ``False`` never draws a bar.
        leave: keep the finished bar on screen (default: cleared; the epoch line follows).

    Returns:
        ``it`` itself or a tqdm wrapper of it.
    """
    if not enabled or not is_terminal(sys.stderr):
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, desc=desc, leave=leave, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
