"""``cggm``: Classifier-Guided Gradient Modulation.

Paper: Guo, Jin, Chen, Zhao, "Classifier-guided Gradient Modulation for Enhanced Multimodal
Learning", NeurIPS 2024. Official code: zrguo/CGGM ``src/msatrain.py`` / ``src/foodtrain.py``
``train_model.train`` (the per-batch order), ``src/eval_metrics.py`` ``cal_cos``,
``models/msamodel.py`` ``ClassifierGuided``; defaults from ``run/mosi_run.py`` and
``run/iemo_run.py`` (``--rou 1.3 --lamda 0.2``; food: 0.05, BraTS: ``rou 1.0, lamda 0.1``).
The arithmetic is `mmcoop.methods.functional.cggm_coefficients` and
`cggm_direction_loss` (their docstring lists the one
deliberate change: no ``1e-8`` blow-up when the accuracy changes cancel).

Wiring, per batch (official order):

1. fused cross-entropy, plus ``lam * L_gm`` of the previous batch's coefficients;
2. the method's own unimodal classifiers (``nn.Linear(D, C)`` per modality, `CGGM.modules`)
   are trained with cross-entropy on the *detached* features ``feats[:, m]``;
3. their batch accuracies ``a_m`` against the previous batch's give ``B_m``; after the backward
   pass every gradient of encoder ``m`` is multiplied by ``rho * B_m``
   (`CGGM.after_backward`; AMP-safe: a factor on scaled gradients);
4. ``B`` is kept for the next batch's direction term
   ``L_gm = (sum_m |B_m| - sum_m B_m cos(W_cls_m, W_fusion_m)) / M``.

Deliberate differences, and why:

* ``W_fusion_m`` is modality ``m``'s slice of the fusion head (``concat``: its columns of the
  linear layer; ``sum``: its own matrix), the same shape as classifier ``m``'s ``[C, D]``
  weight. The official fusion ``out_layer`` acts on one fused vector whose width equals each
  classifier's by construction; a late-fusion head has per-modality weights instead. Heads
  without per-modality linear weights (``film``, ``gated``, user heads) need ``lam: 0``.
* ``L_gm`` is evaluated at the current weights with the previous batch's ``B`` (the official
  code keeps the previous batch's autograd graph through ``clone()`` and backpropagates it one
  step later, i.e. at the weights before the last update). Evaluating it now needs no graph
  across optimizer steps and resumes exactly. As in the official code only the fusion head
  receives its gradient (the official ``cls_optimizer.zero_grad()`` discards the classifiers'
  share; here the classifier weights enter detached).
* Each classifier is one linear layer on the pooled feature (official ``Classifier``: a small
  transformer over the encoder's token sequence, ``proj1`` and ``out_layer``); mmcoop's
  encoders output pooled features, and the direction term compares only ``out_layer`` anyway.
* The classifiers share the run's optimizer and learning rate (official: a separate optimizer
  with ``cls_lr`` 5e-4); gradient clipping (official ``clip`` 0.8) is not applied.
* Batch accuracies are averaged over DDP ranks before ``B`` is formed, so every rank scales
  by the same ``B``.

``M >= 2``: native (the official code loops over ``num_mod`` classifiers; its direction sum
hard-codes two, here it runs over all ``M``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.cggm import cggm_coefficients, cggm_direction_loss
from mmcoop.methods.peers._wiring import (
    check_number,
    encoder_groups,
    linear_head_slices,
    require_modalities,
    stacked_width,
    sum_over_ranks,
)


@dataclass
class CGGMOptions(MethodOptions):
    """Options of ``cggm`` (defaults: official ``run/mosi_run.py`` / ``run/iemo_run.py``).

    Attributes:
        rho: gradient scale ``rou`` multiplying ``B_m`` (official 1.3).
        lam: weight ``lamda`` of the direction term ``L_gm`` (official 0.2; 0 disables it).
    """

    rho: float = 1.3
    lam: float = 0.2

    def __post_init__(self) -> None:
        self.rho = check_number("rho", self.rho, 0.0)
        self.lam = check_number("lam", self.lam, 0.0)


@METHODS.register("cggm")
class CGGM(Method):
    """CGGM (NeurIPS 2024): encoder gradients scaled by unimodal-classifier accuracy changes."""

    Options = CGGMOptions
    options: CGGMOptions

    def __init__(self, options: CGGMOptions | None = None) -> None:
        super().__init__(options)
        self.classifiers: nn.ModuleList | None = None
        self.acc_prev: Tensor | None = None  # float64 [M]: previous batch's classifier accuracies
        self.coeff_prev: Tensor | None = None  # float64 [M]: previous batch's B (for L_gm)
        self._sums: dict[str, Tensor] = {}
        self._encoder_params: list[list[nn.Parameter]] = []
        self._scale: list[float] = []

    def setup(self, ctx: MethodContext) -> None:
        m = require_modalities(ctx.model, self.name)
        if self.options.lam > 0 and linear_head_slices(ctx.model) is None:
            raise ConfigError(
                "method 'cggm': method_options.lam > 0 compares each classifier with its modality's weights in a "
                "fusion head that is linear per modality; use model.fusion concat or sum, or set lam: 0"
            )
        self._encoder_params = encoder_groups(ctx.model, self.name)
        self.classifiers = nn.ModuleList([nn.Linear(stacked_width(ctx), ctx.train_data.num_classes) for _ in range(m)])
        self.acc_prev = torch.zeros(m, dtype=torch.float64)  # official acc1 = [0] * num_mod
        self.coeff_prev = None

    def modules(self) -> dict[str, nn.Module]:
        return {"classifiers": self.classifiers} if self.classifiers is not None else {}

    def on_epoch_start(self, ctx: MethodContext) -> None:
        m = len(ctx.model.modalities)
        self._sums = {
            "coeff": torch.zeros(m, dtype=torch.float64),
            "acc": torch.zeros(m, dtype=torch.float64),
            "direction": torch.zeros((), dtype=torch.float64),
            "steps": torch.zeros((), dtype=torch.float64),
        }

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        assert self.classifiers is not None and self.acc_prev is not None
        labels = batch["label"]
        m = feats.shape[1]
        total = F.cross_entropy(logits.float(), labels)
        direction = torch.zeros((), device=total.device)
        if self.options.lam > 0 and self.coeff_prev is not None:
            direction = self.direction_loss(ctx.model, self.coeff_prev)
            total = total + self.options.lam * direction
        cls_logits = torch.stack([clf(feats[:, k].detach()) for k, clf in enumerate(self.classifiers)]).float()
        cls_ce = F.cross_entropy(cls_logits.flatten(0, 1), labels.repeat(m), reduction="none").view(m, -1)
        total = total + cls_ce.mean(1).sum()  # official cls_loss: the sum of the classifiers' mean CE
        with torch.no_grad():
            counts = torch.cat(
                [
                    (cls_logits.argmax(-1) == labels).sum(1).double(),
                    torch.tensor([labels.shape[0]], dtype=torch.float64, device=labels.device),
                ]
            )
            counts = sum_over_ranks(counts).cpu()
            acc_now = counts[:m] / counts[m]
        coeff = cggm_coefficients(acc_now, self.acc_prev)
        self.acc_prev, self.coeff_prev = acc_now, coeff
        self._scale = (coeff * self.options.rho).tolist()
        s = self._sums
        if s:
            s["coeff"] += coeff
            s["acc"] += acc_now
            s["direction"] += float(direction.detach())
            s["steps"] += 1
        return total

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        """Encoder ``m``'s gradients times ``rho * B_m`` (official, after the backward pass)."""
        with torch.no_grad():
            for params, scale in zip(self._encoder_params, self._scale):
                for p in params:
                    if p.grad is not None:
                        p.grad.mul_(scale)

    def direction_loss(self, model: nn.Module, coeff: Tensor) -> Tensor:
        """``L_gm`` at the current weights: classifiers detached, the fusion head's slices differentiable."""
        assert self.classifiers is not None
        slices = linear_head_slices(model)
        assert slices is not None
        weight, per_modality = slices
        fusion = per_modality(weight)  # [M, C, D]
        parts = [
            cggm_direction_loss(coeff[k : k + 1], [clf.weight.detach()], fusion[k])
            for k, clf in enumerate(self.classifiers)
        ]
        return torch.stack(parts).sum() / len(parts)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        s = self._sums
        n = max(float(s.get("steps", 0.0)), 1.0)
        for k, name in enumerate(ctx.model.modalities):
            ctx.log[f"coeff_{name}"] = float(s["coeff"][k]) / n
            ctx.log[f"classifier_acc_{name}"] = float(s["acc"][k]) / n
        ctx.log["direction_loss"] = float(s["direction"]) / n

    def state_dict(self) -> dict[str, Any]:
        return {"acc_prev": self.acc_prev, "coeff_prev": self.coeff_prev}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("acc_prev") is not None:
            self.acc_prev = state["acc_prev"].detach().cpu().double()
        self.coeff_prev = None if state.get("coeff_prev") is None else state["coeff_prev"].detach().cpu().double()
