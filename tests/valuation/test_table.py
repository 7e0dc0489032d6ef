"""ValuationTable: summaries, pandas and parquet round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmcoop.errors import DataError
from mmcoop.valuation import ValuationTable, coalition_masks, coalition_values, shapley_from_coalitions

pytestmark = pytest.mark.usefixtures("one_thread")


def make_table(n: int = 50, num_classes: int = 4, seed: int = 0) -> ValuationTable:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, num_classes, (n,), generator=g)
    preds = torch.randint(0, num_classes, (n, 4), generator=g)
    logits = torch.nn.functional.one_hot(preds, num_classes).float()
    masks = coalition_masks(2)
    values = coalition_values(logits, label, masks, "paper")
    return ValuationTable(
        modalities=["audio", "visual"],
        index=torch.arange(100, 100 + n),
        label=label,
        phi=shapley_from_coalitions(values),
        values=values,
        coalition_preds=preds,
        extras={
            "degraded": torch.randint(0, 2, (n,), generator=g),
            "clean": torch.rand(n, generator=g) > 0.5,
            "weight": torch.rand(n, generator=g, dtype=torch.float64),
        },
        split="train",
        info={"epoch": 3},
    )


def assert_tables_equal(a: ValuationTable, b: ValuationTable) -> None:
    for name in ("index", "label", "phi", "values", "coalition_preds", "masks"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name
    assert set(a.extras) == set(b.extras)
    for k in a.extras:
        assert a.extras[k].dtype == b.extras[k].dtype and torch.equal(a.extras[k], b.extras[k]), k
    assert (a.stderr is None) == (b.stderr is None)
    if a.stderr is not None:
        assert torch.equal(a.stderr, b.stderr)
    assert a.meta() == b.meta()


def test_parquet_round_trip(tmp_path: Path) -> None:
    t = make_table()
    path = t.to_parquet(tmp_path / "valuation" / "epoch_003.parquet")
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["epoch_003.parquet"]  # no temp files left
    back = ValuationTable.from_parquet(path)
    assert_tables_equal(t, back)
    assert back.split == "train" and back.info == {"epoch": 3} and back.value == "paper"
    # the file is a plain parquet table one row per sample
    import pandas as pd

    df = pd.read_parquet(path)
    assert len(df) == 50 and "pred_audio+visual" in df.columns and "value_empty" in df.columns


def test_round_trip_permutation_layout(tmp_path: Path) -> None:
    m, n = 3, 6
    eye = torch.eye(m, dtype=torch.bool)
    masks = torch.cat([torch.zeros(1, m, dtype=torch.bool), eye, torch.ones(1, m, dtype=torch.bool)])
    t = ValuationTable(
        modalities=["x", "y", "z"],
        index=torch.arange(n),
        label=torch.zeros(n, dtype=torch.long),
        phi=torch.rand(n, m),
        values=torch.rand(n, 5),
        coalition_preds=torch.zeros(n, 5, dtype=torch.long),
        masks=masks,
        stderr=torch.rand(n, m),
        method="permutation",
        value="prob",
        empty="model",
        removal="mean",
    )
    back = ValuationTable.from_parquet(t.to_parquet(tmp_path / "t.parquet"))
    assert_tables_equal(t, back)
    assert back.coalitions == ["empty", "x", "y", "z", "x+y+z"]
    assert back.unimodal_accuracy() == {"x": 1.0, "y": 1.0, "z": 1.0}


def test_not_a_valuation_file(tmp_path: Path) -> None:
    import pandas as pd

    pd.DataFrame({"a": [1, 2]}).to_parquet(tmp_path / "x.parquet")
    with pytest.raises(DataError):
        ValuationTable.from_parquet(tmp_path / "x.parquet")
    with pytest.raises(DataError):
        ValuationTable.from_parquet(tmp_path / "missing.parquet")


def test_accuracies() -> None:
    t = make_table()
    assert torch.equal(t.fused_pred, t.coalition_preds[:, 3])
    assert t.accuracy() == pytest.approx(float((t.coalition_preds[:, 3] == t.label).double().mean()))
    direct = {
        "audio": float((t.coalition_preds[:, 1] == t.label).double().mean()),
        "visual": float((t.coalition_preds[:, 2] == t.label).double().mean()),
    }
    assert t.unimodal_accuracy() == direct
    # paper values: v(singleton) = 1 iff that modality alone is right
    assert t.unimodal_accuracy()["audio"] == pytest.approx(float(t.values[:, 1].mean()))


def test_contributions() -> None:
    t = make_table()
    mc = t.mean_contribution()
    assert mc["audio"] == pytest.approx(float(t.phi[:, 0].double().mean()))
    pc = t.per_class_contribution()
    assert list(pc.columns) == ["audio", "visual"] and list(pc.index) == sorted(set(t.label.tolist()))
    for c in pc.index:
        sel = t.label == c
        assert pc.loc[c, "visual"] == pytest.approx(float(t.phi[sel, 1].double().mean()))


def test_least_share_ties() -> None:
    phi = torch.tensor([[1.0, 1.0], [0.5, 1.5], [-0.5, 0.5], [1.5, 0.5]])
    t = ValuationTable(
        ["audio", "visual"],
        torch.arange(4),
        torch.zeros(4, dtype=torch.long),
        phi,
        torch.zeros(4, 4),
        torch.zeros(4, 4, dtype=torch.long),
    )
    assert t.least_share() == {"audio": 2.5 / 4, "visual": 1.5 / 4}
    assert t.least_share("all") == {"audio": 3 / 4, "visual": 2 / 4}
    with pytest.raises(ValueError):
        t.least_share("none")  # type: ignore[arg-type]


def test_histograms() -> None:
    t = make_table()
    counts, edges = t.difference_histogram(bins=8)
    assert counts.shape == (8,) and edges.shape == (9,) and int(counts.sum()) == len(t)
    d = (t.phi[:, 0] - t.phi[:, 1]).double()
    assert edges[0] == pytest.approx(float(d.min())) and edges[-1] == pytest.approx(float(d.max()))
    three = ValuationTable(
        ["a", "b", "c"],
        torch.arange(5),
        torch.zeros(5, dtype=torch.long),
        torch.rand(5, 3),
        torch.zeros(5, 8),
        torch.zeros(5, 8, dtype=torch.long),
    )
    c3, e3 = three.difference_histogram(bins=4, range=(-1, 1))
    assert c3.shape == (3, 4) and e3.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0] and (c3.sum(1) == 5).all()
    text = t.text_histogram("audio")
    lines = text.splitlines()
    assert lines[0].startswith("phi[audio]") and sum(int(line.rsplit(" ", 1)[1]) for line in lines[1:]) == len(t)
    assert len(three.text_histogram(2, bins=3).splitlines()) == 4


def test_to_pandas_subset_concat() -> None:
    t = make_table(10)
    df = t.to_pandas()
    assert list(df.columns[:3]) == ["index", "label", "fused_pred"]
    expected = {"pred_empty", "pred_audio", "pred_visual", "pred_audio+visual", "phi_audio", "phi_visual", "degraded"}
    assert expected <= set(df.columns)
    assert "value_audio" not in df.columns and "value_audio" in t.to_pandas(values=True).columns
    assert df["phi_visual"].tolist() == t.phi[:, 1].tolist()
    a, b = t.subset(torch.arange(10) < 4), t.subset(torch.arange(4, 10))
    assert len(a) == 4 and len(b) == 6
    assert_tables_equal(ValuationTable.concat([a, b]), t)
    with pytest.raises(ValueError):
        ValuationTable.concat([a, ValuationTable(**{**a.__dict__, "value": "prob"})])
    with pytest.raises(ValueError):
        ValuationTable(
            ["a", "b"],
            torch.arange(3),
            torch.zeros(3, dtype=torch.long),
            torch.zeros(3, 3),
            torch.zeros(3, 4),
            torch.zeros(3, 4, dtype=torch.long),
        )


def test_empty_table() -> None:
    t = make_table(0)
    assert len(t) == 0 and t.accuracy() != t.accuracy()  # NaN
    assert all(v != v for v in t.mean_contribution().values())
    assert t.text_histogram("audio") == "phi[audio]: no samples"
