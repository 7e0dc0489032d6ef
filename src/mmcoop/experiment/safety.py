"""Run directories that are safe to create, lock, overwrite and resume (markers, path checks, locks).

File names (the markers included) are `mmcoop.utils.rundir`'s, the one owner of
the run-directory schema; this module decides what may be created, deleted or resumed.

Every run directory carries a marker file, `RUN_MARKER`, written when mmcoop
creates it; only a directory holding the marker is ever emptied by ``--overwrite``, and
only of the files mmcoop wrote there (`mmcoop.utils.rundir.split_run_entries`):
when anything else is present (a user's notes, an analysis folder) the overwrite is
refused, naming those files. A ``--resume`` checks everything it can refuse before it
writes anything (`check_resumable`), so a failed resume leaves the folder as it was.
A directory is also refused when its path is not strictly inside ``out_dir``, when
its name contains ``..`` or is absolute, or when it is (or contains) the working
directory or the home directory.

Each run is written under a `FolderLock` held for the
run's life, so a second process writing the same run gets an error naming the first.

A new run directory is born complete: the marker, the lock and ``config.yaml`` are
written in a temporary sibling folder which is then renamed into place, so a kill at
any moment leaves either no run directory or one that ``--resume`` understands.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmcoop.errors import RunDirError
from mmcoop.experiment.config import load_yaml_mapping
from mmcoop.experiment.resume import flatten
from mmcoop.utils.io import TRUST_HINT, atomic_write_text, remove_stale_temps, storage_error
from mmcoop.utils.lock import LOCK_NAME, FolderLock
from mmcoop.utils.rundir import BASE_CONFIG_FILE, COMPARE_CSV, COMPARE_MARKER, METRICS_CSV, RUN_MARKER, RunPaths
from mmcoop.utils.runfiles import is_mmcoop_csv, split_run_entries

_TMP_DIR_SUFFIX = ".mmcoop-new"


def _contains(parent: Path, child: Path) -> bool:
    """``child`` is ``parent`` or lies below it (both resolved)."""
    return child == parent or parent in child.parents


def check_run_path(out_dir: str | os.PathLike, name: str, what: str = "run") -> Path:
    """The run directory ``out_dir/name``, refused when using it could harm other files.

    Args:
        out_dir: the parent folder of runs.
        name: the run name (may contain ``/`` for nested folders, never ``..``).
        what: ``"run"`` or ``"comparison"``, for messages.

    Returns:
        ``out_dir / name`` (unresolved, as the user wrote it).

    Raises:
        RunDirError: an empty or absolute name, a ``..`` part, a path outside
            ``out_dir``, or a path that is, or contains, the working or home directory.
    """
    if not name or not str(name).strip():
        raise RunDirError(f"the {what} name is empty; pass --name with a folder name")
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or name in (".", "./"):
        raise RunDirError(
            f"{what} name {name!r} must be a plain folder name inside --out-dir (no '..', '.' or absolute path); "
            "pass --out-dir to choose where runs go"
        )
    run_dir = Path(out_dir) / name
    parent, target = Path(out_dir).resolve(), run_dir.resolve()
    if target == parent or parent not in target.parents:
        raise RunDirError(
            f"{what} directory {run_dir} resolves to {target}, outside --out-dir {parent}; pick another --name"
        )
    for label, protected in (("working directory", Path.cwd().resolve()), ("home directory", Path.home().resolve())):
        if _contains(target, protected):
            raise RunDirError(
                f"{what} directory {run_dir} is (or contains) the {label} {protected}; pick another --name or --out-dir"
            )
    return run_dir


def is_marked_run_dir(path: str | os.PathLike) -> bool:
    """Whether ``path`` carries the run marker written by mmcoop (`RUN_MARKER`).

    The safety check (what ``--overwrite`` may delete); for "holds run files, can be
    read" see `mmcoop.utils.rundir.is_run_dir`.
    """
    return RunPaths(path).marker.is_file()


def looks_like_legacy_run(path: str | os.PathLike) -> bool:
    """A run written before markers existed: ``config.yaml`` plus the commit record ``checkpoints/last.pt``.

    ``config.yaml`` and ``metrics.jsonl`` alone are not enough: a user's own experiment folder
    (a hand-written or copied config, their own metrics) holds them too and is never trained in.
    """
    p = RunPaths(path)
    return p.config.is_file() and p.last_checkpoint.is_file()


def _marker_text(kind: str) -> str:
    return json.dumps(
        {
            "mmcoop": kind,
            "format": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        },
        indent=2,
    )


def write_marker(path: str | os.PathLike, marker: str = RUN_MARKER) -> None:
    """Mark ``path`` as written by mmcoop (``--overwrite`` deletes only marked folders)."""
    atomic_write_text(Path(path) / marker, _marker_text("run" if marker == RUN_MARKER else "compare"))


def _foreign_entries(path: Path, allowed: set[str]) -> list[str]:
    try:
        return sorted(e.name for e in path.iterdir() if e.name not in allowed)
    except OSError as e:
        raise storage_error(e, path, "list") from None


def _refuse_user_files(path: Path, foreign: list[str]) -> RunDirError:
    shown = ", ".join(foreign[:6]) + (f", ... ({len(foreign)} in all)" if len(foreign) > 6 else "")
    return RunDirError(
        f"run directory {path} holds files mmcoop did not write ({shown}); --overwrite deletes only mmcoop's own "
        "files, so it refuses. Move those files out of the folder (or delete them yourself), or pick another --name"
    )


def _clear(path: Path, keep: set[str]) -> None:
    """Delete the entries of ``path`` that mmcoop wrote, except the names in ``keep``.

    Raises:
        RunDirError: ``path`` holds anything mmcoop did not write (nothing is deleted then).
    """
    owned, foreign = split_run_entries(path)
    if foreign:
        raise _refuse_user_files(path, foreign)
    for entry in owned:
        if entry.name in keep:
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError as e:
            raise storage_error(e, entry, "delete") from None


def _refuse_foreign(path: Path, names: list[str], overwrite: bool, what: str) -> RunDirError:
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    action = "delete" if overwrite else "write into"
    legacy = (
        " (it looks like a run made by an older mmcoop: delete it yourself, or resume it with --resume)"
        if looks_like_legacy_run(path)
        else ""
    )
    return RunDirError(
        f"{path} exists and holds files mmcoop did not mark as a {what} ({shown}); refusing to {action} it{legacy}. "
        "Pick another --name or --out-dir"
    )


def remove_stale_new_dirs(run_dir: str | os.PathLike, min_age_s: float = 60.0) -> list[Path]:
    """Delete the half-assembled ``.<name>.<random>.mmcoop-new`` folders a kill left beside ``run_dir``.

    A folder is removed when no process holds its lock and it either carries the run
    marker or is older than ``min_age_s`` (a creator killed before writing the marker).

    Returns:
        The folders removed.
    """
    run_dir = Path(run_dir)
    removed = []
    if not run_dir.parent.is_dir():
        return removed
    for stale in run_dir.parent.glob(f".{run_dir.name}.*{_TMP_DIR_SUFFIX}"):
        if not stale.is_dir() or stale.is_symlink():
            continue
        try:
            old = time.time() - stale.stat().st_mtime > min_age_s
            if not (is_marked_run_dir(stale) or old):
                continue
            with FolderLock(stale):
                shutil.rmtree(stale)
            removed.append(stale)
        except (RunDirError, OSError):
            continue  # held by a live creator, or already gone
    return sorted(removed)


def precheck_new_run_dir(out_dir: str | os.PathLike, name: str, overwrite: bool = False) -> Path:
    """The refusals of `create_run_dir` that need no lock, to run before any expensive work.

    Raises:
        RunDirError: unsafe path, not a folder, a folder mmcoop did not mark, or a
            marked run without ``overwrite``.
    """
    run_dir = check_run_path(out_dir, name)
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise RunDirError(f"{run_dir} exists and is not a folder; pick another --name")
    if run_dir.is_dir():
        if is_marked_run_dir(run_dir):
            if not overwrite:
                raise RunDirError(
                    f"run directory {run_dir} already holds a run; pass --resume to continue it, "
                    "--overwrite to replace it, or --name to start another"
                )
            foreign = split_run_entries(run_dir)[1]
            if foreign:
                raise _refuse_user_files(run_dir, foreign)
        else:
            foreign = _foreign_entries(run_dir, {LOCK_NAME})
            if foreign:
                raise _refuse_foreign(run_dir, foreign, overwrite, "run")
    return run_dir


def create_run_dir(
    out_dir: str | os.PathLike, name: str, config_yaml: str, overwrite: bool = False
) -> tuple[Path, FolderLock]:
    """Create (or, with ``overwrite``, empty) the run directory and lock it.

    Args:
        out_dir: parent folder.
        name: run name.
        config_yaml: text of ``config.yaml``, written before the directory appears.
        overwrite: replace an existing *marked* run directory (never an unmarked one).

    Returns:
        ``(run_dir, lock)``; the caller releases ``lock`` when the run ends.

    Raises:
        RunDirError: unsafe path, a run already there without ``overwrite``, a folder
            mmcoop did not create, or another process holding the run.
    """
    run_dir = check_run_path(out_dir, name)
    if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
        raise RunDirError(f"{run_dir} exists and is not a folder; pick another --name")
    remove_stale_new_dirs(run_dir)
    if run_dir.is_dir():
        marked = is_marked_run_dir(run_dir)
        foreign = _foreign_entries(run_dir, {LOCK_NAME})
        if not marked and foreign:
            raise _refuse_foreign(run_dir, foreign, overwrite, "run")
        lock = FolderLock(run_dir).acquire()
        try:
            if marked and not overwrite:
                raise RunDirError(
                    f"run directory {run_dir} already holds a run; pass --resume to continue it, "
                    "--overwrite to replace it, or --name to start another"
                )
            _clear(run_dir, {LOCK_NAME, RUN_MARKER})
            write_marker(run_dir)
            atomic_write_text(RunPaths(run_dir).config, config_yaml)
        except BaseException:
            lock.release()
            raise
        return run_dir, lock
    # a new directory: assemble it beside its final place, then rename it there in one step
    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", suffix=_TMP_DIR_SUFFIX, dir=run_dir.parent))
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes 0700; a run directory gets the usual permissions
    except OSError as e:
        raise storage_error(e, run_dir.parent, "create a run directory in") from None
    lock = FolderLock(tmp).acquire()
    try:
        write_marker(tmp)
        atomic_write_text(RunPaths(tmp).config, config_yaml)
        try:
            os.rename(tmp, run_dir)
        except OSError as e:
            if run_dir.exists():
                raise RunDirError(
                    f"run directory {run_dir} was just created by another process; pick another --name"
                ) from None
            raise storage_error(e, run_dir, "create") from None
    except BaseException:
        lock.release()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    lock.folder, lock.path = run_dir, run_dir / LOCK_NAME
    return run_dir, lock


def check_resumable(run_dir: str | os.PathLike) -> Path:
    """The refusals of `open_run_dir` that need no lock and write nothing.

    Raises:
        RunDirError: not a folder, or not a run directory (no marker and not a run made
            by an older mmcoop: ``config.yaml`` with ``checkpoints/last.pt``).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"cannot resume: {run_dir} is not a folder; pass a run directory made by `mmcoop train`")
    if not is_marked_run_dir(run_dir) and not looks_like_legacy_run(run_dir):
        raise RunDirError(
            f"cannot resume: {run_dir} is not a run directory (no {RUN_MARKER} marker, no checkpoints/last.pt), "
            "so nothing in it is touched; pass a directory made by `mmcoop train`, or start a new run with --name"
        )
    return run_dir


