"""The multimodal classifier: one encoder per modality -> fusion head with a keep-mask."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmcoop.models.fusion import FusionHead


class MultimodalClassifier(nn.Module):
    """Encoders per modality, features stacked ``[B, M, d]``, then a fusion head.

    Args:
        modalities: modality names in order (index k of every keep-mask).
        encoders: name -> module mapping ``[B, *shape]`` to ``[B, d]``.
        head: a :class:`~mmcoop.models.fusion.FusionHead`.

    Example:
        >>> logits = model(batch["inputs"], keep=batch["keep"])  # [B, C]
    """

    def __init__(self, modalities: list[str], encoders: nn.ModuleDict, head: FusionHead) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.encoders = encoders
        self.head = head
        # Feature used for removed modalities (None = zeros, the paper's convention).
        self.fill: Tensor | None = None

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    def encode(self, inputs: dict[str, Tensor], keep: Tensor | None = None) -> Tensor:
        """Features ``[B, M, d]``.

        With ``keep [B, M]``, modality k's encoder runs only on the rows that keep k
        (re-sampled unimodal units cost one encoder pass, not M); the other rows get
        zeros there, which the head replaces by its fill anyway.
        """
        parts: list[tuple[Tensor | None, Tensor | None]] = []  # (rows or None=all, features)
        for k, name in enumerate(self.modalities):
            x, enc = inputs[name], self.encoders[name]
            if keep is None or bool(keep[:, k].all()):
                parts.append((None, enc(x)))
                continue
            rows = keep[:, k].nonzero(as_tuple=True)[0]
            if rows.numel() == 0:
                parts.append((rows, None))
            elif rows.numel() == 1 and self.training:
                # BatchNorm cannot normalise one training sample: encode it beside a neighbour.
                pair = torch.cat([rows, (rows + 1) % x.shape[0]])
                parts.append((rows, enc(x.index_select(0, pair))[:1]))
            else:
                parts.append((rows, enc(x.index_select(0, rows))))
        computed = [f for _, f in parts if f is not None]
        param = next(self.head.parameters())
        dtype, dev = (computed[0].dtype, computed[0].device) if computed else (param.dtype, param.device)
        b = next(iter(inputs.values())).shape[0]
        out = []
        for rows, f in parts:
            if rows is None:
                out.append(f)
                continue
            z = torch.zeros(b, self.head.dim, dtype=dtype, device=dev)
            out.append(z if f is None else z.index_copy(0, rows, f.to(dtype)))
        return torch.stack(out, dim=1)

    def fuse(self, feats: Tensor, keep: Tensor | None = None) -> Tensor:
        """Logits ``[B, C]`` from features ``[B, M, d]`` with removed modalities replaced."""
        return self.head(feats, keep, self.fill)

    def forward(self, inputs: dict[str, Tensor], keep: Tensor | None = None) -> Tensor:
        return self.fuse(self.encode(inputs, keep), keep)
