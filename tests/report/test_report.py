"""Report layer: AUC helpers, summaries and the HTML report of fake run / compare directories."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _helpers import write_png
from mmcoop.errors import MMCoopError
from mmcoop.report import (
    degraded_auc,
    load_compare_dir,
    per_class_contributions,
    rank_auc,
    read_valuation,
    summarize_contributions,
    write_report,
)
from mmcoop.report.plots import phi_bins

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PHI_GRID = np.array([-0.5, 0.0, 0.5, 1.0, 1.5])


# -- fake run directories --------------------------------------------------------------------
def _valuation_frame(
    rng: np.random.Generator, n: int, mods: tuple[str, ...], classes: int = 3, degraded: bool = True
) -> pd.DataFrame:
    label = rng.integers(0, classes, n)
    data: dict[str, np.ndarray] = {
        "index": np.arange(n),
        "label": label,
        "fused_pred": np.where(rng.random(n) < 0.8, label, (label + 1) % classes),
    }
    data["pred_empty"] = np.zeros(n, dtype=np.int64)
    for m in mods:
        data[f"pred_{m}"] = np.where(rng.random(n) < 0.6, label, (label + 1) % classes)
    data["pred_" + "+".join(mods)] = data["fused_pred"]
    deg = rng.integers(0, len(mods), n)
    for k, m in enumerate(mods):  # the degraded modality tends to get a lower value
        phi = rng.choice(PHI_GRID, n)
        data[f"phi_{m}"] = np.where(deg == k, np.minimum(phi, rng.choice(PHI_GRID, n)), phi).astype(np.float32)
    if degraded:
        data["degraded"] = deg
    for m in mods:
        data[f"copies_{m}"] = rng.integers(0, 4, n)
    return pd.DataFrame(data)


def make_run(
    root: Path,
    name: str,
    *,
    mods: tuple[str, ...] = ("audio", "visual"),
    epochs: int = 3,
    method: str = "sample-level",
    seed: int = 0,
    valuate: bool = True,
    debiased: bool = True,
    test_split: bool = False,
    acc: float = 0.8,
) -> Path:
    rng = np.random.default_rng(seed)
    run = root / name
    (run / "valuation").mkdir(parents=True, exist_ok=True)
    deb = "debiased:\n  strength: 0.8\n  mode: noise\n" if debiased else "debiased: null\n"
    (run / "config.yaml").write_text(
        f"name: {name}\ndataset: synthetic\ndataset_options: {{}}\n{deb}method: {method}\n"
        "method_options:\n  warmup: 1\nmodel:\n  dim: 64\n  fusion: concat\n"
        f"train:\n  epochs: {epochs}\n  batch_size: 64\n  optimizer: adam\n  lr: 0.001\nseed: {seed}\n"
    )
    (run / "dataset.json").write_text(json.dumps({"name": "synthetic" + ("-debiased" if debiased else "")}))
    lines = []
    for e in range(1, epochs + 1):
        rec = {
            "epoch": e,
            "lr": 0.001,
            "train_loss": 1.0 / e,
            "train_acc": 0.5 + 0.1 * e,
            "train_units": 400,
            "val_acc": 0.6 + 0.05 * e,
            "val_f1": 0.6,
            "val_loss": 0.9 / e,
            "is_best": True,
            "best_val_acc": 0.6 + 0.05 * e,
            "seconds": 0.1,
        }
        for k, m in enumerate(mods):
            rec[f"val_acc_{m}"] = 0.4 + 0.05 * e + 0.1 * k
        if valuate and e > 1:
            for k, m in enumerate(mods):
                rec[f"contrib_{m}"] = 0.7 + 0.05 * k
                rec[f"copies_{m}"] = 200 - 10 * k
            rec.update(train_size=900, valued_samples=400, time_valuation_s=0.01)
        lines.append(json.dumps(rec))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    res = {
        "test_acc": acc,
        "test_f1": acc - 0.01,
        "test_loss": 0.5,
        "best_epoch": epochs,
        "best_val_acc": 0.75,
        "seconds_per_epoch": 0.1,
        "epochs": epochs,
    }
    res.update({f"test_acc_{m}": acc - 0.1 * (k + 1) for k, m in enumerate(mods)})
    (run / "results.json").write_text(json.dumps(res))
    if valuate:
        for e in range(2, epochs + 1):
            _valuation_frame(rng, 60, mods, degraded=debiased).to_parquet(run / "valuation" / f"epoch_{e:03d}.parquet")
    if test_split:
        _valuation_frame(rng, 40, mods, degraded=debiased).drop(columns=[f"copies_{m}" for m in mods]).to_parquet(
            run / "valuation" / "test.parquet"
        )
    return run


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.imgs: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "a" and a.get("href", "").endswith(".html"):
            self.links.append(a["href"])


def parse_report(path: Path) -> _Collect:
    text = path.read_text(encoding="utf-8")
    p = _Collect()
    p.feed(text)
    p.close()
    assert text.lstrip().startswith("<!DOCTYPE html>")
    for tag in ("html", "head", "body", "h1"):
        assert tag in p.tags
    for src in p.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(PNG_MAGIC)
    return p


# -- AUC ------------------------------------------------------------------------------------
def test_rank_auc_matches_sklearn_with_ties():
    from sklearn import metrics  # a dev dependency: the reference implementation

    rng = np.random.default_rng(0)
    for trial in range(30):
        n = int(rng.integers(2, 200))
        y = rng.random(n) < rng.uniform(0.1, 0.9)
        if y.all() or not y.any():
            y[0] = not y[0]
        # small integer grids give many ties; every other trial uses continuous scores
        s = rng.integers(-2, 3, n) * 0.5 if trial % 2 == 0 else rng.normal(size=n) + y
        assert rank_auc(s, y) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)


def test_rank_auc_edge_cases():
    assert rank_auc([1, 2, 3], [1, 1, 0]) == pytest.approx(0.0)
    assert rank_auc([3, 2, 1], [1, 1, 0]) == pytest.approx(1.0)
    assert rank_auc([1, 1, 1, 1], [1, 0, 1, 0]) == pytest.approx(0.5)
    assert np.isnan(rank_auc([0.1, 0.2], [1, 1]))
    assert np.isnan(rank_auc([], []))
    assert rank_auc([np.nan, 1, 0], [0, 1, 0]) == pytest.approx(1.0)  # NaN scores are dropped
    with pytest.raises(ValueError):
        rank_auc([1, 2], [1])


def test_degraded_auc_against_sklearn():
    from sklearn import metrics  # a dev dependency: the reference implementation

    rng = np.random.default_rng(1)
    df = _valuation_frame(rng, 300, ("a", "v", "t"))
    out = degraded_auc(df)
    assert out["samples"] == 300 and out["chance"] == pytest.approx(1 / 3)
    for k, m in enumerate("avt"):
        expect = metrics.roc_auc_score(df["degraded"] == k, -df[f"phi_{m}"])
        assert out[f"auc_{m}"] == pytest.approx(expect, abs=1e-12)
    assert out["auc_mean"] == pytest.approx(np.mean([out[f"auc_{m}"] for m in "avt"]))
    assert 0 <= out["lowest_is_degraded_strict"] <= out["lowest_is_degraded"] <= 1
    assert out["lowest_is_degraded"] > 1 / 3  # the fake data lowers the degraded modality's value


def test_degraded_auc_exact_cases():
    perfect = pd.DataFrame({"phi_a": [0.0, 1.0, -0.5, 1.5], "phi_v": [1.0, 0.5, 1.0, 0.0], "degraded": [0, 1, 0, 1]})
    out = degraded_auc(perfect)
    assert out["auc_a"] == 1.0 and out["auc_v"] == 1.0
    assert out["lowest_is_degraded"] == 1.0 and out["lowest_is_degraded_strict"] == 1.0
    ties = pd.DataFrame({"phi_a": [1.0] * 4, "phi_v": [1.0] * 4, "degraded": [0, 1, 0, 1]})
    out = degraded_auc(ties)
    assert out["auc_a"] == 0.5 and out["lowest_is_degraded"] == 0.5 and out["lowest_is_degraded_strict"] == 0.0
    # explicit modality order; -1 = nothing degraded (counted as negative, left out of the share)
    out = degraded_auc(
        pd.DataFrame({"phi_v": [1.0, 0.0, 1.0], "phi_a": [0.0, 1.0, 1.0], "degraded": [0, 1, -1]}),
        modalities=["a", "v"],
    )
    assert out["lowest_is_degraded"] == 1.0 and out["auc_a"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="degraded"):
        degraded_auc(pd.DataFrame({"phi_a": [1.0], "phi_v": [0.0]}))


# -- summaries -----------------------------------------------------------------------------
def test_summaries(tmp_path):
    df = pd.DataFrame(
        {
            "index": [0, 1, 2, 3],
            "label": [0, 0, 1, 1],
            "fused_pred": [0, 0, 1, 0],
            "pred_a": [0, 1, 1, 1],
            "pred_v": [0, 0, 0, 0],
            "phi_a": [1.5, 0.5, 1.0, -0.5],
            "phi_v": [0.5, 1.5, 1.0, 0.5],
        }
    )
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    s = summarize_contributions(path)
    assert list(s.index) == ["a", "v"]
    assert s.loc["a", "mean_phi"] == pytest.approx(0.625)
    assert s.loc["a", "unimodal_acc"] == pytest.approx(0.75) and s.loc["v", "unimodal_acc"] == pytest.approx(0.5)
    assert s["lowest_share"].sum() == pytest.approx(1.0)
    assert s.loc["a", "lowest_share"] == pytest.approx((0 + 1 + 0.5 + 1) / 4)
    assert s.loc["a", "low_share"] == pytest.approx(0.25)
    assert np.isnan(s.loc["a", "mean_copies"])
    pc = per_class_contributions(df)
    assert pc.loc[0, "a"] == pytest.approx(1.0) and pc.loc[1, "v"] == pytest.approx(0.75)


def test_read_valuation_uses_metadata_order(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.table({"index": [0, 1], "label": [0, 1], "phi_a": [1.0, 0.0], "phi_v": [0.0, 1.0], "degraded": [0, 1]})
    t = t.replace_schema_metadata({b"mmcoop.valuation": json.dumps({"modalities": ["v", "a"]}).encode()})
    pq.write_table(t, tmp_path / "x.parquet")
    df = read_valuation(tmp_path / "x.parquet")
    assert df.attrs["modalities"] == ["v", "a"]
    # degraded indexes the metadata order: sample 0 has v degraded (phi_v = 0) -> perfect
    assert degraded_auc(df)["lowest_is_degraded"] == 1.0


def test_phi_bins_centred_on_halves():
    edges, grid = phi_bins(np.array([-0.5, 0.0, 1.0, 1.5, 0.5]))
    assert grid
    np.testing.assert_allclose((edges[:-1] + edges[1:]) / 2, PHI_GRID)
    edges, grid = phi_bins(np.random.default_rng(0).normal(size=50), bins=10)
    assert not grid and len(edges) == 11


# -- run reports -------------------------------------------------------------------------
def test_run_report_full(tmp_path):
    run = make_run(tmp_path, "run_a", test_split=True)
    out = write_report(run)
    assert out == run / "report.html" and out.is_file()
    p = parse_report(out)
    assert len(p.imgs) >= 6
    names = {f.name for f in (run / "plots").glob("*.png")}
    assert {
        "accuracy.png",
        "contribution.png",
        "phi_hist_epochs.png",
        "phi_hist_splits.png",
        "per_class.png",
        "degraded_epochs.png",
    } <= names
    for f in (run / "plots").glob("*.png"):
        assert f.read_bytes().startswith(PNG_MAGIC)
    text = out.read_text()
    assert "auc_audio" in text and "lowest_is_degraded" in text and "test split" in text
    assert not list(run.glob(".*.tmp")) and not list((run / "plots").glob(".*"))


def test_run_report_three_modalities_not_debiased(tmp_path):
    run = make_run(tmp_path, "run3", mods=("a", "b", "c"), debiased=False, epochs=2)
    p = parse_report(write_report(run))
    assert p.imgs
    text = (run / "report.html").read_text()
    assert "not debiased" in text
    assert not (run / "plots" / "degraded_epochs.png").exists()


def test_run_report_missing_data(tmp_path):
    # joint-like run: no valuation at all
    run = make_run(tmp_path, "joint", method="joint", valuate=False)
    p = parse_report(write_report(run))
    assert {f.name for f in (run / "plots").glob("*.png")} == {"accuracy.png"} and len(p.imgs) == 1
    assert "mmcoop value" in (run / "report.html").read_text()
    # only a config (a run that never finished an epoch)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text("name: bare\ndataset: synthetic\nmethod: joint\n")
    p = parse_report(write_report(bare))
    assert p.imgs == []
    assert "No results.json" in (bare / "report.html").read_text()
    # a half-written metrics line, a broken parquet and a broken config do not stop the report
    broken = make_run(tmp_path, "broken", epochs=3)
    with open(broken / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 4, "val_ac')
    (broken / "valuation" / "epoch_003.parquet").write_bytes(b"not a parquet")
    (broken / "config.yaml").write_text("name: [unclosed\n")
    text = write_report(broken).read_text()
    parse_report(broken / "report.html")
    assert "Unreadable valuation files skipped" in text and "epoch_003.parquet" in text


def test_report_redraw_drops_stale_plots(tmp_path):
    run = make_run(tmp_path, "r")
    write_report(run)
    assert (run / "plots" / "contribution.png").exists()
    for f in (run / "valuation").glob("*.parquet"):
        f.unlink()
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    (run / "metrics.jsonl").write_text(
        "".join(
            json.dumps({k: v for k, v in r.items() if not k.startswith(("contrib_", "copies_"))}) + "\n" for r in lines
        )
    )
    write_report(run)
    assert {f.name for f in (run / "plots").glob("*.png")} == {"accuracy.png"}


def test_report_keeps_a_users_pngs_in_plots(tmp_path):
    """The report replaces and drops only the PNGs it wrote: a user's figure beside them survives a
    redraw, and a user's file named like a report plot is kept (the page says so; the plot is inline)."""
    run = make_run(tmp_path, "r")
    mine = write_png(run / "plots" / "mine.png")
    theirs = write_png(run / "plots" / "accuracy.png")  # the name of a report plot
    before = theirs.read_bytes()
    with pytest.warns(UserWarning, match="accuracy.png"):
        out = write_report(run)
    assert theirs.read_bytes() == before and mine.is_file()
    text = out.read_text()
    assert "Not saved to plots/" in text and "accuracy.png" in text
    assert len(parse_report(out).imgs) >= 2  # the accuracy plot is still drawn, inline
    assert (run / "plots" / "contribution.png").is_file()  # the others are saved
    write_report(run)  # a redraw: the user's files are still there, byte for byte
    assert theirs.read_bytes() == before and mine.is_file()


