"""``inforeg``: InfoReg, slowing the leading modality's information acquisition in its prime window.

Paper: Huang, Wei, Yang, Hu, "Adaptive Unimodal Regulation for Balanced Multimodal Information
Acquisition", CVPR 2025. Official code: GeWu-Lab/InfoReg_CVPR2025 ``main.py``
(``train_epoch``: the epoch-start copy ``global_model``, the acquisition rate ``k`` from
``audio_trace_list``, OGM scores of ``out_a`` / ``out_v``, ``beta`` / ``beta2``, the proximal
gradient ``beta * (theta - theta_epoch_start)``, the Fisher accumulation ``fim_audio``;
``main``: the trace lists start with ten zeros). The arithmetic is
`mmcoop.methods.functional.inforeg` (`inforeg_acquisition_rate`,
`inforeg_coefficients`, `inforeg_fisher_trace`; its docstring states the
``M > 2`` rule).

Wiring. `InfoReg.on_epoch_start` copies every encoder's parameters (the anchors) and
computes the acquisition rate from the finished epochs' Fisher traces. Per batch
(`InfoReg.loss`): each modality's own logits
(`mmcoop.methods.peers._wiring.modality_logits`: ``W_m z_m + b / M`` for linear heads,
exactly the official ``out_a`` / ``out_v`` with ``bias / 2`` for ``M = 2``), OGM scores ``s_m``
(batch sums of true-class probabilities), ``beta_m`` from `inforeg_coefficients`, and the loss
``CE(fused) + sum_m CE(unimodal_m) + sum_m beta_m / 2 * ||theta_m - anchor_m||^2`` whose last
term has exactly the official added gradient ``beta_m (theta_m - anchor_m)`` (an added loss,
not a ``.grad`` edit, so it is correct under AMP loss scaling and DDP). After the backward
(`InfoReg.after_backward`) the squared gradients of every encoder's convolution and
linear weights are accumulated (official order: after the proximal term); at the epoch's end
their trace is appended to that modality's history.

Deliberate differences, and why:

* ``rate: first`` (default) gates every modality with the first modality's acquisition rate,
  as the official code uses the audio encoder's trace for both; ``rate: each`` gives each
  modality its own.
* ``base`` defaults to the official ``(0.95, 0.1)`` for two modalities (audio, then visual, on
  CREMA-D); with ``M != 2`` to ``0.95`` for every modality.
* ``Conv1d``/``Conv3d`` weights count in the Fisher trace with ``Conv2d`` and ``Linear`` (the
  official encoders have only the latter two). Under ``train.amp: fp16`` the squared gradients
  are of true gradients (the training step unscales them before `InfoReg.after_backward`).
* Under DDP each rank takes ``beta`` from its own batch (as a single process of the same batch
  size would); the proximal gradients are averaged with the rest, so ranks stay identical.

``M >= 2``: a modality is regulated when its score exceeds the mean of the others'
(for ``M = 2`` exactly the official comparison).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Union

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional._common import true_class_scores
from mmcoop.methods.functional.inforeg import inforeg_acquisition_rate, inforeg_coefficients, inforeg_fisher_trace
from mmcoop.methods.peers._wiring import (
    check_bool,
    check_int,
    check_number,
    encoder_groups,
    modality_logits,
    require_modalities,
)

RATES = ("first", "each")
OFFICIAL_BASE = (0.95, 0.1)  # audio, visual (main.py)
_FISHER_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass
class InfoRegOptions(MethodOptions):
    """Options of ``inforeg`` (defaults: official ``main.py``).

    Attributes:
        window: epochs averaged in the acquisition rate (official 10).
        threshold: regulate only while the rate exceeds it (official 0.05).
        base: ``beta`` base per modality (list of ``M``) or one for all; ``None`` = official
            ``[0.95, 0.1]`` for ``M = 2``, else 0.95 each.
        rate: ``first`` (official: the first modality's rate gates all) or ``each``.
        unimodal_loss: add each modality's own cross-entropy (official: yes).
    """

    window: int = 10
    threshold: float = 0.05
    base: Optional[Union[float, list[float]]] = None
    rate: str = "first"
    unimodal_loss: bool = True

    def __post_init__(self) -> None:
        self.window = check_int("window", self.window, 1)
        self.threshold = check_number("threshold", self.threshold)
        if self.rate not in RATES:
            raise ConfigError(f"method_options.rate={self.rate!r} is not valid; valid values: {', '.join(RATES)}")
        if self.base is not None:
            if isinstance(self.base, (list, tuple)):
                self.base = [check_number("base", b, 0.0) for b in self.base]
            else:
                self.base = check_number("base", self.base, 0.0)
        self.unimodal_loss = check_bool("unimodal_loss", self.unimodal_loss)


@METHODS.register("inforeg")
class InfoReg(Method):
    """InfoReg (CVPR 2025): a proximal pull to the epoch-start weights for the leading modality."""

    Options = InfoRegOptions
    options: InfoRegOptions

    def __init__(self, options: InfoRegOptions | None = None) -> None:
        super().__init__(options)
        self.base = torch.zeros(0, dtype=torch.float64)
        self.history: list[list[float]] = []  # per modality: Fisher trace of every finished epoch
        self.params: list[list[nn.Parameter]] = []
        self.fisher_weights: list[list[nn.Parameter]] = []
        self.anchors: list[list[Tensor]] = []
        self.rates = torch.zeros(0, dtype=torch.float64)
        self._fisher: list[list[Tensor]] = []
        self._sums: dict[str, Tensor] = {}

    def setup(self, ctx: MethodContext) -> None:
        m = require_modalities(ctx.model, self.name)
        b = self.options.base
        if b is None:
            base = list(OFFICIAL_BASE) if m == 2 else [0.95] * m
        elif isinstance(b, list):
            if len(b) != m:
                raise ConfigError(
                    f"method_options.base has {len(b)} values but the data has {m} modalities "
                    f"({', '.join(ctx.model.modalities)}); give one per modality or a single number"
                )
            base = b
        else:
            base = [b] * m
        self.base = torch.tensor(base, dtype=torch.float64)
        self.params = encoder_groups(ctx.model, self.name)
        encoders = [ctx.model.encoders[name] for name in ctx.model.modalities]  # present: encoder_groups checked
        self.fisher_weights = [
            [mod.weight for mod in enc.modules() if isinstance(mod, _FISHER_LAYERS) and mod.weight.requires_grad]
            for enc in encoders
        ]
        self.history = [[] for _ in range(m)]

    def on_epoch_start(self, ctx: MethodContext) -> None:
        m = len(self.params)
        self.anchors = [[p.detach().clone() for p in ps] for ps in self.params]
        rates = [inforeg_acquisition_rate(h, self.options.window) for h in self.history]
        self.rates = torch.tensor([rates[0]] * m if self.options.rate == "first" else rates, dtype=torch.float64)
        self._fisher = [[torch.zeros_like(w) for w in ws] for ws in self.fisher_weights]
        self._sums = {
            "beta": torch.zeros(m, dtype=torch.float64),
            "active": torch.zeros(m, dtype=torch.float64),
            "steps": torch.zeros((), dtype=torch.float64),
        }

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        labels = batch["label"]
        uni = modality_logits(ctx.model, feats).float()  # [M, B, C], W_m z_m + b / M
        m = uni.shape[0]
        total = F.cross_entropy(logits.float(), labels)
        if self.options.unimodal_loss:
            uni_ce = F.cross_entropy(uni.flatten(0, 1), labels.repeat(m), reduction="none").view(m, -1)
            total = total + uni_ce.mean(1).sum()
        beta = inforeg_coefficients(
            true_class_scores(uni.detach(), labels).cpu(), self.rates, self.base, self.options.threshold
        )
        total = total + self.proximal(beta)
        if self._sums:
            self._sums["beta"] += beta
            self._sums["active"] += (beta > 0).double()
            self._sums["steps"] += 1
        return total

    def proximal(self, beta: Tensor) -> Tensor:
        """``sum_m beta_m / 2 * ||theta_m - anchor_m||^2`` (gradient ``beta_m (theta_m - anchor_m)``)."""
        terms = []
        for k, coeff in enumerate(beta.tolist()):
            if coeff > 0:
                sq = sum(((p - a) ** 2).sum() for p, a in zip(self.params[k], self.anchors[k]))
                terms.append(0.5 * coeff * sq)
        return torch.stack(terms).sum() if terms else torch.zeros(())

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        with torch.no_grad():
            for acc, ws in zip(self._fisher, self.fisher_weights):
                for a, w in zip(acc, ws):
                    if w.grad is not None:
                        a.add_(w.grad * w.grad)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        n = max(float(self._sums["steps"]), 1.0)
        for k, name in enumerate(ctx.model.modalities):
            trace = inforeg_fisher_trace(self._fisher[k])
            self.history[k].append(trace)
            ctx.log[f"fisher_trace_{name}"] = trace
            ctx.log[f"rate_{name}"] = float(self.rates[k])
            ctx.log[f"beta_{name}"] = float(self._sums["beta"][k]) / n
            ctx.log[f"regulated_{name}"] = float(self._sums["active"][k]) / n

    def state_dict(self) -> dict[str, Any]:
        return {"history": [list(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "history" in state:
            self.history = [list(map(float, h)) for h in state["history"]]
