"""Build the built-in late-fusion :class:`MultimodalClassifier` for a dataset's modality specs."""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from mmcoop.errors import ConfigError

from mmcoop.models.classifier import MultimodalClassifier
from mmcoop.models.encoders import ENCODERS
from mmcoop.models.fusion import FUSIONS
from mmcoop.models.registry import register_model


def build_model(
    specs: Sequence[Any],
    num_classes: int,
    dim: int = 64,
    fusion: str = "concat",
    encoder_options: dict[str, dict[str, Any]] | None = None,
    encoders: dict[str, str] | None = None,
) -> MultimodalClassifier:
    """One encoder per spec (chosen by ``spec.kind`` unless named), features of width ``dim``, fusion head ``fusion``.

    Args:
        specs: :class:`~mmcoop.data.ModalitySpec` per modality.
        num_classes: output classes ``C``.
        dim: feature width ``d`` of every encoder.
        fusion: registered fusion head name (``concat``, ``sum``, ``film``, ``gated``).
        encoder_options: optional per-modality keyword arguments for the encoder.
        encoders: optional per-modality registered encoder name (default: the spec's kind).
    """
    encoder_options = encoder_options or {}
    encoders = encoders or {}
    names = [s.name for s in specs]
    unknown = sorted((set(encoder_options) | set(encoders)) - set(names))
    if unknown:
        raise ConfigError(
            f"model options name modalities {unknown} that the data lacks; modalities: {', '.join(names)}"
        )
    if dim < 1:
        raise ConfigError(f"model.dim must be >= 1, got {dim}")
    head_cls = FUSIONS.get(fusion)
    mods = nn.ModuleDict(
        {
            s.name: ENCODERS.get(encoders.get(s.name, s.kind))(
                tuple(s.shape), dim=dim, **encoder_options.get(s.name, {})
            )
            for s in specs
        }
    )
    return MultimodalClassifier(names, mods, head_cls(len(specs), dim, num_classes))


@register_model("late-fusion")
def late_fusion(
    modalities: list[str],
    num_classes: int,
    *,
    specs: Sequence[Any],
    dim: int = 64,
    fusion: str = "concat",
    encoders: dict[str, str] | None = None,
    encoder_options: dict[str, dict[str, Any]] | None = None,
) -> MultimodalClassifier:
    """The built-in model (the paper's): one encoder per modality by kind, ``fusion`` head."""
    return build_model(specs, num_classes, dim=dim, fusion=fusion, encoder_options=encoder_options, encoders=encoders)
