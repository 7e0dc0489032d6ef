"""Raw videos -> the frame-folder + spectrogram layouts of the official audio-visual code.

``mmcoop data prepare --dataset NAME --videos DIR --out DIR`` turns a folder of raw
videos into the layout the paper's readers load (Kinetics-Sounds as in the official
code of *Enhancing Multimodal Cooperation via Sample-level Modality Valuation*, CVPR
2024, repo GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation, ``code/datasets/
dataloader.py``, class ``AV_KS_Dataset``; AVE, VGGSound and CREMA-D as in GeWu-Lab/
OGM-GE_CVPR2022). Decoding uses PyAV (FFmpeg libraries bundled in its wheel; no
``ffmpeg`` binary). Measured against torchcodec 0.17 on 10 s H.264/AAC clips (one
thread, 2026-11): torchcodec decodes the 10 frames 1.6-2.1x and the audio 1.0-1.9x
faster, about 20-25 ms of the ~155 ms a clip costs end to end; but torchcodec loads
FFmpeg shared libraries from the system (none here: it ran only by pointing it at
PyAV's bundled copies), while PyAV installs from its wheel alone, and its
libswresample s16 output reproduces the official ``ffmpeg -ar RATE -acodec pcm_s16le``
extraction. Hence PyAV.

Per dataset (:data:`PREPARE_SPECS`, each entry cites its source):

================  =====================================  ==========================  =========
dataset           frames (1 fps)                         audio                       policy
================  =====================================  ==========================  =========
kinetics-sounds   ``visual/<split>/<id>/frame_0000N.jpg``  ``audio/<split>/<id>.npy``  centre,10
ave               ``visual/<id>/frame_0000N.jpg``          ``audio_spec/<id>.pkl``     centre,10
vggsound          ``visual/<split>/<id>/frame_0000N.jpg``  ``audio/<split>/<id>.npy``  start
cremad            ``Image-01-FPS/<id>/frame_0000N.jpg``    ``AudioWAV/<id>.wav``       start
================  =====================================  ==========================  =========

``<split>`` is the first folder of a video below ``--videos`` (``train/x.mp4`` ->
``visual/train/x/``); a flat folder gives flat outputs; deeper folders (class folders
of the raw Kinetics layout ``train/<class>/<id>.mp4``) are dropped, as the official
readers index clips by id only. Frame files are numbered from 1 with five digits
(``frame_00001.jpg``), as the official readers open them (``'frame_0000' + str(t)``).

Frame sampling policies (:data:`FRAME_POLICIES`), on 0-based decoded-frame indices:

- ``centre`` (OGM-GE ``pre-processing/AVE&CREMAD/video2frame-1fps.py``, ``deal_video``;
  its ``__main__`` prepares the Kinetics ``train-frames-1fps`` folders): a fixed
  number of frames (10, the 10 s of a clip), frame ``i`` at the 1-based position
  ``round((i + 0.5) * fps)`` (Python rounding); positions past the end wrap into the
  last second of the video, so short clips repeat their last second's frames.
- ``start`` (OGM-GE ``data/VGGSound/video_preprocessing.py`` and
  ``data/CREMAD/video_preprocessing.py``, ``video2frame_update``): the first frame of
  every second (``index % int(fps) == 0``), as many as the video has.

Work is resumable (clips whose outputs all exist are skipped), parallel (``workers``
processes), shown with a progress bar, and atomic per clip: outputs are written in
``<out>/.prepare-tmp/`` and moved into place with ``os.replace`` (frame folder first,
audio file last, so a clip is complete exactly when its audio file exists; the
official readers also test the audio file). Unreadable videos are listed in
``<out>/prepare_report.json`` and skipped, never fatal. Stale temporary folders left
by a killed run are removed at the start of the next run; run one ``prepare`` per
output folder at a time.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import time
import uuid
import wave
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from mmcoop.errors import ConfigError, DataError
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.registry import Registry

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".webm", ".flv", ".mov", ".m4v", ".mpg", ".mpeg")
REPORT_FILE = "prepare_report.json"
TMP_DIR = ".prepare-tmp"

# -- spectrograms (pure tensor functions, torch only) ---------------------------------
Spectrogram = Callable[[Tensor], Tensor]
SPECTROGRAMS: Registry[Spectrogram] = Registry("spectrogram")


def _hz_to_mel(f: Tensor | float) -> Tensor | float:
    """Kaldi/HTK mel scale ``1127 ln(1 + f / 700)``."""
    if isinstance(f, Tensor):
        return 1127.0 * torch.log1p(f / 700.0)
    return 1127.0 * math.log1p(f / 700.0)


def kaldi_mel_banks(num_bins: int, n_fft: int, sample_rate: float, low_freq: float = 20.0,
                    high_freq: float = 0.0) -> Tensor:
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


def kaldi_fbank(wave: Tensor, sample_rate: int, num_mel_bins: int = 128, frame_length_ms: float = 25.0,
                frame_shift_ms: float = 10.0, preemphasis: float = 0.97, low_freq: float = 20.0) -> Tensor:
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
        raise DataError(f"audio too short for a filterbank: {wave.shape[-1]} samples < one {frame_length_ms} ms frame ({win})")
    n_fft = 1 << (win - 1).bit_length()
    frames = wave.float().unfold(-1, win, shift)  # [..., m, win]
    frames = frames - frames.mean(-1, keepdim=True)
    prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
    frames = (frames - preemphasis * prev) * torch.hann_window(win, periodic=False)
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2.0)  # [..., m, n_fft/2+1]
    energies = power @ kaldi_mel_banks(num_mel_bins, n_fft, sample_rate, low_freq)
    return energies.clamp_min(torch.finfo(torch.float32).eps).log()


@SPECTROGRAMS.register("ks-fbank")
def ks_fbank(wave: Tensor, sample_rate: int = 16000, target_frames: int = 1024,
             norm_mean: float = -4.503877, norm_std: float = 5.141276) -> Tensor:
    """Kinetics-Sounds spectrogram of OGM-GE ``data/KineticSound/process_audio.py``.

    ``wave - mean(wave)`` -> :func:`kaldi_fbank` (128 mel bins) -> zero rows appended or
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


