"""Shared pieces of the paper-dataset readers: clip sources, frame/audio loaders, layout errors.

Every reader (one module per on-disk layout) turns an index file (split txt/csv/json)
into a list of :class:`Clip` records and wraps them in a :class:`ClipSource`, which
follows the data-source protocol by duck typing:

- ``specs``: one :class:`~mmcoop.data.base.ModalitySpec` per modality,
- ``num_classes``, ``__len__()``, ``labels()`` (int64 ``[N]``, no decoding),
- ``fetch(rows, train, generator=None)`` ->
  ``{"inputs": {name: Tensor[B, *shape]}, "label": int64[B]}``.

Decoding happens per sample inside ``fetch`` (file I/O, parallelised by DataLoader
workers); normalisation is applied once per batch. ``train=True`` applies the
training transforms with random draws from ``generator`` (default: torch's global
generator, which a DataLoader seeds per worker); ``train=False`` is deterministic.

Facts shared by the official pipelines (cited per reader):

- Frames: ``PIL.Image.open(...).convert("RGB")``; train ``RandomResizedCrop(224)`` +
  ``RandomHorizontalFlip()``, eval ``Resize((224, 224))``, both then ``ToTensor()`` and
  ``Normalize(ImageNet mean/std)`` (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation
  ``code/datasets/dataloader.py`` ``AV_KS_Dataset.__getitem__``; the same in
  GeWu-Lab/OGM-GE_CVPR2022 ``dataset/*.py``). Each frame gets its own crop and flip.
  :func:`resized_crop_params` draws the crop exactly as torchvision's
  ``RandomResizedCrop.get_params`` does (same calls, same order), so with equal seeds
  the frames equal torchvision's output bit for bit.
- Frame choice: ``T`` frames, one per equal segment ("third" for ``T = 3``) of the
  clip's sorted frame files; train: uniformly random within each segment, eval: a
  fixed frame of each segment (see :func:`frame_indices`, one clip of
  :func:`mmcoop.media.frames.segment_frames`, which the frame cache uses as well).
- Wav spectrograms: ``librosa.load(sr=...)`` (resample, mono), tile, clip to ``[-1, 1]``,
  ``log(|STFT| + 1e-7)`` with a periodic Hann window, ``center=True`` and reflect padding
  (librosa < 0.10 defaults, the versions of the 2022-2023 official code). Resampling is
  a Kaiser-windowed sinc (the design of resampy's ``kaiser_best``, librosa < 0.10's
  default), so values differ from librosa's only at the resampler's rounding level.
"""

from __future__ import annotations

import csv
import math
import pickle
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Literal, Protocol, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from mmcoop.media.audio import read_wav
from mmcoop.data.base import ModalitySpec
from mmcoop.media.frames import EVAL_CHOICES, TRAIN_CHOICES, EvalChoice, TrainChoice, segment_frames
from mmcoop.data.storage import rng, stratified_split
from mmcoop.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val", "test")
MAX_LISTED = 10  # missing clip ids quoted in warnings / info

Crop = Literal["random-resized", "resize"]
OnMissing = Literal["skip", "error"]


# -- errors and index files -------------------------------------------------------------
def layout_error(message: str, layout: str) -> DataError:
    """A :class:`DataError` with ``message`` followed by the expected layout."""
    return DataError(f"{message}. Expected layout:\n{layout.strip()}")


