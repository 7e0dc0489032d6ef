"""Enhancement: re-sampling plans from valuations, and the pieces that execute them in any loop.

* plans (pure): `sample_level_plan`, `modality_level_plan` -> `ResamplingPlan`;
* schedules: `SampleLevelResampler`, `ModalityLevelResampler` (value -> plan, per epoch);
* execution: `ResampledDataset` + `collate_units` (``duplicate``), `weighted_unit_loss` /
  `weighted_unit_parts` (``weighted``).
"""

from mmcoop.data.dict_source import as_multimodal
from mmcoop.enhance.execute import (
    EXECUTIONS,
    NORMALIZATIONS,
    ResampledDataset,
    UnitLoss,
    collate_units,
    weighted_unit_loss,
    weighted_unit_parts,
)
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
from mmcoop.enhance.resampler import (
    ModalityLevelResampler,
    Resampler,
    SampleLevelResampler,
    epoch_generator,
)

__all__ = [
    "DEFAULT_MAX_COPIES",
    "DEFAULT_THRESHOLDS",
    "RATIO_FUNCS",
    "ResamplingPlan",
    "check_thresholds",
    "modality_level_plan",
    "modality_level_ratio",
    "sample_copies",
    "sample_level_plan",
    "subset_for_valuation",
    "EXECUTIONS",
    "NORMALIZATIONS",
    "ResampledDataset",
    "collate_units",
    "weighted_unit_loss",
    "weighted_unit_parts",
    "UnitLoss",
    "Resampler",
    "SampleLevelResampler",
    "ModalityLevelResampler",
    "as_multimodal",
    "epoch_generator",
]
