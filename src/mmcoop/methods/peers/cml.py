"""``cml``: Calibrating Multimodal Learning -- no more confidence with fewer modalities.

Paper: Ma, Zhang, Zhang, Wu, Fu, Zhou, Hu, "Calibrating Multimodal Learning", ICML 2023.
Code: GeWu-Lab/BalanceBenchmark at commit 4c1482f ``balancemm/trainer/CML_trainer.py``
(``conf_loss``, ``CMLTrainer.train_loop``, ``training_step``); the authors' own repository was
not available to read here. Arithmetic: `mmcoop.methods.functional.cml_loss`
(`cml_confidence_rises`, `cml_penalty`).

Per epoch, as BalanceBenchmark's ``train_loop``: a random order of the modalities. Per batch
inside the window: one forward; the chain of logits full -> without the order's first modality
-> without the first two -> ... (``M - 1`` reductions: the fusion head with those modalities
removed, i.e. for ``concat`` the fused logits minus their features' share, the bias kept, as
``out_s - unimodal + b / M`` there); loss ``mean_k CE(chain_k) + lam * sum_k max(0,
sum_b (conf_{k+1} - conf_k))`` with ``conf`` the largest softmax probability. Outside the window
plain ``CE(fused)``. Evaluation uses the fused logits.

Defaults (``configs/trainer_config.yaml``): ``lam = 0.1``; window every epoch (BalanceBenchmark
0..80 of 30 epochs).

Deliberate differences:

* The epoch's order is drawn from (seed, epoch) (BalanceBenchmark: Python's global ``random``),
  so every DDP rank and a resumed run remove the same modalities.
* ``per_sample: true`` hinges each sample's confidence rise (the paper's per-sample regulariser);
  the default is BalanceBenchmark's hinge of the batch sum.
* Removing a modality uses the model's own removal (zero features; exact for the built-in
  linear heads, where it is BalanceBenchmark's subtraction), so any fusion head works.
* ``M > 2``: native (BalanceBenchmark's 3-modality branch, ``M - 1`` reductions for any ``M``).
* DDP: the batch-sum hinge is opened or closed by the sum over the whole distributed batch (summed
  over ranks) and scaled by the number of ranks, so the averaged gradient is the single-process
  gradient of the whole distributed batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mmcoop.data.base import Batch
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional.cml import cml_confidence_rises, cml_loss, cml_penalty
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_bool,
    check_number,
    check_window,
    in_window,
    require_modalities,
    sum_over_ranks,
)
from mmcoop.models.protocol import coalition_logits
from mmcoop.utils.dist import world_size

SALT_ORDER = 0xC31  # generator salt of the epoch's removal order


@dataclass
class CMLOptions(MethodOptions):
    """Options of ``cml``.

    Attributes:
        lam: weight of the confidence penalty (BalanceBenchmark 0.1), ``>= 0``.
        per_sample: hinge each sample's confidence rise instead of the batch sum (BalanceBenchmark).
        modulation_starts: first epoch with CML's loss (0-based; BalanceBenchmark 0).
        modulation_ends: last such epoch (inclusive); ``null`` = no end.
    """

    lam: float = 0.1
    per_sample: bool = False
    modulation_starts: int = 0
    modulation_ends: int | None = None

    def __post_init__(self) -> None:
        self.lam = check_number("lam", self.lam, low=0.0)
        check_bool("per_sample", self.per_sample)
        check_window(self.modulation_starts, self.modulation_ends)


@METHODS.register("cml")
class CML(Method):
    """CML (Ma et al., ICML 2023): cross-entropy on ever smaller modality sets, confidence may not rise.

    Code: GeWu-Lab/BalanceBenchmark ``balancemm/trainer/CML_trainer.py``. Defaults, deliberate
    differences and ``M > 2`` (native): see the module docstring. Logs per epoch ``cml_penalty`` (mean
    penalty per step, before ``lam``)."""

    Options = CMLOptions
    options: CMLOptions

    def noop_reason(self, epochs: int) -> str | None:
        """A window after the run."""
        return window_noop(self.options.modulation_starts, epochs, "CML's loss")

    def setup(self, ctx: MethodContext) -> None:
        self.m = require_modalities(ctx.model, self.name)
        self.stats = EpochMeans()
        self.order = list(range(self.m))

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        self.order = torch.randperm(self.m, generator=ctx.generator(SALT_ORDER)).tolist()

    def removal_masks(self, device: torch.device) -> Tensor:
        """Keep-masks ``[M - 1, M]`` of the chain: row ``i`` removes the order's first ``i + 1`` modalities."""
        masks = torch.ones(self.m - 1, self.m, dtype=torch.bool, device=device)
        for i in range(self.m - 1):
            masks[i:, self.order[i]] = False
        return masks

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        o = self.options
        labels = batch["label"]
        if not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            return torch.nn.functional.cross_entropy(logits.float(), labels)
        reduced = coalition_logits(ctx.model, feats, self.removal_masks(feats.device))  # [B, M - 1, C]
        chain = torch.cat([logits.unsqueeze(0), reduced.transpose(0, 1)]).float()  # [M, B, C]
        rises = cml_confidence_rises(chain.detach())
        gate = None
        if world_size() > 1 and not o.per_sample:
            gate = sum_over_ranks(rises.sum(dim=-1)) > 0
        self.stats.add("cml_penalty", cml_penalty(rises, o.per_sample))
        return cml_loss(chain, labels, o.lam * world_size(), o.per_sample, gate)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
