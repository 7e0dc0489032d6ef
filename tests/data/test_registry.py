import pytest
import torch

from mmcoop.data import DATASETS, DatasetSplits, ModalitySpec, MultimodalDataset, load_dataset
from mmcoop.errors import ConfigError, DataError


def _splits(bad_value: float | None) -> DatasetSplits:
    x = torch.randn(6, 3)
    if bad_value is not None:
        x[4, 1] = bad_value
    specs = [ModalitySpec("a", "vector", (3,)), ModalitySpec("b", "vector", (3,))]
    ds = MultimodalDataset({"a": torch.randn(6, 3), "b": x}, torch.arange(6) % 2, 2, specs)
    return DatasetSplits("tiny-nan", ds, ds, ds, {"source": "/somewhere/tiny"})


@pytest.fixture(scope="module")
def nan_dataset():
    name = "_test_nan"
    DATASETS.register(name)(lambda *, data_root, seed, bad=float("nan"): _splits(bad))
    yield name
    DATASETS._items.pop(name)  # keep the global registry as the package defines it


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_inf_inputs_are_named(nan_dataset, bad):
    with pytest.raises(
        DataError, match=r"1 train sample\(s\) have NaN/inf 'b' inputs \(first: sample 4\).*/somewhere/tiny"
    ):
        load_dataset(nan_dataset, bad=bad)


def test_finite_inputs_load(nan_dataset):
    assert len(load_dataset(nan_dataset, bad=None).train) == 6


def test_label_out_of_range_is_named():
    specs = [ModalitySpec("a", "vector", (2,))]
    with pytest.raises(DataError, match=r"label out of range: labels span \[0, 3\] but num_classes=3"):
        MultimodalDataset({"a": torch.zeros(4, 2)}, torch.arange(4), 3, specs)


def test_unknown_dataset_option():
    with pytest.raises(ConfigError, match="unknown option"):
        load_dataset("synthetic", colour="red")


def test_training_loader_never_yields_a_single_sample_batch():
    from mmcoop.data import make_loader

    specs = [ModalitySpec("a", "vector", (2,))]
    for n in (1, 2, 65, 129, 64):
        ds = MultimodalDataset({"a": torch.zeros(n, 2)}, torch.zeros(n, dtype=torch.long), 2, specs)
        loader = make_loader(ds, 64, shuffle=True)
        sizes = [len(b["label"]) for b in loader]
        assert sum(sizes) == n and len(sizes) == len(loader)
        assert n == 1 or min(sizes) > 1
        rows = torch.cat([b["index"] for b in loader])
        assert sorted(rows.tolist()) == list(range(n))


def test_empty_split_is_named_not_a_crash():
    import pytest

    from mmcoop.data import load_dataset
    from mmcoop.errors import DataError

    with pytest.raises(DataError, match="the val split is empty"):
        load_dataset("mfeat", val_fraction=0.0)
