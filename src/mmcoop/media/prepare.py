"""Raw videos -> the frame-folder + spectrogram layouts of the official audio-visual code, plus split files.

``mmcoop data prepare --dataset NAME --videos DIR --out DIR`` turns a folder of raw
videos into the layout the paper's readers load (Kinetics-Sounds as in the official
code of *Enhancing Multimodal Cooperation via Sample-level Modality Valuation*, CVPR
2024, repo GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation, ``code/datasets/
dataloader.py``, class ``AV_KS_Dataset``; AVE, VGGSound and CREMA-D as in GeWu-Lab/
OGM-GE_CVPR2022). Decoding: `mmcoop.media.decode` (PyAV); frames kept:
`mmcoop.media.frame_policies`; audio features: `mmcoop.media.features`.

Each dataset registers its `PrepareSpec` beside its reader
(``register_prepare_spec`` in `mmcoop.datasets.kinetics_sounds` etc.;
`PREPARE_SPECS` imports them on first read); labels and split
files: `mmcoop.media.prepare_index`. Each spec cites its source; e.g. Kinetics-Sounds writes
``visual/<split>/<id>/frame_0000N.jpg`` and ``audio/<split>/<id>.npy`` (or, with
``layout="official"``, ``ks_visual/...`` and ``ks_audio/...``).

``<split>`` is the first folder of a video below ``--videos`` (``train/x.mp4`` ->
``visual/train/x/``); a flat folder gives flat outputs. A second folder is the video's
class (``train/<class>/<id>.mp4``, the raw Kinetics layout); ``labels`` (a CSV of
``id,label[,split]``) gives or overrides classes and splits. With labels, datasets whose
spec has an index format (Kinetics-Sounds) get their split files (classes indexed in
sorted name order) and ``classes.json``; without a val split, a seeded, class-stratified
``val_fraction`` of train is moved to val (said in the report's notes). Frame files are
numbered from 1 with five digits (``frame_00001.jpg``), as the official readers open them.

Work is resumable (clips whose outputs all exist are skipped), parallel (``workers``
processes that exit with the parent, `mmcoop.media.workers`), shown with a progress
bar, and atomic per clip: outputs are written in ``<out>/.prepare-tmp/`` and moved into
place with ``os.replace`` (frame folder first, audio file last, so a clip is complete
exactly when its audio file exists; the official readers also test the audio file).
Unreadable videos are listed in ``<out>/prepare_report.json`` and skipped, never fatal.
Stale temporary folders left by a killed run are removed at the start of the next run;
run one ``prepare`` per output folder at a time. Split files are rewritten only if this
command wrote them (listed in the previous report); others are left alone.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from mmcoop.errors import ConfigError, DataError
from mmcoop.media.audio import write_wav
from mmcoop.media.decode import VIDEO_EXTENSIONS, decode_clip
from mmcoop.media.features import SPECTROGRAMS
from mmcoop.media.frame_policies import FRAME_POLICIES
from mmcoop.media.prepare_index import apply_labels, carve_val, read_labels, write_index
from mmcoop.media.prepare_spec import PREPARE_SPECS, ClipJob, PrepareReport, PrepareSpec
from mmcoop.media.workers import run_pool
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.progress import show_progress

REPORT_FILE = "prepare_report.json"
TMP_DIR = ".prepare-tmp"


# -- one clip --------------------------------------------------------------------------
@dataclass(frozen=True)
class PrepareOptions:
    """Run-wide settings passed to every worker (picklable)."""

    spec: PrepareSpec
    out: str
    fps: float = 1.0


def clip_outputs(spec: PrepareSpec, out: Path, job: ClipJob) -> tuple[Path, Path]:
    """``(frames folder, audio file)`` of ``job``."""
    return spec.frames_dir(out, job.split, job.clip), spec.audio_path(out, job.split, job.clip)


def clip_done(spec: PrepareSpec, out: Path, job: ClipJob) -> bool:
    """Whether all outputs of ``job`` exist (audio written last, frames folder non-empty)."""
    frames, audio = clip_outputs(spec, out, job)
    return audio.is_file() and frames.is_dir() and any(frames.iterdir())


def audio_feature(spec: PrepareSpec, audio: np.ndarray) -> np.ndarray:
    """Mix ``audio`` float32 ``[C, L]`` to mono per ``spec.channels``, then the dataset's spectrogram (or the wave)."""
    mono = audio[0] if spec.channels == "first" else audio.mean(axis=0)
    if spec.spectrogram is None:
        return mono.astype(np.float32)
    fn = SPECTROGRAMS.get(spec.spectrogram)
    return fn(torch.from_numpy(np.ascontiguousarray(mono)), sample_rate=spec.sample_rate).numpy().astype(np.float32)


