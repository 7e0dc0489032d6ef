"""Test helpers for videos: write small videos with PyAV, and resample PCM as ``mmcoop.media.decode`` does.

Used by the prepare tests (tests/media/test_prepare.py), the two-command end-to-end test and
``benchmarks/data_pipeline.py``; not part of the library (mmcoop reads videos, it never writes them).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np


def resample_audio(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample int16 ``[C, L]`` (or ``[L]``) PCM with libswresample as :func:`mmcoop.media.decode.decode_clip` does
    (the reference the prepare tests compare decoded audio with).

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
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i : i + step]), format="s16p", layout=layout)
        fr.sample_rate, fr.pts, fr.time_base = from_rate, i, Fraction(1, from_rate)
        chunks.extend(g.to_ndarray() for g in rs.resample(fr))
    chunks.extend(g.to_ndarray() for g in rs.resample(None))
    return np.concatenate(chunks, axis=1).astype(np.float32) / 32768.0


def mux_video(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    video_codec: str = "mpeg4",
    audio_codec: str = "pcm_s16le",
) -> Path:
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
                chunk = x[:, i : i + step]
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
