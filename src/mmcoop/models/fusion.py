"""Fusion heads that take a modality keep-mask.

A head maps stacked features ``[B, M, d]`` and a keep-mask (bool ``[B, M]`` or
``[M]``; ``None`` = keep all) to logits ``[B, C]``. A removed modality's feature is
replaced by ``fill`` (``[M, d]``, default zeros: the paper's convention), never by
re-running an encoder. Both built-in heads are linear in the features, so
:meth:`FusionHead.coalition_logits` evaluates all coalitions from per-modality
partial logits with one matrix product.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmcoop.utils.registry import Registry

FUSIONS: Registry[type["FusionHead"]] = Registry("fusion")


def apply_keep(feats: Tensor, keep: Tensor | None, fill: Tensor | None = None) -> Tensor:
    """Replace removed modalities' features: ``feats [B, M, d]``, ``keep [B, M]|[M]``, ``fill [M, d]``."""
    if keep is None:
        return feats
    k = keep.to(torch.bool)
    if k.dim() == 1:
        k = k.unsqueeze(0)
    k = k.unsqueeze(-1)
    if fill is None:
        return feats * k.to(feats.dtype)
    return torch.where(k, feats, fill.to(feats.dtype).unsqueeze(0))


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
        Heads linear in the features implement :meth:`partial_logits` and take the
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
