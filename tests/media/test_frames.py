"""The fast frame path: FrameCache (decode once, memory-mapped) and batched train/eval transforms.

Fixture: a Kinetics-Sounds frame layout (``visual/train/<clip>/frame_0000N.jpg``) built
from real MNIST digits (tinted, on a gradient, 72 x 96 frames like a small video), with
10, 8 and 3 frames per clip. References are the official per-item pipeline (PIL +
torchvision transforms, frame choice written out from the official loader) and
torchvision's own ``RandomResizedCrop.get_params`` / ``resized_crop``.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms
from torchvision.transforms import functional as TF

from mmcoop.datasets.avmnist import read_mnist
from mmcoop.errors import DataError
from mmcoop.media.frames import FrameCache, segment_frame_numbers
from mmcoop.media.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    normalize_frames,
    random_resized_crop_batch,
    resized_crop_batch,
    sample_crop_boxes,
)

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 72, 96
COUNTS = {"clip_a": 10, "clip_b": 8, "clip_c": 3}


def digit_frame(digit: np.ndarray, tint: int) -> np.ndarray:
    """A 72 x 96 RGB frame: an MNIST digit (2x) on a colour gradient."""
    yy, xx = np.mgrid[0:H, 0:W]
    bg = np.stack([xx * 255 // W, yy * 255 // H, np.full_like(xx, (tint * 40) % 256)], -1).astype(np.float32) * 0.4
    big = np.kron(digit, np.ones((2, 2), np.uint8)).astype(np.float32)
    frame = bg.copy()
    colour = np.array([1.0, 0.6 + 0.1 * (tint % 4), 0.3], np.float32)
    frame[8:64, 20:76] = np.maximum(frame[8:64, 20:76], big[..., None] * colour)
    return frame.clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def ks_visual(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    images, _ = read_mnist(
        data_root / "mnist" / "t10k-images-idx3-ubyte.gz", data_root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    )
    root = tmp_path_factory.mktemp("ks") / "visual" / "train"
    for c, (clip, n) in enumerate(COUNTS.items()):
        (root / clip).mkdir(parents=True)
        for k in range(1, n + 1):
            Image.fromarray(digit_frame(images[c * 10 + k], k)).save(root / clip / f"frame_{k:05d}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def cache(ks_visual: Path, tmp_path_factory: pytest.TempPathFactory) -> FrameCache:
    return FrameCache.build(ks_visual, list(COUNTS), tmp_path_factory.mktemp("cache") / "ks224", workers=1)


def official_eval_sample(folder: Path) -> torch.Tensor:
    """The official KS eval path, per item: frame choice + Resize((224, 224)) + ToTensor + Normalize -> [3, 3, 224, 224]."""
    transf = transforms.Compose(
        [
            transforms.Resize(size=(224, 224)),
            transforms.ToTensor(),
            transforms.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD)),
        ]
    )
    file_num = len(os.listdir(folder))
    seg = int(file_num / 3)
    out = []
    for i in range(3):
        t = i * seg + max(int(seg / 2), 1) if file_num > 6 else 1
        out.append(transf(Image.open(folder / ("frame_0000" + str(t) + ".jpg")).convert("RGB")))
    return torch.stack(out)


def test_eval_batch_is_bit_identical_to_per_item_decode(cache: FrameCache, ks_visual: Path) -> None:
    got = cache.batch([2, 0, 1], train=False)
    assert got.shape == (3, 3, 3, 224, 224) and got.dtype == torch.float32
    for row, clip in zip(got, ["clip_c", "clip_a", "clip_b"]):
        ref = official_eval_sample(ks_visual / clip)
        assert torch.equal(row, ref), (clip, (row - ref).abs().max().item())


def test_cache_index_describes_the_clips(cache: FrameCache) -> None:
    assert cache.shape == (3, 10, 3, 224, 224)
    assert cache.clips == list(COUNTS)
    assert cache.num_frames.tolist() == [10, 8, 3] and cache.num_files.tolist() == [10, 8, 3]
    assert cache.orig_hw.tolist() == [[H, W]] * 3
    full = cache.gather([2])  # padding slots beyond a clip's frames are zero
    assert full.shape == (1, 10, 3, 224, 224) and int(full[0, 3:].abs().sum()) == 0 and int(full[0, :3].sum()) > 0
    with pytest.raises(DataError, match="clip_c.*3 cached frames"):
        cache.gather([2], torch.tensor([[1, 2, 4]]))


def test_segment_frame_numbers_follow_the_official_rule() -> None:
    n = torch.arange(0, 31)
    ev = segment_frame_numbers(n, train=False)
    for k in range(31):
        seg = int(k / 3)
        assert ev[k].tolist() == [i * seg + max(int(seg / 2), 1) if k > 6 else 1 for i in range(3)]
    g = torch.Generator().manual_seed(0)
    for k in (3, 7, 10, 12, 30):
        draws = segment_frame_numbers(torch.full((3000,), k), train=True, generator=g)
        seg = k // 3
        for i in range(3):
            allowed = {min(v, 9) for v in range(i * seg + 1, i * seg + seg + 1)} if k > 6 else {1}
            assert set(draws[:, i].tolist()) == allowed, (k, i)


def test_crop_boxes_have_torchvision_distribution() -> None:
    hgt, wid, k = 256, 340, 4000
    boxes = sample_crop_boxes(torch.tensor([[hgt, wid]]).expand(k, 2), torch.Generator().manual_seed(1))
    top, left, h, w = boxes.T.double()
    assert bool(((top >= 0) & (left >= 0) & (top + h <= hgt) & (left + w <= wid) & (h > 0) & (w > 0)).all())
    torch.manual_seed(2)
    img = torch.zeros(3, hgt, wid)
    ref = torch.tensor(
        [transforms.RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3]) for _ in range(k)]
    ).double()
    rt, rl, rh, rw = ref.T

    def stats(t, l, h, w):  # noqa: E741
        return torch.stack(
            [
                (h * w / (hgt * wid)).mean(),
                torch.log(w / h).mean(),
                torch.log(w / h).std(),
                (t / (hgt - h + 1)).mean(),
                (l / (wid - w + 1)).mean(),
                (h * w / (hgt * wid)).std(),
            ]
        )

    # 4000 draws: standard errors ~0.005 for these statistics
    assert torch.allclose(stats(top, left, h, w), stats(rt, rl, rh, rw), atol=0.03)
    # no attempt can fit a 1000 x 10 frame: torchvision's centre-crop fallback, exactly
    tall = sample_crop_boxes(torch.tensor([[1000, 10]]).expand(5, 2), torch.Generator().manual_seed(3))
    expect = transforms.RandomResizedCrop.get_params(torch.zeros(3, 1000, 10), [0.08, 1.0], [3 / 4, 4 / 3])
    assert tall.tolist() == [list(expect)] * 5


def test_train_augmentation_shape_range_seed_and_flip(cache: FrameCache) -> None:
    frames = cache.gather([0, 1], torch.tensor([[1, 4, 7], [1, 3, 5]]))
    out = random_resized_crop_batch(frames, torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 3, 224, 224) and out.dtype == torch.float32 and bool(torch.isfinite(out).all())
    lo = (0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    hi = (1 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert bool((out >= lo.view(3, 1, 1) - 1e-5).all() and (out <= hi.view(3, 1, 1) + 1e-5).all())
    again = random_resized_crop_batch(frames, torch.Generator().manual_seed(0))
    other = random_resized_crop_batch(frames, torch.Generator().manual_seed(1))
    assert torch.equal(out, again) and not torch.equal(out, other)
    # a box covering the whole (square) cached frame is the identity; flip_p decides the mirror
    whole = dict(scale=(1.0, 1.0), ratio=(1.0, 1.0))
    plain = normalize_frames(frames)
    kept = random_resized_crop_batch(frames, torch.Generator().manual_seed(0), flip_p=0.0, **whole)
    flipped = random_resized_crop_batch(frames, torch.Generator().manual_seed(0), flip_p=1.0, **whole)
    assert torch.allclose(kept, plain, atol=1e-5) and torch.allclose(flipped, plain.flip(-1), atol=1e-5)
    assert not torch.allclose(flipped, plain, atol=0.1)
    many = cache.gather([0] * 32, torch.arange(1, 4).expand(32, 3))
    half = random_resized_crop_batch(many, torch.Generator().manual_seed(5), flip_p=0.5, **whole)
    is_flipped = (half - normalize_frames(many).flip(-1)).abs().amax((2, 3, 4)) < 1e-4
    assert 0.3 < is_flipped.double().mean().item() < 0.7


def test_crop_from_full_resolution_matches_torchvision_resized_crop(ks_visual: Path, tmp_path: Path) -> None:
    full = FrameCache.build(ks_visual, ["clip_a"], tmp_path / "full", size=None, workers=1)
    assert full.frame_hw == (H, W)
    frames = full.gather([0] * 4, torch.tensor([[1], [2], [3], [4]]))[:, 0]  # [4, 3, 72, 96]
    boxes = [(10, 20, 40, 50), (0, 0, 72, 96), (30, 5, 33, 61), (7, 40, 60, 45)]  # (top, left, h, w)
    xyxy = torch.tensor([[lft, top, lft + w, top + h] for top, lft, h, w in boxes], dtype=torch.float32)
    ours = resized_crop_batch(frames, xyxy, 224).round().clamp(0, 255) / 255
    for k, (top, lft, h, w) in enumerate(boxes):
        img = Image.open(ks_visual / "clip_a" / f"frame_{k + 1:05d}.jpg").convert("RGB")
        ref = TF.to_tensor(TF.resized_crop(img, top, lft, h, w, [224, 224]))
        diff = (ours[k] - ref).abs()
        # same bilinear sampling grid: within a grey level on average; PIL crops first, so within half a
        # source pixel of the box edge (<= 4 output pixels here) it clamps where we read the neighbours
        inner = diff[:, 4:-4, 4:-4]
        assert diff.mean().item() < 1.0 / 255 and inner.max().item() <= 2.5 / 255, (
            k,
            diff.mean().item(),
            inner.max().item(),
        )
        shifted = resized_crop_batch(frames[k : k + 1], xyxy[k : k + 1] + 2.0, 224).round() / 255
        assert (shifted[0] - ref).abs().mean().item() > 3 * diff.mean().item()


def test_cache_reuse_pickle_and_errors(cache: FrameCache, ks_visual: Path) -> None:
    data = cache.path / FrameCache.DATA_FILE
    stamp = data.stat().st_mtime_ns
    again = FrameCache.build(ks_visual, list(COUNTS), cache.path, workers=1)
    assert data.stat().st_mtime_ns == stamp  # same inputs: opened, not rebuilt
    clone = pickle.loads(pickle.dumps(again))
    assert torch.equal(clone.gather([1, 0]), cache.gather([1, 0]))
    stale = cache.path.parent / ".other.tmp-dead"  # left by a killed build
    stale.mkdir()
    smaller = FrameCache.build(ks_visual, ["clip_b"], cache.path.parent / "other", size=(32, 32), workers=1)
    assert smaller.shape == (1, 8, 3, 32, 32) and not stale.exists()
    with pytest.raises(DataError, match="needs"):
        smaller.batch([0], train=False)
    with pytest.raises(DataError, match="missing frame folder"):
        FrameCache.build(ks_visual, ["clip_a", "nope"], cache.path.parent / "bad", workers=1)
    assert not (cache.path.parent / "bad").exists()
    with pytest.raises(DataError, match="no frame cache"):
        FrameCache(cache.path.parent / "absent")
    broken = cache.path.parent / "broken"
    broken.mkdir()
    (broken / FrameCache.INDEX_FILE).write_text((cache.path / FrameCache.INDEX_FILE).read_text())
    (broken / FrameCache.DATA_FILE).write_bytes(data.read_bytes()[:1000])
    with pytest.raises(DataError, match="wrong size"):
        FrameCache(broken)
