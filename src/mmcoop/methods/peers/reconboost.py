"""``reconboost``: alternating boosting of per-modality learners with a reconcilement term.

Paper: Hua, Xu, Bao, Yang, Huang, "ReconBoost: Boosting Can Achieve Modality Reconcilement",
ICML 2024. Official code: huacong/ReconBoost, ``train.py`` ``main`` (the stage loop: phase 1
``boosting_loss`` on the picked learner, phase 2 ``correct_epoch`` epochs of cross-entropy on
the ensemble), ``models/dynamic_net.py`` (``DynamicNet.forward`` / ``forward_grad`` /
``add``, ``Head``), ``schedule.py`` ``schedule_model`` (fixed order). The loss is
`mmcoop.methods.functional.reconboost_loss` and the ensemble
`reconboost_ensemble_logits` (their docstring explains why
the "GA" term is omitted: both its inputs are detached, so it has no gradient).

Wiring. Learner ``k`` is encoder ``k`` followed by one classification head shared by all
learners (official ``common_space=True``: ``model.fc = net_ensemble.head``, a ``Head`` =
``Linear(D, 256)-ReLU-Linear(256, C)``), owned by the method together with the ensemble's
learnable scale ``boost_rate`` (`ReconBoost.modules`). Epochs are grouped in stages of
``epochs_per_stage + correct_epochs`` epochs; stage ``s`` picks modality ``s mod M``:

* phase 1 (``epochs_per_stage`` epochs): only learner ``k`` is trained, with
  ``reconboost_loss(f_k, boost_rate * sum_{j != k} f_j, y, weight1, weight2)`` where the other
  learners' logits carry no gradient (their encoders run in a second, gradient-free pass);
* phase 2 (``correct_epochs`` epochs): cross-entropy of ``boost_rate * sum_j f_j`` trains all
  learners that joined the ensemble, the shared head and ``boost_rate``.

A learner joins the ensemble at its first stage (official ``net_ensemble.add`` after phase 1;
before, ``DynamicNet.forward`` returns a constant and the loss weight is ``w1 - w2``).
Evaluation predicts with the ensemble (`ReconBoost.predict`) and reports each learner
alone as the per-modality accuracies (`ReconBoost.unimodal_logits`). The model's own
fusion head is not used: it stays at its initialisation.

Deliberate differences, and why:

* One optimizer for the whole run (the run's ``train.optimizer``); the official code builds a
  new SGD (lr 0.01, momentum 0.9, weight decay 5e-4) for each phase of each stage, which
  resets momentum. Parameters outside the current phase receive no gradient (``None``), so
  the optimizer leaves them, and their momentum, untouched.
* Official per-stage learning-rate decay (``/10`` every 30 stages on CREMA-D) is left to
  ``train.step_size``/``gamma`` (per epoch).
* Encoders outside the current phase get their gradients cleared (``None``) before the step,
  so a model whose ``encode`` runs every encoder (zero gradients through the stacked
  features) does not move them through momentum or Adam's moments.
* The other learners' encoders run in train mode (as the official ``net_ensemble.to_train()``),
  so their BatchNorm statistics move during a stage; their parameters do not.

Needs the model's per-modality encoders (``model.encoders``: built-in and ``from_modules``
models); the model's ``encode`` should skip removed modalities for speed (built-in models do).

``M >= 2``: native; stages cycle through the modalities in order and the ensemble sums all
learners that have had a stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.reconboost import reconboost_ensemble_logits, reconboost_loss
from mmcoop.methods.peers._wiring import (
    check_bool,
    check_int,
    check_number,
    encoder_groups,
    require_modalities,
    stacked_width,
)


@dataclass
class ReconBoostOptions(MethodOptions):
    """Options of ``reconboost`` (defaults: official ``train.py`` for CREMA-D).

    Attributes:
        epochs_per_stage: phase-1 epochs per stage (official ``epochs_per_stage``: 4).
        correct_epochs: phase-2 ensemble-correction epochs per stage (official ``correct_epoch``: 4).
        weight1: fit weight ``w1`` (official 5.0; AVE 4.0).
        weight2: reconcilement weight ``w2`` (official 1.0).
        boost_rate: initial value of the learnable ensemble scale (official ``boost_rate``: 1.0).
        head_hidden: hidden width of the shared head (official ``Head``: 256); 0 = one linear layer.
        class_mean: divide the boosting loss by ``C`` as the official ``mean(-1)`` does.
    """

    epochs_per_stage: int = 4
    correct_epochs: int = 4
    weight1: float = 5.0
    weight2: float = 1.0
    boost_rate: float = 1.0
    head_hidden: int = 256
    class_mean: bool = True

    def __post_init__(self) -> None:
        self.epochs_per_stage = check_int("epochs_per_stage", self.epochs_per_stage, 1)
        self.correct_epochs = check_int("correct_epochs", self.correct_epochs, 0)
        self.weight1 = check_number("weight1", self.weight1, 0.0)
        self.weight2 = check_number("weight2", self.weight2, 0.0)
        self.boost_rate = check_number("boost_rate", self.boost_rate, 0.0, low_open=True)
        self.head_hidden = check_int("head_hidden", self.head_hidden, 0)
        self.class_mean = check_bool("class_mean", self.class_mean)


class ReconBoostEnsemble(nn.Module):
    """The shared learner head (``[.., D] -> [.., C]``) and the ensemble scale ``boost_rate``."""

    def __init__(self, dim: int, num_classes: int, hidden: int, boost_rate: float) -> None:
        super().__init__()
        if hidden > 0:
            self.head: nn.Module = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
        else:
            self.head = nn.Linear(dim, num_classes)
        self.boost_rate = nn.Parameter(torch.tensor(float(boost_rate)))

    def learner_logits(self, feats: Tensor) -> Tensor:
        """Every learner's logits ``[M, B, C]`` from features ``[B, M, D]``."""
        return self.head(feats.transpose(0, 1))


