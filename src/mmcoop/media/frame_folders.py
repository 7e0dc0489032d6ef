"""Frame-folder loaders: RGB frames and optical-flow pairs of one clip -> ``[T, C, S, S]``.

`FrameFolder` reads a folder of RGB frame images, `FlowFolders` a pair of
greyscale u/v folders, `Hdf5Frames` the encoded frames of one HDF5 file per clip
(BalanceBenchmark's BalancedAV layout; needs h5py), `ImageFile` one image per sample. Frames are chosen by `mmcoop.media.frames.frame_indices`
(the package's one frame-choice rule) and transformed per frame as the official
pipelines do (`mmcoop.media.transforms.transform_group`: ``RandomResizedCrop`` +
flip in training, ``Resize`` in evaluation); normalisation is applied once per batch
(`mmcoop.media.transforms.normalize_frames`, ImageNet mean/std by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from mmcoop.data.base import ModalitySpec
from mmcoop.errors import DataError
from mmcoop.media.frames import (
    EVAL_CHOICES,
    TRAIN_CHOICES,
    EvalChoice,
    TrainChoice,
    frame_indices,
    list_frames,
)
from mmcoop.media.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Crop,
    normalize_frames,
    open_image,
    open_image_bytes,
    transform_group,
)
from mmcoop.utils.optional import import_optional


@dataclass
class _Frames:
    """Fields, validation, spec and normalisation shared by `FrameFolder` and `FlowFolders`."""

    channels: ClassVar[int] = 3
    name: str
    layout: str
    num_frames: int = 3
    image_size: int = 224
    train_choice: TrainChoice = "random"
    eval_choice: EvalChoice = "centre"
    crop: Crop = "random-resized"
    flip: bool = True
    mean: tuple[float, ...] | None = IMAGENET_MEAN
    std: tuple[float, ...] | None = IMAGENET_STD
    spec: ModalitySpec = field(init=False)

    def __post_init__(self) -> None:
        check_frame_options(self.num_frames, self.image_size, self.train_choice, self.eval_choice, self.crop)
        shape = (self.num_frames, self.channels, self.image_size, self.image_size)
        self.spec = ModalitySpec(self.name, "frames", shape)  # type: ignore[arg-type]

    def finish(self, batch: Tensor) -> Tensor:
        return normalize_frames(batch, self.mean, self.std)


@dataclass
class FrameFolder(_Frames):
    """RGB frames of a clip folder -> uint8 ``[T, 3, S, S]``, normalised per batch to float.

    Attributes:
        name: modality name.
        layout: the reader's layout text (error messages).
        num_frames: ``T``.
        image_size: ``S``.
        train_choice / eval_choice: see `frame_indices`.
        crop: training crop (``random-resized`` or ``resize``).
        flip: random horizontal flip in training.
        mean / std: per-channel normalisation (ImageNet by default; ``None`` keeps ``[0, 1]``).
    """

    def load(self, path: Path, train: bool, gen: torch.Generator | None) -> Tensor:
        files = list_frames(path, self.layout)
        idx = frame_indices(len(files), self.num_frames, train, gen, self.train_choice, self.eval_choice)
        frames = [
            transform_group(
                [open_image(files[i], "RGB", self.layout)], self.image_size, train, gen, self.crop, self.flip
            )[0]
            for i in idx
        ]
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


@dataclass
class FlowFolders(_Frames):
    """Optical flow as paired greyscale u/v frame folders -> ``[T, 2, S, S]`` (u, v channels).

    The u and v images of a frame share one crop/flip draw. Flipping does not negate u
    (as in the official UCF-101 loader). Values are ``x / 255``, then ``(x - mean) / std``
    if given (BalanceBenchmark: no flow normalisation by default).
    """

    channels: ClassVar[int] = 2
    crop: Crop = "resize"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def load(self, path: tuple[Path, Path], train: bool, gen: torch.Generator | None) -> Tensor:
        u_files, v_files = list_frames(path[0], self.layout), list_frames(path[1], self.layout)
        n = min(len(u_files), len(v_files))
        idx = frame_indices(n, self.num_frames, train, gen, self.train_choice, self.eval_choice)
        frames = []
        for i in idx:
            u, v = transform_group(
                [open_image(u_files[i], "L", self.layout), open_image(v_files[i], "L", self.layout)],
                self.image_size,
                train,
                gen,
                self.crop,
                self.flip,
            )
            frames.append(np.concatenate([u, v], axis=2))
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


@dataclass
class Hdf5Frames(_Frames):
    """Encoded RGB frames (JPEG/PNG bytes) in the dataset ``key`` of one HDF5 file per clip -> ``[T, 3, S, S]``.

    BalanceBenchmark (GeWu-Lab/BalanceBenchmark 4c1482f, ``balancemm/datasets/balance_dataset.py``)
    stores a clip's frames as ``f["video"][i]``, each the bytes of one image, opened with
    ``Image.open(io.BytesIO(...))``. Frames are chosen and transformed as `FrameFolder`'s.

    Attributes:
        key: the HDF5 dataset holding the frames (``video``).
    """

    key: str = "video"

    def load(self, path: Path, train: bool, gen: torch.Generator | None) -> Tensor:
        h5py = import_optional("h5py", "balancedav", f"reading the HDF5 frames {path}")
        try:
            with h5py.File(path, "r") as f:
                if self.key not in f:
                    raise DataError(f"HDF5 frame file {path} has no dataset {self.key!r} (it has {sorted(f)})")
                video = f[self.key]
                n = len(video)
                if n < 1:
                    raise DataError(f"HDF5 frame file {path}: dataset {self.key!r} holds no frames")
                idx = frame_indices(n, self.num_frames, train, gen, self.train_choice, self.eval_choice)
                encoded = [np.asarray(video[i]).tobytes() for i in idx]
        except FileNotFoundError:
            raise DataError(f"missing HDF5 frame file {path}") from None
        except OSError as e:
            raise DataError(f"corrupt HDF5 frame file {path}: {e}. Re-create it") from None
        frames = []
        for i, data in zip(idx, encoded):
            image = open_image_bytes(data, f"{path}[{self.key!r}][{i}]")
            frames.append(transform_group([image], self.image_size, train, gen, self.crop, self.flip)[0])
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


@dataclass
class ImageFile:
    """One RGB image file per sample -> uint8 ``[3, S, S]`` (kind ``image``), normalised per batch to float.

    Train: the crop (``resize`` or ``random-resized``) and a random horizontal flip; eval
    ``Resize((S, S))``; ImageNet normalisation by default (as `FrameFolder`).

    Attributes:
        name: modality name.
        layout: the reader's layout text (error messages).
        image_size: ``S``.
        crop: training crop.
        flip: random horizontal flip in training.
        mean / std: per-channel normalisation (``None`` keeps ``[0, 1]``).
    """

    name: str
    layout: str
    image_size: int = 224
    crop: Crop = "resize"
    flip: bool = True
    mean: tuple[float, ...] | None = IMAGENET_MEAN
    std: tuple[float, ...] | None = IMAGENET_STD
    spec: ModalitySpec = field(init=False)

    def __post_init__(self) -> None:
        check_frame_options(1, self.image_size, "random", "centre", self.crop)
        self.spec = ModalitySpec(self.name, "image", (3, self.image_size, self.image_size))

    def load(self, path: Path, train: bool, gen: torch.Generator | None) -> Tensor:
        image = open_image(path, "RGB", self.layout)
        arr = transform_group([image], self.image_size, train, gen, self.crop, self.flip)[0]
        return torch.from_numpy(arr).permute(2, 0, 1).contiguous()

    def finish(self, batch: Tensor) -> Tensor:
        return normalize_frames(batch, self.mean, self.std)


def check_frame_options(num_frames: int, image_size: int, train_choice: str, eval_choice: str, crop: str) -> None:
    """Validate frame options (a `DataError` names the bad value and the valid ones)."""
    if int(num_frames) < 1 or int(image_size) < 1:
        raise DataError(f"num_frames and image_size must be >= 1, got {num_frames} and {image_size}")
    for key, value, valid in (
        ("train_frames", train_choice, TRAIN_CHOICES),
        ("eval_frames", eval_choice, EVAL_CHOICES),
        ("train_crop", crop, ("random-resized", "resize")),
    ):
        if value not in valid:
            raise DataError(f"{key} must be one of {', '.join(valid)}; got {value!r}")
