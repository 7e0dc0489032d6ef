"""Spectrogram loaders: a precomputed spectrogram file or a wav file per clip -> ``[1, F, T]``.

`SpectrogramFile` reads the 2-D arrays the official preprocessing stores (``.npy``
for Kinetics-Sounds/VGGSound, pickled ``.pkl`` for AVE); `WavSpectrogram` computes
the log-STFT at load from a wav file, as the official CREMA-D and VGGSound loaders do:
``librosa.load(sr=...)`` (resample, mono), tile, clip to ``[-1, 1]``, ``log(|STFT| + 1e-7)``
with a periodic Hann window, ``center=True`` and reflect padding (librosa < 0.10 defaults,
the versions of the 2022-2023 official code). Resampling is `mmcoop.media.audio.resample`
(the design of resampy's ``kaiser_best``, librosa < 0.10's default), so values differ from
librosa's only at the resampler's rounding level. `audio_loader` picks the loader from
a path template's suffix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from mmcoop.data.base import ModalitySpec
from mmcoop.data.storage import load_dataset_pickle
from mmcoop.errors import DataError
from mmcoop.media.audio import log_stft, read_wav, resample
from mmcoop.media.clips import Clip, ModalityLoader, layout_error


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
            arr = load_dataset_pickle(path, "spectrogram file")
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        raise DataError(f"corrupt spectrogram file {path}: {e}. Re-create it (expected a 2-D float array)") from None
    arr = np.asarray(arr)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise DataError(
            f"malformed spectrogram file {path}: holds a {arr.dtype} array of shape {arr.shape}, "
            f"expected a 2-D numeric array"
        )
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


def probe_shape(clips: Iterable[Clip], modality: str, layout: str) -> tuple[int, ...]:
    """Shape of the first clip's spectrogram file of ``modality`` (read once; nothing else is decoded)."""
    for clip in clips:
        return spectrogram_shape(clip.paths[modality], layout)
    raise DataError(f"no clip to read the {modality} shape from")


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
            raise DataError(
                f"spectrogram file {path} has shape {tuple(arr.shape)} but the dataset's first clip has "
                f"{tuple(self.shape)}; all clips must be preprocessed alike"
            )
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
        start = (
            int(torch.randint(0, span + 1, (1,), generator=gen).item()) if (train and self.random_window) else span // 2
        )
        seg = np.clip(x[start : start + self.window], -1.0, 1.0)
        return log_stft(seg, self.n_fft, self.hop_length, self.eps).unsqueeze(0)

    def finish(self, batch: Tensor) -> Tensor:
        return batch


def audio_loader(
    name: str, template: str, layout: str, clips: Sequence[Clip], wav: dict[str, Any] | None = None
) -> ModalityLoader:
    """The loader for an audio path template: ``.wav`` -> `WavSpectrogram` with ``wav`` params,
    ``.npy`` / ``.pkl`` -> `SpectrogramFile` shaped like the first clip's file."""
    suffix = Path(template).suffix.lower()
    if suffix == ".wav":
        if wav is None:
            raise DataError(
                f"audio path template {template!r}: this dataset reads precomputed spectrograms; "
                f"use a .npy or .pkl template"
            )
        return WavSpectrogram(name, layout, **wav)
    if suffix in (".npy", ".pkl"):
        return SpectrogramFile(name, layout, probe_shape(clips, name, layout))  # type: ignore[arg-type]
    raise DataError(f"audio path template {template!r} must end in .wav, .npy or .pkl")