def code_keys(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The keys of a raw config that name code to import and call: every ``target`` that is set
    (``model.target``, ``data.target``, and any ``...target`` of a plugin's options).

    Example:
        >>> code_keys({"data": {"target": "mylab:load"}, "model": {"target": None, "dim": 8}})
        {'data.target': 'mylab:load'}
    """
    flat = flatten(dict(config)) if isinstance(config, Mapping) else {}
    return {k: v for k, v in flat.items() if k.rsplit(".", 1)[-1].strip("_") == "target" and v not in (None, "")}


def check_run_code(run_dir: str | os.PathLike, stored: Mapping[str, Any] | None, trust: bool = False) -> dict[str, Any]:
    """Refuse to load a run whose commit record names other code than its ``config.yaml``.

    A command loading a run (``value``, ``--resume``, ``compare --resume``) builds its data and
    model from the config stored in ``checkpoints/last.pt``. When that config names another
    ``target`` than the ``config.yaml`` the user can read (a ``config.yaml`` replaced by another
    run's), running it would run code the user could not see. Call this before any config is
    built from ``stored`` (building one imports its targets).

    Args:
        run_dir: the run directory.
        stored: the config of the commit record (a raw mapping), if any.
        trust: ``--trust-run``: run the checkpoint's code anyway.

    Returns:
        ``{key: the commit's value}`` of the differing keys (empty when they agree); with
            ``trust``, the code that will run although ``config.yaml`` does not show it.

    Raises:
        RunDirError: the two disagree on a target and ``trust`` is false (every key named).
    """
    if stored is None:
        return {}
    yaml_path = RunPaths(run_dir).config
    shown = code_keys(load_yaml_mapping(yaml_path)) if yaml_path.is_file() else {}
    runs = code_keys(stored)
    differ = sorted(k for k in runs.keys() | shown.keys() if runs.get(k) != shown.get(k))
    if differ and not trust:
        lines = "; ".join(f"{k} is {runs.get(k)!r} there, {shown.get(k)!r} in config.yaml" for k in differ)
        raise RunDirError(
            f"{RunPaths(run_dir).last_checkpoint} was trained with other code than {yaml_path} shows ({lines}). "
            "mmcoop runs only the code config.yaml names, so it loads nothing: restore the run's own config.yaml, "
            f"or, if you trust where the run came from, {TRUST_HINT} to run the checkpoint's code"
        )
    return {k: runs.get(k) for k in differ}


def check_logger_files(run_dir: str | os.PathLike, loggers: Sequence[str], stored: Mapping[str, Any] | None) -> None:
    """Refuse a resume whose ``train.loggers`` would replace a user's file (``metrics.csv``).

    Args:
        run_dir: the run directory.
        loggers: the loggers the resumed run will use.
        stored: the config the run was committed with (a raw mapping), if any.

    Raises:
        RunDirError: the csv logger is asked for and ``metrics.csv`` is not the one it wrote.
    """
    path = Path(run_dir) / METRICS_CSV
    if "csv" in loggers and (path.exists() or path.is_symlink()) and not is_mmcoop_csv(run_dir, [stored]):
        raise RunDirError(
            f"cannot resume with the csv logger: {path} was not written by mmcoop (this run has not logged csv "
            "so far), and the logger would replace it. Move or rename that file, or leave csv out of "
            "train.loggers; nothing was changed"
        )


def open_run_dir(run_dir: str | os.PathLike) -> FolderLock:
    """Lock an existing run directory to continue it (``--resume``) and remove stale temp files.

    Call it once the resume is validated (`check_resumable`, the commit record and
    the config): it writes. A run made by an older mmcoop (no marker, but
    ``config.yaml`` and ``checkpoints/last.pt``) is accepted and marked. Only mmcoop's
    own temporary files (``.<name>.<random>.mmcoop.tmp``) are removed.

    Raises:
        RunDirError: not a run directory, or another process holds it.
    """
    run_dir = check_resumable(run_dir)
    legacy = not is_marked_run_dir(run_dir)
    lock = FolderLock(run_dir).acquire()
    try:
        if legacy:
            write_marker(run_dir)
        remove_stale_temps(run_dir)
        remove_stale_new_dirs(run_dir)
    except BaseException:
        lock.release()
        raise
    return lock


def prepare_compare_dir(cdir: str | os.PathLike) -> Path:
    """Create or reuse a comparison folder; refuse one holding files mmcoop did not mark.

    A comparison made by an older mmcoop (``compare.csv`` or ``base_config.yaml``
    present, no marker) is accepted and marked.
    """
    cdir = Path(cdir)
    if cdir.is_symlink() or (cdir.exists() and not cdir.is_dir()):
        raise RunDirError(f"{cdir} exists and is not a folder; pick another --name")
    if cdir.is_dir() and not (cdir / COMPARE_MARKER).is_file():
        legacy = (cdir / COMPARE_CSV).is_file() or (cdir / BASE_CONFIG_FILE).is_file()
        foreign = _foreign_entries(cdir, set())
        if foreign and not legacy:
            raise _refuse_foreign(cdir, foreign, False, "comparison")
    try:
        cdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(e, cdir, "create") from None
    if not (cdir / COMPARE_MARKER).is_file():
        write_marker(cdir, COMPARE_MARKER)
    return cdir