def read_lines(path: Path, layout: str, what: str = "split file") -> list[str]:
    """Non-empty, stripped lines of a text index file (UTF-8, BOM allowed).

    Raises:
        DataError: the file is missing or unreadable (names it and the layout).
    """
    if not path.is_file():
        raise layout_error(f"missing {what} {path}", layout)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise layout_error(f"unreadable {what} {path} ({e})", layout) from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def read_csv_rows(path: Path, layout: str, min_fields: int, what: str = "split file") -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-empty CSV row with at least ``min_fields`` fields.

    Raises:
        DataError: missing file, or a row with too few fields (file, line, layout).
    """
    rows = []
    for lineno, fields in enumerate(csv.reader(read_lines(path, layout, what)), start=1):
        fields = [f.strip() for f in fields]
        if len(fields) < min_fields:
            raise layout_error(f"malformed line {lineno} of {path}: {','.join(fields)!r} has "
                               f"{len(fields)} comma-separated fields, expected at least {min_fields}", layout)
        rows.append((lineno, fields))
    return rows


def fill(template: str, **fields: Any) -> str:
    """``template.format(**fields)`` with a clear error for an unknown placeholder."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        raise DataError(f"path template {template!r} cannot be filled from {sorted(fields)} ({e!r})") from None


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

    def load(self, path: Any, train: bool, gen: torch.Generator | None) -> Tensor:
        ...

    def finish(self, batch: Tensor) -> Tensor:
        ...


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

    def __init__(self, name: str, split: str, clips: Sequence[Clip], num_classes: int,
                 loaders: dict[str, ModalityLoader], classes: Sequence[str] = (), info: dict[str, Any] | None = None) -> None:
        self.name = name
        self.split = split
        self.clips = list(clips)
        self.num_classes = int(num_classes)
        self.loaders = dict(loaders)
        self.classes = list(classes)
        self.info = dict(info or {})
        self._labels = torch.tensor([c.label for c in self.clips], dtype=torch.long)
        if len(self._labels) and (int(self._labels.min()) < 0 or int(self._labels.max()) >= self.num_classes):
            raise DataError(f"{name} {split}: labels span [{int(self._labels.min())}, {int(self._labels.max())}] "
                            f"but num_classes={self.num_classes}; fix the split file or pass num_classes")

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
        for name, loader in self.loaders.items():
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

    def fetch(self, rows: Tensor | Sequence[int], train: bool, generator: torch.Generator | None = None) -> dict[str, Any]:
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


def keep_present(name: str, split: str, clips: Sequence[Clip], index_file: Path | str, layout: str,
                 on_missing: OnMissing = "skip") -> tuple[list[Clip], dict[str, Any]]:
    """Drop clips whose files are absent; report them (warning + info), never fatal unless none is left.

    The official loaders skip such clips silently (``os.path.exists`` checks); here the
    count and the first ids are reported. With ``on_missing="error"`` the first absent
    clip is an error.

    Returns:
        ``(present clips, info)`` with ``listed``, ``present``, ``missing`` and ``missing_ids``.

    Raises:
        DataError: no clip of the split is present (or any is absent with ``on_missing="error"``).
    """
    if on_missing not in ("skip", "error"):
        raise DataError(f"on_missing must be 'skip' or 'error', got {on_missing!r}")
    present, missing = [], []
    first_absent: Path | None = None
    for clip in clips:
        absent = [p for p in clip_files(clip) if not p.exists()]
        if absent:
            missing.append(clip.id)
            if first_absent is None:
                first_absent = absent[0]
            if on_missing == "error":
                raise layout_error(f"{name} {split}: clip {clip.id!r} listed in {index_file} has no {absent[0]}", layout)
        else:
            present.append(clip)
    info = {"index_file": str(index_file), "listed": len(clips), "present": len(present),
            "missing": len(missing), "missing_ids": missing[:MAX_LISTED]}
    if clips and not present:
        raise layout_error(f"{name} {split}: none of the {len(clips)} clips listed in {index_file} is present "
                           f"(first absent file: {first_absent})", layout)
    if missing:
        warnings.warn(f"{name} {split}: {len(missing)} of {len(clips)} clips listed in {index_file} are absent and "
                      f"skipped (first: {', '.join(missing[:5])}; e.g. no {first_absent})", stacklevel=3)
    return present, info


def carve_val(clips: Sequence[Clip], fraction: float, seed: int, tag: int) -> tuple[list[Clip], list[Clip]]:
    """Split ``clips`` into ``(train, val)``: a seeded, class-stratified ``fraction`` goes to val.

    Uses :func:`mmcoop.data.storage.stratified_split` with ``rng(seed, tag)`` (per class,
    ``round(fraction * n_class)`` clips), so the carve is the same on every machine and rank.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {fraction}")
    labels = np.array([c.label for c in clips], dtype=np.int64)
    val_idx, train_idx = stratified_split(labels, [fraction], rng(seed, tag))
    return [clips[i] for i in train_idx], [clips[i] for i in val_idx]


def probe_shape(clips: Iterable[Clip], modality: str, layout: str) -> tuple[int, ...]:
    """Shape of the first clip's spectrogram file of ``modality`` (read once; nothing else is decoded)."""
    for clip in clips:
        return spectrogram_shape(clip.paths[modality], layout)
    raise DataError(f"no clip to read the {modality} shape from")


