"""Tiny synthetic runs shared by the run-directory safety, resume and fault-injection tests.

Importable as ``_runs`` (``tests/`` is on ``sys.path``, see ``conftest.py``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mmcoop.experiment import RunConfig

#: a run of a fraction of a second: 48/24/24 samples of two 4-d views, an 8-wide model
TINY: dict[str, Any] = {
    "dataset": "synthetic",
    "dataset_options": {"sizes": [48, 24, 24], "dim": 4},
    "model": {"dim": 8},
    "train": {"epochs": 2, "batch_size": 16, "progress": False, "device": "cpu"},
}

#: the same run as CLI options
TINY_ARGS = [
    "--dataset",
    "synthetic",
    "--set",
    "dataset_options.sizes=[48,24,24]",
    "--set",
    "dataset_options.dim=4",
    "--set",
    "model.dim=8",
    "--set",
    "train.batch_size=16",
    "--set",
    "train.progress=false",
    "--device",
    "cpu",
]


def tiny_cfg(out_dir: str | Path, name: str = "r", **over: Any) -> RunConfig:
    """:data:`TINY` with top-level keys replaced (``train=`` merges into the train section)."""
    d = copy.deepcopy(TINY)
    train = over.pop("train", {})
    d["train"].update(train)
    d.update(over)
    d.update(out_dir=str(out_dir), name=name)
    return RunConfig.from_dict(d)


def strip_times(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Metrics records without wall-clock fields (everything else must repeat exactly)."""
    return [{k: v for k, v in r.items() if "time" not in k and k != "seconds"} for r in records]
