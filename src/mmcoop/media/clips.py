"""Clips and clip sources: the lazily decoding data source of the paper-dataset readers.

Every reader (one module per dataset under `mmcoop.datasets`) turns an index file
(split txt/csv/json) into a list of `Clip` records and wraps them in a
`ClipSource`, which follows the data-source protocol by duck typing:

- ``specs``: one `ModalitySpec` per modality,
- ``num_classes``, ``__len__()``, ``labels()`` (int64 ``[N]``, no decoding),
- ``fetch(rows, train, generator=None)`` ->
  ``{"inputs": {name: Tensor[B, *shape]}, "label": int64[B]}``.

Decoding happens per sample inside ``fetch`` (file I/O, parallelised by DataLoader
workers) by one `ModalityLoader` per modality (frame folders:
`mmcoop.media.frame_folders`; spectrograms: `mmcoop.media.spectrograms`);
normalisation is applied once per batch. ``train=True`` applies the training transforms
with random draws from ``generator`` (default: torch's global generator, which a
DataLoader seeds per worker); ``train=False`` is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor

from mmcoop.data.base import ModalitySpec
from mmcoop.errors import DataError
from mmcoop.media.audio import read_wav


def layout_error(message: str, layout: str) -> DataError:
    """A `DataError` with ``message`` followed by the expected layout."""
    return DataError(f"{message}. Expected layout:\n{layout.strip()}")


# -- clips and sources ------------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    """One sample: its id, class index and a path (or tuple of paths) per modality."""

    id: str
    label: int
    paths: dict[str, Any]


class ModalityLoader(Protocol):
    """Loads one modality of one clip; ``finish`` post-processes a stacked batch."""

    spec: ModalitySpec

    def load(self, path: Any, train: bool, gen: torch.Generator | None) -> Tensor: ...

    def finish(self, batch: Tensor) -> Tensor: ...


class ClipSource:
    """A split of clips read lazily from files (the data-source protocol, duck-typed).

    Args:
        name: dataset name (messages).
        split: ``train``, ``val`` or ``test``.
        clips: the present clips of the split.
        num_classes: number of classes.
        loaders: modality name -> loader, in modality order.
        classes: class names by index.
        info: provenance (index file, listed/missing counts, options).
    """

    def __init__(
        self,
        name: str,
        split: str,
        clips: Sequence[Clip],
        num_classes: int,
        loaders: dict[str, ModalityLoader],
        classes: Sequence[str] = (),
        info: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.split = split
        self.clips = list(clips)
        self.num_classes = int(num_classes)
        self.loaders = dict(loaders)
        self.classes = list(classes)
        self.info = dict(info or {})
        self._labels = torch.tensor([c.label for c in self.clips], dtype=torch.long)
        if len(self._labels) and (int(self._labels.min()) < 0 or int(self._labels.max()) >= self.num_classes):
            raise DataError(
                f"{name} {split}: labels span [{int(self._labels.min())}, {int(self._labels.max())}] "
                f"but num_classes={self.num_classes}; fix the split file or pass num_classes"
            )

    @property
    def specs(self) -> list[ModalitySpec]:
        return [ld.spec for ld in self.loaders.values()]

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.clips]

    def sample_ids(self) -> list[str]:
        """The clip id of every sample (the id in the split file): the stable sample id."""
        return self.ids

    def waveforms(self, row: int) -> dict[str, tuple[np.ndarray, int]]:
        """Raw audio of clip ``row`` for the modalities read from ``.wav`` files (mono, the file's rate)."""
        out: dict[str, tuple[np.ndarray, int]] = {}
        for name in self.loaders:
            path = self.clips[int(row)].paths.get(name)
            if isinstance(path, Path) and path.suffix.lower() == ".wav" and path.is_file():
                x, rate = read_wav(path)
                out[name] = (np.asarray(x, dtype=np.float32), int(rate))
        return out

    def __len__(self) -> int:
        return len(self.clips)

    def labels(self) -> Tensor:
        """int64 ``[N]`` class of every clip (no decoding)."""
        return self._labels.clone()

    def fetch(
        self, rows: Tensor | Sequence[int], train: bool, generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        """Decode clips ``rows`` (int64 ``[B]``).

        Args:
            rows: positions in this split.
            train: training transforms (random) if True, else the deterministic eval ones.
            generator: source of the training draws (default: torch's global generator).

        Returns:
            ``{"inputs": {modality: Tensor[B, *shape]}, "label": int64[B]}``.
        """
        idx = torch.as_tensor(rows, dtype=torch.long).reshape(-1).tolist()
        inputs: dict[str, Tensor] = {}
        for name, loader in self.loaders.items():
            per_clip = [loader.load(self.clips[i].paths[name], train, generator) for i in idx]
            stacked = torch.stack(per_clip) if per_clip else torch.zeros(0, *loader.spec.shape)
            inputs[name] = loader.finish(stacked)
        return {"inputs": inputs, "label": self._labels[idx] if idx else torch.zeros(0, dtype=torch.long)}

    def __repr__(self) -> str:
        mods = ", ".join(f"{s.name}{list(s.shape)}" for s in self.specs)
        return f"ClipSource({self.name}/{self.split}: {len(self)} clips, {self.num_classes} classes, {mods})"


def clip_files(clip: Clip) -> list[Path]:
    """Every path of a clip (a modality's value is a path or a tuple of paths)."""
    out: list[Path] = []
    for v in clip.paths.values():
        out.extend(v if isinstance(v, (tuple, list)) else [v])
    return out
