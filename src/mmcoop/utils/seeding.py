"""Seeding and RNG state capture (for exact resume)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

#: Multiplier of :func:`mix_seed` (prime; the data loader's shuffle seed ``seed * 100_003 + epoch``).
SEED_MIX = 100_003


def mix_seed(seed: int, *parts: int) -> int:
    """One integer seed from the run seed and the draw's coordinates (epoch, step, salt, rank, ...).

    ``h = seed``, then ``h = h * 100_003 + part`` for each part, modulo ``2**63``: every random
    draw of a run (loader shuffles, method generators, per-step noise) is seeded by this one
    function, so the same coordinates give the same draws on every rank and after a resume.

    Args:
        seed: the run seed.
        parts: non-negative integers naming the draw, most significant first.

    Returns:
        A seed in ``[0, 2**63)`` for ``torch.Generator.manual_seed``.

    Example:
        >>> mix_seed(2, 5) == 2 * 100_003 + 5
        True
    """
    h = int(seed)
    for part in parts:
        h = h * SEED_MIX + int(part)
    return h % (2**63)


def epoch_generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    """A CPU generator seeded by ``mix_seed(seed, epoch, salt)``: the same on every rank, on resume,
    in ``mmcoop train`` (:meth:`mmcoop.methods.MethodContext.generator`) and in a user's own loop
    (:mod:`mmcoop.enhance` resamplers)."""
    g = torch.Generator()
    g.manual_seed(mix_seed(seed, epoch, salt))
    return g


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Capture every global RNG state, so a resumed run draws the same numbers."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