def prepare_clip(job: ClipJob, opts: PrepareOptions) -> tuple[ClipJob, str | None]:
    """Prepare one clip atomically; never raises.

    Returns:
        ``(job, None)`` on success, ``(job, error message)`` otherwise.
    """
    from PIL import Image

    spec, out = opts.spec, Path(opts.out)
    tmp = out / TMP_DIR / f"{job.clip}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        count = spec.num_frames if spec.num_frames is None else int(round(spec.num_frames * opts.fps))
        policy = FRAME_POLICIES.get(spec.frame_policy)
        clip = decode_clip(job.video, spec.sample_rate, lambda total, fps: policy(total, fps, opts.fps, count))
        feat = audio_feature(spec, clip.audio)
        (tmp / "frames").mkdir(parents=True)
        for k, rgb in enumerate(clip.frames, start=1):
            Image.fromarray(rgb).save(tmp / "frames" / f"frame_{k:05d}.jpg", format="JPEG", quality=spec.jpeg_quality)
        audio_tmp = tmp / f"audio.{spec.audio_ext}"
        if spec.audio_ext == "npy":
            np.save(audio_tmp, feat)
        elif spec.audio_ext == "pkl":
            with open(audio_tmp, "wb") as fh:
                pickle.dump(feat, fh)
        else:
            write_wav(audio_tmp, feat, spec.sample_rate)
        frames_dst, audio_dst = clip_outputs(spec, out, job)
        frames_dst.parent.mkdir(parents=True, exist_ok=True)
        audio_dst.parent.mkdir(parents=True, exist_ok=True)
        if frames_dst.exists():  # left by a run killed between the two moves: replace it whole
            os.replace(frames_dst, tmp / "old-frames")
        os.replace(tmp / "frames", frames_dst)
        os.replace(audio_tmp, audio_dst)  # the clip is complete from this instant
        return job, None
    except Exception as e:  # noqa: BLE001 - a bad video must never stop the run
        msg = str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"
        return job, msg
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _prepare_one(args: tuple[ClipJob, PrepareOptions]) -> tuple[ClipJob, str | None]:
    return prepare_clip(*args)


# -- the run ---------------------------------------------------------------------------
def find_videos(videos: Path) -> tuple[list[ClipJob], list[dict[str, str]]]:
    """Video files below ``videos`` as jobs (split = first folder, class = second folder, clip = file stem).

    Returns:
        ``(jobs, duplicates)``: a second video with the same ``(split, clip)`` is not a
            job but a failure entry.
    """
    jobs: list[ClipJob] = []
    seen: dict[tuple[str, str], str] = {}
    dups: list[dict[str, str]] = []
    for p in sorted(videos.rglob("*")):
        if (
            not p.is_file()
            or p.suffix.lower() not in VIDEO_EXTENSIONS
            or any(s.startswith(".") for s in p.relative_to(videos).parts)
        ):
            continue
        rel = p.relative_to(videos)
        split = rel.parts[0] if len(rel.parts) > 1 else ""
        label = rel.parts[1] if len(rel.parts) > 2 else ""
        key = (split, p.stem)
        if key in seen:
            dups.append(
                {
                    "video": str(rel),
                    "clip": p.stem,
                    "error": f"duplicate clip id {p.stem!r} in split {split or '(flat)'!r}: {seen[key]} is used",
                }
            )
            continue
        seen[key] = str(rel)
        jobs.append(ClipJob(str(p), split, p.stem, label))
    return jobs, dups


