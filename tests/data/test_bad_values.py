"""Bad values in a user's data stop with one message naming the split, modality, sample and label.

Before: NaN/inf in the test split of a ``data.target`` gave test loss ``nan`` and an accuracy and
valuation with no warning; a stray label 9 in 4-class train data silently made a 10-class model; a
label -1 read from the items was reported as "outside [0, 4611686018427387904)".
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _helpers import tiny_data, tiny_model
from torch.utils.data import Dataset

from mmcoop.data import DatasetSplits, DictDatasetSource, MultimodalDataset
from mmcoop.data.finite import non_finite
from mmcoop.errors import DataError
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.methods import build_method
from mmcoop.train import TrainConfig, Trainer
from mmcoop.valuation import valuate_dataset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def hostile(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(FIXTURES))
    import hostile_ids

    return hostile_ids


@pytest.mark.parametrize("bad", ["test_nan", "test_inf"])
def test_non_finite_test_inputs_of_a_data_target_are_named(tmp_path: Path, hostile, bad: str) -> None:
    cfg = RunConfig.from_dict(hostile.config(str(tmp_path), bad=bad))
    with pytest.raises(DataError, match=r"1 test sample\(s\) have NaN/inf 'b' inputs \(first: sample 5\)"):
        run_experiment(cfg)
    assert not (tmp_path / "h" / "checkpoints").exists()


@pytest.mark.parametrize(
    "bad,needle",
    [
        ("train_label_9", r"label 9 \(sample 3\) makes 10 classes, but 5 of them have no sample \(classes 4-8\)"),
        ("train_label_-1", r"label -1 \(sample 3\) is negative"),
    ],
)
def test_a_stray_train_label_is_named(tmp_path: Path, hostile, bad: str, needle: str) -> None:
    with pytest.raises(DataError, match=needle):
        run_experiment(RunConfig.from_dict(hostile.config(str(tmp_path), bad=bad)))


class _Items(Dataset):
    """Labels only inside the items (no ``labels`` attribute): they are read item by item."""

    def __init__(self, labels: list[int], num_classes: int | None = None) -> None:
        self.y = labels
        if num_classes is not None:
            self.num_classes = num_classes

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict:
        return {"inputs": {"a": torch.ones(2)}, "label": self.y[i]}


def test_a_negative_item_label_has_no_giant_bound() -> None:
    with pytest.raises(DataError, match=r"item 2 has label -1; labels must be class indices 0, 1, ..., C-1") as e:
        DictDatasetSource(_Items([0, 1, -1, 2]))
    assert "4611686018427387904" not in str(e.value)


def test_a_declared_class_count_names_the_label_outside_it() -> None:
    with pytest.raises(DataError, match=r"label 9 \(sample 3\) is not one of the 4 classes 0..3"):
        DictDatasetSource(_Items([0, 1, 2, 9], num_classes=4))
    assert DictDatasetSource(_Items([0, 1, 2, 3], num_classes=6)).num_classes == 6  # declared: gaps allowed
    assert DictDatasetSource(_Items([0, 2, 1])).num_classes == 3


def _with_nan(data: MultimodalDataset, row: int) -> MultimodalDataset:
    a = data.inputs["a"].clone()
    a[row, 1] = float("nan")
    return MultimodalDataset({"a": a, "b": data.inputs["b"]}, data.labels, data.num_classes, data.specs)


def test_evaluation_and_valuation_name_non_finite_inputs_the_load_check_missed() -> None:
    data = tiny_data()
    bad = _with_nan(data, 7)
    assert non_finite(data) is None
    modality, rows = non_finite(bad)
    assert modality == "a" and rows.tolist() == [7]
    config = TrainConfig(epochs=1, batch_size=32, progress=False, device="cpu")
    trainer = Trainer(tiny_model(data), build_method("joint"), DatasetSplits("tiny", data, data, bad), config)
    with pytest.raises(
        DataError, match=r"dataset 'tiny': 1 test sample\(s\) have NaN/inf 'a' inputs \(first: sample 7\)"
    ):
        trainer.evaluate(bad, "test")
    assert trainer.evaluate(data, "val")["loss"] == trainer.evaluate(data, "val")["loss"]  # finite: no error
    with pytest.raises(DataError, match=r"1 test sample\(s\) have NaN/inf 'a' inputs \(first: sample '7'\)"):
        valuate_dataset(trainer.model, bad, split="test")
