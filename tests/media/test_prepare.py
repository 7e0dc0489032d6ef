"""``mmcoop data prepare``: raw videos -> frame folders + spectrograms.

Fixture videos are muxed with PyAV from real content: MNIST digits as frames (one
digit per second) and Free Spoken Digit recordings as the audio track (lossless PCM
in Matroska, so the decoded audio is the recording itself; one H.264/AAC mp4), plus a
file of random bytes and a truncated mp4. References are written out independently:
a per-frame NumPy Kaldi filterbank, NumPy STFTs, ``scipy.signal.spectrogram`` for AVE.
"""

from __future__ import annotations

import json
import os
import pickle
import wave
from pathlib import Path

import numpy as np
import pytest
import torch
from _video import mux_video, resample_audio
from PIL import Image
from typer.testing import CliRunner

from mmcoop.cli.data_cmds import data_app
from mmcoop.datasets.avmnist import read_mnist
from mmcoop.media.features import ave_psd, cremad_stft, vggsound_stft
from mmcoop.media.frame_policies import centre_frames, start_frames
from mmcoop.media.prepare import REPORT_FILE, TMP_DIR, prepare_videos

pytestmark = pytest.mark.usefixtures("one_thread")

FH, FW = 56, 64  # frame size
CLIPS = {  # name: (relative path, seconds, fps, recordings (one per channel), codecs)
    "clip_a": ("train/clip_a.mkv", 3, 8, ["7_jackson_3"], ("mpeg4", "pcm_s16le")),
    "clip_b": ("train/clip_b.mkv", 2, 10, ["2_theo_10", "5_nicolas_4"], ("mpeg4", "pcm_s16le")),
    "clip_c": ("test/clip_c.mp4", 3, 8, ["9_yweweler_1"], ("h264", "aac")),
}


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), "<i2")


