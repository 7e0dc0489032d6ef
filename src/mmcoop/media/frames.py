"""The fast frame path: decode clip-frame JPEGs once into a uint8 memory-mapped cache, augment on the device.

The official Kinetics-Sounds loader (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation,
``code/datasets/dataloader.py``, ``AV_KS_Dataset.__getitem__``; the same in OGM-GE and
BalanceBenchmark ``KS_dataset.py``) decodes 3 JPEG frames per sample at every epoch
with PIL and applies, per frame,

- train: ``RandomResizedCrop(224)`` (scale (0.08, 1), ratio (3/4, 4/3)) +
  ``RandomHorizontalFlip()`` + ``ToTensor()`` + ``Normalize(ImageNet)``;
- eval: ``Resize((224, 224))`` + ``ToTensor()`` + ``Normalize(ImageNet)``.

:class:`FrameCache` decodes every frame once with the eval resize (PIL bilinear, what
``torchvision.transforms.Resize`` does to a PIL image) into ``frames.npy``, a uint8
``[N, T, 3, H, W]`` array (``H = W = 224`` by default), with ``index.json`` beside it
(clip ids, frames and files per clip, original frame sizes). Batches are gathered with
one NumPy fancy-index call on a read-only ``mmap``; the mapped pages are released
after each gather (``madvise(MADV_DONTNEED)``) so the process RSS stays flat however
large the cache is (the OS page cache still serves repeated reads).

What is equal and what is approximated:

- **eval: bit-identical.** :func:`normalize_frames` on cached frames equals
  ``Normalize(ToTensor(Resize((224, 224))(Image.open(f).convert('RGB'))))`` exactly
  (same PIL decode and resize, same float32 operations).
- **train crop boxes: same distribution.** :func:`sample_crop_boxes` draws
  RandomResizedCrop's ``(top, left, h, w)`` exactly as ``RandomResizedCrop.get_params``
  (10 attempts of area ``U(scale) * H * W`` and log-uniform ratio, rounding, uniform
  integer offsets, the centre-crop fallback), **in the original frame's pixel
  coordinates**, independently per frame as the official per-frame transform does;
  flips are Bernoulli(0.5) per frame.
- **train pixels: approximated.** The box is mapped to the cached 224 x 224 image and
  resampled there bilinearly in one ``grid_sample`` call (values rounded to uint8
  levels as PIL's output). PIL crops the original resolution with an antialiased
  bilinear filter, so the cached path loses the detail the eval resize removed (for a
  340 x 256 Kinetics frame, ~1.5x horizontally); at 224 x 224 a box never exceeds
  the cached pixels, so no antialiasing is missing. With a cache at the original
  resolution (``size=None``) and boxes smaller than the output the two agree to
  within a quarter of a grey level on average (tested; PIL differs only within half
  a source pixel of the box edge, where it clamps to the crop).

Frame selection (:func:`segment_frames`, the one rule the readers' per-item decode uses
too) defaults to the official one: ``seg = n // 3`` for the ``n`` frame images of the
clip folder (the official loader counts ``os.listdir``, the same for a folder of frames);
train picks ``randint(i*seg + 1, i*seg + seg)`` capped at 9, eval ``i*seg + max(seg // 2, 1)``;
clips with ``n <= 6`` use frame 1.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from mmcoop.errors import DataError
from mmcoop.utils.io import atomic_write_text

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JPEG_SUFFIXES = (".jpg", ".jpeg")
FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")  # what the readers list as frames
LAYOUT_HINT = "expected <visual root>/<clip id>/frame_00001.jpg, frame_00002.jpg, ... (one folder per clip)"


# -- frame selection ---------------------------------------------------------------------
TrainChoice = Literal["random", "fixed", "ks-official"]
EvalChoice = Literal["centre", "start", "ks-official"]
TRAIN_CHOICES: tuple[str, ...] = ("random", "fixed", "ks-official")
EVAL_CHOICES: tuple[str, ...] = ("centre", "start", "ks-official")


def segment_frames(num_files: Tensor, num: int = 3, train: bool = False, generator: torch.Generator | None = None,
                   train_choice: TrainChoice = "ks-official", eval_choice: EvalChoice = "ks-official") -> Tensor:
    """0-based indices of the ``num`` frames taken from each clip's ``n`` sorted frames, for a batch of clips.

    The one frame-choice rule of the package (the readers' per-item decode and the
    frame cache both call it). The frames are cut into ``num`` segments of
    ``seg = n // num`` frames (the last ``n % num`` frames are never used, as in the
    official code):

    - train, ``train_choice="random"``: a uniformly random frame of each segment
      (official: ``random.randint(i*seg + 1, i*seg + seg)``, 1-based);
    - train, ``train_choice="ks-official"``: the same draw with the official KS loader's
      quirks: frame 1 if ``n <= 6``, and 1-based frame numbers ``>= 10`` become 9 (its
      ``'frame_0000' + str(t)`` names only exist below 10);
    - otherwise (eval, or ``train_choice="fixed"``) ``eval_choice``:
      ``"centre"``: ``i*seg + seg//2``, the middle frame of each segment;
      ``"start"``: ``i*seg``, its first frame (OGM-GE ``AVDataset``: ``t = seg*i + 1``, 1-based);
      ``"ks-official"``: exactly the official KS eval choice, 1-based
      ``i*seg + max(seg//2, 1)`` if ``n > 6`` else frame 1 (for ``seg = 3`` this is the first
      frame of each third, one before the middle).

    The official KS rule (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation
    ``code/datasets/dataloader.py`` ``AV_KS_Dataset.__getitem__``) sends clips of ``n <= 6``
    frames to frame 1 under both ``ks-official`` choices; otherwise, with fewer frames than
    ``num`` (``seg = 0``), frames repeat: ``floor(i * n / num)``.

    Random draws: ``torch.randint(0, seg, (rows, num), generator=generator)`` for the
    rows of each distinct ``seg > 0`` in increasing ``seg`` order (one clip: exactly
    ``randint(0, seg, (num,))``, what the per-item reference draws).

    Args:
        num_files: int ``[B]`` frames in each clip folder (sorted image files).
        num: frames per sample ``T``.
        train: training choice (random unless ``train_choice="fixed"``).
        generator: random source (default: torch's global generator).
        train_choice / eval_choice: see above.

    Returns:
        int64 ``[B, num]`` 0-based positions in each clip's sorted frame list.

    Raises:
        DataError: an unknown choice.
    """
    if train_choice not in TRAIN_CHOICES:
        raise DataError(f"unknown train frame choice {train_choice!r}; valid: {', '.join(TRAIN_CHOICES)}")
    if eval_choice not in EVAL_CHOICES:
        raise DataError(f"unknown eval frame choice {eval_choice!r}; valid: {', '.join(EVAL_CHOICES)}")
    n = torch.as_tensor(num_files, dtype=torch.long).reshape(-1, 1).cpu()
    seg = n // num
    i = torch.arange(num, dtype=torch.long).unsqueeze(0)
    random = train and train_choice != "fixed"
    if random:
        offsets = torch.zeros(n.shape[0], num, dtype=torch.long)
        flat = seg.reshape(-1)
        for s in torch.unique(flat[flat > 0]).tolist():
            rows = (flat == s).nonzero().reshape(-1)
            offsets[rows] = torch.randint(0, int(s), (rows.numel(), num), generator=generator)
        picked = i * seg + offsets
        official = train_choice == "ks-official"
        if official:
            picked = picked.clamp_max(8)
    else:
        official = eval_choice == "ks-official"
        if eval_choice == "centre":
            picked = i * seg + seg // 2
        elif eval_choice == "start":
            picked = i * seg
        else:
            picked = i * seg + (seg // 2).clamp_min(1) - 1
    picked = torch.where(seg > 0, picked, i * n // num)
    if official:
        picked = torch.where(n > 6, picked, torch.zeros_like(picked))
    return picked


def segment_frame_numbers(num_files: Tensor, pick: int = 3, train: bool = False,
                          generator: torch.Generator | None = None) -> Tensor:
    """1-based frame numbers the official KS loader opens, for a batch of clips.

    :func:`segment_frames` with ``ks-official`` choices, plus one.

    Args:
        num_files: int ``[B]`` frames in each clip's folder.
        pick: frames per sample (3 in the paper).
        train: random frame within each segment (else the fixed eval frame).
        generator: random source for ``train``.

    Returns:
        int64 ``[B, pick]`` (``frame_0000N.jpg`` -> ``N`` for the official file names).
    """
    return segment_frames(num_files, pick, train, generator, "ks-official", "ks-official") + 1


# -- augmentation (batched, any device) ----------------------------------------------------
def normalize_frames(frames: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """``ToTensor`` + ``Normalize`` on uint8 frames, bit-identical to torchvision's.

    Args:
        frames: uint8 ``[..., 3, H, W]`` (or float in ``[0, 255]``, left unchanged).

    Returns:
        float32 ``[..., 3, H, W]``: ``(x / 255 - mean) / std`` (the same three float32
        operations, done in place on one new tensor).
    """
    x = frames.to(torch.float32, copy=True)
    return _normalize_(x.div_(255), mean, std)


def _normalize_(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """In place: ``x`` float in ``[0, 1]`` ``[..., 3, H, W]`` -> ``(x - mean) / std``."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return x.sub_(m).div_(s)


def sample_crop_boxes(hw: Tensor, generator: torch.Generator | None = None, scale: tuple[float, float] = (0.08, 1.0),
                      ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10) -> Tensor:
    """RandomResizedCrop boxes for many images at once (``RandomResizedCrop.get_params``'s distribution).

    Each image gets ``attempts`` candidate boxes with area ``H * W * U(scale)`` and aspect
    ratio ``exp(U(log ratio))``, ``w = round(sqrt(area * r))``, ``h = round(sqrt(area / r))``
    (round half to even, as Python's ``round``); the first candidate that fits is used
    with ``top ~ U{0..H-h}``, ``left ~ U{0..W-w}``; if none fits, the centre crop with
    the ratio clamped into ``ratio``.

    Args:
        hw: int ``[K, 2]`` image heights and widths (original pixels).
        generator: random source (on the CPU).

    Returns:
        int64 ``[K, 4]`` boxes ``(top, left, h, w)``.
    """
    hw = hw.to("cpu").long()
    k = hw.shape[0]
    H, W = hw[:, 0:1].double(), hw[:, 1:2].double()
    area = H * W
    target = area * (scale[0] + (scale[1] - scale[0]) * torch.rand(k, attempts, generator=generator, dtype=torch.float64))
    lo, hi = np.log(ratio[0]), np.log(ratio[1])
    aspect = torch.exp(lo + (hi - lo) * torch.rand(k, attempts, generator=generator, dtype=torch.float64))
    w = torch.round(torch.sqrt(target * aspect))
    h = torch.round(torch.sqrt(target / aspect))
    ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)
    found = ok.any(1)
    w_s, h_s = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    H1, W1 = H.squeeze(1), W.squeeze(1)
    u = torch.rand(k, 2, generator=generator, dtype=torch.float64)
    top = (u[:, 0] * (H1 - h_s + 1)).floor()
    left = (u[:, 1] * (W1 - w_s + 1)).floor()
    # fallback: centre crop, ratio clamped into [min(ratio), max(ratio)]
    in_ratio = W1 / H1
    rmin, rmax = min(ratio), max(ratio)
    fw = torch.where(in_ratio > rmax, torch.round(H1 * rmax), W1)
    fh = torch.where(in_ratio < rmin, torch.round(W1 / rmin), H1)
    ftop, fleft = torch.div(H1 - fh, 2, rounding_mode="floor"), torch.div(W1 - fw, 2, rounding_mode="floor")
    out = torch.stack([torch.where(found, top, ftop), torch.where(found, left, fleft),
                       torch.where(found, h_s, fh), torch.where(found, w_s, fw)], dim=1)
    return out.long()


