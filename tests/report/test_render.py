"""Renderers per modality kind: thumbnails that are the sample, bounded in size; audio as a WAV data URI."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np
from PIL import Image

from mmcoop.report.render import (
    RENDERERS,
    THUMB_MAX,
    png_data_uri,
    render,
    render_waveform,
)


def _png(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_image_grey_is_the_picture_scaled_to_its_range() -> None:
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 5:10, 3:20] = 2.0  # a bright bar on black, values outside [0, 1]
    px = _png(render("image", x)["img"])
    assert px.shape == (56, 56)  # upscaled 2x (nearest) to at least 48 px
    assert px[10:20, 6:40].min() == 255 and px[0:8].max() == 0 and px[30:].max() == 0


def test_rgb_image_keeps_channels_and_big_images_are_capped() -> None:
    x = np.zeros((3, 300, 200), np.float32)
    x[0] = 1.0  # red
    px = _png(render("image", x)["img"])
    assert max(px.shape[:2]) == THUMB_MAX and px.shape[2] == 3
    assert (px[..., 0] == 255).all() and (px[..., 1] == 0).all()


def test_spectrogram_low_frequencies_at_the_bottom() -> None:
    x = np.zeros((1, 64, 50), np.float32)
    x[0, :4] = 1.0  # energy in the lowest frequency bins
    px = _png(render("spectrogram", x)["img"]).astype(int)
    assert px.shape[:2] == (64, 50)  # between THUMB_MIN and THUMB_MAX: kept as is
    bottom, top = px[-3:].mean(), px[:3].mean()
    assert px[-1, 0].tolist() != px[0, 0].tolist() and bottom != top  # viridis: high value = yellow at the bottom
    assert px[-1, 0, 0] > 200 and px[0, 0, 2] > 60  # yellow vs dark purple


def test_frames_strip_has_at_most_four_frames() -> None:
    x = np.zeros((10, 3, 16, 16), np.float32)
    for t in range(10):
        x[t, :, t, :] = 1.0  # frame t: row t bright
    px = _png(render("frames", x)["img"])
    assert px.shape == (48, 210, 3)  # 4 frames of 16 px with 3 gaps of 2 px, upscaled 3x to 48 px high
    for j, t in enumerate((0, 3, 6, 9)):  # evenly spaced frames, left to right
        col = 3 * (18 * j + 5)
        assert px[3 * t + 1, col].tolist() == [255, 255, 255] and px[3 * t + 4, col].tolist() == [0, 0, 0]
    assert px[3, 48].tolist() == [255, 255, 255] and px[10, 49].tolist() == [255, 255, 255]  # white gaps
    big = _png(render("frames", np.random.default_rng(0).random((4, 3, 200, 200)))["img"])
    assert big.shape[1] == 4 * THUMB_MAX  # large frames: about one thumbnail each


def test_vector_is_an_svg_bar_plot_with_signs() -> None:
    svg = render("vector", np.array([1.0, -2.0, 0.5]))["svg"]
    assert svg.startswith("<svg") and svg.count("<rect") == 3
    assert svg.count("#c0504d") == 1 and svg.count("#3b6ea8") == 2  # one negative bar
    many = render("vector", np.arange(500.0))["svg"]
    assert many.count("<rect") == 48


def test_unknown_kind_has_no_renderer_and_registration() -> None:
    assert render("point-cloud", np.zeros(3)) is None
    assert {"image", "spectrogram", "frames", "sequence", "vector"} <= set(RENDERERS.names())


def test_waveform_is_a_playable_wav() -> None:
    t = np.arange(8000) / 8000
    uri = render_waveform(0.25 * np.sin(2 * np.pi * 440 * t), 8000)["audio"]
    assert uri.startswith("data:audio/wav;base64,")
    with wave.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, 8000)
        pcm = np.frombuffer(w.readframes(8000), "<i2")
    assert np.abs(pcm).max() == 32000  # peak-normalised
    long = render_waveform(np.ones(8000 * 10), 8000)["audio"]
    with wave.open(io.BytesIO(base64.b64decode(long.split(",", 1)[1]))) as w:
        assert w.getnframes() == 4 * 8000  # capped at MAX_AUDIO_S


def test_png_data_uri_upscales_tiny_images_by_a_whole_factor() -> None:
    px = _png(png_data_uri(np.array([[0, 255, 0], [255, 0, 255]], np.uint8)))
    assert px.shape == (32, 48)  # 16x: the first whole factor reaching 48 px
    assert px[:16, :16].max() == 0 and px[:16, 16:32].min() == 255 and px[16:, :16].min() == 255
