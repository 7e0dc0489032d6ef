"""Audio helpers: read PCM wav files (stdlib ``wave`` + NumPy) and batched log spectrograms.

No torchaudio or SciPy: :func:`read_wav` parses 8/16/32-bit PCM with :mod:`wave`,
:func:`fit_length` pads/crops waveforms to a fixed length, and
:func:`log_spectrogram` computes ``log(1 + |STFT|)`` for a whole batch with one
``torch.stft`` call per chunk, optionally average-pooling the frequency axis.

For a waveform of ``L`` samples, ``n_fft`` and ``hop_length`` the spectrogram has
``n_fft // 2 + 1`` frequency bins (or ``freq_bins`` after pooling) and
``1 + L // hop_length`` frames (``center=True``). E.g. 8,000 samples, ``n_fft=256``,
``hop_length=128`` -> 129 bins x 63 frames, pooled to 64 x 63 by default in avmnist.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from mmcoop.errors import DataError

_DTYPES = {1: np.uint8, 2: np.dtype("<i2"), 4: np.dtype("<i4")}


def read_wav(path: str | Path, expected_rate: int | None = None, hint: str = "") -> tuple[np.ndarray, int]:
    """Read a PCM wav file as float32 mono samples in ``[-1, 1]``.

    Args:
        path: the ``.wav`` file.
        expected_rate: if given, a file with another sample rate is an error.
        hint: what to do about a bad file, appended to error messages.

    Returns:
        ``(samples float32 [L], sample_rate)``; multi-channel files are averaged to mono.

    Raises:
        DataError: missing, unparsable, truncated, empty or non-PCM file (named in the message).
    """
    path = Path(path)
    tail = f". {hint}" if hint else ""
    if not path.is_file():
        raise DataError(f"missing wav file {path}{tail}")
    try:
        with wave.open(str(path), "rb") as w:
            nch, width, rate, nframes = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(nframes)
    except (wave.Error, EOFError, OSError, ValueError) as e:
        raise DataError(f"corrupt wav file {path}: could not parse RIFF/WAVE header ({e}){tail}") from None
    if width not in _DTYPES:
        raise DataError(f"unsupported wav file {path}: {8 * width}-bit samples (expected 8/16/32-bit PCM){tail}")
    if expected_rate is not None and rate != expected_rate:
        raise DataError(f"unexpected sample rate in {path}: {rate} Hz (expected {expected_rate} Hz){tail}")
    if nframes == 0:
        raise DataError(f"empty wav file {path}: no audio frames{tail}")
    if len(raw) < nframes * nch * width:
        raise DataError(
            f"truncated wav file {path}: header announces {nframes} frames but only "
            f"{len(raw) // max(nch * width, 1)} are present{tail}"
        )
    x = np.frombuffer(raw, dtype=_DTYPES[width]).astype(np.float32)
    x = (x - 128.0) / 128.0 if width == 1 else x / float(2 ** (8 * width - 1))
    if nch > 1:
        x = x.reshape(-1, nch).mean(axis=1)
    return x, rate


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end, or crop the centre, so that ``x`` has exactly ``length`` samples."""
    n = x.shape[0]
    if n >= length:
        start = (n - length) // 2
        return x[start:start + length]
    return np.pad(x, (0, length - n))


def log_spectrogram(
    waves: Tensor, n_fft: int = 256, hop_length: int = 128, freq_bins: int | None = None, chunk: int = 1024
) -> Tensor:
    """Batched log-magnitude spectrogram ``log(1 + |STFT(x)|)`` with a Hann window.

    Args:
        waves: float ``[N, L]`` waveforms (equal length).
        n_fft: FFT size (= window length).
        hop_length: hop between frames.
        freq_bins: if given and smaller than ``n_fft // 2 + 1``, average-pool the
            frequency axis down to this many bins (adaptive average pooling).
        chunk: waveforms per ``torch.stft`` call (bounds peak memory).

    Returns:
        float32 ``[N, 1, F, T]`` with ``F = min(freq_bins or inf, n_fft // 2 + 1)`` and ``T = 1 + L // hop_length``.
    """
    window = torch.hann_window(n_fft)
    outs = []
    for i in range(0, waves.shape[0], chunk):
        spec = torch.stft(waves[i:i + chunk].float(), n_fft=n_fft, hop_length=hop_length, window=window,
                          center=True, return_complex=True)
        spec = torch.log1p(spec.abs())  # [n, n_fft//2+1, T]
        if freq_bins is not None and freq_bins < spec.shape[1]:
            spec = torch.nn.functional.adaptive_avg_pool1d(spec.transpose(1, 2), freq_bins).transpose(1, 2)
        outs.append(spec.unsqueeze(1).contiguous())
    if not outs:
        f = freq_bins if freq_bins is not None else n_fft // 2 + 1
        return torch.zeros(0, 1, f, 1 + waves.shape[1] // hop_length)
    return torch.cat(outs)
