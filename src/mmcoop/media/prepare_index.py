"""Labels and split files of ``mmcoop data prepare``: class folders or a labels CSV -> split files + ``classes.json``.

A video's class is its second folder below ``--videos`` (``train/<class>/<id>.mp4``) or a row of
the ``--labels`` CSV (``id,label[,split]``). Without val videos, `carve_val` moves a
seeded, class-stratified fraction of train to val before the clips are prepared (so their
files land under ``val/``). `write_index` writes one split file per split in the
dataset's format (`index_file` and ``index_line``;
classes indexed in sorted name order) and ``classes.json`` beside them; a split file that
exists and was not written by ``prepare`` (not listed in the previous report) is left alone.
"""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from mmcoop.data.storage import rng, stratified_split
from mmcoop.errors import DataError
from mmcoop.media.prepare_spec import ClipJob, PrepareReport, PrepareSpec
from mmcoop.utils.io import atomic_write_text

CLASSES_FILE = "classes.json"
VAL_TAG = 0x5641  # rng stream of the carved val split


def read_labels(path: Path) -> dict[str, tuple[str, str]]:
    """``id -> (label, split)`` from a CSV of ``id,label[,split]`` rows (a header row ``id,...`` is skipped).

    Raises:
        DataError: missing file, a row with fewer than two fields, or an id listed twice (file and line named).
    """
    if not path.is_file():
        raise DataError(f"--labels {path} is not a file; give a CSV of id,label[,split] rows")
    out: dict[str, tuple[str, str]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            row = [f.strip() for f in row]
            if not any(row) or (lineno == 1 and row[0].lower() in ("id", "clip", "clip_id", "video", "youtube_id")):
                continue
            if len(row) < 2 or not row[0] or not row[1]:
                raise DataError(f"--labels {path} line {lineno}: {','.join(row)!r} needs id,label[,split]")
            if row[0] in out:
                raise DataError(f"--labels {path} line {lineno}: id {row[0]!r} is listed twice")
            out[row[0]] = (row[1], row[2] if len(row) > 2 else "")
    return out


def apply_labels(
    jobs: list[ClipJob],
    labels: dict[str, tuple[str, str]],
    source: Path,
) -> tuple[list[ClipJob], list[dict[str, str]]]:
    out, missing = [], []
    for j in jobs:
        if j.clip not in labels:
            missing.append(
                {"video": j.video, "clip": j.clip, "error": f"no row for id {j.clip!r} in --labels {source}"}
            )
            continue
        label, split = labels[j.clip]
        out.append(replace(j, label=label, split=split or j.split))
    return out, missing


def carve_val(jobs: list[ClipJob], fraction: float, seed: int) -> tuple[list[ClipJob], int]:
    """Move a seeded, class-stratified ``fraction`` of the train jobs to val (`stratified_split`;
    at least one clip of every class with two or more)."""
    train = [i for i, j in enumerate(jobs) if j.split == "train"]
    names = sorted({jobs[i].label for i in train})
    y = np.array([names.index(jobs[i].label) for i in train], dtype=np.int64)
    val_idx, _ = stratified_split(y, [fraction], rng(seed, VAL_TAG), min_count=1)
    out = list(jobs)
    for k in val_idx:
        out[train[int(k)]] = replace(out[train[int(k)]], split="val")
    return out, len(val_idx)


def _previous_index_files(out: Path, report_file: str) -> set[str]:
    try:
        return set(json.loads((out / report_file).read_text()).get("index_files", []))
    except (OSError, ValueError, AttributeError):
        return set()


def write_index(
    spec: PrepareSpec, out: Path, jobs: list[ClipJob], report: PrepareReport, report_file: str = "prepare_report.json"
) -> None:
    """Write the split files and ``classes.json`` of the labelled, prepared ``jobs`` (see the module docstring)."""
    ours = _previous_index_files(out, report_file)
    classes = sorted({j.label for j in jobs})
    report.classes = classes
    by_split: dict[str, list[str]] = {}
    for j in sorted(jobs, key=lambda j: (j.split, j.clip)):
        line = spec.index_line.format(split=j.split, id=j.clip, label=classes.index(j.label), name=j.label)
        by_split.setdefault(j.split, []).append(line)
    files = {out / spec.index_file.format(split=s): "\n".join(lines) + "\n" for s, lines in by_split.items()}  # type: ignore[union-attr]
    classes_file = next(iter(files)).parent / CLASSES_FILE if files else out / CLASSES_FILE
    files[classes_file] = json.dumps({"classes": classes}, indent=1) + "\n"
    for path, text in files.items():
        rel = str(path.relative_to(out))
        if path.exists() and rel not in ours and path.read_text(encoding="utf-8", errors="replace") != text:
            report.notes.append(
                f"{rel} exists and was not written by prepare: left as it is (remove it to have it written)"
            )
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        report.index_files.append(rel)
    report.splits = {s: len(v) for s, v in sorted(by_split.items())}
