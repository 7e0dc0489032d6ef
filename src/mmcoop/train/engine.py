"""The step engine: forward / backward / step under DDP and AMP, and inference passes.

Methods reach it only through `MethodContext`. Under
``torchrun`` the model is wrapped in PyTorch's ``DistributedDataParallel``
(`mmcoop.train.distributed.wrap_ddp`), with unused-parameter detection only for a
method that can skip an encoder (`skips_encoders`): a batch
whose keep-masks skip an encoder on one rank leaves its parameters unused there, and DDP
then contributes zeros for them instead of desynchronising the gradient all-reduce; for
every other method the per-step graph search is not paid. Parameters outside the wrapper (a method's
own modules) and gradients made inside `StepEngine.no_sync` are averaged over
ranks by `StepEngine.step` with one flat all-reduce.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch
from torch import Tensor, nn

from mmcoop.data.base import Batch, MultimodalDataset, batch_to, make_loader
from mmcoop.models.folding import inference_model
from mmcoop.train.distributed import average_gradients, is_distributed, wrap_ddp
from mmcoop.utils.modes import eval_mode


class _EncodeFuse(nn.Module):
    """``forward(inputs, keep) -> (features, logits)``: the one call DDP wraps."""

    model: Any  # a model of the protocol (encode, fuse)

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: dict[str, Tensor], keep: Tensor | None = None) -> tuple[Tensor, Tensor]:
        feats = self.model.encode(inputs, keep)
        return feats, self.model.fuse(feats, keep)


class StepEngine:
    """Forward/backward/step of one run (see the module docstring).

    Args:
        model: the model (contract of `mmcoop.models.protocol`).
        extra: the method's own modules (trained, not wrapped by DDP).
        optimizer: over the parameters of ``model`` and ``extra``.
        scaler: the AMP gradient scaler.
        device: the run's device.
        amp_dtype: autocast dtype or ``None``.
        fold_batchnorm: inference passes on a BatchNorm-folded copy.
        guard: a `DivergenceGuard` (non-finite or exploding losses).
        loader_options: ``num_workers`` / ``pin_memory`` / ``persistent_workers`` of inference loaders.
        compile_model: run the training forward through ``torch.compile`` (``train.compile``).
        find_unused: DDP's unused-parameter detection (the method can skip an encoder).
    """

    def __init__(
        self,
        model: nn.Module,
        extra: nn.Module,
        optimizer: torch.optim.Optimizer,
        scaler: torch.amp.GradScaler,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        fold_batchnorm: bool,
        guard: Any,
        loader_options: dict[str, Any] | None = None,
        compile_model: bool = False,
        find_unused: bool = False,
    ) -> None:
        self.model, self.extra, self.optimizer, self.scaler = model, extra, optimizer, scaler
        self.device, self.amp_dtype, self.fold_batchnorm, self.guard = device, amp_dtype, fold_batchnorm, guard
        wrapped: Any = _EncodeFuse(model)
        if is_distributed() and any(p.requires_grad for p in model.parameters()):
            wrapped = wrap_ddp(wrapped, device, find_unused)
        if compile_model:
            # compiled once here; keep-masks that skip encoders are data-dependent branches, which
            # torch.compile handles with graph breaks (the dense joint path stays one graph)
            wrapped = torch.compile(wrapped, dynamic=True)
        self.net = wrapped
        self.loader_options = dict(loader_options or {})
        self._unsynced = False
        self._reduced = False  # gradients already averaged over ranks this step (by unscale_)
        self._unscaled = False  # gradients already divided by the loss scale this step
        self.inference_net: Any = model

    # -- training ---------------------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def forward(self, inputs: dict[str, Tensor], keep: Tensor | None) -> tuple[Tensor, Tensor]:
        with self.autocast():
            return self.net(inputs, keep)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        ddp = getattr(self.net, "_orig_mod", self.net)  # under torch.compile the DDP module is inside
        ctx = ddp.no_sync() if isinstance(ddp, nn.parallel.DistributedDataParallel) else contextlib.nullcontext()
        with ctx:
            self._unsynced = is_distributed()
            yield

    def backward(self, loss: Tensor, retain_graph: bool = False) -> None:
        self.scaler.scale(loss).backward(retain_graph=retain_graph)

    def _reduce(self) -> None:
        """Average over ranks the gradients DDP did not (once per step; no-op in one process)."""
        if is_distributed() and not self._reduced:
            # the method's own parameters always; the model's when DDP did not reduce them
            params = list(self.extra.parameters())
            ddp = getattr(self.net, "_orig_mod", self.net)
            if self._unsynced or not isinstance(ddp, nn.parallel.DistributedDataParallel):
                params += list(self.model.parameters())
            average_gradients([p for p in params if p.requires_grad])
        self._unsynced = False
        self._reduced = True

    def unscale_(self) -> None:
        """Make ``.grad`` the true gradients before a hook reads or edits them (fp16 AMP only).

        With an enabled GradScaler the gradients are divided by the loss scale now, once per
        step (`step` then does not divide again), after averaging over ranks (so the
        scaler's inf/nan check sees the averaged gradients on every rank). Without fp16 a no-op.
        """
        if not self.scaler.is_enabled() or self._unscaled:
            return
        self._reduce()
        self.scaler.unscale_(self.optimizer)
        self._unscaled = True

    def step(self) -> None:
        self._reduce()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self._reduced = self._unscaled = False

    def check_loss(self, loss: Tensor, epoch: int, step: int) -> None:
        self.guard.check(loss, epoch + 1, step)

    # -- inference ----------------------------------------------------------------------
    def inference(self, dataset: MultimodalDataset, batch_size: int) -> Iterator[tuple[Batch, Tensor]]:
        """Yield ``(batch, features)`` over ``dataset`` (this rank's share under DDP)."""
        try:
            with eval_mode(self.model):
                self.inference_net = inference_model(self.model, self.fold_batchnorm)
                # under DDP rank r takes rows r, r+W, ... (no padded duplicates: sums are exact)
                loader = make_loader(
                    dataset.train_mode(False), batch_size, distributed_eval=is_distributed(), **self.loader_options
                )
                for batch in loader:
                    batch = batch_to(batch, self.device)
                    with torch.no_grad(), self.autocast():
                        feats = self.inference_net.encode(batch["inputs"])
                    yield batch, feats
        finally:
            self.inference_net = self.model
