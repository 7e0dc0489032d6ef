"""One commit point per epoch: ``checkpoints/last.pt`` is the record every other file agrees with.

At the end of epoch ``e`` a run writes, in this order::

    valuation/epoch_XXX.parquet   (methods that valuate; atomic)
    checkpoints/best.pt           (when e is the best epoch so far; atomic)
    metrics.jsonl                 (one appended line)
    checkpoints/last.pt           (atomic) <- the commit: epoch e, best epoch, every metrics record, config

and ``results.json`` once after the last epoch. A kill at any moment therefore leaves
every file either committed (agreeing with ``last.pt``) or *pending*: written for the
epoch after the commit, which a resumed run discards and redoes. `repair_run_dir`
brings the derived files back to the commit (run under the run's lock when resuming);
`verify_run_dir` lists every disagreement (used by tests and by ``mmcoop value``).

File names and the ``metrics.jsonl`` reader/writer are `mmcoop.utils.rundir`'s.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any


from mmcoop.errors import DataError, MMCoopWarning, RunDirError
from mmcoop.utils import rundir
from mmcoop.utils.io import atomic_torch_save, load_checkpoint
from mmcoop.utils.rundir import METRICS_FILE, RESULTS_FILE, RunPaths, list_valuations, metrics_text, write_metrics

_BAD_RECORD = (
    "{source} line {lineno} is not a metrics record; the file was edited or damaged. "
    "Resuming rewrites it from checkpoints/last.pt"
)


def read_metrics(run_dir: str | Path, strict: bool = False) -> list[dict[str, Any]]:
    """The epoch records of ``metrics.jsonl`` as the commit logic reads them (empty if absent).

    `mmcoop.utils.rundir.read_metrics` with every record needing an ``epoch``: a
    half-written *last* line (a run killed while appending: that epoch was never
    committed) is skipped silently; with ``strict`` it is an error like any other bad line.

    Raises:
        DataError: a line other than the last (any line, with ``strict``) is not a
            metrics record (file and line named), or the file cannot be read.
    """
    return rundir.read_metrics(
        run_dir, strict=True, last_line="error" if strict else "skip", required=("epoch",), error=_BAD_RECORD
    )


class UnreadableCommit(RunDirError):
    """``checkpoints/last.pt`` exists but is damaged (truncated, not a checkpoint, not a commit record)."""


def load_commit(run_dir: str | Path, trust: bool = False) -> dict[str, Any] | None:
    """The commit record ``checkpoints/last.pt`` (``None`` before the first epoch ends).

    Args:
        run_dir: the run directory.
        trust: load objects other than tensors and plain containers (see
            `mmcoop.utils.io.load_checkpoint`); refused by default.

    Raises:
        UnreadableCommit: the file is damaged (a `RunDirError`).
        RunDirError: the file holds objects mmcoop does not load untrusted.
    """
    path = RunPaths(run_dir).last_checkpoint
    if not path.is_file():
        return None
    try:
        state = load_checkpoint(path, trust)
    except RunDirError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one message
        raise UnreadableCommit(
            f"checkpoint {path} cannot be read ({e}); the run cannot be resumed from it. "
            "Start it again with --overwrite"
        ) from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise UnreadableCommit(
            f"checkpoint {path} is not an mmcoop commit record (no epoch); the run cannot be resumed "
            "from it. Start it again with --overwrite"
        )
    return state


def committed_history(state: dict[str, Any], run_dir: str | Path) -> list[dict[str, Any]]:
    """Metrics records of the committed epochs: from ``last.pt``, or (older runs) from ``metrics.jsonl``."""
    if "history" in state:
        return list(state["history"])
    return [r for r in read_metrics(run_dir) if r["epoch"] <= int(state["epoch"])]


def _best_epoch_on_disk(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        return int(load_checkpoint(path)["epoch"])
    except Exception:  # noqa: BLE001 - unreadable counts as absent (it is rewritten)
        return None


def repair_run_dir(run_dir: str | Path, state: dict[str, Any] | None) -> list[str]:
    """Bring every derived file back to the commit ``state`` (``None``: nothing committed yet).

    Rewrites ``metrics.jsonl`` from the committed records, rewrites ``best.pt`` from the
    committed best weights when it names another epoch, deletes valuation files of
    uncommitted epochs, and deletes ``results.json`` (rewritten when the run ends, and
    possibly stale once the run trains further). Call it under the run's lock.

    Returns:
        One line per file repaired (empty when everything already agreed); also warned.
    """
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    changed: list[str] = []
    committed = 0 if state is None else int(state["epoch"])
    history = [] if state is None else committed_history(state, run_dir)
    metrics = paths.metrics
    have = metrics.read_text(encoding="utf-8", errors="replace") if metrics.exists() else ""
    if have != metrics_text(history):
        if history:
            write_metrics(run_dir, history)
        else:
            metrics.unlink(missing_ok=True)
        changed.append(f"{METRICS_FILE}: kept the {len(history)} committed epoch(s)")
    best = paths.best_checkpoint
    best_epoch = -1 if state is None else int(state.get("best_epoch", -1))
    if best_epoch < 1:
        if best.exists():
            best.unlink()
            changed.append("checkpoints/best.pt: removed (no epoch committed)")
    elif _best_epoch_on_disk(best) != best_epoch:
        if state.get("best_state") is None:
            raise RunDirError(
                f"{best} does not hold the committed best epoch {best_epoch} and {paths.last_checkpoint} "
                "has no copy of its weights; start the run again with --overwrite"
            )
        atomic_torch_save({**state["best_state"], "epoch": best_epoch}, best)
        changed.append(f"checkpoints/best.pt: rewritten for the committed best epoch {best_epoch}")
    for epoch, path in list_valuations(run_dir)[0].items():
        if epoch > committed:
            path.unlink()
            changed.append(f"valuation/{path.name}: removed (epoch {epoch} was not committed)")
    paths.results.unlink(missing_ok=True)  # written again when the run ends
    if changed:
        warnings.warn(f"{run_dir}: repaired after an interruption: " + "; ".join(changed), MMCoopWarning, stacklevel=2)
    return changed


def verify_run_dir(run_dir: str | Path, allow_pending: bool = True) -> list[str]:
    """Every disagreement between the files of ``run_dir`` and its commit record.

    Args:
        run_dir: a run directory.
        allow_pending: accept files written for the one epoch after the commit (what a
            kill between the writes of an epoch leaves; resuming discards them).

    Returns:
        Human-readable problems; empty when the directory is consistent.
    """
    run_dir = Path(run_dir)
    paths = RunPaths(run_dir)
    problems: list[str] = []
    state = load_commit(run_dir)
    committed = 0 if state is None else int(state["epoch"])
    pending = committed + 1 if allow_pending else committed
    try:
        records = read_metrics(run_dir, strict=not allow_pending)
    except DataError as e:
        return [str(e)]
    history = [] if state is None else committed_history(state, run_dir)
    if records[: len(history)] != history:
        problems.append(f"{METRICS_FILE} disagrees with the {len(history)} committed records")
    extra = [r["epoch"] for r in records[len(history) :]]
    if extra and extra != [pending] or (extra and not allow_pending):
        problems.append(f"{METRICS_FILE} has records for uncommitted epochs {extra}")
    best_epoch = -1 if state is None else int(state.get("best_epoch", -1))
    on_disk = _best_epoch_on_disk(paths.best_checkpoint)
    if paths.best_checkpoint.exists() and on_disk is None:
        problems.append("checkpoints/best.pt cannot be read")
    elif on_disk != (best_epoch if best_epoch >= 1 else None) and not (allow_pending and on_disk == pending):
        problems.append(f"checkpoints/best.pt holds epoch {on_disk}, the commit names best epoch {best_epoch}")
    late = [e for e in list_valuations(run_dir)[0] if e > pending]
    if late:
        problems.append(f"valuation files of uncommitted epochs {sorted(late)}")
    results = paths.results
    if results.exists():
        try:
            res = json.loads(results.read_text())
        except ValueError:
            return problems + [f"{RESULTS_FILE} is not valid JSON"]
        if state is None or res.get("best_epoch") != best_epoch or res.get("epochs") != committed:
            problems.append(
                f"{RESULTS_FILE} (best epoch {res.get('best_epoch')}, {res.get('epochs')} epochs) "
                f"disagrees with the commit (best epoch {best_epoch}, {committed} epochs)"
            )
        if on_disk != best_epoch:
            problems.append(f"{RESULTS_FILE} names best epoch {best_epoch} but checkpoints/best.pt holds {on_disk}")
    return problems
