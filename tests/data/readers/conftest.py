"""Puts this folder on ``sys.path`` so reader tests can ``import av_fixtures`` (the layout builders).

Test modules are imported with ``--import-mode=importlib`` and cannot import each other;
``tests/conftest.py`` does the same for ``tests/_helpers.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