def _clean_tmp(out: Path) -> None:
    tmp = out / TMP_DIR
    if tmp.exists():
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_videos(
    dataset: str,
    videos: str | os.PathLike,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    fps: float = 1.0,
    sample_rate: int | None = None,
    num_frames: int | None = -1,
    progress: bool = True,
    labels: str | os.PathLike | None = None,
    layout: str = "default",
    val_fraction: float = 0.1,
    seed: int = 0,
) -> PrepareReport:
    """Raw videos -> the dataset's frame folders and audio files, and its split files when labels are known.

    Args:
        dataset: a name in `PREPARE_SPECS`.
        videos: folder searched recursively for video files (``<split>/<class>/<id>.mp4`` gives labels).
        out: output root (created).
        workers: worker processes (1: in this process).
        fps: frames kept per second of video.
        sample_rate: override of the dataset's audio rate (Hz).
        num_frames: override of the frames per clip at 1 fps (``None`` or 0: one per
            second of video; ``-1``: the dataset's default).
        progress: show a tqdm progress bar.
        labels: CSV of ``id,label[,split]`` rows (gives or overrides class folders and splits).
        layout: ``default`` or a name in the spec's ``layouts`` (Kinetics-Sounds: ``official``).
        val_fraction: with labels and no val videos, this fraction of train (per class, at least one
            clip of a class with two or more) goes to val.
        seed: seed of that carve.

    Returns:
        the `PrepareReport` (also written to ``<out>/prepare_report.json``).

    Raises:
        ConfigError: unknown dataset or invalid option.
        DataError: ``videos`` is not a folder, or an unreadable ``labels`` file.
        KeyboardInterrupt: Ctrl-C (workers stopped; finished clips are kept, a rerun resumes).

    Example:
        >>> prepare_videos("kinetics-sounds", "raw", "data/kinetics-sounds", workers=2)  # doctest: +SKIP
    """
    spec = PREPARE_SPECS.get(dataset)
    if fps <= 0:
        raise ConfigError(f"--fps must be positive, got {fps}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if layout != "default":
        if layout not in spec.layouts:
            raise ConfigError(
                f"--layout {layout!r} is not known for {dataset}; valid: "
                f"{', '.join(['default', *sorted(spec.layouts)])}"
            )
        spec = replace(spec, **spec.layouts[layout])  # type: ignore[arg-type]
    if sample_rate is not None:
        if sample_rate <= 0:
            raise ConfigError(f"--sample-rate must be positive, got {sample_rate}")
        spec = replace(spec, sample_rate=int(sample_rate))
    if num_frames is None or num_frames == 0:
        spec = replace(spec, num_frames=None)
    elif num_frames > 0:
        spec = replace(spec, num_frames=int(num_frames))
    videos, out = Path(videos), Path(out)
    if not videos.is_dir():
        raise DataError(f"--videos {videos} is not a folder; give the folder that holds the raw video files")
    label_rows = read_labels(Path(labels)) if labels is not None else None
    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    _clean_tmp(out)  # temporary folders of a killed run
    jobs, dups = find_videos(videos)
    failures = list(dups)
    if label_rows is not None:
        jobs, unlabelled = apply_labels(jobs, label_rows, Path(labels))  # type: ignore[arg-type]
        failures += unlabelled
    params = {k: v for k, v in asdict(spec).items() if k != "layouts"}
    report = PrepareReport(
        dataset,
        str(videos),
        str(out),
        total=len(jobs) + len(failures),
        failures=failures,
        params={**params, "fps": fps, "layout": layout},
    )
    labelled = bool(jobs) and all(j.label for j in jobs)
    if jobs and not labelled and any(j.label for j in jobs):
        report.notes.append(
            "some videos have a class folder and others not: no split files written "
            "(use <split>/<class>/<id>.mp4 for all, or --labels)"
        )
    if labelled and spec.index_file is not None and val_fraction > 0:
        present = {j.split for j in jobs}
        if "val" not in present and "train" in present:
            jobs, n = carve_val(jobs, val_fraction, seed)
            n_train = sum(j.split == "train" for j in jobs)
            report.notes.append(
                f"no val videos: moved {n} train clip(s) to val (val_fraction={val_fraction}, "
                f"per class, seed {seed}); {n_train} stay in train"
            )
    todo = [j for j in jobs if not clip_done(spec, out, j)]
    report.skipped = len(jobs) - len(todo)
    opts = PrepareOptions(spec, str(out), fps)
    failed: set[ClipJob] = set()

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"prepare {dataset}", unit="clip", disable=not show_progress(progress))

    def record(job: ClipJob, err: str | None) -> None:
        if err is None:
            report.prepared += 1
        else:
            failed.add(job)
            report.failures.append({"video": str(Path(job.video).relative_to(videos)), "clip": job.clip, "error": err})
        bar.update(1)

    try:
        if workers == 1 or len(todo) <= 1:
            for job in todo:
                record(*prepare_clip(job, opts))
        else:
            run_pool(
                _prepare_one,
                [(j, opts) for j in todo],
                workers,
                lambda item, res, crash: record(item[0], crash if res is None else res[1]),
                crash_message="worker process died while decoding (crash in FFmpeg?); rerun prepare to retry",
            )
        if labelled and spec.index_file is not None:
            write_index(spec, out, [j for j in jobs if j not in failed], report, REPORT_FILE)
            if "test" not in report.splits:
                report.notes.append(
                    "no test videos: the split files have no test split; add <videos>/test/<class>/ "
                    "videos (or a split column in --labels)"
                )
        elif labelled:
            report.notes.append(
                f"{dataset}: prepare does not write this dataset's index files; write them as "
                f"its reader's LAYOUT says (`mmcoop datasets {dataset}`)"
            )
        elif jobs and not any(j.label for j in jobs):
            report.notes.append(
                "no labels (videos are not in <split>/<class>/ folders and no --labels): no split files written"
            )
    finally:
        bar.close()
        report.seconds = time.perf_counter() - t0
        atomic_write_text(out / REPORT_FILE, json.dumps(report.to_dict(), indent=2) + "\n")
        _clean_tmp(out)
    return report
