"""Experiment layer: validated configs, run directories, resume, comparisons over seeds."""

from mmcoop.experiment.config import DebiasConfig, ModelConfig, RunConfig, apply_overrides
from mmcoop.experiment.run import RunResult, load_run, load_splits, read_metrics, run_experiment
from mmcoop.experiment.compare import (
    MethodSpec, add_gain_summary, format_gains, format_summary, parse_matched, parse_methods, parse_seeds, run_compare,
    summarize,
)

__all__ = [
    "DebiasConfig", "ModelConfig", "RunConfig", "apply_overrides",
    "RunResult", "load_run", "load_splits", "read_metrics", "run_experiment",
    "MethodSpec", "add_gain_summary", "format_gains", "format_summary", "parse_matched", "parse_methods", "parse_seeds",
    "run_compare", "summarize", "GainSummary", "paired_gains", "summarize_gains", "t_interval", "t_quantile",
]
