"""Stop training that diverges: a non-finite loss, or a loss that explodes over its start.

A training loss that becomes NaN/inf, or grows by orders of magnitude (e.g. Adam with
``lr=1e6`` reaching ~1e21), produces a useless model; without a check the run would
still finish and exit 0. `DivergenceGuard` is the check, kept free of the loop
so it can be tested alone; the loop calls `DivergenceGuard.check` once per step
and checkpoints `DivergenceGuard.state_dict` so a resumed run compares against
the same start.
"""

from __future__ import annotations

import math
from typing import Any

from torch import Tensor

from mmcoop.errors import MMCoopError


class DivergenceGuard:
    """Raise `MMCoopError` when a training loss diverges.

    The reference is the first finite loss seen (raised to ``floor``, so a run whose
    first loss is already near zero is not stopped by ordinary noise). A loss is
    divergent when it is NaN/inf, or when ``factor`` is set and ``loss > factor * reference``.

    Args:
        factor: growth over the reference that counts as divergence (``None``: only
            non-finite losses stop training). ``train.divergence_factor`` in the config.
        floor: smallest reference used (guards a tiny first loss).

    Example::

        guard = DivergenceGuard.from_config(train_config)
        for step, batch in enumerate(loader):
            loss = ...
            guard.check(loss, epoch, step)
    """

    def __init__(self, factor: float | None = 1e4, floor: float = 1e-3) -> None:
        if factor is not None and not (math.isfinite(factor) and factor > 1):
            raise ValueError(f"factor must be > 1 or None, got {factor}")
        if not (math.isfinite(floor) and floor > 0):
            raise ValueError(f"floor must be > 0, got {floor}")
        self.factor = factor
        self.floor = floor
        self.reference: float | None = None

    @classmethod
    def from_config(cls, config: Any) -> "DivergenceGuard":
        """The guard for a `TrainConfig` (its ``divergence_factor``)."""
        return cls(getattr(config, "divergence_factor", 1e4))

    def check(self, loss: float | Tensor, epoch: int, step: int) -> None:
        """Check one training loss.

        Args:
            loss: the step's loss (a Python float or a one-element tensor; a tensor is
                read with ``float()``, which synchronises a GPU).
            epoch: 1-based epoch, for the message.
            step: 0-based step within the epoch, for the message.

        Raises:
            MMCoopError: the loss is non-finite, or above ``factor`` times the reference.
        """
        value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
        where = f"epoch {epoch}, step {step}"
        if not math.isfinite(value):
            raise MMCoopError(
                f"training diverged at {where}: the loss became {value}; lower train.lr, disable amp "
                "(train.amp=none), or check the inputs for NaN/inf"
            )
        if self.reference is None:
            self.reference = max(value, self.floor)
            return
        if self.factor is not None and value > self.factor * self.reference:
            raise MMCoopError(
                f"training diverged at {where}: the loss {value:.4g} is more than "
                f"train.divergence_factor={self.factor:g} times its start ({self.reference:.4g}); lower train.lr, "
                "or set train.divergence_factor higher (null disables this check)"
            )

    def state_dict(self) -> dict[str, Any]:
        """The reference loss, to checkpoint with the run."""
        return {"reference": self.reference}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict` (a resumed run compares against its original start)."""
        ref = state.get("reference")
        self.reference = None if ref is None else float(ref)