def _stft_log_magnitude(wave: Tensor, n_fft: int, hop: int, pad_mode: str = "constant") -> Tensor:
    """``log(|STFT| + 1e-7)`` as ``librosa.stft(x, n_fft, hop_length)`` computes it.

    Periodic Hann window of ``n_fft``, frames centred on ``t * hop`` with ``n_fft // 2``
    samples of padding at both ends: zeros (``pad_mode="constant"``, librosa's default
    since 0.9.0, January 2022; the OGM-GE loaders date from June 2022) or a reflection
    (``"reflect"``, librosa < 0.9).
    """
    spec = torch.stft(wave.float(), n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft),
                      center=True, pad_mode=pad_mode, return_complex=True)
    return torch.log(spec.abs() + 1e-7)


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
    seg = wave[..., start:start + int(sample_rate * seconds)].clamp(-1.0, 1.0)
    return _stft_log_magnitude(seg, n_fft=256, hop=128)


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
    return _stft_log_magnitude(x, n_fft=512, hop=353)


def tukey_window(n: int, alpha: float = 0.25) -> Tensor:
    """Periodic Tukey window (``scipy.signal.get_window(('tukey', alpha), n)``), float64 ``[n]``."""
    m = n + 1  # periodic: symmetric window of n + 1 points without its last point
    k = torch.arange(m, dtype=torch.float64)
    width = int(math.floor(alpha * (m - 1) / 2.0))
    w = torch.ones(m, dtype=torch.float64)
    lo, hi = k[: width + 1], k[m - width - 1:]
    w[: width + 1] = 0.5 * (1 + torch.cos(math.pi * (-1 + 2.0 * lo / alpha / (m - 1))))
    w[m - width - 1:] = 0.5 * (1 + torch.cos(math.pi * (-2.0 / alpha + 1 + 2.0 * hi / alpha / (m - 1))))
    return w[:n]


