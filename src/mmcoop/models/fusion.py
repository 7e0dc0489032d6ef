"""Fusion heads that take a modality keep-mask.

A head maps stacked features ``[B, M, d]`` and a keep-mask (bool ``[B, M]`` or
``[M]``; ``None`` = keep all) to logits ``[B, C]``. A removed modality's feature is
replaced by ``fill`` (``[M, d]``, default zeros: the paper's convention), never by
re-running an encoder. ``concat`` and ``sum`` are linear in the features, so
`FusionHead.coalition_logits` evaluates all coalitions from per-modality
partial logits with one matrix product; ``film`` and ``gated`` (the OGM-GE set,
two modalities) take the generic path: one batched call over all masked copies.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmcoop.errors import ConfigError
from mmcoop.models.protocol import replace_removed
from mmcoop.utils.registry import Registry

FUSIONS: Registry[type["FusionHead"]] = Registry("fusion", builtins="mmcoop.models")


def apply_keep(feats: Tensor, keep: Tensor | None, fill: Tensor | None = None) -> Tensor:
    """Replace removed modalities' features: ``feats [B, M, d]``, ``keep [B, M]|[M]``, ``fill [M, d]``
    (`mmcoop.models.protocol.replace_removed`)."""
    return replace_removed(feats, keep, fill)


class FusionHead(nn.Module):
    """Base class of fusion heads over ``M`` features of width ``dim``."""

    def __init__(self, num_modalities: int, dim: int, num_classes: int) -> None:
        super().__init__()
        self.num_modalities, self.dim, self.num_classes = num_modalities, dim, num_classes

    def fuse(self, feats: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Logits ``[B, C]`` from (already masked) features ``[B, M, d]``."""
        raise NotImplementedError

    def forward(self, feats: Tensor, keep: Tensor | None = None, fill: Tensor | None = None) -> Tensor:
        return self.fuse(apply_keep(feats, keep, fill))

    def partial_logits(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        """For heads linear in the features: per-modality logits ``[B, M, C]`` and bias ``[C]``."""
        raise NotImplementedError

    def coalition_logits(self, feats: Tensor, masks: Tensor, fill: Tensor | None = None) -> Tensor:
        """Logits of coalitions: ``feats [B, M, d]``, ``masks bool[K, M]`` (shared) or
        ``[B, K, M]`` (per sample) -> ``[B, K, C]``.

        Generic path: one batched call of the head on ``B*K`` masked feature sets.
        Heads linear in the features implement `partial_logits` and take the
        fast path: per-modality logits once, then one product with the masks.
        """
        b, m, d = feats.shape
        per_sample = masks.dim() == 3
        try:
            part, bias = self.partial_logits(feats)  # [B, M, C], [C]
        except NotImplementedError:
            k = masks.shape[-2]
            x = feats.unsqueeze(1).expand(b, k, m, d).reshape(b * k, m, d)
            keep = (masks if per_sample else masks.unsqueeze(0).expand(b, k, m)).reshape(b * k, m)
            return self.forward(x, keep, fill).reshape(b, k, -1)
        w = masks.to(part.dtype)
        if per_sample:
            out = torch.einsum("bkm,bmc->bkc", w, part) + bias
        else:
            # [B, C, M] @ [M, K] -> [B, C, K], returned as a [B, K, C] view: on CPU this
            # product plus the argmax over C took a third of the time of the einsum
            # layout for mfeat (B=512, K=64, C=10), the largest fixed cost of valuation.
            out = torch.matmul(part.transpose(1, 2), w.T).add_(bias.unsqueeze(-1)).transpose(1, 2)
        if fill is not None:
            fill_part, _ = self.partial_logits(fill.unsqueeze(0).to(feats.dtype))  # [1, M, C]
            absent = torch.einsum("...km,mc->...kc", 1.0 - w, fill_part[0])
            out = out + (absent if per_sample else absent.unsqueeze(0))
        return out


@FUSIONS.register("concat")
class ConcatFusion(FusionHead):
    """The paper's head: concatenate the ``M`` features and apply one linear layer."""

    def __init__(self, num_modalities: int, dim: int, num_classes: int) -> None:
        super().__init__(num_modalities, dim, num_classes)
        self.fc = nn.Linear(num_modalities * dim, num_classes)

    def fuse(self, feats: Tensor) -> Tensor:
        return self.fc(feats.flatten(1))

    def partial_logits(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        w = self.fc.weight.view(self.num_classes, self.num_modalities, self.dim)  # [C, M, d]
        return torch.einsum("bmd,cmd->bmc", feats, w), self.fc.bias


@FUSIONS.register("sum")
class SumFusion(FusionHead):
    """One linear layer per modality, logits summed (OGM-GE's ``sum`` fusion)."""

    def __init__(self, num_modalities: int, dim: int, num_classes: int) -> None:
        super().__init__(num_modalities, dim, num_classes)
        self.weight = nn.Parameter(torch.empty(num_modalities, num_classes, dim))
        self.bias = nn.Parameter(torch.zeros(num_modalities, num_classes))
        bound = 1.0 / dim**0.5
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def fuse(self, feats: Tensor) -> Tensor:
        return torch.einsum("bmd,mcd->bc", feats, self.weight) + self.bias.sum(0)

    def partial_logits(self, feats: Tensor) -> tuple[Tensor, Tensor]:
        return torch.einsum("bmd,mcd->bmc", feats, self.weight), self.bias.sum(0)

    @property
    def modality_bias(self) -> Tensor:
        """Each modality's own bias ``[M, C]`` (the fused bias is their sum): the bias of a
        modality's own logits ``W_m z_m + b_m`` (OGM-GE ``main.py`` ``train_epoch``, ``sum`` fusion)."""
        return self.bias


class _PairFusion(FusionHead):
    """Base of the two-modality heads of OGM-GE (``film``, ``gated``)."""

    def __init__(self, num_modalities: int, dim: int, num_classes: int) -> None:
        if num_modalities != 2:
            raise ConfigError(
                f"model.fusion={self.name!r} fuses exactly 2 modalities (one modulates the other); the data has "
                f"{num_modalities}: use fusion concat or sum"
            )
        super().__init__(num_modalities, dim, num_classes)


@FUSIONS.register("film")
class FiLMFusion(_PairFusion):
    """Feature-wise linear modulation: the first modality's feature ``x`` gives a scale and a
    shift for the second's ``y``: ``fc_out(gamma(x) * y + beta(x))``.

    As OGM-GE's ``FiLM`` (GeWu-Lab/OGM-GE_CVPR2022, ``models/fusion_modules.py``, with
    ``x_film=True``: audio, the first modality there, modulates visual). A removed
    modality's feature is replaced before the head (zeros: the removed ``x`` leaves
    ``beta``'s bias as the shift).
    """

    name = "film"

    def __init__(self, num_modalities: int, dim: int, num_classes: int) -> None:
        super().__init__(num_modalities, dim, num_classes)
        self.film = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, num_classes)

    def fuse(self, feats: Tensor) -> Tensor:
        gamma, beta = self.film(feats[:, 0]).chunk(2, dim=-1)
        return self.out(gamma * feats[:, 1] + beta)


@FUSIONS.register("gated")
class GatedFusion(_PairFusion):
    """Gated fusion: ``fc_out(sigmoid(fc_x(x)) * fc_y(y))``, the first modality gating the second.

    As OGM-GE's ``GatedFusion`` (``models/fusion_modules.py``, ``x_gate=True``).
    """

    name = "gated"

    def __init__(self, num_modalities: int, dim: int, num_classes: int) -> None:
        super().__init__(num_modalities, dim, num_classes)
        self.fc_x = nn.Linear(dim, dim)
        self.fc_y = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, num_classes)

    def fuse(self, feats: Tensor) -> Tensor:
        return self.out(torch.sigmoid(self.fc_x(feats[:, 0])) * self.fc_y(feats[:, 1]))
