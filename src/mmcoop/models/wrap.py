"""Wrap a user's late-fusion model (encoders + head) into the mmcoop model contract."""

from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn

from mmcoop.errors import ConfigError
from mmcoop.models.classifier import MultimodalClassifier
from mmcoop.models.protocol import replace_removed


class LateFusionModel(MultimodalClassifier):
    """Per-modality encoders and a user head called with the list of per-modality features.

    The head receives ``[f_1, ..., f_M]`` (each ``[B, d_k]``, modality order) with removed
    modalities already replaced (zeros by default, ``fill`` if set): the MultiBench
    convention, so an existing head works unchanged. Valuation runs all coalitions through
    the head in one batched call (the generic path of
    `mmcoop.models.protocol.coalition_logits`).
    """

    def fuse(self, feats: Tensor, keep: Tensor | None = None) -> Tensor:
        x = replace_removed(feats, keep, self.fill)
        widths = [self._width_known(k, x) for k in range(len(self.modalities))]
        return self.head([x[:, k, :w] for k, w in enumerate(widths)])

    def _width_known(self, k: int, feats: Tensor) -> int:
        w = self.feature_dims[k]
        return feats.shape[-1] if w is None else int(w)

    # A user head has no partial logits: the generic batched path of
    # mmcoop.models.protocol.coalition_logits (one head call over all masked copies).
    coalition_logits = None  # type: ignore[assignment]


def from_modules(encoders: Mapping[str, nn.Module], head: nn.Module, num_classes: int | None = None) -> LateFusionModel:
    """Wrap a late-fusion model: ``encoders`` (modality name -> ``[B, *shape] -> [B, d_k]``, in
    modality order) and ``head`` (list of ``M`` features ``[B, d_k]`` -> logits ``[B, C]``).

    Widths ``d_k`` may differ per modality. Removing a modality replaces its feature by
    zeros before ``head`` is called; encoders are not re-run for coalitions.

    Args:
        encoders: one module per modality; the dict order is the modality order.
        head: the fusion head, called as ``head([f_1, ..., f_M])``.
        num_classes: number of classes ``C`` (optional, informational).

    Returns:
        A `LateFusionModel` (an ``nn.Module`` implementing the model contract).

    Example:
        >>> class Head(nn.Module):
        ...     def __init__(self):
        ...         super().__init__(); self.fc = nn.Linear(16 + 8, 10)
        ...     def forward(self, feats):  # [audio [B, 16], video [B, 8]]
        ...         return self.fc(torch.cat(feats, dim=1))
        >>> model = from_modules({"audio": AudioNet(), "video": VideoNet()}, Head())
        >>> model.encode(batch["inputs"]).shape              # [B, 2, 16]
    """
    if not encoders:
        raise ConfigError("from_modules needs at least one encoder (a dict modality name -> nn.Module)")
    bad = [k for k, v in encoders.items() if not isinstance(v, nn.Module)]
    if bad or not isinstance(head, nn.Module):
        raise ConfigError(f"from_modules takes nn.Modules; not modules: {bad or ['head']}")
    model = LateFusionModel(list(encoders), nn.ModuleDict(dict(encoders)), head)
    if num_classes is not None:
        model._num_classes = int(num_classes)
    return model


__all__ = ["LateFusionModel", "from_modules"]
