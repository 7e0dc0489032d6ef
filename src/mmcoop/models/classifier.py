"""The multimodal classifier: one encoder per modality -> fusion head with a keep-mask."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from mmcoop.models.freezing import frozen_part
from mmcoop.models.protocol import replace_removed
from mmcoop.utils.modes import eval_mode


class MultimodalClassifier(nn.Module):
    """Encoders per modality, features stacked ``[B, M, D]``, then a fusion head.

    Implements the model contract of `mmcoop.models.protocol`, including the
    ``coalition_logits`` fast path of heads that are linear in the features.

    Args:
        modalities: modality names in order (index k of every keep-mask).
        encoders: name -> module mapping ``[B, *shape]`` to ``[B, d_k]``.
        head: a `FusionHead` taking ``[B, M, D]``.

    Example:
        >>> logits = model(batch["inputs"], keep=batch["keep"])  # [B, C]
    """

    def __init__(self, modalities: Sequence[str], encoders: nn.ModuleDict, head: nn.Module) -> None:
        super().__init__()
        self.modalities = list(modalities)
        self.encoders = encoders
        self.head = head
        # Feature used for removed modalities (None = zeros, the paper's convention).
        self.fill: Tensor | None = None
        # Feature width per modality (None until known: from ``out_dim`` or the first pass).
        self.feature_dims: list[int | None] = [getattr(encoders[n], "out_dim", None) for n in self.modalities]

    def train(self, mode: bool = True) -> "MultimodalClassifier":
        """Set train/eval mode; frozen encoders (`freeze_encoder`)
        keep their frozen part in eval mode (fixed BatchNorm statistics, no dropout)."""
        super().train(mode)
        for enc in self.encoders.values():
            if getattr(enc, "frozen", False):
                frozen_part(enc).eval()
        return self

    @property
    def num_modalities(self) -> int:
        return len(self.modalities)

    @property
    def num_classes(self) -> int | None:
        return getattr(self, "_num_classes", None) or getattr(self.head, "num_classes", None)

    def _width(self, k: int, x: Tensor) -> int:
        """Feature width of modality ``k``; probed in eval mode on two rows if never seen."""
        if self.feature_dims[k] is None:
            enc = self.encoders[self.modalities[k]]
            with eval_mode(enc), torch.no_grad():
                self.feature_dims[k] = int(enc(x[:1].expand(2, *x.shape[1:])).shape[-1])
        return int(self.feature_dims[k])  # type: ignore[arg-type]

    def encode(self, inputs: dict[str, Tensor], keep: Tensor | None = None) -> Tensor:
        """Features ``[B, M, D]`` (``D`` = the widest modality; narrower ones zero-padded).

        With ``keep [B, M]``, modality k's encoder runs only on the rows that keep k
        (re-sampled unimodal units cost one encoder pass, not M); the other rows get
        zeros there, which `fuse` replaces by its fill anyway.
        """
        parts: list[tuple[Tensor | None, Tensor | None]] = []  # (rows or None=all, features)
        for k, name in enumerate(self.modalities):
            try:
                x = inputs[name]
            except KeyError:
                raise KeyError(f"inputs lack modality {name!r}; the model expects {self.modalities}") from None
            enc = self.encoders[name]
            if keep is None or bool(keep[:, k].all()):
                f = enc(x)
                parts.append((None, f))
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
        for k, (_, f) in enumerate(parts):
            if f is not None:
                if f.dim() != 2:
                    raise ValueError(
                        f"encoder of modality {self.modalities[k]!r} returned shape {tuple(f.shape)}; "
                        "encoders must return pooled features [B, d]"
                    )
                self.feature_dims[k] = int(f.shape[1])
        computed = [f for _, f in parts if f is not None]
        param = next(self.parameters())
        dtype, dev = (computed[0].dtype, computed[0].device) if computed else (param.dtype, param.device)
        b = next(iter(inputs.values())).shape[0]
        widths = [self._width(k, inputs[n]) for k, n in enumerate(self.modalities)]
        d = max(widths)
        out = []
        for (rows, f), w in zip(parts, widths):
            if rows is None and w == d:
                out.append(f.to(dtype))  # type: ignore[union-attr]
                continue
            z = torch.zeros(b, d, dtype=dtype, device=dev)
            if f is not None:
                if rows is None:
                    z[:, :w] = f.to(dtype)
                else:
                    z[rows, :w] = f.to(dtype)
            out.append(z)
        return torch.stack(out, dim=1)

    def fuse(self, feats: Tensor, keep: Tensor | None = None) -> Tensor:
        """Logits ``[B, C]`` from features ``[B, M, D]`` with removed modalities replaced."""
        return self.head(feats, keep, self.fill)

    def coalition_logits(self, feats: Tensor, masks: Tensor, fill: Tensor | None = None) -> Tensor:
        """Logits ``[B, K, C]`` of coalitions ``masks`` (``[K, M]`` or ``[B, K, M]``); see
        `coalition_logits`."""
        return self.head.coalition_logits(feats, masks, self.fill if fill is None else fill)

    def forward(self, inputs: dict[str, Tensor], keep: Tensor | None = None) -> Tensor:
        return self.fuse(self.encode(inputs, keep), keep)


__all__ = ["MultimodalClassifier", "replace_removed"]
