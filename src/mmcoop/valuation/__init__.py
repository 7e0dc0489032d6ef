"""Valuation: coalition values and Shapley values of modalities on cached features.

Pure tensor functions at the core (`coalition_masks`, `shapley_matrix`,
`shapley_from_coalitions`, `shapley_permutation`, the value functions in
`VALUE_FUNCTIONS`), the `ModalityValuator` for a model and a batch,
`valuate_dataset` for a whole split, and the `ValuationTable` it returns.
"""

from mmcoop.valuation.coalitions import (
    coalition_masks,
    coalition_name,
    coalition_names,
    coalition_sizes,
    find_coalition,
    full_index,
    index_to_masks,
    masks_to_index,
    singleton_index,
)
from mmcoop.valuation.inputs import InputValuator, valuate_inputs
from mmcoop.valuation.permutation import CoalitionValueFn, shapley_permutation
from mmcoop.valuation.shapley import MAX_EXACT_MODALITIES, shapley_from_coalitions, shapley_matrix
from mmcoop.valuation.table import ValuationTable
from mmcoop.utils.modes import eval_mode
from mmcoop.valuation.valuator import ModalityValuator, ValuationResult, unwrap_model
from mmcoop.valuation.runner import encode_dataset, mean_features, valuate_dataset
from mmcoop.valuation.values import (
    EMPTY_CONVENTIONS,
    VALUE_FUNCTIONS,
    ValueFunction,
    coalition_values,
    get_value_function,
    register_value_function,
)

__all__ = [
    "coalition_masks",
    "coalition_name",
    "coalition_names",
    "coalition_sizes",
    "find_coalition",
    "full_index",
    "index_to_masks",
    "masks_to_index",
    "singleton_index",
    "InputValuator",
    "valuate_inputs",
    "CoalitionValueFn",
    "shapley_permutation",
    "MAX_EXACT_MODALITIES",
    "shapley_from_coalitions",
    "shapley_matrix",
    "ValuationTable",
    "ModalityValuator",
    "ValuationResult",
    "eval_mode",
    "encode_dataset",
    "mean_features",
    "unwrap_model",
    "valuate_dataset",
    "EMPTY_CONVENTIONS",
    "VALUE_FUNCTIONS",
    "ValueFunction",
    "coalition_values",
    "get_value_function",
    "register_value_function",
]
