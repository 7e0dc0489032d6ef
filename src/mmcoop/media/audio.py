"""Audio: read and write PCM wav files, the one log-STFT, the one resampler, batched spectrograms.

No torchaudio, SciPy or librosa: `read_wav` parses 8/16/32-bit PCM with `wave`
(`write_wav` writes 16-bit mono), `fit_length` pads/crops waveforms,
`log_stft` is the package's one short-time Fourier transform (``log(|STFT| + eps)``,
periodic Hann window, centred frames; every spectrogram of mmcoop is computed with it),
`log_spectrogram` applies it to a batch in chunks and optionally pools the
frequency axis, and `resample` is the package's resampler (a Kaiser-windowed sinc,
the design of librosa < 0.10's default). Decoding videos (`mmcoop.media.decode`)
resamples inside FFmpeg (libswresample), as the official ``ffmpeg -ar`` extraction does.

For a waveform of ``L`` samples, ``n_fft`` and ``hop_length`` the spectrogram has
``n_fft // 2 + 1`` frequency bins (or ``freq_bins`` after pooling) and
``1 + L // hop_length`` frames (``center=True``). E.g. 8,000 samples, ``n_fft=256``,
``hop_length=128`` -> 129 bins x 63 frames, pooled to 64 x 63 by default in avmnist.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import TypedDict

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


def write_wav(path: str | Path, mono: np.ndarray, rate: int) -> None:
    """Write float ``[L]`` samples in ``[-1, 1]`` as a 16-bit PCM mono wav (``round(x * 32768)``, clipped).

    Example:
        >>> write_wav("x.wav", np.zeros(16000, np.float32), 16000)  # doctest: +SKIP
    """
    pcm = np.clip(np.round(mono * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad at the end, or crop the centre, so that ``x`` has exactly ``length`` samples."""
    n = x.shape[0]
    if n >= length:
        start = (n - length) // 2
        return x[start : start + length]
    return np.pad(x, (0, length - n))


def log_stft(
    x: Tensor | np.ndarray, n_fft: int, hop_length: int, eps: float = 1e-7, pad_mode: str = "reflect"
) -> Tensor:
    """``log(|STFT(x)| + eps)``: the package's one short-time Fourier transform.

    Periodic Hann window of ``n_fft`` samples, frames centred on ``t * hop_length`` with
    ``n_fft // 2`` samples of padding at both ends, no normalisation (``librosa.stft``'s
    definition). ``pad_mode="reflect"`` is librosa < 0.9's padding, ``"constant"`` (zeros)
    librosa >= 0.9's. ``eps=1`` is computed as ``log1p(|STFT|)`` (the same function, more
    accurate near 0).

    Args:
        x: float ``[..., L]`` samples (a tensor or a NumPy array).
        n_fft: FFT size (= window length).
        hop_length: samples between frames.
        eps: added to the magnitude before the log.
        pad_mode: ``reflect`` or ``constant``.

    Returns:
        float32 ``[..., n_fft // 2 + 1, 1 + L // hop_length]``.

    Example:
        >>> log_stft(torch.zeros(8000), 256, 128).shape
        torch.Size([129, 63])
    """
    t = x.float() if isinstance(x, Tensor) else torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    spec = torch.stft(
        t,
        n_fft=n_fft,
        hop_length=hop_length,
        window=torch.hann_window(n_fft),
        center=True,
        pad_mode=pad_mode,
        return_complex=True,
    )
    mag = spec.abs()
    return torch.log1p(mag) if eps == 1.0 else torch.log(mag + eps)


def log_spectrogram(
    waves: Tensor, n_fft: int = 256, hop_length: int = 128, freq_bins: int | None = None, chunk: int = 1024
) -> Tensor:
    """Batched `log_stft` with ``eps=1`` (``log(1 + |STFT(x)|)``), optionally pooled in frequency.

    Args:
        waves: float ``[N, L]`` waveforms (equal length).
        n_fft: FFT size (= window length).
        hop_length: hop between frames.
        freq_bins: if given and smaller than ``n_fft // 2 + 1``, average-pool the
            frequency axis down to this many bins (adaptive average pooling).
        chunk: waveforms per ``torch.stft`` call (bounds peak memory).

    Returns:
        float32 ``[N, 1, F, T]`` with ``F = min(freq_bins or inf, n_fft // 2 + 1)`` and ``T = 1 + L // hop_length``.

    Example:
        >>> log_spectrogram(torch.zeros(2, 8000), 256, 128, 64).shape
        torch.Size([2, 1, 64, 63])
    """
    outs = []
    for i in range(0, waves.shape[0], chunk):
        spec = log_stft(waves[i : i + chunk], n_fft, hop_length, eps=1.0)  # [n, n_fft//2+1, T]
        if freq_bins is not None and freq_bins < spec.shape[1]:
            spec = torch.nn.functional.adaptive_avg_pool1d(spec.transpose(1, 2), freq_bins).transpose(1, 2)
        outs.append(spec.unsqueeze(1).contiguous())
    if not outs:
        f = freq_bins if freq_bins is not None else n_fft // 2 + 1
        return torch.zeros(0, 1, f, 1 + waves.shape[1] // hop_length)
    return torch.cat(outs)


class _KaiserParams(TypedDict):
    num_zeros: int
    rolloff: float
    beta: float


KAISER_BEST: _KaiserParams = {"num_zeros": 32, "rolloff": 0.9475937167399596, "beta": 14.769656459379492}


def resample(
    x: np.ndarray,
    orig_rate: int,
    new_rate: int,
    num_zeros: int = KAISER_BEST["num_zeros"],
    rolloff: float = KAISER_BEST["rolloff"],
    beta: float = KAISER_BEST["beta"],
    chunk: int = 8192,
) -> np.ndarray:
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
        out[s : s + len(n)] = (padded[k + width + 1] * h).sum(1)
    return out.float().numpy()
