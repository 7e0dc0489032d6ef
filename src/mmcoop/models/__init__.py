"""Models: per-modality encoders, fusion heads with a keep-mask, the model builder."""

from mmcoop.models.builder import build_model
from mmcoop.models.classifier import MultimodalClassifier
from mmcoop.models.encoders import ENCODERS, CNNEncoder, MLPEncoder
from mmcoop.models.folding import fold_batchnorm, inference_model
from mmcoop.models.fusion import FUSIONS, ConcatFusion, FusionHead, SumFusion, apply_keep

__all__ = [
    "build_model", "MultimodalClassifier", "ENCODERS", "CNNEncoder", "MLPEncoder",
    "FUSIONS", "ConcatFusion", "FusionHead", "SumFusion", "apply_keep", "fold_batchnorm", "inference_model",
]
