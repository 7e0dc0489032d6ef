"""What mmcoop wrote in a run directory, and which checkpoint its derived files came from.

Ownership (`split_run_entries`): ``--overwrite`` deletes only the files mmcoop
wrote and can name; anything else in a run folder (a user's notes, an analysis folder,
a file dropped into ``valuation/``) makes it refuse.

Provenance: ``mmcoop value`` records in each valuation table the checkpoint it was
computed from (`checkpoint_fingerprint`: epoch + SHA-256 of the file) and
``report.html`` the ``best.pt`` it describes (`report_source_comment`);
`stale_derived` lists the files whose checkpoint has changed since (e.g. a
``--resume`` that found a better epoch), with the command that recomputes each.

File names are `mmcoop.utils.rundir`'s. torch and pyarrow are imported only inside
the functions that need them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmcoop.utils.lock import LOCK_NAME
from mmcoop.utils.rundir import (
    BEST_CHECKPOINT,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    DATASET_FILE,
    LAST_CHECKPOINT,
    LOWEST_CSV_SUFFIX,
    METRICS_CSV,
    METRICS_FILE,
    PLOT_PNG_KEY,
    PLOT_PNG_TEXT,
    PLOTS_DIR,
    PROBE_FILE,
    PROVENANCE_SUFFIX,
    REPORT_FILE,
    RESULTS_FILE,
    RESUMES_FILE,
    RUN_MARKER,
    TENSORBOARD_DIR,
    VALUATION_DIR,
    VALUATION_META_KEY,
    WANDB_DIR,
    RunPaths,
    decode_valuation_meta,
    list_valuations,
    parse_valuation_name,
)

# -- what mmcoop wrote in a run directory ---------------------------------------------------------
#: Top-level files of a run directory that mmcoop writes (``--overwrite`` may delete them).
RUN_OWNED_FILES: frozenset[str] = frozenset(
    {
        RUN_MARKER,
        LOCK_NAME,
        CONFIG_FILE,
        DATASET_FILE,
        METRICS_FILE,
        RESULTS_FILE,
        RESUMES_FILE,
        REPORT_FILE,
    }
)
#: Which names inside mmcoop's sub-folders are mmcoop's (a user file there is never deleted).
_OWNED_IN: dict[str, Any] = {
    CHECKPOINT_DIR: lambda p: p.name in (LAST_CHECKPOINT, BEST_CHECKPOINT),
    VALUATION_DIR: lambda p: (
        (parse_valuation_name(p.name) is not None and _is_valuation_parquet(p))
        or is_mmcoop_derived(p)  # the --top CSVs, recognised by their record
        or read_provenance(p) is not None  # such a record
    ),
    PLOTS_DIR: lambda p: is_mmcoop_plot(p),  # the report's PNGs (marked inside the file)
    TENSORBOARD_DIR: lambda p: p.name.startswith("events.out.tfevents."),  # the tensorboard logger's
}
#: What the wandb logger's ``wandb.init(dir=<run>)`` writes under ``<run>/wandb/`` (seen with wandb
#: 0.31 offline; the ``files/`` names are those of ``wandb/sdk/lib/filenames.py`` and
#: ``sdk/internal/job_builder.py`` in that version): links ``latest-run``, ``debug.log`` and
#: ``debug-internal.log`` pointing into the folder (the two logs may be plain files), and one folder
#: per wandb run (``offline-run-<time>-<id>`` / ``run-<time>-<id>``) holding only the files below, in
#: the folders ``files/``, ``logs/``, ``tmp/code/``, and the link ``logs/debug-core.log``. Anything
#: else, at any depth, is the user's.
_WANDB_LINKS = re.compile(r"latest-run|debug(-internal)?\.log")
_WANDB_RUN = re.compile(r"(offline-)?run-\d{8}_\d{6}-[a-z0-9]+")
_WANDB_CORE_LOG = "logs/debug-core.log"  # a link to wandb's log in ~/.cache/wandb
_WANDB_RUN_DIRS = frozenset({"files", "logs", "tmp", "tmp/code"})
_WANDB_RUN_FILE = re.compile(
    r"run-[a-z0-9]+\.wandb(\.synced)?"
    r"|files/(requirements(\.frozen)?\.txt|config\.yaml|wandb-(summary|metadata|job)\.json|output\.log"
    r"|wandb-(history|events)\.jsonl|conda-environment\.yaml|diff\.patch)"
    r"|logs/debug(-internal|-core)?\.log"
)
#: The suffix of mmcoop's temporary files (`mmcoop.utils.io.TEMP_SUFFIX`).
_TEMP_SUFFIX = ".mmcoop.tmp"


def _is_valuation_parquet(path: Path) -> bool:
    """A parquet file written by ``ValuationTable.to_parquet`` (its schema carries the mmcoop key)."""
    try:
        import pyarrow.parquet as pq

        return VALUATION_META_KEY in (pq.read_schema(path).metadata or {})
    except Exception:  # noqa: BLE001 - unreadable: not provably ours
        return False


def _is_probe_file(run_dir: Path) -> bool:
    """``probe.json`` is the one ``mmcoop probe`` writes (`mmcoop.utils.probefile`)."""
    from mmcoop.errors import RunDirError
    from mmcoop.utils.probefile import read_probe

    try:
        return read_probe(run_dir) is not None
    except RunDirError:
        return False


def is_mmcoop_plot(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a PNG the report wrote: a regular file (not a link) whose PNG text
    chunk `PLOT_PNG_KEY` says so. A user's PNG in ``plots/``, even
    one with a name the report uses, is not (the report neither replaces nor deletes it)."""
    p = Path(path)
    if p.suffix != ".png" or p.is_symlink() or not p.is_file():
        return False
    try:
        from PIL import Image

        with Image.open(p) as im:
            return im.format == "PNG" and im.info.get(PLOT_PNG_KEY) == PLOT_PNG_TEXT
    except Exception:  # noqa: BLE001 - unreadable: not provably ours
        return False


