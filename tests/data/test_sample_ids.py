"""Stable sample ids: every kind of source, the protocol default, debiasing, built-in datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from mmcoop.data import (
    ArraySource,
    DictDatasetSource,
    FileSource,
    ModalitySpec,
    MultimodalDataset,
    TensorSource,
    debias,
    sample_ids,
)
from mmcoop.data.base import DatasetSplits
from mmcoop.errors import DataError

SPECS = [ModalitySpec("a", "vector", (2,)), ModalitySpec("b", "vector", (3,))]


def _inputs(n: int) -> dict[str, torch.Tensor]:
    return {"a": torch.arange(2 * n, dtype=torch.float32).view(n, 2), "b": torch.ones(n, 3)}


class Items(Dataset):
    def __init__(self, n: int, ids: list | None = None) -> None:
        self.n, self.ids_, self.reads = n, ids, 0

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        self.reads += 1
        item = {"inputs": {"a": torch.zeros(2), "b": torch.zeros(3)}, "label": i % 2}
        if self.ids_ is not None:
            item["id"] = self.ids_[i]
        return item


class Bare:
    """A user source implementing only the required protocol."""

    specs = SPECS
    num_classes = 2

    def __len__(self) -> int:
        return 3

    def labels(self) -> torch.Tensor:
        return torch.tensor([0, 1, 0])

    def fetch(self, rows: torch.Tensor, train: bool) -> dict:
        return {"inputs": {k: v[rows] for k, v in _inputs(3).items()}, "label": self.labels()[rows]}


def test_default_is_the_index_for_arrays_tensors_and_bare_sources() -> None:
    assert sample_ids(ArraySource({"a": np.zeros((4, 2)), "b": np.zeros((4, 3))}, [0, 1, 0, 1])) == ["0", "1", "2", "3"]
    assert sample_ids(TensorSource(_inputs(3), torch.tensor([0, 1, 0]), 2, SPECS)) == ["0", "1", "2"]
    assert MultimodalDataset.from_source(Bare()).sample_ids == ["0", "1", "2"]


def test_given_ids_and_their_checks() -> None:
    src = TensorSource(_inputs(3), torch.tensor([0, 1, 0]), 2, SPECS, ids=["x", 7, "z"])
    assert sample_ids(src) == ["x", "7", "z"]
    assert sample_ids(src.to("cpu")) == ["x", "7", "z"]
    with pytest.raises(DataError, match=r"sample id 'x' is used by rows 0 and 2"):
        TensorSource(_inputs(3), torch.tensor([0, 1, 0]), 2, SPECS, ids=["x", "y", "x"])
    with pytest.raises(DataError, match=r"2 sample ids for 3 samples"):
        ArraySource({"a": np.zeros((3, 2)), "b": np.zeros((3, 3))}, [0, 1, 0], ids=["p", "q"])


def test_dict_dataset_id_key_read_once_else_index() -> None:
    ds = Items(4, ids=["c0", "c1", "c2", "c3"])
    src = DictDatasetSource(ds, labels=[0, 1, 0, 1])
    reads = ds.reads
    assert sample_ids(src) == ["c0", "c1", "c2", "c3"] and ds.reads == reads + 4
    assert sample_ids(src) == ["c0", "c1", "c2", "c3"] and ds.reads == reads + 4  # cached
    no_labels = Items(3, ids=[10, 11, 12])
    assert sample_ids(DictDatasetSource(no_labels)) == ["10", "11", "12"]  # read with the labels
    assert sample_ids(DictDatasetSource(Items(3))) == ["0", "1", "2"]
    assert sample_ids(DictDatasetSource(Items(2), ids=["u", "v"])) == ["u", "v"]


def test_file_source_paths_relative_to_root(tmp_path: Path) -> None:
    dec = {"a": lambda r: torch.zeros(2), "b": lambda r: torch.zeros(3)}
    recs = [tmp_path / "dog" / "1.wav", tmp_path / "cat" / "2.wav"]
    assert sample_ids(FileSource(recs, [0, 1], dec, root=tmp_path)) == ["dog/1.wav", "cat/2.wav"]
    dict_recs = [{"wav": str(p), "n": 3} for p in recs]
    assert sample_ids(FileSource(dict_recs, [0, 1], dec, root=tmp_path)) == ["dog/1.wav", "cat/2.wav"]
    assert sample_ids(FileSource([1, 2], [0, 1], dec)) == ["0", "1"]  # records without a path
    assert sample_ids(FileSource(recs, [0, 1], dec, ids=["first", "second"])) == ["first", "second"]


def test_debiasing_keeps_ids_in_memory_and_lazy() -> None:
    def splits(src_of):
        parts = [MultimodalDataset.from_source(src_of(k)) for k in range(3)]
        return DatasetSplits("t", *parts)

    mem = debias(
        splits(
            lambda k: TensorSource(
                _inputs(4), torch.tensor([0, 1, 0, 1]), 2, SPECS, ids=[f"s{k}_{i}" for i in range(4)]
            )
        )
    )
    assert mem.test.sample_ids == ["s2_0", "s2_1", "s2_2", "s2_3"]
    lazy = debias(splits(lambda k: ArraySource(_inputs(4), [0, 1, 0, 1], ids=[f"L{k}{i}" for i in range(4)])))
    assert lazy.val.sample_ids == ["L10", "L11", "L12", "L13"]


def test_builtin_natural_ids(data_root: Path) -> None:
    from mmcoop.data import load_dataset

    av = load_dataset("avmnist", data_root, 0, limit=20)
    ids = av.test.sample_ids
    clip, image = av.test.extras["clip"], av.test.extras["image_index"]
    recordings = sorted((data_root / "fsdd" / "recordings").glob("*.wav"))
    assert ids[0] == f"{recordings[int(clip[0])].stem}/mnist_{int(image[0])}"
    wave, rate = av.test.source.waveforms(0)["audio"]
    assert rate == 8000 and wave.shape == (8000,) and np.abs(wave).max() > 0
    mf = load_dataset("mfeat", None, 0)
    rows = mf.train.extras["row"]
    assert mf.train.sample_ids[:2] == [f"row_{int(rows[0]):04d}", f"row_{int(rows[1]):04d}"]