def resized_crop_batch(images: Tensor, boxes: Tensor, size: int = 224, flip: Tensor | None = None) -> Tensor:
    """Crop boxes out of images and resize them to ``size`` x ``size``, bilinearly, in one batched call.

    Output pixel ``(r, c)`` of image ``k`` is the bilinear sample of ``images[k]`` at the
    centre of its cell in the box: ``x = x1 + (c + 0.5) (x2 - x1) / size - 0.5`` (pixel
    indices; likewise ``y``), the sampling grid of ``torch.nn.functional.interpolate``
    (``align_corners=False``) and of PIL's bilinear upscaling, with coordinates clamped
    to the image. ``flip`` mirrors the grid (a horizontal flip of the output, free).
    Boxes larger than ``size`` pixels are point-sampled (no antialiasing).

    Args:
        images: uint8 or float ``[K, C, H, W]`` (any device).
        boxes: float ``[K, 4]`` ``(x1, y1, x2, y2)`` in continuous pixel coordinates of
            ``images`` (pixel ``j`` spans ``[j, j + 1)``).
        size: output height and width.
        flip: bool ``[K]``: mirror these outputs horizontally.

    Returns:
        float32 ``[K, C, size, size]`` on ``images.device``, in the input's value range.
    """
    import torch.nn.functional as F

    x = images.to(torch.float32)
    k, _, h, w = x.shape
    b = boxes.to(device=x.device, dtype=torch.float32)
    cell = (torch.arange(size, device=x.device, dtype=torch.float32) + 0.5) / size  # [S]
    if flip is not None:
        cell_x = torch.where(flip.to(x.device).view(-1, 1), cell.flip(0).view(1, -1), cell.view(1, -1))
    else:
        cell_x = cell.view(1, -1)
    xs = b[:, 0:1] + cell_x * (b[:, 2:3] - b[:, 0:1])  # continuous coordinates [K, S]
    ys = b[:, 1:2] + cell.view(1, -1) * (b[:, 3:4] - b[:, 1:2])
    gx, gy = xs * (2.0 / w) - 1.0, ys * (2.0 / h) - 1.0  # grid_sample, align_corners=False
    grid = torch.stack([gx.unsqueeze(1).expand(k, size, size), gy.unsqueeze(2).expand(k, size, size)], dim=-1)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_resized_crop_batch(frames: Tensor, generator: torch.Generator | None = None, orig_hw: Tensor | None = None,
                              size: int = 224, scale: tuple[float, float] = (0.08, 1.0),
                              ratio: tuple[float, float] = (3 / 4, 4 / 3), flip_p: float = 0.5,
                              normalize: bool = True, mean: Sequence[float] = IMAGENET_MEAN,
                              std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """The official train transform on a batch of cached frames, on their device.

    ``RandomResizedCrop(size, scale, ratio)`` + ``RandomHorizontalFlip(flip_p)`` +
    ``ToTensor`` + ``Normalize(ImageNet)``, parameters drawn independently per frame.
    Boxes are drawn in the original frame's pixels (``orig_hw``) and mapped to the
    cached resolution (see the module docstring for what this approximates); values
    are rounded to uint8 levels as PIL's output.

    Args:
        frames: uint8 ``[B, T, 3, Hc, Wc]`` cached frames (any device).
        generator: CPU random source (boxes and flips).
        orig_hw: int ``[B, 2]`` original ``(H, W)`` per clip; default ``(Hc, Wc)``.
        normalize: apply ``Normalize(mean, std)`` (else values in ``[0, 1]``).
        mean / std: per-channel normalisation (ImageNet by default).

    Returns:
        float32 ``[B, T, 3, size, size]``.
    """
    b, t, c, hc, wc = frames.shape
    if orig_hw is None:
        orig_hw = torch.tensor([[hc, wc]]).expand(b, 2)
    hw = orig_hw.to("cpu").long().repeat_interleave(t, dim=0)  # [B*T, 2]
    box = sample_crop_boxes(hw, generator, scale, ratio).double()  # (top, left, h, w) original pixels
    flip = torch.rand(b * t, generator=generator) < flip_p
    sy, sx = hc / hw[:, 0].double(), wc / hw[:, 1].double()
    xyxy = torch.stack([box[:, 1] * sx, box[:, 0] * sy, (box[:, 1] + box[:, 3]) * sx, (box[:, 0] + box[:, 2]) * sy], 1)
    out = resized_crop_batch(frames.reshape(b * t, c, hc, wc), xyxy, size, flip).round_().div_(255)
    if normalize:
        out = _normalize_(out, mean, std)
    return out.reshape(b, t, c, size, size)


# -- the cache ------------------------------------------------------------------------------
def _clip_frames(folder: Path) -> tuple[list[Path], int]:
    """Sorted frame images (``.jpg``, ``.jpeg``, ``.png``) of one clip folder and the folder's entry count."""
    if not folder.is_dir():
        raise DataError(f"missing frame folder {folder}; {LAYOUT_HINT}")
    names = sorted(os.listdir(folder))
    jpgs = [folder / n for n in names if n.lower().endswith(FRAME_SUFFIXES)]
    if not jpgs:
        raise DataError(f"no .jpg/.png frames in {folder}; {LAYOUT_HINT}")
    return jpgs, len(names)


def _decode(path: Path, size: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    """PIL decode + RGB + ``Resize(size)`` (PIL bilinear) -> uint8 ``[3, H, W]`` and the original ``(H, W)``."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except Exception as e:  # noqa: BLE001 - any PIL failure is a corrupt frame
        raise DataError(f"cannot decode frame {path}: {type(e).__name__}: {e}") from None
    orig = (img.height, img.width)
    if size is not None and orig != tuple(size):
        img = img.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1), orig


class FrameCache:
    """A decoded, resized frame cache ``[N, T, 3, H, W]`` uint8 on disk (see the module docstring).

    Build once with :meth:`build`, open with ``FrameCache(path)``. Picklable (each
    process maps the file itself), so it can be used in DataLoader workers.

    Attributes:
        path: the cache folder (``frames.npy`` + ``index.json``).
        clips: clip ids, in cache order.
        num_frames: int64 ``[N]`` frames stored per clip (slots ``>= num_frames`` are zero).
        num_files: int64 ``[N]`` entries in each clip folder (what the official loader counts).
        orig_hw: int64 ``[N, 2]`` original frame ``(H, W)`` per clip.
        shape: ``(N, T, 3, H, W)``.
    """

    DATA_FILE = "frames.npy"
    INDEX_FILE = "index.json"
    VERSION = 1

    def __init__(self, path: str | os.PathLike, release_pages: bool = True) -> None:
        self.path = Path(path)
        index_file = self.path / self.INDEX_FILE
        try:
            index = json.loads(index_file.read_text())
        except FileNotFoundError:
            raise DataError(f"no frame cache at {self.path} ({self.INDEX_FILE} missing); build it with FrameCache.build") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"corrupt frame cache index {index_file} ({e}); delete {self.path} and rebuild it") from None
        if index.get("version") != self.VERSION:
            raise DataError(f"frame cache {self.path} has version {index.get('version')}, expected {self.VERSION}; rebuild it")
        self.index = index
        self.clips: list[str] = list(index["clips"])
        self.num_frames = torch.tensor(index["num_frames"], dtype=torch.long)
        self.num_files = torch.tensor(index["num_files"], dtype=torch.long)
        self.orig_hw = torch.tensor(index["orig_hw"], dtype=torch.long).reshape(-1, 2)
        self.shape = tuple(index["shape"])
        self.offset = int(index["offset"])
        self.release_pages = release_pages
        expected = self.offset + int(np.prod(self.shape))
        data = self.path / self.DATA_FILE
        if not data.is_file() or data.stat().st_size != expected:
            raise DataError(f"frame cache data {data} is missing or has the wrong size (expected {expected} bytes); "
                            f"delete {self.path} and rebuild it")
        self._mm: mmap.mmap | None = None
        self._arr: np.ndarray | None = None

    # mapping ----------------------------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "release_pages": self.release_pages}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["release_pages"])  # type: ignore[misc]

    def array(self) -> np.ndarray:
        """The whole cache as a read-only uint8 ``[N, T, 3, H, W]`` array on the mapped file."""
        if self._arr is None:
            with open(self.path / self.DATA_FILE, "rb") as fh:
                self._mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            self._arr = np.ndarray(self.shape, dtype=np.uint8, buffer=self._mm, offset=self.offset)
        return self._arr

    def release(self) -> None:
        """Drop the mapped pages from this process (they stay in the OS page cache)."""
        if self._mm is not None and hasattr(mmap, "MADV_DONTNEED"):
            self._mm.madvise(mmap.MADV_DONTNEED)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def frame_hw(self) -> tuple[int, int]:
        return int(self.shape[3]), int(self.shape[4])

    # access -----------------------------------------------------------------------------
    def gather(self, clips: Tensor | Sequence[int], frame_numbers: Tensor | None = None) -> Tensor:
        """Cached frames of a batch of clips.

        Args:
            clips: int ``[B]`` cache indices.
            frame_numbers: int ``[B, P]`` 1-based frame numbers (``frame_0000N.jpg`` -> N,
                i.e. rank in the sorted folder); default all ``T`` slots.

        Returns:
            uint8 ``[B, P, 3, H, W]`` (a copy, safe to pin or move).

        Raises:
            DataError: a frame number outside ``1..num_frames`` of its clip.
        """
        idx = torch.as_tensor(clips, dtype=torch.long).reshape(-1)
        if frame_numbers is None:
            slots = torch.arange(self.shape[1]).expand(idx.shape[0], -1)
        else:
            fn = torch.as_tensor(frame_numbers, dtype=torch.long).reshape(idx.shape[0], -1)
            bad = (fn < 1) | (fn > self.num_frames[idx].unsqueeze(1))
            if bool(bad.any()):
                b = int(bad.any(1).nonzero()[0, 0])
                raise DataError(f"clip {self.clips[int(idx[b])]!r} has {int(self.num_frames[idx[b]])} cached frames; "
                                f"frame numbers {fn[b].tolist()} requested (cache {self.path})")
            slots = fn - 1
        arr = self.array()
        out = torch.from_numpy(arr[idx.numpy()[:, None], slots.numpy()])
        if self.release_pages:
            self.release()
        return out

    def batch(self, clips: Tensor | Sequence[int], train: bool, generator: torch.Generator | None = None,
              device: torch.device | str | None = None, pick: int = 3, size: int = 224,
              train_choice: TrainChoice = "ks-official", eval_choice: EvalChoice = "ks-official") -> Tensor:
        """The visual input of a batch as the official KS loader builds it, from the cache.

        Frames chosen by :func:`segment_frames` over each clip's cached frames; eval:
        :func:`normalize_frames` (bit-identical to the per-item decode); train:
        :func:`random_resized_crop_batch`.

        Returns:
            float32 ``[B, pick, 3, size, size]`` on ``device``.
        """
        idx = torch.as_tensor(clips, dtype=torch.long).reshape(-1)
        fn = segment_frames(self.num_frames[idx], pick, train, generator, train_choice, eval_choice) + 1
        frames = self.gather(idx, fn)
        if device is not None and torch.device(device).type == "cuda":
            frames = frames.pin_memory().to(device, non_blocking=True)
        if train:
            return random_resized_crop_batch(frames, generator, self.orig_hw[idx], size=size)
        if self.frame_hw != (size, size):
            raise DataError(f"frame cache {self.path} holds {self.frame_hw} frames; the eval transform needs "
                            f"({size}, {size}): build it with size=({size}, {size})")
        return normalize_frames(frames)

    # building ---------------------------------------------------------------------------
    @classmethod
    def build(cls, visual_root: str | os.PathLike | None, clip_ids: Sequence[str], path: str | os.PathLike, *,
              size: tuple[int, int] | None = (224, 224), max_frames: int | None = None, workers: int = 2,
              progress: bool = False, folders: Sequence[str | os.PathLike] | None = None) -> "FrameCache":
        """Decode ``<visual_root>/<clip>/*.jpg`` for ``clip_ids`` into a cache at ``path``.

        Each frame is decoded with PIL, converted to RGB and resized to ``size`` (PIL
        bilinear, as ``transforms.Resize(size)``; ``None`` keeps the original size, which
        must then be equal for all frames). The data file is written sequentially and
        the finished folder moved into place with one rename, so a killed build leaves
        no cache (only a ``.<name>.tmp-*`` folder that the next build removes). An
        existing cache built from the same inputs is opened instead of rebuilt.

        Args:
            visual_root: folder of clip folders (``None`` with ``folders``).
            clip_ids: clips to cache, in order (cache index = position).
            path: cache folder to create.
            size: ``(H, W)`` of cached frames.
            max_frames: cache at most this many frames per clip (default: all).
            workers: decoding threads.
            progress: show a tqdm progress bar.
            folders: the frame folder of each clip (default ``<visual_root>/<clip id>``).

        Raises:
            DataError: a missing clip folder, a folder without JPEGs, an unreadable frame.
        """
        path = Path(path)
        if folders is None:
            if visual_root is None:
                raise DataError("FrameCache.build needs visual_root or folders")
            root = Path(visual_root)
            dirs = [root / c for c in clip_ids]
        else:
            dirs = [Path(f) for f in folders]
            if len(dirs) != len(clip_ids):
                raise DataError(f"FrameCache.build: {len(dirs)} folders for {len(clip_ids)} clips")
            root = Path(os.path.commonpath([str(d.resolve()) for d in dirs])) if dirs else Path(".")
        listing = [_clip_frames(d) for d in dirs]
        files = [f[: max_frames] if max_frames else f for f, _ in listing]
        key = hashlib.sha256(json.dumps({
            "root": str(root.resolve()), "clips": list(clip_ids), "size": list(size) if size else None,
            "folders": None if folders is None else [str(d.resolve()) for d in dirs],
            "files": [[p.name for p in f] for f in files], "stamp": [[p.stat().st_mtime_ns for p in f] for f in files],
        }).encode()).hexdigest()
        if (path / cls.INDEX_FILE).is_file():
            try:
                old = cls(path)
                if old.index.get("key") == key:
                    return old
            except DataError:
                pass
        for stale in path.parent.glob(f".{path.name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        n, t = len(files), max((len(f) for f in files), default=0)
        first = _decode(files[0][0], size) if n else (np.zeros((3, 1, 1), np.uint8), (1, 1))
        h, w = first[0].shape[1:]
        shape = (n, t, 3, int(h), int(w))
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        from tqdm.auto import tqdm

        try:
            orig_hw: list[list[int]] = []
            with open(tmp / cls.DATA_FILE, "wb") as fh, ThreadPoolExecutor(max_workers=max(1, workers)) as ex:
                np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False, "shape": shape})
                offset = fh.tell()
                clip_bytes = t * 3 * h * w
                blank = np.zeros((t, 3, h, w), np.uint8)

                def load(frame_files: list[Path]) -> tuple[np.ndarray, tuple[int, int]]:
                    block = blank.copy()
                    orig = (0, 0)
                    for k, p in enumerate(frame_files):
                        img, o = _decode(p, size)
                        if img.shape != (3, h, w):
                            raise DataError(f"frame {p} is {img.shape[1]}x{img.shape[2]} but the cache holds {h}x{w}; "
                                            f"build with a fixed size=(H, W)")
                        block[k] = img
                        if k == 0:
                            orig = o  # frames of one clip share the video's size
                    return block, orig

                bar = tqdm(total=n, desc="frame cache", unit="clip", disable=not progress)
                for block, orig in ex.map(load, files):
                    fh.write(block.tobytes())
                    orig_hw.append(list(orig))
                    bar.update(1)
                bar.close()
                fh.flush()
                os.fsync(fh.fileno())
                assert fh.tell() == offset + n * clip_bytes
            index = {
                "version": cls.VERSION, "key": key, "source": str(root), "size": list(size) if size else None,
                "shape": list(shape), "offset": offset, "clips": list(clip_ids),
                "num_frames": [len(f) for f in files], "num_files": [c for _, c in listing], "orig_hw": orig_hw,
                "resize": "PIL bilinear (torchvision Resize on PIL images)",
            }
            atomic_write_text(tmp / cls.INDEX_FILE, json.dumps(index) + "\n")
            if path.exists():
                trash = path.parent / f".{path.name}.tmp-old-{uuid.uuid4().hex[:8]}"
                os.replace(path, trash)
                os.replace(tmp, path)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(path)


__all__ = [
    "IMAGENET_MEAN", "IMAGENET_STD", "EVAL_CHOICES", "TRAIN_CHOICES", "EvalChoice", "FrameCache", "TrainChoice",
    "segment_frames", "segment_frame_numbers", "normalize_frames",
    "sample_crop_boxes", "resized_crop_batch", "random_resized_crop_batch",
]
