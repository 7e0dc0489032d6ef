"""Audio features of the paper datasets' official preprocessing, as pure tensor functions.

`SPECTROGRAMS` names the spectrogram each dataset's official recipe stores (used by
`mmcoop.media.prepare` and by readers that compute it at load): the Kaldi filterbank of
Kinetics-Sounds (`kaldi_fbank`, the package's one fbank, with `kaldi_mel_banks`),
the log-STFTs of VGGSound and CREMA-D (over `mmcoop.media.audio.log_stft`, the one
STFT) and the power spectral density of AVE (`ave_psd`). Torch only: no torchaudio,
SciPy or librosa; each function cites the official code it reproduces, and the tests
check each against an independent NumPy/SciPy reference.

Note on the STFT padding: librosa pads centred frames with zeros since 0.9.0 (January
2022; the OGM-GE loaders date from June 2022), so the dataset STFTs here use
``pad_mode="constant"``; the readers' wav spectrograms (`mmcoop.media.spectrograms`)
follow the older reflect padding of the official code they cite.
"""

from __future__ import annotations

import math
from typing import Callable, overload

import torch
from torch import Tensor

from mmcoop.errors import DataError
from mmcoop.media.audio import log_stft
from mmcoop.utils.registry import Registry

Spectrogram = Callable[..., Tensor]
#: spectrogram name -> ``fn(wave [..., L], sample_rate=...) -> Tensor``.
SPECTROGRAMS: Registry[Spectrogram] = Registry("spectrogram")


@overload
def _hz_to_mel(f: Tensor) -> Tensor: ...


@overload
def _hz_to_mel(f: float) -> float: ...


def _hz_to_mel(f: Tensor | float) -> Tensor | float:
    """Kaldi/HTK mel scale ``1127 ln(1 + f / 700)``."""
    if isinstance(f, Tensor):
        return 1127.0 * torch.log1p(f / 700.0)
    return 1127.0 * math.log1p(f / 700.0)


