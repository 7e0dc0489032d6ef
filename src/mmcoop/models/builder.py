"""Build the built-in late-fusion `MultimodalClassifier` for a dataset's modality specs."""

from __future__ import annotations

from typing import Any, Sequence

from torch import nn

from mmcoop.errors import ConfigError

from mmcoop.models.classifier import MultimodalClassifier
from mmcoop.models.encoders import ENCODERS
from mmcoop.models.freezing import freeze_encoder
from mmcoop.models.fusion import FUSIONS
from mmcoop.models.registry import register_model
from mmcoop.utils.targets import call_with_supported


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
        specs: `ModalitySpec` per modality.
        num_classes: output classes ``C``.
        dim: feature width ``d`` of every encoder.
        fusion: registered fusion head name (``concat``, ``sum``, ``film``, ``gated``).
        encoder_options: optional per-modality keyword arguments for the encoder (see
            `build_encoder`, e.g. ``{"text": {"freeze": True, "pooling": "mean"}}``).
        encoders: optional per-modality registered encoder name (default: the spec's kind),
            e.g. ``{"text": "hf:/models/bert", "image": "timm:resnet18"}``.
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
        {s.name: build_encoder(encoders.get(s.name, s.kind), s, dim, encoder_options.get(s.name, {})) for s in specs}
    )
    return MultimodalClassifier(names, mods, head_cls(len(specs), dim, num_classes))


def build_encoder(name: str, spec: Any, dim: int, options: dict[str, Any]) -> nn.Module:
    """The encoder ``name`` for modality ``spec`` with output width ``dim``.

    Args:
        name: a registered encoder (``ENCODERS``), optionally ``"<name>:<source>"`` for the
            pretrained adapters (``hf:/models/bert``, ``timm:resnet18``, ``tv:resnet18``):
            the part after the first ``:`` is passed as ``source=``.
        spec: the modality's `ModalitySpec` (passed as ``spec=`` to an
            encoder that accepts it, e.g. for a tokens modality's padding id).
        dim: feature width.
        options: the encoder's keyword arguments, plus ``freeze`` (bool: no gradient for the
            encoder's ``backbone``, or the whole encoder, which also stays in eval mode).
            ``lr_mult`` is a training setting (``train.lr_groups``), refused here.

    Raises:
        ConfigError: unknown encoder, options it does not take, ``lr_mult`` given.
    """
    opts = dict(options)
    if "lr_mult" in opts:
        raise ConfigError(
            f"encoder option lr_mult of modality {spec.name!r} is a training setting: give "
            f"train.lr_groups={{'encoders.{spec.name}': {opts['lr_mult']}}} (a run config moves it there itself)"
        )
    freeze = opts.pop("freeze", False)
    if not isinstance(freeze, bool):
        raise ConfigError(f"encoder option freeze of modality {spec.name!r} must be true or false, got {freeze!r}")
    base, sep, source = name.partition(":")
    cls = ENCODERS.get(base if sep else name)
    if sep:
        opts["source"] = source
    enc = call_with_supported(
        cls, (tuple(spec.shape),), {"spec": spec}, {"dim": dim, **opts}, f"encoder {name!r} of modality {spec.name!r}"
    )
    if freeze:
        freeze_encoder(enc)
    return enc


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