def frame_for(digit: np.ndarray) -> np.ndarray:
    f = np.full((FH, FW, 3), 30, np.uint8)
    f[:, 4:60] = np.kron(digit, np.ones((2, 2), np.uint8))[..., None]
    return f


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> dict:
    images, _ = read_mnist(
        data_root / "mnist" / "t10k-images-idx3-ubyte.gz", data_root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    )
    root = tmp_path_factory.mktemp("raw")
    info = {}
    for c, (name, (rel, secs, fps, recs, (vc, ac))) in enumerate(CLIPS.items()):
        digits = [frame_for(images[10 * c + s]) for s in range(secs)]
        frames = np.stack([digits[k // fps] for k in range(secs * fps)])
        pcm = [read_pcm(data_root / "fsdd" / "recordings" / f"{r}.wav") for r in recs]
        audio = np.zeros((len(pcm), secs * 8000), np.int16)
        for ch, x in enumerate(pcm):
            audio[ch, 1000 : 1000 + len(x)] = x[: secs * 8000 - 1000]
        path = root / "videos" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        mux_video(path, frames, fps, audio, 8000, vc, ac)
        info[name] = {"digits": digits, "audio": audio, "fps": fps, "secs": secs}
    rng = np.random.default_rng(0)
    (root / "videos" / "train" / "broken.mp4").write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    mp4 = (root / "videos" / "test" / "clip_c.mp4").read_bytes()
    (root / "videos" / "test" / "cut.mp4").write_bytes(mp4[: len(mp4) * 2 // 5])
    return {"root": root, "videos": root / "videos", "clips": info}


@pytest.fixture(scope="module")
def ks_run(sources: dict) -> tuple[Path, object]:
    out = sources["root"] / "out_ks"
    return out, prepare_videos("kinetics-sounds", sources["videos"], out, workers=1, progress=False)


# -- references ------------------------------------------------------------------------
def numpy_kaldi_fbank(x: np.ndarray, sr: int = 16000, bins: int = 128) -> np.ndarray:
    """Kaldi fbank written out per frame in float64 (25 ms Hann frames, 10 ms shift, DC removal,
    pre-emphasis 0.97, 512-point power spectrum, HTK mel triangles 20 Hz..Nyquist, log floor eps)."""
    win, shift, nfft = 400, 160, 512
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    edges = np.linspace(mel(20.0), mel(sr / 2), bins + 2)
    fmel = mel(np.arange(nfft // 2 + 1) * sr / nfft)
    banks = np.zeros((nfft // 2 + 1, bins))
    for b in range(bins):
        l, c, r = edges[b], edges[b + 1], edges[b + 2]  # noqa: E741
        for k in range(nfft // 2):  # the Nyquist bin has no weight in Kaldi
            banks[k, b] = max(0.0, min((fmel[k] - l) / (c - l), (r - fmel[k]) / (r - c)))
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / (win - 1))
    rows = []
    for m in range(1 + (len(x) - win) // shift):
        fr = x[m * shift : m * shift + win].astype(np.float64)
        fr = fr - fr.mean()
        fr = fr - 0.97 * np.concatenate([fr[:1], fr[:-1]])
        spec = np.abs(np.fft.rfft(fr * hann, nfft)) ** 2
        rows.append(np.log(np.maximum(spec @ banks, np.finfo(np.float32).eps)))
    return np.array(rows)


def official_ks_npy(x: np.ndarray) -> np.ndarray:
    fb = numpy_kaldi_fbank(x - x.mean())
    fb = np.concatenate([fb, np.zeros((max(0, 1024 - len(fb)), 128))])[:1024]
    return (fb + 4.503877) / (5.141276 * 2)


def numpy_log_stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """librosa.stft (>= 0.9: zero padding) + log(|.| + 1e-7), one frame at a time."""
    pad = np.concatenate([np.zeros(n_fft // 2), x.astype(np.float64), np.zeros(n_fft // 2)])
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    cols = [np.abs(np.fft.rfft(pad[t * hop : t * hop + n_fft] * w)) for t in range(1 + len(x) // hop)]
    return np.log(np.array(cols).T + 1e-7)


def close_spectra(got: np.ndarray, ref: np.ndarray) -> None:
    """float32 STFT vs float64 reference: magnitudes agree to 1e-5 of the peak; their logs agree to 1e-3
    wherever |S| > 1e-2 (log(|S| + 1e-7) magnifies float32 rounding near silence)."""
    mag, rmag = np.exp(got.astype(np.float64)), np.exp(ref)
    assert np.abs(mag - rmag).max() < 1e-5 * rmag.max(), np.abs(mag - rmag).max() / rmag.max()
    loud = rmag > 1e-2
    assert loud.mean() > 0.2 and np.abs(got - ref)[loud].max() < 1e-3, (loud.mean(), np.abs(got - ref)[loud].max())


def digit_distance(path: Path, digit: np.ndarray) -> float:
    return float(np.abs(np.asarray(Image.open(path).convert("RGB"), np.float64) - digit).mean())


# -- tests -----------------------------------------------------------------------------
def test_ks_report_lists_corrupt_videos_and_prepares_the_rest(ks_run: tuple, sources: dict) -> None:
    out, report = ks_run
    assert (report.total, report.prepared, report.skipped, report.failed) == (5, 3, 0, 2)
    on_disk = json.loads((out / REPORT_FILE).read_text())
    assert sorted(f["video"] for f in on_disk["failures"]) == ["test/cut.mp4", "train/broken.mp4"]
    assert all("cannot open video" in f["error"] for f in on_disk["failures"])
    assert on_disk["prepared"] == 3 and not (out / TMP_DIR).exists()
    assert not (out / "visual" / "train" / "broken").exists() and not (out / "audio" / "train" / "broken.npy").exists()


def test_ks_frames_centre_of_each_second_and_wrap(ks_run: tuple, sources: dict) -> None:
    out, _ = ks_run
    for name, rel in [("clip_a", "train"), ("clip_b", "train"), ("clip_c", "test")]:
        info = sources["clips"][name]
        folder = out / "visual" / rel / name
        files = sorted(os.listdir(folder))
        assert files == [f"frame_{k:05d}.jpg" for k in range(1, 11)]  # 10 frames: the 10 s of a KS clip
        for s in range(info["secs"]):  # frame s+1 = centre of second s -> that second's digit
            dists = [digit_distance(folder / files[s], d) for d in info["digits"]]
            assert int(np.argmin(dists)) == s and dists[s] < 10.0, (name, s, dists)  # lossy video + JPEG q75
        last = (folder / files[info["secs"] - 1]).read_bytes()  # past the end: the last second's centre frame
        assert all((folder / f).read_bytes() == last for f in files[info["secs"] :])
    # the policy itself: 3 s at 8 fps -> 1-based positions round(4), round(12), round(20), then wrap to 20
    assert centre_frames(24, 8.0).tolist() == [3, 11, 19] + [19] * 7
    assert centre_frames(20, 10.0).tolist() == [4, 14] + [14] * 8  # round(15.0) = 15, wrap to 15
    assert centre_frames(300, 29.97).tolist() == [14, 44, 74, 104, 134, 164, 194, 224, 254, 284]


def test_ks_spectrogram_equals_kaldi_reference_on_the_source_wav(ks_run: tuple, sources: dict) -> None:
    out, _ = ks_run
    for name in ("clip_a", "clip_b"):
        audio = sources["clips"][name]["audio"]
        wav16 = resample_audio(audio, 8000, 16000)  # [C, L], what ffmpeg -ar 16000 -acodec pcm_s16le writes
        got = np.load(out / "audio" / "train" / f"{name}.npy")
        assert got.shape == (1024, 128) and got.dtype == np.float32
        ref = official_ks_npy(wav16[0].astype(np.float64))  # kaldi.fbank reads channel 0 of a stereo wav
        assert np.abs(got - ref).max() < 2e-4, (name, np.abs(got - ref).max())
        if name == "clip_b":  # stereo: the other channel really differs
            assert np.abs(got - official_ks_npy(wav16.mean(0).astype(np.float64))).max() > 0.1
    lossy = np.load(out / "audio" / "test" / "clip_c.npy")
    assert lossy.shape == (1024, 128) and np.isfinite(lossy).all()
    # 3 s of audio -> 298 frames (+ a few for AAC's priming/padding samples), then rows of zeros (before normalising)
    pad = np.isclose(lossy, (0 + 4.503877) / (5.141276 * 2)).all(1)
    first_pad = int(np.argmax(pad))
    assert pad[first_pad:].all() and 298 <= first_pad <= 298 + 20, first_pad


def test_stft_spectrograms_match_librosa_and_scipy_references(data_root: Path) -> None:
    import scipy.signal

    pcm = read_pcm(data_root / "fsdd" / "recordings" / "4_lucas_7.wav")
    x16 = resample_audio(pcm, 8000, 16000)[0]
    got = vggsound_stft(torch.from_numpy(x16)).numpy()
    tiled = x16.astype(np.float64)
    while len(tiled) / 16000 < 10.0:
        tiled = np.tile(tiled, 2)
    assert got.shape == (129, 626)
    close_spectra(got, numpy_log_stft(np.clip(tiled[:80000], -1, 1), 256, 128))
    long = np.concatenate(
        [read_pcm(data_root / "fsdd" / "recordings" / f"{r}.wav") for r in ("4_lucas_7", "1_jackson_0", "8_theo_2")]
    )  # > 1 s: 3 tiles fill 3 s
    x22 = resample_audio(long, 8000, 22050)[0]
    got = cremad_stft(torch.from_numpy(x22)).numpy()
    assert got.shape == (257, 188)
    close_spectra(got, numpy_log_stft(np.clip(np.tile(x22.astype(np.float64), 3)[:66150], -1, 1), 512, 353))
    got = ave_psd(torch.from_numpy(x22)).numpy()
    s = np.clip(np.tile(x22, 10)[:160000], -1.0, 1.0)
    _, _, psd = scipy.signal.spectrogram(s, 22050, nperseg=512, noverlap=353)
    ref = np.log(psd + 1e-7)
    ref = (ref - ref.mean()) / (ref.std() + 1e-9)
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-3


def test_cremad_writes_wav_and_first_frame_of_each_second(sources: dict, tmp_path: Path) -> None:
    report = prepare_videos("cremad", sources["videos"], tmp_path, workers=1, progress=False)
    assert (report.prepared, report.failed) == (3, 2)
    for name, rel in [("clip_a", "train"), ("clip_b", "train")]:
        info = sources["clips"][name]
        folder = tmp_path / "Image-01-FPS" / rel / name
        files = sorted(os.listdir(folder))
        assert len(files) == info["secs"]  # one frame per second
        for s, f in enumerate(files):
            assert int(np.argmin([digit_distance(folder / f, d) for d in info["digits"]])) == s
        with wave.open(str(tmp_path / "AudioWAV" / rel / f"{name}.wav")) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
            got = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
        ref = resample_audio(info["audio"], 8000, 16000).mean(0) * 32768  # mono = channel mean
        assert got.shape == ref.shape and np.abs(got - ref).max() <= 0.5
    assert start_frames(24, 8.0).tolist() == [0, 8, 16] and start_frames(21, 10.0).tolist() == [0, 10, 20]


def test_resume_skips_done_clips_and_recovers_from_a_kill(sources: dict, tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    (videos / "train").mkdir(parents=True)
    for name in ("clip_a", "clip_b"):
        (videos / "train" / f"{name}.mkv").write_bytes((sources["videos"] / "train" / f"{name}.mkv").read_bytes())
    out = tmp_path / "out"
    first = prepare_videos("kinetics-sounds", videos, out, progress=False)
    assert (first.prepared, first.skipped) == (2, 0)
    a_files = [out / "audio" / "train" / "clip_a.npy", *sorted((out / "visual" / "train" / "clip_a").iterdir())]
    stamps = [p.stat().st_mtime_ns for p in a_files]
    b_frames, b_audio = out / "visual" / "train" / "clip_b", out / "audio" / "train" / "clip_b.npy"
    good_b = b_audio.read_bytes()
    # a run killed mid-clip: a half-written temp folder, clip_b's frames moved in but not yet its audio
    (out / TMP_DIR / "clip_b.999.dead" / "frames").mkdir(parents=True)
    (out / TMP_DIR / "clip_b.999.dead" / "frames" / "frame_00001.jpg").write_bytes(b"\xff\xd8half")
    b_audio.unlink()
    (b_frames / "frame_00011.jpg").write_bytes(b"stale")
    second = prepare_videos("kinetics-sounds", videos, out, progress=False)
    assert (second.prepared, second.skipped, second.failed) == (1, 1, 0)
    assert [p.stat().st_mtime_ns for p in a_files] == stamps  # done clip untouched
    assert sorted(os.listdir(b_frames)) == [f"frame_{k:05d}.jpg" for k in range(1, 11)]
    assert b_audio.read_bytes() == good_b and not (out / TMP_DIR).exists()
    third = prepare_videos("kinetics-sounds", videos, out, progress=False)
    assert (third.prepared, third.skipped) == (0, 2)


@pytest.mark.slow
def test_parallel_workers_write_the_same_outputs(ks_run: tuple, sources: dict, tmp_path: Path) -> None:
    serial, _ = ks_run
    report = prepare_videos("kinetics-sounds", sources["videos"], tmp_path, workers=2, progress=False)
    assert (report.prepared, report.failed) == (3, 2)
    for rel in [
        "audio/train/clip_a.npy",
        "audio/train/clip_b.npy",
        "audio/test/clip_c.npy",
        "visual/train/clip_a/frame_00001.jpg",
        "visual/test/clip_c/frame_00010.jpg",
    ]:
        assert (tmp_path / rel).read_bytes() == (serial / rel).read_bytes(), rel


def test_cli_prepare_ave_and_unknown_dataset(sources: dict, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(
        data_app,
        ["prepare", "--dataset", "ave", "--videos", str(sources["videos"]), "--out", str(tmp_path), "--no-progress"],
    )
    assert res.exit_code == 0, res.output
    assert "3 clip(s) prepared" in res.output and "2 failed" in res.output and "broken.mp4" in res.output
    with open(tmp_path / "audio_spec" / "train" / "clip_a.pkl", "rb") as fh:
        spec = pickle.load(fh)
    assert spec.shape == (257, 1004) and spec.dtype == np.float32
    assert abs(float(spec.mean())) < 1e-4 and abs(float(spec.std()) - 1) < 1e-3  # standardised per clip
    assert len(os.listdir(tmp_path / "visual" / "train" / "clip_a")) == 10
    bad = runner.invoke(
        data_app, ["prepare", "--dataset", "kinetics", "--videos", str(sources["videos"]), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2 and "kinetics-sounds" in bad.output
