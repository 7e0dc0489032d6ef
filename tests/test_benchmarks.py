"""The benchmark scripts stay runnable: every script imports, and the shared fixture builder
of the data-bound benchmarks works (a package move once broke its path silently)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def _load(path: Path):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # the scripts import their `_common` helper from their folder
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_script_is_found() -> None:
    assert {"method_cost.py", "pass_profile.py", "online_accuracy.py", "gpu_av.py"} <= {p.name for p in SCRIPTS}


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.stem)
def test_script_imports_and_has_main(path: Path) -> None:
    from mmcoop.data import DATASETS
    from mmcoop.methods import METHODS
    from mmcoop.models import MODELS

    before = [sorted(r.names()) for r in (METHODS, MODELS, DATASETS)]
    module = _load(path)
    assert callable(getattr(module, "main", None)), f"{path.name} has no main()"
    # importing a script registers nothing (a registered name would leak into every later test)
    assert [sorted(r.names()) for r in (METHODS, MODELS, DATASETS)] == before


def test_ks_fixture_builder(tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # as when the script runs alone: the tests folder is not importable until the builder adds it
    tests_dir = str(Path(__file__).resolve().parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p).resolve() != Path(tests_dir)])
    monkeypatch.delitem(sys.modules, "av_fixtures", raising=False)
    module = _load(BENCH / "method_cost.py")
    root = module.build_ks_fixture(tmp_path / "ks", train_clips=3, classes=2, frames=2)
    lines = (root / "train_1fps_path.txt").read_text().split()
    assert len(lines) == 3 * 3  # "path frames label" per clip
    assert len(list(root.rglob("*.jpg"))) >= 3 * 2
    assert (root / "val_1fps_path.txt").is_file() and (root / "test_1fps_path.txt").is_file()
