"""make_loader: seeded order, singleton-batch merge, batch size 1, workers, unpadded eval shards."""

from __future__ import annotations

import pytest
import torch

from mmcoop.data import ModalitySpec, MultimodalDataset, make_loader
from mmcoop.errors import ConfigError


def _data(n: int) -> MultimodalDataset:
    specs = [ModalitySpec("a", "vector", (2,))]
    x = torch.arange(2 * n, dtype=torch.float32).view(n, 2)
    return MultimodalDataset({"a": x}, torch.arange(n) % 2, 2, specs)


def test_training_batch_size_one_is_a_clear_error() -> None:
    # Before the fix this loader silently merged every 1-sample batch into one batch of 10.
    with pytest.raises(ConfigError, match=r"train\.batch_size.*>= 2"):
        make_loader(_data(10), 1, shuffle=True)


def test_eval_batch_size_one_yields_every_sample_alone() -> None:
    sizes = [len(b["label"]) for b in make_loader(_data(5), 1)]
    assert sizes == [1] * 5


def test_singleton_merge_only_for_batches_larger_than_one() -> None:
    from torch.utils.data import BatchSampler, SequentialSampler

    from mmcoop.data.loader import _NoSingletonBatches

    assert list(_NoSingletonBatches(BatchSampler(SequentialSampler(range(3)), 1, False))) == [[0], [1], [2]]
    assert len(_NoSingletonBatches(BatchSampler(SequentialSampler(range(3)), 1, False))) == 3
    merged = _NoSingletonBatches(BatchSampler(SequentialSampler(range(5)), 2, False))
    assert list(merged) == [[0, 1], [2, 3, 4]] and len(merged) == 2


def test_bad_batch_sizes_are_config_errors() -> None:
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="batch size must be an integer >= 1"):
            make_loader(_data(4), bad)  # type: ignore[arg-type]


def test_seeded_order_is_unchanged() -> None:
    # the order make_loader has always drawn: RandomSampler over a generator seeded seed * 100_003 + epoch
    g = torch.Generator().manual_seed(2 * 100_003 + 5)
    want = torch.randperm(10, generator=g)
    got = torch.cat([b["index"] for b in make_loader(_data(10), 3, shuffle=True, seed=2, epoch=5)])
    assert torch.equal(got, want)


@pytest.mark.parametrize("shuffle", [False, True])
def test_distributed_eval_shards_without_padding(monkeypatch: pytest.MonkeyPatch, shuffle: bool) -> None:
    import mmcoop.data.loader as loader_mod

    n, world = 10, 3
    shards = []
    for r in range(world):
        monkeypatch.setattr(loader_mod, "rank", lambda r=r: r)
        monkeypatch.setattr(loader_mod, "world_size", lambda: world)
        shards.append(
            torch.cat(
                [
                    b["index"]
                    for b in make_loader(_data(n), 2, shuffle=shuffle, seed=1, distributed=True, distributed_eval=True)
                ]
            )
        )
    assert [len(s) for s in shards] == [4, 3, 3]  # no padded duplicates: 10 rows over 3 ranks
    assert sorted(torch.cat(shards).tolist()) == list(range(n))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(100_003)) if shuffle else torch.arange(n)
    for r in range(world):
        assert torch.equal(shards[r], order[r::world])  # rank r gets positions r, r + W, ...
    monkeypatch.undo()
    assert torch.equal(
        torch.cat([b["index"] for b in make_loader(_data(n), 4, distributed_eval=True)]), torch.arange(n)
    )


def test_workers_and_pinning_only_for_host_storage() -> None:
    host = make_loader(_data(6), 2, num_workers=2, pin_memory=True, persistent_workers=True)
    assert host.num_workers == 2 and host.persistent_workers and host.pin_memory == torch.cuda.is_available()
    resident = _data(6).to("meta")  # stands for storage moved to an accelerator
    assert resident.rows.device.type == "meta" and resident.source.inputs["a"].device.type == "meta"
    moved = make_loader(resident, 2, num_workers=2, pin_memory=True)
    assert moved.num_workers == 0 and not moved.pin_memory
