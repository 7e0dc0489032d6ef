"""Which decoded video frames ``prepare`` keeps: the official frame-extraction policies.

`FRAME_POLICIES` maps a policy name to ``fn(total, video_fps, rate, count) -> int64
indices`` (0-based decoded-frame indices):

- ``centre`` (OGM-GE ``pre-processing/AVE&CREMAD/video2frame-1fps.py``, ``deal_video``;
  its ``__main__`` prepares the Kinetics ``train-frames-1fps`` folders): a fixed
  number of frames (10, the 10 s of a clip), frame ``i`` at the 1-based position
  ``round((i + 0.5) * fps)`` (Python rounding); positions past the end wrap into the
  last second of the video, so short clips repeat their last second's frames.
- ``start`` (OGM-GE ``data/VGGSound/video_preprocessing.py`` and
  ``data/CREMAD/video_preprocessing.py``, ``video2frame_update``): the first frame of
  every second (``index % int(fps) == 0``), as many as the video has.

Which frames a *reader* takes from a prepared frame folder is another rule
(`mmcoop.media.frames.segment_frames`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from mmcoop.utils.registry import Registry

FramePolicy = Callable[..., np.ndarray]
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
