"""Re-sampling plans: pure functions from valuations (tensors) to extra training units.

A `ResamplingPlan` is a list of *units* ``(storage row, keep-mask)``. It can be
executed faithfully (the units appended to the training set, as the paper does) or fast
(the same units as weighted unimodal loss terms on the originals' forward pass); see
`mmcoop.methods.resampling`.

Facts taken from the official code (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation,
``code/datasets/dataloader.py`` and ``code/modality_level.py``), read for reference only:

* sample-level bands: ``0.4 < phi < 0.9`` -> 1 copy, ``-0.1 < phi < 0.4`` -> 2,
  ``phi < -0.1`` -> 3, otherwise 0. With the paper's value function phi only takes
  the values ``{-0.5, 0, 0.5, 1, 1.5}`` (M = 2), so the exact band edges never matter
  there; we use the paper's intervals ``[1, inf) -> 0, (0.4, 1) -> 1, (-0.1, 0.4] -> 2,
  (-inf, -0.1] -> 3`` (see `sample_level_plan`), which also handle continuous
  value functions without gaps.
* modality-level ratio: ``x = |gap_a - gap_v| * 2/3`` with ``gap_k = 1 - mean phi_k``;
  ``linear: alpha * x``, ``tanh: tanh(alpha * x)``, ``square`` (our ``pow1.5``):
  ``alpha * x ** 1.5``. The official code draws ``int(p * N)`` samples *with*
  replacement (``np.random.choice``) from the whole training set; we draw
  ``round(p * N)`` *distinct* samples with a seeded generator (p clipped to [0, 1]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import torch
from torch import Tensor

from mmcoop.errors import ConfigError

RatioFunc = Literal["linear", "tanh", "pow1.5"]
RATIO_FUNCS: tuple[str, ...] = ("linear", "tanh", "pow1.5")
#: Official sample-level bands as ``(lower bound, copies)``, highest band first; below the
#: last bound a sample gets ``max_copies``.
DEFAULT_THRESHOLDS: tuple[tuple[float, int], ...] = ((1.0, 0), (0.4, 1), (-0.1, 2))
DEFAULT_MAX_COPIES = 3


@dataclass
class ResamplingPlan:
    """Extra training units: unit ``u`` is storage row ``rows[u]`` with keep-mask ``keep[u]``.

    Attributes:
        rows: int64 ``[U]`` storage row (sample index) of each extra unit.
        keep: bool ``[U, M]`` keep-mask of each unit (exactly one modality for the paper's methods).
        modalities: optional modality names (index k of ``keep``), used by `summary`.
    """

    rows: Tensor
    keep: Tensor
    modalities: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        self.rows = self.rows.long().reshape(-1)
        self.keep = self.keep.bool()
        if self.keep.dim() != 2 or self.keep.shape[0] != self.rows.shape[0]:
            raise ValueError(f"keep must be [U, M] with U={self.rows.shape[0]}; got {tuple(self.keep.shape)}")
        if self.modalities is not None and len(self.modalities) != self.keep.shape[1]:
            raise ValueError(f"{len(self.modalities)} modality names for keep-masks of width {self.keep.shape[1]}")

    @classmethod
    def empty(cls, num_modalities: int, modalities: list[str] | None = None) -> "ResamplingPlan":
        """A plan with no units."""
        return cls(torch.zeros(0, dtype=torch.long), torch.zeros(0, num_modalities, dtype=torch.bool), modalities)

    @property
    def num_modalities(self) -> int:
        return int(self.keep.shape[1])

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def copies_per_sample(self, num_samples: int) -> Tensor:
        """int64 ``[num_samples, M]``: units of storage row ``i`` that keep modality ``k``.

        A unit keeping several modalities counts once for each modality it keeps.
        """
        m = self.num_modalities
        unit, k = self.keep.nonzero(as_tuple=True)
        idx = self.rows.to(k.device)[unit] * m + k
        return torch.bincount(idx, minlength=num_samples * m)[: num_samples * m].view(num_samples, m)

    def units_per_modality(self) -> Tensor:
        """int64 ``[M]``: number of units keeping each modality."""
        return self.keep.long().sum(0)

    def summary(self) -> dict[str, int]:
        """``{"units": U, "units_<modality>": count, ...}`` (modality index if names are unknown)."""
        names = self.modalities or [str(k) for k in range(self.num_modalities)]
        out = {"units": len(self)}
        out.update({f"units_{n}": int(c) for n, c in zip(names, self.units_per_modality().tolist())})
        return out

    def to(self, device: torch.device | str) -> "ResamplingPlan":
        return ResamplingPlan(self.rows.to(device), self.keep.to(device), self.modalities)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": self.rows.cpu(), "keep": self.keep.cpu(), "modalities": self.modalities}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "ResamplingPlan":
        return cls(state["rows"], state["keep"], state.get("modalities"))


def _units(rows: Tensor, copies: Tensor, modalities: list[str] | None) -> ResamplingPlan:
    """Expand per-(sample, modality) counts ``copies int64[N, M]`` into single-modality units."""
    n, m = copies.shape
    flat = torch.arange(n * m, device=copies.device).repeat_interleave(copies.reshape(-1))
    k = flat % m
    keep = torch.nn.functional.one_hot(k, m).bool()
    return ResamplingPlan(rows.long().to(copies.device)[flat // m], keep, modalities)


def check_thresholds(thresholds: Sequence[Sequence[float]], max_copies: int) -> tuple[tuple[float, int], ...]:
    """Validate and normalise sample-level bands; raises `ConfigError`."""
    try:
        out = tuple((float(t), int(c)) for t, c in thresholds)
    except (TypeError, ValueError):
        raise ConfigError(
            f"thresholds must be a list of [lower_bound, copies] pairs, highest first, e.g. {list(map(list, DEFAULT_THRESHOLDS))}; "
            f"got {thresholds!r}"
        ) from None
    bounds = [t for t, _ in out]
    if any(nxt >= cur for cur, nxt in zip(bounds, bounds[1:])):
        raise ConfigError(f"thresholds' lower bounds must be strictly decreasing; got {bounds}")
    if any(c < 0 for _, c in out) or int(max_copies) < 0:
        raise ConfigError(f"copies must be >= 0; got thresholds={list(out)} and max_copies={max_copies}")
    return out


def sample_copies(
    phi: Tensor,
    thresholds: Sequence[tuple[float, int]] = DEFAULT_THRESHOLDS,
    max_copies: int = DEFAULT_MAX_COPIES,
) -> Tensor:
    """Copies per (sample, modality) from contributions ``phi [N, M]`` -> int64 ``[N, M]``.

    ``thresholds`` are ``(lower bound t_i, copies c_i)``, highest bound first. A value
    falls in the first band it reaches: ``phi >= t_0`` for the top band (a balanced
    ``phi = 1`` needs nothing), ``phi > t_i`` for the others (a value exactly on a lower
    bound falls into the band below, as in the paper's ``(-0.1, 0.4]``); below every
    bound it gets ``max_copies``. Comparisons run in ``phi``'s dtype so that e.g. a
    float32 ``0.4`` is exactly on the bound. With the defaults::

        phi >= 1 -> 0,  0.4 < phi < 1 -> 1,  -0.1 < phi <= 0.4 -> 2,  phi <= -0.1 -> 3
    """
    bands = check_thresholds(thresholds, max_copies)
    phi = phi if phi.is_floating_point() else phi.double()
    out = torch.full(phi.shape, int(max_copies), dtype=torch.long, device=phi.device)
    for i, (t, c) in reversed(list(enumerate(bands))):  # lowest band first; higher bands overwrite
        bound = torch.tensor(t, dtype=phi.dtype, device=phi.device)
        hit = phi >= bound if i == 0 else phi > bound
        out = torch.where(hit, torch.full_like(out, c), out)
    return out


def sample_level_plan(
    phi: Tensor,
    rows: Tensor | None = None,
    thresholds: Sequence[tuple[float, int]] = DEFAULT_THRESHOLDS,
    max_copies: int = DEFAULT_MAX_COPIES,
    modalities: list[str] | None = None,
) -> ResamplingPlan:
    """Sample-level re-sampling: for each sample and modality k, ``copies[i, k]`` units keeping only k.

    Args:
        phi: float ``[N, M]`` per-sample modality contributions (Shapley values).
        rows: int64 ``[N]`` storage row of each valued sample (default ``arange(N)``).
        thresholds: bands ``(lower bound, copies)``, see `sample_copies`.
        max_copies: copies below the lowest bound.
        modalities: optional names for `ResamplingPlan.summary`.

    Returns:
        A plan with ``copies.sum()`` single-modality units, ordered by (sample, modality).
    """
    if phi.dim() != 2:
        raise ValueError(f"phi must be [N, M]; got shape {tuple(phi.shape)}")
    rows = torch.arange(phi.shape[0]) if rows is None else rows
    if rows.shape[0] != phi.shape[0]:
        raise ValueError(f"{rows.shape[0]} rows for {phi.shape[0]} valued samples")
    return _units(rows, sample_copies(phi, thresholds, max_copies), modalities)


def _as_vector(x: Tensor | Sequence[float]) -> Tensor:
    return torch.as_tensor(x, dtype=torch.float64).reshape(-1).cpu()


def modality_level_ratio(mean_phi: Tensor | Sequence[float], alpha: float = 1.0, func: str = "linear") -> Tensor:
    """Re-sampling ratio per modality, float64 ``[M]``.

    ``gap_k = 1 - mean_phi_k`` and ``x_k = (gap_k - min_j gap_j) * 2/3``. Then
    ``linear: alpha * x``, ``tanh: tanh(alpha * x)``, ``pow1.5: alpha * x ** 1.5``
    (the official code's forms; its ``square`` is our ``pow1.5``), clipped to [0, 1].
    For M = 2 only the modality with the larger gap has a non-zero ratio and it equals
    the paper's ``p = alpha * |gap_a - gap_v| * 2/3`` (through ``func``). For M > 2 each
    modality is compared with the best-served one (smallest gap).
    """
    if func not in RATIO_FUNCS:
        raise ConfigError(f"unknown resample ratio function {func!r}; valid: {', '.join(RATIO_FUNCS)}")
    gap = 1.0 - _as_vector(mean_phi)
    x = (gap - gap.min()) * 2.0 / 3.0
    if func == "linear":
        p = alpha * x
    elif func == "tanh":
        p = torch.tanh(alpha * x)
    else:
        p = alpha * x.pow(1.5)
    return p.clamp(0.0, 1.0)


def round_half_up(x: float) -> int:
    """``floor(x + 0.5)``: the number of units for a ratio times a sample count."""
    return int(math.floor(x + 0.5))


def modality_level_plan(
    mean_phi: Tensor | Sequence[float],
    num_samples: int,
    rows: Tensor | None = None,
    alpha: float = 1.0,
    func: str = "linear",
    generator: torch.Generator | None = None,
    modalities: list[str] | None = None,
) -> ResamplingPlan:
    """Modality-level re-sampling: ``round(p_k * N)`` distinct samples copied once keeping only k.

    Args:
        mean_phi: float ``[M]`` mean contribution per modality (over the subset Z).
        num_samples: ``N``, candidate samples to draw from (the training set).
        rows: int64 ``[N]`` storage rows of the candidates (default ``arange(N)``).
        alpha, func: see `modality_level_ratio`.
        generator: seeded CPU generator (identical on every rank and on resume).
        modalities: optional names for `ResamplingPlan.summary`.

    For M = 2 this is the paper's rule: only the modality with the larger gap is
    copied. Modalities are drawn in order, each with an independent permutation.
    """
    rows = torch.arange(num_samples) if rows is None else rows.long()
    if rows.shape[0] != num_samples:
        raise ValueError(f"{rows.shape[0]} rows for num_samples={num_samples}")
    p = modality_level_ratio(mean_phi, alpha, func)
    m = p.shape[0]
    all_rows, all_k = [], []
    for k in range(m):  # M is tiny: a loop over modalities, never over samples
        n_k = min(round_half_up(float(p[k]) * num_samples), num_samples)
        if n_k == 0:
            continue
        pick = torch.randperm(num_samples, generator=generator)[:n_k]
        all_rows.append(rows[pick.to(rows.device)])
        all_k.append(torch.full((n_k,), k, dtype=torch.long))
    if not all_rows:
        return ResamplingPlan.empty(m, modalities)
    k = torch.cat(all_k)
    return ResamplingPlan(torch.cat(all_rows), torch.nn.functional.one_hot(k, m).bool(), modalities)


def subset_for_valuation(num_samples: int, part_ratio: float = 0.2, generator: torch.Generator | None = None) -> Tensor:
    """The random subset Z: int64 ``[round(part_ratio * N)]`` distinct positions in ``[0, N)``, sorted.

    At least one sample is drawn when ``N > 0`` (a mean over an empty set is undefined).
    """
    if not 0.0 < part_ratio <= 1.0:
        raise ConfigError(f"part_ratio must be in (0, 1]; got {part_ratio}")
    n = min(max(round_half_up(part_ratio * num_samples), 1 if num_samples else 0), num_samples)
    return torch.randperm(num_samples, generator=generator)[:n].sort().values
