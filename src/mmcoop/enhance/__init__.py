"""Enhancement: re-sampling plans from valuations (sample-level and modality-level)."""

from mmcoop.enhance.plans import (
    DEFAULT_MAX_COPIES,
    DEFAULT_THRESHOLDS,
    RATIO_FUNCS,
    ResamplingPlan,
    check_thresholds,
    modality_level_plan,
    modality_level_ratio,
    sample_copies,
    sample_level_plan,
    subset_for_valuation,
)

__all__ = [
    "DEFAULT_MAX_COPIES", "DEFAULT_THRESHOLDS", "RATIO_FUNCS", "ResamplingPlan", "check_thresholds",
    "modality_level_plan", "modality_level_ratio", "sample_copies", "sample_level_plan", "subset_for_valuation",
]
