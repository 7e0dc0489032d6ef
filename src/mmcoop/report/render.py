"""How one sample of one modality is drawn in the report: a ``render`` hook per modality kind.

A renderer takes the sample as the model saw it (eval transforms, degradation included),
``x`` of the modality's per-sample shape, and returns a small piece of media for the
per-sample explorer: ``{"img": data URI}`` (a PNG thumbnail, at most
`THUMB_MAX` pixels on its longer side) or ``{"svg": markup}``. Built-ins:

============== =========================================================================
kind           drawn as
============== =========================================================================
``image``      the picture (1 channel grey, 3 channels RGB; each image scaled to its range)
``spectrogram`` the first channel, low frequencies at the bottom, viridis colours
``frames``     a strip of up to `MAX_FRAMES` evenly spaced frames (each about a thumbnail)
``sequence``   a heat map ``[D, T]`` (time left to right)
``vector``     a small bar plot (SVG), at most `MAX_BARS` bars (evenly spaced entries)
============== =========================================================================

Raw audio (`mmcoop.data.sample_waveforms`, e.g. the FSDD recording of an
avmnist sample) becomes ``{"audio": data URI}`` of a 16-bit PCM WAV (`render_waveform`).

A kind without a renderer (a plugin's own kind) shows values only. Register one with::

    from mmcoop.report.render import RENDERERS

    @RENDERERS.register("point-cloud")
    def draw(x: np.ndarray, spec) -> dict[str, str]:
        return {"img": png_data_uri(my_projection(x))}
"""

from __future__ import annotations

import base64
import io
import math
import wave
from collections.abc import Callable
from typing import Any

import numpy as np

from mmcoop.utils.registry import Registry

#: Longest side of a thumbnail, in pixels (smaller images are upscaled by a whole factor to at least `THUMB_MIN`).
THUMB_MAX = 96
THUMB_MIN = 48
MAX_FRAMES = 4
MAX_BARS = 48
#: Longest audio clip embedded, in seconds (longer recordings are cut to their start).
MAX_AUDIO_S = 4.0

Renderer = Callable[[np.ndarray, Any], dict[str, str]]
#: Modality kind -> renderer ``fn(x [*shape], spec) -> {"img": uri} | {"svg": markup}``.
RENDERERS: Registry[Renderer] = Registry("renderer")


def png_data_uri(pixels: np.ndarray, max_side: int = THUMB_MAX, min_height: int | None = None) -> str:
    """``data:image/png;base64,...`` of uint8 pixels ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB).

    Args:
        pixels: the picture.
        max_side: longest side of the result (larger pictures are scaled down).
        min_height: upscale (by a whole factor) until the height reaches this; default: until the
            longest side reaches `THUMB_MIN`.
    """
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(pixels))
    h, w = pixels.shape[:2]
    side = max(h, w)
    have, want = (h, min_height) if min_height else (side, THUMB_MIN)
    scale = float(math.ceil(want / have)) if have < want else 1.0  # small: whole-pixel upscaling
    scale = min(scale, max_side / side)
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Scale ``x`` to ``[0, 255]`` by its own finite range (a constant image is mid-grey)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(x.min()), float(x.max())
    if hi - lo < 1e-12:
        return np.full(x.shape, 128, np.uint8)
    return np.round(255 * (x - lo) / (hi - lo)).astype(np.uint8)


def _chw_pixels(x: np.ndarray) -> np.ndarray:
    """``[C, H, W]`` -> uint8 ``[H, W]`` (one channel, or the mean of other than 3) or ``[H, W, 3]``."""
    if x.shape[0] == 3:
        return _to_uint8(np.moveaxis(x, 0, -1))
    return _to_uint8(x[0] if x.shape[0] == 1 else x.mean(0))


@RENDERERS.register("image")
def render_image(x: np.ndarray, spec: Any = None) -> dict[str, str]:
    """A picture ``[C, H, W]``."""
    return {"img": png_data_uri(_chw_pixels(x))}


