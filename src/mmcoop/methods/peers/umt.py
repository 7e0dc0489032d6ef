"""``umt``: Uni-Modal Teacher -- unimodal teachers first, then feature distillation into the multimodal model.

Paper: Du, Teng, Wang, Zhang, Yuan, Wang, Zhao, "On Uni-Modal Feature Learning in Supervised
Multi-Modal Learning", ICML 2023. Code: GeWu-Lab/BalanceBenchmark at commit 4c1482f
``balancemm/trainer/UMT_trainer.py`` (``UMTTrainer.__init__``, ``training_step``); the authors'
own code was not available to read here. Arithmetic: `mmcoop.methods.functional.umt_distillation`.
Teachers: this method trains them itself, in an initial phase, so one run is all a user
starts; it does not read ``unimodal`` run folders.

Teacher phase: at the start of the first epoch inside the window, one teacher per modality --
a copy of that modality's encoder (its initial weights) with its own ``Linear(d_m, C)`` head --
is trained with cross-entropy for ``teacher_epochs`` passes over the training split (seeded
shuffles, the run's optimizer, batch size and learning rate; all teachers in one pass, each on its
own modality), then frozen. The teachers are method modules: checkpointed, so a resumed run does
not train them again. Then every batch: ``CE(fused) + scaling * sum_m MSE(t_m, h_m)`` inside the
window, ``t_m`` the frozen teacher's feature; plain ``CE(fused)`` outside it. Evaluation uses the
fused logits.

Defaults: ``scaling = 10`` (BalanceBenchmark), ``teacher_epochs = 10``, window every epoch
(BalanceBenchmark 0..80 of 30 epochs).

Deliberate differences:

* Teachers trained in-method (BalanceBenchmark loads the newest ``unimodalTrainer_<modality>``
  checkpoint of earlier runs): a teacher is the modality's encoder with a linear head, which is
  what ``unimodal`` training of a late-fusion model with the other modalities removed amounts to;
  its epochs are ``teacher_epochs``, not the run's. The phase runs before epoch 0's timed training
  loop (``time_train_s`` leaves it out; its seconds are logged as ``teacher_time_s``) and its
  optimizer steps count in ``optimizer_steps`` (its samples are not in ``sample_visits``, which
  counts the loop's training units).
* The teachers' features are taken in eval mode (BalanceBenchmark leaves the loaded teachers in
  train mode: dropout and batch statistics in the targets).
* ``M > 2``: native (one teacher and one MSE term per modality).
* DDP: the teacher phase shards the training split over ranks and steps through the run's
  engine (gradients averaged over ranks); the teachers' BatchNorm statistics are averaged after it.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch, batch_to, make_loader
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional.umt import umt_distillation
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_int,
    check_number,
    check_window,
    encoder_groups,
    feature_widths,
    in_window,
    mean_over_ranks,
    sum_over_ranks,
)
from mmcoop.utils.dist import is_distributed
from mmcoop.utils.modes import eval_mode
from mmcoop.utils.seeding import mix_seed

SALT_TEACHERS = 0x7EA  # seed salt of the teacher phase's shuffles


class Teacher(nn.Module):
    """A unimodal teacher: a modality's encoder and a linear head on its feature."""

    def __init__(self, encoder: nn.Module, width: int, num_classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(features [B, d], logits [B, C])``."""
        feat = self.encoder(x)
        return feat, self.head(feat)


@dataclass
class UMTOptions(MethodOptions):
    """Options of ``umt``.

    Attributes:
        scaling: weight of the feature distillation (BalanceBenchmark 10), ``>= 0``.
        teacher_epochs: passes over the training split that train the teachers, before the
            first epoch inside the window.
        modulation_starts: first epoch with the distillation (0-based; BalanceBenchmark 0).
        modulation_ends: last such epoch (inclusive); ``null`` = no end.
    """

    scaling: float = 10.0
    teacher_epochs: int = 10
    modulation_starts: int = 0
    modulation_ends: int | None = None

    def __post_init__(self) -> None:
        self.scaling = check_number("scaling", self.scaling, low=0.0)
        self.teacher_epochs = check_int("teacher_epochs", self.teacher_epochs, 1)
        check_window(self.modulation_starts, self.modulation_ends)


@METHODS.register("umt")
class UMT(Method):
    """UMT (Du et al., ICML 2023): train unimodal teachers in-method, then distil their features into the encoders.

    Code: GeWu-Lab/BalanceBenchmark ``balancemm/trainer/UMT_trainer.py``. The teachers are trained
    by this method itself (``teacher_epochs``) before the first distilled epoch. Defaults, deliberate
    differences and ``M > 2`` (native): see the module docstring. Logs ``teacher_loss_<modality>`` and
    ``teacher_acc_<modality>`` (last teacher pass) and ``teacher_time_s`` once, and per epoch
    ``umt_mse`` (mean distillation term before ``scaling``)."""

    Options = UMTOptions
    options: UMTOptions

    def __init__(self, options: UMTOptions | None = None) -> None:
        super().__init__(options)
        self.trained = False

    def noop_reason(self, epochs: int) -> str | None:
        """A window after the run, or ``scaling = 0`` (no teacher is trained then)."""
        if self.options.scaling == 0.0:
            return "method_options.scaling=0 gives the distillation no weight"
        return window_noop(self.options.modulation_starts, epochs, "the distillation")

    def setup(self, ctx: MethodContext) -> None:
        encoder_groups(ctx.model, self.name)  # the model has per-modality encoders (clear error if not)
        self.modalities = list(ctx.model.modalities)
        self.widths = feature_widths(ctx)
        c = int(ctx.train_data.num_classes)
        encoders = ctx.model.encoders
        self.teachers = nn.ModuleList(
            [Teacher(copy.deepcopy(encoders[name]), w, c) for name, w in zip(self.modalities, self.widths)]
        ).to(ctx.device)
        self.trained = False
        self.stats = EpochMeans()

    def modules(self) -> dict[str, nn.Module]:
        return {"umt_teachers": self.teachers}

    def active(self, epoch: int) -> bool:
        o = self.options
        return o.scaling > 0 and in_window(epoch, o.modulation_starts, o.modulation_ends)

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        if self.active(ctx.epoch) and not self.trained:
            t0 = time.perf_counter()
            self.train_teachers(ctx)
            ctx.log["teacher_time_s"] = time.perf_counter() - t0

    def train_teachers(self, ctx: MethodContext) -> None:
        """The teacher phase (see the module docstring); logs the last pass's loss and accuracy."""
        data = ctx.train_data.train_mode(True)
        m = len(self.modalities)
        sums = torch.zeros(2 * m + 1, dtype=torch.float64, device=ctx.device)
        for t in range(self.options.teacher_epochs):
            loader = make_loader(
                data,
                ctx.batch_size,
                shuffle=True,
                seed=mix_seed(ctx.seed, SALT_TEACHERS),
                epoch=t,
                distributed=is_distributed(),
            )
            sums.zero_()
            for raw in loader:
                batch = batch_to(raw, ctx.device)
                y = batch["label"]
                ctx.zero_grad()
                with ctx.autocast():
                    outs = [teacher(batch["inputs"][name])[1] for teacher, name in zip(self.teachers, self.modalities)]
                losses = torch.stack([F.cross_entropy(o.float(), y) for o in outs])
                loss = losses.sum()
                ctx.check_loss(loss)
                ctx.backward(loss)
                ctx.step()
                n = y.shape[0]
                sums[:m] += losses.detach().double() * n
                sums[m : 2 * m] += torch.stack([(o.detach().argmax(-1) == y).sum() for o in outs]).double()
                sums[2 * m] += n
        sums = sum_over_ranks(sums)
        for k, name in enumerate(self.modalities):
            ctx.log[f"teacher_loss_{name}"] = float(sums[k] / sums[2 * m])
            ctx.log[f"teacher_acc_{name}"] = float(sums[m + k] / sums[2 * m])
        with torch.no_grad():
            for buf in self.teachers.buffers():
                if buf.is_floating_point():
                    buf.copy_(mean_over_ranks(buf.double()).to(buf.dtype))
        for p in self.teachers.parameters():
            p.grad = None
        self.trained = True

    def teacher_features(self, inputs: dict[str, Tensor]) -> list[Tensor]:
        """The frozen teachers' features of a batch, eval mode, no gradients: ``M`` x ``[B, d_m]``."""
        with torch.no_grad(), eval_mode(self.teachers):
            return [teacher(inputs[name])[0] for teacher, name in zip(self.teachers, self.modalities)]

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        ce = F.cross_entropy(logits.float(), batch["label"])
        if not self.active(ctx.epoch):
            return ce
        mse = umt_distillation(feats.float(), self.teacher_features(batch["inputs"]), self.widths)
        self.stats.add("umt_mse", mse.detach())
        return ce + self.options.scaling * mse

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)

    def state_dict(self) -> dict[str, Any]:
        return {"trained": self.trained}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trained = bool(state.get("trained", False))
