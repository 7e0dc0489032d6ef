"""The self-contained HTML report of a run directory or a compare directory.

:func:`write_report` writes ``<dir>/report.html`` (plots embedded as base64 PNG data
URIs, so the file can be mailed or opened anywhere) and the same plots as files under
``<dir>/plots/*.png``. Sections whose data is missing are left out and listed at the end
("Not in this report"). A run report holds the per-sample explorer
(:mod:`mmcoop.report.explorer`).
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from mmcoop.errors import MMCoopError
from mmcoop.report import plots
from mmcoop.report.explorer import CSS as EXPLORER_CSS
from mmcoop.report.explorer import DEFAULT_K, SampleLoader, View, build_explorer, epoch_views, registered_splits
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
from mmcoop.utils.runfiles import checkpoint_fingerprint, is_mmcoop_plot, report_source_comment, stale_valuations

_MAX_EPOCH_SCAN = 60  # at most this many epoch files are read for the per-epoch degraded plot

_CSS = (
    """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
.tw { max-width: 100%; overflow-x: auto; }  /* a wide table scrolls inside its box, never past the page */
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; white-space: nowrap; }
td.wrap { white-space: normal; min-width: 16em; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
img { max-width: 100%; height: auto; margin: 0.4em 0; }
.note { color: #666; font-style: italic; } .sub { color: #666; font-size: 0.9em; }
nav a { margin-right: 1em; } code { background: #f5f5f5; padding: 0 3px; }
details { margin: 0.6em 0; } figure { margin: 0.6em 0; }
ul.missing { color: #666; font-size: 0.9em; }
"""
    + EXPLORER_CSS
)


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


def _table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    pct: Iterable[str] | None = None,
    raw: Iterable[str] = (),
    left: Iterable[str] = (),
    wrap: Iterable[str] = (),
) -> str:
    """An HTML table of ``rows`` (dicts); ``pct`` columns in percent (default: by name), ``raw`` = trusted HTML.

    The table sits in a box that scrolls sideways when it is wider than the page; cells
    never break (numbers stay on one line) except the ``wrap`` columns (long text).
    """
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    pct_set = set(pct) if pct is not None else {c for c in cols if _is_pct_key(c)}
    raw_set, left_set, wrap_set = set(raw), set(left), set(wrap)
    out = ['<div class="tw"><table><thead><tr>']
    out += [f'<th class="{"l" if c in left_set else ""}">{_esc(c)}</th>' for c in cols]
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for c in cols:
            v = r.get(c)
            cell = v if c in raw_set and isinstance(v, str) else _esc(_fmt(v, pct=c in pct_set))
            names = " ".join(n for n, on in (("l", c in left_set), ("wrap", c in wrap_set)) if on)
            cls = f' class="{names}"' if names else ""
            out.append(f"<td{cls}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
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
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{_esc(self.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f'<h1>{_esc(self.title)}</h1>\n<p class="sub">{subtitle} Report written {_esc(when)} by mmcoop.</p>\n'
            f"<nav>{nav}</nav>\n" + "\n".join(self.parts) + "\n</body>\n</html>\n"
        )

    def write(self, subtitle: str = "") -> Path:
        pdir = self.root / PLOTS_DIR
        kept = []  # a user's file where a plot would go: kept, the plot is only in the HTML
        for fname, png in self.plots.items():
            target = pdir / fname
            if (target.exists() or target.is_symlink()) and not is_mmcoop_plot(target):
                kept.append(fname)
            else:
                atomic_write_bytes(target, png)
        if pdir.is_dir():  # drop the report's own plots that this one no longer draws (only its own)
            for old in pdir.glob("*.png"):
                if old.name not in self.plots and is_mmcoop_plot(old):
                    try:
                        old.unlink()
                    except OSError:
                        pass
        if kept:
            warnings.warn(
                f"{pdir}: kept {', '.join(sorted(kept))} (not written by mmcoop); those plots are in "
                f"{REPORT_FILE} only",
                stacklevel=3,
            )
            self.note(
                f"Not saved to {PLOTS_DIR}/ (a file of that name there was not written by mmcoop and is kept; "
                f"the plot is in this page only): {', '.join(sorted(kept))}. Move those files to save the plots."
            )
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


def _kv(d: Mapping[str, Any]) -> str:
    return ", ".join(f"{a}={json.dumps(b) if isinstance(b, (dict, list)) else b}" for a, b in d.items())


def _config_rows(run: RunData) -> list[dict[str, Any]]:
    """What the run really used: a user's model/data target and its options, else the built-in's settings."""
    c = run.config
    train = v if isinstance(v := c.get("train"), dict) else {}
    model = v if isinstance(v := c.get("model"), dict) else {}
    data = v if isinstance(v := c.get("data"), dict) else {}
    if model.get("target"):  # a user builder: name/dim/fusion are unused defaults
        model_text = f"{model['target']} (your code)" + (f"; {_kv(model['options'])}" if model.get("options") else "")
    elif model:
        model_text = _kv({k: v for k, v in model.items() if k != "target" and v not in (None, {}, [])})
    else:
        model_text = None
    data_text = None
    if data.get("target"):
        data_text = f"{data['target']} (your code)" + (f"; {_kv(data['options'])}" if data.get("options") else "")
    rows = [
        ("run", run.name),
        ("dataset", run.dataset_name),
        ("data", data_text),
        ("method", run.method),
        ("method options", c.get("method_options") or None),
        ("debiased", c.get("debiased")),
        ("dataset options", c.get("dataset_options") or None),
        ("modalities", ", ".join(run.modalities) or None),
        ("model", model_text),
        (
            "training",
            ", ".join(
                f"{k}={train[k]}"
                for k in ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "step_size", "gamma", "amp")
                if k in train
            )
            or None,
        ),
        ("seed", c.get("seed")),
        ("epochs run", len(run.metrics) if not run.metrics.empty else None),
    ]
    out = []
    for k, v in rows:
        if v is None:  # not used by this run: left out rather than shown as a default
            continue
        if isinstance(v, dict):
            v = _kv(v)
        out.append({"setting": k, "value": str(v)})
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


def _run_sections(page: _Page, run: RunData, samples: SampleLoader | None = None, k: int = DEFAULT_K) -> None:
    """The sections of a run report; a section without data is left out and listed at the end."""
    mods = run.modalities
    missing: list[str] = []
    # header ----------------------------------------------------------------------------
    page.h2("setup", "Setup")
    page.add(_table(_config_rows(run), ["setting", "value"], pct=[], left=["setting", "value"], wrap=["value"]))
    if run.results:
        page.h2("results", "Test results (best-validation model)")
        page.add(_table(_results_rows(run.results), ["metric", "value"], pct=[], left=["metric"]))
    else:
        missing.append("Test results: No results.json (the run has not finished, or was interrupted before testing).")

    # training curves ---------------------------------------------------------------------------
    best = run.results.get("best_epoch")
    acc_png = plots.accuracy_figure(run.metrics, mods, best if isinstance(best, int) else None)
    if acc_png is not None or not run.metrics.empty:
        page.h2("training", "Training curves")
        page.image(
            "accuracy", acc_png, "accuracy per epoch: validation (fused and per modality alone) and training; losses"
        )
        if not run.metrics.empty:
            records = run.metrics.to_dict("records")
            page.add("<details><summary>metrics.jsonl (all epochs)</summary>" + _table(records) + "</details>")
    else:
        missing.append("Training curves: no metrics.jsonl (or no epoch finished yet).")

    # dataset-level contributions ----------------------------------------------------------------
    contrib_png = plots.contribution_figure(run.metrics, mods)
    if contrib_png is not None:
        page.h2("contribution", "Dataset-level contribution per epoch")
        page.image(
            "contribution",
            contrib_png,
            "mean Shapley value per modality (contrib_<m>) and planned re-sampling copies (copies_<m>) per epoch",
        )

    # per-sample contributions ------------------------------------------------------------------
    vals = _Valuations()
    epochs = list(run.epoch_valuations)
    if not run.epoch_valuations and not run.split_valuations:
        missing.append(
            "Per-sample contributions: no valuation files (valuation/*.parquet); the method does not "
            f"valuate during training. Run `mmcoop value {run.path} --split test` to value the test split, "
            "then redraw this report."
        )
    chosen = {f"epoch {e}": df for e in _choose_epochs(epochs) if (df := vals.get(run.epoch_valuations[e])) is not None}
    split_dfs = {name: df for name, p in run.split_valuations.items() if (df := vals.get(p)) is not None}
    hist_mods = list(mods)
    summary_sources: dict[str, pd.DataFrame] = {}
    if epochs:
        last = vals.get(run.epoch_valuations[epochs[-1]])
        if last is not None:
            summary_sources[f"epoch {epochs[-1]} (train)"] = last
    summary_sources.update({f"{k} split": v for k, v in split_dfs.items()})
    if chosen or split_dfs:
        page.h2("samples", "Per-sample contributions")
    if chosen:
        page.add("<h3>Training set during training (first, middle and last valued epoch)</h3>")
        page.image(
            "phi_hist_epochs",
            plots.phi_histogram_figure(chosen, _mods_of(chosen, hist_mods)),
            "distribution of per-sample Shapley values per modality, training set, chosen epochs",
        )
    if split_dfs:
        page.add("<h3>Valued splits (<code>mmcoop value</code>)</h3>")
        page.image(
            "phi_hist_splits",
            plots.phi_histogram_figure({f"{k} split": v for k, v in split_dfs.items()}, _mods_of(split_dfs, hist_mods)),
            "distribution of per-sample Shapley values per modality, valued splits",
        )
    if summary_sources:
        rows = [r for label, df in summary_sources.items() for r in _summary_rows(label, df)]
        page.add(
            "<h3>Summary</h3>"
            + _table(rows, left=["source", "modality"])
            + '<p class="sub">mean_phi: mean Shapley value (1 = a fully cooperating modality); '
            "unimodal_acc: accuracy of the modality alone; lowest_share: share of samples in which the "
            "modality contributes least (ties split); low_share: share with phi ≤ 0.4 (re-sampled with 2 or "
            "3 copies by the sample-level rule); mean_copies: planned copies per sample.</p>"
        )

    # the per-sample explorer ----------------------------------------------------------------------
    views = [View(name, f"{name} split", df, name) for name, df in split_dfs.items()]
    views += epoch_views(run.epoch_valuations, vals.get)
    if views:
        xmods = _mods_of({v.key: v.frame for v in views}, mods)
        splits, why = _load_samples(run, samples)
        class_names = run.dataset.get("classes") if isinstance(run.dataset.get("classes"), list) else None
        ex = build_explorer(views, xmods, splits, k=k, class_names=class_names, data_note=why)
        page.h2("explorer", "Sample explorer")
        page.add(
            '<p class="sub">Pick a valuation (a valued split, or an epoch of the training set); the galleries '
            f"show the {k} samples each modality contributes least and most to (the modality in question is "
            "outlined), as the model saw them; the table lists every sample: click a header to sort, filter "
            "by class, id, phi range, degraded modality or planned copies, click a row for its values in "
            "every valuation.</p>"
        )
        page.add(ex.html)

    # per-class ------------------------------------------------------------------------------
    per_class: dict[str, pd.DataFrame] = {}
    class_notes = []
    for label, df in summary_sources.items():
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

    # debiased ---------------------------------------------------------------------------------
    deg_sources = {k: v for k, v in summary_sources.items() if "degraded" in v.columns}
    if not deg_sources:
        if summary_sources:
            missing.append(
                "Finding the degraded modality: no 'degraded' column in the valuation files (the dataset "
                "is not debiased)."
            )
    else:
        page.h2("degraded", "Finding the degraded modality (debiased data)")
        rows = []
        for label, df in deg_sources.items():
            try:
                rows.append({"source": label, **degraded_auc(df)})
            except ValueError as e:
                page.note(f"{label}: {e}")
        page.add(_table(rows, left=["source"]))
        page.add(
            '<p class="sub">auc_&lt;m&gt;: AUC of −phi_m for predicting that modality m is the degraded one '
            "(0.5 = chance, 1 = perfect; ties count ½); lowest_is_degraded: share of samples whose lowest-phi "
            "modality is the degraded one (shared minima split); _strict: a unique minimum only; "
            "chance: 1/M.</p>"
        )
        ep_rows = []
        scan = epochs if len(epochs) <= _MAX_EPOCH_SCAN else _choose_epochs(epochs, _MAX_EPOCH_SCAN)
        for e in scan:
            df = vals.get(run.epoch_valuations[e])
            if df is not None and "degraded" in df.columns:
                try:
                    ep_rows.append({"epoch": e, **degraded_auc(df)})
                except ValueError:
                    continue
        page.image(
            "degraded_epochs",
            plots.degraded_epochs_figure(pd.DataFrame(ep_rows), _mods_of(deg_sources, mods)),
            "AUC of −phi for the degraded modality and lowest-phi hit rate per epoch (training set)",
        )
    if vals.errors:
        page.note("Unreadable valuation files skipped: " + "; ".join(vals.errors))
    _missing_list(page, missing)


def _shared_data(samples: SampleLoader | None) -> SampleLoader:
    """``samples`` (or :func:`registered_splits`) remembering its result per data configuration (dataset, options,
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


def _load_samples(run: RunData, samples: SampleLoader | None) -> tuple[Any, str | None]:
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


def _mods_of(dfs: Mapping[str, pd.DataFrame], fallback: Sequence[str]) -> list[str]:
    for df in dfs.values():
        m = df.attrs.get("modalities")
        if m:
            return list(m)
    return list(fallback)


def _run_report(path: Path, samples: SampleLoader | None = None, k: int = DEFAULT_K) -> Path:
    run = load_run_dir(path)
    page = _Page(path, f"mmcoop run: {run.name}")
    for msg in stale_valuations(path):  # derived files that no longer match the run's checkpoint
        page.note(f"Warning: {msg}.")
    _run_sections(page, run, samples, k)
    fp = checkpoint_fingerprint(path, "best")  # which weights this report describes
    page.add(report_source_comment(fp))
    source = f" · from best.pt of epoch {fp['epoch']} (sha256 {fp['sha256'][:12]})" if fp else ""
    sub = _esc(f"{run.dataset_name} · {run.method} · seed {run.config.get('seed', '?')} · {path}{source}")
    return page.write(sub + ".")


# -- compare report ---------------------------------------------------------------------------
def _pm(mean: Any, std: Any, pct: bool) -> str:
    if _is_missing(mean):
        return "–"
    s = 100.0 if pct else 1.0
    std = 0.0 if _is_missing(std) else float(std)
    return f"{float(mean) * s:.2f} ± {std * s:.2f}"


def _summary_table(cmp: CompareData, links: Mapping[str, str] | None = None) -> str:
    s = cmp.summary
    bases = [c[: -len("_mean")] for c in s.columns if c.endswith("_mean") and not c.startswith("gain_")]
    rows = []
    for _, r in s.iterrows():
        row: dict[str, Any] = {"method": r.get("method"), "seeds": r.get("seeds")}
        for b in bases:
            pct = b != "seconds_per_epoch" and _is_pct_key(b)
            name = b.replace("test_", "") + (" (%)" if pct else "")
            row[name] = _pm(r.get(f"{b}_mean"), r.get(f"{b}_std"), pct)
        if links:
            row["run reports"] = links.get(str(r.get("method")), "–")
        rows.append(row)
    return _table(rows, pct=[], left=["method", "run reports"], raw=["run reports"])


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
            if (
                joint is not None
                and not _is_missing(v)
                and not _is_missing(joint.get(f"{key}_mean"))
                and float(joint[f"{key}_mean"]) > 0
            ):
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
                    row[f"joint epochs, {head}"] = (
                        str(int(e.min())) if e.min() == e.max() else f"{int(e.min())}–{int(e.max())}"
                    )
        rows.append(row)
    return rows


def _gain_section(page: _Page, cmp: CompareData, missing: list[str]) -> None:
    methods = plots.gain_methods(cmp.summary)
    if not methods:
        missing.append(
            "Gain over joint training (Figure 1): No paired gains in summary.csv (a comparison without "
            "joint training, or written before gains were recorded): rerun `mmcoop compare` with joint "
            "among the methods."
        )
        return
    page.h2("gain", "Gain over joint training (Figure 1)")
    page.image(
        "figure1_gain",
        plots.gain_figure(cmp.summary, cmp.runs),
        "Figure 1: test-accuracy gain over joint training per method (points), at equal epochs and against "
        "joint training given the same compute; bars = mean over seeds, error bars = 95% paired-t interval, "
        "dots = seeds",
    )
    page.add(_table(_gain_rows(cmp, methods), pct=[], left=["method"]))
    page.add(
        '<p class="sub">gain: test accuracy of the method minus that of joint training with the same seed (same '
        "splits, initialisation and shuffles), in points, averaged over seeds; 95% CI: mean ± t<sub>0.975, n−1"
        "</sub> · sd / √n over the n paired seeds (undefined for one seed). Equal epochs is the paper's protocol; "
        "same visits / same steps compare with joint training run for as many epochs as give it the method's "
        "total training-sample visits / optimizer steps (joint epochs column); visits / steps / s/epoch × joint: "
        "the method's training units seen, optimizer steps taken and time per epoch relative to joint training."
        "</p>"
    )


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
        out.setdefault(str(r.get("method")), []).append(f'<a href="{_esc(rel)}">seed {_esc(r.get("seed"))}</a>')
    return {m: " · ".join(v) for m, v in out.items()}


def _compare_sections(page: _Page, cmp: CompareData, samples: SampleLoader | None = None, k: int = DEFAULT_K) -> None:
    runs = cmp.runs
    missing: list[str] = []
    samples = _shared_data(samples)  # the runs of a comparison mostly share their data: load it once per config
    reports: dict[Path, Path] = {}
    report_errors: dict[Path, str] = {}
    for _, r in runs.iterrows():  # every run's own report first, so the tables can link them
        rpath = r.get("run_path")
        if isinstance(rpath, Path) and rpath not in reports:
            try:
                reports[rpath] = write_report(rpath, samples=samples, top_k=k)
            except Exception as e:  # noqa: BLE001 - one broken run must not stop the comparison
                report_errors[rpath] = f"{rpath.name}: report failed ({type(e).__name__}: {e})"
    _gain_section(page, cmp, missing)
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
        page.add(_summary_table(cmp, _run_links(cmp, page.root, reports)))

    if runs.empty:
        missing.append("Runs: no runs (compare.csv absent and no run directories with results.json inside).")
        _missing_list(page, missing)
        return
    page.h2("runs", "Runs")
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
            if rpath in reports:
                rel = os.path.relpath(reports[rpath], page.root).replace(os.sep, "/")
                link = f'<a href="{_esc(rel)}">{_esc(rpath.name)}</a>'
            else:
                link = _esc(report_errors.get(rpath, f"{rpath.name}: no report"))
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
        hmods = _mods_of(hist_sources, mods)
        page.image(
            "compare_phi_hist",
            plots.phi_histogram_figure(hist_sources, hmods),
            "distribution of per-sample Shapley values per modality, first seed of each method",
        )
    else:
        missing.append("Per-sample contributions by method: no run of this comparison has valuation files.")
    _missing_list(page, missing)


def _missing_list(page: _Page, missing: Sequence[str]) -> None:
    if missing:
        page.add(
            '<p class="sub">Not in this report:</p><ul class="missing">'
            + "".join(f"<li>{_esc(m)}</li>" for m in missing)
            + "</ul>"
        )


def _compare_report(path: Path, samples: SampleLoader | None = None, k: int = DEFAULT_K) -> Path:
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
    _compare_sections(page, cmp, samples, k)
    return page.write(_esc(" · ".join(bits + [str(path)])) + ".")


# -- entry point ---------------------------------------------------------------------------------
def write_report(path: str | os.PathLike, *, samples: SampleLoader | None = None, top_k: int = DEFAULT_K) -> Path:
    """Write ``<path>/report.html`` for a run directory or a compare directory.

    The HTML is self-contained (PNG plots, sample thumbnails and audio embedded as data
    URIs, a small inline script for the sample explorer; nothing is fetched from the
    network); the same plots are written to ``<path>/plots/*.png``. Both are written
    atomically. For a compare directory (``compare.csv``/``summary.csv``, or a folder of
    run directories) every run's own report is written too and linked.

    Args:
        path: a run directory (``config.yaml``/``metrics.jsonl``/``results.json``) or a
            compare directory.
        samples: ``fn(run_dir) -> DatasetSplits | None``, the run's data for drawing its
            samples in the explorer (default: rebuilt from ``config.yaml`` for registered
            datasets, see :func:`mmcoop.report.explorer.registered_splits`).
        top_k: samples per explorer gallery (least and most, per modality).

    Example:
        >>> write_report("runs/avmnist_joint_seed0", top_k=8)  # doctest: +SKIP
        PosixPath('runs/avmnist_joint_seed0/report.html')

    Returns:
        The path of ``report.html``.

    Raises:
        MMCoopError: ``path`` is not a directory, or neither a run nor a compare directory.
    """
    p = Path(path)
    if not p.is_dir():
        raise MMCoopError(f"{p} is not a directory; pass a run directory or a compare directory")
    if top_k < 1:
        raise MMCoopError(f"top_k must be >= 1, got {top_k}")
    if is_compare_dir(p):
        return _compare_report(p, samples, top_k)
    if is_run_dir(p):
        return _run_report(p, samples, top_k)
    if child_run_dirs(p):
        return _compare_report(p, samples, top_k)
    raise MMCoopError(
        f"{p} is neither a run directory (config.yaml, metrics.jsonl, results.json) nor a compare directory "
        "(compare.csv, summary.csv, or run directories inside); pass a directory made by `mmcoop train` or "
        "`mmcoop compare`"
    )
