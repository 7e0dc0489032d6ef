"""Transformer encoders trained from scratch: token ids ``[B, L]`` and feature sequences ``[B, T, D]``.

Both embed their input to width ``width``, add a learned position embedding, prepend a
learned ``[CLS]`` vector, run ``nn.TransformerEncoder`` (pre-norm layers, GELU) with a
key-padding mask, and pool either the ``[CLS]`` output (``pooling="cls"``) or the mean
over the real positions (``pooling="mean"``), then project to ``dim``.

- ``tokens`` (also ``transformer-tokens``): ids ``[B, L]``, padding where
  ``ids == pad_id`` (the spec's). The ``[CLS]`` position is never masked, so an all-padding
  text (the input-level valuation baseline) has a defined feature.
- ``transformer-sequence``: CMU-MOSEI style features ``[B, T, D]`` through a linear
  embedding (the default ``sequence`` encoder stays the small 1-D CNN); with
  ``mask_zeros=True`` a time step whose features are all zero counts as padding (the
  unaligned MOSEI pickles pad with zeros). BalanceBenchmark (GeWu-Lab/BalanceBenchmark,
  commit 4c1482f, ``configs/encoder_config.yaml``) encodes MOSEI's three feature
  sequences with Transformer encoders of this shape (embedding, positions, encoder
  layers, pooled output); this module is written from that description, not its code.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from mmcoop.errors import ConfigError, DataError
from mmcoop.models.encoders import ENCODERS

POOLINGS = ("cls", "mean")


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``x`` ``[B, L, H]`` over the positions where ``mask`` ``[B, L]`` is True -> ``[B, H]``
    (zeros for a row without any).

    Example:
        >>> masked_mean(torch.tensor([[[1.0], [3.0], [9.0]]]), torch.tensor([[True, True, False]]))
        tensor([[2.]])
    """
    m = mask.unsqueeze(-1).to(x.dtype)
    return (x * m).sum(1) / m.sum(1).clamp_min(1.0)


def check_pooling(pooling: str, valid: tuple[str, ...], what: str) -> str:
    """``pooling`` if it is one of ``valid``, else a `ConfigError` naming ``what``."""
    if pooling not in valid:
        raise ConfigError(f"{what}: unknown pooling {pooling!r}; valid: {', '.join(valid)}")
    return pooling


class TransformerTrunk(nn.Module):
    """``[CLS]`` + positions + ``nn.TransformerEncoder`` + pooling + projection, on embedded inputs.

    Args:
        length: maximum sequence length (without ``[CLS]``).
        dim: output width.
        width: model width ``H`` (divisible by ``heads``).
        heads: attention heads.
        layers: encoder layers.
        ff: feed-forward width (default ``4 * width``).
        dropout: dropout of the encoder layers.
        pooling: ``cls`` or ``mean``.
    """

    def __init__(
        self,
        length: int,
        dim: int,
        width: int,
        heads: int,
        layers: int,
        ff: int | None,
        dropout: float,
        pooling: str,
    ) -> None:
        super().__init__()
        if width < 1 or heads < 1 or width % heads:
            raise ConfigError(f"transformer encoder: width {width} must be a positive multiple of heads {heads}")
        if layers < 1:
            raise ConfigError(f"transformer encoder: layers must be >= 1, got {layers}")
        self.pooling = check_pooling(pooling, POOLINGS, "transformer encoder")
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        self.pos = nn.Parameter(torch.zeros(1, length + 1, width))
        nn.init.normal_(self.cls, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            width, heads, ff or 4 * width, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.proj = nn.Linear(width, dim)
        self.out_dim = dim

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """Embedded inputs ``[B, L, H]`` with real positions ``mask`` ``[B, L]`` -> ``[B, dim]``."""
        b, n = x.shape[:2]
        h = torch.cat([self.cls.expand(b, -1, -1).to(x.dtype), x], dim=1) + self.pos[:, : n + 1].to(x.dtype)
        real = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        out = self.encoder(h, src_key_padding_mask=~real)
        pooled = out[:, 0] if self.pooling == "cls" else masked_mean(out[:, 1:], mask)
        return self.proj(pooled)


@ENCODERS.register("transformer-tokens")
@ENCODERS.register("tokens")
class TokenTransformer(nn.Module):
    """Token ids ``[B, L]`` (int64) -> ``[B, dim]``: embedding + positions + Transformer encoder + pooling.

    Args:
        shape: per-sample shape ``[L]``.
        dim: output width.
        spec: the modality's spec (gives ``pad_id`` and ``vocab_size``; passed by the builder).
        vocab_size: number of ids (default: the spec's; one of them is required).
        pad_id: padding id (default: the spec's, else 0).
        width, heads, layers, ff, dropout, pooling: see `TransformerTrunk`.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        dim: int = 64,
        *,
        spec: Any = None,
        vocab_size: int | None = None,
        pad_id: int | None = None,
        width: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff: int | None = None,
        dropout: float = 0.1,
        pooling: str = "cls",
    ) -> None:
        super().__init__()
        if len(shape) != 1:
            raise ConfigError(f"tokens encoder expects a per-sample shape [L], got {list(shape)}")
        vocab = vocab_size if vocab_size is not None else getattr(spec, "vocab_size", None)
        if vocab is None:
            raise ConfigError(
                "tokens encoder: the vocabulary size is unknown; give the modality spec a vocab_size "
                "(mmcoop.data.text.tokenize returns it) or the encoder option vocab_size"
            )
        self.pad_id = int(pad_id if pad_id is not None else getattr(spec, "pad_id", 0))
        self.vocab_size = int(vocab)
        self.embed = nn.Embedding(self.vocab_size, width, padding_idx=self.pad_id)
        self.trunk = TransformerTrunk(int(shape[0]), dim, width, heads, layers, ff, dropout, pooling)
        self.out_dim = dim

    def forward(self, ids: Tensor) -> Tensor:
        if ids.is_floating_point():
            raise DataError(f"tokens encoder got {ids.dtype} inputs; a tokens modality holds int64 ids")
        if ids.numel() and int(ids.max()) >= self.vocab_size:
            raise DataError(
                f"token id {int(ids.max())} is outside the vocabulary of {self.vocab_size} ids; give the spec "
                "(or encoder option) the tokenizer's vocab_size"
            )
        return self.trunk(self.embed(ids), ids != self.pad_id)


@ENCODERS.register("transformer-sequence")
class SequenceTransformer(nn.Module):
    """Feature sequences ``[B, T, D]`` -> ``[B, dim]``: linear embedding + positions + Transformer encoder.

    Args:
        shape: per-sample shape ``[T, D]``.
        dim: output width.
        mask_zeros: treat all-zero time steps as padding.
        width, heads, layers, ff, dropout, pooling: see `TransformerTrunk`.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        dim: int = 64,
        *,
        mask_zeros: bool = False,
        width: int = 64,
        heads: int = 4,
        layers: int = 2,
        ff: int | None = None,
        dropout: float = 0.1,
        pooling: str = "cls",
    ) -> None:
        super().__init__()
        if len(shape) != 2:
            raise ConfigError(f"transformer-sequence expects a per-sample shape [T, D], got {list(shape)}")
        self.mask_zeros = bool(mask_zeros)
        self.embed = nn.Linear(int(shape[1]), width)
        self.trunk = TransformerTrunk(int(shape[0]), dim, width, heads, layers, ff, dropout, pooling)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        mask = (x != 0).any(-1) if self.mask_zeros else torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return self.trunk(self.embed(x), mask)