def test_write_report_rejects_bad_paths(tmp_path):
    with pytest.raises(MMCoopError, match="not a directory"):
        write_report(tmp_path / "nope")
    with pytest.raises(MMCoopError, match="neither a run"):
        write_report(tmp_path)


# -- compare reports -------------------------------------------------------------------------
def _make_compare(root: Path, write_csv: bool = True, valuations: bool = True) -> Path:
    cdir = root / "cmp"
    rows = []
    for seed in (0, 1):
        for method, valuate in (("joint", False), ("sample-level", valuations)):
            name = f"{method}_seed{seed}"
            acc = 0.8 + 0.02 * seed + (0.03 if method == "sample-level" else 0)
            make_run(
                cdir,
                name,
                method=method,
                seed=seed,
                valuate=valuate,
                epochs=2,
                acc=acc,
                test_split=valuations and method == "joint" and seed == 0,
            )
            # run_dir as written on another machine: resolved by name inside the compare dir
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    "run_dir": f"/elsewhere/cmp/{name}",
                    "test_acc": acc,
                    "test_f1": acc - 0.01,
                    "test_acc_audio": acc - 0.1,
                    "test_acc_visual": acc - 0.2,
                    "seconds_per_epoch": 0.1,
                    "best_val_acc": 0.75,
                }
            )
    if write_csv:
        df = pd.DataFrame(rows)
        df.to_csv(cdir / "compare.csv", index=False)
        g = df.groupby("method", sort=False)
        metrics = ["test_acc", "test_f1", "test_acc_audio", "test_acc_visual", "seconds_per_epoch", "best_val_acc"]
        summ = pd.concat([g[metrics].mean().add_suffix("_mean"), g[metrics].std().add_suffix("_std")], axis=1)
        summ.insert(0, "seeds", g.size())
        summ.reset_index().to_csv(cdir / "summary.csv", index=False)
        (cdir / "base_config.yaml").write_text("dataset: synthetic\ndebiased:\n  strength: 0.8\ntrain:\n  epochs: 2\n")
    return cdir


