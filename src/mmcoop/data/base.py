"""Multimodal dataset views, batches and splits.

A `MultimodalDataset` is a *view* over a `Source`
(the ``N`` samples of one split): ``rows`` selects source rows and ``keep`` gives each
row a modality keep-mask, so re-sampling units (sample, keep-mask) and subsets are
cheap views of the same storage, over every kind of source. ``train`` says which
transforms the source applies (``False``, the default: eval transforms; the training
loop uses `MultimodalDataset.train_mode` for its loaders, valuation and
evaluation never do). Batches are fetched whole (``__getitems__``), so a
``DataLoader`` with any batch sampler feeds it without per-sample Python work
(see `make_loader`).

A batch is a dict::

    {"inputs": {modality: Tensor[B, *shape]}, "label": int64[B],
     "index": int64[B] (row in the split's source = sample index),
     "keep": bool[B, M], **extras (each [B])}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from mmcoop.data.loader import make_loader
from mmcoop.data.protocol import KIND_NDIM, ModalitySpec, Source, Transforms, sample_ids
from mmcoop.data.tensor_source import TensorSource
from mmcoop.errors import DataError

Batch = dict[str, Any]

__all__ = [
    "Batch",
    "DatasetSplits",
    "ModalitySpec",
    "MultimodalDataset",
    "batch_to",
    "make_loader",
    "KIND_NDIM",
    "Source",
    "TensorSource",
    "Transforms",
]


class MultimodalDataset(Dataset):
    """A view (rows, keep-masks, train/eval mode) over a `Source`.

    Two ways to build one::

        MultimodalDataset(inputs, labels, num_classes, specs, extras=None)  # in-memory tensors
        MultimodalDataset.from_source(source, rows=None, keep=None, train=False)  # any source

    Args:
        inputs: a `Source`, or modality name -> tensor ``[N, *shape]`` (then a
            `TensorSource` is built from ``inputs, labels, num_classes, specs, extras``).
        labels: int64 ``[N]`` in ``[0, num_classes)`` (tensor storage only).
        num_classes: number of classes (tensor storage only).
        specs: one `ModalitySpec` per modality, in modality order (tensor storage only).
        extras: optional name -> tensor ``[N]`` carried into every batch (tensor storage only).
        rows: int64 ``[U]`` source rows of this view (default: all, in order).
        keep: bool ``[U, M]`` keep-mask per view row (default: all True).
        train: fetch with the source's training transforms (default: eval transforms).
    """

    def __init__(
        self,
        inputs: Mapping[str, Tensor] | Source,
        labels: Tensor | None = None,
        num_classes: int | None = None,
        specs: Sequence[ModalitySpec] | None = None,
        extras: Mapping[str, Tensor] | None = None,
        rows: Tensor | None = None,
        keep: Tensor | None = None,
        *,
        train: bool = False,
    ) -> None:
        if isinstance(inputs, Mapping):
            if labels is None or num_classes is None or specs is None:
                raise TypeError(
                    "MultimodalDataset(inputs, labels, num_classes, specs): labels, num_classes "
                    "and specs are required for in-memory tensors"
                )
            source: Source = TensorSource(inputs, labels, num_classes, specs, extras)
        else:
            if not isinstance(inputs, Source):
                raise DataError(
                    f"MultimodalDataset needs a Source (specs, num_classes, __len__, labels(), fetch()) "
                    f"or a dict of tensors, got {type(inputs).__name__}"
                )
            if any(a is not None for a in (labels, num_classes, specs, extras)):
                raise TypeError(
                    "MultimodalDataset(source, ...): labels, num_classes, specs and extras come from "
                    "the source; pass rows=/keep= by keyword"
                )
            source = inputs
        self._init_view(source, rows, keep, train)

    @classmethod
    def from_source(
        cls, source: Source, rows: Tensor | None = None, keep: Tensor | None = None, train: bool = False
    ) -> "MultimodalDataset":
        """A view over ``source`` (all rows, all modalities kept, eval transforms by default)."""
        if not isinstance(source, Source):
            raise DataError(
                f"MultimodalDataset.from_source needs a Source (specs, num_classes, __len__, labels(), "
                f"fetch()), got {type(source).__name__}"
            )
        ds = cls.__new__(cls)
        ds._init_view(source, rows, keep, train)
        return ds

    def _init_view(self, source: Source, rows: Tensor | None, keep: Tensor | None, train: bool) -> None:
        self.source = source
        self.specs = list(source.specs)
        self.modalities = [s.name for s in self.specs]
        self.num_classes = int(source.num_classes)
        self.train = bool(train)
        n = len(source)
        if rows is None:
            rows = torch.arange(n)
        self.rows = rows.long()
        m = len(self.modalities)
        if keep is None:
            keep = torch.ones(len(self.rows), m, dtype=torch.bool, device=self.rows.device)
        self.keep = keep.bool()
        if self.keep.dim() != 2 or tuple(self.keep.shape) != (len(self.rows), m):
            raise DataError(f"keep-masks must be [U, M] = [{len(self.rows)}, {m}], got {tuple(self.keep.shape)}")

    # -- what the source holds -----------------------------------------------------
    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    @property
    def num_samples(self) -> int:
        """Number of samples in the source (valuation tables are indexed by these)."""
        return len(self.source)

    @property
    def labels(self) -> Tensor:
        """int64 ``[N]``: every source sample's class (not only this view's rows)."""
        return self.source.labels()

    @property
    def sample_ids(self) -> list[str]:
        """Stable id of every source sample ``[N]`` (not only this view's rows); see
        `sample_ids`."""
        return sample_ids(self.source)

    @property
    def extras(self) -> dict[str, Tensor]:
        """Per-sample extras of the source (name -> ``[N]``), e.g. ``degraded``; ``{}`` if none."""
        return getattr(self.source, "extras", None) or {}

    @property
    def inputs(self) -> dict[str, Tensor]:
        """Modality -> ``[N, *shape]`` storage (in-memory sources only)."""
        inputs = getattr(self.source, "inputs", None)
        if not isinstance(inputs, dict):
            raise AttributeError(
                f"{type(self.source).__name__} is not held in memory: it has no .inputs tensors; "
                "read samples through a loader (make_loader) or source.fetch(rows, train)"
            )
        return inputs

    @property
    def in_memory(self) -> bool:
        """True when the source can be moved with `to` (tensors in memory)."""
        return callable(getattr(self.source, "to", None))

    # -- views -----------------------------------------------------------------
    def view(self, rows: Tensor, keep: Tensor | None = None) -> "MultimodalDataset":
        """A new view over the same source with rows ``rows`` and optional ``keep`` ``[U, M]``."""
        return MultimodalDataset.from_source(self.source, rows, keep, self.train)

    def with_units(self, rows: Tensor, keep: Tensor) -> "MultimodalDataset":
        """This view plus extra training units (source row, keep-mask) appended."""
        return self.view(torch.cat([self.rows, rows.long()]), torch.cat([self.keep, keep.bool()]))

    def train_mode(self, flag: bool = True) -> "MultimodalDataset":
        """The same rows and keep-masks, fetched with training (``True``) or eval (``False``) transforms."""
        return MultimodalDataset.from_source(self.source, self.rows, self.keep, flag)

    def to(self, device: torch.device | str) -> "MultimodalDataset":
        """Move in-memory storage to ``device`` (no per-epoch host copies); a no-op for lazy sources."""
        if not self.in_memory:
            return self
        return MultimodalDataset.from_source(
            self.source.to(device),  # type: ignore[attr-defined]  # in-memory sources have .to
            self.rows.to(device),
            self.keep.to(device),
            self.train,
        )

    # -- Dataset protocol ----------------------------------------------------
    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def __getitems__(self, positions: Sequence[int] | Tensor) -> Batch:
        pos = torch.as_tensor(positions, dtype=torch.long, device=self.rows.device)
        rows = self.rows[pos]
        got = self.source.fetch(rows, self.train)
        batch: Batch = {"inputs": got["inputs"], "label": got["label"], "index": rows, "keep": self.keep[pos]}
        for k, v in got.items():
            if k not in ("inputs", "label"):
                batch[k] = v
        return batch

    def __getitem__(self, position: int) -> Batch:
        b = self.__getitems__([position])
        return _unbatch(b)

    def __repr__(self) -> str:
        return (
            f"MultimodalDataset({len(self)} rows over {type(self.source).__name__} of {self.num_samples}, "
            f"modalities={self.modalities}, train={self.train})"
        )


def _unbatch(b: Batch) -> Batch:
    return {k: ({kk: vv[0] for kk, vv in v.items()} if isinstance(v, dict) else v[0]) for k, v in b.items()}


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