@SPECTROGRAMS.register("ave-psd")
def ave_psd(wave: Tensor, sample_rate: int = 22050, length: int = 160000, nperseg: int = 512,
            noverlap: int = 353) -> Tensor:
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


# -- frame sampling policies -----------------------------------------------------------
FramePolicy = Callable[[int, float, float, "int | None"], np.ndarray]
FRAME_POLICIES: Registry[FramePolicy] = Registry("frame policy")


@FRAME_POLICIES.register("centre")
def centre_frames(total: int, video_fps: float, rate: float = 1.0, count: int | None = 10) -> np.ndarray:
    """0-based indices of the ``centre`` policy (OGM-GE ``video2frame-1fps.py``, ``deal_video``).

    Frame ``i < count`` is the 1-based position ``p = round((i + 0.5) * step)`` with
    ``step = video_fps / rate`` (Python's round-half-even, as the official code); a
    position past ``total`` wraps into the last second: with ``last = int(total %
    video_fps) or int(video_fps)`` and ``start = total - last`` it becomes ``start + 1 +
    (p - start - 1) % last``. ``count=None`` takes one frame per started second.

    Returns:
        int64 ``[count]`` indices in ``[0, total)``.
    """
    if total <= 0:
        return np.zeros(0, dtype=np.int64)
    step = video_fps / rate
    if count is None:
        count = max(1, math.ceil(total / step))
    last = int(total % video_fps) or int(video_fps) or 1
    last = min(last, total)
    start = total - last
    out = []
    for i in range(count):
        p = max(1, round((i + 0.5) * step))
        if p > total:
            p = start + 1 + (p - start - 1) % last
        out.append(p - 1)
    return np.asarray(out, dtype=np.int64)


@FRAME_POLICIES.register("start")
def start_frames(total: int, video_fps: float, rate: float = 1.0, count: int | None = None) -> np.ndarray:
    """0-based indices of the ``start`` policy (OGM-GE ``video_preprocessing.py``, ``video2frame_update``).

    With ``fps = int(video_fps)`` and ``interval = int(fps / rate)``, frame ``n`` is kept
    when ``n % fps < interval * rate`` and ``(n % fps) % interval == 0``: at 1 fps, the
    first frame of every second. ``count`` keeps only the first ``count``.

    Returns:
        int64 indices in ``[0, total)``.
    """
    fps = max(int(video_fps), 1)
    interval = max(int(fps / rate), 1)
    n = np.arange(total, dtype=np.int64)
    fid = n % fps
    keep = n[(fid < interval * rate) & (fid % interval == 0)]
    return keep[:count] if count is not None else keep


# -- dataset specifications ------------------------------------------------------------
@dataclass(frozen=True)
class PrepareSpec:
    """How ``prepare`` writes one dataset.

    Attributes:
        name: dataset name.
        visual_dir: folder of frame folders (``<out>/<visual_dir>/<split>/<id>/``).
        audio_dir: folder of audio files (``<out>/<audio_dir>/<split>/<id>.<audio_ext>``).
        audio_ext: ``npy`` (``np.save``), ``pkl`` (pickled array) or ``wav`` (16-bit PCM).
        sample_rate: rate the audio is resampled to (Hz).
        spectrogram: name in :data:`SPECTROGRAMS` (``None`` for ``wav``).
        frame_policy: name in :data:`FRAME_POLICIES`.
        num_frames: frames per clip at 1 fps (``None``: one per second of video).
        jpeg_quality: JPEG quality (75: imageio's default, used by ``video2frame-1fps.py``;
            95: OpenCV's ``imencode`` default, used by ``video_preprocessing.py``).
        channels: ``first`` (channel 0, as ``kaldi.fbank`` on a stereo wav) or ``mean``.
        source: where the official layout and parameters come from.
    """

    name: str
    visual_dir: str
    audio_dir: str
    audio_ext: str
    sample_rate: int
    spectrogram: str | None
    frame_policy: str
    num_frames: int | None
    jpeg_quality: int
    channels: str
    source: str

    def frames_dir(self, out: Path, split: str, clip: str) -> Path:
        return out / self.visual_dir / split / clip if split else out / self.visual_dir / clip

    def audio_path(self, out: Path, split: str, clip: str) -> Path:
        name = f"{clip}.{self.audio_ext}"
        return out / self.audio_dir / split / name if split else out / self.audio_dir / name


