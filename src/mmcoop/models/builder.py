"""Build a :class:`MultimodalClassifier` for a dataset's modality specs."""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from mmcoop.models.classifier import MultimodalClassifier
from mmcoop.models.encoders import ENCODERS
from mmcoop.models.fusion import FUSIONS


def build_model(
    specs: Sequence[Any],
    num_classes: int,
    dim: int = 64,
    fusion: str = "concat",
    encoder_options: dict[str, dict[str, Any]] | None = None,
) -> MultimodalClassifier:
    """One encoder per spec (chosen by ``spec.kind``), features of width ``dim``, fusion head ``fusion``.

    Args:
        specs: :class:`~mmcoop.data.ModalitySpec` per modality.
        num_classes: output classes ``C``.
        dim: feature width ``d`` of every encoder.
        fusion: registered fusion head name (``concat``, ``sum``).
        encoder_options: optional per-modality keyword arguments for the encoder.
    """
    encoder_options = encoder_options or {}
    head_cls = FUSIONS.get(fusion)
    encoders = nn.ModuleDict(
        {s.name: ENCODERS.get(s.kind)(tuple(s.shape), dim=dim, **encoder_options.get(s.name, {})) for s in specs}
    )
    return MultimodalClassifier([s.name for s in specs], encoders, head_cls(len(specs), dim, num_classes))
