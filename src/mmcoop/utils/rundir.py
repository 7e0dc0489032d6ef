"""The run-directory file schema: file names, ``metrics.jsonl`` records, valuation parquet layout.

The one place that knows how a run directory is laid out; the valuation table
(writing and reading its parquet files), the experiment runner (writing a run) and
the report (reading it) all go through it. Lowest layer: imports neither torch nor
pandas/pyarrow at module level. Run directory::

    <run>/.mmcoop-run                    marker: made by mmcoop (only marked folders are overwritten)
    <run>/config.yaml                    resolved config (``mmcoop train --config``)
    <run>/dataset.json                   dataset name and info
    <run>/metrics.jsonl                  one JSON object per finished epoch (appended)
    <run>/results.json                   test metrics of the best-validation model
    <run>/resumes.jsonl                  one line per resume that changed a setting
    <run>/checkpoints/last.pt            everything to resume exactly
    <run>/checkpoints/best.pt            model weights of the best validation epoch
    <run>/valuation/epoch_XXX.parquet    per-sample valuations during training (train set)
    <run>/valuation/<split>.parquet      ``mmcoop value --split <split>``
    <run>/valuation/<split>_lowest.csv   ``mmcoop value --top K`` (+ its record ``.<split>_lowest.csv.mmcoop.json``)
    <run>/report.html                    ``mmcoop report`` (its plots also under ``<run>/plots/``)
    <run>/probe.json                     ``mmcoop probe``: linear probes per modality, per split

A compare directory holds one run directory per (method, seed) plus ``compare.csv``,
``summary.csv``, ``base_config.yaml`` and its marker ``.mmcoop-compare``. What may be
overwritten, locked or resumed (the markers' meaning) is `mmcoop.experiment.safety`'s;
the commit order of an epoch's files is `mmcoop.experiment.integrity`'s.

Valuation parquet (one row per sample): ``index``, ``label``, ``fused_pred``, then
``pred_<coalition>``, ``phi_<modality>``, ``value_<coalition>``, ``stderr_<modality>``
and extras; settings, coalition masks and the column groups are JSON under the
key-value metadata key ``mmcoop.valuation`` (`encode_valuation_meta`).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from mmcoop.errors import DataError
from mmcoop.utils.io import append_line, atomic_write_text

# -- file names ------------------------------------------------------------------------------
CONFIG_FILE = "config.yaml"
DATASET_FILE = "dataset.json"
METRICS_FILE = "metrics.jsonl"
RESULTS_FILE = "results.json"
RESUMES_FILE = "resumes.jsonl"
REPORT_FILE = "report.html"
PROBE_FILE = "probe.json"  # mmcoop probe / compare --probe
PLOTS_DIR = "plots"
#: PNG text chunk (keyword, text) that marks the report's plots as mmcoop's (never a user's PNG).
PLOT_PNG_KEY, PLOT_PNG_TEXT = "mmcoop", "report plot"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
BEST_CHECKPOINT = "best.pt"
VALUATION_DIR = "valuation"
VALUATION_SUFFIX = ".parquet"
LOWEST_CSV_SUFFIX = "_lowest.csv"  # valuation/<split>_lowest.csv: `mmcoop value --top K`
#: Suffix of the hidden record beside a derived file mmcoop wrote (``.<file>.mmcoop.json``): its hash and source.
PROVENANCE_SUFFIX = ".mmcoop.json"
METRICS_CSV = "metrics.csv"  # train.loggers: csv
TENSORBOARD_DIR = "tensorboard"  # train.loggers: tensorboard (event files)
WANDB_DIR = "wandb"  # train.loggers: wandb (the offline run folders wandb.init writes)
#: A directory holding any of these is a run directory (`is_run_dir`, for reading).
RUN_FILES: tuple[str, ...] = (CONFIG_FILE, METRICS_FILE, RESULTS_FILE)
COMPARE_CSV = "compare.csv"
SUMMARY_CSV = "summary.csv"
BASE_CONFIG_FILE = "base_config.yaml"
#: What a comparison was asked to run (methods, seeds, shared settings): ``compare --resume`` continues it.
COMPARE_REQUEST_FILE = "compare.json"
#: Marker files written by mmcoop into the folders it creates (see `mmcoop.experiment.safety`).
RUN_MARKER = ".mmcoop-run"
COMPARE_MARKER = ".mmcoop-compare"

_EPOCH_RE = re.compile(r"^epoch_(\d+)\.parquet$")
#: Order of the usual split files in listings; other names follow alphabetically.
_SPLIT_ORDER = {"train": 0, "val": 1, "test": 2}


def epoch_valuation_name(epoch: int) -> str:
    """File name of the training-set valuation after ``epoch`` (1-based): ``epoch_003.parquet``."""
    return f"epoch_{int(epoch):03d}{VALUATION_SUFFIX}"


def split_valuation_name(split: str) -> str:
    """File name of a split's valuation: ``test.parquet``.

    Raises:
        ValueError: ``split`` is empty, holds a path separator, or looks like an epoch file.
    """
    name = f"{split}{VALUATION_SUFFIX}"
    if not split or "/" in split or os.sep in split or split.startswith(".") or _EPOCH_RE.match(name):
        raise ValueError(f"invalid split name for a valuation file: {split!r}")
    return name


def parse_valuation_name(name: str) -> int | str | None:
    """What a file in ``valuation/`` holds: the epoch (``int``), the split (``str``) or ``None``.

    ``epoch_007.parquet`` -> ``7``; ``test.parquet`` -> ``"test"``; hidden files (temporary
    files of an atomic write) and other suffixes -> ``None``.
    """
    if name.startswith(".") or not name.endswith(VALUATION_SUFFIX):
        return None
    m = _EPOCH_RE.match(name)
    return int(m.group(1)) if m else name[: -len(VALUATION_SUFFIX)]


@dataclass(frozen=True)
class RunPaths:
    """Paths of the files of one run directory (nothing is created or checked).

    Example:
        >>> paths = RunPaths("runs/joint_seed0")
        >>> paths.metrics, paths.epoch_valuation(3)
        (PosixPath('runs/joint_seed0/metrics.jsonl'), PosixPath('runs/joint_seed0/valuation/epoch_003.parquet'))
    """

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def dataset(self) -> Path:
        return self.root / DATASET_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def results(self) -> Path:
        return self.root / RESULTS_FILE

    @property
    def resumes(self) -> Path:
        return self.root / RESUMES_FILE

    @property
    def marker(self) -> Path:
        return self.root / RUN_MARKER

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def probe(self) -> Path:
        return self.root / PROBE_FILE

    @property
    def plots(self) -> Path:
        return self.root / PLOTS_DIR

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINT_DIR

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / LAST_CHECKPOINT

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / BEST_CHECKPOINT

    def checkpoint(self, which: str) -> Path:
        """``checkpoints/<which>.pt`` (``which`` = ``"best"`` or ``"last"``)."""
        return self.checkpoints / f"{which}.pt"

    @property
    def valuation_dir(self) -> Path:
        return self.root / VALUATION_DIR

    def epoch_valuation(self, epoch: int) -> Path:
        """``valuation/epoch_XXX.parquet``."""
        return self.valuation_dir / epoch_valuation_name(epoch)

    def split_valuation(self, split: str) -> Path:
        """``valuation/<split>.parquet``."""
        return self.valuation_dir / split_valuation_name(split)

    def lowest_csv(self, split: str) -> Path:
        """``valuation/<split>_lowest.csv`` (``mmcoop value --top K``)."""
        return self.valuation_dir / f"{split_valuation_name(split)[: -len(VALUATION_SUFFIX)]}{LOWEST_CSV_SUFFIX}"


def is_run_dir(path: str | os.PathLike) -> bool:
    """True for a run directory to read (it holds ``config.yaml``, ``metrics.jsonl`` or ``results.json``).

    Not the safety check: whether mmcoop may overwrite or resume a folder is
    `mmcoop.experiment.safety.is_marked_run_dir` (the `RUN_MARKER` file).
    """
    p = Path(path)
    return any((p / f).is_file() for f in RUN_FILES)


def enclosing_run_folder(path: str | os.PathLike) -> Path | None:
    """The run or comparison folder (marked by `RUN_MARKER` / `COMPARE_MARKER`) that holds
    ``path`` (resolved, symlinks followed), or ``None``: the folder itself or any folder above it."""
    p = Path(path).expanduser().resolve()
    for folder in (p, *p.parents):
        if (folder / RUN_MARKER).exists() or (folder / COMPARE_MARKER).exists():
            return folder
    return None


def is_compare_dir(path: str | os.PathLike) -> bool:
    """True for a compare directory (it holds ``compare.csv`` or ``summary.csv``)."""
    p = Path(path)
    return (p / COMPARE_CSV).is_file() or (p / SUMMARY_CSV).is_file()


def list_valuations(run_dir: str | os.PathLike) -> tuple[dict[int, Path], dict[str, Path]]:
    """Valuation files of a run: ``({epoch: path}, {split: path})``.

    Epochs ascending; splits ``train``, ``val``, ``test`` first, then the others by name.
    Hidden files (an atomic write in progress) are ignored. Empty dicts without ``valuation/``.
    """
    vdir = RunPaths(run_dir).valuation_dir
    epochs: dict[int, Path] = {}
    splits: dict[str, Path] = {}
    if not vdir.is_dir():
        return epochs, splits
    for p in vdir.iterdir():
        kind = parse_valuation_name(p.name)
        if isinstance(kind, int):
            epochs[kind] = p
        elif isinstance(kind, str):
            splits[kind] = p
    return (
        dict(sorted(epochs.items())),
        dict(sorted(splits.items(), key=lambda kv: (_SPLIT_ORDER.get(kv[0], 3), kv[0]))),
    )


# -- metrics.jsonl -------------------------------------------------------------------------------
def jsonable(record: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-safe part of a metrics record (or of ``dataset.json``'s info).

    One-element tensors and NumPy scalars become Python numbers; non-finite floats
    (NaN, inf) become ``None`` (strict JSON has no NaN); ``int``, ``float``, ``str``,
    ``bool``, ``None`` and lists are kept; everything else (tensors with several
    elements, dicts, objects) is dropped.
    """
    torch = sys.modules.get("torch")  # never imported here: a tensor implies torch is loaded
    np = sys.modules.get("numpy")
    out: dict[str, Any] = {}
    for k, v in record.items():
        if torch is not None and isinstance(v, torch.Tensor) and v.numel() == 1:
            v = v.item()
        elif np is not None and isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        if isinstance(v, (int, float, str, bool, type(None), list)):
            out[k] = v
    return out


