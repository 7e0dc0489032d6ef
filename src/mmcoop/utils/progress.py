"""Progress bars (tqdm on a terminal; nothing when stderr is piped or tqdm is missing).

The one place that decides whether a bar is drawn (`show_progress`): only when its
stream is a terminal. Piped or redirected output (``mmcoop value RUN > out.txt``, CI logs)
gets no carriage-return bars such as ``val: 0it [00:00, ?it/s]``; training logs get the
one-line-per-epoch summary of ``mmcoop.train.callbacks.ConsoleLine`` instead.
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


def show_progress(enabled: bool | None = True) -> bool:
    """Whether to draw a progress bar: not turned off (``enabled`` False) and stderr is a terminal.

    Args:
        enabled: ``False`` never; ``True`` or ``None`` (automatic) only on a terminal.

    Returns:
        ``True`` when a bar should be drawn.
    """
    return enabled is not False and is_terminal(sys.stderr)


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
    if not show_progress(enabled):
        return it
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return it
    return tqdm(it, desc=desc, leave=leave, file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
