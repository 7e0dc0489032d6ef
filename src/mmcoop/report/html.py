"""The self-contained HTML report of a run directory or a compare directory (the entry point).

`write_report` writes ``<dir>/report.html`` (plots embedded as base64 PNG data
URIs, so the file can be mailed or opened anywhere) and the same plots as files under
``<dir>/plots/*.png``. Sections whose data is missing are left out and listed at the end
("Not in this report"). A run report holds the per-sample explorer
(`mmcoop.report.explorer`).

The page and its helpers are in `mmcoop.report.page` / `mmcoop.report.format`;
a run report's sections in `mmcoop.report.run_report` (and the ``run_*`` modules it
calls), a comparison's in `mmcoop.report.compare_report`.
"""

from __future__ import annotations

import os
from pathlib import Path

from mmcoop.errors import MMCoopError
from mmcoop.report.compare_report import compare_report
from mmcoop.report.explorer import DEFAULT_K, SampleLoader
from mmcoop.report.loaders import child_run_dirs, is_compare_dir, is_run_dir
from mmcoop.report.run_report import run_report


def write_report(path: str | os.PathLike, *, samples: SampleLoader | None = None, top_k: int = DEFAULT_K) -> Path:
    """Write ``<path>/report.html`` for a run directory or a compare directory.

    The HTML is self-contained (PNG plots, sample thumbnails and audio embedded as data
    URIs, a small inline script for the sample explorer; nothing is fetched from the
    network); the same plots are written to ``<path>/plots/*.png``. Both are written
    atomically. For a compare directory (``compare.csv``/``summary.csv``, or a folder of
    run directories) every run's own report is written too and linked.

    Args:
        path: a run directory (``config.yaml``/``metrics.jsonl``/``results.json``) or a
            compare directory.
        samples: ``fn(run_dir) -> DatasetSplits | None``, the run's data for drawing its
            samples in the explorer (default: rebuilt from ``config.yaml`` for registered
            datasets, see `mmcoop.report.explorer.registered_splits`).
        top_k: samples per explorer gallery (least and most, per modality).

    Example:
        >>> write_report("runs/avmnist_joint_seed0", top_k=8)  # doctest: +SKIP
        PosixPath('runs/avmnist_joint_seed0/report.html')

    Returns:
        The path of ``report.html``.

    Raises:
        MMCoopError: ``path`` is not a directory, or neither a run nor a compare directory.
    """
    p = Path(path)
    if not p.is_dir():
        raise MMCoopError(f"{p} is not a directory; pass a run directory or a compare directory")
    if top_k < 1:
        raise MMCoopError(f"top_k must be >= 1, got {top_k}")
    if is_compare_dir(p):
        return compare_report(p, write_report, samples, top_k)
    if is_run_dir(p):
        return run_report(p, samples, top_k)
    if child_run_dirs(p):
        return compare_report(p, write_report, samples, top_k)
    raise MMCoopError(
        f"{p} is neither a run directory (config.yaml, metrics.jsonl, results.json) nor a compare directory "
        "(compare.csv, summary.csv, or run directories inside); pass a directory made by `mmcoop train` or "
        "`mmcoop compare`"
    )
