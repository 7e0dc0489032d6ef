"""Run report, diagnostics sections: linear probes (``probe.json``) and imbalance per epoch."""

from __future__ import annotations

from typing import Any

from mmcoop.errors import RunDirError
from mmcoop.report.format import table
from mmcoop.report.loaders import RunData
from mmcoop.report.page import Page
from mmcoop.report.plots_diagnostics import imbalance_figure
from mmcoop.utils.metric_keys import RATIO, SHARE, UNI_GAP, modality_key
from mmcoop.utils.probefile import read_probe
from mmcoop.utils.runfiles import stale_probes


def probe_rows(entries: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (evaluated split, feature set) of ``probe.json``."""
    rows = []
    for split, e in entries.items():
        for name, p in (e.get("probes") or {}).items():
            rows.append(
                {
                    "split": split,
                    "features": name,
                    "dim": p.get("dim"),
                    "l2": p.get("l2"),
                    "train_acc": p.get("train_acc"),
                    "val_acc": p.get("val_acc"),
                    "acc": p.get("acc"),
                    "macro_f1": p.get("macro_f1"),
                }
            )
    return rows


def probe_section(page: Page, run: RunData, missing: list[str]) -> None:
    """The linear probes of each modality (and of all features), per evaluated split."""
    try:
        entries = read_probe(run.path)
    except RunDirError as e:
        page.h2("probe", "Linear probes (frozen encoders)")
        page.note(str(e))
        return
    if not entries:
        missing.append(
            f"Linear probes: no probe.json. Run `mmcoop probe {run.path} --split test` to fit them, then redraw "
            "this report."
        )
        return
    page.h2("probe", "Linear probes (frozen encoders)")
    for msg in stale_probes(run.path):
        page.note(f"Warning: {msg}.")
    page.add(table(probe_rows(entries), left=["split", "features"]))
    page.add(
        '<p class="sub">A multinomial logistic regression on the frozen features of each modality (and on all '
        "of them side by side: concat), fitted on the training split, its L2 penalty (l2) chosen on the "
        "validation split; acc / macro_f1 on the split named. It measures what each encoder learned, apart "
        "from the fusion head (docs/guides/diagnostics.md).</p>"
    )


def imbalance_section(page: Page, run: RunData, missing: list[str]) -> None:
    """Imbalance measures of the validation pass per epoch: figure, and the last epoch's values."""
    png = imbalance_figure(run.metrics, run.modalities)
    if png is None:
        missing.append("Imbalance per epoch: no val_ratio_/val_share_/val_uni_gap in metrics.jsonl (older run).")
        return
    page.h2("imbalance", "Imbalance per epoch")
    page.image(
        "imbalance",
        png,
        "validation split per epoch: OGM-GE discrepancy ratio per modality (1 = balanced), Shapley share per "
        "modality (1/M = balanced), best minus worst unimodal accuracy (points)",
    )
    last = run.metrics.iloc[-1].to_dict()
    rows = []
    for m in run.modalities:
        row: dict[str, Any] = {"modality": m, "acc alone": last.get(f"val_acc_{m}")}
        row["ratio"] = last.get(f"val_{modality_key(RATIO, m)}")
        row["share"] = last.get(f"val_{modality_key(SHARE, m)}")
        rows.append(row)
    page.add(
        f"<h3>Epoch {last.get('epoch', '?')}</h3>"
        + table(rows, left=["modality"], pct=["acc alone", "share"])
        + f'<p class="sub">unimodal gap: {100 * float(last.get(f"val_{UNI_GAP}", float("nan"))):.2f} points. '
        "Definitions and sources: docs/guides/diagnostics.md.</p>"
    )
