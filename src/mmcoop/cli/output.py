"""What the command line prints: one console, user text never read as markup, warnings as one line.

Everything mmcoop prints goes through rich, which reads ``[...]`` as markup. Text that comes
from the user (sample ids, paths, run and modality names, class names, messages quoting
them) is passed through `esc` when it is part of a line with intended markup, or the
whole line is printed with `say` (no markup at all): an id ``[/]1`` is then printed
as ``[/]1`` instead of failing, and ``[bold red]x[/bold red]`` as itself instead of a red
``x``.

mmcoop's own warnings (a stale valuation, a run repaired after an interruption, a broken
plugin, a note about a dataset) are printed by `show_warnings` as one line
``warning: <message>`` on stderr, without Python's source path and code line.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, TextIO

from rich.console import Console
from rich.markup import escape

from mmcoop.errors import MMCoopWarning


def _console(stderr: bool) -> Console:
    c = Console(stderr=stderr)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        # piped or captured output (CI logs, `| tee`): rich would assume 80 columns and fold the
        # comparison tables; logs have no width limit, so use a wide one (COLUMNS overrides).
        c = Console(stderr=stderr, width=140)
    return c


#: standard output: results, tables, paths written
console = _console(stderr=False)
#: standard error: warnings (a piped ``mmcoop value > out.txt`` keeps only the results)
err_console = _console(stderr=True)


def esc(value: object) -> str:
    """``str(value)`` with every ``[`` that rich would read as markup escaped: user text in a markup line.

    Not for text directly followed by a tag (``[bold]{esc(x)}[/]``): a trailing backslash is kept as one
    backslash here (rich's own `rich.markup.escape` doubles it, which prints two at the end of a line);
    print such a piece with `styled` instead.
    """
    text = str(value)
    out = escape(text)
    return out[:-1] if text.endswith("\\") and out.endswith("\\\\") else out


def styled(*parts: str | tuple[str, str], **kwargs: Any) -> None:
    """Print pieces of text, each as written, some in a style: ``styled((name, "bold"), ": ", summary)``."""
    from rich.text import Text

    console.print(Text.assemble(*parts), highlight=False, **kwargs)


def say(text: object, **kwargs: Any) -> None:
    """Print ``text`` as written (no markup, no highlighting) on standard output."""
    console.print(str(text), markup=False, highlight=False, **kwargs)


def warn(message: object) -> None:
    """Print ``warning: <message>`` (the message as written) as one line on standard error."""
    err_console.print(f"[yellow]warning:[/] {esc(message)}", highlight=False, soft_wrap=True)


_PACKAGE = str(Path(__file__).resolve().parents[1])


def is_own_warning(category: type[Warning], filename: str) -> bool:
    """Whether a warning is mmcoop's: an `MMCoopWarning`, or warned from mmcoop's code."""
    return issubclass(category, MMCoopWarning) or str(Path(filename).resolve()).startswith(_PACKAGE)


@contextlib.contextmanager
def show_warnings() -> Iterator[None]:
    """Within the block, mmcoop's own warnings print as one `warn` line; others as Python shows them."""
    previous = warnings.showwarning

    def hook(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if is_own_warning(category, filename):
            warn(message)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = hook
    try:
        yield
    finally:
        if warnings.showwarning is hook:
            warnings.showwarning = previous


__all__ = ["console", "err_console", "esc", "is_own_warning", "say", "show_warnings", "styled", "warn"]
