"""Small helpers shared by the benchmark scripts in ``benchmarks/``.

- :func:`sync` / :func:`timed` / :func:`bench` / :func:`bench_interleaved`: wall-clock
  timing with warm-up calls, repeats and the median (CUDA is synchronised around
  every timed call, so asynchronous kernels are counted).
- :func:`machine`: one line describing where the numbers came from (CPU model,
  cores, torch version, device).
- :func:`trained_run`: train a model once with :func:`mmcoop.experiment.run_experiment`
  into ``out_dir`` (or reuse it when its ``results.json`` exists) and return
  :func:`mmcoop.experiment.load_run`'s ``(cfg, model, splits)``.
- :func:`command_line`: the exact command that produced a result, for reports.

Benchmarks are plain scripts (``.venv/bin/python benchmarks/<name>.py``); they put
this folder on ``sys.path`` themselves and ``import _common``.
"""

from __future__ import annotations

import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch


# -- timing --------------------------------------------------------------------------
def sync(device: torch.device | str | None = None) -> None:
    """Wait for queued CUDA work on ``device`` (no-op on the CPU)."""
    dev = torch.device(device) if device is not None else None
    if dev is None:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
    elif dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn: Callable[[], Any], device: torch.device | str | None = None) -> tuple[float, Any]:
    """Seconds one call of ``fn`` takes (synchronised before and after) and its result."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


@dataclass
class Timing:
    """Repeated wall-clock times of one function (seconds per call).

    ``inner`` calls were made back to back per timed sample (``times`` holds the
    per-call average of each sample); ``warmup`` holds the untimed-for-the-result
    warm-up calls and ``result`` the first warm-up call's return value.
    """

    name: str
    times: list[float] = field(default_factory=list)
    inner: int = 1
    warmup: list[float] = field(default_factory=list)
    result: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def min(self) -> float:
        return min(self.times) if self.times else float("nan")

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were."""
        return (max(self.times) - min(self.times)) / self.median if self.times and self.median > 0 else float("nan")

    def __str__(self) -> str:
        inner = f" x{self.inner} calls each" if self.inner > 1 else ""
        return (
            f"{self.name}: median {self.median:.4f}s  min {self.min:.4f}s  "
            f"(n={len(self.times)}{inner}, spread {self.spread:.0%})"
        )


def _timed_calls(fn: Callable[[], Any], n: int, device: torch.device | str | None) -> float:
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / n


def bench(
    fn: Callable[[], Any],
    repeats: int = 5,
    warmup: int = 1,
    device: torch.device | str | None = None,
    name: str = "",
    min_sample_s: float = 0.0,
) -> Timing:
    """Call ``fn`` ``warmup`` times, then time ``repeats`` samples (see :func:`bench_interleaved`)."""
    key = name or getattr(fn, "__name__", "fn")
    return bench_interleaved({key: fn}, repeats, warmup, device, min_sample_s)[key]


def bench_interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int = 5,
    warmup: int = 1,
    device: torch.device | str | None = None,
    min_sample_s: float = 0.0,
) -> dict[str, Timing]:
    """Time several functions round-robin: warm-up calls first, then ``repeats`` rounds.

    Every round times each function once, so a slow phase of the (shared) machine
    hits all of them alike and ratios of medians stay meaningful. The first warm-up
    call's result is kept in :attr:`Timing.result` (use it for correctness checks).
    With ``min_sample_s > 0`` a function faster than that (judged by its warm-up
    calls) is called ``ceil(min_sample_s / t)`` times back to back per timed sample
    and the per-call average is recorded: millisecond timings are otherwise
    dominated by scheduler noise.
    """
    out = {name: Timing(name) for name in fns}
    for w in range(warmup):
        for name, fn in fns.items():
            dt, res = timed(fn, device)
            out[name].warmup.append(dt)
            if w == 0:
                out[name].result = res
    if warmup and min_sample_s > 0:
        for name, fn in fns.items():
            t = out[name]
            if min(t.warmup) < min_sample_s:  # cheap: a first call can carry one-time costs, so time one more
                t.warmup.append(timed(fn, device)[0])
            t.inner = max(1, math.ceil(min_sample_s / max(min(t.warmup), 1e-9)))
    for _ in range(repeats):
        for name, fn in fns.items():
            out[name].times.append(_timed_calls(fn, out[name].inner, device))
    return out


