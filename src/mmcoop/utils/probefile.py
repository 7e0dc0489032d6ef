"""``probe.json``: the linear probes of a run, one entry per evaluated split.

Written by ``mmcoop probe`` / ``compare --probe`` (`mmcoop.experiment.probe_run`), read by
the report and ``mmcoop table``. Layout::

    {"format": 1, "kind": "mmcoop.probe",
     "splits": {"test": {"split": "test", "seed": 0, "checkpoint": {...}, "probes":
                         {"audio": {"acc", "macro_f1", "l2", ...}, ..., "concat": {...}}, ...}}}

Each entry records the checkpoint it was computed from (as a valuation table does), so a
stale one is named by `mmcoop.utils.runfiles.stale_derived`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from mmcoop.errors import RunDirError
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.rundir import RunPaths

PROBE_FORMAT = 1
PROBE_KIND = "mmcoop.probe"


def read_probe(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """``split -> probe entry`` from the run's ``probe.json``; ``None`` when there is none.

    Raises:
        RunDirError: the file exists but is not an mmcoop probe file (unreadable or foreign).
    """
    path = RunPaths(run_dir).probe
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path} cannot be read ({e}); delete it and run `mmcoop probe {run_dir}` again") from None
    if not isinstance(data, dict) or data.get("kind") != PROBE_KIND or not isinstance(data.get("splits"), dict):
        raise RunDirError(
            f"{path} was not written by mmcoop probe; move it away (mmcoop does not overwrite it) and run "
            f"`mmcoop probe {run_dir}` again"
        )
    return dict(data["splits"])


def write_probe(run_dir: str | os.PathLike, entry: Mapping[str, Any]) -> str:
    """Add or replace ``entry`` (its ``"split"``) in the run's ``probe.json``, atomically; the other splits stay.

    Returns:
        The path written.
    """
    splits = read_probe(run_dir) or {}
    splits[str(entry["split"])] = dict(entry)
    body = {"format": PROBE_FORMAT, "kind": PROBE_KIND, "splits": dict(sorted(splits.items()))}
    return str(atomic_write_text(RunPaths(run_dir).probe, json.dumps(body, indent=2, default=float)))