def test_compare_report(tmp_path):
    cdir = _make_compare(tmp_path)
    out = write_report(cdir)
    assert out == cdir / "report.html"
    p = parse_report(out)
    assert len(p.imgs) == 2  # accuracy bars + per-sample histograms
    want = sorted(f"{m}_seed{s}/report.html" for m in ("joint", "sample-level") for s in (0, 1))
    assert sorted(p.links) == sorted(want * 2)  # linked from the summary (per method) and the runs table
    text = out.read_text()
    summary = text[text.index('id="summary"') : text.index('id="runs"')]
    assert (
        'href="sample-level_seed0/report.html">seed 0</a> · <a href="sample-level_seed1/report.html">seed 1' in summary
    )
    for link in set(p.links):
        parse_report(cdir / link)
    assert (cdir / "plots" / "compare_accuracy.png").read_bytes().startswith(PNG_MAGIC)
    text = out.read_text()
    assert "synthetic-debiased" in text and "83.00 ± 1.41" in text  # sample-level acc mean ± std in %
    assert "test split" in text  # the joint seed-0 run was valued on the test split


def test_compare_report_without_csv(tmp_path):
    cdir = _make_compare(tmp_path, write_csv=False, valuations=False)
    cmp = load_compare_dir(cdir)
    assert len(cmp.runs) == 4 and set(cmp.summary["method"]) == {"joint", "sample-level"}
    assert cmp.modalities == ["audio", "visual"]
    row = cmp.summary.set_index("method").loc["sample-level"]
    assert row["seeds"] == 2 and row["test_acc_mean"] == pytest.approx(0.84)
    assert row["test_acc_std"] == pytest.approx(np.std([0.83, 0.85], ddof=1))
    p = parse_report(write_report(cdir))
    assert len(set(p.links)) == 4 and p.imgs


def test_compare_report_missing_runs(tmp_path):
    cdir = tmp_path / "c"
    cdir.mkdir()
    pd.DataFrame([{"method": "joint", "seed": 0, "run_dir": "gone", "test_acc": 0.5}]).to_csv(
        cdir / "compare.csv", index=False
    )
    p = parse_report(write_report(cdir))
    assert p.links == [] and len(p.imgs) == 1
    assert "not found" in (cdir / "report.html").read_text()


def test_report_layer_reads_files_only():
    """The report layer must not import the training stack (it draws from run directories only)."""
    import ast

    import mmcoop.report as rep

    forbidden = ("mmcoop.train", "mmcoop.experiment", "mmcoop.methods", "mmcoop.models", "mmcoop.valuation", "torch")
    for f in Path(rep.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            mods = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            )
            for m in mods:
                assert not m.startswith(forbidden), f"{f.name} imports {m}"
