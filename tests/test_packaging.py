"""The wheel: built offline from a copy of the project, it carries the licence, ``py.typed`` and the ``mmcoop``
entry point, and nothing but the package (no tests, no data files)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import mmcoop

ROOT = Path(__file__).resolve().parents[1]
DATA_SUFFIXES = (".npy", ".npz", ".pt", ".pth", ".parquet", ".csv", ".wav", ".jpg", ".png", ".mp4", ".gz", ".whl")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    work = tmp_path_factory.mktemp("build")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, work / name)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    # offline: no build isolation (setuptools from this environment), no index
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "-o", str(work / "dist"), "."],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = (work / "dist").glob("mmcoop-*.whl")
    return zipfile.ZipFile(path)


def test_wheel_name_and_metadata_version(wheel) -> None:
    assert Path(wheel.filename).name == f"mmcoop-{mmcoop.__version__}-py3-none-any.whl"
    meta = wheel.read(f"mmcoop-{mmcoop.__version__}.dist-info/METADATA").decode()
    assert f"Version: {mmcoop.__version__}" in meta and "License-Expression: MIT" in meta


def test_wheel_carries_license_typing_marker_and_entry_point(wheel) -> None:
    names = wheel.namelist()
    licence = [n for n in names if n.endswith("dist-info/licenses/LICENSE") or n.endswith("dist-info/LICENSE")]
    assert licence and wheel.read(licence[0]) == (ROOT / "LICENSE").read_bytes()
    assert "mmcoop/py.typed" in names
    entry = wheel.read(next(n for n in names if n.endswith("dist-info/entry_points.txt"))).decode()
    assert "[console_scripts]" in entry and "mmcoop = mmcoop.cli.app:main" in entry


def test_wheel_holds_only_the_package(wheel) -> None:
    names = wheel.namelist()
    assert all(n.startswith(("mmcoop/", f"mmcoop-{mmcoop.__version__}.dist-info/")) for n in names), names
    assert not [n for n in names if "tests/" in n or n.endswith(DATA_SUFFIXES) or "__pycache__" in n]
    # every module of the source tree is in it
    src = {p.relative_to(ROOT / "src").as_posix() for p in (ROOT / "src" / "mmcoop").rglob("*.py")}
    assert src <= set(names)
