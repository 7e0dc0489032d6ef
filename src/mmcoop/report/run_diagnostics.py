"""Run report, diagnostics sections: linear probes (``probe.json``) and imbalance per epoch."""

from __future__ import annotations

from typing import Any

from mmcoop.errors import RunDirError
from mmcoop.report.format import table
from mmcoop.report.loaders import RunData
from mmcoop.report.page import Page
from mmcoop.report.loaders import read_valuation
from mmcoop.report.plots_diagnostics import feature_map_figure, imbalance_figure
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
    _feature_maps(page, run, entries, missing)
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


def _feature_maps(page: Page, run: RunData, entries: dict[str, Any], missing: list[str]) -> None:
    """t-SNE maps of each modality's features (``mmcoop probe --map``), coloured by class and by phi."""
    split = next((s for s in ("test", "val", "train") if isinstance((entries.get(s) or {}).get("map"), dict)), None)
    if split is None:
        missing.append(
            f"Feature maps: probe.json holds none; run `mmcoop probe {run.path} --map` (needs mmcoop[featuremaps])."
        )
        return
    fmap = entries[split]["map"]
    phi: dict[str, list[float]] | None = None
    note = ""
    vpath = run.split_valuations.get(split)
    if vpath is not None:
        try:
            df = read_valuation(vpath).set_index("index")
            phi = {
                m: [float(df.at[i, f"phi_{m}"]) if i in df.index else float("nan") for i in fmap["index"]]
                for m in fmap["coords"]
                if f"phi_{m}" in df.columns
            }
        except Exception as e:  # noqa: BLE001 - an unreadable table must not stop the report
            note = f"Not coloured by Shapley value: {vpath.name} cannot be read ({type(e).__name__}: {e})."
    else:
        note = (
            f"Not coloured by Shapley value: no valuation/{split}.parquet; run `mmcoop value {run.path} --split "
            f"{split}` and redraw this report."
        )
    class_names = run.dataset.get("classes") if isinstance(run.dataset.get("classes"), list) else None
    page.add(f"<h3>Feature maps ({split} split)</h3>")
    page.image(
        "feature_maps",
        feature_map_figure(fmap["coords"], fmap["label"], phi, class_names),
        f"t-SNE of each modality's frozen features on the {split} split ({fmap['points']} samples, seeded "
        f"subsample, perplexity {fmap['perplexity']:g}), coloured by class and by the sample's Shapley value",
    )
    if note:
        page.note(note)
