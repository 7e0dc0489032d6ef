"""Seeding and RNG state capture (for exact resume)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

#: Multiplier of `mix_seed` (prime; the data loader's shuffle seed ``seed * 100_003 + epoch``).
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
    in ``mmcoop train`` (`mmcoop.methods.MethodContext.generator`) and in a user's own loop
    (`mmcoop.enhance` resamplers)."""
    g = torch.Generator()
    g.manual_seed(mix_seed(seed, epoch, salt))
    return g


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _numpy_state() -> dict[str, Any]:
    """NumPy's global state as tensors and plain values (loadable with ``torch.load(weights_only=True)``)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "name": str(name),
        "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(gauss),
    }


def _set_numpy_state(state: Any) -> None:
    if isinstance(state, dict):  # the plain form of `_numpy_state`
        keys = state["keys"].numpy().astype(np.uint32)
        state = (state["name"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"])
    np.random.set_state(state)  # or the tuple numpy returns (checkpoints of older versions)


def rng_state() -> dict[str, Any]:
    """Capture every global RNG state, so a resumed run draws the same numbers.

    Only tensors and plain Python values (no NumPy arrays), so a checkpoint holding it
    loads with ``torch.load(weights_only=True)``.
    """
    state = {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore states captured by `rng_state`."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