PREPARE_SPECS: Registry[PrepareSpec] = Registry("prepare dataset")
for _spec in (
    PrepareSpec("kinetics-sounds", "visual", "audio", "npy", 16000, "ks-fbank", "centre", 10, 75, "first",
                "frames: OGM-GE pre-processing/AVE&CREMAD/video2frame-1fps.py; audio: OGM-GE "
                "pre-processing/VGG&KS/mp4_to_wav.py (16 kHz s16) + data/KineticSound/process_audio.py; layout: "
                "Valuate-and-Enhance-Multimodal-Cooperation code/datasets/dataloader.py AV_KS_Dataset"),
    PrepareSpec("ave", "visual", "audio_spec", "pkl", 22050, "ave-psd", "centre", 10, 75, "mean",
                "frames: OGM-GE pre-processing/AVE&CREMAD/video2frame-1fps.py; audio: preprocess_audio.py + "
                "pre-processing/obtain_audio_spectrogram.py; layout: OGM-GE dataset/dataset.py AVDataset"),
    PrepareSpec("vggsound", "visual", "audio", "npy", 16000, "vggsound-stft", "start", None, 95, "mean",
                "frames: OGM-GE data/VGGSound/video_preprocessing.py; audio: data/VGGSound/mp4_to_wav.py + "
                "dataset/VGGSoundDataset.py (5 s window fixed at offset 0)"),
    PrepareSpec("cremad", "Image-01-FPS", "AudioWAV", "wav", 16000, None, "start", None, 95, "mean",
                "frames: OGM-GE data/CREMAD/video_preprocessing.py; audio: 16 kHz mono wav as CREMA-D's AudioWAV, "
                "log-STFT at load (dataset/CramedDataset.py; SPECTROGRAMS['cremad-stft'])"),
):
    PREPARE_SPECS.register(_spec.name)(_spec)


# -- decoding (PyAV) -------------------------------------------------------------------
@dataclass
class DecodedClip:
    """What :func:`decode_clip` returns.

    Attributes:
        frames: RGB uint8 ``[H, W, 3]`` arrays in output order (``len == len(indices)``).
        indices: 0-based decoded-frame index of each output frame.
        audio: float32 ``[C, L]`` at the requested rate, s16-quantised (``/ 32768``).
        video_fps: the stream's average frame rate.
        total_frames: video packets demuxed (the frame count the indices are planned on).
    """

    frames: list[np.ndarray]
    indices: list[int]
    audio: np.ndarray
    video_fps: float
    total_frames: int


