"""Image transforms of the official pipelines: ImageNet normalisation and RandomResizedCrop, per item and batched.

The official loaders apply per frame (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation
``code/datasets/dataloader.py`` ``AV_KS_Dataset.__getitem__``; the same in
GeWu-Lab/OGM-GE_CVPR2022 ``dataset/*.py``): train ``RandomResizedCrop(224)`` (scale
(0.08, 1), ratio (3/4, 4/3)) + ``RandomHorizontalFlip()``, eval ``Resize((224, 224))``, both
then ``ToTensor()`` and ``Normalize(ImageNet mean/std)``.

- `IMAGENET_MEAN` / `IMAGENET_STD` and `normalize_frames` (``ToTensor`` +
  ``Normalize``, bit-identical to torchvision) serve both paths.
- RandomResizedCrop's rule (10 candidate boxes of area ``U(scale)`` and log-uniform aspect
  ratio, sizes rounded half to even, the first that fits placed uniformly, else a centre crop
  with the ratio clamped) is written once (`_box_size`, `_centre_box`) and drawn in
  two ways: `resized_crop_params` draws per image exactly as torchvision's
  ``RandomResizedCrop.get_params`` (same calls, same order: with equal seeds the per-item
  readers equal torchvision bit for bit); `sample_crop_boxes` draws many images at
  once (same distribution, batched draws) for the frame cache.
- `transform_group` is the per-item PIL path, `random_resized_crop_batch` the
  batched one on cached frames (any device).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor

from mmcoop.errors import DataError
from mmcoop.media.clips import layout_error

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Crop = Literal["random-resized", "resize"]


def normalize_frames(
    frames: Tensor, mean: Sequence[float] | None = IMAGENET_MEAN, std: Sequence[float] | None = IMAGENET_STD
) -> Tensor:
    """``ToTensor`` + ``Normalize`` on uint8 frames, bit-identical to torchvision's.

    Args:
        frames: uint8 ``[..., C, H, W]`` (or float in ``[0, 255]``, left unchanged).
        mean / std: per-channel normalisation; ``None`` keeps ``x / 255`` in ``[0, 1]``.

    Returns:
        float32 ``[..., C, H, W]``: ``(x / 255 - mean) / std`` (the same three float32
            operations, done in place on one new tensor).

    Example:
        >>> normalize_frames(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), None, None).max().item()
        1.0
    """
    x = frames.to(torch.float32, copy=True).div_(255)
    return x if mean is None or std is None else _normalize_(x, mean, std)


def _normalize_(x: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """In place: ``x`` float in ``[0, 1]`` ``[..., 3, H, W]`` -> ``(x - mean) / std``."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
    return x.sub_(m).div_(s)


def _box_size(area: Tensor, aspect: Tensor) -> tuple[Tensor, Tensor]:
    """``(w, h)`` of RandomResizedCrop candidates: ``round(sqrt(area * aspect))``, ``round(sqrt(area / aspect))``.

    float64 tensors of any shape; rounding half to even (Python's ``round``, torchvision's).
    """
    return torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))


