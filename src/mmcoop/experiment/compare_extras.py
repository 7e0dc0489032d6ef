"""The diagnostics columns of a comparison's rows: compute cost and linear probes.

- `cost_columns`: ``parameters`` (model and method modules), and with
  ``train.count_flops`` the mean ``step_flops_per_unit`` (FLOPs per training unit of an
  optimizer step), ``train_flops_total`` (all training FLOPs, valuation passes included)
  and ``train_flops_per_epoch``, from the run's ``metrics.jsonl`` records. The inference
  FLOPs per sample are the run's ``test_flops_per_sample``.
- `probe_columns`: ``probe_acc_<f>`` / ``probe_f1_<f>`` for each probed feature set
  (each modality, ``concat``) on the test split, from ``probe.json`` when it is current,
  else fitted (`mmcoop.experiment.probe.probe_run`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from mmcoop.experiment.probe import probe_run
from mmcoop.utils.probefile import read_probe
from mmcoop.utils.runfiles import stale_probes

#: Cost columns of compare.csv (those a run has), summarised over seeds like the test metrics.
COST_COLUMNS: tuple[str, ...] = ("parameters", "step_flops_per_unit", "train_flops_per_epoch", "train_flops_total")
#: Prefix of the probe columns of compare.csv.
PROBE_PREFIX = "probe_"


def cost_columns(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Parameters and training FLOPs of a run from its metrics records (absent ones left out)."""
    out: dict[str, float] = {}
    if not history:
        return out
    last = history[-1]
    if last.get("parameters") is not None:
        out["parameters"] = float(last["parameters"])
    steps = [float(r["step_flops_per_unit"]) for r in history if r.get("step_flops_per_unit") is not None]
    if steps:
        out["step_flops_per_unit"] = sum(steps) / len(steps)
    epochs = [float(r["train_flops"]) for r in history if r.get("train_flops") is not None]
    if epochs:
        out["train_flops_per_epoch"] = sum(epochs) / len(epochs)
        out["train_flops_total"] = float(last.get("train_flops_total", math.nan))
    return out


def probe_columns(run_dir: str | Path, split: str = "test") -> dict[str, float]:
    """``probe_acc_<f>`` and ``probe_f1_<f>`` of the run's linear probes on ``split``.

    Reuses ``probe.json`` when its entry for ``split`` matches the run's best checkpoint;
    otherwise fits the probes (and writes ``probe.json``).
    """
    entries = read_probe(run_dir) or {}
    fresh = split in entries and not any(f"({split} split)" in m for m in stale_probes(run_dir))
    entry = entries[split] if fresh else probe_run(run_dir, split)
    out: dict[str, float] = {}
    for name, p in entry["probes"].items():
        out[f"{PROBE_PREFIX}acc_{name}"] = float(p["acc"])
        out[f"{PROBE_PREFIX}f1_{name}"] = float(p["macro_f1"])
    return out
