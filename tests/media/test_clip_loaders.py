"""Shared reader pieces: frame choice, crops vs torchvision, normalisation, STFT and resampling references."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from av_fixtures import frame_image, read_mnist_images
from PIL import Image
from torchvision import transforms as T

from mmcoop.media.audio import log_stft, resample
from mmcoop.media.frames import frame_indices
from mmcoop.media.spectrograms import WavSpectrogram
from mmcoop.media.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    resized_crop_params,
    transform_group,
)
from mmcoop.media.transforms import normalize_frames as normalize

pytestmark = pytest.mark.usefixtures("one_thread")


# -- frame choice -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "n, choice, expected",
    [
        (10, "centre", [1, 4, 7]),  # seg 3: middle of [0,1,2], [3,4,5], [6,7,8]
        (12, "centre", [2, 6, 10]),  # seg 4
        (10, "start", [0, 3, 6]),  # OGM-GE AVDataset: 1-based seg*i + 1
        (10, "ks-official", [0, 3, 6]),  # 1-based i*3 + max(1, 1) = 1, 4, 7
        (12, "ks-official", [1, 5, 9]),  # 1-based i*4 + 2 = 2, 6, 10
        (6, "ks-official", [0, 0, 0]),  # official: frame 1 when n <= 6
        (2, "centre", [0, 0, 1]),  # fewer frames than wanted: floor(i * n / 3)
    ],
)
def test_eval_frame_choice(n: int, choice: str, expected: list[int]) -> None:
    assert frame_indices(n, 3, train=False, eval_choice=choice) == expected


def test_train_frames_are_uniform_within_each_third_and_seeded() -> None:
    draws = np.array([frame_indices(10, 3, True, torch.Generator().manual_seed(s)) for s in range(300)])
    for i in range(3):  # segment i holds frames 3i, 3i+1, 3i+2, each drawn about 100 times
        assert set(np.unique(draws[:, i])) == {3 * i, 3 * i + 1, 3 * i + 2}
        assert np.bincount(draws[:, i] - 3 * i).min() > 70
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert frame_indices(10, 3, True, g1) == frame_indices(10, 3, True, g2)
    assert frame_indices(10, 3, True, None, train_choice="fixed", eval_choice="start") == [0, 3, 6]


def test_ks_official_train_quirks() -> None:
    for seed in range(40):
        plain = frame_indices(14, 3, True, torch.Generator().manual_seed(seed))  # seg 4: third segment 8..11
        official = frame_indices(14, 3, True, torch.Generator().manual_seed(seed), train_choice="ks-official")
        assert official == plain[:2] + [8]  # 1-based numbers >= 10 become 9
        assert frame_indices(6, 3, True, torch.Generator().manual_seed(seed), train_choice="ks-official") == [0, 0, 0]


# -- image transforms against torchvision -------------------------------------------------------------
@pytest.mark.parametrize("size", [(36, 30), (200, 10), (10, 200), (64, 64)])
def test_resized_crop_params_match_torchvision(size: tuple[int, int]) -> None:
    img = Image.new("RGB", size)
    for seed in range(20):
        torch.manual_seed(seed)
        ref = T.RandomResizedCrop.get_params(img, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3))
        ours = resized_crop_params(size[0], size[1], torch.Generator().manual_seed(seed))
        assert tuple(ours) == tuple(ref)


@pytest.fixture(scope="module")
def digit_image(data_root: Path) -> Image.Image:
    return frame_image(read_mnist_images(data_root, 8)[7])


def test_train_transform_equals_torchvision_pipeline(digit_image: Image.Image) -> None:
    ref_tf = T.Compose(
        [T.RandomResizedCrop(16), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    )
    no_flip_tf = T.Compose([T.RandomResizedCrop(16), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])
    flipped = set()
    for seed in range(12):
        torch.manual_seed(seed)
        ref = ref_tf(digit_image)
        gen = torch.Generator().manual_seed(seed)
        arr = transform_group([digit_image], 16, True, gen)[0]
        ours = normalize(torch.from_numpy(arr).permute(2, 0, 1), IMAGENET_MEAN, IMAGENET_STD)
        assert torch.equal(ours, ref)
        torch.manual_seed(seed)
        flipped.add(not torch.equal(ours, no_flip_tf(digit_image)))
    assert flipped == {True, False}  # both branches of the flip were exercised


def test_eval_transform_equals_resize_totensor_normalize(digit_image: Image.Image) -> None:
    ref = T.Compose([T.Resize((20, 20)), T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])(digit_image)
    arr = transform_group([digit_image], 20, False, None)[0]
    assert torch.equal(normalize(torch.from_numpy(arr).permute(2, 0, 1), IMAGENET_MEAN, IMAGENET_STD), ref)
    # by hand: channel 0 of pixel (0, 0)
    raw = float(np.asarray(digit_image.resize((20, 20), Image.BILINEAR))[0, 0, 0])
    assert ref[0, 0, 0].item() == pytest.approx((raw / 255 - 0.485) / 0.229, abs=1e-6)


def test_group_transform_shares_one_draw(digit_image: Image.Image) -> None:
    grey = digit_image.convert("L")
    for seed in range(6):
        u, v = transform_group([grey, grey], 12, True, torch.Generator().manual_seed(seed))
        assert np.array_equal(u, v)  # the same crop and flip for u and v


# -- audio ----------------------------------------------------------------------------------------
def reference_log_stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Brute force: reflect-pad n_fft/2, periodic Hann, rfft of every hop-th frame, log(|.| + 1e-7)."""
    pad = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = [pad[i * hop : i * hop + n_fft] * window for i in range(1 + len(x) // hop)]
    return np.log(np.abs(np.fft.rfft(np.stack(frames), axis=1)).T + 1e-7)


def test_log_stft_matches_brute_force_dft() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, 3000).astype(np.float32)
    ours = log_stft(x, 512, 353)
    ref = reference_log_stft(x, 512, 353)
    assert ours.shape == (257, 1 + 3000 // 353) == ref.shape
    assert np.allclose(ours.numpy(), ref, atol=2e-3)  # float32 FFT vs float64 (log of small bins)
    big = ref > -3  # bins with real energy: tight
    assert np.allclose(ours.numpy()[big], ref[big], atol=1e-4)


@pytest.mark.parametrize("orig, new, freq", [(8000, 22050, 440.0), (16000, 22050, 1000.0), (22050, 16000, 3000.0)])
def test_resample_reproduces_a_sine(orig: int, new: int, freq: float) -> None:
    n = orig  # 1 s
    x = np.sin(2 * np.pi * freq * np.arange(n) / orig).astype(np.float32)
    y = resample(x, orig, new)
    assert len(y) == math.ceil(n * new / orig)
    ref = np.sin(2 * np.pi * freq * np.arange(len(y)) / new)
    inner = slice(200, len(y) - 200)  # away from the zero-padded edges
    assert np.abs(y[inner] - ref[inner]).max() < 1e-5  # measured ~7e-8 (stop band and float32 output)


def test_resample_same_rate_is_identity() -> None:
    x = np.random.default_rng(1).normal(size=100).astype(np.float32)
    assert np.array_equal(resample(x, 8000, 8000), x)


def test_wav_spectrogram_tiles_windows_and_clips(data_root: Path) -> None:
    from mmcoop.media.audio import read_wav

    wav = data_root / "fsdd" / "recordings" / "3_theo_7.wav"
    x, rate = read_wav(wav)
    assert rate == 8000
    loader = WavSpectrogram(
        "audio", "layout", sample_rate=8000, window_s=1.0, tile_s=2.0, n_fft=256, hop_length=128, random_window=True
    )
    assert loader.spec.shape == (1, 129, 1 + 8000 // 128)
    tiled = np.tile(x, math.ceil(16000 / len(x)))[:16000]
    eval_ref = log_stft(np.clip(tiled[4000:12000], -1, 1), 256, 128)  # middle of the [0, 8000] start range
    assert torch.equal(loader.load(wav, False, None), eval_ref.unsqueeze(0))
    start = int(torch.randint(0, 8001, (1,), generator=torch.Generator().manual_seed(3)).item())
    train_ref = log_stft(np.clip(tiled[start : start + 8000], -1, 1), 256, 128)
    assert torch.equal(loader.load(wav, True, torch.Generator().manual_seed(3)), train_ref.unsqueeze(0))
