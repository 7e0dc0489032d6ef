"""Layer boundaries (DESIGN.md): a layer imports only the layers below it, never above.

Every ``import``/``from`` statement of every module under src/mmcoop is read (including
imports inside functions): upward imports are not allowed anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mmcoop"
# bottom to top; a layer may import itself and anything earlier in this list
ORDER = [
    "errors",
    "utils",
    "data",
    "media",
    "datasets",
    "models",
    "valuation",
    "enhance",
    "methods",
    "train",
    "diagnostics",
    "integrations",
    "report",
    "experiment",
    "cli",
]
RANK = {name: i for i, name in enumerate(ORDER)}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "mmcoop" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "mmcoop":  # from mmcoop import valuation
                out += [(node.lineno, f"mmcoop.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
    return out


MODULES = sorted(p for p in SRC.rglob("*.py") if p.parent != SRC or p.stem not in ("__init__", "__main__"))


def test_every_module_belongs_to_a_layer():
    layers = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in MODULES}
    assert layers <= set(ORDER), layers - set(ORDER)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_upward_imports(path: Path):
    own = path.relative_to(SRC).parts[0].removesuffix(".py")
    bad = []
    for line, module in _imports(path):
        layer = _layer(module)
        if layer is not None and layer in RANK and RANK[layer] > RANK[own]:
            bad.append(f"line {line}: {module} ({layer} is above {own})")
    assert not bad, bad