# -- provenance ----------------------------------------------------------------------
def cpu_model() -> str:
    """CPU model name from ``/proc/cpuinfo`` (falls back to :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine(device: torch.device | str = "cpu") -> str:
    """One line: CPU model, cores (and torch threads), torch version, device (GPU name)."""
    dev = torch.device(device)
    cores = os.cpu_count() or 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    parts = [
        f"CPU {cpu_model()} ({cores} cores, torch threads {torch.get_num_threads()})",
        f"torch {torch.__version__}",
        f"Python {platform.python_version()}",
    ]
    if dev.type == "cuda":
        idx = dev.index if dev.index is not None else torch.cuda.current_device()
        parts.append(f"device cuda:{idx} {torch.cuda.get_device_name(idx)} (CUDA {torch.version.cuda})")
    else:
        parts.append("device cpu")
    return ", ".join(parts)


def command_line() -> str:
    """The command that is running, as it could be typed again."""
    exe = sys.executable
    try:
        exe = os.path.relpath(exe)
    except ValueError:
        pass
    return " ".join(shlex.quote(a) for a in [exe, *sys.argv])


def resolve_device(device: str) -> torch.device:
    """The library's device resolution (``auto`` -> CUDA if available); a clean exit if unavailable."""
    from mmcoop.errors import MMCoopError
    from mmcoop.train import resolve_device as _resolve

    try:
        return _resolve(device)
    except MMCoopError as e:
        raise SystemExit(str(e)) from None


# -- models ------------------------------------------------------------------------------
def trained_run(
    dataset: str,
    epochs: int,
    out_dir: str | Path = "runs/bench",
    *,
    method: str = "joint",
    seed: int = 0,
    dataset_options: dict[str, Any] | None = None,
    train_options: dict[str, Any] | None = None,
    name: str | None = None,
    verbose: bool = True,
) -> tuple[Any, Any, Any]:
    """A trained model of ``dataset``: trained once into ``out_dir/<name>``, then reused.

    The run is reused when ``out_dir/<name>/results.json`` exists (a finished run);
    an unfinished directory of the same name is replaced. The data root comes from
    ``MMCOOP_DATA`` as for every run.

    Args:
        dataset: registered dataset name (``avmnist``, ``mfeat``, ...).
        epochs: training epochs.
        out_dir: parent folder of the run directory.
        method: training method (default ``joint``).
        seed: run seed.
        dataset_options: the dataset's options (default: its defaults).
        train_options: extra :class:`~mmcoop.train.config.TrainConfig` fields.
        name: run directory name (default ``<dataset>_<method>_e<epochs>_seed<seed>``).
        verbose: print whether the run was trained or reused.

    Returns:
        ``(cfg, model, splits)`` from :func:`mmcoop.experiment.load_run` (best
        validation weights, model on the CPU in eval mode).
    """
    from mmcoop.experiment import RunConfig, load_run, run_experiment

    name = name or f"{dataset}_{method}_e{epochs}_seed{seed}"
    run_dir = Path(out_dir) / name
    if not (run_dir / "results.json").exists():
        train = {"epochs": int(epochs), "progress": False} | dict(train_options or {})
        cfg = RunConfig.from_dict(
            {
                "name": name,
                "dataset": dataset,
                "dataset_options": dict(dataset_options or {}),
                "method": method,
                "seed": seed,
                "out_dir": str(out_dir),
                "train": train,
            }
        )
        if verbose:
            print(f"[trained_run] training {run_dir} ({dataset}, {method}, {epochs} epochs) ...", flush=True)
        t0 = time.perf_counter()
        run_experiment(cfg, overwrite=True)
        if verbose:
            print(f"[trained_run] trained {run_dir} in {time.perf_counter() - t0:.1f}s", flush=True)
    elif verbose:
        print(f"[trained_run] reusing {run_dir}", flush=True)
    return load_run(run_dir)
