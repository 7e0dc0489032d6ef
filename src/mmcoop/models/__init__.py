"""Models: the model contract, per-modality encoders, fusion heads with a keep-mask, the registry."""

from mmcoop.models.builder import build_model
from mmcoop.models.classifier import MultimodalClassifier
from mmcoop.models.encoders import ENCODERS, CNNEncoder, MLPEncoder
from mmcoop.models.folding import fold_batchnorm, inference_model
from mmcoop.models.fusion import (
    FUSIONS,
    ConcatFusion,
    FiLMFusion,
    FusionHead,
    GatedFusion,
    SumFusion,
    apply_keep,
)
from mmcoop.models.protocol import (
    MultimodalModel,
    check_model,
    coalition_logits,
    replace_removed,
    unimodal_logits,
)
from mmcoop.models.registry import MODELS, create_model, register_model
from mmcoop.models.wrap import LateFusionModel, from_modules

__all__ = [
    "build_model",
    "MultimodalClassifier",
    "ENCODERS",
    "CNNEncoder",
    "MLPEncoder",
    "FUSIONS",
    "ConcatFusion",
    "FiLMFusion",
    "FusionHead",
    "GatedFusion",
    "SumFusion",
    "apply_keep",
    "fold_batchnorm",
    "inference_model",
    "MultimodalModel",
    "check_model",
    "coalition_logits",
    "replace_removed",
    "unimodal_logits",
    "MODELS",
    "create_model",
    "register_model",
    "LateFusionModel",
    "from_modules",
]