# -- frame choice and image transforms ----------------------------------------------------
def frame_indices(n: int, num: int, train: bool, gen: torch.Generator | None = None,
                  train_choice: TrainChoice = "random", eval_choice: EvalChoice = "centre") -> list[int]:
    """0-based indices of the ``num`` frames taken from ``n`` sorted frames of one clip.

    One clip of :func:`mmcoop.media.frames.segment_frames`, the package's one frame-choice
    rule (the frame cache uses it too): ``seg = n // num`` frames per segment; train
    ``random`` (a uniform frame of each segment, drawn as ``torch.randint(0, seg, (num,))``)
    or ``ks-official`` (the same draw with the official KS quirks: frame 1 if ``n <= 6``,
    1-based numbers ``>= 10`` become 9); eval (or train ``fixed``) ``centre``
    (``i*seg + seg//2``), ``start`` (``i*seg``) or ``ks-official`` (1-based
    ``i*seg + max(seg//2, 1)``, frame 1 if ``n <= 6``). With fewer frames than ``num``
    frames repeat: ``floor(i * n / num)``.

    Raises:
        ValueError: ``n < 1``.
        DataError: an unknown choice.
    """
    if n < 1:
        raise ValueError("no frames")
    return segment_frames(torch.tensor([n]), num, train, gen, train_choice, eval_choice)[0].tolist()


def resized_crop_params(width: int, height: int, gen: torch.Generator | None,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random resized crop, drawn as torchvision's ``RandomResizedCrop``.

    Up to 10 tries of an area fraction ``U(scale)`` and a log-uniform aspect ratio; the
    first crop that fits is placed uniformly; otherwise a centre crop clamped to ``ratio``.
    Draws come from ``gen`` in the same order as torchvision draws from the global generator.
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = math.exp(torch.empty(1).uniform_(float(log_ratio[0]), float(log_ratio[1]), generator=gen).item())
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=gen).item())
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=gen).item())
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def open_image(path: Path, mode: str, layout: str) -> Image.Image:
    """``Image.open(path).convert(mode)``; a missing or undecodable file is a :class:`DataError`."""
    try:
        with Image.open(path) as im:
            return im.convert(mode)
    except FileNotFoundError:
        raise layout_error(f"missing frame {path}", layout) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"corrupt image {path}: {e}. Re-extract the frames of this clip") from None


def transform_group(images: Sequence[Image.Image], size: int, train: bool, gen: torch.Generator | None,
                    crop: Crop = "random-resized", flip: bool = True) -> list[np.ndarray]:
    """One crop/flip draw applied to every image of ``images`` -> uint8 ``[size, size, C]`` arrays.

    Train: ``RandomResizedCrop(size)`` (or a plain resize with ``crop="resize"``) then a
    horizontal flip with probability 0.5; eval: ``Resize((size, size))``. Bilinear PIL
    resampling, as torchvision applies to PIL images.
    """
    w0, h0 = images[0].size
    if train and crop == "random-resized":
        top, left, h, w = resized_crop_params(w0, h0, gen)
        out = [im.crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR) for im in images]
    else:
        out = [im.resize((size, size), Image.BILINEAR) for im in images]
    if train and flip and bool(torch.rand(1, generator=gen).item() < 0.5):
        out = [im.transpose(Image.FLIP_LEFT_RIGHT) for im in out]
    return [np.array(im, dtype=np.uint8).reshape(size, size, -1) for im in out]


def list_frames(folder: Path, layout: str) -> list[Path]:
    """Image files of a frame folder, sorted by name (time order for zero-padded names)."""
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except (FileNotFoundError, NotADirectoryError):
        raise layout_error(f"missing frame folder {folder}", layout) from None
    if not files:
        raise layout_error(f"frame folder {folder} holds no .jpg/.png frames", layout)
    return files