@METHODS.register("reconboost")
class ReconBoost(Method):
    """ReconBoost (ICML 2024): per-modality learners boosted in alternating stages."""

    Options = ReconBoostOptions
    options: ReconBoostOptions

    def __init__(self, options: ReconBoostOptions | None = None) -> None:
        super().__init__(options)
        self.ensemble: ReconBoostEnsemble | None = None
        self.num_modalities = 0
        self.members = 0  # learners in the ensemble: modalities 0..members-1 (in stage order)
        self._encoder_params: list[list[nn.Parameter]] = []

    def setup(self, ctx: MethodContext) -> None:
        self.num_modalities = require_modalities(ctx.model, self.name)
        o = self.options
        self._encoder_params = encoder_groups(ctx.model, self.name)
        self.ensemble = ReconBoostEnsemble(stacked_width(ctx), ctx.train_data.num_classes, o.head_hidden, o.boost_rate)
        self.members = self.schedule(ctx.epoch)[3]

    def modules(self) -> dict[str, nn.Module]:
        return {"ensemble": self.ensemble} if self.ensemble is not None else {}

    def schedule(self, epoch: int) -> tuple[int, int, bool, int]:
        """``(stage, picked modality, boosting phase?, ensemble size)`` of ``epoch``."""
        o = self.options
        stage, local = divmod(epoch, o.epochs_per_stage + o.correct_epochs)
        return stage, stage % self.num_modalities, local < o.epochs_per_stage, min(stage + 1, self.num_modalities)

    def on_epoch_start(self, ctx: MethodContext) -> None:
        stage, k, boosting, self.members = self.schedule(ctx.epoch)
        ctx.log.update(reconboost_stage=stage, reconboost_modality=k, reconboost_boosting=int(boosting))

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        assert self.ensemble is not None
        _, k, boosting, members = self.schedule(ctx.epoch)
        labels, inputs = batch["label"], batch["inputs"]
        m = self.num_modalities
        trained = [k] if boosting else list(range(members))
        ctx.zero_grad()
        # the graph reaches only some encoders: reduce gradients in ctx.step, not in DDP's backward
        with ctx.no_sync():
            feats, _ = ctx.forward(inputs, None if len(trained) == m else self._keep(batch, trained))
            others = [j for j in range(members) if j != k] if boosting else []
            if others:  # the other learners: train mode (as official), no graph
                with torch.no_grad(), ctx.autocast():
                    feats_o = ctx.model.encode(inputs, self._keep(batch, others))
            with ctx.autocast():
                if boosting:
                    mine = self.ensemble.learner_logits(feats[:, k : k + 1])[0].float()
                    rate = float(self.ensemble.boost_rate.detach())
                    ens_others = None
                    if others:
                        with torch.no_grad():
                            other_logits = self.ensemble.learner_logits(feats_o[:, others]).float()
                        ens_others = reconboost_ensemble_logits(other_logits, None, rate)
                    o = self.options
                    loss = reconboost_loss(mine, ens_others, labels, o.weight1, o.weight2, o.class_mean)
                    fused = rate * mine.detach() + (0.0 if ens_others is None else ens_others)
                else:
                    learners = self.ensemble.learner_logits(feats[:, :members]).float()
                    rate_param = self.ensemble.boost_rate  # learnable here (phase 2)
                    fused = reconboost_ensemble_logits(learners, None, rate_param)  # type: ignore[arg-type]
                    loss = F.cross_entropy(fused, labels)
            ctx.check_loss(loss)
            ctx.backward(loss)
        # A model whose encode runs every encoder (and the [B, M, D] stack) hands the others
        # zero gradients; drop them so the optimizer (momentum, Adam) leaves those encoders alone.
        for j, params in enumerate(self._encoder_params):
            if j not in trained:
                for p in params:
                    p.grad = None
        ctx.step()
        return loss.detach(), fused.detach()

    @staticmethod
    def _keep(batch: Batch, modalities: list[int]) -> Tensor:
        """Keep-mask ``[B, M]`` running only ``modalities``' encoders."""
        keep = torch.zeros_like(batch["keep"])
        keep[:, modalities] = True
        return keep

    def predict(self, model: nn.Module, feats: Tensor, batch: Batch) -> Tensor:
        """The ensemble ``boost_rate * sum_j f_j`` over the learners that joined it."""
        assert self.ensemble is not None
        learners = self.ensemble.learner_logits(feats[:, : max(self.members, 1)])
        return reconboost_ensemble_logits(learners, None, self.ensemble.boost_rate)  # type: ignore[arg-type]

    def unimodal_logits(self, model: nn.Module, feats: Tensor) -> Tensor:
        """Each learner alone ``[B, M, C]`` (shared head on each modality's feature) for the
        per-modality accuracies of evaluation; the model's fusion head is not a learner."""
        assert self.ensemble is not None
        return self.ensemble.learner_logits(feats).transpose(0, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"members": self.members}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.members = int(state.get("members", self.members))

    def epoch_log(self, ctx: MethodContext) -> dict[str, float]:
        log = dict(ctx.log)
        if self.ensemble is not None:
            log["boost_rate"] = float(self.ensemble.boost_rate.detach())
        return log
