"""Run report, per-class mean contribution and finding the degraded modality of debiased data."""

from __future__ import annotations

import pandas as pd

from mmcoop.report import plots
from mmcoop.report.format import table
from mmcoop.report.loaders import RunData, degraded_auc, per_class_contributions
from mmcoop.report.page import Page, choose_epochs, mods_of
from mmcoop.report.run_samples import RunValuations

MAX_EPOCH_SCAN = 60  # at most this many epoch files are read for the per-epoch degraded plot


def per_class_section(page: Page, run: RunData, rv: RunValuations) -> None:
    """Mean Shapley value per class and modality, for each summary source."""
    per_class: dict[str, pd.DataFrame] = {}
    class_notes = []
    for label, df in rv.summary_sources.items():
        try:
            per_class[label] = per_class_contributions(df)
        except ValueError as e:
            class_notes.append(f"{label}: {e}")
    class_names = run.dataset.get("classes") if isinstance(run.dataset.get("classes"), list) else None
    pc_png = plots.per_class_figure(per_class, class_names)
    if pc_png is not None or class_notes:
        page.h2("classes", "Per-class mean contribution")
        for n in class_notes:
            page.note(n)
        page.image("per_class", pc_png, "mean Shapley value per class and modality")


def degraded_section(page: Page, run: RunData, rv: RunValuations, missing: list[str]) -> None:
    """How well the Shapley values find the degraded modality (AUC, hit rate; per epoch)."""
    deg_sources = {k: v for k, v in rv.summary_sources.items() if "degraded" in v.columns}
    if not deg_sources:
        if rv.summary_sources:
            missing.append(
                "Finding the degraded modality: no 'degraded' column in the valuation files (the dataset "
                "is not debiased)."
            )
        return
    page.h2("degraded", "Finding the degraded modality (debiased data)")
    rows = []
    for label, df in deg_sources.items():
        try:
            rows.append({"source": label, **degraded_auc(df)})
        except ValueError as e:
            page.note(f"{label}: {e}")
    page.add(table(rows, left=["source"]))
    page.add(
        '<p class="sub">auc_&lt;m&gt;: AUC of −phi_m for predicting that modality m is the degraded one '
        "(0.5 = chance, 1 = perfect; ties count ½); lowest_is_degraded: share of samples whose lowest-phi "
        "modality is the degraded one (shared minima split); _strict: a unique minimum only; "
        "chance: 1/M.</p>"
    )
    ep_rows = []
    epochs = rv.epochs
    scan = epochs if len(epochs) <= MAX_EPOCH_SCAN else choose_epochs(epochs, MAX_EPOCH_SCAN)
    for epoch in scan:
        df = rv.vals.get(run.epoch_valuations[epoch])
        if df is not None and "degraded" in df.columns:
            try:
                ep_rows.append({"epoch": epoch, **degraded_auc(df)})
            except ValueError:
                continue
    page.image(
        "degraded_epochs",
        plots.degraded_epochs_figure(pd.DataFrame(ep_rows), mods_of(deg_sources, run.modalities)),
        "AUC of −phi for the degraded modality and lowest-phi hit rate per epoch (training set)",
    )