def _viridis(x: np.ndarray) -> np.ndarray:
    from matplotlib import colormaps

    return (colormaps["viridis"](_to_uint8(x))[..., :3] * 255).astype(np.uint8)


@RENDERERS.register("spectrogram")
def render_spectrogram(x: np.ndarray, spec: Any = None) -> dict[str, str]:
    """A spectrogram ``[C, F, T]``: channel 0, frequency upwards, viridis."""
    return {"img": png_data_uri(_viridis(np.asarray(x)[0][::-1]))}


@RENDERERS.register("frames")
def render_frames(x: np.ndarray, spec: Any = None) -> dict[str, str]:
    """Video frames ``[T, C, H, W]`` as a strip of up to `MAX_FRAMES` evenly spaced frames."""
    t = x.shape[0]
    pick = np.unique(np.round(np.linspace(0, t - 1, min(t, MAX_FRAMES))).astype(int))
    frames = [_chw_pixels(x[i]) for i in pick]
    gap = np.full((frames[0].shape[0], 2, *frames[0].shape[2:]), 255, np.uint8)
    strip = np.concatenate([p for f in frames for p in (f, gap)][:-1], axis=1)
    return {"img": png_data_uri(strip, max_side=THUMB_MAX * len(frames), min_height=THUMB_MIN)}


@RENDERERS.register("sequence")
def render_sequence(x: np.ndarray, spec: Any = None) -> dict[str, str]:
    """A sequence ``[T, D]`` as a heat map (features up, time right)."""
    return {"img": png_data_uri(_viridis(np.asarray(x).T[::-1]))}


@RENDERERS.register("vector")
def render_vector(x: np.ndarray, spec: Any = None) -> dict[str, str]:
    """A feature vector ``[D]`` as a small SVG bar plot (zero line in the middle)."""
    v = np.nan_to_num(np.asarray(x, dtype=np.float64).reshape(-1))
    if v.size > MAX_BARS:
        v = v[np.round(np.linspace(0, v.size - 1, MAX_BARS)).astype(int)]
    w, h = 96, 40
    scale = float(np.abs(v).max()) or 1.0
    bw = w / max(v.size, 1)
    bars = []
    for i, a in enumerate(v):
        y = h / 2 - (h / 2 - 1) * a / scale
        top, height = min(y, h / 2), abs(y - h / 2)
        bars.append(
            f'<rect x="{i * bw:.1f}" y="{top:.1f}" width="{max(bw - 0.5, 0.5):.1f}" '
            f'height="{max(height, 0.3):.1f}" fill="{"#3b6ea8" if a >= 0 else "#c0504d"}"/>'
        )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">'
        f'<line x1="0" y1="{h / 2}" x2="{w}" y2="{h / 2}" stroke="#999" stroke-width="0.5"/>{"".join(bars)}</svg>'
    )
    return {"svg": svg}


def render_waveform(wave_: np.ndarray, rate: int) -> dict[str, str]:
    """Mono audio ``[T]`` at ``rate`` Hz -> ``{"audio": "data:audio/wav;base64,..."}`` (16-bit PCM, peak-normalised,
    at most `MAX_AUDIO_S` seconds)."""
    x = np.nan_to_num(np.asarray(wave_, dtype=np.float64).reshape(-1))[: int(MAX_AUDIO_S * rate)]
    peak = float(np.abs(x).max()) if x.size else 0.0
    pcm = np.round(x / peak * 32000).astype("<i2") if peak > 0 else np.zeros(x.size, "<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())
    return {"audio": "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode("ascii")}


def render(kind: str, x: np.ndarray, spec: Any = None) -> dict[str, str] | None:
    """The media of one sample of a modality of ``kind``; ``None`` when no renderer is registered for it."""
    if kind not in RENDERERS:
        return None
    return RENDERERS.get(kind)(np.asarray(x), spec)


__all__ = [
    "MAX_AUDIO_S",
    "MAX_BARS",
    "MAX_FRAMES",
    "RENDERERS",
    "THUMB_MAX",
    "png_data_uri",
    "render",
    "render_waveform",
]
