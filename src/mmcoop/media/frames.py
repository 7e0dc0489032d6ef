"""Frames of a clip folder: which frames a sample takes (the one rule), and the decoded frame cache.

`segment_frames` (and its one-clip form `frame_indices`) is the package's one
frame-choice rule; `list_frames` lists a clip folder's frame images; `FrameCache`
is the fast frame path: clip-frame JPEGs decoded once into a uint8 memory-mapped cache and
augmented on the device (the batched transforms are in `mmcoop.media.transforms`).

The official Kinetics-Sounds loader (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation,
``code/datasets/dataloader.py``, ``AV_KS_Dataset.__getitem__``; the same in OGM-GE and
BalanceBenchmark ``KS_dataset.py``) decodes 3 JPEG frames per sample at every epoch
with PIL and applies, per frame,

- train: ``RandomResizedCrop(224)`` (scale (0.08, 1), ratio (3/4, 4/3)) +
  ``RandomHorizontalFlip()`` + ``ToTensor()`` + ``Normalize(ImageNet)``;
- eval: ``Resize((224, 224))`` + ``ToTensor()`` + ``Normalize(ImageNet)``.

`FrameCache` decodes every frame once with the eval resize (PIL bilinear, what
``torchvision.transforms.Resize`` does to a PIL image) into ``frames.npy``, a uint8
``[N, T, 3, H, W]`` array (``H = W = 224`` by default), with ``index.json`` beside it
(clip ids, frames and files per clip, original frame sizes). Batches are gathered with
one NumPy fancy-index call on a read-only ``mmap``; the mapped pages are released
after each gather (``madvise(MADV_DONTNEED)``) so the process RSS stays flat however
large the cache is (the OS page cache still serves repeated reads).

What is equal and what is approximated:

- **eval: bit-identical.** `normalize_frames` on cached frames equals
  ``Normalize(ToTensor(Resize((224, 224))(Image.open(f).convert('RGB'))))`` exactly
  (same PIL decode and resize, same float32 operations).
- **train crop boxes: same distribution.** `sample_crop_boxes` draws
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

Frame selection (`segment_frames`, the one rule the readers' per-item decode uses
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
from mmcoop.media.clips import layout_error
from mmcoop.media.transforms import normalize_frames, random_resized_crop_batch
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.progress import show_progress

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")  # what a frame folder's images are
LAYOUT_HINT = "<visual root>/<clip id>/frame_00001.jpg, frame_00002.jpg, ... (one folder per clip)"


# -- frame selection ---------------------------------------------------------------------
TrainChoice = Literal["random", "fixed", "ks-official"]
EvalChoice = Literal["centre", "start", "ks-official"]
TRAIN_CHOICES: tuple[str, ...] = ("random", "fixed", "ks-official")
EVAL_CHOICES: tuple[str, ...] = ("centre", "start", "ks-official")


def segment_frames(
    num_files: Tensor,
    num: int = 3,
    train: bool = False,
    generator: torch.Generator | None = None,
    train_choice: TrainChoice = "ks-official",
    eval_choice: EvalChoice = "ks-official",
) -> Tensor:
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


def segment_frame_numbers(
    num_files: Tensor, pick: int = 3, train: bool = False, generator: torch.Generator | None = None
) -> Tensor:
    """1-based frame numbers the official KS loader opens, for a batch of clips.

    `segment_frames` with ``ks-official`` choices, plus one.

    Args:
        num_files: int ``[B]`` frames in each clip's folder.
        pick: frames per sample (3 in the paper).
        train: random frame within each segment (else the fixed eval frame).
        generator: random source for ``train``.

    Returns:
        int64 ``[B, pick]`` (``frame_0000N.jpg`` -> ``N`` for the official file names).
    """
    return segment_frames(num_files, pick, train, generator, "ks-official", "ks-official") + 1


def frame_indices(
    n: int,
    num: int,
    train: bool,
    gen: torch.Generator | None = None,
    train_choice: TrainChoice = "random",
    eval_choice: EvalChoice = "centre",
) -> list[int]:
    """0-based indices of the ``num`` frames taken from ``n`` sorted frames of one clip.

    One clip of `mmcoop.media.frames.segment_frames`, the package's one frame-choice
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