def _centre_box(height: Tensor, width: Tensor, ratio: tuple[float, float]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """RandomResizedCrop's fallback ``(top, left, h, w)``: the centre crop with the aspect ratio clamped into ``ratio``."""
    in_ratio = width / height
    rmin, rmax = min(ratio), max(ratio)
    w = torch.where(in_ratio > rmax, torch.round(height * rmax), width)
    h = torch.where(in_ratio < rmin, torch.round(width / rmin), height)
    return torch.div(height - h, 2, rounding_mode="floor"), torch.div(width - w, 2, rounding_mode="floor"), h, w


def resized_crop_params(
    width: int,
    height: int,
    gen: torch.Generator | None,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random resized crop, drawn as torchvision's ``RandomResizedCrop``.

    Up to 10 tries of an area fraction ``U(scale)`` and a log-uniform aspect ratio; the
    first crop that fits is placed uniformly; otherwise a centre crop clamped to ``ratio``.
    Draws come from ``gen`` in the same order as torchvision draws from the global generator.

    Example:
        >>> resized_crop_params(64, 48, torch.Generator().manual_seed(0))  # doctest: +SKIP
        (3, 20, 31, 26)
    """
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = math.exp(torch.empty(1).uniform_(float(log_ratio[0]), float(log_ratio[1]), generator=gen).item())
        ws, hs = _box_size(torch.tensor(target_area, dtype=torch.float64), torch.tensor(aspect, dtype=torch.float64))
        w, h = int(ws), int(hs)
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=gen).item())
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=gen).item())
            return top, left, h, w
    box = _centre_box(
        torch.tensor(float(height), dtype=torch.float64), torch.tensor(float(width), dtype=torch.float64), ratio
    )
    top, left, h, w = (int(v) for v in box)
    return top, left, h, w


def sample_crop_boxes(
    hw: Tensor,
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> Tensor:
    """RandomResizedCrop boxes for many images at once (``RandomResizedCrop.get_params``'s distribution).

    Each image gets ``attempts`` candidate boxes with area ``H * W * U(scale)`` and aspect
    ratio ``exp(U(log ratio))``, sized by the rule of `resized_crop_params`; the first
    candidate that fits is used with ``top ~ U{0..H-h}``, ``left ~ U{0..W-w}``; if none
    fits, the centre crop with the ratio clamped into ``ratio``.

    Args:
        hw: int ``[K, 2]`` image heights and widths (original pixels).
        generator: random source (on the CPU).

    Returns:
        int64 ``[K, 4]`` boxes ``(top, left, h, w)``.

    Example:
        >>> sample_crop_boxes(torch.tensor([[256, 340]]), torch.Generator().manual_seed(0)).shape
        torch.Size([1, 4])
    """
    hw = hw.to("cpu").long()
    k = hw.shape[0]
    H, W = hw[:, 0:1].double(), hw[:, 1:2].double()
    area = H * W
    target = area * (
        scale[0] + (scale[1] - scale[0]) * torch.rand(k, attempts, generator=generator, dtype=torch.float64)
    )
    lo, hi = np.log(ratio[0]), np.log(ratio[1])
    aspect = torch.exp(lo + (hi - lo) * torch.rand(k, attempts, generator=generator, dtype=torch.float64))
    w, h = _box_size(target, aspect)
    ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)
    first = ok.to(torch.uint8).argmax(1, keepdim=True)
    found = ok.any(1)
    w_s, h_s = w.gather(1, first).squeeze(1), h.gather(1, first).squeeze(1)
    H1, W1 = H.squeeze(1), W.squeeze(1)
    u = torch.rand(k, 2, generator=generator, dtype=torch.float64)
    top = (u[:, 0] * (H1 - h_s + 1)).floor()
    left = (u[:, 1] * (W1 - w_s + 1)).floor()
    ftop, fleft, fh, fw = _centre_box(H1, W1, ratio)
    out = torch.stack(
        [
            torch.where(found, top, ftop),
            torch.where(found, left, fleft),
            torch.where(found, h_s, fh),
            torch.where(found, w_s, fw),
        ],
        dim=1,
    )
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


def random_resized_crop_batch(
    frames: Tensor,
    generator: torch.Generator | None = None,
    orig_hw: Tensor | None = None,
    size: int = 224,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
    normalize: bool = True,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
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


def open_image(path: Path, mode: str, layout: str) -> Image.Image:
    """``Image.open(path).convert(mode)``; a missing or undecodable file is a `DataError`."""
    try:
        with Image.open(path) as im:
            return im.convert(mode)
    except FileNotFoundError:
        raise layout_error(f"missing frame {path}", layout) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"corrupt image {path}: {e}. Re-extract the frames of this clip") from None


def open_image_bytes(data: bytes, where: str, mode: str = "RGB") -> Image.Image:
    """An encoded image held in memory (e.g. one frame of an HDF5 file) -> ``Image`` in ``mode``.

    Raises:
        DataError: the bytes are not a decodable image (``where`` names them).
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.convert(mode)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"corrupt image {where}: {e}. Re-create this clip's frames") from None


def transform_group(
    images: Sequence[Image.Image],
    size: int,
    train: bool,
    gen: torch.Generator | None,
    crop: Crop = "random-resized",
    flip: bool = True,
) -> list[np.ndarray]:
    """One crop/flip draw applied to every image of ``images`` -> uint8 ``[size, size, C]`` arrays.

    Train: ``RandomResizedCrop(size)`` (or a plain resize with ``crop="resize"``) then a
    horizontal flip with probability 0.5; eval: ``Resize((size, size))``. Bilinear PIL
    resampling, as torchvision applies to PIL images.
    """
    w0, h0 = images[0].size
    if train and crop == "random-resized":
        top, left, h, w = resized_crop_params(w0, h0, gen)
        out = [im.crop((left, top, left + w, top + h)).resize((size, size), Image.Resampling.BILINEAR) for im in images]
    else:
        out = [im.resize((size, size), Image.Resampling.BILINEAR) for im in images]
    if train and flip and bool(torch.rand(1, generator=gen).item() < 0.5):
        out = [im.transpose(Image.Transpose.FLIP_LEFT_RIGHT) for im in out]
    return [np.array(im, dtype=np.uint8).reshape(size, size, -1) for im in out]
