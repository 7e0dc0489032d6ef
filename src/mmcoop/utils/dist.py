"""Process-group basics every layer may use (no-ops in a single process).

The training loop's helpers (joining the group, gradient averaging) live in
`mmcoop.train.distributed`; this module holds what lower layers need too:
who am I, and gathering row-wise results from all ranks.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def _comm_device(t: Tensor) -> torch.device:
    """Where a collective on ``t`` must run: CUDA for NCCL, the CPU for Gloo."""
    if dist.get_backend() == "nccl":
        return t.device if t.device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_rows(t: Tensor) -> Tensor:
    """Concatenate every rank's ``t`` along dim 0, in rank order (ranks may hold different row counts).

    Args:
        t: ``[N_r, *shape]``; ``shape`` and dtype equal on all ranks, ``N_r`` may differ (even 0).

    Returns:
        ``[sum_r N_r, *shape]`` on ``t``'s device; ``t`` itself in a single process.
    """
    if world_size() == 1:
        return t
    dev = _comm_device(t)
    is_bool = t.dtype == torch.bool
    x = (t.to(torch.uint8) if is_bool else t).to(dev)
    n = torch.tensor([x.shape[0]], dtype=torch.long, device=dev)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    counts = [int(s) for s in sizes]
    padded = x.new_zeros((max(counts), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    out = torch.cat([p[:c] for p, c in zip(parts, counts)])
    return (out.bool() if is_bool else out).to(t.device)


def all_gather_objects(obj: object) -> list[object]:
    """Every rank's picklable ``obj``, in rank order (``[obj]`` in a single process)."""
    if world_size() == 1:
        return [obj]
    out: list[object] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out
