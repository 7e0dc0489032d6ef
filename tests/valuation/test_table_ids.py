"""ValuationTable sample identity: ids through valuation, parquet, subset/concat; sample(id), lowest(m, k)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mmcoop.data import MultimodalDataset, TensorSource
from mmcoop.valuation import ValuationTable


def table(ids: list[str] | None = None, degraded: bool = False) -> ValuationTable:
    # 5 samples, M=2; paper values: phi_a, phi_b chosen by hand
    phi = torch.tensor([[1.0, 1.0], [0.5, 1.5], [-0.5, 0.5], [0.5, 0.5], [0.0, 0.0]])
    k = 4
    preds = torch.tensor([[0, 1, 1, 1], [0, 2, 2, 2], [0, 0, 1, 1], [0, 3, 0, 3], [0, 1, 1, 0]])
    extras = {"degraded": torch.tensor([0, 1, 0, 1, 0])} if degraded else {}
    return ValuationTable(
        ["a", "b"],
        torch.tensor([4, 3, 2, 1, 0]),
        torch.tensor([1, 2, 1, 3, 1]),
        phi,
        torch.zeros(5, k),
        preds,
        extras=extras,
        split="test",
        ids=ids,
    )


def test_lowest_and_highest_order_ties_by_row() -> None:
    t = table(["e", "d", "c", "b", "a"])
    assert t.lowest("a", 3).sample_id == [
        "c",
        "a",
        "b",
    ]  # phi_a -0.5, 0.0, then 0.5: b (storage row 1) before d (row 3)
    assert t.lowest("b", 2, highest=True).sample_id == ["d", "e"]
    assert t.lowest(1, 10).num_samples == 5
    with pytest.raises(ValueError):
        t.lowest("a", -1)


def test_sample_by_id() -> None:
    t = table(["e", "d", "c", "b", "a"], degraded=True)
    s = t.sample("c")
    assert s["index"] == 2 and s["label"] == 1 and s["split"] == "test"
    assert s["phi"] == {"a": -0.5, "b": 0.5}
    assert s["fused_pred"] == 1 and s["pred"] == {"a": 0, "b": 1}  # coalitions: empty, a, b, a+b
    assert s["degraded_modality"] == "a"
    with pytest.raises(KeyError, match="no sample with id 'zz'"):
        t.sample("zz")
    assert table().sample(3)["index"] == 3  # without ids: the storage row is the id


def test_parquet_round_trip_and_identity_columns(tmp_path: Path) -> None:
    t = table(["e", "d", "c", "b", "a"], degraded=True)
    back = ValuationTable.from_parquet(t.to_parquet(tmp_path / "v.parquet"))
    assert back.sample_id == t.sample_id
    df = t.to_pandas()
    assert list(df.columns[:3]) == ["index", "label", "fused_pred"]
    assert df["sample_id"].tolist() == ["e", "d", "c", "b", "a"] and set(df["split"]) == {"test"}
    assert df["degraded_modality"].tolist() == ["a", "b", "a", "b", "a"]
    low = t.lowest_frame(2)
    assert low["lowest_for"].tolist() == ["a", "a", "b", "b"] and low["sample_id"].tolist() == ["c", "a", "a", "b"]
    assert low["degraded_modality"].tolist() == ["a", "a", "a", "b"]


def test_subset_concat_keep_ids() -> None:
    t = table(["e", "d", "c", "b", "a"])
    sub = t.subset(torch.tensor([True, False, True, False, False]))
    assert sub.sample_id == ["e", "c"]
    assert ValuationTable.concat([sub, t.subset(torch.tensor([4]))]).sample_id == ["e", "c", "a"]
    with pytest.raises(ValueError, match="ids must have 5"):
        table(["x"])


def test_valuate_dataset_records_the_source_ids() -> None:
    from _helpers import tiny_data, tiny_model

    from mmcoop.valuation import valuate_dataset

    data = tiny_data(12)
    src = data.source
    named = TensorSource(
        src.inputs, src.labels(), src.num_classes, src.specs, src.extras, ids=[f"clip{i:02d}" for i in range(12)]
    )
    view = MultimodalDataset.from_source(named, rows=torch.tensor([5, 2, 9]))
    t = valuate_dataset(tiny_model(data), view, batch_size=2)
    assert t.index.tolist() == [5, 2, 9] and t.sample_id == ["clip05", "clip02", "clip09"]
