"""Linear probes of a run directory: ``mmcoop probe RUN`` and ``compare --probe``.

Loads the run's model (``best`` or ``last`` weights) and data, fits the probes of
`mmcoop.diagnostics.linear_probe` and records them in ``<run>/probe.json``
(`mmcoop.utils.probefile`) with the checkpoint they came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from mmcoop import __version__
from mmcoop.errors import MMCoopError
from mmcoop.diagnostics.feature_map import MAX_POINTS
from mmcoop.diagnostics.probe import DEFAULT_GRID, linear_probe
from mmcoop.experiment.run import load_run
from mmcoop.utils.io import check_writable
from mmcoop.utils.probefile import read_probe, write_probe
from mmcoop.utils.rundir import RunPaths
from mmcoop.utils.runfiles import CHECKPOINT_INFO_KEY, checkpoint_fingerprint


def probe_run(
    run_dir: str | os.PathLike,
    split: str = "test",
    *,
    checkpoint: str = "best",
    batch_size: int = 256,
    grid: Sequence[float] = DEFAULT_GRID,
    max_train: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    trust: bool = False,
    feature_map: bool = False,
    map_points: int = MAX_POINTS,
) -> dict[str, Any]:
    """Fit the linear probes of a finished run and write them to ``<run_dir>/probe.json``.

    Args:
        run_dir: a run directory made by ``mmcoop train`` (or a comparison's run).
        split: where accuracy and macro-F1 are reported.
        checkpoint: ``best`` or ``last`` weights.
        batch_size: samples per encoder pass.
        grid: L2 penalties tried (chosen on the validation split).
        max_train: fit on a seeded subset of this many training samples (``None``: all).
        seed: seed of the subset (default: the run's seed).
        device: where to encode and fit (default: the CPU, where the run is loaded).
        trust: load a checkpoint holding Python objects (see `mmcoop.experiment.load_run`).

    Returns:
        The entry written (see `mmcoop.diagnostics.linear_probe`), with ``checkpoint``
            (epoch and SHA-256 of the weights file) and ``mmcoop`` (version).

    Raises:
        MMCoopError: not a run directory, no such checkpoint, a foreign ``probe.json``.
    """
    paths = RunPaths(run_dir)
    if not paths.config.is_file():
        raise MMCoopError(
            f"{run_dir} is not a run directory (no {paths.config.name}); pass a directory made by `mmcoop train`"
        )
    check_writable(paths.root)
    read_probe(run_dir)  # a foreign or broken probe.json: refuse before the expensive part
    source = checkpoint_fingerprint(run_dir, checkpoint)
    cfg, model, splits = load_run(Path(run_dir), checkpoint, trust=trust)
    if device is not None:
        model = model.to(device)
    entry = linear_probe(
        model,
        splits,
        split,
        batch_size=batch_size,
        grid=grid,
        max_train=max_train,
        seed=cfg.seed if seed is None else seed,
        device=device,
        feature_map=feature_map,
        map_points=map_points,
    )
    entry[CHECKPOINT_INFO_KEY] = source
    entry["mmcoop"] = __version__
    write_probe(Path(run_dir), entry)
    return entry
