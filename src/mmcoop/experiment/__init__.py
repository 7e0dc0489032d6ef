"""Experiment layer: validated configs, run directories, resume, comparisons over seeds."""

from mmcoop.experiment.config import DebiasConfig, ModelConfig, RunConfig, apply_overrides, load_yaml_mapping
from mmcoop.experiment.integrity import repair_run_dir, verify_run_dir
from mmcoop.experiment.safety import check_run_path, is_marked_run_dir
from mmcoop.experiment.run import (
    RunResult,
    check_new_run,
    load_run,
    load_splits,
    read_metrics,
    resume_experiment,
    run_experiment,
)
from mmcoop.experiment.compare import (
    MethodSpec,
    add_gain_summary,
    format_gains,
    format_summary,
    parse_matched,
    parse_methods,
    parse_seeds,
    run_compare,
    summarize,
)
from mmcoop.experiment.probe import probe_run
from mmcoop.experiment.tables import build_table, collect, to_csv, to_latex, to_markdown, write_tables
from mmcoop.experiment.stats import GainSummary, paired_gains, summarize_gains, t_interval, t_quantile
from mmcoop.utils.rundir import RUN_MARKER

__all__ = [
    "DebiasConfig",
    "ModelConfig",
    "RunConfig",
    "apply_overrides",
    "load_yaml_mapping",
    "repair_run_dir",
    "verify_run_dir",
    "RUN_MARKER",
    "check_run_path",
    "is_marked_run_dir",
    "RunResult",
    "check_new_run",
    "load_run",
    "load_splits",
    "read_metrics",
    "resume_experiment",
    "run_experiment",
    "MethodSpec",
    "add_gain_summary",
    "format_gains",
    "format_summary",
    "parse_matched",
    "parse_methods",
    "parse_seeds",
    "run_compare",
    "summarize",
    "probe_run",
    "build_table",
    "collect",
    "to_csv",
    "to_latex",
    "to_markdown",
    "write_tables",
    "GainSummary",
    "paired_gains",
    "summarize_gains",
    "t_interval",
    "t_quantile",
]
