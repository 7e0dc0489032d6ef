"""The self-contained HTML report of a run directory or a compare directory.

:func:`write_report` writes ``<dir>/report.html`` (plots embedded as base64 PNG data
URIs, so the file can be mailed or opened anywhere) and the same plots as files under
``<dir>/plots/*.png``. Sections whose data is missing are replaced by a short note.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mmcoop.errors import MMCoopError
from mmcoop.report import plots
from mmcoop.report.loaders import (
    CompareData,
    RunData,
    child_run_dirs,
    degraded_auc,
    is_compare_dir,
    is_run_dir,
    load_compare_dir,
    load_run_dir,
    per_class_contributions,
    read_config,
    read_valuation,
    summarize_contributions,
)
from mmcoop.utils.io import atomic_write_bytes, atomic_write_text
from mmcoop.utils.rundir import BASE_CONFIG_FILE, PLOTS_DIR, REPORT_FILE

_MAX_EPOCH_SCAN = 60  # at most this many epoch files are read for the per-epoch degraded plot

_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
img { max-width: 100%; height: auto; margin: 0.4em 0; }
.note { color: #666; font-style: italic; } .sub { color: #666; font-size: 0.9em; }
nav a { margin-right: 1em; } code { background: #f5f5f5; padding: 0 3px; }
details { margin: 0.6em 0; }
"""


# -- formatting helpers ---------------------------------------------------------------------
def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v: Any, pct: bool = False, digits: int = 4) -> str:
    if _is_missing(v):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if pct:
            return f"{100 * v:.2f}%"
        if math.isfinite(v) and v == round(v) and abs(v) < 1e9:
            return str(int(v))
        return f"{v:.{digits}g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)
    return str(v)


def _is_pct_key(key: str) -> bool:
    k = key.lower()
    return ("acc" in k or "f1" in k or "share" in k or "lowest_is" in k or k == "chance") and "auc" not in k


