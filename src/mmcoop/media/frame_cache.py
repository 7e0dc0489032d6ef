"""The fast frame path as a dataset option: clip sources served from a decoded frame cache.

``dataset_options.frame_cache: true`` (any paper-dataset reader of `mmcoop.datasets` whose
clips have RGB frame folders: Kinetics-Sounds, MM-Debiased, VGGSound, CREMA-D, AVE,
UCF-101's ``rgb``) decodes every frame of every clip of a split once, at the eval
resolution ``image_size`` x ``image_size`` (PIL decode, RGB, bilinear ``Resize``: the
per-item eval transform), into a `FrameCache` under
``<mmcoop cache dir>/frames/`` (`mmcoop.data.storage.cache_dir`; ``$MMCOOP_CACHE``
moves it). A cache is keyed by the dataset, split, modality, the list of clip folders
and the size; it is built once, under a file lock (concurrent processes, e.g. DDP
ranks, wait and then open it) and atomically (a killed build leaves no cache), and
rebuilt when a frame file changes (the cache's own key holds file names and mtimes).

`CachedClipSource` then serves ``fetch(rows, train)`` with one memory-mapped
gather per batch and batched transforms:

- **eval: bit-identical** to the per-item decode (`ClipSource`):
  the same frames (`segment_frames`, the one frame-choice
  rule), the same PIL resize, the same float32 ``x / 255``, ``(x - mean) / std``;
- **train: same parameter distribution, approximated pixels.** Frame choice draws as
  the reader does; ``RandomResizedCrop`` boxes follow torchvision's ``get_params``
  distribution in the *original* frame's pixels and flips are Bernoulli(0.5) per frame
  (`random_resized_crop_batch`), but the box is resampled
  from the cached eval-resolution frame (bilinear ``grid_sample``, rounded to uint8
  levels) instead of PIL's antialiased crop of the original: detail finer than the
  eval resize is lost (see `mmcoop.media.frames`). The random draws are made in a
  different order than the per-item path, so equal seeds give equally distributed,
  not equal, crops. ``train_crop: resize`` is exact (the cached frame, then the flip).

Spectrograms stored as ``.npy`` are memory-mapped (``np.load(mmap_mode="r")``) and copied
straight into the batch; other modalities (wav spectrograms, optical flow) are decoded
per item as by the reader.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from mmcoop.data.protocol import Transforms
from mmcoop.data.storage import cache_dir
from mmcoop.errors import ConfigError, DataError
from mmcoop.media.clips import ClipSource
from mmcoop.media.frame_folders import FrameFolder
from mmcoop.media.frames import FrameCache, segment_frames
from mmcoop.media.spectrograms import SpectrogramFile
from mmcoop.utils.progress import show_progress
from mmcoop.media.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize_frames,
    random_resized_crop_batch,
)

CACHE_SUBDIR = "frames"


def frame_cache_path(source: ClipSource, modality: str, size: int) -> Path:
    """Where the frame cache of ``modality`` of a split lives: ``<cache dir>/frames/<dataset>-<split>-<modality>-<S>px-<key>``.

    ``key`` hashes the dataset name, split, modality, every clip's frame folder (resolved
    path, in order) and the size.
    """
    folders = [str(Path(c.paths[modality]).resolve()) for c in source.clips]
    key = hashlib.sha256(
        json.dumps(
            {"dataset": source.name, "split": source.split, "modality": modality, "folders": folders, "size": int(size)}
        ).encode()
    ).hexdigest()[:16]
    return cache_dir() / CACHE_SUBDIR / f"{source.name}-{source.split}-{modality}-{int(size)}px-{key}"


def build_frame_cache(
    source: ClipSource, modality: str, workers: int | None = None, progress: bool | None = None
) -> FrameCache:
    """Build (or open) the eval-resolution frame cache of one frame modality of ``source``.

    Args:
        source: a reader's split.
        modality: a `FrameFolder` modality of it.
        workers: decoding threads (default ``min(8, cpu count)``).
        progress: progress bar (default: when stderr is a terminal).

    Returns:
        The opened `FrameCache` (clip ``i`` of the source = cache row ``i``).
    """
    from filelock import FileLock

    loader = source.loaders[modality]
    if not isinstance(loader, FrameFolder):
        raise DataError(f"{source.name} {source.split}: modality {modality!r} is not an RGB frame folder")
    size = int(loader.image_size)
    path = frame_cache_path(source, modality, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    progress = show_progress(progress)
    with FileLock(str(path) + ".lock"):
        return FrameCache.build(
            None,
            source.ids,
            path,
            size=(size, size),
            workers=workers,
            progress=progress,
            folders=[c.paths[modality] for c in source.clips],
        )


class CachedClipSource:
    """A `ClipSource` whose frame modalities are served from frame caches (see the module docstring).

    The data-source protocol, duck-typed (``specs``, ``num_classes``, ``len``, ``labels()``,
    ``fetch(rows, train, generator=None)``); picklable (each DataLoader worker maps the
    cache files itself).

    Args:
        source: the per-item source (its clips, loaders and labels are used as they are).
        caches: modality -> the `FrameCache` of that modality's frame folders, one
            row per clip of ``source``, at ``image_size`` x ``image_size``.

    Raises:
        DataError: a cache that does not match the source (rows, size, modality).
    """

    def __init__(self, source: ClipSource, caches: dict[str, FrameCache]) -> None:
        for name, cache in caches.items():
            loader = source.loaders.get(name)
            if not isinstance(loader, FrameFolder):
                raise DataError(f"frame cache given for {name!r}, which is not a frame-folder modality of {source!r}")
            s = int(loader.image_size)
            if len(cache) != len(source) or cache.frame_hw != (s, s) or cache.clips != source.ids:
                raise DataError(
                    f"frame cache {cache.path} ({len(cache)} clips of {cache.frame_hw}) does not match "
                    f"{source!r} at {s}x{s}; delete it and load the dataset again"
                )
        self.source = source
        self.caches = dict(caches)
        self.info = {**source.info, "frame_cache": {k: str(c.path) for k, c in self.caches.items()}}

    # -- the protocol -------------------------------------------------------------------
    @property
    def specs(self) -> list[Any]:
        return self.source.specs

    @property
    def num_classes(self) -> int:
        return self.source.num_classes

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def split(self) -> str:
        return self.source.split

    @property
    def ids(self) -> list[str]:
        return self.source.ids

    @property
    def classes(self) -> list[str]:
        return self.source.classes

    def __len__(self) -> int:
        return len(self.source)

    def labels(self) -> Tensor:
        """int64 ``[N]`` class of every clip."""
        return self.source.labels()

    def fetch(
        self, rows: Tensor | Sequence[int], train: bool, generator: torch.Generator | None = None
    ) -> dict[str, Any]:
        """Clips ``rows`` (int64 ``[B]``) as ``{"inputs": {modality: Tensor[B, *shape]}, "label": int64[B]}``.

        Frame modalities: one cache gather + batched transforms; ``.npy`` spectrograms:
        memory-mapped reads; the rest: the reader's per-item loader.
        ``generator``: source of the training draws (default: torch's global generator).
        """
        idx = torch.as_tensor(rows, dtype=torch.long).reshape(-1).cpu()
        inputs: dict[str, Tensor] = {}
        for name, loader in self.source.loaders.items():
            if name in self.caches:
                inputs[name] = self._frames(name, loader, idx, train, generator)  # type: ignore[arg-type]
            elif isinstance(loader, SpectrogramFile):
                inputs[name] = self._spectrograms(name, loader, idx)
            else:
                per_clip = [loader.load(self.source.clips[i].paths[name], train, generator) for i in idx.tolist()]
                stacked = torch.stack(per_clip) if per_clip else torch.zeros(0, *loader.spec.shape)
                inputs[name] = loader.finish(stacked)
        return {"inputs": inputs, "label": self.source.labels()[idx]}

    # -- modalities ---------------------------------------------------------------------
    def _frames(
        self, name: str, loader: FrameFolder, idx: Tensor, train: bool, generator: torch.Generator | None
    ) -> Tensor:
        """float32 ``[B, T, 3, S, S]`` from the cache: chosen frames, then the eval or train transform."""
        cache = self.caches[name]
        size = int(loader.image_size)
        pos = segment_frames(
            cache.num_frames[idx], loader.num_frames, train, generator, loader.train_choice, loader.eval_choice
        )
        frames = cache.gather(idx, pos + 1)  # uint8 [B, T, 3, S, S]
        mean, std = loader.mean, loader.std
        if not train:
            return (
                normalize_frames(frames, mean, std)
                if mean is not None and std is not None
                else frames.to(torch.float32).div_(255)
            )
        if loader.crop == "random-resized":
            out = random_resized_crop_batch(
                frames, generator, cache.orig_hw[idx], size=size, flip_p=0.5 if loader.flip else 0.0, normalize=False
            )
        else:  # the cached frame is the plain resize; then the per-frame flip
            out = frames.to(torch.float32).div_(255)
            if loader.flip:
                b, t = out.shape[:2]
                flip = (torch.rand(b * t, generator=generator) < 0.5).view(b, t)
                out = torch.where(flip[:, :, None, None, None], out.flip(-1), out)
        if mean is not None and std is not None:
            m = torch.as_tensor(mean, dtype=out.dtype).view(-1, 1, 1)
            s = torch.as_tensor(std, dtype=out.dtype).view(-1, 1, 1)
            out = out.sub_(m).div_(s)
        return out

    def _spectrograms(self, name: str, loader: SpectrogramFile, idx: Tensor) -> Tensor:
        """float32 ``[B, 1, F, T]``: ``.npy`` files memory-mapped and copied into the batch."""
        out = np.empty((idx.numel(), 1, *loader.shape), dtype=np.float32)
        for k, i in enumerate(idx.tolist()):
            path = Path(self.source.clips[i].paths[name])
            arr: Any = None
            if path.suffix == ".npy":
                try:
                    arr = np.load(path, mmap_mode="r")
                except Exception:  # noqa: BLE001 - the reader's load below names the problem
                    arr = None
            if (
                arr is None
                or arr.ndim != 2
                or not np.issubdtype(arr.dtype, np.number)
                or tuple(arr.shape) != tuple(loader.shape)
            ):
                arr = loader.load(path, False, None)[0].numpy()  # raises the reader's DataError for bad files
            out[k, 0] = arr
        return torch.from_numpy(out)

    def __repr__(self) -> str:
        return f"CachedClipSource({self.source!r}, frame caches: {', '.join(self.caches)})"


def cache_sources(sources: dict[str, Any], workers: int | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Each `ClipSource` of ``sources`` with every frame-folder modality served from its frame cache.

    Builds the missing caches (see `build_frame_cache`); other values pass through.

    Raises:
        ConfigError: no split has a frame-folder modality (nothing to cache).
    """
    out: dict[str, Any] = {}
    found = False
    for split, src in sources.items():
        if not isinstance(src, ClipSource):
            out[split] = src
            continue
        mods = [n for n, ld in src.loaders.items() if isinstance(ld, FrameFolder)]
        found = found or bool(mods)
        caches = {m: build_frame_cache(src, m, workers, progress) for m in mods} if len(src) else {}
        out[split] = CachedClipSource(src, caches) if caches else src
    if not found:
        raise ConfigError(
            "dataset_options.frame_cache: this dataset has no RGB frame-folder modality to cache; remove the option"
        )
    return out


def uint8_frame_transforms(
    modalities: Sequence[str],
    size: int = 224,
    flip_p: float = 0.5,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Transforms:
    """Batched train/eval transforms for uint8 frames held in memory or on the GPU (a cache-like tensor).

    For a `TensorSource` whose frame modalities are stored
    as uint8 ``[N, T, 3, S, S]`` eval-resolution frames (e.g. a loaded `FrameCache`
    of the frames to use): the transforms run on the batch's device, so frames moved to the
    GPU (``train.data_on_device``) are augmented there.

    - train: `random_resized_crop_batch` (``RandomResizedCrop(size)``
      boxes in the stored frame's pixels, flip with ``flip_p``, ``Normalize(mean, std)``);
    - eval: `normalize_frames` (``ToTensor`` + ``Normalize``,
      bit-identical to torchvision's on the same frames).

    Other modalities pass through unchanged.

    Args:
        modalities: names of the uint8 frame modalities.
        size: output side (the stored side for eval).

    Returns:
        `Transforms`.
    """
    names = list(modalities)

    def train(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {
            k: random_resized_crop_batch(v, None, size=size, flip_p=flip_p, mean=mean, std=std) if k in names else v
            for k, v in inputs.items()
        }

    def evaluate(inputs: dict[str, Tensor]) -> dict[str, Tensor]:
        return {k: normalize_frames(v, mean, std) if k in names else v for k, v in inputs.items()}

    return Transforms(train, evaluate)
