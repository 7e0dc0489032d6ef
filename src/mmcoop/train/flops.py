"""FLOP counting of training epochs and evaluation passes (``train.count_flops``).

PyTorch's own counter (`torch.utils.flop_counter.FlopCounterMode`) counts the
floating-point operations of the matrix products and convolutions that run inside it
(forward and backward; 2 per multiply-add), which is what papers report as a model's FLOPs
(BalanceBenchmark ``balancemm/evaluation/complex.py`` at GeWu-Lab/BalanceBenchmark 4c1482f
uses thop's per-layer hooks for the same quantity). Element-wise operations (activations,
normalisation, the optimizer's update) are not counted.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from torch import nn
from torch.utils.flop_counter import FlopCounterMode


class FlopMeter:
    """A FLOP counter that is a no-op when ``enabled`` is false.

    Example:
        >>> with FlopMeter(True) as fm:
        ...     model(x)
        >>> fm.total()  # FLOPs counted so far
    """

    def __init__(self, enabled: bool) -> None:
        self.mode = FlopCounterMode(display=False) if enabled else None
        self._done = 0  # FLOPs of the finished ``with`` blocks (entering the counter resets it)
        self._active = False

    def __enter__(self) -> FlopMeter:
        if self.mode is not None:
            self.mode.__enter__()
            self._active = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.mode is not None:
            self._done += int(self.mode.get_total_flops())
            self._active = False
            self.mode.__exit__(exc_type, exc, tb)

    def total(self) -> int:
        """FLOPs counted so far, over every ``with`` block (0 when disabled)."""
        if self.mode is None:
            return 0
        return self._done + (int(self.mode.get_total_flops()) if self._active else 0)


def parameter_count(*modules: Any) -> int:
    """Number of parameters of ``modules`` (each counted once, shared ones too)."""
    seen: dict[int, int] = {}
    for m in modules:
        if isinstance(m, nn.Module):
            for p in m.parameters():
                seen[id(p)] = p.numel()
    return sum(seen.values())