def normalize(batch: Tensor, mean: Sequence[float] | None, std: Sequence[float] | None) -> Tensor:
    """uint8 ``[..., C, H, W]`` -> float ``x / 255`` then ``(x - mean) / std`` per channel (as ToTensor + Normalize)."""
    x = batch.float().div(255)
    if mean is not None and std is not None:
        m = torch.as_tensor(mean, dtype=x.dtype).view(-1, 1, 1)
        s = torch.as_tensor(std, dtype=x.dtype).view(-1, 1, 1)
        x = x.sub(m).div(s)
    return x


@dataclass
class _Frames:
    """Fields, validation, spec and normalisation shared by :class:`FrameFolder` and :class:`FlowFolders`."""

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
        return normalize(batch, self.mean, self.std)


@dataclass
class FrameFolder(_Frames):
    """RGB frames of a clip folder -> uint8 ``[T, 3, S, S]``, normalised per batch to float.

    Attributes:
        name: modality name.
        layout: the reader's layout text (error messages).
        num_frames: ``T``.
        image_size: ``S``.
        train_choice / eval_choice: see :func:`frame_indices`.
        crop: training crop (``random-resized`` or ``resize``).
        flip: random horizontal flip in training.
        mean / std: per-channel normalisation (ImageNet by default; ``None`` keeps ``[0, 1]``).
    """

    def load(self, path: Path, train: bool, gen: torch.Generator | None) -> Tensor:
        files = list_frames(path, self.layout)
        idx = frame_indices(len(files), self.num_frames, train, gen, self.train_choice, self.eval_choice)
        frames = [transform_group([open_image(files[i], "RGB", self.layout)], self.image_size, train, gen,
                                  self.crop, self.flip)[0] for i in idx]
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
            u, v = transform_group([open_image(u_files[i], "L", self.layout), open_image(v_files[i], "L", self.layout)],
                                   self.image_size, train, gen, self.crop, self.flip)
            frames.append(np.concatenate([u, v], axis=2))
        return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()


def check_frame_options(num_frames: int, image_size: int, train_choice: str, eval_choice: str, crop: str) -> None:
    """Validate frame options (a :class:`DataError` names the bad value and the valid ones)."""
    if int(num_frames) < 1 or int(image_size) < 1:
        raise DataError(f"num_frames and image_size must be >= 1, got {num_frames} and {image_size}")
    for key, value, valid in (("train_frames", train_choice, TRAIN_CHOICES),
                              ("eval_frames", eval_choice, EVAL_CHOICES),
                              ("train_crop", crop, ("random-resized", "resize"))):
        if value not in valid:
            raise DataError(f"{key} must be one of {', '.join(valid)}; got {value!r}")


# -- spectrograms ---------------------------------------------------------------------------
def read_spectrogram(path: Path, layout: str) -> np.ndarray:
    """A 2-D numeric array from ``.npy`` (``np.load``) or a pickle (``.pkl``, the AVE format).

    Raises:
        DataError: missing file, unreadable file, or not a 2-D numeric array (file named).
    """
    if not path.is_file():
        raise layout_error(f"missing spectrogram file {path}", layout)
    try:
        if path.suffix == ".npy":
            arr = np.load(path, allow_pickle=False)
        else:
            with open(path, "rb") as fh:
                arr = pickle.load(fh)  # noqa: S301 - the user's own preprocessed data (official format)
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        raise DataError(f"corrupt spectrogram file {path}: {e}. Re-create it (expected a 2-D float array)") from None
    arr = np.asarray(arr)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"malformed spectrogram file {path}: holds a {arr.dtype} array of shape {arr.shape}, "
                        f"expected a 2-D numeric array")
    return arr


def spectrogram_shape(path: Path, layout: str) -> tuple[int, ...]:
    """Shape of a spectrogram file (``.npy``: from its header only)."""
    if path.suffix == ".npy" and path.is_file():
        try:
            shape = tuple(np.load(path, mmap_mode="r").shape)
            if len(shape) == 2:
                return shape
        except Exception:  # noqa: BLE001 - the full read below gives the error message
            pass
    return tuple(read_spectrogram(path, layout).shape)


