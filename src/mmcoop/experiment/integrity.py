"""One commit point per epoch: ``checkpoints/last.pt`` is the record every other file agrees with.

At the end of epoch ``e`` a run writes, in this order::

    valuation/epoch_XXX.parquet   (methods that valuate; atomic)
    checkpoints/best.pt           (when e is the best epoch so far; atomic)
    metrics.jsonl                 (one appended line)
    checkpoints/last.pt           (atomic) <- the commit: epoch e, best epoch, every metrics record, config

and ``results.json`` once after the last epoch. A kill at any moment therefore leaves
every file either committed (agreeing with ``last.pt``) or *pending*: written for the
epoch after the commit, which a resumed run discards and redoes. :func:`repair_run_dir`
brings the derived files back to the commit (run under the run's lock when resuming);
:func:`verify_run_dir` lists every disagreement (used by tests and by ``mmcoop value``).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import torch

from mmcoop.errors import DataError, RunDirError
from mmcoop.utils.io import atomic_torch_save, atomic_write_text

LAST = Path("checkpoints") / "last.pt"
BEST = Path("checkpoints") / "best.pt"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.parquet$")


def read_metrics(run_dir: str | Path, strict: bool = False) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (empty if absent).

    A half-written *last* line (a run killed while appending) is skipped; with
    ``strict`` it is an error like any other unreadable line.

    Raises:
        DataError: a line other than the last is not a JSON object (file and line named).
    """
    path = Path(run_dir) / METRICS
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or "epoch" not in rec:
                raise ValueError("not a metrics record")
        except ValueError:
            if i == len(lines) - 1 and not strict:
                continue  # a line cut short by a kill: the epoch was never committed
            raise DataError(f"{path} line {i + 1} is not a metrics record; the file was edited or damaged. "
                            "Resuming rewrites it from checkpoints/last.pt") from None
        out.append(rec)
    return out


def metrics_text(history: list[dict[str, Any]]) -> str:
    """The exact ``metrics.jsonl`` text for ``history`` (one JSON object per line)."""
    return "".join(json.dumps(r) + "\n" for r in history)


def load_commit(run_dir: str | Path) -> dict[str, Any] | None:
    """The commit record ``checkpoints/last.pt`` (``None`` before the first epoch ends)."""
    path = Path(run_dir) / LAST
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is one message
        raise RunDirError(f"checkpoint {path} cannot be read ({e}); the run cannot be resumed from it. "
                          "Start it again with --overwrite") from None


def committed_history(state: dict[str, Any], run_dir: str | Path) -> list[dict[str, Any]]:
    """Metrics records of the committed epochs: from ``last.pt``, or (older runs) from ``metrics.jsonl``."""
    if "history" in state:
        return list(state["history"])
    return [r for r in read_metrics(run_dir) if r["epoch"] <= int(state["epoch"])]


def _best_epoch_on_disk(path: Path) -> int | None:
    if not path.is_file():
        return None
    try:
        return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])
    except Exception:  # noqa: BLE001 - unreadable counts as absent (it is rewritten)
        return None


def _valuation_epochs(run_dir: Path) -> dict[int, Path]:
    out = {}
    for p in (run_dir / "valuation").glob("epoch_*.parquet"):
        m = _EPOCH_FILE.search(p.name)
        if m:
            out[int(m.group(1))] = p
    return out


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
    changed: list[str] = []
    committed = 0 if state is None else int(state["epoch"])
    history = [] if state is None else committed_history(state, run_dir)
    metrics = run_dir / METRICS
    want = metrics_text(history)
    have = metrics.read_text(encoding="utf-8", errors="replace") if metrics.exists() else ""
    if have != want:
        if want:
            atomic_write_text(metrics, want)
        else:
            metrics.unlink(missing_ok=True)
        changed.append(f"{METRICS}: kept the {len(history)} committed epoch(s)")
    best = run_dir / BEST
    best_epoch = -1 if state is None else int(state.get("best_epoch", -1))
    if best_epoch < 1:
        if best.exists():
            best.unlink()
            changed.append("checkpoints/best.pt: removed (no epoch committed)")
    elif _best_epoch_on_disk(best) != best_epoch:
        if state.get("best_state") is None:
            raise RunDirError(f"{best} does not hold the committed best epoch {best_epoch} and {run_dir / LAST} "
                              "has no copy of its weights; start the run again with --overwrite")
        atomic_torch_save({**state["best_state"], "epoch": best_epoch}, best)
        changed.append(f"checkpoints/best.pt: rewritten for the committed best epoch {best_epoch}")
    for epoch, path in sorted(_valuation_epochs(run_dir).items()):
        if epoch > committed:
            path.unlink()
            changed.append(f"valuation/{path.name}: removed (epoch {epoch} was not committed)")
    (run_dir / RESULTS).unlink(missing_ok=True)  # written again when the run ends
    if changed:
        warnings.warn(f"{run_dir}: repaired after an interruption: " + "; ".join(changed), stacklevel=2)
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
        problems.append(f"{METRICS} disagrees with the {len(history)} committed records")
    extra = [r["epoch"] for r in records[len(history):]]
    if extra and extra != [pending] or (extra and not allow_pending):
        problems.append(f"{METRICS} has records for uncommitted epochs {extra}")
    best_epoch = -1 if state is None else int(state.get("best_epoch", -1))
    on_disk = _best_epoch_on_disk(run_dir / BEST)
    if (run_dir / BEST).exists() and on_disk is None:
        problems.append("checkpoints/best.pt cannot be read")
    elif on_disk != (best_epoch if best_epoch >= 1 else None) and not (allow_pending and on_disk == pending):
        problems.append(f"checkpoints/best.pt holds epoch {on_disk}, the commit names best epoch {best_epoch}")
    late = [e for e in _valuation_epochs(run_dir) if e > pending]
    if late:
        problems.append(f"valuation files of uncommitted epochs {sorted(late)}")
    results = run_dir / RESULTS
    if results.exists():
        try:
            res = json.loads(results.read_text())
        except ValueError:
            return problems + [f"{RESULTS} is not valid JSON"]
        if state is None or res.get("best_epoch") != best_epoch or res.get("epochs") != committed:
            problems.append(f"{RESULTS} (best epoch {res.get('best_epoch')}, {res.get('epochs')} epochs) "
                            f"disagrees with the commit (best epoch {best_epoch}, {committed} epochs)")
        if on_disk != best_epoch:
            problems.append(f"{RESULTS} names best epoch {best_epoch} but checkpoints/best.pt holds {on_disk}")
    return problems
