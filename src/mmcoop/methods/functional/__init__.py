"""Peer methods' arithmetic as pure functions of tensors.

Each module holds one method's core (coefficients, weights, losses, updates) with no
``nn.Module``, optimizer, training loop or data; the method classes in :mod:`mmcoop.methods`
wire these into the training step. Every module docstring cites the paper and the official
repository (file, function) read for the arithmetic, its defaults, and each place where we
deliberately differ. Stacked per-modality logits are ``[M, B, C]``; per-modality scalars
are ``[M]``.
"""

from mmcoop.methods.functional._common import one_vs_others_ratio, true_class_probs, true_class_scores
from mmcoop.methods.functional.agm import (
    agm_coefficients,
    agm_fuse,
    agm_mono_responses,
    agm_scores,
    agm_update_running,
    scale_grad,
    shapley_weights,
)
from mmcoop.methods.functional.cggm import cggm_coefficients, cggm_direction_loss
from mmcoop.methods.functional.gblending import gblend_loss, gblend_weights
from mmcoop.methods.functional.greedy import (
    conditional_utilization_rate,
    greedy_bdr_difference,
    greedy_curation,
    learning_speed,
)
from mmcoop.methods.functional.inforeg import (
    inforeg_acquisition_rate,
    inforeg_coefficients,
    inforeg_fisher_trace,
    inforeg_proximal_grad,
)
from mmcoop.methods.functional.mla import (
    mla_fuse,
    mla_fusion_weights,
    mla_project_grad,
    mla_projection_alpha,
    mla_update_projector,
    prediction_entropy,
)
from mmcoop.methods.functional.mmpareto import min_norm_weight, mmpareto_combine, mmpareto_weights
from mmcoop.methods.functional.ogm_ge import ogm_ge_coefficients, ogm_ge_modulate
from mmcoop.methods.functional.opm import opm_drop_features, opm_drop_probabilities, opm_keep_mask
from mmcoop.methods.functional.pmr import (
    pmr_loss,
    pmr_loss_weights,
    pmr_prototype_logits,
    pmr_update_prototypes,
)
from mmcoop.methods.functional.reconboost import reconboost_ensemble_logits, reconboost_loss
from mmcoop.methods.functional.relearning import (
    kmeans,
    learning_state_purity,
    minmax_scale,
    purity,
    relearn_blend,
    relearning_strength,
)

__all__ = [
    "agm_coefficients", "agm_fuse", "agm_mono_responses", "agm_scores", "agm_update_running",
    "cggm_coefficients", "cggm_direction_loss", "conditional_utilization_rate", "gblend_loss",
    "gblend_weights", "greedy_bdr_difference", "greedy_curation", "inforeg_acquisition_rate",
    "inforeg_coefficients", "inforeg_fisher_trace", "inforeg_proximal_grad", "kmeans",
    "learning_speed", "learning_state_purity", "minmax_scale", "min_norm_weight", "mla_fuse",
    "mla_fusion_weights", "mla_project_grad", "mla_projection_alpha", "mla_update_projector",
    "mmpareto_combine", "mmpareto_weights", "ogm_ge_coefficients", "ogm_ge_modulate",
    "one_vs_others_ratio", "opm_drop_features", "opm_drop_probabilities", "opm_keep_mask",
    "pmr_loss", "pmr_loss_weights", "pmr_prototype_logits", "pmr_update_prototypes",
    "prediction_entropy", "purity", "reconboost_ensemble_logits", "reconboost_loss",
    "relearn_blend", "relearning_strength", "scale_grad", "shapley_weights", "true_class_probs",
    "true_class_scores",
]
