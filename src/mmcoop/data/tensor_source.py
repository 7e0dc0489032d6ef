"""In-memory tensors as a `Source` (the built-in datasets' storage)."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor

from mmcoop.data.items import as_kind_dtype
from mmcoop.data.protocol import ModalitySpec, Transforms, check_ids
from mmcoop.errors import DataError


class TensorSource:
    """One tensor per modality ``[N, *shape]``, labels ``[N]`` and optional extras ``[N]``.

    Fetching indexes the tensors on their device (data moved to the GPU with
    `to` stays there: no per-epoch host copies).

    Args:
        inputs: modality name -> tensor ``[N, *shape]``.
        labels: int64 ``[N]`` in ``[0, num_classes)``.
        num_classes: number of classes.
        specs: one `ModalitySpec` per modality, in modality order.
        extras: optional name -> tensor ``[N]`` returned with every fetch.
        transforms: optional train/eval batch transforms (`Transforms` or
            ``{"train": fn, "eval": fn}``).
        ids: optional stable id per sample ``[N]`` (default: the row index).
        waveforms: optional ``fn(row) -> {modality: (wave [T], rate)}`` giving the raw audio
            behind a modality (e.g. the spectrogram's recording), for the report's player.
        info: optional provenance (file, options) a dataset reader reports with the split.

    Raises:
        DataError: modalities differ from the specs, sample counts differ, labels out of range,
            ids not one unique value per sample.
    """

    def __init__(
        self,
        inputs: Mapping[str, Tensor],
        labels: Tensor,
        num_classes: int,
        specs: Sequence[ModalitySpec],
        extras: Mapping[str, Tensor] | None = None,
        transforms: Transforms | Mapping[str, Any] | None = None,
        ids: Sequence[Any] | None = None,
        waveforms: Callable[[int], dict[str, tuple[Any, int]]] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.specs = list(specs)
        names = [s.name for s in self.specs]
        if set(inputs) != set(names):
            raise DataError(f"inputs have modalities {sorted(inputs)} but specs name {names}")
        n = int(labels.shape[0])
        for name, t in inputs.items():
            if t.shape[0] != n:
                raise DataError(f"modality {name!r} has {t.shape[0]} samples but there are {n} labels")
        for name, t in (extras or {}).items():
            if t.shape[0] != n:
                raise DataError(f"extra {name!r} has {t.shape[0]} entries but there are {n} labels")
        if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            raise DataError(
                f"label out of range: labels span [{int(labels.min())}, {int(labels.max())}] "
                f"but num_classes={num_classes}; fix the labels or num_classes"
            )
        self.inputs = {s.name: as_kind_dtype(inputs[s.name], s, None) for s in self.specs}
        self._labels = labels.long()
        self.num_classes = int(num_classes)
        self.extras = dict(extras or {})
        self.transforms = Transforms.coerce(transforms)
        self.ids = None if ids is None else check_ids(ids, n, "TensorSource ids")
        self._waveforms = waveforms
        self.info = dict(info or {})

    def sample_ids(self) -> list[str] | None:
        """The ids given (``None``: the row indices are the ids)."""
        return self.ids

    def waveforms(self, row: int) -> dict[str, tuple[Any, int]]:
        """Raw audio of sample ``row`` from the ``waveforms`` function given, else ``{}``."""
        return {} if self._waveforms is None else self._waveforms(int(row))

    def __len__(self) -> int:
        return int(self._labels.shape[0])

    def labels(self) -> Tensor:
        """int64 ``[N]`` (on the storage device)."""
        return self._labels

    @property
    def device(self) -> torch.device:
        return self._labels.device

    def fetch(self, rows: Tensor, train: bool) -> dict[str, Any]:
        """Rows ``[B]`` (on the storage device) -> ``{"inputs", "label", **extras}``; see `Source`."""
        out: dict[str, Any] = {
            "inputs": self.transforms({k: v[rows] for k, v in self.inputs.items()}, train),
            "label": self._labels[rows],
        }
        for k, v in self.extras.items():
            out[k] = v[rows]
        return out

    def to(self, device: torch.device | str) -> "TensorSource":
        """The same source with every tensor on ``device``."""
        src = TensorSource.__new__(TensorSource)
        src.specs, src.num_classes, src.transforms = self.specs, self.num_classes, self.transforms
        src.inputs = {k: v.to(device) for k, v in self.inputs.items()}
        src._labels = self._labels.to(device)
        src.extras = {k: v.to(device) for k, v in self.extras.items()}
        src.ids, src._waveforms, src.info = self.ids, self._waveforms, self.info
        return src

    def __repr__(self) -> str:
        return f"TensorSource(N={len(self)}, modalities={[s.name for s in self.specs]}, device={self.device})"