def kaldi_mel_banks(
    num_bins: int, n_fft: int, sample_rate: float, low_freq: float = 20.0, high_freq: float = 0.0
) -> Tensor:
    """Kaldi's triangular mel filterbank (``htk_compat``, no VTLN warp).

    Kaldi's ``MelBanks``: ``num_bins`` triangles equally spaced on the mel scale between
    ``low_freq`` and ``high_freq`` (``<= 0`` means Nyquist + value), evaluated at FFT
    bin frequencies ``k * sample_rate / n_fft`` for ``k < n_fft / 2``; the Nyquist
    bin gets weight 0.

    Returns:
        float32 ``[n_fft // 2 + 1, num_bins]`` (multiply a power spectrum ``[..., n_fft // 2 + 1]``).
    """
    nyquist = 0.5 * sample_rate
    high = high_freq + nyquist if high_freq <= 0.0 else high_freq
    mel_low, mel_high = _hz_to_mel(low_freq), _hz_to_mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    k = torch.arange(num_bins, dtype=torch.float64).unsqueeze(0)  # [1, bins]
    left, centre, right = mel_low + k * delta, mel_low + (k + 1) * delta, mel_low + (k + 2) * delta
    mel = _hz_to_mel(torch.arange(n_fft // 2, dtype=torch.float64) * (sample_rate / n_fft)).unsqueeze(1)
    up, down = (mel - left) / (centre - left), (right - mel) / (right - centre)
    banks = torch.minimum(up, down).clamp_min(0.0)  # [n_fft/2, bins]
    return torch.cat([banks, banks.new_zeros(1, num_bins)]).float()


def kaldi_fbank(
    wave: Tensor,
    sample_rate: int,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
) -> Tensor:
    """Log mel filterbank energies as Kaldi ``compute-fbank-feats`` computes them.

    The options are those of ``torchaudio.compliance.kaldi.fbank`` as called by OGM-GE
    ``data/KineticSound/process_audio.py`` (``htk_compat=True, use_energy=False,
    window_type='hanning', dither=0.0, frame_shift=10``) with Kaldi's defaults for the
    rest: 25 ms frames, ``snip_edges`` (only whole frames), per-frame DC removal,
    pre-emphasis 0.97 (``x[n] - 0.97 x[n-1]``, ``x[-1] = x[0]``), symmetric Hann window,
    zero-padding to the next power of two, power spectrum, mel banks from 20 Hz to
    Nyquist, ``log(max(energy, float32 eps))``. Computed with one batched ``rfft``.

    Args:
        wave: float ``[..., L]`` waveforms in ``[-1, 1]`` (equal length).
        sample_rate: samples per second of ``wave``.

    Returns:
        float32 ``[..., m, num_mel_bins]`` with ``m = 1 + (L - frame) // shift``.

    Raises:
        DataError: ``L`` is shorter than one frame.
    """
    win = int(sample_rate * frame_length_ms * 0.001)
    shift = int(sample_rate * frame_shift_ms * 0.001)
    if wave.shape[-1] < win:
        raise DataError(
            f"audio too short for a filterbank: {wave.shape[-1]} samples < one {frame_length_ms} ms frame ({win})"
        )
    n_fft = 1 << (win - 1).bit_length()
    frames = wave.float().unfold(-1, win, shift)  # [..., m, win]
    frames = frames - frames.mean(-1, keepdim=True)
    prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = (frames - preemphasis * prev) * torch.hann_window(win, periodic=False)
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2.0)  # [..., m, n_fft/2+1]
    energies = power @ kaldi_mel_banks(num_mel_bins, n_fft, sample_rate, low_freq)
    return energies.clamp_min(torch.finfo(torch.float32).eps).log()


@SPECTROGRAMS.register("ks-fbank")
def ks_fbank(
    wave: Tensor,
    sample_rate: int = 16000,
    target_frames: int = 1024,
    norm_mean: float = -4.503877,
    norm_std: float = 5.141276,
) -> Tensor:
    """Kinetics-Sounds spectrogram of OGM-GE ``data/KineticSound/process_audio.py``.

    ``wave - mean(wave)`` -> `kaldi_fbank` (128 mel bins) -> zero rows appended or
    rows cut to ``target_frames`` -> ``(fbank - norm_mean) / (2 * norm_std)``.

    Args:
        wave: float ``[..., L]`` at ``sample_rate`` (16 kHz: ``pre-processing/VGG&KS/mp4_to_wav.py``).

    Returns:
        float32 ``[..., 1024, 128]`` (time x mel), saved as ``audio/<split>/<id>.npy``.
    """
    wave = wave.float()
    fb = kaldi_fbank(wave - wave.mean(-1, keepdim=True), sample_rate)
    n = fb.shape[-2]
    if n < target_frames:
        fb = torch.cat([fb, fb.new_zeros(*fb.shape[:-2], target_frames - n, fb.shape[-1])], dim=-2)
    fb = fb[..., :target_frames, :]
    return (fb - norm_mean) / (norm_std * 2)


@SPECTROGRAMS.register("vggsound-stft")
def vggsound_stft(wave: Tensor, sample_rate: int = 16000, seconds: float = 5.0, offset_s: float = 0.0) -> Tensor:
    """VGGSound spectrogram of OGM-GE ``dataset/VGGSoundDataset.py`` (``__getitem__``).

    The official loader doubles the waveform (``np.tile(x, 2)``) until it lasts 10 s,
    takes a 5 s window starting at a random sample in ``[0, 5 s]`` (at every load),
    clips to ``[-1, 1]`` and returns ``log(|librosa.stft(x, n_fft=256, hop_length=128)|
    + 1e-7)``. ``prepare`` fixes the window start at ``offset_s`` (0 by default): a
    deterministic file cannot hold the per-load random crop.

    Returns:
        float32 ``[..., 129, 626]`` for 16 kHz.
    """
    wave = wave.float()
    while wave.shape[-1] / sample_rate < 10.0:
        wave = torch.cat([wave, wave], dim=-1)
    start = int(round(offset_s * sample_rate))
    seg = wave[..., start : start + int(sample_rate * seconds)].clamp(-1.0, 1.0)
    return log_stft(seg, 256, 128, pad_mode="constant")


@SPECTROGRAMS.register("cremad-stft")
def cremad_stft(wave: Tensor, sample_rate: int = 22050, seconds: int = 3) -> Tensor:
    """CREMA-D spectrogram of OGM-GE ``dataset/CramedDataset.py`` (``__getitem__``).

    Waveform at 22,050 Hz (``librosa.load(sr=22050)``) tiled 3 times and cut to 3 s,
    clipped to ``[-1, 1]``, ``log(|librosa.stft(x, n_fft=512, hop_length=353)| + 1e-7)``.
    The official code computes it at load from ``AudioWAV/<id>.wav``; ``prepare``
    writes that wav and readers call this function.

    Returns:
        float32 ``[..., 257, 188]`` (fewer frames for waves under 1 s, as the official code).
    """
    x = wave.float()
    x = x.repeat(*([1] * (x.dim() - 1)), 3)[..., : sample_rate * seconds].clamp(-1.0, 1.0)
    return log_stft(x, 512, 353, pad_mode="constant")


def tukey_window(n: int, alpha: float = 0.25) -> Tensor:
    """Periodic Tukey window (``scipy.signal.get_window(('tukey', alpha), n)``), float64 ``[n]``."""
    m = n + 1  # periodic: symmetric window of n + 1 points without its last point
    k = torch.arange(m, dtype=torch.float64)
    width = int(math.floor(alpha * (m - 1) / 2.0))
    w = torch.ones(m, dtype=torch.float64)
    lo, hi = k[: width + 1], k[m - width - 1 :]
    w[: width + 1] = 0.5 * (1 + torch.cos(math.pi * (-1 + 2.0 * lo / alpha / (m - 1))))
    w[m - width - 1 :] = 0.5 * (1 + torch.cos(math.pi * (-2.0 / alpha + 1 + 2.0 * hi / alpha / (m - 1))))
    return w[:n]


@SPECTROGRAMS.register("ave-psd")
def ave_psd(
    wave: Tensor, sample_rate: int = 22050, length: int = 160000, nperseg: int = 512, noverlap: int = 353
) -> Tensor:
    """AVE spectrogram of OGM-GE ``pre-processing/obtain_audio_spectrogram.py`` (``audio_extract``).

    Waveform at 22,050 Hz (``librosa.load`` default rate) tiled 10 times and cut to
    160,000 samples, clipped to ``[-1, 1]``, then ``scipy.signal.spectrogram(x, fs,
    nperseg=512, noverlap=353)`` (periodic Tukey(0.25) window, per-segment mean
    removed, one-sided power spectral density), ``log(psd + 1e-7)``, standardised by
    its own mean and std (``+ 1e-9``). Saved pickled as ``audio_spec/<id>.pkl``.

    Returns:
        float32 ``[..., 257, 1004]``.
    """
    x = wave.float().repeat(*([1] * (wave.dim() - 1)), 10)[..., :length].clamp(-1.0, 1.0)
    segs = x.unfold(-1, nperseg, nperseg - noverlap)  # [..., S, nperseg]
    segs = segs - segs.mean(-1, keepdim=True)
    win = tukey_window(nperseg).float()
    psd = torch.fft.rfft(segs * win, n=nperseg).abs().pow(2.0) / (sample_rate * float((win.double() ** 2).sum()))
    psd[..., 1:-1] *= 2.0  # one-sided density, even nperseg: DC and Nyquist counted once
    spec = torch.log(psd.transpose(-1, -2) + 1e-7)  # [..., F, S]
    flat = spec.reshape(*spec.shape[:-2], -1)
    mean, std = flat.mean(-1), flat.std(-1, unbiased=False)
    return (spec - mean[..., None, None]) / (std[..., None, None] + 1e-9)
