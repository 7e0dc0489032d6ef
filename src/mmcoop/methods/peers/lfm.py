"""``lfm``: fusion cross-entropy plus unimodal alignment, their weights learnt before every epoch.

Paper: Yang, Wang, et al., "Facilitating Multimodal Classification via Dynamically Learning
Modality Gap", NeurIPS 2024. Code: njustkmg/NeurIPS24-LFM at commit ad44fa0
``Crema_epoch_learnable.py`` (``getAlpha_Learnable``, ``train_audio_video``, ``__main__``) and
GeWu-Lab/BalanceBenchmark at commit 4c1482f ``balancemm/trainer/LFM_trainer.py``
(``LFMTrainer.fit``, ``training_step``). Arithmetic: `mmcoop.methods.functional.lfm_loss`,
`lfm_hvp_signal`, `lfm_update_weight`,
`lfm_step_size`, `lfm_fitted_weights`.

Per epoch, before training (as both scripts): a fixed validation batch (``val_samples`` rows of
``ctx.val_data``, drawn once from the seed; official: 8 of 16 held-out training samples,
BalanceBenchmark: a quarter of the first validation batch) gives ``k_0 CE + k_1 A`` and
``CE``; the Hessian-vector product ``H_total grad(CE)`` averaged over the first parameter tensor
moves ``k_1`` by ``-lr`` times it, clipped to ``[0.05, 0.95]``, ``k_0 = 1 - k_1`` (``schedule:
learnable``). ``schedule: fitted`` uses the official fitted polynomials of the epoch instead.
Per batch: ``2 (k_0 CE(fused) + k_1 A(unimodal))`` with ``A`` the official alignment of each
pair of modalities' softmax predictions (averaged over pairs). Each modality's logits are its
share of the fusion head (`modality_logits`, BalanceBenchmark's
``W_m h_m + b / M``). Evaluation uses the fused logits.

Defaults: ``init_weight = 0.95`` (official ``cls_k = [0.05, 0.95]``: alignment weight 0.95;
BalanceBenchmark 0.05), ``lr_alpha = 1e-4`` (both), ``val_samples = 8`` (official), ``schedule:
learnable``, ``hvp_scope: first`` (both).

Deliberate differences:

* The fused logits are the model's fusion head (as BalanceBenchmark); the official model averages
  two unimodal heads, ``0.5 o_a + 0.5 o_v``.
* The validation forward runs in eval mode (no dropout, BatchNorm running statistics neither
  used as batch statistics nor updated): the official script calls it after ``val()``, i.e. in
  eval mode from epoch 1 on (train mode only before epoch 0); BalanceBenchmark in train mode.
  So every DDP rank computes the same weight, which is also averaged over ranks.
* The validation rows come from the run's validation split, not from rows held out of training.
* ``M > 2``: the alignment averaged over every pair of modalities (BalanceBenchmark's
  ``manual_combinations``).
* The weight ``k_1`` is method state (checkpointed): a resumed run continues it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from mmcoop.data.base import Batch, batch_to
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.lfm import (
    lfm_alignment,
    lfm_fitted_weights,
    lfm_hvp_signal,
    lfm_loss,
    lfm_step_size,
    lfm_update_weight,
)
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_int,
    check_number,
    mean_over_ranks,
    modality_logits,
    require_modalities,
)
from mmcoop.utils.modes import eval_mode
from mmcoop.utils.seeding import mix_seed

SALT_VAL = 0x1F3  # generator salt of the validation rows
SCHEDULES = ("learnable", "fitted")
SCOPES = ("first", "all")


@dataclass
class LFMOptions(MethodOptions):
    """Options of ``lfm``.

    Attributes:
        schedule: ``learnable`` (the Hessian-vector-product rule before every epoch) or
            ``fitted`` (the official fitted polynomials of the epoch).
        init_weight: the alignment weight ``k_1`` before epoch 0 (official 0.95; BalanceBenchmark 0.05).
        lr_alpha: step size of the rule (both 1e-4), halved every 20 epochs.
        val_samples: rows of the validation split in the fixed batch of the rule (official 8).
        hvp_scope: ``first`` (official: the first parameter tensor's product) or ``all`` parameters.
    """

    schedule: str = "learnable"
    init_weight: float = 0.95
    lr_alpha: float = 1e-4
    val_samples: int = 8
    hvp_scope: str = "first"

    def __post_init__(self) -> None:
        for key, valid in (("schedule", SCHEDULES), ("hvp_scope", SCOPES)):
            if getattr(self, key) not in valid:
                raise ConfigError(
                    f"method_options.{key}={getattr(self, key)!r} is not valid; valid values: {', '.join(valid)}"
                )
        self.init_weight = check_number("init_weight", self.init_weight, low=0.05, high=0.95)
        self.lr_alpha = check_number("lr_alpha", self.lr_alpha, low=0.0)
        self.val_samples = check_int("val_samples", self.val_samples, 2)


@METHODS.register("lfm")
class LFM(Method):
    """LFM (Yang et al., NeurIPS 2024): CE plus unimodal alignment, weights learnt per epoch by a Hessian rule.

    Official code: njustkmg/NeurIPS24-LFM ``Crema_epoch_learnable.py``. Defaults, deliberate
    differences and ``M > 2`` (every pair): see the module docstring. Logs per epoch ``lfm_weight_ce``,
    ``lfm_weight_align`` (the weights used), ``lfm_signal`` (the rule's Hessian-vector mean) and
    ``lfm_alignment`` (mean alignment term)."""

    Options = LFMOptions
    options: LFMOptions

    def __init__(self, options: LFMOptions | None = None) -> None:
        super().__init__(options)
        self.align_weight = self.options.init_weight

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        if self.options.schedule == "learnable" and ctx.val_data is None:
            raise ConfigError("method 'lfm' learns its weights on validation rows; the run has no validation split")
        self.align_weight = self.options.init_weight
        self._ce_weight = 1.0 - self.align_weight
        self.stats = EpochMeans()

    @property
    def weights(self) -> tuple[float, float]:
        """(CE weight, alignment weight) of the current epoch."""
        return 1.0 - self.align_weight, self.align_weight

    def val_batch(self, ctx: MethodContext) -> Batch:
        """The rule's fixed validation rows (drawn once from the seed), on the device."""
        data = ctx.val_data
        assert data is not None
        g = torch.Generator().manual_seed(mix_seed(ctx.seed, SALT_VAL))
        rows = torch.randperm(len(data), generator=g)[: self.options.val_samples].sort().values
        return batch_to(data.__getitems__(rows.tolist()), ctx.device)

    def learn_weight(self, ctx: MethodContext) -> float:
        """One step of the official rule; returns the signal ``mean(H_total grad CE)``."""
        batch = self.val_batch(ctx)
        model = ctx.model
        params = [p for p in model.parameters() if p.requires_grad]
        k0, k1 = self.weights
        with eval_mode(model):
            feats = model.encode(batch["inputs"])
            fused = model.fuse(feats).float()
            uni = modality_logits(model, feats).float()
            cls = F.cross_entropy(fused, batch["label"])
            total = k0 * cls + k1 * lfm_alignment(uni)
            signal = lfm_hvp_signal(total, cls, params, self.options.hvp_scope)
        signal = mean_over_ranks(signal.reshape(1)).reshape(())
        lr = lfm_step_size(ctx.epoch, self.options.lr_alpha)
        self.align_weight = lfm_update_weight(self.align_weight, float(signal), lr)
        return float(signal)

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        if self.options.schedule == "fitted":
            ce_weight, self.align_weight = lfm_fitted_weights(ctx.epoch)
        else:
            ctx.log["lfm_signal"] = self.learn_weight(ctx)
            ce_weight = 1.0 - self.align_weight
        self._ce_weight = ce_weight
        ctx.log["lfm_weight_ce"] = ce_weight
        ctx.log["lfm_weight_align"] = self.align_weight

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        uni = modality_logits(ctx.model, feats).float()
        weights = (self._ce_weight, self.align_weight)
        loss = lfm_loss(logits.float(), uni, batch["label"], weights)
        self.stats.add("lfm_alignment", lfm_alignment(uni.detach()))
        return loss

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)

    def state_dict(self) -> dict[str, Any]:
        return {"align_weight": float(self.align_weight)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.align_weight = float(state.get("align_weight", self.options.init_weight))
