"""Exact Shapley values from a coalition-value table, as one matrix product.

For ``M`` players and values ``v [B, 2**M]`` indexed by coalition bitmask (see
`mmcoop.valuation.coalitions`), the Shapley value of player ``k`` is

    phi_k = sum_{S not containing k} |S|!(M-|S|-1)!/M! * (v(S + k) - v(S))

which is linear in ``v``: ``phi = v @ W`` with the signed weight matrix

    W[S, k] = +(|S|-1)!(M-|S|)!/M!   if k in S
    W[S, k] = -|S|!(M-|S|-1)!/M!     if k not in S

(`shapley_matrix`). One ``[B, 2**M] x [2**M, M]`` matmul values a batch.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor

from mmcoop.valuation.coalitions import coalition_masks

#: Largest ``M`` accepted by `shapley_matrix` (the table has ``2**M`` rows).
MAX_EXACT_MODALITIES = 20


@lru_cache(maxsize=32)
def _shapley_matrix_scaled(m: int) -> Tensor:
    """``M! * W`` in float64: integer entries ``(|S|-1)!(M-|S|)!`` / ``-|S|!(M-|S|-1)!``."""
    masks = coalition_masks(m)  # [2**m, m]
    sizes = masks.sum(1)  # [2**m]
    f = math.factorial
    w_in = torch.tensor([0.0] + [float(f(s - 1) * f(m - s)) for s in range(1, m + 1)], dtype=torch.float64)
    w_out = torch.tensor([float(f(s) * f(m - s - 1)) for s in range(m)] + [0.0], dtype=torch.float64)
    return torch.where(masks, w_in[sizes].unsqueeze(1), -w_out[sizes].unsqueeze(1))


@lru_cache(maxsize=32)
def _shapley_matrix_f64(m: int) -> Tensor:
    # (s-1)!(M-s)!/M! = 1 / (M * C(M-1, s-1));  s!(M-s-1)!/M! = 1 / (M * C(M-1, s))
    masks = coalition_masks(m)
    sizes = masks.sum(1)
    w_in = torch.tensor([0.0] + [1.0 / (m * math.comb(m - 1, s - 1)) for s in range(1, m + 1)], dtype=torch.float64)
    w_out = torch.tensor([1.0 / (m * math.comb(m - 1, s)) for s in range(m)] + [0.0], dtype=torch.float64)
    return torch.where(masks, w_in[sizes].unsqueeze(1), -w_out[sizes].unsqueeze(1))


@lru_cache(maxsize=64)
def _scaled_on(m: int, device: torch.device) -> Tensor:
    return _shapley_matrix_scaled(m).to(device)


@lru_cache(maxsize=64)
def _shapley_matrix_cached(m: int, dtype: torch.dtype, device: torch.device | None) -> Tensor:
    return _shapley_matrix_f64(m).to(dtype=dtype, device=device)


def shapley_matrix(
    num_modalities: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> Tensor:
    """The signed Shapley weight matrix ``W`` with ``phi = values @ W``.

    Built once in float64 and cached per ``(M, dtype, device)``; treat it as read-only.

    Args:
        num_modalities: ``M`` (1 to `MAX_EXACT_MODALITIES`).
        dtype: dtype of the result.
        device: device of the result (default CPU).

    Returns:
        ``[2**M, M]``: ``W[S, k] = (|S|-1)!(M-|S|)!/M!`` if ``k in S`` else ``-|S|!(M-|S|-1)!/M!``.
            Each column sums to 0; row ``2**M-1`` is ``1/M``; row 0 is ``-1/M``.
    """
    m = int(num_modalities)
    if m < 1 or m > MAX_EXACT_MODALITIES:
        raise ValueError(
            f"exact Shapley values need 1 <= M <= {MAX_EXACT_MODALITIES} modalities, got {num_modalities}; "
            "use the permutation estimator (mmcoop.valuation.shapley_permutation) for more"
        )
    return _shapley_matrix_cached(m, dtype, None if device is None else torch.device(device))


def num_modalities_of(values: Tensor) -> int:
    """``M`` such that ``values.shape[-1] == 2**M`` (raises ``ValueError`` otherwise)."""
    k = int(values.shape[-1])
    m = k.bit_length() - 1
    if k < 2 or (1 << m) != k:
        raise ValueError(f"coalition values need a last dimension of 2**M (M >= 1), got {k}")
    return m


def shapley_from_coalitions(values: Tensor) -> Tensor:
    """Exact Shapley values of every sample from its coalition values.

    The product runs in float64 with the integer matrix ``M! * W``, then divides by
    ``M!``: for integer-valued games (``paper``, ``correct``) every phi is the
    correctly rounded rational, e.g. a balanced sample gets exactly ``phi_k = 1``
    for any ``M`` (float32 sums of ``2**M`` fractions would miss it by ~1e-5 at M=12,
    which matters for the re-sampling thresholds).

    Args:
        values: ``[..., 2**M]`` with column ``c`` the value of coalition bitmask ``c``
            (column 0 = empty coalition, column ``2**M-1`` = all modalities).

    Returns:
        ``[..., M]`` Shapley values in ``values``' dtype if it is float32/float64, else
            float32. Efficiency holds: ``phi.sum(-1) == values[..., -1] - values[..., 0]``.
    """
    m = num_modalities_of(values)
    out_dtype = values.dtype if values.dtype in (torch.float32, torch.float64) else torch.float32
    phi = (values.to(torch.float64) @ _scaled_on(m, values.device)) / float(math.factorial(m))
    return phi.to(out_dtype)
