"""Dataset-layout helpers of the paper readers: index files, path templates, missing clips, val carving, splits.

Shared by the readers under `mmcoop.datasets`: reading split files (text, CSV),
filling path templates (``{split}``, ``{id}``), dropping and reporting clips whose files are
absent (`keep_present`), carving a seeded, class-stratified val split
(`carve_val`), naming classes (`class_index`) and building one
`ClipSource` per split (`split_sources`).
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any, Iterable, Literal, Sequence

import numpy as np

from mmcoop.data.storage import rng, stratified_split
from mmcoop.errors import DataError, MMCoopWarning
from mmcoop.media.clips import (
    Clip,
    ClipSource,
    ModalityLoader,
    clip_files,
    layout_error,
)

SPLITS = ("train", "val", "test")
MAX_LISTED = 10  # missing clip ids quoted in warnings / info

OnMissing = Literal["skip", "error"]


def read_lines(path: Path, layout: str, what: str = "split file") -> list[str]:
    """Non-empty, stripped lines of a text index file (UTF-8, BOM allowed).

    Raises:
        DataError: the file is missing or unreadable (names it and the layout).
    """
    if not path.is_file():
        raise layout_error(f"missing {what} {path}", layout)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise layout_error(f"unreadable {what} {path} ({e})", layout) from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def read_csv_rows(path: Path, layout: str, min_fields: int, what: str = "split file") -> list[tuple[int, list[str]]]:
    """``(line number, fields)`` of each non-empty CSV row with at least ``min_fields`` fields.

    Raises:
        DataError: missing file, or a row with too few fields (file, line, layout).
    """
    rows = []
    for lineno, fields in enumerate(csv.reader(read_lines(path, layout, what)), start=1):
        fields = [f.strip() for f in fields]
        if len(fields) < min_fields:
            raise layout_error(
                f"malformed line {lineno} of {path}: {','.join(fields)!r} has "
                f"{len(fields)} comma-separated fields, expected at least {min_fields}",
                layout,
            )
        rows.append((lineno, fields))
    return rows


def fill(template: str, **fields: Any) -> str:
    """``template.format(**fields)`` with a clear error for an unknown placeholder."""
    try:
        return template.format(**fields)
    except (KeyError, IndexError, ValueError) as e:
        raise DataError(f"path template {template!r} cannot be filled from {sorted(fields)} ({e!r})") from None


def keep_present(
    name: str, split: str, clips: Sequence[Clip], index_file: Path | str, layout: str, on_missing: OnMissing = "skip"
) -> tuple[list[Clip], dict[str, Any]]:
    """Drop clips whose files are absent; report them (warning + info), never fatal unless none is left.

    The official loaders skip such clips silently (``os.path.exists`` checks); here the
    count and the first ids are reported. With ``on_missing="error"`` the first absent
    clip is an error.

    Returns:
        ``(present clips, info)`` with ``listed``, ``present``, ``missing`` and ``missing_ids``.

    Raises:
        DataError: no clip of the split is present (or any is absent with ``on_missing="error"``).
    """
    if on_missing not in ("skip", "error"):
        raise DataError(f"on_missing must be 'skip' or 'error', got {on_missing!r}")
    present, missing = [], []
    first_absent: Path | None = None
    for clip in clips:
        absent = [p for p in clip_files(clip) if not p.exists()]
        if absent:
            missing.append(clip.id)
            if first_absent is None:
                first_absent = absent[0]
            if on_missing == "error":
                raise layout_error(
                    f"{name} {split}: clip {clip.id!r} listed in {index_file} has no {absent[0]}", layout
                )
        else:
            present.append(clip)
    info = {
        "index_file": str(index_file),
        "listed": len(clips),
        "present": len(present),
        "missing": len(missing),
        "missing_ids": missing[:MAX_LISTED],
    }
    if clips and not present:
        raise layout_error(
            f"{name} {split}: none of the {len(clips)} clips listed in {index_file} is present "
            f"(first absent file: {first_absent})",
            layout,
        )
    if missing:
        warnings.warn(
            f"{name} {split}: {len(missing)} of {len(clips)} clips listed in {index_file} are absent and "
            f"skipped (first: {', '.join(missing[:5])}; e.g. no {first_absent})",
            MMCoopWarning,
            stacklevel=3,
        )
    return present, info


def carve_val(clips: Sequence[Clip], fraction: float, seed: int, tag: int) -> tuple[list[Clip], list[Clip]]:
    """Split ``clips`` into ``(train, val)``: a seeded, class-stratified ``fraction`` goes to val.

    Uses `mmcoop.data.storage.stratified_split` with ``rng(seed, tag)`` (per class,
    ``round(fraction * n_class)`` clips), so the carve is the same on every machine and rank.
    """
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"val_fraction must be in [0, 1), got {fraction}")
    labels = np.array([c.label for c in clips], dtype=np.int64)
    val_idx, train_idx = stratified_split(labels, [fraction], rng(seed, tag))
    return [clips[i] for i in train_idx], [clips[i] for i in val_idx]


def class_index(names: Iterable[str]) -> dict[str, int]:
    """Class name -> index in the given order (first occurrence wins)."""
    out: dict[str, int] = {}
    for n in names:
        out.setdefault(n, len(out))
    return out


def split_sources(
    name: str,
    parts: dict[str, list[Clip]],
    infos: dict[str, dict[str, Any]],
    num_classes: int,
    loaders: dict[str, ModalityLoader],
    classes: Sequence[str],
    common: dict[str, Any],
) -> dict[str, ClipSource]:
    """One `ClipSource` per split, each with its own info plus ``common`` (options, layout)."""
    return {
        s: ClipSource(name, s, parts[s], num_classes, loaders, classes, {**common, **infos.get(s, {})}) for s in SPLITS
    }
