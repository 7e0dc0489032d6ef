"""Degrading one modality per sample at fetch time (the lazy form of `mmcoop.data.debias`).

For sources that are not held in memory the degradation cannot be precomputed, so
`DegradedSource` wraps the source and applies it to every fetched batch. The
noise must be the same whichever batch, worker or epoch a sample is fetched in, so
it is not drawn from a stateful RNG but computed from a counter: element ``e`` of
sample ``row`` gets `hashed_normal` ``(key, row, e)`` — two 32-bit hashes
(Wellons' "lowbias32" integer hash, https://nullprogram.com/blog/2018/07/31/) turned
into a standard normal by the Box-Muller transform. Batched, device-agnostic, no
per-sample Python loop.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from mmcoop.data.protocol import Source, sample_ids, sample_waveforms

M32 = 0xFFFFFFFF


def _mul32(x: Tensor, c: int) -> Tensor:
    """``x * c mod 2**32`` for int64 ``x`` in ``[0, 2**32)`` without int64 overflow (16-bit halves of ``c``)."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & M32


def hash32(x: Tensor) -> Tensor:
    """lowbias32 of int64 ``x`` (low 32 bits used) -> int64 in ``[0, 2**32)``."""
    x = x & M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def hashed_normal(key: int, rows: Tensor, shape: Sequence[int]) -> Tensor:
    """Standard normal noise ``[B, *shape]`` (float32) that depends only on ``(key, row, element)``.

    Args:
        key: stream key (e.g. seed and split), any int.
        rows: int64 ``[B]`` sample rows.
        shape: per-sample shape.
    """
    dev = rows.device
    numel = math.prod(shape)
    k = int(key) % 2**64
    k_lo, k_hi = k & M32, k >> 32
    r = rows.long()
    h_row = hash32(hash32((r & M32) ^ k_lo) ^ ((r >> 32) & M32) ^ k_hi)  # [B]
    e = torch.arange(numel, device=dev, dtype=torch.long)
    h_e = hash32(e * 2 + 0x9E3779B9), hash32(e * 2 + 1 + 0x9E3779B9)  # [E] two streams
    b1 = hash32(h_row[:, None] ^ h_e[0][None, :] ^ k_hi)
    b2 = hash32(hash32(h_row[:, None] + 0x632BE5AB) ^ h_e[1][None, :])
    u1 = (b1.double() + 0.5) / 2**32  # (0, 1)
    u2 = (b2.double() + 0.5) / 2**32
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
    return z.float().view(len(rows), *shape)


class DegradedSource:
    """``base`` with modality ``degraded[i]`` of sample ``i`` degraded at fetch time.

    Args:
        base: the source to degrade (not modified).
        degraded: int64 ``[N]`` modality index (in ``base.specs`` order) degraded per sample.
        modalities: indices of the modalities that may be degraded.
        mode: ``"noise"``: ``x' = (1 - s) x + s * sigma_k * eps``; ``"blank"``: ``x' = (1 - s) x``.
        strength: ``s`` in ``[0, 1]``.
        sigma: modality index -> noise scale ``sigma_k``.
        key: noise stream key (seed and split); ``eps`` comes from `hashed_normal`.
    """

    def __init__(
        self,
        base: Source,
        degraded: Tensor,
        modalities: Sequence[int],
        mode: str,
        strength: float,
        sigma: dict[int, float],
        key: int,
    ) -> None:
        self.base = base
        self.specs = list(base.specs)
        self.num_classes = int(base.num_classes)
        self.degraded = degraded.long()
        self.modalities = [int(k) for k in modalities]
        self.mode, self.strength, self.sigma, self.key = mode, float(strength), dict(sigma), int(key)
        self.extras = {**(getattr(base, "extras", None) or {}), "degraded": self.degraded}

    def __len__(self) -> int:
        return len(self.base)

    def sample_ids(self) -> list[str]:
        """The base source's ids (see `sample_ids`)."""
        return sample_ids(self.base)

    def waveforms(self, row: int) -> dict[str, tuple[Any, int]]:
        """The base source's raw audio of ``row`` (undegraded)."""
        return sample_waveforms(self.base, row)

    def labels(self) -> Tensor:
        return self.base.labels()

    def fetch(self, rows: Tensor, train: bool) -> dict[str, Any]:
        """The base's batch with each row's chosen modality degraded, plus ``degraded`` ``[B]``."""
        out = self.base.fetch(rows, train)
        deg = self.degraded.to(rows.device)[rows]
        inputs = dict(out["inputs"])
        s = self.strength
        for k in self.modalities:
            name = self.specs[k].name
            sel = (deg == k).nonzero().flatten()
            if len(sel) == 0:
                continue
            x = inputs[name].clone()
            xs = x[sel.to(x.device)]
            if self.mode == "noise":
                eps = hashed_normal(self.key * 131 + k, rows[sel].cpu(), xs.shape[1:]).to(x.device, x.dtype)
                xs = (1 - s) * xs + s * self.sigma[k] * eps
            else:
                xs = (1 - s) * xs
            x[sel.to(x.device)] = xs.to(x.dtype)
            inputs[name] = x
        out = {**out, "inputs": inputs}
        for k, v in self.extras.items():
            if k not in out:
                out[k] = v.to(rows.device)[rows]
        out["degraded"] = deg
        return out

    def __repr__(self) -> str:
        return f"DegradedSource({self.base!r}, mode={self.mode!r}, strength={self.strength})"


__all__ = ["DegradedSource", "hashed_normal", "hash32"]
