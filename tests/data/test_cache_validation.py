"""The preprocessed-data cache is validated on load: wrong shapes or changed tensors are rebuilt, not used."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

import mmcoop.utils.io as io_mod
from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.data.storage import load_processed, processed_path, save_processed, tensor_digest


def _toy() -> DatasetSplits:
    specs = [ModalitySpec("a", "vector", (3,)), ModalitySpec("b", "image", (1, 2, 2))]
    g = torch.Generator().manual_seed(0)

    def ds(n: int) -> MultimodalDataset:
        return MultimodalDataset(
            {"a": torch.randn(n, 3, generator=g), "b": torch.randn(n, 1, 2, 2, generator=g)},
            torch.arange(n) % 2,
            2,
            specs,
            {"take": torch.arange(n)},
        )

    return DatasetSplits("toy", ds(6), ds(2), ds(3), {"source": "here"})


def _tamper(path: Path, edit) -> None:
    state = torch.load(path, weights_only=True)
    edit(state)
    torch.save(state, path)


@pytest.fixture
def saved(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MMCOOP_CACHE", str(tmp_path / "cache"))
    path = processed_path("toy", "k")
    assert save_processed(_toy(), path)
    assert load_processed(path) is not None  # intact: a hit
    return path


@pytest.mark.parametrize(
    "edit,why",
    [
        (lambda s: s["splits"]["train"]["inputs"]["a"].zero_(), "differ from their checksums"),  # zeroed in place
        (lambda s: s["splits"]["val"]["inputs"]["b"].mul_(-1), "differ from their checksums"),
        (lambda s: s["splits"]["train"]["inputs"].__setitem__("a", torch.zeros(6, 4)), "has shape (6, 4)"),
        (lambda s: s["splits"]["test"]["inputs"].__setitem__("b", torch.zeros(3, 2, 2)), "expected (3, 1, 2, 2)"),
        (lambda s: s["splits"]["train"]["extras"].__setitem__("take", torch.arange(5)), "5 rows for 6 samples"),
        (lambda s: s["splits"]["test"]["labels"].fill_(1), "differ from their checksums"),
        (lambda s: s.pop("digests"), "no tensor checksums"),
    ],
)
def test_damaged_cache_is_a_miss(saved, edit, why):
    _tamper(saved, edit)
    with pytest.warns(UserWarning, match="it will be rebuilt") as rec:
        assert load_processed(saved) is None
    assert why in str(rec[0].message)


def test_digest_sees_dtype_shape_and_bytes():
    t = torch.arange(6, dtype=torch.float32)
    assert tensor_digest(t) == tensor_digest(t.clone())
    assert tensor_digest(t) != tensor_digest(t.reshape(2, 3))
    assert tensor_digest(t) != tensor_digest(t.double())
    u = t.clone()
    u[3] = 0
    assert tensor_digest(t) != tensor_digest(u)
    assert tensor_digest(torch.zeros(0, 4)) != tensor_digest(torch.zeros(0, 5))


def test_a_full_disk_warns_and_continues(tmp_path, monkeypatch):
    """The cache's documented "warn and continue" on a full disk (torch.save used to fail opaquely)."""
    real = io_mod.atomic_write_bytes

    def full(path, data):
        raise io_mod.storage_error(OSError(errno.ENOSPC, "No space left on device"), path)

    monkeypatch.setattr(io_mod, "atomic_write_bytes", full)
    with pytest.warns(UserWarning, match="disk is full.*continuing without it"):
        assert save_processed(_toy(), tmp_path / "c.pt") is False
    monkeypatch.setattr(io_mod, "atomic_write_bytes", real)
    assert not (tmp_path / "c.pt").exists()
