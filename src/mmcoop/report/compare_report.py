"""The report of a compare directory: Figure 1, accuracy per method, the summary, the runs, contributions.

Every run's own report is written first (by the ``write_run`` the entry point passes), so the
tables can link them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

from mmcoop.report import plots
from mmcoop.report.compare_gain import gain_section
from mmcoop.report.explorer import DEFAULT_K, SampleLoader
from mmcoop.report.format import esc, is_pct_key, pm, table
from mmcoop.report.loaders import CompareData, RunData, degraded_auc, load_compare_dir, load_run_dir, read_config
from mmcoop.report.page import Page, Valuations, missing_list, mods_of
from mmcoop.report.run_samples import shared_data
from mmcoop.utils.rundir import BASE_CONFIG_FILE

RunWriter = Callable[..., Path]  # write_report(run_dir, samples=..., top_k=...) -> report.html


def summary_table(cmp: CompareData, links: Mapping[str, str] | None = None) -> str:
    """Mean ± std over seeds of every summary column, one row per method (with links to the runs' reports)."""
    s = cmp.summary
    bases = [c[: -len("_mean")] for c in s.columns if c.endswith("_mean") and not c.startswith("gain_")]
    rows = []
    for _, r in s.iterrows():
        row: dict[str, Any] = {"method": r.get("method"), "seeds": r.get("seeds")}
        for b in bases:
            pct = b != "seconds_per_epoch" and is_pct_key(b)
            name = b.replace("test_", "") + (" (%)" if pct else "")
            row[name] = pm(r.get(f"{b}_mean"), r.get(f"{b}_std"), pct)
        if links:
            row["run reports"] = links.get(str(r.get("method")), "–")
        rows.append(row)
    return table(rows, pct=[], left=["method", "run reports"], raw=["run reports"])


def _preferred_valuation(run: RunData) -> tuple[str, Path] | None:
    return run.latest_valuation(prefer_split="test")


def _run_links(cmp: CompareData, root: Path, reports: Mapping[Path, Path]) -> dict[str, str]:
    """Method -> links to the reports of its runs (``seed 0 · seed 1``)."""
    out: dict[str, list[str]] = {}
    for _, r in cmp.runs.iterrows():
        rep = reports.get(r.get("run_path")) if isinstance(r.get("run_path"), Path) else None
        if rep is None:
            continue
        rel = os.path.relpath(rep, root).replace(os.sep, "/")
        out.setdefault(str(r.get("method")), []).append(f'<a href="{esc(rel)}">seed {esc(r.get("seed"))}</a>')
    return {m: " · ".join(v) for m, v in out.items()}


def _write_run_reports(
    runs: pd.DataFrame, write_run: RunWriter, samples: SampleLoader, k: int
) -> tuple[dict[Path, Path], dict[Path, str]]:
    """Each run's own report: ``run dir -> report.html``, and ``run dir -> why it failed``."""
    reports: dict[Path, Path] = {}
    report_errors: dict[Path, str] = {}
    for _, r in runs.iterrows():
        rpath = r.get("run_path")
        if isinstance(rpath, Path) and rpath not in reports:
            try:
                reports[rpath] = write_run(rpath, samples=samples, top_k=k)
            except Exception as e:  # noqa: BLE001 - one broken run must not stop the comparison
                report_errors[rpath] = f"{rpath.name}: report failed ({type(e).__name__}: {e})"
    return reports, report_errors


def _runs_section(
    page: Page, cmp: CompareData, reports: Mapping[Path, Path], report_errors: Mapping[Path, str], missing: list[str]
) -> None:
    """One row per run (accuracies, its valuation's summary, a link to its report); the phi histograms."""
    runs = cmp.runs
    page.h2("runs", "Runs")
    vals = Valuations()
    rows: list[dict[str, Any]] = []
    hist_sources: dict[str, pd.DataFrame] = {}
    mods = list(cmp.modalities)
    for _, r in runs.iterrows():
        row: dict[str, Any] = {"method": r.get("method"), "seed": r.get("seed")}
        for c in ["test_acc", *[f"test_acc_{m}" for m in mods], "seconds_per_epoch"]:
            if c in runs.columns:
                row[c.replace("test_", "")] = r.get(c)
        rpath = r.get("run_path")
        link = "–"
        if isinstance(rpath, Path):
            if rpath in reports:
                rel = os.path.relpath(reports[rpath], page.root).replace(os.sep, "/")
                link = f'<a href="{esc(rel)}">{esc(rpath.name)}</a>'
            else:
                link = esc(report_errors.get(rpath, f"{rpath.name}: no report"))
            run = load_run_dir(rpath)
            pref = _preferred_valuation(run)
            if pref is not None:
                label, vpath = pref
                df = vals.get(vpath)
                if df is not None:
                    row["valued"] = label
                    for m in df.attrs.get("modalities", []):
                        row[f"phi_{m} mean"] = float(df[f"phi_{m}"].mean())
                    if "degraded" in df.columns:
                        try:
                            d = degraded_auc(df)
                            row["degraded_auc_mean"] = d["auc_mean"]
                            row["lowest_is_degraded"] = d["lowest_is_degraded"]
                        except ValueError:
                            pass
                    key = str(r.get("method"))
                    if key not in {k.split(" (")[0] for k in hist_sources}:
                        hist_sources[f"{key} ({label})"] = df
        else:
            link = esc(f"{r.get('run_dir', '?')} (not found)")
        row["report"] = link
        rows.append(row)
    page.add(table(rows, raw=["report"], left=["method", "valued", "report"]))
    page.add(
        '<p class="sub">valued: the valuation shown (the test split when `mmcoop value` was run, else the '
        "last training epoch); phi_&lt;m&gt; mean: mean Shapley value; degraded_auc_mean: mean over modalities of "
        "the AUC of −phi for the degraded modality (debiased data; 0.5 = chance); lowest_is_degraded: share of "
        "samples whose lowest-phi modality is the degraded one.</p>"
    )
    if vals.errors:
        page.note("Unreadable valuation files skipped: " + "; ".join(vals.errors))

    if hist_sources:
        page.h2("samples", "Per-sample contributions by method")
        hmods = mods_of(hist_sources, mods)
        page.image(
            "compare_phi_hist",
            plots.phi_histogram_figure(hist_sources, hmods),
            "distribution of per-sample Shapley values per modality, first seed of each method",
        )
    else:
        missing.append("Per-sample contributions by method: no run of this comparison has valuation files.")


def compare_sections(
    page: Page, cmp: CompareData, write_run: RunWriter, samples: SampleLoader | None = None, k: int = DEFAULT_K
) -> None:
    """The sections of a compare report; a section without data is left out and listed at the end."""
    runs = cmp.runs
    missing: list[str] = []
    shared = shared_data(samples)  # the runs of a comparison mostly share their data: load it once per config
    reports, report_errors = _write_run_reports(runs, write_run, shared, k)
    gain_section(page, cmp, missing)
    acc_png = plots.compare_figure(cmp.summary, runs, cmp.modalities)
    if acc_png is not None:
        page.h2("accuracy", "Test accuracy per method")
        page.image(
            "compare_accuracy",
            acc_png,
            "test accuracy (fused and each modality alone) per method, mean ± std over seeds; dots = seeds",
        )
    else:
        missing.append("Test accuracy per method: no summary.csv / compare.csv with test accuracies.")
    if cmp.summary.empty:
        missing.append("Summary over seeds: no summary (summary.csv absent and no finished runs).")
    else:
        page.h2("summary", "Summary over seeds")
        page.add(summary_table(cmp, _run_links(cmp, page.root, reports)))

    if runs.empty:
        missing.append("Runs: no runs (compare.csv absent and no run directories with results.json inside).")
    else:
        _runs_section(page, cmp, reports, report_errors, missing)
    missing_list(page, missing)


def compare_report(path: Path, write_run: RunWriter, samples: SampleLoader | None = None, k: int = DEFAULT_K) -> Path:
    """Write ``<path>/report.html`` (and its plots) for the compare directory ``path``.

    Args:
        path: the compare directory.
        write_run: writes one run's report (`mmcoop.report.write_report`).
        samples: the runs' data for the explorers.
        k: samples per explorer gallery.

    Returns:
        The path of ``report.html``.
    """
    cmp = load_compare_dir(path)
    page = Page(path, f"mmcoop comparison: {path.name}")
    base = read_config(path / BASE_CONFIG_FILE)
    bits = []
    if base:
        ds = str(base.get("dataset", "?")) + ("-debiased" if base.get("debiased") else "")
        bits.append(f"dataset {ds}")
        if isinstance(base.get("train"), dict) and "epochs" in base["train"]:
            bits.append(f"{base['train']['epochs']} epochs")
    if not cmp.runs.empty:
        if "method" in cmp.runs.columns:
            bits.append("methods " + ", ".join(dict.fromkeys(map(str, cmp.runs["method"]))))
        if "seed" in cmp.runs.columns:
            bits.append("seeds " + ", ".join(dict.fromkeys(map(str, cmp.runs["seed"]))))
    compare_sections(page, cmp, write_run, samples, k)
    return page.write(esc(" · ".join(bits + [str(path)])) + ".")
