"""The explorer's data (without a browser): galleries, table rows, media per sample, values only without data."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import torch

from mmcoop.data import ModalitySpec, MultimodalDataset, TensorSource
from mmcoop.data.base import DatasetSplits
from mmcoop.report.explorer import MAX_TABLE_ROWS, View, build_explorer

SPECS = [ModalitySpec("a", "image", (1, 8, 8)), ModalitySpec("v", "vector", (5,))]


def _splits(n: int = 12) -> DatasetSplits:
    g = torch.Generator().manual_seed(0)
    src = TensorSource(
        {"a": torch.rand(n, 1, 8, 8, generator=g), "v": torch.randn(n, 5, generator=g)},
        torch.arange(n) % 3,
        3,
        SPECS,
        ids=[f"s{i:02d}" for i in range(n)],
    )
    ds = MultimodalDataset.from_source(src)
    return DatasetSplits("toy", ds, ds, ds)


def _frame(n: int = 12, copies: bool = False) -> pd.DataFrame:
    phi_a = np.linspace(-0.5, 1.5, n)
    df = pd.DataFrame(
        {
            "index": np.arange(n),
            "label": np.arange(n) % 3,
            "fused_pred": np.zeros(n, int),
            "pred_a": np.zeros(n, int),
            "pred_v": np.ones(n, int),
            "phi_a": phi_a,
            "phi_v": 1.0 - phi_a,
            "degraded": np.arange(n) % 2,
            "sample_id": [f"s{i:02d}" for i in range(n)],
        }
    )
    if copies:
        df["copies_a"], df["copies_v"] = 1, 2
    return df


def _data(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="mmx-data">(.*?)</script>', html, re.DOTALL).group(1)
    return json.loads(blob.replace("<\\/", "</"))


def test_galleries_and_media_per_modality() -> None:
    ex = build_explorer([View("test", "test split", _frame(), "test")], ["a", "v"], _splits(), k=3)
    d = _data(ex.html)
    v = d["views"][0]
    assert v["least"]["a"] == [0, 1, 2] and v["most"]["a"] == [11, 10, 9]  # by phi_a
    assert v["least"]["v"] == [11, 10, 9]  # phi_v = 1 - phi_a
    assert v["deg"][:2] == ["a", "v"] and v["copies"] is None
    shown = {"s00", "s01", "s02", "s09", "s10", "s11"}
    assert set(d["media"]["test"]) == shown and ex.media_samples == 6
    one = d["media"]["test"]["s00"]["r"]
    assert one["a"]["img"].startswith("data:image/png") and one["v"]["svg"].startswith("<svg")
    assert "http" not in ex.html.replace("http://www.w3.org/2000/svg", "")


def test_values_only_without_data_and_epoch_copies() -> None:
    views = [View("epoch_1", "epoch 1", _frame(copies=True), "train", 1)]
    ex = build_explorer(views, ["a", "v"], None, k=2, data_note="no data here")
    d = _data(ex.html)
    assert d["media"] == {} and d["notes"] == ["no data here"]
    assert d["views"][0]["copies"] == {"a": [1] * 12, "v": [2] * 12}


def test_rows_that_no_longer_match_the_data_are_values_only() -> None:
    df = _frame()
    df.loc[0, "sample_id"] = "renamed"
    d = _data(build_explorer([View("test", "t", df, "test")], ["a", "v"], _splits(), k=2).html)
    assert "renamed" not in d["media"]["test"] and "s01" in d["media"]["test"]
    assert any("no longer match" in n for n in d["notes"])


def test_big_views_keep_the_lowest_rows_and_every_gallery_row() -> None:
    n = MAX_TABLE_ROWS + 50
    df = _frame(n)
    d = _data(build_explorer([View("train", "t", df, "train")], ["a", "v"], None, k=2).html)
    v = d["views"][0]
    assert v["truncated"] == 50 and len(v["id"]) == MAX_TABLE_ROWS and v["n"] == n
    ids = [v["id"][p] for p in v["most"]["a"]]  # the highest phi_a rows have the lowest phi_v: kept
    assert ids == [f"s{n - 1:02d}", f"s{n - 2:02d}"]


def test_no_views_no_explorer() -> None:
    assert build_explorer([], ["a"], None).html == ""
