"""No import cycle between any two modules of mmcoop.

The module import graph is built from the source (every ``import`` / ``from`` statement,
including those inside functions and ``if TYPE_CHECKING:`` blocks, relative imports
resolved); an edge goes to the most specific module named (``from mmcoop.data.base import
X`` -> ``mmcoop.data.base``; ``from mmcoop.data import base`` -> ``mmcoop.data.base``;
``from mmcoop.data import DATASETS`` -> the package ``mmcoop.data``). Any strongly connected
component of more than one module is a cycle and fails the test.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "mmcoop"


def _modules() -> dict[str, Path]:
    out = {}
    for p in SRC.rglob("*.py"):
        parts = list(p.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> the mmcoop modules it imports (anywhere in its source)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for a in node.names:  # `from pkg import submodule` names the submodule, else the module
                    sub = f"{module}.{a.name}"
                    targets.add(sub if sub in modules else module)
        graph[name] = {t for t in (_resolve(t, modules) for t in targets if t.startswith("mmcoop")) if t and t != name}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop()
                        on_stack.discard(m)
                        comp.append(m)
                        if m == node:
                            break
                    out.append(sorted(comp))
    return out


def test_tarjan_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    comps = sorted(c for c in strongly_connected(g) if len(c) > 1)
    assert comps == [["a", "b", "c"]]


def test_graph_sees_package_and_function_level_imports():
    graph = import_graph()
    assert "mmcoop.data.base" in graph["mmcoop.data"]  # the package's own imports
    assert "mmcoop.media.frame_cache" in graph["mmcoop.datasets.paper"]  # imported inside a function
    assert "mmcoop.media.decode" in graph["mmcoop.media.prepare"]


def test_no_import_cycles():
    cycles = [c for c in strongly_connected(import_graph()) if len(c) > 1]
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)
