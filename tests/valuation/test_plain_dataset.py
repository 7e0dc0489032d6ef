"""``valuate_dataset`` on a user's plain ``torch.utils.data.Dataset`` of dict items: wrapped as
``mmcoop.train`` wraps it, with the items' ``id`` and ``degraded`` keys reaching the table."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from mmcoop.data import as_multimodal
from mmcoop.errors import DataError
from mmcoop.valuation import valuate_dataset

from _helpers import tiny_data, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


class Items(Dataset):
    """The tensors of ``tiny_data`` as dict items, with ids and a ``degraded`` key of any form."""

    def __init__(self, data, degraded=None) -> None:
        self.a, self.b, self.y = data.inputs["a"], data.inputs["b"], data.labels
        self.degraded = degraded

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        item = {"inputs": {"a": self.a[i], "b": self.b[i]}, "label": int(self.y[i]), "id": f"s{i}"}
        if self.degraded is not None:
            item["degraded"] = self.degraded[i]
        return item


def test_a_plain_dataset_is_valued_as_its_wrapped_form() -> None:
    data = tiny_data(12)
    model = tiny_model(data)
    table = valuate_dataset(model, Items(data), batch_size=5)  # today: AttributeError ... 'rows'
    want = valuate_dataset(model, data, batch_size=5)
    assert torch.equal(table.phi, want.phi) and torch.equal(table.coalition_preds, want.coalition_preds)
    assert table.sample_id == [f"s{i}" for i in range(12)] and table.degraded_modality is None


def test_the_items_degraded_key_reaches_the_table() -> None:
    data = tiny_data(6)
    model = tiny_model(data)
    degraded = ["a", 1, None, -1, torch.tensor(0), "b"]  # a name, an index, none (None or -1), a 0-d tensor
    table = valuate_dataset(model, Items(data, degraded), batch_size=4)
    assert table.degraded_modality == ["a", "b", None, None, "a", "b"]
    assert table.extras["degraded"].tolist() == [0, 1, -1, -1, 0, 1]
    df = table.to_pandas()
    assert df["degraded_modality"].tolist()[:2] == ["a", "b"]
    assert table.sample("s5")["degraded_modality"] == "b"


@pytest.mark.parametrize(
    ("degraded", "match"),
    [
        (["a", "video"] + ["a"] * 4, "item 1 has degraded='video'; it must name a modality \\(a, b\\)"),
        (["a", 2] + ["a"] * 4, "item 1 has degraded=2"),
        (["a", True] + ["a"] * 4, "item 1 has degraded=True"),
    ],
)
def test_a_bad_degraded_value_is_named(degraded, match) -> None:
    data = tiny_data(6)
    with pytest.raises(DataError, match=match):
        valuate_dataset(tiny_model(data), Items(data, degraded), batch_size=6)


def test_degraded_on_some_items_only_is_refused() -> None:
    class Partial(Items):
        def __getitem__(self, i: int):
            item = super().__getitem__(i)
            if i == 3:
                del item["degraded"]
            return item

    data = tiny_data(6)
    with pytest.raises(DataError, match="item 3 has no 'degraded' key but item 0 has one"):
        valuate_dataset(tiny_model(data), Partial(data, ["a"] * 6), batch_size=6)


def test_not_dict_items_get_one_message_with_the_layout() -> None:
    class Pairs(Dataset):
        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int):
            return torch.zeros(6), 0

    data = tiny_data(6)
    with pytest.raises(DataError, match=r"item 0 is tuple; items must be \{\"inputs\""):
        valuate_dataset(tiny_model(data), Pairs())
    assert as_multimodal(data) is data