def _table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
           pct: Iterable[str] | None = None, raw: Iterable[str] = (), left: Iterable[str] = ()) -> str:
    """An HTML table of ``rows`` (dicts); ``pct`` columns in percent (default: by name), ``raw`` = trusted HTML."""
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    pct_set = set(pct) if pct is not None else {c for c in cols if _is_pct_key(c)}
    raw_set, left_set = set(raw), set(left)
    out = ["<table><thead><tr>"]
    out += [f'<th class="{"l" if c in left_set else ""}">{_esc(c)}</th>' for c in cols]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for c in cols:
            v = r.get(c)
            cell = v if c in raw_set and isinstance(v, str) else _esc(_fmt(v, pct=c in pct_set))
            cls = ' class="l"' if c in left_set else ""
            out.append(f"<td{cls}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


class _Page:
    """Collects sections and plots; renders the HTML and writes the plot files."""

    def __init__(self, root: Path, title: str) -> None:
        self.root = root
        self.title = title
        self.parts: list[str] = []
        self.toc: list[tuple[str, str]] = []
        self.plots: dict[str, bytes] = {}

    def h2(self, anchor: str, title: str) -> None:
        self.toc.append((anchor, title))
        self.parts.append(f'<h2 id="{_esc(anchor)}">{_esc(title)}</h2>')

    def add(self, fragment: str) -> None:
        self.parts.append(fragment)

    def note(self, text: str) -> None:
        self.parts.append(_note(text))

    def image(self, name: str, png: bytes | None, alt: str, missing: str | None = None) -> bool:
        if png is None:
            if missing:
                self.note(missing)
            return False
        fname = f"{name}.png"
        self.plots[fname] = png
        b64 = base64.b64encode(png).decode("ascii")
        self.parts.append(
            f'<figure><img src="data:image/png;base64,{b64}" alt="{_esc(alt)}" title="{_esc(alt)}">'
            f'<figcaption class="sub">{_esc(alt)} — also saved as <code>{PLOTS_DIR}/{_esc(fname)}</code></figcaption>'
            "</figure>"
        )
        return True

    def render(self, subtitle: str = "") -> str:
        nav = " ".join(f'<a href="#{_esc(a)}">{_esc(t)}</a>' for a, t in self.toc)
        when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        return (
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{_esc(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<h1>{_esc(self.title)}</h1>\n<p class=\"sub\">{subtitle} Report written {_esc(when)} by mmcoop.</p>\n"
            f"<nav>{nav}</nav>\n" + "\n".join(self.parts) + "\n</body>\n</html>\n"
        )

    def write(self, subtitle: str = "") -> Path:
        pdir = self.root / PLOTS_DIR
        for fname, png in self.plots.items():
            atomic_write_bytes(pdir / fname, png)
        if pdir.is_dir():  # drop plots of an earlier report that this one no longer draws
            for old in pdir.glob("*.png"):
                if old.name not in self.plots:
                    try:
                        old.unlink()
                    except OSError:
                        pass
        return atomic_write_text(self.root / REPORT_FILE, self.render(subtitle))


# -- run report -----------------------------------------------------------------------------
def _choose_epochs(epochs: Sequence[int], k: int = 3) -> list[int]:
    """First, middle and last (``k`` spread evenly) of the sorted ``epochs``."""
    if not epochs:
        return []
    idx = np.unique(np.round(np.linspace(0, len(epochs) - 1, min(k, len(epochs)))).astype(int))
    return [epochs[i] for i in idx]


class _Valuations:
    """Reads valuation parquets lazily, once each; remembers unreadable files."""

    def __init__(self) -> None:
        self.cache: dict[Path, pd.DataFrame | None] = {}
        self.errors: list[str] = []

    def get(self, path: Path) -> pd.DataFrame | None:
        if path not in self.cache:
            try:
                df = read_valuation(path)
                if not any(c.startswith("phi_") for c in df.columns):
                    raise ValueError("no phi_<modality> columns")
                self.cache[path] = df
            except Exception as e:  # noqa: BLE001 - a broken file must not stop the report
                self.cache[path] = None
                self.errors.append(f"{path.name}: {type(e).__name__}: {e}")
        return self.cache[path]


def _config_rows(run: RunData) -> list[dict[str, Any]]:
    c = run.config
    train = c.get("train") if isinstance(c.get("train"), dict) else {}
    model = c.get("model") if isinstance(c.get("model"), dict) else {}
    rows = [
        ("run", run.name), ("dataset", run.dataset_name), ("method", run.method),
        ("method options", c.get("method_options") or {}), ("debiased", c.get("debiased")),
        ("dataset options", c.get("dataset_options") or {}),
        ("modalities", ", ".join(run.modalities) or "?"),
        ("model", ", ".join(f"{k}={v}" for k, v in model.items()) if model else None),
        ("training", ", ".join(f"{k}={train[k]}" for k in ("epochs", "batch_size", "optimizer", "lr", "weight_decay",
                                                            "step_size", "gamma", "amp") if k in train) or None),
        ("seed", c.get("seed")),
        ("epochs run", len(run.metrics) if not run.metrics.empty else None),
    ]
    out = []
    for k, v in rows:
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items()) or "—"
        out.append({"setting": k, "value": "—" if v is None else str(v)})
    return out


def _results_rows(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for k, v in results.items():
        if isinstance(v, (dict, list)):
            continue
        rows.append({"metric": k, "value": _fmt(v, pct=_is_pct_key(k) and not k.startswith("best_epoch"))})
    return rows


def _summary_rows(label: str, df: pd.DataFrame) -> list[dict[str, Any]]:
    s = summarize_contributions(df)
    rows = []
    for m, r in s.iterrows():
        row: dict[str, Any] = {"source": label, "modality": m}
        row.update(r.to_dict())
        rows.append(row)
    return rows


def _run_sections(page: _Page, run: RunData) -> None:
    mods = run.modalities
    # header ----------------------------------------------------------------------------
    page.h2("setup", "Setup")
    page.add(_table(_config_rows(run), ["setting", "value"], pct=[], left=["setting", "value"]))
    page.h2("results", "Test results (best-validation model)")
    if run.results:
        page.add(_table(_results_rows(run.results), ["metric", "value"], pct=[], left=["metric"]))
    else:
        page.note("No results.json: the run has not finished (or was interrupted before testing).")

    # training curves ---------------------------------------------------------------------------
    page.h2("training", "Training curves")
    best = run.results.get("best_epoch")
    page.image("accuracy", plots.accuracy_figure(run.metrics, mods, best if isinstance(best, int) else None),
               "accuracy per epoch: validation (fused and per modality alone) and training; losses",
               missing="No metrics.jsonl (or no epoch finished yet): no training curves.")
    if not run.metrics.empty:
        records = run.metrics.to_dict("records")
        page.add("<details><summary>metrics.jsonl (all epochs)</summary>" + _table(records) + "</details>")

    # dataset-level contributions ----------------------------------------------------------------
    page.h2("contribution", "Dataset-level contribution per epoch")
    page.image("contribution", plots.contribution_figure(run.metrics, mods),
               "mean Shapley value per modality (contrib_<m>) and planned re-sampling copies (copies_<m>) per epoch",
               missing="The metrics hold no contrib_<modality> or copies_<modality>: this method does not valuate "
                       "during training.")

    # per-sample contributions ------------------------------------------------------------------
    vals = _Valuations()
    epochs = list(run.epoch_valuations)
    page.h2("samples", "Per-sample contributions")
    if not run.epoch_valuations and not run.split_valuations:
        page.note("No valuation files (valuation/*.parquet): the method does not valuate during training. "
                  f"Run `mmcoop value {run.path} --split test` to value the test split, then redraw this report.")
    chosen = {f"epoch {e}": df for e in _choose_epochs(epochs)
              if (df := vals.get(run.epoch_valuations[e])) is not None}
    split_dfs = {name: df for name, p in run.split_valuations.items() if (df := vals.get(p)) is not None}
    hist_mods = list(mods)
    if chosen:
        page.add("<h3>Training set during training (first, middle and last valued epoch)</h3>")
        page.image("phi_hist_epochs", plots.phi_histogram_figure(chosen, _mods_of(chosen, hist_mods)),
                   "distribution of per-sample Shapley values per modality, training set, chosen epochs")
    if split_dfs:
        page.add("<h3>Valued splits (<code>mmcoop value</code>)</h3>")
        page.image("phi_hist_splits", plots.phi_histogram_figure(
            {f"{k} split": v for k, v in split_dfs.items()}, _mods_of(split_dfs, hist_mods)),
            "distribution of per-sample Shapley values per modality, valued splits")
    summary_sources: dict[str, pd.DataFrame] = {}
    if epochs:
        last = vals.get(run.epoch_valuations[epochs[-1]])
        if last is not None:
            summary_sources[f"epoch {epochs[-1]} (train)"] = last
    summary_sources.update({f"{k} split": v for k, v in split_dfs.items()})
    if summary_sources:
        rows = [r for label, df in summary_sources.items() for r in _summary_rows(label, df)]
        page.add("<h3>Summary</h3>" + _table(rows, left=["source", "modality"]) +
                 '<p class="sub">mean_phi: mean Shapley value (1 = a fully cooperating modality); '
                 "unimodal_acc: accuracy of the modality alone; lowest_share: share of samples in which the "
                 "modality contributes least (ties split); low_share: share with phi ≤ 0.4 (re-sampled with 2 or "
                 "3 copies by the sample-level rule); mean_copies: planned copies per sample.</p>")

    # per-class ------------------------------------------------------------------------------
    page.h2("classes", "Per-class mean contribution")
    per_class: dict[str, pd.DataFrame] = {}
    for label, df in summary_sources.items():
        try:
            per_class[label] = per_class_contributions(df)
        except ValueError as e:
            page.note(f"{label}: {e}")
    class_names = run.dataset.get("classes") if isinstance(run.dataset.get("classes"), list) else None
    page.image("per_class", plots.per_class_figure(per_class, class_names),
               "mean Shapley value per class and modality",
               missing="No valuation files: no per-class contributions.")

    # debiased ---------------------------------------------------------------------------------
    page.h2("degraded", "Finding the degraded modality (debiased data)")
    deg_sources = {k: v for k, v in summary_sources.items() if "degraded" in v.columns}
    if not deg_sources:
        page.note("No 'degraded' column in the valuation files: the dataset is not debiased (or nothing was valued).")
    else:
        rows = []
        for label, df in deg_sources.items():
            try:
                rows.append({"source": label, **degraded_auc(df)})
            except ValueError as e:
                page.note(f"{label}: {e}")
        page.add(_table(rows, left=["source"]))
        page.add('<p class="sub">auc_&lt;m&gt;: AUC of −phi_m for predicting that modality m is the degraded one '
                 "(0.5 = chance, 1 = perfect; ties count ½); lowest_is_degraded: share of samples whose lowest-phi "
                 "modality is the degraded one (shared minima split); _strict: a unique minimum only; "
                 "chance: 1/M.</p>")
        ep_rows = []
        scan = epochs if len(epochs) <= _MAX_EPOCH_SCAN else _choose_epochs(epochs, _MAX_EPOCH_SCAN)
        for e in scan:
            df = vals.get(run.epoch_valuations[e])
            if df is not None and "degraded" in df.columns:
                try:
                    ep_rows.append({"epoch": e, **degraded_auc(df)})
                except ValueError:
                    continue
        page.image("degraded_epochs", plots.degraded_epochs_figure(pd.DataFrame(ep_rows), _mods_of(deg_sources, mods)),
                   "AUC of −phi for the degraded modality and lowest-phi hit rate per epoch (training set)")
    if vals.errors:
        page.note("Unreadable valuation files skipped: " + "; ".join(vals.errors))


def _mods_of(dfs: Mapping[str, pd.DataFrame], fallback: Sequence[str]) -> list[str]:
    for df in dfs.values():
        m = df.attrs.get("modalities")
        if m:
            return list(m)
    return list(fallback)


def _run_report(path: Path) -> Path:
    run = load_run_dir(path)
    page = _Page(path, f"mmcoop run: {run.name}")
    _run_sections(page, run)
    sub = _esc(f"{run.dataset_name} · {run.method} · seed {run.config.get('seed', '?')} · {path}")
    return page.write(sub + ".")


# -- compare report ---------------------------------------------------------------------------
def _pm(mean: Any, std: Any, pct: bool) -> str:
    if _is_missing(mean):
        return "–"
    s = 100.0 if pct else 1.0
    std = 0.0 if _is_missing(std) else float(std)
    return f"{float(mean) * s:.2f} ± {std * s:.2f}"


def _summary_table(cmp: CompareData) -> str:
    s = cmp.summary
    bases = [c[: -len("_mean")] for c in s.columns if c.endswith("_mean") and not c.startswith("gain_")]
    rows = []
    for _, r in s.iterrows():
        row: dict[str, Any] = {"method": r.get("method"), "seeds": r.get("seeds")}
        for b in bases:
            pct = b != "seconds_per_epoch" and _is_pct_key(b)
            name = b.replace("test_", "") + (" (%)" if pct else "")
            row[name] = _pm(r.get(f"{b}_mean"), r.get(f"{b}_std"), pct)
        rows.append(row)
    return _table(rows, pct=[], left=["method"])


def _interval(low: Any, high: Any, n: Any) -> str:
    if _is_missing(low) or _is_missing(high):
        return "undefined (1 seed)" if not _is_missing(n) and float(n) <= 1 else "–"
    return f"[{float(low):+.2f}, {float(high):+.2f}]"


def _gain_rows(cmp: CompareData, methods: Sequence[str]) -> list[dict[str, Any]]:
    """One row per compared method: cost relative to joint, and per protocol gain and 95% interval."""
    s = cmp.summary.assign(method=cmp.summary["method"].astype(str)).set_index("method")
    runs = cmp.runs
    joint = s.loc["joint"] if "joint" in s.index else None
    rows = []
    for m in methods:
        r = s.loc[m]
        row: dict[str, Any] = {"method": m, "seeds": r.get("seeds")}
        for key, name in (("sample_visits", "visits"), ("optimizer_steps", "steps"), ("seconds_per_epoch", "s/epoch")):
            v = r.get(f"{key}_mean")
            if joint is not None and not _is_missing(v) and not _is_missing(joint.get(f"{key}_mean")) \
                    and float(joint[f"{key}_mean"]) > 0:
                row[f"{name} × joint"] = f"{float(v) / float(joint[f'{key}_mean']):.2f}"
        for p in plots.GAIN_PROTOCOLS:
            if f"gain_{p}_mean" not in s.columns:
                continue
            head = "equal epochs" if p == "epochs" else f"same {p}"
            mean = r.get(f"gain_{p}_mean")
            row[f"gain, {head}"] = "–" if _is_missing(mean) else f"{float(mean):+.2f}"
            row[f"95% CI, {head}"] = _interval(r.get(f"gain_{p}_low"), r.get(f"gain_{p}_high"), r.get(f"gain_{p}_n"))
            if not _is_missing(r.get(f"gain_{p}_boot_low")):
                row[f"bootstrap CI, {head}"] = _interval(r.get(f"gain_{p}_boot_low"), r.get(f"gain_{p}_boot_high"), 2)
            ecol = f"baseline_epochs_{p}"
            if p != "epochs" and ecol in runs.columns and "method" in runs.columns:
                e = pd.to_numeric(runs.loc[runs["method"].astype(str) == m, ecol], errors="coerce").dropna()
                if len(e):
                    row[f"joint epochs, {head}"] = str(int(e.min())) if e.min() == e.max() else \
                        f"{int(e.min())}–{int(e.max())}"
        rows.append(row)
    return rows


def _gain_section(page: _Page, cmp: CompareData) -> None:
    page.h2("gain", "Gain over joint training (Figure 1)")
    methods = plots.gain_methods(cmp.summary)
    if not methods:
        page.note("No paired gains in summary.csv (a comparison without joint training, or written before gains "
                  "were recorded): rerun `mmcoop compare` with joint among the methods.")
        return
    page.image("figure1_gain", plots.gain_figure(cmp.summary, cmp.runs),
               "Figure 1: test-accuracy gain over joint training per method (points), at equal epochs and against "
               "joint training given the same compute; bars = mean over seeds, error bars = 95% paired-t interval, "
               "dots = seeds")
    page.add(_table(_gain_rows(cmp, methods), pct=[], left=["method"]))
    page.add('<p class="sub">gain: test accuracy of the method minus that of joint training with the same seed (same '
             "splits, initialisation and shuffles), in points, averaged over seeds; 95% CI: mean ± t<sub>0.975, n−1"
             "</sub> · sd / √n over the n paired seeds (undefined for one seed). Equal epochs is the paper's protocol; "
             "same visits / same steps compare with joint training run for as many epochs as give it the method's "
             "total training-sample visits / optimizer steps (joint epochs column); visits / steps / s/epoch × joint: "
             "the method's training units seen, optimizer steps taken and time per epoch relative to joint training."
             "</p>")


def _preferred_valuation(run: RunData) -> tuple[str, Path] | None:
    return run.latest_valuation(prefer_split="test")


def _compare_sections(page: _Page, cmp: CompareData) -> None:
    runs = cmp.runs
    _gain_section(page, cmp)
    page.h2("accuracy", "Test accuracy per method")
    page.image("compare_accuracy", plots.compare_figure(cmp.summary, runs, cmp.modalities),
               "test accuracy (fused and each modality alone) per method, mean ± std over seeds; dots = seeds",
               missing="No summary.csv / compare.csv with test accuracies.")
    page.h2("summary", "Summary over seeds")
    if cmp.summary.empty:
        page.note("No summary (summary.csv absent and no finished runs).")
    else:
        page.add(_summary_table(cmp))

    page.h2("runs", "Runs")
    if runs.empty:
        page.note("No runs (compare.csv absent and no run directories with results.json inside).")
        return
    vals = _Valuations()
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
            try:
                rep = write_report(rpath)
                rel = os.path.relpath(rep, page.root).replace(os.sep, "/")
                link = f'<a href="{_esc(rel)}">{_esc(rpath.name)}</a>'
            except Exception as e:  # noqa: BLE001 - one broken run must not stop the comparison
                link = _esc(f"{rpath.name}: report failed ({type(e).__name__}: {e})")
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
            link = _esc(f"{r.get('run_dir', '?')} (not found)")
        row["report"] = link
        rows.append(row)
    page.add(_table(rows, raw=["report"], left=["method", "valued", "report"]))
    page.add('<p class="sub">valued: the valuation shown (the test split when `mmcoop value` was run, else the '
             "last training epoch); phi_&lt;m&gt; mean: mean Shapley value; degraded_auc_mean: mean over modalities of "
             "the AUC of −phi for the degraded modality (debiased data; 0.5 = chance); lowest_is_degraded: share of "
             "samples whose lowest-phi modality is the degraded one.</p>")
    if vals.errors:
        page.note("Unreadable valuation files skipped: " + "; ".join(vals.errors))

    page.h2("samples", "Per-sample contributions by method")
    if hist_sources:
        hmods = _mods_of(hist_sources, mods)
        page.image("compare_phi_hist", plots.phi_histogram_figure(hist_sources, hmods),
                   "distribution of per-sample Shapley values per modality, first seed of each method")
    else:
        page.note("No run of this comparison has valuation files.")


def _compare_report(path: Path) -> Path:
    cmp = load_compare_dir(path)
    page = _Page(path, f"mmcoop comparison: {path.name}")
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
    _compare_sections(page, cmp)
    return page.write(_esc(" · ".join(bits + [str(path)])) + ".")


# -- entry point ---------------------------------------------------------------------------------
def write_report(path: str | os.PathLike) -> Path:
    """Write ``<path>/report.html`` for a run directory or a compare directory.

    The HTML is self-contained (PNG plots embedded as base64 data URIs); the same
    plots are written to ``<path>/plots/*.png``. Both are written atomically. For a
    compare directory (``compare.csv``/``summary.csv``, or a folder of run
    directories) every run's own report is written too and linked.

    Args:
        path: a run directory (``config.yaml``/``metrics.jsonl``/``results.json``) or a
            compare directory.

    Returns:
        The path of ``report.html``.

    Raises:
        MMCoopError: ``path`` is not a directory, or neither a run nor a compare directory.
    """
    p = Path(path)
    if not p.is_dir():
        raise MMCoopError(f"{p} is not a directory; pass a run directory or a compare directory")
    if is_compare_dir(p):
        return _compare_report(p)
    if is_run_dir(p):
        return _run_report(p)
    if child_run_dirs(p):
        return _compare_report(p)
    raise MMCoopError(
        f"{p} is neither a run directory (config.yaml, metrics.jsonl, results.json) nor a compare directory "
        "(compare.csv, summary.csv, or run directories inside); pass a directory made by `mmcoop train` or "
        "`mmcoop compare`"
    )
