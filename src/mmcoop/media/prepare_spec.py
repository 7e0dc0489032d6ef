"""What ``mmcoop data prepare`` writes per dataset (`PrepareSpec`, registered beside each dataset) and reports.

Each dataset module registers its spec with `register_prepare_spec` (e.g.
`mmcoop.datasets.kinetics_sounds`); `PREPARE_SPECS` imports the dataset modules on
first read. `ClipJob` is one video to prepare and `PrepareReport` the outcome of a
run (``prepare_report.json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mmcoop.utils.registry import Registry


@dataclass(frozen=True)
class PrepareSpec:
    """How ``prepare`` writes one dataset.

    Attributes:
        name: dataset name.
        visual_dir: folder of frame folders (``<out>/<visual_dir>/<split>/<id>/``).
        audio_dir: folder of audio files (``<out>/<audio_dir>/<split>/<id>.<audio_ext>``).
        audio_ext: ``npy`` (``np.save``), ``pkl`` (pickled array) or ``wav`` (16-bit PCM).
        sample_rate: rate the audio is resampled to (Hz).
        spectrogram: name in `SPECTROGRAMS` (``None`` for ``wav``).
        frame_policy: name in `FRAME_POLICIES`.
        num_frames: frames per clip at 1 fps (``None``: one per second of video).
        jpeg_quality: JPEG quality (75: imageio's default, used by ``video2frame-1fps.py``;
            95: OpenCV's ``imencode`` default, used by ``video_preprocessing.py``).
        channels: ``first`` (channel 0, as ``kaldi.fbank`` on a stereo wav) or ``mean``.
        source: where the official layout and parameters come from.
        index_file: split-file path template (``{split}``) written when labels are known,
            relative to ``<out>``; ``None``: this dataset's index is not written by prepare.
        index_line: one line of a split file (``{split}``, ``{id}``, ``{label}`` index, ``{name}`` class).
        layouts: alternative names, e.g. ``{"official": {"visual_dir": ..., "audio_dir": ...,
            "index_file": ...}}`` (selected with ``layout=``).
    """

    name: str
    visual_dir: str
    audio_dir: str
    audio_ext: str
    sample_rate: int
    spectrogram: str | None
    frame_policy: str
    num_frames: int | None
    jpeg_quality: int
    channels: str
    source: str
    index_file: str | None = None
    index_line: str = "{split}/{id} {label}"
    layouts: dict[str, dict[str, str]] = field(default_factory=dict)

    def frames_dir(self, out: Path, split: str, clip: str) -> Path:
        return out / self.visual_dir / split / clip if split else out / self.visual_dir / clip

    def audio_path(self, out: Path, split: str, clip: str) -> Path:
        name = f"{clip}.{self.audio_ext}"
        return out / self.audio_dir / split / name if split else out / self.audio_dir / name


PREPARE_SPECS: Registry[PrepareSpec] = Registry("prepare dataset", builtins="mmcoop.datasets")


def register_prepare_spec(spec: PrepareSpec) -> PrepareSpec:
    """Register ``spec`` under ``spec.name`` (called beside the dataset's reader)."""
    return PREPARE_SPECS.register(spec.name)(spec)


@dataclass(frozen=True)
class ClipJob:
    """One video to prepare: ``video`` -> ``<split>/<clip>`` outputs; ``label``: its class name ("" if unknown)."""

    video: str
    split: str
    clip: str
    label: str = ""


@dataclass
class PrepareReport:
    """Outcome of one `prepare_videos` run (also written to ``<out>/prepare_report.json``).

    Attributes:
        dataset, videos, out: the arguments.
        total: videos found.
        prepared: clips written by this run.
        skipped: clips whose outputs already existed.
        failures: ``{"video", "clip", "error"}`` for every video that could not be prepared.
        seconds: wall-clock time of the run.
        params: the dataset's preparation settings used.
        classes: class names (index = position) when labels were given.
        splits: clips per split in the written index files.
        index_files: split files and ``classes.json`` written by this run.
        notes: what the run decided for the user (a carved val split, unwritten index files).
    """

    dataset: str
    videos: str
    out: str
    total: int = 0
    prepared: int = 0
    skipped: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)
    index_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def clips_per_s(self) -> float:
        return self.prepared / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(failed=self.failed, clips_per_s=round(self.clips_per_s, 3))
        return d
