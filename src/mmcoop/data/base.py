"""In-memory multimodal datasets, batches and loaders.

A :class:`MultimodalDataset` holds one tensor per modality (``[N, *shape]``), the
labels ``[N]`` and optional per-sample extras (e.g. which modality was degraded).
It is a *view*: ``rows`` selects storage rows and ``keep`` gives each row a
modality keep-mask, so re-sampling units (sample, keep-mask) and subsets are cheap
views of the same storage. Batches are fetched whole (``__getitems__``), so a
``DataLoader`` with any batch sampler (incl. ``DistributedSampler``) feeds it
without per-sample Python work.

A batch is a dict::

    {"inputs": {modality: Tensor[B, *shape]}, "label": int64[B],
     "index": int64[B] (row in the split's storage = sample index),
     "keep": bool[B, M], **extras (each [B])}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

import torch
from torch import Tensor
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from mmcoop.errors import DataError

Batch = dict[str, Any]


@dataclass(frozen=True)
class ModalitySpec:
    """What one modality looks like.

    Attributes:
        name: modality name, e.g. ``"audio"``.
        kind: ``"image"`` (tensor ``[C, H, W]``) or ``"vector"`` (tensor ``[D]``).
        shape: per-sample shape.
    """

    name: str
    kind: Literal["image", "vector"]
    shape: tuple[int, ...]


class MultimodalDataset(Dataset):
    """A view over in-memory modality tensors.

    Args:
        inputs: modality name -> tensor ``[N, *shape]`` (storage, all samples of the split).
        labels: int64 ``[N]`` in ``[0, num_classes)``.
        num_classes: number of classes.
        specs: one :class:`ModalitySpec` per modality, in modality order.
        extras: optional name -> tensor ``[N]`` carried into every batch.
        rows: int64 ``[U]`` storage rows of this view (default: all, in order).
        keep: bool ``[U, M]`` keep-mask per view row (default: all True).
    """

    def __init__(
        self,
        inputs: dict[str, Tensor],
        labels: Tensor,
        num_classes: int,
        specs: Sequence[ModalitySpec],
        extras: dict[str, Tensor] | None = None,
        rows: Tensor | None = None,
        keep: Tensor | None = None,
    ) -> None:
        self.specs = list(specs)
        self.modalities = [s.name for s in self.specs]
        if set(inputs) != set(self.modalities):
            raise DataError(f"inputs have modalities {sorted(inputs)} but specs name {self.modalities}")
        n = int(labels.shape[0])
        for name, t in inputs.items():
            if t.shape[0] != n:
                raise DataError(f"modality {name!r} has {t.shape[0]} samples but there are {n} labels")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise DataError(
                f"label out of range: labels span [{int(labels.min())}, {int(labels.max())}] "
                f"but num_classes={num_classes}; fix the labels or num_classes"
            )
        self.inputs = inputs
        self.labels = labels.long()
        self.num_classes = int(num_classes)
        self.extras = dict(extras or {})
        self.rows = torch.arange(n) if rows is None else rows.long()
        m = len(self.modalities)
        self.keep = torch.ones(len(self.rows), m, dtype=torch.bool) if keep is None else keep.bool()

    # -- views -----------------------------------------------------------------
    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    @property
    def num_samples(self) -> int:
        """Number of samples in storage (valuation tables are indexed by these)."""
        return int(self.labels.shape[0])

    def view(self, rows: Tensor, keep: Tensor | None = None) -> "MultimodalDataset":
        """A new view over the same storage with storage ``rows`` and optional ``keep`` ``[U, M]``."""
        return MultimodalDataset(self.inputs, self.labels, self.num_classes, self.specs, self.extras, rows, keep)

    def with_units(self, rows: Tensor, keep: Tensor) -> "MultimodalDataset":
        """This view plus extra training units (storage row, keep-mask) appended."""
        return self.view(torch.cat([self.rows, rows.long()]), torch.cat([self.keep, keep.bool()]))

    def to(self, device: torch.device | str) -> "MultimodalDataset":
        """Move storage to ``device`` (keeps data resident on the GPU: no per-epoch host copies)."""
        move = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
        return MultimodalDataset(
            move(self.inputs), self.labels.to(device), self.num_classes, self.specs, move(self.extras),
            self.rows.to(device), self.keep.to(device),
        )

    # -- Dataset protocol ----------------------------------------------------
    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitems__(self, positions: Sequence[int] | Tensor) -> Batch:
        pos = torch.as_tensor(positions, dtype=torch.long, device=self.rows.device)
        rows = self.rows[pos]
        batch: Batch = {
            "inputs": {k: v[rows] for k, v in self.inputs.items()},
            "label": self.labels[rows],
            "index": rows,
            "keep": self.keep[pos],
        }
        for k, v in self.extras.items():
            batch[k] = v[rows]
        return batch

    def __getitem__(self, position: int) -> Batch:
        b = self.__getitems__([position])
        return _unbatch(b)


def _unbatch(b: Batch) -> Batch:
    return {k: ({kk: vv[0] for kk, vv in v.items()} if isinstance(v, dict) else v[0]) for k, v in b.items()}


def _identity(x: Batch) -> Batch:
    return x


@dataclass
class DatasetSplits:
    """Train/validation/test splits of one dataset plus provenance ``info`` (where found, params)."""

    name: str
    train: MultimodalDataset
    val: MultimodalDataset
    test: MultimodalDataset
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def specs(self) -> list[ModalitySpec]:
        return self.train.specs

    @property
    def modalities(self) -> list[str]:
        return self.train.modalities

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    def split(self, name: str) -> MultimodalDataset:
        if name not in ("train", "val", "test"):
            raise DataError(f"unknown split {name!r}; valid splits: train, val, test")
        return getattr(self, name)


def make_loader(
    dataset: MultimodalDataset,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    distributed: bool = False,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` yielding whole batches fetched by ``__getitems__``.

    Shuffling is seeded by ``(seed, epoch)`` so every rank and a resumed run draw the
    same order. With ``distributed=True`` a ``DistributedSampler`` shards the data.
    """
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler: Iterable[int] = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        sampler.set_epoch(epoch)  # type: ignore[attr-defined]
    elif shuffle:
        g = torch.Generator()
        g.manual_seed(seed * 100_003 + epoch)
        sampler = RandomSampler(dataset, generator=g)
    else:
        sampler = SequentialSampler(dataset)
    bs = BatchSampler(sampler, batch_size=batch_size, drop_last=drop_last)  # type: ignore[arg-type]
    batches = _NoSingletonBatches(bs) if shuffle else bs
    return DataLoader(dataset, batch_sampler=batches, collate_fn=_identity, num_workers=0)


class _NoSingletonBatches:
    """Batches of ``inner``, with a trailing batch of one sample merged into the one before.

    BatchNorm cannot normalise a single training sample, and whether the last batch
    holds one sample depends on the epoch's size (e.g. originals + re-sampled units).
    """

    def __init__(self, inner: BatchSampler) -> None:
        self.inner = inner

    def __iter__(self):  # type: ignore[no-untyped-def]
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
        last = len(self.inner.sampler) % self.inner.batch_size  # type: ignore[arg-type]
        return n - 1 if (n > 1 and last == 1 and not self.inner.drop_last) else n


def batch_to(batch: Batch, device: torch.device | str, non_blocking: bool = True) -> Batch:
    """Move every tensor of a batch to ``device``."""
    out: Batch = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {kk: vv.to(device, non_blocking=non_blocking) for kk, vv in v.items()}
        elif isinstance(v, Tensor):
            out[k] = v.to(device, non_blocking=non_blocking)
        else:
            out[k] = v
    return out
