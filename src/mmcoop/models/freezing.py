"""Frozen encoders: no gradient for the pretrained part, kept in eval mode."""

from __future__ import annotations

from torch import nn


def freeze_encoder(encoder: nn.Module) -> nn.Module:
    """Freeze ``encoder``'s ``backbone`` (the pretrained part of the adapters; else the whole encoder).

    Its parameters get ``requires_grad=False`` (no gradient, not in the optimizer) and
    `MultimodalClassifier` keeps it in eval mode (BatchNorm statistics
    and dropout fixed). A projection to ``dim`` after the backbone is still trained.
    """
    frozen_part(encoder).requires_grad_(False)
    encoder.frozen = True  # type: ignore[assignment]
    return encoder


def frozen_part(encoder: nn.Module) -> nn.Module:
    """The module `freeze_encoder` freezes: ``encoder.backbone`` when present, else ``encoder``."""
    part = getattr(encoder, "backbone", None)
    return part if isinstance(part, nn.Module) else encoder
