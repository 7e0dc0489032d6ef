"""Permutation-sampling estimate of Shapley values (for many modalities).

Shapley values are the expected marginal contribution of a player when players
join in a uniformly random order:

    phi_k = E_pi [ v(P_pi(k) + k) - v(P_pi(k)) ]

with ``P_pi(k)`` the players before ``k`` in ``pi``. Each sampled permutation
gives an unbiased estimate of the whole vector ``phi`` (and satisfies efficiency
exactly: its contributions sum to ``v(all) - v(empty)``). Every sample draws its
own permutations, so errors average out in dataset-level means. With
``antithetic=True`` each permutation is paired with its reverse; the pair mean is
one draw (exact for M=2, lower variance in general).

The value function can be a precomputed table ``[B, 2**M]`` (indexed by coalition
bitmask, see `mmcoop.valuation.coalitions`) or a callable that evaluates
only the coalitions the permutations visit (``2**M`` never materialised).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from mmcoop.valuation.shapley import num_modalities_of

#: ``fn(masks bool[B|1, K, M]) -> values [B, K]``: values of per-sample coalitions
#: (a leading 1 = the same coalitions for every sample; masks may arrive on the CPU).
CoalitionValueFn = Callable[[Tensor], Tensor]

_CHUNK_ELEMENTS = 1 << 22


def _float_dtype(t: Tensor) -> torch.dtype:
    if t.is_floating_point() and t.dtype not in (torch.float16, torch.bfloat16):
        return t.dtype
    return torch.float32


def shapley_permutation(
    values: Tensor | CoalitionValueFn,
    num_permutations: int = 64,
    *,
    num_modalities: int | None = None,
    antithetic: bool = True,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Monte-Carlo Shapley values by sampling orderings of the modalities.

    Args:
        values: either the coalition-value table ``[B, 2**M]`` (column ``c`` = value of
            bitmask ``c``; also ``[2**M]`` for one sample), or a callable
            ``fn(masks bool[B|1, K, M]) -> [B, K]`` (then ``num_modalities`` is required).
        num_permutations: orderings drawn per sample. With ``antithetic`` it is
            rounded up to an even number (``ceil(P/2)`` pairs).
        num_modalities: ``M``; inferred from a table, required for a callable.
        antithetic: pair every permutation with its reverse.
        generator: random source (its device is where permutations are drawn);
            ``None`` = torch's global RNG on the values' device.
        chunk_size: permutations (pairs with ``antithetic``) evaluated per step;
            default bounds memory to a few million elements per step.

    Returns:
        ``(phi_hat [B, M], stderr [B, M])`` in the values' floating dtype.
            ``stderr`` is the standard error of the mean over independent draws (pairs
            with ``antithetic``); NaN with a single draw, 0 for M=1 (exact).

    Example:
        >>> v = torch.rand(8, 2**5)
        >>> phi, se = shapley_permutation(v, 256, generator=torch.Generator().manual_seed(0))
    """
    if num_permutations < 1:
        raise ValueError(f"num_permutations must be >= 1, got {num_permutations}")
    if isinstance(values, Tensor):
        squeeze = values.dim() == 1
        table = values.unsqueeze(0) if squeeze else values
        if table.dim() != 2:
            raise ValueError(f"coalition values must be [B, 2**M], got shape {tuple(values.shape)}")
        m = num_modalities_of(table)
        if num_modalities is not None and num_modalities != m:
            raise ValueError(f"num_modalities={num_modalities} but the table has 2**{m} columns")
        dtype = _float_dtype(table)
        table = table.to(dtype)
        b, device = table.shape[0], table.device
        v_empty, v_full = table[:, 0], table[:, -1]

        bit = torch.ones((), dtype=torch.int64, device=device) << torch.arange(m, device=device)

        def interior(prefix: Tensor) -> Tensor:  # prefix masks [B, P, M-1, M] -> values [B, P, M-1]
            idx = (prefix.to(torch.int64) * bit).sum(-1)  # coalition bitmask of each prefix
            return table.gather(1, idx.reshape(b, -1)).reshape(idx.shape)

    else:
        squeeze = False
        if num_modalities is None:
            raise ValueError("num_modalities is required when values is a callable")
        m = int(num_modalities)
        if m < 1:
            raise ValueError(f"num_modalities must be >= 1, got {m}")
        fn = values
        ends = torch.zeros(1, 2, m, dtype=torch.bool)
        ends[0, 1] = True
        v_ends = fn(ends)
        dtype = _float_dtype(v_ends)
        v_ends = v_ends.to(dtype)
        b, device = v_ends.shape[0], v_ends.device
        v_empty, v_full = v_ends[:, 0], v_ends[:, 1]

        def interior(prefix: Tensor) -> Tensor:
            p = prefix.shape[1]
            return fn(prefix.reshape(b, p * (m - 1), m)).to(dtype).reshape(b, p, m - 1)

    if m == 1:
        phi = (v_full - v_empty).unsqueeze(-1)
        out = (phi, torch.zeros_like(phi))
        return (out[0][0], out[1][0]) if squeeze else out

    draws = math.ceil(num_permutations / 2) if antithetic else int(num_permutations)
    per_draw = (2 if antithetic else 1) * (m + 1) * m
    chunk = chunk_size or max(1, _CHUNK_ELEMENTS // max(1, b * per_draw))
    gen_device = generator.device if generator is not None else device
    steps = torch.arange(1, m, device=device).view(m - 1, 1)

    n = 0
    mean = torch.zeros(b, m, dtype=torch.float64, device=device)
    m2 = torch.zeros(b, m, dtype=torch.float64, device=device)
    done = 0
    while done < draws:
        pc = min(chunk, draws - done)
        keys = torch.rand(b, pc, m, generator=generator, device=gen_device).to(device)
        perm = keys.argsort(-1)  # [B, pc, M] uniformly random orderings
        if antithetic:
            perm = torch.cat([perm, perm.flip(-1)], dim=1)
        rank = perm.argsort(-1)  # [B, P, M]: position of each modality in its ordering
        prefix = rank.unsqueeze(-2) < steps  # [B, P, M-1, M]: the first j modalities, j = 1..M-1
        v = torch.cat(
            [
                v_empty.view(b, 1, 1).expand(b, perm.shape[1], 1),
                interior(prefix),
                v_full.view(b, 1, 1).expand(b, perm.shape[1], 1),
            ],
            dim=-1,
        )  # [B, P, M+1]: value of each prefix of the ordering
        # modality k joins at position rank[k]: its marginal contribution is diff[rank[k]] (gather: deterministic)
        x = v.diff(dim=-1).gather(-1, rank).double()
        if antithetic:
            x = 0.5 * (x[:, :pc] + x[:, pc:])  # [B, pc, M] independent draws (pair means)
        mb = x.mean(1)
        m2b = ((x - mb.unsqueeze(1)) ** 2).sum(1)
        delta = mb - mean
        tot = n + pc
        mean = mean + delta * (pc / tot)
        m2 = m2 + m2b + delta**2 * (n * pc / tot)
        n = tot
        done += pc
    var = m2 / (n - 1) if n > 1 else torch.full_like(m2, float("nan"))
    stderr = (var.clamp_min(0) / n).sqrt()
    phi, stderr = mean.to(dtype), stderr.to(dtype)
    return (phi[0], stderr[0]) if squeeze else (phi, stderr)
