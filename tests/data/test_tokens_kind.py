"""The ``tokens`` modality kind: int64 ids ``[L]``, padding id in the spec, every source keeps them int64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmcoop.data import (
    ArraySource,
    DatasetSplits,
    DictDatasetSource,
    ModalitySpec,
    MultimodalDataset,
    TensorSource,
    batch_to,
    debias,
    infer_kind,
    input_baselines,
    make_loader,
)
from mmcoop.data.storage import load_processed, save_processed
from mmcoop.errors import ConfigError, DataError

IDS = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [9, 9, 9, 9]])
SPECS = [ModalitySpec("img", "vector", (3,)), ModalitySpec("text", "tokens", (4,), pad_id=0, vocab_size=10)]


def _source(n: int = 3) -> TensorSource:
    return TensorSource({"img": torch.randn(n, 3), "text": IDS[:n]}, torch.tensor([0, 1, 0][:n]), 2, SPECS)


def test_spec_fields_and_checks() -> None:
    s = ModalitySpec("t", "tokens", (8,), pad_id=1, vocab_size=50)
    assert (s.kind, s.shape, s.pad_id, s.vocab_size) == ("tokens", (8,), 1, 50)
    assert ModalitySpec("t", "tokens", (8,)).pad_id == 0
    with pytest.raises(DataError, match="needs a shape of 1"):
        ModalitySpec("t", "tokens", (2, 8))
    with pytest.raises(DataError, match="below vocab_size"):
        ModalitySpec("t", "tokens", (8,), pad_id=5, vocab_size=5)
    with pytest.raises(DataError, match="tokens' only"):
        ModalitySpec("v", "vector", (8,), pad_id=1)


def test_tokens_never_guessed_from_a_vector() -> None:
    assert infer_kind("text", (16,)) == "vector"
    assert infer_kind("text", (16,), {"text": "tokens"}) == "tokens"


def test_tensor_source_keeps_ids_int64_through_loader_and_device() -> None:
    src = TensorSource(
        {"img": torch.randn(3, 3), "text": IDS.int()}, torch.tensor([0, 1, 0]), 2, SPECS
    )  # int32 given: stored as int64
    ds = MultimodalDataset.from_source(src)
    batch = next(iter(make_loader(ds, batch_size=3, shuffle=False)))
    batch = batch_to(batch, "cpu")
    assert batch["inputs"]["text"].dtype == torch.int64
    assert torch.equal(batch["inputs"]["text"], IDS)
    assert batch["inputs"]["img"].dtype == torch.float32


def test_float_ids_refused() -> None:
    with pytest.raises(DataError, match="declared 'tokens' but holds torch.float32"):
        TensorSource({"img": torch.randn(3, 3), "text": IDS.float()}, torch.tensor([0, 1, 0]), 2, SPECS)


def test_array_source_converts_only_continuous_kinds(tmp_path) -> None:
    np.save(tmp_path / "t.npy", IDS.numpy().astype(np.int32))
    src = ArraySource(
        {"vec": np.ones((3, 4), dtype=np.int32), "text": tmp_path / "t.npy"},
        [0, 1, 0],
        kinds={"text": "tokens"},
    )
    out = src.fetch(torch.tensor([2, 0]), False)["inputs"]
    assert out["vec"].dtype == torch.float32  # an integer array of a vector kind still becomes float
    assert out["text"].dtype == torch.int64 and torch.equal(out["text"], IDS[[2, 0]])
    np.save(tmp_path / "bad.npy", IDS.numpy().astype(np.float32))
    bad = ArraySource({"text": tmp_path / "bad.npy"}, [0, 1, 0], kinds={"text": "tokens"})
    with pytest.raises(DataError, match="store integer token ids"):
        bad.fetch(torch.tensor([0]), False)


def test_dict_source_stacks_ids() -> None:
    items = [{"inputs": {"text": IDS[i].tolist()}, "label": i % 2} for i in range(3)]
    src = DictDatasetSource(items, kinds={"text": "tokens"})
    assert src.specs[0].kind == "tokens"
    out = src.fetch(torch.tensor([0, 2]), False)["inputs"]["text"]
    assert out.dtype == torch.int64 and torch.equal(out, IDS[[0, 2]])


def test_cache_round_trip_keeps_pad_and_vocab(tmp_path) -> None:
    pad = [ModalitySpec("img", "vector", (3,)), ModalitySpec("text", "tokens", (4,), pad_id=1, vocab_size=12)]
    parts = [
        MultimodalDataset({"img": torch.randn(3, 3), "text": IDS + 1}, torch.tensor([0, 1, 0]), 2, pad)
        for _ in range(3)
    ]
    assert save_processed(DatasetSplits("toy", *parts), tmp_path / "c.pt")
    back = load_processed(tmp_path / "c.pt")
    assert back is not None and back.specs == pad
    assert torch.equal(back.train.inputs["text"], IDS + 1)


def test_input_baseline_is_the_padding_id() -> None:
    specs = [ModalitySpec("a", "image", (1, 2, 2)), ModalitySpec("t", "tokens", (4,), pad_id=3)]
    assert input_baselines(specs) == {"a": 0.0, "t": 3}


def test_debias_leaves_tokens_alone() -> None:
    splits = DatasetSplits("toy", *(MultimodalDataset.from_source(_source()) for _ in range(3)))
    out = debias(splits, strength=1.0, mode="blank", seed=0)
    assert out.info["debias"]["modalities"] == ["img"]
    assert torch.equal(out.train.inputs["text"], IDS)
    with pytest.raises(ConfigError, match="hold token ids"):
        debias(splits, modalities=["text"])
