"""The report of one run directory: its sections in order, and the page it writes."""

from __future__ import annotations

from pathlib import Path

from mmcoop.report.explorer import DEFAULT_K, SampleLoader
from mmcoop.report.format import esc
from mmcoop.report.loaders import RunData, load_run_dir
from mmcoop.report.page import Page, missing_list
from mmcoop.report.run_degraded import degraded_section, per_class_section
from mmcoop.report.run_diagnostics import imbalance_section, probe_section
from mmcoop.report.run_samples import RunValuations, explorer_section, sample_sections
from mmcoop.report.run_setup import setup_sections, training_sections
from mmcoop.utils.runfiles import (
    checkpoint_fingerprint,
    damaged_checkpoints,
    describe_checkpoint,
    report_source_comment,
    stale_valuations,
)


def run_sections(page: Page, run: RunData, samples: SampleLoader | None = None, k: int = DEFAULT_K) -> None:
    """The sections of a run report; a section without data is left out and listed at the end."""
    missing: list[str] = []
    setup_sections(page, run, missing)
    training_sections(page, run, missing)
    imbalance_section(page, run, missing)
    probe_section(page, run, missing)
    rv = RunValuations.of(run)
    sample_sections(page, run, rv, missing)
    explorer_section(page, run, rv, samples, k)
    per_class_section(page, run, rv)
    degraded_section(page, run, rv, missing)
    if rv.vals.errors:
        page.note("Unreadable valuation files skipped: " + "; ".join(rv.vals.errors))
    missing_list(page, missing)


def run_report(path: Path, samples: SampleLoader | None = None, k: int = DEFAULT_K) -> Path:
    """Write ``<path>/report.html`` (and its plots) for the run directory ``path``.

    Args:
        path: the run directory.
        samples: the run's data for the explorer (see `mmcoop.report.write_report`).
        k: samples per explorer gallery.

    Returns:
        The path of ``report.html``.
    """
    run = load_run_dir(path)
    page = Page(path, f"mmcoop run: {run.name}")
    for msg in damaged_checkpoints(path) + stale_valuations(path):  # derived files not matching the checkpoint
        page.note(f"Warning: {msg}.")
    run_sections(page, run, samples, k)
    fp = checkpoint_fingerprint(path, "best")  # which weights this report describes
    page.add(report_source_comment(fp))
    source = f" · from {describe_checkpoint(fp)}" if fp else ""
    sub = esc(f"{run.dataset_name} · {run.method} · seed {run.config.get('seed', '?')} · {path}{source}")
    return page.write(sub + ".")