def decode_clip(path: str | os.PathLike, sample_rate: int, pick: Callable[[int, float], np.ndarray]) -> DecodedClip:
    """Decode the frames chosen by ``pick(total, fps)`` and the whole audio track of one video.

    The file is demuxed once into memory (compressed packets), which gives the frame
    count to plan on; video packets are then decoded in order and only the chosen
    frames converted to RGB (``rgb24``, FFmpeg's swscale, as the official tools pipe
    it). Audio is resampled by libswresample to ``sample_rate`` as signed 16-bit
    samples, keeping all channels (what ``ffmpeg -ar RATE -acodec pcm_s16le`` writes).

    Raises:
        DataError: unreadable container, no video or audio stream, nothing decoded.
    """
    import av  # PyAV; imported here so that importing mmcoop does not need it

    path = Path(path)
    try:
        container = av.open(str(path))
    except Exception as e:  # noqa: BLE001 - any FFmpeg failure means an unreadable file
        raise DataError(f"cannot open video {path}: {type(e).__name__}: {e}") from None
    with container:
        if not container.streams.video:
            raise DataError(f"no video stream in {path}")
        if not container.streams.audio:
            raise DataError(f"no audio stream in {path}")
        vs, ast = container.streams.video[0], container.streams.audio[0]
        vs.codec_context.thread_count = 1  # parallelism comes from worker processes
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        if fps <= 0:
            raise DataError(f"video {path} reports no frame rate")
        vpk, apk = [], []  # PyAV ends each stream with an empty packet that flushes its decoder
        try:
            for pkt in container.demux(vs, ast):
                (vpk if pkt.stream.type == "video" else apk).append(pkt)
        except Exception as e:  # noqa: BLE001
            raise DataError(f"cannot demux video {path}: {type(e).__name__}: {e}") from None
        total = sum(1 for p in vpk if p.size > 0)
        if total == 0:
            raise DataError(f"no video frames in {path}")
        indices = [int(i) for i in pick(total, fps)]
        wanted = set(indices)
        got: dict[int, np.ndarray] = {}
        last: deque[Any] = deque(maxlen=1)
        n = 0
        try:
            for pkt in vpk:
                for fr in pkt.decode():
                    if n in wanted:
                        got[n] = fr.to_ndarray(format="rgb24")
                    last.append((n, fr))
                    n += 1
        except Exception as e:  # noqa: BLE001
            raise DataError(f"cannot decode video frames of {path}: {type(e).__name__}: {e}") from None
        if n == 0:
            raise DataError(f"no video frame of {path} could be decoded")
        if len(got) < len(wanted):  # fewer decoded frames than packets: use the last decoded one
            fill = last[0][1].to_ndarray(format="rgb24")
            for i in wanted - set(got):
                got[i] = fill
        try:
            chunks = []
            resampler = None
            for pkt in apk:
                for fr in pkt.decode():
                    if resampler is None:
                        resampler = av.AudioResampler(format="s16p", layout=fr.layout, rate=sample_rate)
                    chunks.extend(g.to_ndarray() for g in resampler.resample(fr))
            if resampler is not None:
                chunks.extend(g.to_ndarray() for g in resampler.resample(None))
        except Exception as e:  # noqa: BLE001
            raise DataError(f"cannot decode the audio of {path}: {type(e).__name__}: {e}") from None
        if not chunks:
            raise DataError(f"no audio samples in {path}")
        audio = np.concatenate(chunks, axis=1).astype(np.float32) / 32768.0
    return DecodedClip([got[i] for i in indices], indices, audio, fps, total)


