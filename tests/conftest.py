"""Shared test fixtures.

- Every test session uses a private, empty cache folder (``MMCOOP_CACHE``) and has
  downloads disabled (``MMCOOP_OFFLINE=1``), so tests never touch ``~/.cache`` or the
  network. Tests that need their own cache monkeypatch ``MMCOOP_CACHE`` again.
- ``data_root``: the real data kept beside the project (``$MMCOOP_DATA``, else
  ``<repo>/../shared/data``); tests using it are skipped only if that folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point the user cache at a session temp folder and forbid downloads."""
    cache = tmp_path_factory.mktemp("mmcoop-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMCOOP_CACHE", str(cache))
        mp.setenv("MMCOOP_OFFLINE", "1")
        mp.delenv("MMCOOP_NO_CACHE", raising=False)
        yield cache


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The shared real-data folder (``$MMCOOP_DATA`` or ``<repo>/../shared/data``)."""
    env = os.environ.get("MMCOOP_DATA")
    root = Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data").resolve()
    if not root.is_dir():
        pytest.skip(f"real data folder {root} is absent (set MMCOOP_DATA to a copy of ../shared/data)")
    return root
