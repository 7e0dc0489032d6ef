"""Shared test fixtures.

- Every test session uses a private, empty cache folder (``MMCOOP_CACHE``) and has
  downloads disabled (``MMCOOP_OFFLINE=1``), so tests never touch ``~/.cache`` or the
  network. Tests that need their own cache monkeypatch ``MMCOOP_CACHE`` again.
- ``data_root``: the real data kept beside the project (``$MMCOOP_DATA``, else
  ``<repo>/../shared/data``); tests using it are skipped only if that folder is absent.
- ``one_thread``: one intra-op torch thread for a module of tiny-tensor tests; use it
  with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
- Plain helpers shared by several modules live in ``tests/_helpers.py``; this file puts
  ``tests/`` on ``sys.path`` so test modules can ``from _helpers import ...``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest
import torch

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


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
    if not root.is_dir() and not os.environ.get("CI"):  # CI must run the real-data tests: they fail there
        pytest.skip(f"real data folder {root} is absent (set MMCOOP_DATA to a copy of ../shared/data)")
    return root


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors: one intra-op thread avoids OpenMP spin contention on a shared CPU."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
