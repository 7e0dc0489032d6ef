"""Docstrings render on the documentation site, which reads them as Google-style markdown (mkdocstrings).

Before: 699 Sphinx roles (``:class:`X```) were shown as raw text in the API pages, and multi-line
``Returns:`` entries whose continuation lines were not indented were split into one entry per line
(``collate_units`` read as two return values, each typed ``dict[str, Any]``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "mmcoop"
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|ref|const):`")


def _docstrings() -> list[tuple[str, int, str]]:
    """``(file, line, docstring)`` of every module, class and function under ``src/mmcoop``."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    out.append((str(path.relative_to(SRC.parent)), getattr(node, "lineno", 1), doc))
    return out


def _returns_entries(doc: str) -> list[str]:
    """The entries of a Google ``Returns:`` section: lines one level below the heading (continuations are deeper)."""
    lines = doc.expandtabs().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == "Returns:"), None)
    if start is None:
        return []
    heading = len(lines[start]) - len(lines[start].lstrip())
    entries, level = [], None
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        indent = len(line) - len(line.lstrip())
        if indent <= heading:
            break
        level = indent if level is None else level
        if indent == level:
            entries.append(line.strip())
    return entries


def test_no_sphinx_roles_in_the_sources() -> None:
    hits = [
        f"{path.relative_to(SRC.parent)}:{n}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if ROLE.search(line)
    ]
    assert hits == [], "write `name` (markdown), not Sphinx roles:\n" + "\n".join(hits[:20])


def test_every_returns_section_is_one_entry() -> None:
    split = [(f, n, e) for f, n, doc in _docstrings() if len(e := _returns_entries(doc)) > 1]
    assert split == [], "indent the continuation lines of these Returns entries:\n" + "\n".join(
        f"{f}:{n}: {e[:2]}" for f, n, e in split[:20]
    )


def test_collate_units_returns_one_batch() -> None:
    from mmcoop.enhance import collate_units

    (entry,) = _returns_entries(collate_units.__doc__ or "")
    assert entry.startswith("The batch, a dict with ``inputs``")


def test_the_checks_see_what_they_guard() -> None:
    assert ROLE.search("see :class:`X`") and ROLE.search(":py:func:`f`") and not ROLE.search("see `X`")
    assert _returns_entries("f.\n\n    Returns:\n        a\n        b\n") == ["a", "b"]
    assert _returns_entries("f.\n\n    Returns:\n        a\n            b\n\n    Raises:\n        x\n") == ["a"]