@dataclass
class SpectrogramFile:
    """A precomputed 2-D spectrogram per clip (``.npy`` or pickled ndarray ``.pkl``) -> ``[1, F, T]``.

    The array is used as stored (official: ``np.expand_dims(np.load(...), 0)`` for KS,
    ``pickle.load`` for AVE); every file must have ``shape`` (that of the first clip).
    """

    name: str
    layout: str
    shape: tuple[int, int]
    spec: ModalitySpec = field(init=False)

    def __post_init__(self) -> None:
        self.spec = ModalitySpec(self.name, "spectrogram", (1, *self.shape))  # type: ignore[arg-type]

    def load(self, path: Path, train: bool, gen: torch.Generator | None) -> Tensor:
        arr = read_spectrogram(path, self.layout)
        if tuple(arr.shape) != tuple(self.shape):
            raise DataError(f"spectrogram file {path} has shape {tuple(arr.shape)} but the dataset's first clip has "
                            f"{tuple(self.shape)}; all clips must be preprocessed alike")
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)).unsqueeze(0)

    def finish(self, batch: Tensor) -> Tensor:
        return batch


@dataclass
class WavSpectrogram:
    """A wav file -> ``log(|STFT| + eps)`` ``[1, n_fft // 2 + 1, 1 + L // hop]`` computed at load.

    Steps (OGM-GE ``CramedDataset`` / ``VGGSound`` ``__getitem__``): read and resample to
    ``sample_rate`` (mono), repeat the waveform until it has ``tile_s`` seconds
    (``np.tile``), take a window of ``window_s`` seconds starting at a uniformly random
    sample in ``[0, tile - window]`` (train, with ``random_window``) or at the middle of
    that range (eval), clip to ``[-1, 1]``, STFT, log magnitude.
    """

    name: str
    layout: str
    sample_rate: int
    window_s: float
    tile_s: float
    n_fft: int
    hop_length: int
    random_window: bool = False
    eps: float = 1e-7
    spec: ModalitySpec = field(init=False)

    def __post_init__(self) -> None:
        if self.tile_s < self.window_s:
            raise DataError(f"tile_s ({self.tile_s}) must be >= window_s ({self.window_s})")
        self.window = int(round(self.window_s * self.sample_rate))
        self.tile = int(round(self.tile_s * self.sample_rate))
        shape = (1, self.n_fft // 2 + 1, 1 + self.window // self.hop_length)
        self.spec = ModalitySpec(self.name, "spectrogram", shape)  # type: ignore[arg-type]

    def load(self, path: Path, train: bool, gen: torch.Generator | None) -> Tensor:
        hint = f"expected layout:\n{self.layout.strip()}"
        if not path.is_file():
            raise layout_error(f"missing wav file {path}", self.layout)
        x, rate = read_wav(path, hint=hint)
        x = resample(x, rate, self.sample_rate)
        x = np.tile(x, -(-self.tile // max(len(x), 1)))[: self.tile]
        span = self.tile - self.window
        start = int(torch.randint(0, span + 1, (1,), generator=gen).item()) if (train and self.random_window) else span // 2
        seg = np.clip(x[start:start + self.window], -1.0, 1.0)
        return log_stft(seg, self.n_fft, self.hop_length, self.eps).unsqueeze(0)

    def finish(self, batch: Tensor) -> Tensor:
        return batch


def audio_loader(name: str, template: str, layout: str, clips: Sequence[Clip],
                 wav: dict[str, Any] | None = None) -> ModalityLoader:
    """The loader for an audio path template: ``.wav`` -> :class:`WavSpectrogram` with ``wav`` params,
    ``.npy`` / ``.pkl`` -> :class:`SpectrogramFile` shaped like the first clip's file."""
    suffix = Path(template).suffix.lower()
    if suffix == ".wav":
        if wav is None:
            raise DataError(f"audio path template {template!r}: this dataset reads precomputed spectrograms; "
                            f"use a .npy or .pkl template")
        return WavSpectrogram(name, layout, **wav)
    if suffix in (".npy", ".pkl"):
        return SpectrogramFile(name, layout, probe_shape(clips, name, layout))  # type: ignore[arg-type]
    raise DataError(f"audio path template {template!r} must end in .wav, .npy or .pkl")


def log_stft(x: np.ndarray, n_fft: int, hop_length: int, eps: float = 1e-7) -> Tensor:
    """``log(|STFT(x)| + eps)`` float32 ``[n_fft // 2 + 1, 1 + len(x) // hop_length]``.

    Periodic Hann window of ``n_fft``, ``center=True`` with reflect padding, no
    normalisation (``librosa.stft`` defaults before 0.10).
    """
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    window = torch.hann_window(n_fft, periodic=True)
    spec = torch.stft(t, n_fft=n_fft, hop_length=hop_length, win_length=n_fft, window=window, center=True,
                      pad_mode="reflect", return_complex=True)
    return torch.log(spec.abs() + eps)


KAISER_BEST = {"num_zeros": 32, "rolloff": 0.9475937167399596, "beta": 14.769656459379492}


def resample(x: np.ndarray, orig_rate: int, new_rate: int, num_zeros: int = KAISER_BEST["num_zeros"],
             rolloff: float = KAISER_BEST["rolloff"], beta: float = KAISER_BEST["beta"], chunk: int = 8192) -> np.ndarray:
    """Band-limited resampling with a Kaiser-windowed sinc filter.

    Output sample ``n`` sits at input time ``t = n * orig / new`` and is
    ``sum_k x[k] c sinc(c (t - k)) kaiser((t - k) / half)`` with cutoff
    ``c = rolloff * min(1, new / orig)`` (fraction of the input Nyquist band),
    ``half = num_zeros / c`` input samples and a Kaiser window of ``beta``; zeros outside
    the signal. ``ceil(len * new / orig)`` output samples (librosa's length). The
    defaults are resampy's ``kaiser_best`` rolloff and beta, librosa < 0.10's default
    resampler (``num_zeros`` 32 instead of 64: halves the cost, stop-band still < -80 dB).

    Args:
        x: float ``[L]`` samples.
        orig_rate / new_rate: sample rates in Hz.
        chunk: output samples computed per step (bounds memory to ``chunk * 2 * half``).

    Returns:
        float32 ``[ceil(L * new_rate / orig_rate)]`` (``x`` itself if the rates are equal).
    """
    if orig_rate == new_rate:
        return np.asarray(x, dtype=np.float32)
    src = torch.from_numpy(np.asarray(x, dtype=np.float64))
    n_in = src.shape[0]
    n_out = int(math.ceil(n_in * new_rate / orig_rate))
    cutoff = rolloff * min(1.0, new_rate / orig_rate)
    half = num_zeros / cutoff
    width = int(math.ceil(half))
    padded = torch.cat([torch.zeros(width + 1, dtype=src.dtype), src, torch.zeros(width + 1, dtype=src.dtype)])
    taps = torch.arange(-width, width + 1, dtype=torch.long)  # [K]
    i0_beta = torch.special.i0(torch.tensor(beta, dtype=torch.float64))
    out = torch.empty(n_out, dtype=torch.float64)
    for s in range(0, n_out, chunk):
        n = torch.arange(s, min(s + chunk, n_out), dtype=torch.float64)
        t = n * (orig_rate / new_rate)  # input time of each output sample
        base = torch.floor(t).long()
        k = base[:, None] + taps[None, :]  # [n, K] input indices
        d = t[:, None] - k.double()
        u = (d / half).clamp(-1.0, 1.0)
        win = torch.special.i0(beta * torch.sqrt(1.0 - u * u)) / i0_beta
        h = cutoff * torch.sinc(cutoff * d) * win * (d.abs() <= half)
        out[s:s + len(n)] = (padded[k + width + 1] * h).sum(1)
    return out.float().numpy()


def class_index(names: Iterable[str]) -> dict[str, int]:
    """Class name -> index in the given order (first occurrence wins)."""
    out: dict[str, int] = {}
    for n in names:
        out.setdefault(n, len(out))
    return out


def split_sources(name: str, parts: dict[str, list[Clip]], infos: dict[str, dict[str, Any]], num_classes: int,
                  loaders: dict[str, ModalityLoader], classes: Sequence[str], common: dict[str, Any]) -> dict[str, ClipSource]:
    """One :class:`ClipSource` per split, each with its own info plus ``common`` (options, layout)."""
    return {s: ClipSource(name, s, parts[s], num_classes, loaders, classes, {**common, **infos.get(s, {})}) for s in SPLITS}