def metrics_line(record: Mapping[str, Any]) -> str:
    """One ``metrics.jsonl`` line (no newline) for ``record``, after `jsonable`."""
    return json.dumps(jsonable(record))


#: How a bad *last* line of ``metrics.jsonl`` is treated (see `parse_metrics`).
LAST_LINE_MODES: tuple[str, ...] = ("warn", "skip", "error")
_BAD_LINE = (
    "{source}: line {lineno} is not a JSON object; repair or delete that line "
    "(each line of metrics.jsonl is the record of one epoch)"
)


def parse_metrics(
    text: str,
    source: str = METRICS_FILE,
    strict: bool = True,
    *,
    last_line: str = "warn",
    required: Sequence[str] = (),
    error: str = _BAD_LINE,
) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` text.

    Blank lines are skipped. A line is good when it is a JSON object holding every key
    of ``required``. A bad last line (a run killed while appending) is handled by
    ``last_line``; a bad line elsewhere is a `DataError` (``strict``) or skipped
    with a warning.

    Args:
        text: the file's content.
        source: the file name shown in messages.
        strict: raise on a bad line that is not the last one.
        last_line: a bad last line is skipped with a ``RuntimeWarning`` (``"warn"``),
            skipped silently (``"skip"``), or raises like any other bad line (``"error"``,
            regardless of ``strict``).
        required: keys every record must hold (e.g. ``("epoch",)``).
        error: the `DataError` message, a format string with ``{source}`` and ``{lineno}``.

    Returns:
        One dict per good line, in file order.

    Raises:
        DataError: a bad line (see above), naming ``source`` and the line.
        ValueError: ``last_line`` is not one of `LAST_LINE_MODES`.
    """
    if last_line not in LAST_LINE_MODES:
        raise ValueError(f"last_line must be one of {LAST_LINE_MODES}, got {last_line!r}")
    lines = [(i + 1, line.strip()) for i, line in enumerate(text.splitlines()) if line.strip()]
    records: list[dict[str, Any]] = []
    for pos, (lineno, line) in enumerate(lines):
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if isinstance(rec, dict) and all(k in rec for k in required):
            records.append(rec)
            continue
        is_last = pos == len(lines) - 1
        if is_last and last_line == "skip":
            continue
        if is_last and last_line == "warn":
            warnings.warn(
                f"{source}: skipping the incomplete last line {lineno} (a run interrupted while writing)",
                RuntimeWarning,
                stacklevel=2,
            )
        elif strict or is_last:
            raise DataError(error.format(source=source, lineno=lineno))
        else:
            warnings.warn(f"{source}: skipping line {lineno}, not a JSON object", RuntimeWarning, stacklevel=2)
    return records


def read_metrics_file(
    path: str | os.PathLike,
    strict: bool = True,
    *,
    last_line: str = "warn",
    required: Sequence[str] = (),
    error: str = _BAD_LINE,
) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file; ``[]`` when it is absent.

    Tolerates a half-written last line (by default skipped with a ``RuntimeWarning``);
    see `parse_metrics` for the other lines and the keyword arguments.

    Args:
        path: the file.
        strict: a bad line before the last, or an unreadable file, raises
            `DataError` (else it is skipped with a warning).

    Returns:
        One dict per record, in file order.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        if strict:
            raise DataError(f"cannot read {path}: {exc}; repair or delete the file") from exc
        warnings.warn(f"cannot read {path}: {exc}", RuntimeWarning, stacklevel=2)
        return []
    return parse_metrics(text, os.fspath(path), strict, last_line=last_line, required=required, error=error)


def read_metrics(
    run_dir: str | os.PathLike,
    strict: bool = True,
    *,
    last_line: str = "warn",
    required: Sequence[str] = (),
    error: str = _BAD_LINE,
) -> list[dict[str, Any]]:
    """The epoch records of ``<run_dir>/metrics.jsonl`` (see `read_metrics_file`).

    Args:
        run_dir: a run directory.
        strict: a bad line before the last raises `DataError` (else it is skipped).
        last_line, required, error: see `parse_metrics`.

    Returns:
        One dict per epoch record, in file order; ``[]`` when the file is absent.
    """
    return read_metrics_file(RunPaths(run_dir).metrics, strict, last_line=last_line, required=required, error=error)


def _drop_partial_tail(path: Path) -> None:
    """Cut an unterminated last line (a killed append) so the next record starts on its own line."""
    try:
        fh = open(path, "r+b")
    except FileNotFoundError:
        return
    with fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        warnings.warn(
            f"{path}: dropping an incomplete last line ({size - keep} bytes) before appending",
            RuntimeWarning,
            stacklevel=2,
        )
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())


def append_metrics(run_dir: str | os.PathLike, record: Mapping[str, Any]) -> dict[str, Any]:
    """Append one epoch record to ``<run_dir>/metrics.jsonl`` (flushed and fsynced).

    The record goes through `jsonable`. An unterminated last line left by a
    killed run is removed first (with a warning), so it cannot swallow this record.

    Returns:
        The record as written (after `jsonable`).
    """
    path = RunPaths(run_dir).metrics
    rec = jsonable(record)
    _drop_partial_tail(path)
    append_line(path, json.dumps(rec))
    return rec


def metrics_text(records: Iterable[Mapping[str, Any]]) -> str:
    """The exact ``metrics.jsonl`` text for ``records``: one `metrics_line` per record, newline-ended."""
    return "".join(metrics_line(r) + "\n" for r in records)


def write_metrics(run_dir: str | os.PathLike, records: Iterable[Mapping[str, Any]]) -> Path:
    """Replace ``<run_dir>/metrics.jsonl`` atomically by ``records`` (e.g. when resuming).

    Returns:
        The path written.
    """
    return atomic_write_text(RunPaths(run_dir).metrics, metrics_text(records))


# -- valuation parquet layout --------------------------------------------------------------------
VALUATION_META_KEY = b"mmcoop.valuation"
VALUATION_FORMAT = 1
#: Columns every valuation file starts with.
FIXED_COLUMNS: tuple[str, ...] = ("index", "label", "fused_pred")
#: The sample's identity, written after every other column (``split`` and ``degraded_modality``
#: only where known): the stable id, the split it was valued on, the degraded modality (debiased data).
IDENTITY_COLUMNS: tuple[str, ...] = ("sample_id", "split", "degraded_modality")
PHI_PREFIX, PRED_PREFIX, VALUE_PREFIX, STDERR_PREFIX = "phi_", "pred_", "value_", "stderr_"


def phi_column(modality: str) -> str:
    """``phi_<modality>``: Shapley value of the modality."""
    return f"{PHI_PREFIX}{modality}"


def pred_column(coalition: str) -> str:
    """``pred_<coalition>``: predicted class with that coalition (e.g. ``pred_audio+visual``, ``pred_empty``)."""
    return f"{PRED_PREFIX}{coalition}"


def value_column(coalition: str) -> str:
    """``value_<coalition>``: the coalition's value."""
    return f"{VALUE_PREFIX}{coalition}"


def stderr_column(modality: str) -> str:
    """``stderr_<modality>``: standard error of the permutation estimate of phi."""
    return f"{STDERR_PREFIX}{modality}"


def valuation_columns(
    modalities: Sequence[str],
    coalitions: Sequence[str],
    extras: Sequence[str] = (),
    values: bool = True,
    stderr: bool = False,
) -> dict[str, list[str]]:
    """Column groups of a valuation file (stored under ``"columns"`` in its metadata).

    Args:
        modalities: the ``M`` modality names (model order).
        coalitions: the ``K`` coalition names (column order of the values).
        extras: per-sample extra columns.
        values: include the ``value_<coalition>`` group.
        stderr: include the ``stderr_<modality>`` group.

    Returns:
        ``{"pred": [...], "phi": [...], "values": [...], "stderr": [...], "extras": [...]}``.

    Raises:
        ValueError: two columns would get the same name (a modality or extra named
            like another column).
    """
    cols = {
        "pred": [pred_column(c) for c in coalitions],
        "phi": [phi_column(m) for m in modalities],
        "values": [value_column(c) for c in coalitions] if values else [],
        "stderr": [stderr_column(m) for m in modalities] if stderr else [],
        "extras": list(extras),
    }
    flat = list(FIXED_COLUMNS) + [c for group in cols.values() for c in group]
    dup = sorted({c for c in flat if flat.count(c) > 1})
    if dup:
        raise ValueError(f"column name clash in the valuation table: {dup}; rename the modality or extra")
    return cols


def modalities_from_columns(columns: Iterable[str]) -> list[str]:
    """Modality names from the ``phi_<modality>`` columns, in column order."""
    return [c[len(PHI_PREFIX) :] for c in columns if c.startswith(PHI_PREFIX)]


def encode_valuation_meta(meta: Mapping[str, Any]) -> dict[bytes, bytes]:
    """Parquet key-value metadata holding ``meta`` as JSON under `VALUATION_META_KEY`."""
    return {VALUATION_META_KEY: json.dumps(dict(meta)).encode("utf-8")}


def decode_valuation_meta(metadata: Mapping[bytes, bytes] | None) -> dict[str, Any] | None:
    """The valuation settings from a parquet schema's key-value metadata.

    Returns:
        The JSON object, or ``None`` when the key is absent or its value is not a JSON
            object (not a file written by ``ValuationTable.to_parquet``).
    """
    raw = (metadata or {}).get(VALUATION_META_KEY)
    if not raw:
        return None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None
