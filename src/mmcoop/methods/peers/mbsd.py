"""``mbsd``: fused and unimodal cross-entropies plus weighted distillation between modalities.

Paper: after Liu et al., WSDM 2023, as GeWu-Lab/BalanceBenchmark implements it. Code:
GeWu-Lab/BalanceBenchmark at commit 4c1482f ``balancemm/trainer/MBSD_trainer.py``
(``MBSDTrainer.training_step``) with the unimodal logits of
``balancemm/models/avclassify_model.py`` (``unimodality_calculate``). Arithmetic:
`mmcoop.methods.functional.mbsd_terms`.

Per batch inside the window: one forward; each modality's own logits ``W_m h_m + b / M``
(`modality_logits`, BalanceBenchmark's split of the
``concat`` head); loss ``CE(fused) + sum_m CE(u_m) + RS + KL`` where, for each pair of
modalities, a sample counts with weight ``|p_j[y] - p_k[y]|`` when either modality predicts it
right, ``RS`` is the mean squared logit difference and ``KL`` BalanceBenchmark's divergence
between the stronger and the weaker true-class probability (see the functional core). Outside
the window plain ``CE(fused)``. Evaluation uses the fused logits.

Defaults: window every epoch (BalanceBenchmark 0..80 of 30 epochs); ``kl: balancebenchmark``.

Deliberate differences:

* ``M > 2``: every pair of modalities, both terms averaged over the pairs, the consistency term
  on logits for every ``M`` (BalanceBenchmark: 3 modalities only, probabilities there).
* ``kl: distribution`` (option): the KL of the whole class distributions of the weaker and the
  stronger modality instead of BalanceBenchmark's scalar ``kl_div(p_s, p_w)``, which takes a
  probability for a log-probability.
* Per-sample loops replaced by batched tensor arithmetic (the same values).
* DDP: every term is a per-sample mean of the rank's batch; DDP averages the gradients.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional.mbsd import KL_FORMS, mbsd_terms
from mmcoop.methods.peers._wiring import EpochMeans, check_window, in_window, modality_logits, require_modalities


@dataclass
class MBSDOptions(MethodOptions):
    """Options of ``mbsd``.

    Attributes:
        kl: ``balancebenchmark`` (its scalar divergence of true-class probabilities) or
            ``distribution`` (KL of the weaker modality's class distribution from the stronger's).
        modulation_starts: first epoch with the unimodal and distillation terms (0-based; BalanceBenchmark 0).
        modulation_ends: last such epoch (inclusive); ``null`` = no end.
    """

    kl: str = "balancebenchmark"
    modulation_starts: int = 0
    modulation_ends: int | None = None

    def __post_init__(self) -> None:
        if self.kl not in KL_FORMS:
            raise ConfigError(f"method_options.kl={self.kl!r} is not valid; valid values: {', '.join(KL_FORMS)}")
        check_window(self.modulation_starts, self.modulation_ends)


@METHODS.register("mbsd")
class MBSD(Method):
    """MBSD (after Liu et al., WSDM 2023, as BalanceBenchmark): unimodal CEs plus weighted pairwise distillation.

    Code: GeWu-Lab/BalanceBenchmark ``balancemm/trainer/MBSD_trainer.py``. Defaults, deliberate
    differences and ``M > 2`` (every pair, averaged): see the module docstring. Logs per epoch
    ``mbsd_kl`` and ``mbsd_rs`` (mean distillation and consistency terms)."""

    Options = MBSDOptions
    options: MBSDOptions

    def noop_reason(self, epochs: int) -> str | None:
        """A window after the run."""
        return window_noop(self.options.modulation_starts, epochs, "MBSD's unimodal and distillation terms")

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        self.stats = EpochMeans()

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        o = self.options
        labels = batch["label"]
        fused = F.cross_entropy(logits.float(), labels)
        if not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            return fused
        uni = modality_logits(ctx.model, feats).float()  # [M, B, C]
        m, b, c = uni.shape
        ce_uni = F.cross_entropy(uni.reshape(m * b, c), labels.repeat(m)) * m  # sum of the M means
        kl, rs = mbsd_terms(uni, labels, o.kl)
        self.stats.add("mbsd_kl", kl.detach())
        self.stats.add("mbsd_rs", rs.detach())
        return fused + ce_uni + rs + kl

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
