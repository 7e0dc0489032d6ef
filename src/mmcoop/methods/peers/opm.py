"""``opm``: on-the-fly prediction modulation (drop the dominant modality's features).

Paper: Wei, Hu, Du, Wen, "On-the-fly Modulation for Balanced Multimodal Learning", TPAMI 2024.
Code: GeWu-Lab/BML_TPAMI2024 ``code/models/Classifier.py`` (``Classifier.forward``, ``calcu_q``,
``Modality_drop.execute_drop``) and ``code/main.py`` ``train``. Arithmetic:
`mmcoop.methods.functional.opm_drop_probabilities`, `opm_keep_mask`
and `opm_drop_features`.

Per batch, as the official code: one forward to the per-modality features; scores ``s_m``
(batch sum of true-class probabilities of each modality's own logits, bias ``b / M``) give
drop probabilities ``q_m`` (non-zero only for modalities ahead of the others); with
probability ``p_exe`` the batch is modulated: a Bernoulli keep-mask ``[B, M]`` zeroes dropped
features, kept ones are scaled by ``1 / (1 - theta)``, the fusion head runs on them and the
loss is ``CE`` over the samples that kept at least one modality (none: the step is skipped).
Otherwise (and outside the window) plain joint training. Evaluation uses every modality.

Defaults (``code/scripts/train_opm.sh``, ``main.py``): ``q_base = 0.5``, ``lam = 0.5``,
``p_exe = 0.7``; no drop during the warm-up epochs ``epoch <= 5`` (``modulation_starts = 6``),
no end.

Deliberate differences:

* ``M > 2``: pairwise-averaged one-vs-others ratios (see the functional core); the feature
  widths ``d_m`` in ``theta`` are the model's (``model.feature_dims``).
* Bias share ``b / M`` as in `mmcoop.methods.peers.ogm_ge` (official ``b / 2`` for M = 2).
* ``p_exe`` and the masks are drawn from generators seeded by (seed, step), not NumPy's
  global RNG: exact resume; under DDP every rank takes the same ``p_exe`` decision, the
  scores are summed over ranks, masks differ per rank, and a step is skipped only when no
  sample of the whole distributed batch kept a modality.
* The training statistics (``train_acc``) are those of the un-dropped fused logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional._common import true_class_scores
from mmcoop.methods.functional.opm import opm_drop_features, opm_drop_probabilities, opm_keep_mask
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_number,
    check_window,
    feature_widths,
    in_window,
    modality_logits,
    step_generator,
    sum_over_ranks,
)

SALT_EXE = 0x0E7  # generator salt of the per-batch p_exe draw
SALT_MASK = 0x3A5  # generator salt of the keep-masks


@dataclass
class OPMOptions(MethodOptions):
    """Options of ``opm``.

    Attributes:
        q_base: base drop probability of a dominant modality (official 0.5).
        lam: growth of the drop probability with the discrepancy (official 0.5).
        p_exe: probability that a batch is modulated (official 0.7).
        modulation_starts: first epoch with drops (0-based; official 6: no drop while ``epoch <= 5``).
        modulation_ends: last epoch with drops (inclusive); ``null`` = no end (official).
    """

    q_base: float = 0.5
    lam: float = 0.5
    p_exe: float = 0.7
    modulation_starts: int = 6
    modulation_ends: int | None = None

    def __post_init__(self) -> None:
        self.q_base = check_number("q_base", self.q_base, low=0.0, high=1.0)
        self.lam = check_number("lam", self.lam, low=0.0)
        self.p_exe = check_number("p_exe", self.p_exe, low=0.0, high=1.0)
        check_window(self.modulation_starts, self.modulation_ends)


@METHODS.register("opm")
class OPM(Method):
    """OPM (Wei et al., TPAMI 2024): randomly drop the dominant modality's features in training.

    Official code: GeWu-Lab/BML_TPAMI2024 ``code/models/Classifier.py`` (``calcu_q``,
    ``Modality_drop.execute_drop``) and ``code/main.py`` ``train``. Defaults, deliberate differences and
    ``M > 2`` (pairwise one-vs-others ratios): see the module docstring. Logs per epoch ``q_<modality>``
    (mean drop probability over modulated batches), ``dropped_<modality>`` (fraction of samples whose
    feature was dropped) and ``modulated_batches`` (fraction of batches that drew ``p_exe``)."""

    Options = OPMOptions
    options: OPMOptions

    def noop_reason(self, epochs: int) -> str | None:
        """A window after the run, no modulated batch (``p_exe = 0``) or no drop (``q_base = 0``)."""
        o = self.options
        if o.p_exe == 0.0:
            return "method_options.p_exe=0: no batch is ever modulated"
        if o.q_base == 0.0:
            return "method_options.q_base=0 makes every drop probability 0"
        return window_noop(o.modulation_starts, epochs, "dropping")

    def setup(self, ctx: MethodContext) -> None:
        self.modalities = list(ctx.model.modalities)
        self.widths = feature_widths(ctx)
        self.stats = EpochMeans()

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def train_step(self, ctx: MethodContext, batch: Batch) -> tuple[Tensor, Tensor]:
        o = self.options
        if not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            return super().train_step(ctx, batch)
        keep = batch["keep"]
        labels = batch["label"]
        ctx.zero_grad()
        with ctx.no_sync():  # the loss runs the head outside the DDP forward: step averages
            feats, logits = ctx.forward(batch["inputs"], None if bool(keep.all()) else keep)
            execute = bool(torch.rand((), generator=step_generator(ctx, SALT_EXE)) < o.p_exe)
            self.stats.add("modulated_batches", float(execute))
            if not execute:
                with ctx.autocast():
                    loss = F.cross_entropy(logits.float(), labels)
            else:
                with torch.no_grad():
                    uni = modality_logits(ctx.model, feats.detach().float())  # [M, B, C]
                    q = opm_drop_probabilities(sum_over_ranks(true_class_scores(uni, labels)), o.q_base, o.lam)
                mask = opm_keep_mask(q.cpu(), labels.shape[0], step_generator(ctx, SALT_MASK, per_rank=True))
                mask = mask.to(feats.device) * keep.to(feats.device, torch.float32)
                parts = [feats[:, m, :w] for m, w in enumerate(self.widths)]
                masked, update = opm_drop_features(parts, mask, q.to(feats.device))
                dropped = feats.new_zeros(feats.shape)
                for m, (part, w) in enumerate(zip(masked, self.widths)):
                    dropped[:, m, :w] = part
                self.stats.add_per_modality("q", self.modalities, q)
                self.stats.add_per_modality("dropped", self.modalities, 1.0 - mask.mean(0))
                if float(sum_over_ranks(update.sum().float())) == 0:  # official: `continue`
                    return F.cross_entropy(logits.detach().float(), labels), logits.detach()
                with ctx.autocast():
                    out = ctx.model.fuse(dropped)
                    # mean over this rank's kept samples (a rank with none contributes zero)
                    per = F.cross_entropy(out.float(), labels, reduction="none")
                    loss = (per * update).sum() / update.sum().clamp(min=1)
            ctx.check_loss(loss)
            ctx.backward(loss)
        ctx.step()
        return loss.detach(), logits.detach()

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