def _is_temp(p: Path) -> bool:
    return p.name.startswith(".") and p.name.endswith(_TEMP_SUFFIX) and p.is_file() and not p.is_symlink()


_CSV_COLUMN = re.compile(r"lr|[a-z0-9_]+/[^,]+")


def logs_csv(config: Mapping[str, Any] | None) -> bool:
    """Whether a run config (a raw mapping: ``config.yaml`` or the commit's) lists the ``csv`` logger."""
    train = (config or {}).get("train") if isinstance(config, Mapping) else None
    loggers = train.get("loggers") if isinstance(train, Mapping) else None
    return isinstance(loggers, (list, tuple)) and "csv" in loggers


def _yaml_config(run_dir: Path) -> dict[str, Any] | None:
    try:
        import yaml

        data = yaml.safe_load(RunPaths(run_dir).config.read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - unreadable: names no logger
        return None
    return data if isinstance(data, dict) else None


def is_mmcoop_csv(run_dir: str | os.PathLike, configs: Sequence[Mapping[str, Any] | None] = ()) -> bool:
    """Whether ``<run>/metrics.csv`` is the csv logger's: the run's ``config.yaml`` (or one of
    ``configs``) lists ``csv``, and the file's header is the logger's (``epoch``, then the scalar
    tags in sorted order, e.g. ``acc/val``, ``lr``). A user's own ``metrics.csv`` in a run that
    never logged csv is not, whatever it holds.

    Args:
        run_dir: the run directory.
        configs: further configs of the run that may list the logger (raw mappings, e.g. the
            commit record's).
    """
    path = Path(run_dir) / METRICS_CSV
    if path.is_symlink() or not path.is_file():
        return False
    if not any(logs_csv(c) for c in [_yaml_config(Path(run_dir)), *configs]):
        return False
    try:
        with path.open(encoding="utf-8") as fh:
            header = fh.readline().rstrip("\n").split(",")
    except (OSError, UnicodeDecodeError):
        return False
    tags = header[1:]
    return header[0] == "epoch" and tags == sorted(tags) and all(_CSV_COLUMN.fullmatch(t) for t in tags)


def _wandb_foreign(folder: Path) -> list[str]:
    """What in ``<run>/wandb/`` wandb did not write (names relative to the run, folders ending in ``/``)."""
    foreign: list[str] = []
    for entry in sorted(folder.iterdir()):
        rel = f"{folder.name}/{entry.name}"
        if entry.is_symlink():
            target = Path(os.path.realpath(entry))
            if not (_WANDB_LINKS.fullmatch(entry.name) and folder.resolve() in target.parents):
                foreign.append(rel)
        elif entry.is_file() and _WANDB_LINKS.fullmatch(entry.name) and entry.name != "latest-run":
            continue  # debug.log written as a file (not a link) by other wandb versions
        elif entry.is_dir() and _WANDB_RUN.fullmatch(entry.name):
            for sub in sorted(entry.rglob("*")):  # rglob does not follow links
                name = sub.relative_to(entry).as_posix()
                if sub.is_dir() and not sub.is_symlink():  # a user's folder: named by its files, or itself if empty
                    if name not in _WANDB_RUN_DIRS and not any(sub.iterdir()):
                        foreign.append(f"{rel}/{name}/")
                elif sub.is_symlink() and name == _WANDB_CORE_LOG:
                    continue  # deleting the link leaves its target (wandb's own cache) alone
                elif sub.is_symlink() or not sub.is_file() or not _WANDB_RUN_FILE.fullmatch(name):
                    foreign.append(f"{rel}/{name}")
        else:
            foreign.append(rel + ("/" if entry.is_dir() else ""))
    return foreign


def split_run_entries(run_dir: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """What in ``run_dir`` mmcoop wrote and may delete, and what it did not write.

    mmcoop's: the files of `RUN_OWNED_FILES`, its temporary files
    (``.<name>.<random>.mmcoop.tmp``), ``metrics.csv`` when the run used the csv logger
    (`is_mmcoop_csv`), and the folders ``checkpoints/``, ``valuation/``, ``plots/``,
    ``tensorboard/`` and ``wandb/`` when every entry in them is mmcoop's (``last.pt``/``best.pt``,
    valuation tables whose parquet schema carries mmcoop's key, the ``--top`` CSVs, the report's
    PNGs, event files, the files wandb writes). Symbolic links are never mmcoop's.

    Returns:
        ``(owned, foreign)``: paths mmcoop may delete (top-level entries), and the
            names (relative, folders ending in ``/``) of everything else.

    Example:
        >>> owned, foreign = split_run_entries("runs/r")  # doctest: +SKIP
        >>> foreign
        ['NOTES.md', 'analysis/']
    """
    root = Path(run_dir)
    owned: list[Path] = []
    foreign: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.is_symlink():
            foreign.append(entry.name)
        elif entry.is_file() and (entry.name in RUN_OWNED_FILES or _is_temp(entry)):
            owned.append(entry)
        elif entry.name == METRICS_CSV and is_mmcoop_csv(root):  # only when the run logged csv
            owned.append(entry)
        elif entry.name == PROBE_FILE and entry.is_file() and _is_probe_file(root):  # mmcoop probe's, not a user's
            owned.append(entry)
        elif entry.is_dir() and entry.name in _OWNED_IN:
            bad = [
                f"{entry.name}/{c.name}" + ("/" if c.is_dir() and not c.is_symlink() else "")
                for c in sorted(entry.iterdir())
                if c.is_symlink() or not c.is_file() or not (_is_temp(c) or _OWNED_IN[entry.name](c))
            ]
            if bad:
                foreign += bad
            else:
                owned.append(entry)
        elif entry.is_dir() and entry.name == WANDB_DIR:
            bad = _wandb_foreign(entry)
            if bad:
                foreign += bad
            else:
                owned.append(entry)
        else:
            foreign.append(entry.name + ("/" if entry.is_dir() else ""))
    return owned, foreign


# -- provenance of derived files -------------------------------------------------------------------
def provenance_path(path: str | os.PathLike) -> Path:
    """The hidden record beside a derived file: ``valuation/.test_lowest.csv.mmcoop.json``."""
    p = Path(path)
    return p.parent / f".{p.name}{PROVENANCE_SUFFIX}"


def read_provenance(record: str | os.PathLike) -> dict[str, Any] | None:
    """The content of a provenance record file (``None`` unless it is one mmcoop wrote)."""
    p = Path(record)
    if not (p.name.startswith(".") and p.name.endswith(PROVENANCE_SUFFIX)) or p.is_symlink() or not p.is_file():
        return None
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("mmcoop") == "derived" and "sha256" in rec else None


def write_derived(path: str | os.PathLike, data: bytes, source: Mapping[str, Any] | None) -> Path:
    """Write a derived file and its provenance record together (all or nothing).

    The record (`provenance_path`) holds the file's SHA-256 and ``source``, the
    checkpoint it came from (`checkpoint_fingerprint`), so the file is recognised
    as mmcoop's (``--overwrite`` may delete it; once edited it is the user's) and flagged
    by `stale_derived` when the checkpoint changes.

    Returns:
        ``path``.
    """
    import hashlib

    from mmcoop.utils.io import atomic_write_files

    p = Path(path)
    rec = {"mmcoop": "derived", "file": p.name, "sha256": hashlib.sha256(data).hexdigest(), CHECKPOINT_INFO_KEY: source}
    atomic_write_files({p: data, provenance_path(p): json.dumps(rec, indent=2).encode("utf-8")})
    return p


def is_mmcoop_derived(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a derived file mmcoop wrote and nobody changed since (its record's hash matches)."""
    p = Path(path)
    rec = read_provenance(provenance_path(p))
    return rec is not None and p.is_file() and not p.is_symlink() and rec["sha256"] == file_sha256(p)


#: Key of a valuation table's ``info`` (parquet metadata) naming the checkpoint it was computed from.
CHECKPOINT_INFO_KEY = "checkpoint"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (read in chunks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_fingerprint(run_dir: str | os.PathLike, which: str = "best") -> dict[str, Any] | None:
    """Which checkpoint a derived file comes from: ``{"checkpoint", "epoch", "sha256"}``.

    ``epoch`` is the epoch whose weights the file holds (``None`` if unreadable); ``sha256``
    the hash of the file's bytes, so any rewrite (a resume that found a better epoch, a
    file replaced by hand) is seen. ``None`` when the checkpoint does not exist.

    Example:
        >>> checkpoint_fingerprint("runs/r")  # doctest: +SKIP
        {'checkpoint': 'best', 'epoch': 3, 'sha256': '5f1c...'}
    """
    path = RunPaths(run_dir).checkpoint(which)
    if not path.is_file():
        return None
    epoch: int | None
    try:
        import torch

        epoch = int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # noqa: BLE001 - an unreadable file still has a hash
        epoch = None
    return {"checkpoint": which, "epoch": epoch, "sha256": file_sha256(path)}


def _short(fp: Mapping[str, Any] | None) -> str:
    if not fp:
        return "no checkpoint"
    what = "damaged" if fp.get("epoch") is None else f"of epoch {fp.get('epoch')}"
    return f"checkpoints/{fp.get('checkpoint')}.pt {what} (sha256 {str(fp.get('sha256'))[:12]})"


def describe_checkpoint(fp: Mapping[str, Any] | None) -> str:
    """How a report names the checkpoint it describes: ``best.pt of epoch 3 (sha256 5f1c...)``, or
    ``best.pt, which is damaged (cannot be read)`` (never "of epoch None")."""
    if not fp:
        return "no checkpoint"
    if fp.get("epoch") is None:
        return f"{fp.get('checkpoint')}.pt, which is damaged (cannot be read)"
    return f"{fp.get('checkpoint')}.pt of epoch {fp.get('epoch')} (sha256 {str(fp.get('sha256'))[:12]})"


def damaged_checkpoints(run_dir: str | os.PathLike) -> list[str]:
    """One message per checkpoint of the run that exists but cannot be read, saying what rewrites it.

    Returns:
        Messages naming ``checkpoints/best.pt`` / ``last.pt``; empty when both read (or are absent).
    """
    fps = {which: checkpoint_fingerprint(run_dir, which) for which in ("best", "last")}
    out = []
    for which, fp in fps.items():
        if fp is None or fp.get("epoch") is not None:
            continue
        last_ok = fps["last"] is not None and fps["last"].get("epoch") is not None
        fix = (
            f"`mmcoop train --resume {run_dir}` rewrites it from checkpoints/last.pt"
            if which == "best" and last_ok
            else "restore it from a copy of the run"
            + (f" (`mmcoop value {run_dir} --checkpoint best` still reads best.pt)" if which == "last" else "")
        )
        out.append(f"{CHECKPOINT_DIR}/{which}.pt is damaged (it cannot be read as a checkpoint); {fix}")
    return out


def stale_valuations(run_dir: str | os.PathLike) -> list[str]:
    """One message per ``valuation/<split>.parquet`` (or ``<split>_lowest.csv``) not computed from the
    run's current checkpoint.

    A split valuation records the checkpoint it came from (`CHECKPOINT_INFO_KEY` in
    its metadata, written by ``mmcoop value``); it is stale when that file's hash changed
    since (e.g. ``--resume`` trained further and found a better epoch), or when it
    records none (made by an older mmcoop). Per-epoch files (``epoch_XXX.parquet``) are
    part of training and kept consistent by the commit record.

    Returns:
        Messages naming the file, the checkpoint it came from, the current one and the
            command that recomputes it; empty when every split valuation is current.
    """
    import pyarrow.parquet as pq

    out: list[str] = []
    current: dict[str, dict[str, Any] | None] = {}
    for split, path in list_valuations(run_dir)[1].items():
        try:
            meta = decode_valuation_meta(pq.read_schema(path).metadata) or {}
        except Exception:  # noqa: BLE001 - unreadable tables are reported by whoever reads them
            continue
        rec = (meta.get("info") or {}).get(CHECKPOINT_INFO_KEY)
        which = rec.get("checkpoint", "best") if isinstance(rec, dict) else "best"
        if which not in current:
            current[which] = checkpoint_fingerprint(run_dir, which)
        now = current[which]
        redo = f"run `mmcoop value {run_dir} --split {split} --checkpoint {which}` again"
        if not isinstance(rec, dict):
            out.append(
                f"{VALUATION_DIR}/{path.name} records no checkpoint (made by an older mmcoop), so it may not "
                f"match {_short(now)}; {redo}"
            )
        elif now is None or rec.get("sha256") != now.get("sha256"):
            out.append(
                f"{VALUATION_DIR}/{path.name} is stale: computed from {_short(rec)}, the run now has "
                f"{_short(now)}; {redo}"
            )
    for path in sorted(RunPaths(run_dir).valuation_dir.glob(f"*{LOWEST_CSV_SUFFIX}")):
        if not is_mmcoop_derived(path):  # a user's file (or edited by the user): not ours to judge
            continue
        rec = (read_provenance(provenance_path(path)) or {}).get(CHECKPOINT_INFO_KEY)
        which = rec.get("checkpoint", "best") if isinstance(rec, dict) else "best"
        if which not in current:
            current[which] = checkpoint_fingerprint(run_dir, which)
        now = current[which]
        if not isinstance(rec, dict) or now is None or rec.get("sha256") != now.get("sha256"):
            split = path.name[: -len(LOWEST_CSV_SUFFIX)]
            out.append(
                f"{VALUATION_DIR}/{path.name} is stale: computed from {_short(rec)}, the run now has {_short(now)}; "
                f"run `mmcoop value {run_dir} --split {split} --checkpoint {which} --top K` again"
            )
    return out


_REPORT_SOURCE = "mmcoop:checkpoint"


def report_source_comment(fingerprint: Mapping[str, Any] | None) -> str:
    """The HTML comment by which ``report.html`` records the checkpoint it describes."""
    return f"<!-- {_REPORT_SOURCE} {json.dumps(dict(fingerprint) if fingerprint else None)} -->"


def stale_probes(run_dir: str | os.PathLike) -> list[str]:
    """One message per split of ``probe.json`` not computed from the run's current checkpoint
    (or an unreadable / foreign ``probe.json``)."""
    from mmcoop.errors import RunDirError
    from mmcoop.utils.probefile import read_probe

    try:
        entries = read_probe(run_dir) or {}
    except RunDirError as e:
        return [str(e)]
    out: list[str] = []
    current: dict[str, dict[str, Any] | None] = {}
    for split, entry in entries.items():
        rec = entry.get(CHECKPOINT_INFO_KEY) if isinstance(entry, dict) else None
        which = rec.get("checkpoint", "best") if isinstance(rec, dict) else "best"
        if which not in current:
            current[which] = checkpoint_fingerprint(run_dir, which)
        now = current[which]
        if not isinstance(rec, dict) or now is None or rec.get("sha256") != now.get("sha256"):
            out.append(
                f"{PROBE_FILE} ({split} split) is stale: computed from "
                f"{_short(rec) if isinstance(rec, dict) else 'an unrecorded checkpoint'}, the run now has "
                f"{_short(now)}; run `mmcoop probe {run_dir} --split {split} --checkpoint {which}` again"
            )
    return out


def stale_derived(run_dir: str | os.PathLike) -> list[str]:
    """`stale_valuations` and `stale_probes`, plus ``report.html`` (and its plots) when it
    describes another ``best.pt``.

    Returns:
        One message per stale file, saying what recomputes it; empty when all are current.
    """
    out = stale_valuations(run_dir) + stale_probes(run_dir)
    report = RunPaths(run_dir).report
    if report.is_file():
        text = report.read_text(encoding="utf-8", errors="replace")
        m = re.search(re.escape(_REPORT_SOURCE) + r" (.*?) -->", text)
        try:
            rec = json.loads(m.group(1)) if m else None
        except ValueError:
            rec = None
        now = checkpoint_fingerprint(run_dir, "best")
        if not isinstance(rec, dict) or now is None or rec.get("sha256") != now.get("sha256"):
            out.append(
                f"{REPORT_FILE} and {PLOTS_DIR}/ describe {_short(rec) if isinstance(rec, dict) else 'an unrecorded checkpoint'}, "
                f"the run now has {_short(now)}; run `mmcoop report {run_dir}` again"
            )
    return out
