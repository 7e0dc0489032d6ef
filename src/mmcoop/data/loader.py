"""``DataLoader`` over a dataset view: seeded order, whole-batch fetches, workers, unpadded eval shards."""

from __future__ import annotations

from typing import Any, Iterator, Protocol, cast

import numpy as np
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
)

from mmcoop.errors import ConfigError
from mmcoop.utils.dist import rank, world_size
from mmcoop.utils.seeding import mix_seed


class View(Protocol):
    """What a loader needs of a dataset view (`MultimodalDataset` has it)."""

    rows: torch.Tensor

    def __len__(self) -> int: ...

    def __getitems__(self, idx: list[int]) -> Any: ...


def make_loader(
    dataset: View,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    distributed: bool = False,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    distributed_eval: bool = False,
) -> DataLoader:
    """A ``DataLoader`` yielding whole batches fetched by ``dataset.__getitems__``.

    Shuffling is seeded by ``(seed, epoch)`` so every rank and a resumed run draw the
    same order; the order does not depend on ``num_workers``. A shuffled (training)
    loader never yields a trailing batch of one sample (it is merged into the one
    before: BatchNorm cannot normalise one sample), and refuses ``batch_size=1``.

    Args:
        dataset: the view to load, a `MultimodalDataset` (its ``train`` flag
            picks the transforms; its ``rows`` say where the samples live). Typed by the
            `View` protocol so that this module does not import `mmcoop.data.base`,
            which re-exports it (no import cycle).
        batch_size: samples per batch (``>= 2`` when ``shuffle``).
        shuffle: seeded random order (training).
        seed, epoch: seed the order (and the workers' RNGs).
        distributed: shard with ``DistributedSampler`` (pads every rank to the same
            length with repeated samples: for training).
        drop_last: drop the last incomplete batch.
        num_workers: ``DataLoader`` worker processes fetching batches (lazy sources:
            decoding in parallel). Storage already on an accelerator is indexed in the
            main process (workers and pinning are off).
        pin_memory: page-locked host batches for faster copies (only when CUDA is available).
        persistent_workers: keep workers alive between iterations of this loader.
        distributed_eval: evaluation shards without padding: rank ``r`` of ``W`` gets
            positions ``r, r + W, r + 2W, ...`` of the (optionally shuffled) order, so every
            sample is seen exactly once over all ranks (``distributed`` is then ignored;
            without a process group this is the whole dataset).

    Returns:
        The loader; each item is a batch dict (see `mmcoop.data.base`).

    Raises:
        ConfigError: ``batch_size < 1``, ``batch_size == 1`` with ``shuffle``, ``num_workers < 0``.

    Reproducibility: random train transforms run where batches are fetched; with
    ``num_workers > 0`` each worker's torch/NumPy/random RNGs are seeded from
    ``(seed, epoch, rank, worker)``, so a run is reproducible for a fixed ``num_workers``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ConfigError(f"batch size must be an integer >= 1, got {batch_size!r}")
    if shuffle and batch_size == 1:
        raise ConfigError(
            "training batch size 1 (train.batch_size / --batch-size) cannot train: BatchNorm cannot "
            "normalise a single sample; set train.batch_size >= 2"
        )
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    g = torch.Generator()
    g.manual_seed(mix_seed(seed, epoch))
    sampler: Sampler[int] | Any
    if distributed_eval:
        order = torch.randperm(len(dataset), generator=g) if shuffle else torch.arange(len(dataset))
        sampler = _Shard(order, rank(), world_size())
    elif distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(cast(Dataset, dataset), shuffle=shuffle, seed=seed, drop_last=drop_last)
        sampler.set_epoch(epoch)
    elif shuffle:
        sampler = RandomSampler(dataset, generator=g)
    else:
        sampler = SequentialSampler(dataset)
    bs = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)
    batches = _NoSingletonBatches(bs) if shuffle else bs
    on_cpu = dataset.rows.device.type == "cpu"
    workers = int(num_workers) if on_cpu else 0
    kwargs: dict[str, Any] = {}
    if workers:
        state = np.random.SeedSequence([int(seed) % 2**63, int(epoch), rank(), 0x5EED]).generate_state(2, np.uint32)
        kwargs["generator"] = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
        kwargs["persistent_workers"] = bool(persistent_workers)
    return DataLoader(
        cast(Dataset, dataset),
        batch_sampler=batches,
        collate_fn=_identity,
        num_workers=workers,
        pin_memory=bool(pin_memory) and on_cpu and torch.cuda.is_available(),
        **kwargs,
    )


def _identity(x: Any) -> Any:
    return x


class _Shard(Sampler[int]):
    """Positions ``order[r::W]``: one rank's share of an evaluation pass, no padding."""

    def __init__(self, order: torch.Tensor, r: int, w: int) -> None:
        self.positions = order[r::w].tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


class _NoSingletonBatches:
    """Batches of ``inner``, with a trailing batch of one sample merged into the one before.

    BatchNorm cannot normalise a single training sample, and whether the last batch
    holds one sample depends on the epoch's size (e.g. originals + re-sampled units).
    Only batches of ``batch_size > 1`` are merged (with ``batch_size == 1`` every batch
    would be "trailing": `make_loader` refuses that for training).
    """

    def __init__(self, inner: BatchSampler) -> None:
        self.inner = inner

    def __iter__(self) -> Iterator[list[int]]:
        if self.inner.batch_size == 1:
            yield from self.inner
            return
        prev: list[int] | None = None
        for batch in self.inner:
            if prev is not None:
                if len(batch) == 1:
                    batch = prev + batch
                else:
                    yield prev
            prev = batch
        if prev is not None:
            yield prev

    def __len__(self) -> int:
        n = len(self.inner)
        size = self.inner.batch_size
        last = len(self.inner.sampler) % size  # type: ignore[arg-type]
        return n - 1 if (size > 1 and n > 1 and last == 1 and not self.inner.drop_last) else n


__all__ = ["make_loader"]
