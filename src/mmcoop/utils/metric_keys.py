"""The metric-key schema: how per-modality and per-split keys are spelled in ``metrics.jsonl``,
``results.json``, compare tables and valuation-table columns.

Writers build keys and readers (the report) parse them through these functions only, so
the spelling lives in one place.

- ``contrib_<modality>``: dataset-level mean contribution (mean phi) of an epoch (re-sampling methods).
- ``copies_<modality>``: re-sampling copies planned (per epoch in metrics; per sample in tables).
- ``acc_<modality>``: accuracy of that modality alone; with a split prefix ``val_acc_<m>``, ``test_acc_<m>``.
- imbalance measures of an evaluation pass (docs/guides/diagnostics.md): ``phi_<m>`` (mean
  Shapley value), ``share_<m>`` (Shapley share), ``ratio_<m>`` (OGM-GE discrepancy ratio) and
  ``uni_gap`` (best minus worst unimodal accuracy), with a split prefix in metrics and results.

Example:
    >>> modality_key(CONTRIB, "audio")
    'contrib_audio'
    >>> modalities_in(split_key("val", ACC), ["val_acc", "val_acc_audio", "val_acc_video"])
    ['audio', 'video']
"""

from __future__ import annotations

from collections.abc import Iterable

CONTRIB = "contrib"
COPIES = "copies"
ACC = "acc"
PHI = "phi"
SHARE = "share"
RATIO = "ratio"
UNI_GAP = "uni_gap"
VAL = "val"
TEST = "test"


def modality_key(prefix: str, modality: str) -> str:
    """``<prefix>_<modality>`` (e.g. ``contrib_audio``)."""
    return f"{prefix}_{modality}"


def split_key(split: str, key: str) -> str:
    """``<split>_<key>`` (e.g. ``val_acc``, ``test_acc_audio``)."""
    return f"{split}_{key}"


def modalities_in(prefix: str, keys: Iterable[str]) -> list[str]:
    """Modalities named by the ``<prefix>_<modality>`` keys among ``keys``, in their order."""
    head = f"{prefix}_"
    return [k[len(head) :] for k in keys if k.startswith(head) and len(k) > len(head)]
