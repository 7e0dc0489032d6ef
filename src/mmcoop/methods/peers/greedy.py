"""``greedy``: Greedy's balanced-learning curation, on a late-fusion model.

Paper: Wu, Jastrzebski, Cho, Geras, "Characterizing and Overcoming the Greedy Nature of
Learning in Multi-modal Deep Neural Networks", ICML 2022. Official code:
nyukat/greedy_multimodal_learning ``src/callbacks.py`` ``Bias_Mitigation_Strong``
(``compute_BDR``, ``on_backward_end``, ``on_epoch_begin``), ``src/balanced_mmtm.py``
``MMTM_mitigate.forward`` (curation: one stream's excitation replaced by its running
average), ``configs/training_guided.gin`` (``epsilon=0.01``, ``curation_windowsize=5``,
``starting_epoch=2``, counted from 1: ``src/framework.py`` loops ``for epoch in range(1, epochs + 1)``
and ``src/callbacks.py`` unlocks curation ``if epoch >= self.starting_epoch``, i.e. from the
second epoch; mmcoop counts epochs from 0, so its default ``starting_epoch`` is 1). The arithmetic is `mmcoop.methods.functional.greedy`
(`learning_speed`, `greedy_bdr_difference`, `greedy_curation`,
`conditional_utilization_rate`).

**This is not the official MMTM bypass.** The official method needs a model whose two
branches exchange information through MMTM layers: the "bypass" parameters are the MMTM
layers, and a curation step replaces one branch's MMTM excitation by its running average.
A late-fusion model (mmcoop's contract: encoders meet only in the fusion head) has no such
layers, so that bypass cannot be applied faithfully. What runs here is Greedy's *curation
schedule* over the late-fusion model's per-modality learning speeds:

* main branch of modality ``u`` = encoder ``u``; its cross-modal part ("bypass") = the fusion
  head's weights for ``u`` (``concat``: its columns; ``sum``: its own matrix); every other head
  parameter (biases, or the whole head when it is not linear per modality) counts for both,
  as the official shared MMTM parameters do;
* after every backward pass the cumulative speeds ``M_main_u``, ``M_bypass_u`` grow by
  ``||g||^2 / ||w||^2`` (not during curation steps, as official), ``d = BDR_0 - BDR_1``; from
  ``starting_epoch`` on, ``|d| > epsilon`` starts ``window`` curation steps caring for
  modality ``1`` if ``d < 0`` else ``0`` (official ``on_backward_end``);
* a curation step caring for ``c`` cuts the other modality's flow into the prediction: its
  feature is replaced by its running average before the fusion head (the late-fusion analogue
  of replacing the MMTM excitation by its running average; also the paper's definition of
  ``A(m_c)`` in the conditional utilisation rate), so only ``c`` can reduce the loss.

Logged per epoch: ``d_bdr`` (last), ``curation_steps``, ``caring_<m>`` (curated steps per
caring modality), the cumulative speeds, and on the validation split the conditional
utilisation rates ``util_<m>`` = ``u(m | other)`` (``log_utilization``).

Other deliberate differences: the feature running average is a plain cumulative mean over
training steps (official: cumulative mean of the excitation; the official skeleton average is
updated from the visual excitation, a copy-paste slip not copied here); it is averaged over
DDP ranks so every rank curates with the same values. A parameter without a gradient counts
zero (the official ``parameter.grad.data`` would fail).

``M``: exactly 2 (the official bypass joins two branches): ``max_modalities = 2`` makes the
training loop refuse ``M > 2`` with a ConfigError before training, `Greedy.setup` ``M < 2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional.greedy import (
    conditional_utilization_rate,
    greedy_bdr_difference,
    greedy_curation,
    learning_speed,
)
from mmcoop.methods.peers._wiring import (
    check_bool,
    check_int,
    check_number,
    encoder_groups,
    linear_head_slices,
    require_modalities,
    stacked_width,
    sum_over_ranks,
)


@dataclass
class GreedyOptions(MethodOptions):
    """Options of ``greedy`` (defaults: official ``configs/training_guided.gin``).

    Attributes:
        epsilon: curate when ``|d_BDR| > epsilon`` (official 0.01).
        window: curation steps per episode (official ``curation_windowsize``: 5).
        starting_epoch: first epoch (0-based) that may curate: 1 = the second epoch, as the official
            ``starting_epoch=2`` counted from 1.
        log_utilization: log the conditional utilisation rates on the validation split each epoch.
    """

    epsilon: float = 0.01
    window: int = 5
    starting_epoch: int = 1
    log_utilization: bool = True

    def __post_init__(self) -> None:
        self.epsilon = check_number("epsilon", self.epsilon, 0.0)
        self.window = check_int("window", self.window, 1)
        self.starting_epoch = check_int("starting_epoch", self.starting_epoch, 0)
        self.log_utilization = check_bool("log_utilization", self.log_utilization)


@METHODS.register("greedy")
class Greedy(Method):
    """Greedy (ICML 2022) curation schedule over a late-fusion model's learning speeds (2 modalities)."""

    Options = GreedyOptions
    options: GreedyOptions
    max_modalities = 2  # the loop refuses M > 2 before training; setup refuses M < 2

    def __init__(self, options: GreedyOptions | None = None) -> None:
        super().__init__(options)
        self.speed_main = torch.zeros(2, dtype=torch.float64)
        self.speed_bypass = torch.zeros(2, dtype=torch.float64)
        self.curating = False
        self.caring = 0
        self.curation_step = 0
        self.d_bdr = float("nan")
        self.avg_feats: Tensor | None = None  # float32 [2, D]: running mean feature per modality
        self.avg_steps = 0
        self._counts = torch.zeros(3, dtype=torch.long)  # curated steps caring 0, caring 1, all steps

    def skips_encoders(self) -> bool:
        """A curation step replaces the non-caring modality's feature by its running average."""
        return True

    def noop_reason(self, epochs: int) -> str | None:
        """No epoch may curate: ``starting_epoch`` is after the run."""
        return window_noop(self.options.starting_epoch, epochs, "curation", key="starting_epoch")

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name, exactly=2)
        self.main_params = encoder_groups(ctx.model, self.name)
        head = getattr(ctx.model, "head", None)
        slices = linear_head_slices(ctx.model)
        self.slice_weight, self.per_modality = (None, None) if slices is None else slices
        encoder_ids = {id(p) for ps in self.main_params for p in ps}
        pool = head.parameters() if isinstance(head, nn.Module) else ctx.model.parameters()
        self.shared_params = [
            p for p in pool if p.requires_grad and id(p) not in encoder_ids and p is not self.slice_weight
        ]
        self.avg_feats = torch.zeros(2, stacked_width(ctx))

    # -- per step --------------------------------------------------------------------
    def on_epoch_start(self, ctx: MethodContext) -> None:
        self._counts = torch.zeros(3, dtype=torch.long)

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        self._update_average(feats)
        self._counts[2] += 1
        if not self.curating:
            return F.cross_entropy(logits.float(), batch["label"])
        self._counts[self.caring] += 1
        return F.cross_entropy(self.curated_logits(ctx.model, feats, self.caring).float(), batch["label"])

    def curated_logits(self, model: nn.Module, feats: Tensor, caring: int) -> Tensor:
        """Fused logits with the non-caring modality's feature replaced by its running average."""
        assert self.avg_feats is not None
        other = 1 - caring
        x = feats.clone()
        x[:, other] = self.avg_feats[other].to(feats.device, feats.dtype)
        return model.fuse(x)

    @torch.no_grad()
    def _update_average(self, feats: Tensor) -> None:
        assert self.avg_feats is not None
        b = torch.tensor([float(feats.shape[0])], dtype=torch.float64, device=feats.device)
        sums = sum_over_ranks(torch.cat([feats.detach().double().sum(0).flatten(), b]))
        mean = (sums[:-1] / sums[-1]).view_as(self.avg_feats).float().cpu()
        self.avg_feats = (mean + self.avg_feats * self.avg_steps) / (self.avg_steps + 1)
        self.avg_steps += 1

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        """Official ``on_backward_end``: accumulate speeds and decide the next steps' curation."""
        if ctx.epoch < self.options.starting_epoch:
            self.d_bdr = self.accumulate_speeds()
            self.curating, self.caring = False, 0
        elif not self.curating:
            self.d_bdr = self.accumulate_speeds()
            self.curating, self.caring = greedy_curation(self.d_bdr, self.options.epsilon)
            self.curation_step = 0
        else:
            self.curation_step += 1
            if self.curation_step == self.options.window:
                self.curating = False

    @torch.no_grad()
    def accumulate_speeds(self) -> float:
        """Add this step's ``||g||^2 / ||w||^2`` per branch to the cumulative speeds; return ``d_BDR``."""

        def sq(ts: list[Tensor]) -> Tensor:
            if not ts:
                return torch.zeros((), dtype=torch.float64)
            return torch.stack([t.double().pow(2).sum() for t in ts]).sum()

        def grads(ps: list[nn.Parameter]) -> list[Tensor]:
            return [p.grad for p in ps if p.grad is not None]

        gn_main = torch.stack([sq(grads(ps)) for ps in self.main_params])
        wn_main = torch.stack([sq(list(ps)) for ps in self.main_params])
        g_shared, w_shared = sq(grads(self.shared_params)), sq(list(self.shared_params))
        gn_bypass = torch.stack([g_shared, g_shared])
        wn_bypass = torch.stack([w_shared, w_shared])
        if self.slice_weight is not None and self.per_modality is not None:
            w = self.per_modality(self.slice_weight).double()  # [2, C, D]
            wn_bypass = wn_bypass + w.pow(2).flatten(1).sum(1)
            if self.slice_weight.grad is not None:
                gn_bypass = gn_bypass + self.per_modality(self.slice_weight.grad).double().pow(2).flatten(1).sum(1)
        self.speed_main += learning_speed(gn_main, wn_main).cpu()
        self.speed_bypass += learning_speed(gn_bypass, wn_bypass).cpu()
        return greedy_bdr_difference(self.speed_bypass, self.speed_main)

    # -- per epoch -------------------------------------------------------------------
    def on_epoch_end(self, ctx: MethodContext) -> None:
        names = ctx.model.modalities
        ctx.log["d_bdr"] = self.d_bdr
        ctx.log["curation_steps"] = int(self._counts[0] + self._counts[1])
        for k, name in enumerate(names):
            ctx.log[f"caring_{name}"] = int(self._counts[k])
            ctx.log[f"speed_main_{name}"] = float(self.speed_main[k])
            ctx.log[f"speed_bypass_{name}"] = float(self.speed_bypass[k])
        if self.options.log_utilization and ctx.val_data is not None:
            for k, rate in enumerate(self.utilization(ctx)):
                ctx.log[f"util_{names[k]}"] = rate

    @torch.no_grad()
    def utilization(self, ctx: MethodContext) -> list[float]:
        """``[u(m_0 | m_1), u(m_1 | m_0)]`` on the validation split (official paper, Sec. 3)."""
        correct = torch.zeros(3, dtype=torch.float64, device=ctx.device)  # both, caring 0, caring 1
        total = torch.zeros(1, dtype=torch.float64, device=ctx.device)
        for batch, feats in ctx.inference(ctx.val_data):
            net, y = ctx.inference_model, batch["label"]
            with ctx.autocast():
                outs = [net.fuse(feats), self.curated_logits(net, feats, 0), self.curated_logits(net, feats, 1)]
            correct += torch.stack([(o.argmax(-1) == y).sum() for o in outs]).double()
            total += y.shape[0]
        sums = sum_over_ranks(torch.cat([correct, total])).cpu()
        acc = (sums[:3] / sums[3].clamp(min=1)).tolist()
        # u(m_0 | m_1) needs A(m_1) (m_0 averaged: caring for m_1); u(m_1 | m_0) needs A(m_0)
        return [conditional_utilization_rate(acc[0], acc[2]), conditional_utilization_rate(acc[0], acc[1])]

    # -- checkpoint ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "speed_main": self.speed_main.clone(),
            "speed_bypass": self.speed_bypass.clone(),
            "curating": self.curating,
            "caring": self.caring,
            "curation_step": self.curation_step,
            "d_bdr": self.d_bdr,
            "avg_feats": None if self.avg_feats is None else self.avg_feats.clone(),
            "avg_steps": self.avg_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.speed_main = state["speed_main"].double().cpu()
        self.speed_bypass = state["speed_bypass"].double().cpu()
        self.curating, self.caring = bool(state["curating"]), int(state["caring"])
        self.curation_step, self.d_bdr = int(state["curation_step"]), float(state["d_bdr"])
        if state.get("avg_feats") is not None:
            self.avg_feats = state["avg_feats"].float().cpu()
        self.avg_steps = int(state["avg_steps"])