def resample_audio(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample int16 ``[C, L]`` (or ``[L]``) PCM with libswresample as :func:`decode_clip` does.

    Returns:
        float32 ``[C, L']`` (``/ 32768``), s16-quantised.
    """
    import av

    x = np.ascontiguousarray(np.atleast_2d(samples).astype(np.int16))
    layout = {1: "mono", 2: "stereo"}.get(x.shape[0], f"{x.shape[0]}c")
    rs = av.AudioResampler(format="s16p", layout=layout, rate=to_rate)
    chunks = []
    step = 1024
    for i in range(0, x.shape[1], step):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + step]), format="s16p", layout=layout)
        fr.sample_rate, fr.pts, fr.time_base = from_rate, i, Fraction(1, from_rate)
        chunks.extend(g.to_ndarray() for g in rs.resample(fr))
    chunks.extend(g.to_ndarray() for g in rs.resample(None))
    return np.concatenate(chunks, axis=1).astype(np.float32) / 32768.0


def mux_video(path: str | os.PathLike, frames: np.ndarray, fps: int, audio: np.ndarray | None = None,
              sample_rate: int = 16000, video_codec: str = "mpeg4", audio_codec: str = "pcm_s16le") -> Path:
    """Write a small video file with PyAV (fixtures and benchmarks).

    Args:
        frames: uint8 ``[T, H, W, 3]`` RGB (``H``, ``W`` even).
        fps: frames per second.
        audio: int16 ``[C, L]`` or ``[L]`` samples, or ``None`` for no audio stream.
        video_codec / audio_codec: FFmpeg encoder names (``pcm_s16le`` needs ``.mkv``/``.mov``/``.avi``).

    Returns:
        ``path``.
    """
    import av

    path = Path(path)
    with av.open(str(path), "w") as c:
        vs = c.add_stream(video_codec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        a_s = None
        if audio is not None:
            x = np.atleast_2d(audio).astype(np.int16)
            layout = "mono" if x.shape[0] == 1 else "stereo"
            a_s = c.add_stream(audio_codec, rate=sample_rate, layout=layout)
        for f in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        if a_s is not None:
            fmt = a_s.codec_context.format.name
            step = a_s.codec_context.frame_size or 1024
            for i in range(0, x.shape[1], step):
                chunk = x[:, i:i + step]
                if fmt.startswith("flt"):
                    chunk = chunk.astype(np.float32) / 32768.0
                if not fmt.endswith("p"):
                    chunk = chunk.T.reshape(1, -1)
                fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout=layout)
                fr.sample_rate, fr.pts, fr.time_base = sample_rate, i, Fraction(1, sample_rate)
                for p in a_s.encode(fr):
                    c.mux(p)
            for p in a_s.encode():
                c.mux(p)
    return path


# -- one clip --------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipJob:
    """One video to prepare: ``video`` -> ``<split>/<clip>`` outputs."""

    video: str
    split: str
    clip: str


@dataclass(frozen=True)
class PrepareOptions:
    """Run-wide settings passed to every worker (picklable)."""

    spec: PrepareSpec
    out: str
    fps: float = 1.0


def _write_wav(path: Path, mono: np.ndarray, rate: int) -> None:
    pcm = np.clip(np.round(mono * 32768.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())


def clip_outputs(spec: PrepareSpec, out: Path, job: ClipJob) -> tuple[Path, Path]:
    """``(frames folder, audio file)`` of ``job``."""
    return spec.frames_dir(out, job.split, job.clip), spec.audio_path(out, job.split, job.clip)


def clip_done(spec: PrepareSpec, out: Path, job: ClipJob) -> bool:
    """Whether all outputs of ``job`` exist (audio written last, frames folder non-empty)."""
    frames, audio = clip_outputs(spec, out, job)
    return audio.is_file() and frames.is_dir() and any(frames.iterdir())


def audio_feature(spec: PrepareSpec, audio: np.ndarray) -> np.ndarray:
    """Mix ``audio`` float32 ``[C, L]`` to mono per ``spec.channels``, then the dataset's spectrogram (or the wave)."""
    mono = audio[0] if spec.channels == "first" else audio.mean(axis=0)
    if spec.spectrogram is None:
        return mono.astype(np.float32)
    fn = SPECTROGRAMS.get(spec.spectrogram)
    return fn(torch.from_numpy(np.ascontiguousarray(mono)), sample_rate=spec.sample_rate).numpy().astype(np.float32)


def prepare_clip(job: ClipJob, opts: PrepareOptions) -> tuple[ClipJob, str | None]:
    """Prepare one clip atomically; never raises.

    Returns:
        ``(job, None)`` on success, ``(job, error message)`` otherwise.
    """
    from PIL import Image

    spec, out = opts.spec, Path(opts.out)
    tmp = out / TMP_DIR / f"{job.clip}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        count = spec.num_frames if spec.num_frames is None else int(round(spec.num_frames * opts.fps))
        policy = FRAME_POLICIES.get(spec.frame_policy)
        clip = decode_clip(job.video, spec.sample_rate, lambda total, fps: policy(total, fps, opts.fps, count))
        feat = audio_feature(spec, clip.audio)
        (tmp / "frames").mkdir(parents=True)
        for k, rgb in enumerate(clip.frames, start=1):
            Image.fromarray(rgb).save(tmp / "frames" / f"frame_{k:05d}.jpg", format="JPEG", quality=spec.jpeg_quality)
        audio_tmp = tmp / f"audio.{spec.audio_ext}"
        if spec.audio_ext == "npy":
            np.save(audio_tmp, feat)
        elif spec.audio_ext == "pkl":
            with open(audio_tmp, "wb") as fh:
                pickle.dump(feat, fh)
        else:
            _write_wav(audio_tmp, feat, spec.sample_rate)
        frames_dst, audio_dst = clip_outputs(spec, out, job)
        frames_dst.parent.mkdir(parents=True, exist_ok=True)
        audio_dst.parent.mkdir(parents=True, exist_ok=True)
        if frames_dst.exists():  # left by a run killed between the two moves: replace it whole
            os.replace(frames_dst, tmp / "old-frames")
        os.replace(tmp / "frames", frames_dst)
        os.replace(audio_tmp, audio_dst)  # the clip is complete from this instant
        return job, None
    except Exception as e:  # noqa: BLE001 - a bad video must never stop the run
        msg = str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"
        return job, msg
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _worker_init() -> None:
    torch.set_num_threads(1)


# -- the run ---------------------------------------------------------------------------
@dataclass
class PrepareReport:
    """Outcome of one :func:`prepare_videos` run (also written to ``<out>/prepare_report.json``).

    Attributes:
        dataset, videos, out: the arguments.
        total: videos found.
        prepared: clips written by this run.
        skipped: clips whose outputs already existed.
        failures: ``{"video", "clip", "error"}`` for every video that could not be prepared.
        seconds: wall-clock time of the run.
    """

    dataset: str
    videos: str
    out: str
    total: int = 0
    prepared: int = 0
    skipped: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def clips_per_s(self) -> float:
        return self.prepared / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(failed=self.failed, clips_per_s=round(self.clips_per_s, 3))
        return d


def find_videos(videos: Path) -> tuple[list[ClipJob], list[dict[str, str]]]:
    """Video files below ``videos`` as jobs (split = first folder, clip = file stem).

    Returns:
        ``(jobs, duplicates)``: a second video with the same ``(split, clip)`` is not a
        job but a failure entry.
    """
    jobs: list[ClipJob] = []
    seen: dict[tuple[str, str], str] = {}
    dups: list[dict[str, str]] = []
    for p in sorted(videos.rglob("*")):
        if not p.is_file() or p.suffix.lower() not in VIDEO_EXTENSIONS or any(s.startswith(".") for s in p.relative_to(videos).parts):
            continue
        rel = p.relative_to(videos)
        split = rel.parts[0] if len(rel.parts) > 1 else ""
        key = (split, p.stem)
        if key in seen:
            dups.append({"video": str(rel), "clip": p.stem,
                         "error": f"duplicate clip id {p.stem!r} in split {split or '(flat)'!r}: {seen[key]} is used"})
            continue
        seen[key] = str(rel)
        jobs.append(ClipJob(str(p), split, p.stem))
    return jobs, dups


def _clean_tmp(out: Path) -> None:
    tmp = out / TMP_DIR
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_videos(dataset: str, videos: str | os.PathLike, out: str | os.PathLike, *, workers: int = 1,
                   fps: float = 1.0, sample_rate: int | None = None, num_frames: int | None = -1,
                   progress: bool = True) -> PrepareReport:
    """Raw videos -> the dataset's frame folders and audio files (see the module docstring).

    Args:
        dataset: a name in :data:`PREPARE_SPECS`.
        videos: folder searched recursively for video files.
        out: output root (created).
        workers: worker processes (1: in this process).
        fps: frames kept per second of video.
        sample_rate: override of the dataset's audio rate (Hz).
        num_frames: override of the frames per clip at 1 fps (``None`` or 0: one per
            second of video; ``-1``: the dataset's default).
        progress: show a tqdm progress bar.

    Returns:
        the :class:`PrepareReport` (also written to ``<out>/prepare_report.json``).

    Raises:
        ConfigError: unknown dataset or invalid option.
        DataError: ``videos`` is not a folder.
    """
    spec = PREPARE_SPECS.get(dataset)
    if fps <= 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if sample_rate is not None:
        if sample_rate <= 0:
            raise ConfigError(f"--sample-rate must be positive, got {sample_rate}")
        spec = replace(spec, sample_rate=int(sample_rate))
    if num_frames is None or num_frames == 0:
        spec = replace(spec, num_frames=None)
    elif num_frames > 0:
        spec = replace(spec, num_frames=int(num_frames))
    videos, out = Path(videos), Path(out)
    if not videos.is_dir():
        raise DataError(f"--videos {videos} is not a folder; give the folder that holds the raw video files")
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _clean_tmp(out)  # temporary folders of a killed run
    jobs, dups = find_videos(videos)
    report = PrepareReport(dataset, str(videos), str(out), total=len(jobs) + len(dups), failures=list(dups),
                           params={**asdict(spec), "fps": fps})
    todo = [j for j in jobs if not clip_done(spec, out, j)]
    report.skipped = len(jobs) - len(todo)
    opts = PrepareOptions(spec, str(out), fps)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"prepare {dataset}", unit="clip", disable=not progress)

    def record(job: ClipJob, err: str | None) -> None:
        if err is None:
            report.prepared += 1
        else:
            report.failures.append({"video": str(Path(job.video).relative_to(videos)), "clip": job.clip, "error": err})
        bar.update(1)

    try:
        if workers == 1 or len(todo) <= 1:
            for job in todo:
                record(*prepare_clip(job, opts))
        else:
            _run_pool(todo, opts, workers, record)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - t0
        atomic_write_text(out / REPORT_FILE, json.dumps(report.to_dict(), indent=2) + "\n")
        _clean_tmp(out)
    return report


def _run_pool(todo: Sequence[ClipJob], opts: PrepareOptions, workers: int,
              record: Callable[[ClipJob, str | None], None], retries: int = 2) -> None:
    """Run ``prepare_clip`` over ``todo`` in spawned processes; a crashed pool is restarted for the rest."""
    import multiprocessing as mp

    remaining = list(todo)
    for attempt in range(retries + 1):
        done: set[ClipJob] = set()
        try:
            with ProcessPoolExecutor(max_workers=min(workers, len(remaining)), mp_context=mp.get_context("spawn"),
                                     initializer=_worker_init) as ex:
                futs: list[Future] = [ex.submit(prepare_clip, j, opts) for j in remaining]
                for fut in as_completed(futs):
                    job, err = fut.result()
                    done.add(job)
                    record(job, err)
            return
        except BrokenProcessPool:
            remaining = [j for j in remaining if j not in done]
            if attempt == retries:
                for j in remaining:
                    record(j, "worker process died while decoding (crash in FFmpeg?); rerun prepare to retry")


__all__ = [
    "SPECTROGRAMS", "FRAME_POLICIES", "PREPARE_SPECS", "PrepareSpec", "PrepareReport", "ClipJob",
    "kaldi_fbank", "kaldi_mel_banks", "ks_fbank", "vggsound_stft", "cremad_stft", "ave_psd", "tukey_window",
    "centre_frames", "start_frames", "decode_clip", "resample_audio", "mux_video", "prepare_clip",
    "prepare_videos", "find_videos", "clip_done", "audio_feature",
]
