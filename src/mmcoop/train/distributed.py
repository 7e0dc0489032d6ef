"""Thin helpers over ``torch.distributed`` (no-ops in a single process)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from mmcoop.utils.dist import all_gather_rows, is_distributed, rank, world_size

__all__ = [
    "all_gather_rows",
    "all_reduce_sum",
    "average_buffers",
    "average_gradients",
    "barrier",
    "init_from_env",
    "is_distributed",
    "is_main",
    "local_device",
    "rank",
    "shutdown",
    "world_size",
    "wrap_ddp",
]


def ddp_options(find_unused: bool) -> dict[str, Any]:
    """Keyword arguments of ``DistributedDataParallel`` for mmcoop's training forward.

    BatchNorm running statistics are averaged over ranks once per epoch by the loop, not
    broadcast from rank 0 before every forward: ``forward_sync_buffers=False`` where PyTorch
    has it (``broadcast_buffers`` is deprecated there and warns), else ``broadcast_buffers=False``.
    The ranks start from identical weights and buffers (same seed), so the one buffer sync
    at construction that ``forward_sync_buffers`` keeps changes nothing.

    Args:
        find_unused: PyTorch's unused-parameter detection (a graph search per step).

    Returns:
        ``{"find_unused_parameters": ..., "forward_sync_buffers" or "broadcast_buffers": False}``.

    Example:
        >>> sorted(ddp_options(False))[0]
        'find_unused_parameters'
    """
    params = inspect.signature(nn.parallel.DistributedDataParallel.__init__).parameters
    buffers = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    return {"find_unused_parameters": bool(find_unused), buffers: False}


def wrap_ddp(module: nn.Module, device: torch.device, find_unused: bool) -> nn.Module:
    """``module`` in ``DistributedDataParallel`` with `ddp_options` (one device per rank on GPUs).

    Args:
        module: the module whose forward is the training forward.
        device: this rank's device.
        find_unused: turn on unused-parameter detection (the method can skip an encoder). PyTorch's
            reducer then prints, once per process and from C++ (no Python filter reaches it), a note
            when a step used every parameter; for such a method that note is expected (a warm-up
            epoch, a batch holding original samples) and turning detection off would stop training.
    """
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, **ddp_options(find_unused))


def is_main() -> bool:
    """True on the process that writes files (rank 0)."""
    return rank() == 0


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over ranks (in place) and return it."""
    if is_distributed():
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def _average_in_place(tensors: list[torch.Tensor], dtype: torch.dtype | None = None) -> None:
    """Average ``tensors`` over ranks with one flat all-reduce (in ``dtype`` if given)."""
    if not is_distributed() or not tensors:
        return
    flat = torch.cat([t.detach().reshape(-1).to(dtype or t.dtype) for t in tensors])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world_size()
    offset = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Average gradients over ranks with one flat all-reduce (DDP-equivalent update)."""
    _average_in_place([p.grad for p in params if p.grad is not None])


def average_buffers(module: torch.nn.Module) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks, in place.

    Gradients are averaged every step, but each rank updates its BatchNorm running
    mean/variance from its own shard; without this the ranks' models would differ in
    eval mode (validation, valuation, the saved checkpoint). Called once per epoch;
    the result is the running statistics averaged over all ranks' data (in float64).
    """
    _average_in_place([b for b in module.buffers() if b.is_floating_point()], torch.float64)


def init_from_env() -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1).

    Uses NCCL when CUDA is available (one GPU per ``LOCAL_RANK``), else Gloo.
    Returns True when running distributed.
    """
    import os

    if is_distributed():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl")
    else:
        dist.init_process_group("gloo")
    import atexit

    # leave the group cleanly at exit (Gloo aborts if its threads outlive the interpreter),
    # without a barrier: a rank that exits on an error must not wait for ranks that are
    # blocked in a collective it will never join; torchrun then stops them.
    atexit.register(_destroy)
    return True


def _destroy() -> None:
    if is_distributed():
        dist.destroy_process_group()


def shutdown() -> None:
    """Wait for every rank, then destroy the process group (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()
        dist.destroy_process_group()


def local_device() -> torch.device:
    """This process's default device: ``cuda:LOCAL_RANK`` when CUDA is available, else CPU."""
    import os

    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()
