"""Tables a paper takes: methods as rows, datasets as column groups, from comparisons and runs.

`collect` reads the per-seed rows (``compare.csv`` of a comparison, ``results.json`` of
a run), `build_table` summarises them (mean ± std over seeds, in percent; the paired
difference to the baseline with its interval, from `mmcoop.experiment.stats`, as
``compare`` computes its gains), and `to_latex` (booktabs), `to_markdown` and
`to_csv` render it; the best mean of each column is in bold. The shape follows
BalanceBenchmark's headline table (GeWu-Lab/BalanceBenchmark 4c1482f, README: methods as
rows, one column group per dataset).
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import yaml

from mmcoop.errors import MMCoopError
from mmcoop.experiment.stats import paired_gains, summarize_gains
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.rundir import BASE_CONFIG_FILE, COMPARE_CSV, CONFIG_FILE, RESULTS_FILE

#: Column keys: a compare.csv column and how a table heads it.
BASE_METRICS: tuple[tuple[str, str], ...] = (("test_acc", "Acc"), ("test_f1", "Macro-F1"))
#: The first line of the Markdown and LaTeX files (files without it are not replaced).
MARK = "mmcoop table"


@dataclass
class Cell:
    """One number of the table: mean and std over ``n`` seeds (percent), or a paired difference."""

    mean: float
    std: float = math.nan
    n: int = 0
    low: float = math.nan
    high: float = math.nan
    best: bool = False


@dataclass
class Table:
    """The summarised table: ``columns`` per dataset, ``cells[(method, dataset, column)]``."""

    methods: list[str]
    datasets: list[str]
    columns: list[tuple[str, str]]  # (key, heading); difference columns have keys "diff:<metric>"
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    baseline: str = "joint"


def _label(cfg: dict[str, Any]) -> str:
    return str(cfg.get("dataset") or "?") + ("-debiased" if cfg.get("debiased") else "")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, yaml.YAMLError) as e:
        raise MMCoopError(f"{path} cannot be read ({e}); restore it or leave that folder out") from None
    return data if isinstance(data, dict) else {}


def collect(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """Per-seed rows of comparisons (``compare.csv``, compared methods only) and runs (``results.json``).

    Returns:
        One row per (dataset, method, seed) with the runs' ``test_*`` and ``probe_*`` columns
            (fractions in ``[0, 1]``); ``dataset`` is the dataset name (``-debiased`` when debiased).

    Raises:
        MMCoopError: a path is neither a comparison nor a finished run.
    """
    frames = []
    for raw in paths:
        p = Path(raw)
        if (p / COMPARE_CSV).is_file():
            try:
                df = pd.read_csv(p / COMPARE_CSV)
            except Exception as e:  # noqa: BLE001 - any unreadable csv: one message
                raise MMCoopError(f"{p / COMPARE_CSV} cannot be read ({e}); rerun `mmcoop compare`") from None
            if "role" in df.columns:
                df = df[df["role"] == "method"]
            df = df.assign(dataset=_label(_read_yaml(p / BASE_CONFIG_FILE)), source=str(p))
        elif (p / RESULTS_FILE).is_file():
            cfg = _read_yaml(p / CONFIG_FILE)
            try:
                results = json.loads((p / RESULTS_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise MMCoopError(f"{p / RESULTS_FILE} cannot be read ({e}); rerun the run") from None
            row: dict[str, Any] = {
                k: v for k, v in results.items() if k.startswith("test_") and isinstance(v, (int, float))
            }
            probe = p / "probe.json"
            if probe.is_file():
                from mmcoop.utils.probefile import read_probe

                for name, pr in ((read_probe(p) or {}).get("test", {}).get("probes") or {}).items():
                    row[f"probe_acc_{name}"], row[f"probe_f1_{name}"] = pr["acc"], pr["macro_f1"]
            row.update(
                method=str(cfg.get("method") or "?"), seed=cfg.get("seed", 0), dataset=_label(cfg), source=str(p)
            )
            df = pd.DataFrame([row])
        else:
            raise MMCoopError(
                f"{p} is neither a comparison (compare.csv) nor a finished run (results.json); pass folders made by "
                "`mmcoop compare` or `mmcoop train`"
            )
        frames.append(df)
    if not frames:
        raise MMCoopError("no comparison or run given; pass at least one folder")
    out = pd.concat(frames, ignore_index=True)
    dup = out.duplicated(["dataset", "method", "seed"])
    if dup.any():
        r = out[dup].iloc[0]
        raise MMCoopError(
            f"{r['dataset']} / {r['method']} / seed {r['seed']} appears in more than one of the folders given; "
            "pass each run once"
        )
    return out


def metric_columns(rows: pd.DataFrame, modalities: bool = False, probe: bool = False) -> list[tuple[str, str]]:
    """The metric columns of a table: accuracy and macro-F1, optionally each modality alone and the probes."""
    cols = [(k, h) for k, h in BASE_METRICS if k in rows.columns]
    if modalities:
        cols += [(c, f"{c[len('test_acc_') :]} alone") for c in rows.columns if c.startswith("test_acc_")]
    if probe:
        cols += [(c, f"probe {c[len('probe_acc_') :]}") for c in rows.columns if c.startswith("probe_acc_")]
    return cols


def build_table(
    rows: pd.DataFrame,
    columns: Sequence[tuple[str, str]],
    diffs: Sequence[str] = ("test_acc",),
    baseline: str = "joint",
    level: float = 0.95,
) -> Table:
    """Mean ± std over seeds (percent) per (method, dataset, column), the best mean of each column
    marked, and for each metric of ``diffs`` the paired difference to ``baseline`` (same dataset and
    seed) with its ``level`` paired-t interval (`mmcoop.experiment.stats.summarize_gains`)."""
    datasets = list(dict.fromkeys(rows["dataset"]))
    methods = list(dict.fromkeys(rows["method"].astype(str)))
    if baseline in methods:
        methods.insert(0, methods.pop(methods.index(baseline)))
    cols = list(columns) + [(f"diff:{d}", f"Δ {dict(columns).get(d, d)} vs {baseline}") for d in diffs]
    table = Table(methods, datasets, cols, baseline=baseline)
    for ds in datasets:
        part = rows[rows["dataset"] == ds]
        for key, _ in columns:
            for m in methods:
                vals = pd.to_numeric(part.loc[part["method"].astype(str) == m, key], errors="coerce").dropna()
                if len(vals):
                    std = float(vals.std(ddof=1)) * 100 if len(vals) > 1 else 0.0
                    table.cells[(m, ds, key)] = Cell(float(vals.mean()) * 100, std, len(vals))
            present = [table.cells[(m, ds, key)] for m in methods if (m, ds, key) in table.cells]
            if len(present) > 1:
                top = max(c.mean for c in present)
                for c in present:
                    c.best = c.mean == top
        base = part[part["method"].astype(str) == baseline]
        for d in diffs:
            if d not in part.columns or base.empty:
                continue
            ref = dict(zip(base["seed"], pd.to_numeric(base[d], errors="coerce")))
            for m in methods:
                if m == baseline:
                    continue
                mine = part[part["method"].astype(str) == m]
                got = dict(zip(mine["seed"], pd.to_numeric(mine[d], errors="coerce")))
                got = {s: v for s, v in got.items() if s in ref and not math.isnan(v) and not math.isnan(ref[s])}
                if not got:
                    continue
                g = summarize_gains(list(paired_gains(got, ref).values()), level)
                table.cells[(m, ds, f"diff:{d}")] = Cell(g.mean, g.sd, g.n, g.low, g.high)
    return table


def _pm(c: Cell, plus_minus: str) -> str:
    s = f"{c.mean:.2f}"
    return s if c.n <= 1 or math.isnan(c.std) else f"{s} {plus_minus} {c.std:.2f}"


def _diff(c: Cell, minus: str = "-") -> str:
    def f(x: float) -> str:
        return f"{x:+.2f}".replace("-", minus)

    if math.isnan(c.low):
        return f"{f(c.mean)} (n={c.n})"
    return f"{f(c.mean)} [{f(c.low)}, {f(c.high)}]"


def _text(t: Table, m: str, ds: str, key: str, pm: str, bold: tuple[str, str], minus: str = "-") -> str:
    c = t.cells.get((m, ds, key))
    if c is None:
        return "–" if m != t.baseline or not key.startswith("diff:") else ""
    s = _diff(c, minus) if key.startswith("diff:") else _pm(c, pm)
    return f"{bold[0]}{s}{bold[1]}" if c.best else s


def to_markdown(t: Table) -> str:
    """A Markdown table: one column per (dataset, metric), the best in bold."""
    head = ["Method"] + [f"{ds} {h}" for ds in t.datasets for _, h in t.columns]
    lines = [f"<!-- {MARK}: mean ± std over seeds (%), best in bold; Δ: paired difference (points) [95% CI] -->"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for m in t.methods:
        cells = [_text(t, m, ds, k, "±", ("**", "**")) for ds in t.datasets for k, _ in t.columns]
        lines.append("| " + " | ".join([m.replace("|", "\\|"), *cells]) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def latex_escape(s: str) -> str:
    """``s`` with LaTeX's special characters escaped."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def to_latex(t: Table, caption: str | None = None) -> str:
    """A booktabs ``table`` environment: a column group per dataset (``\\multicolumn`` + ``\\cmidrule``)."""
    k = len(t.columns)
    spec = "l" + ("r" * k) * len(t.datasets)
    out = [f"% {MARK}: needs \\usepackage{{booktabs}}", r"\begin{table}[t]", r"\centering", r"\small"]
    out.append(rf"\begin{{tabular}}{{{spec}}}")
    out.append(r"\toprule")
    groups = " & ".join(rf"\multicolumn{{{k}}}{{c}}{{{latex_escape(ds)}}}" for ds in t.datasets)
    out.append(f" & {groups} \\\\")
    out.append(" ".join(rf"\cmidrule(lr){{{2 + i * k}-{1 + (i + 1) * k}}}" for i in range(len(t.datasets))))
    heads = " & ".join(
        latex_escape(h) if not h.startswith("Δ") else r"$\Delta$" + latex_escape(h[1:])
        for _ in t.datasets
        for _, h in t.columns
    )
    out.append(f"Method & {heads} \\\\")
    out.append(r"\midrule")
    for m in t.methods:
        cells = [
            _text(t, m, ds, key, r"$\pm$", (r"\textbf{", "}"), minus="$-$").replace("–", "--")
            for ds in t.datasets
            for key, _ in t.columns
        ]
        out.append(" & ".join([latex_escape(m), *cells]) + r" \\")
    out.append(r"\bottomrule")
    out.append(r"\end{tabular}")
    cap = caption or (
        "Test accuracy and macro-F1 (\\%), mean $\\pm$ std over seeds; best in bold; $\\Delta$: paired difference "
        f"to {latex_escape(t.baseline)} (points) with its 95\\% paired-$t$ interval."
    )
    out.append(rf"\caption{{{cap}}}")
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def to_csv(t: Table) -> str:
    """One line per (dataset, method, column): mean, std, n, low, high, best (percent / points)."""
    recs = []
    for ds in t.datasets:
        for m in t.methods:
            for key, head in t.columns:
                c = t.cells.get((m, ds, key))
                if c is not None:
                    recs.append(
                        {
                            "dataset": ds,
                            "method": m,
                            "column": key,
                            "heading": head,
                            "mean": c.mean,
                            "std": c.std,
                            "n": c.n,
                            "low": c.low,
                            "high": c.high,
                            "best": c.best,
                        }
                    )
    buf = io.StringIO()
    pd.DataFrame(recs).to_csv(buf, index=False)
    return buf.getvalue()


_CSV_HEAD = "dataset,method,column,heading,mean,std,n,low,high,best"


def _ours(path: Path) -> bool:
    first = path.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
    return MARK in first or first.strip() == _CSV_HEAD


def write_tables(t: Table, prefix: str | os.PathLike) -> list[Path]:
    """Write ``<prefix>.tex``, ``<prefix>.md`` and ``<prefix>.csv`` atomically.

    Raises:
        MMCoopError: one of them exists and was not written by ``mmcoop table`` (it is kept).
    """
    base = Path(prefix)
    files = {
        base.with_name(base.name + ext): text
        for ext, text in ((".tex", to_latex(t)), (".md", to_markdown(t)), (".csv", to_csv(t)))
    }
    foreign = [p for p in files if p.exists() and not (p.is_file() and _ours(p))]
    if foreign:
        raise MMCoopError(
            f"{', '.join(map(str, foreign))} exist(s) and were not written by `mmcoop table`; they are kept: "
            "pass another --out"
        )
    return [atomic_write_text(p, text) for p, text in files.items()]