def list_frames(folder: Path, layout: str) -> list[Path]:
    """Image files of a frame folder, sorted by name (time order for zero-padded names)."""
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES)
    except (FileNotFoundError, NotADirectoryError):
        raise layout_error(f"missing frame folder {folder}", layout) from None
    if not files:
        raise layout_error(f"frame folder {folder} holds no .jpg/.png frames", layout)
    return files


# -- the cache ------------------------------------------------------------------------------
def _clip_frames(folder: Path) -> tuple[list[Path], int]:
    """Sorted frame images of one clip folder (`list_frames`) and the folder's entry count."""
    files = list_frames(folder, LAYOUT_HINT)
    return files, len(os.listdir(folder))


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

    Build once with `build`, open with ``FrameCache(path)``. Picklable (each
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
            raise DataError(
                f"no frame cache at {self.path} ({self.INDEX_FILE} missing); build it with FrameCache.build"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(
                f"corrupt frame cache index {index_file} ({e}); delete {self.path} and rebuild it"
            ) from None
        if index.get("version") != self.VERSION:
            raise DataError(
                f"frame cache {self.path} has version {index.get('version')}, expected {self.VERSION}; rebuild it"
            )
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
            raise DataError(
                f"frame cache data {data} is missing or has the wrong size (expected {expected} bytes); "
                f"delete {self.path} and rebuild it"
            )
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
                raise DataError(
                    f"clip {self.clips[int(idx[b])]!r} has {int(self.num_frames[idx[b]])} cached frames; "
                    f"frame numbers {fn[b].tolist()} requested (cache {self.path})"
                )
            slots = fn - 1
        arr = self.array()
        out = torch.from_numpy(arr[idx.numpy()[:, None], slots.numpy()])
        if self.release_pages:
            self.release()
        return out

    def batch(
        self,
        clips: Tensor | Sequence[int],
        train: bool,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        pick: int = 3,
        size: int = 224,
        train_choice: TrainChoice = "ks-official",
        eval_choice: EvalChoice = "ks-official",
    ) -> Tensor:
        """The visual input of a batch as the official KS loader builds it, from the cache.

        Frames chosen by `segment_frames` over each clip's cached frames; eval:
        `normalize_frames` (bit-identical to the per-item decode); train:
        `random_resized_crop_batch`.

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
            raise DataError(
                f"frame cache {self.path} holds {self.frame_hw} frames; the eval transform needs "
                f"({size}, {size}): build it with size=({size}, {size})"
            )
        return normalize_frames(frames)

    # building ---------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        visual_root: str | os.PathLike | None,
        clip_ids: Sequence[str],
        path: str | os.PathLike,
        *,
        size: tuple[int, int] | None = (224, 224),
        max_frames: int | None = None,
        workers: int = 2,
        progress: bool = False,
        folders: Sequence[str | os.PathLike] | None = None,
    ) -> "FrameCache":
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
        files = [f[:max_frames] if max_frames else f for f, _ in listing]
        key = hashlib.sha256(
            json.dumps(
                {
                    "root": str(root.resolve()),
                    "clips": list(clip_ids),
                    "size": list(size) if size else None,
                    "folders": None if folders is None else [str(d.resolve()) for d in dirs],
                    "files": [[p.name for p in f] for f in files],
                    "stamp": [[p.stat().st_mtime_ns for p in f] for f in files],
                }
            ).encode()
        ).hexdigest()
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
                            raise DataError(
                                f"frame {p} is {img.shape[1]}x{img.shape[2]} but the cache holds {h}x{w}; "
                                f"build with a fixed size=(H, W)"
                            )
                        block[k] = img
                        if k == 0:
                            orig = o  # frames of one clip share the video's size
                    return block, orig

                bar = tqdm(total=n, desc="frame cache", unit="clip", disable=not show_progress(progress))
                for block, orig in ex.map(load, files):
                    fh.write(block.tobytes())
                    orig_hw.append(list(orig))
                    bar.update(1)
                bar.close()
                fh.flush()
                os.fsync(fh.fileno())
                assert fh.tell() == offset + n * clip_bytes
            index = {
                "version": cls.VERSION,
                "key": key,
                "source": str(root),
                "size": list(size) if size else None,
                "shape": list(shape),
                "offset": offset,
                "clips": list(clip_ids),
                "num_frames": [len(f) for f in files],
                "num_files": [c for _, c in listing],
                "orig_hw": orig_hw,
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
