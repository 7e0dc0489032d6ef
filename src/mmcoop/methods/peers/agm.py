"""``agm``: adaptive gradient modulation with Shapley mono-modal responses.

Paper: Li, Li, Hu, Lei, Li, Zhou, "Boosting Multi-modal Model Performance with Adaptive Gradient
Modulation", ICCV 2023. Code: lihong2303/AGM_ICCV2023 ``model/AVMNIST_net.py``
(``Modality_Audio`` / ``Modality_Visual``, ``GradMod`` with backward hooks and ``update_scale``)
and ``run/AVMNIST_main.py`` ``train``; its 3-modality nets compute the same Shapley
combination over 7 coalitions. Arithmetic: `mmcoop.methods.functional.agm_mono_responses`,
`agm_scores`, `agm_coefficients`,
`agm_update_running` and `agm_fuse`.

Per batch, as the official ``train``: the outputs of every coalition (others removed) give
mono-modal responses ``m_u`` (Shapley values, empty coalition = 0, so ``sum_u m_u`` is the
fused output); scores ``s_u`` = mean ``-log p(y)`` of ``softmax(m_u)``; coefficients
``k_u = exp(alpha (opt_u - ratio_u))`` from the batch scores and their running means
``S_u`` (global step ``t``, ``S = 0`` at ``t = 0``), then ``S`` is updated; inside the
modulation window the loss ``CE(sum_u m_u)`` is backpropagated with the gradient flowing into
``m_u`` scaled by ``k_u``; if any fusion-head gradient leaves ``[-1, 1]`` all gradients are
clipped to norm 1. Evaluation predicts with the fused output (``= sum_u m_u``).

Defaults (``run/AVMNIST_main.py`` and its config): ``alpha = 1.0`` (README example on
AV-MNIST: 2.5), gradient clipping on, modulation while ``modulation_starts <= epoch <=
modulation_ends`` with the official ``0`` and ``20`` over epochs counted from 1
(``for epoch in range(1, cfgs.EPOCHS)``): the first 20 epochs, which are mmcoop's 0-based
epochs ``0..19`` (default ``modulation_ends = 19``). No cap on the exponent (``max_exponent:
null``) as in ``run/AVMNIST_main.py``; the official ``run/CREMAD_main.py`` caps it at 10
(``exp(alpha * min(opt - ratio, 10))``): set ``max_exponent: 10`` to reproduce its CREMA-D runs.

Deliberate differences:

* Coalitions remove a modality's *feature* (the model's removal convention, zeros by default,
  one encoder pass per batch) where the official code re-runs the network on zeroed *inputs*
  in eval mode; for late-fusion models with zero fill the two agree whenever an encoder maps
  zeros to zeros, and ours costs no extra encoder passes.
* ``M > 2``: exact Shapley values over all ``2^M`` coalitions (the official 3-modality code
  computes the same weights) and ``2 -> M / (M - 1)`` in the ratios (BalanceBenchmark); we keep
  the official sign (BalanceBenchmark's flips it). ``M`` is capped at 12 (``2^M`` coalitions per batch).
* Outside the window the coefficients are 1 (plain joint training); the official hooks keep
  the last coefficients set inside the window. The running means are updated on every step
  (as official).
* The clipping test reads every gradient outside the encoders (the fusion head), not only the
  official head's last ``fc.weight``. Under fp16 AMP it reads true gradients: the training step
  divides them by the loss scale before `AGM.after_backward` (``ctx.unscale_gradients``).
* DDP: the loss is computed from the DDP forward's features (DDP averages the gradients in
  the backward pass, so the clipping test sees the averaged gradients); scores are averaged
  over the whole distributed batch, so every rank keeps the same running means and coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.agm import agm_coefficients, agm_fuse, agm_mono_responses, agm_scores, agm_update_running
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_bool,
    check_number,
    check_window,
    in_window,
    non_encoder_parameters,
    sum_over_ranks,
)
from mmcoop.models.protocol import coalition_logits
from mmcoop.valuation.coalitions import coalition_masks

MAX_MODALITIES = 12


@dataclass
class AGMOptions(MethodOptions):
    """Options of ``agm``.

    Attributes:
        alpha: modulation strength (official 1.0), ``>= 0``.
        modulation_starts: first modulated epoch (0-based, official 0).
        modulation_ends: last modulated epoch (0-based, inclusive): 19 = the official 20 counted
            from 1 (20 epochs); ``null`` = no end.
        clip_grad: clip all gradients to norm 1 when a fusion-head gradient leaves ``[-1, 1]`` (official).
        max_exponent: optional cap on ``opt - ratio``: ``null`` = none (official AV-MNIST script),
            10 in the official CREMA-D script, 7 in BalanceBenchmark.
    """

    alpha: float = 1.0
    modulation_starts: int = 0
    modulation_ends: int | None = 19
    clip_grad: bool = True
    max_exponent: float | None = None

    def __post_init__(self) -> None:
        self.alpha = check_number("alpha", self.alpha, low=0.0)
        check_window(self.modulation_starts, self.modulation_ends)
        check_bool("clip_grad", self.clip_grad)
        if self.max_exponent is not None:
            self.max_exponent = check_number("max_exponent", self.max_exponent)


@METHODS.register("agm")
class AGM(Method):
    """AGM (Li et al., ICCV 2023): scale the gradient into each modality's Shapley response by ``k_u``.

    Official code: lihong2303/AGM_ICCV2023 ``model/AVMNIST_net.py`` (``GradMod``) and
    ``run/AVMNIST_main.py`` ``train``. Defaults, deliberate differences and ``M > 2`` (exact Shapley
    over ``2^M`` coalitions, ``M <= 12``): see the module docstring. Logs per epoch ``coeff_<modality>``
    (mean coefficient, 1 outside the window) and ``score_<modality>`` (mean mono-modal loss ``s_u``)."""

    Options = AGMOptions
    options: AGMOptions

    def setup(self, ctx: MethodContext) -> None:
        self.modalities = list(ctx.model.modalities)
        m = len(self.modalities)
        if m < 2 or m > MAX_MODALITIES:
            raise ConfigError(
                f"method 'agm' needs 2 to {MAX_MODALITIES} modalities (it evaluates all 2^M coalitions per batch); "
                f"the data has {m}"
            )
        self.masks = coalition_masks(m, ctx.device)  # [2^M, M], row S = bitmask S (AGM's order)
        self.head_params = non_encoder_parameters(ctx.model)
        #: running mean ``S`` ``[M]`` of the scores and the number of updates ``t``
        self.running = torch.zeros(m, dtype=torch.float64)
        self.steps = 0
        #: coefficients ``[M]`` of the last step (tests and diagnostics)
        self.last_coeffs: Tensor | None = None
        self.stats = EpochMeans()

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        labels = batch["label"]
        o = self.options
        coal = coalition_logits(ctx.model, feats, self.masks)  # [B, 2^M, C]
        mono = agm_mono_responses(coal.float().transpose(0, 1))  # [M, B, C]
        # batch-mean scores of the whole distributed batch (this rank's sums and count, summed)
        b = float(labels.shape[0])
        local = torch.cat([agm_scores(mono, labels).double().cpu() * b, torch.tensor([b], dtype=torch.float64)])
        total = sum_over_ranks(local)
        scores = total[:-1] / total[-1]
        if in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            coeffs = agm_coefficients(scores, self.running, o.alpha, o.max_exponent)
        else:
            coeffs = torch.ones_like(scores)
        self.last_coeffs = coeffs
        self.running = agm_update_running(self.running, scores, self.steps)
        self.steps += 1
        self.stats.add_per_modality("coeff", self.modalities, coeffs)
        self.stats.add_per_modality("score", self.modalities, scores)
        out = agm_fuse(mono, coeffs.to(mono.device, mono.dtype))
        return F.cross_entropy(out, labels)

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        if not self.options.clip_grad:
            return
        grads = [p.grad for p in self.head_params if p.grad is not None]
        if grads and max(float(g.detach().abs().max()) for g in grads) > 1.0:
            params = [p for group in ctx.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, max_norm=1.0)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)

    def state_dict(self) -> dict[str, Any]:
        return {"running": self.running.clone(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = state["running"].clone().double()
        self.steps = int(state["steps"])
