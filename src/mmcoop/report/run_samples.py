"""Run report, per-sample sections: Shapley-value histograms, their summary, and the sample explorer.

`RunValuations` gathers the run's valuation files once (training epochs, valued
splits) for these sections and the per-class and debiased ones after them.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from mmcoop.errors import MMCoopWarning
from mmcoop.report import plots
from mmcoop.report.explorer import SampleLoader, View, build_explorer, epoch_views, registered_splits
from mmcoop.report.format import table
from mmcoop.report.loaders import RunData, read_config, summarize_contributions
from mmcoop.report.page import Page, Valuations, choose_epochs, mods_of


@dataclass
class RunValuations:
    """A run's readable valuations, as the per-sample sections use them.

    Attributes:
        vals: the lazy reader (remembers unreadable files).
        epochs: the valued training epochs, sorted.
        chosen: ``"epoch e" -> frame`` for the first, middle and last valued epoch.
        split_dfs: ``split -> frame`` for the splits valued by ``mmcoop value``.
        summary_sources: ``label -> frame``: the last valued epoch (training set), then the valued splits.
    """

    vals: Valuations
    epochs: list[int]
    chosen: dict[str, pd.DataFrame] = field(default_factory=dict)
    split_dfs: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary_sources: dict[str, pd.DataFrame] = field(default_factory=dict)

    @classmethod
    def of(cls, run: RunData) -> RunValuations:
        """Read ``run``'s valuation files (each once)."""
        vals = Valuations()
        epochs = list(run.epoch_valuations)
        chosen = {
            f"epoch {e}": df for e in choose_epochs(epochs) if (df := vals.get(run.epoch_valuations[e])) is not None
        }
        split_dfs = {name: df for name, p in run.split_valuations.items() if (df := vals.get(p)) is not None}
        summary_sources: dict[str, pd.DataFrame] = {}
        if epochs:
            last = vals.get(run.epoch_valuations[epochs[-1]])
            if last is not None:
                summary_sources[f"epoch {epochs[-1]} (train)"] = last
        summary_sources.update({f"{k} split": v for k, v in split_dfs.items()})
        return cls(vals, epochs, chosen, split_dfs, summary_sources)


def summary_rows(label: str, df: pd.DataFrame) -> list[dict[str, Any]]:
    s = summarize_contributions(df)
    rows = []
    for m, r in s.iterrows():
        row: dict[str, Any] = {"source": label, "modality": m}
        row.update(r.to_dict())
        rows.append(row)
    return rows


def sample_sections(page: Page, run: RunData, rv: RunValuations, missing: list[str]) -> None:
    """Histograms of per-sample Shapley values (chosen epochs, valued splits) and their summary table."""
    if not run.epoch_valuations and not run.split_valuations:
        missing.append(
            "Per-sample contributions: no valuation files (valuation/*.parquet); the method does not "
            f"valuate during training. Run `mmcoop value {run.path} --split test` to value the test split, "
            "then redraw this report."
        )
    hist_mods = list(run.modalities)
    if rv.chosen or rv.split_dfs:
        page.h2("samples", "Per-sample contributions")
    if rv.chosen:
        page.add("<h3>Training set during training (first, middle and last valued epoch)</h3>")
        page.image(
            "phi_hist_epochs",
            plots.phi_histogram_figure(rv.chosen, mods_of(rv.chosen, hist_mods)),
            "distribution of per-sample Shapley values per modality, training set, chosen epochs",
        )
    if rv.split_dfs:
        page.add("<h3>Valued splits (<code>mmcoop value</code>)</h3>")
        page.image(
            "phi_hist_splits",
            plots.phi_histogram_figure(
                {f"{k} split": v for k, v in rv.split_dfs.items()}, mods_of(rv.split_dfs, hist_mods)
            ),
            "distribution of per-sample Shapley values per modality, valued splits",
        )
    if rv.summary_sources:
        rows = [r for label, df in rv.summary_sources.items() for r in summary_rows(label, df)]
        page.add(
            "<h3>Summary</h3>"
            + table(rows, left=["source", "modality"])
            + '<p class="sub">mean_phi: mean Shapley value (1 = a fully cooperating modality); '
            "unimodal_acc: accuracy of the modality alone; lowest_share: share of samples in which the "
            "modality contributes least (ties split); low_share: share with phi ≤ 0.4 (re-sampled with 2 or "
            "3 copies by the sample-level rule); mean_copies: planned copies per sample.</p>"
        )


def explorer_section(page: Page, run: RunData, rv: RunValuations, samples: SampleLoader | None, k: int) -> None:
    """The per-sample explorer over every valued split and epoch (samples drawn when the data loads)."""
    views = [View(name, f"{name} split", df, name) for name, df in rv.split_dfs.items()]
    views += epoch_views(run.epoch_valuations, rv.vals.get)
    if not views:
        return
    xmods = mods_of({v.key: v.frame for v in views}, run.modalities)
    splits, why = load_samples(run, samples)
    class_names = run.dataset.get("classes") if isinstance(run.dataset.get("classes"), list) else None
    ex = build_explorer(views, xmods, splits, k=k, class_names=class_names, data_note=why)
    for note in ex.notes:  # also said where the command runs, not only inside the HTML
        warnings.warn(f"{run.path}: the report's sample explorer: {note}", MMCoopWarning, stacklevel=2)
    page.h2("explorer", "Sample explorer")
    page.add(
        '<p class="sub">Pick a valuation (a valued split, or an epoch of the training set); the galleries '
        f"show the {k} samples each modality contributes least and most to (the modality in question is "
        "outlined), as the model saw them; the table lists every sample: click a header to sort, filter "
        "by class, id, phi range, degraded modality or planned copies, click a row for its values in "
        "every valuation.</p>"
    )
    page.add(ex.html)


def shared_data(samples: SampleLoader | None) -> SampleLoader:
    """``samples`` (or `registered_splits`) remembering its result per data configuration (dataset, options,
    data target, seed, debiasing, data root from config.yaml)."""
    memo: dict[str, Any] = {}

    def load(run_dir: Path) -> Any:
        c = read_config(Path(run_dir) / "config.yaml")
        key = json.dumps(
            [c.get(k) for k in ("dataset", "dataset_options", "data", "seed", "debiased", "data_root")],
            sort_keys=True,
            default=str,
        )
        if key not in memo:
            memo[key] = samples(run_dir) if samples is not None else registered_splits(Path(run_dir), c)
        return memo[key]

    return load


def load_samples(run: RunData, samples: SampleLoader | None) -> tuple[Any, str | None]:
    """The run's data for drawing samples, or ``(None, why not)``."""
    try:
        splits = samples(run.path) if samples is not None else registered_splits(run.path, run.config)
    except Exception as e:  # noqa: BLE001 - missing data must not stop the report: values are still shown
        return None, (
            f"The samples are not drawn: the run's data could not be loaded ({type(e).__name__}: {e}); values only."
        )
    if splits is None:
        return None, (
            "The samples are not drawn: the run's data is your own data.target; `mmcoop report` rebuilds "
            "it (or pass samples= to write_report); values only."
        )
    return splits, None
