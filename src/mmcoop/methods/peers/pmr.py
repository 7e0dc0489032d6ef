"""``pmr``: prototypical modal rebalance.

Paper: Fan, Xu, Wang, Wang, Ding, "PMR: Prototypical Modal Rebalance for Multimodal Learning",
CVPR 2023. Code: fanyunfeng-bit/Modal-Imbalance-PMR ``main_Prototype_grad.py``
(``calculate_prototype``, ``train_epoch`` with ``--modulation Proto``, ``main``). Arithmetic:
`mmcoop.methods.functional.pmr_update_prototypes`, `pmr_prototype_logits`,
`pmr_loss_weights` and `pmr_loss`.

Schedule, as the official ``main``: prototypes ``[M, C, D]`` (class means of each modality's
features, eval mode, no gradients) are computed before the first epoch and after every
epoch -- here at the start of every epoch, which sees the same weights -- over a random
``proto_ratio`` share of the training set (official: the first 10% of the shuffled training
batches), blended ``(1 - momentum) * new + momentum * old`` from the third computation on
(the official ``calculate_prototype`` skips the blend for ``epoch <= 0``, i.e. for the one
before training and the one after epoch 0). Per batch inside the modulation window:
prototype logits ``-||z_m - c_k||``, prototype scores ``s_m`` summed over the batch, weight
``alpha`` on the prototype cross-entropy of each modality below the others' mean score, loss
``CE(fused) + sum_m w_m CE(proto_m)``; outside the window plain ``CE(fused)``. Evaluation
predicts with the fused logits, as the official ``valid``.

Defaults (``get_arguments``): ``alpha = 1.0``, ``momentum_coef = 0.2``, modulation epochs
``0..100``; prototypes from 10% of the training set.

Deliberate differences:

* ``M > 2``: ``alpha`` for every modality below its others' mean prototype score (for
  ``M = 2`` the official ``rho = s_a / s_v`` rule, ties included).
* A class absent from the prototype subset keeps its previous prototype (zeros at first);
  the official code divides by a zero count.
* The subset is drawn from (seed, epoch), so every DDP rank and a resumed run use the same
  rows; under DDP the ranks share the pass (features gathered) and the batch scores are summed
  over ranks. The prototypes are part of the method state: resume is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional._common import true_class_scores
from mmcoop.methods.functional.pmr import pmr_loss, pmr_loss_weights, pmr_prototype_logits, pmr_update_prototypes
from mmcoop.methods.peers._wiring import EpochMeans, check_number, check_window, in_window, sum_over_ranks
from mmcoop.utils.dist import all_gather_rows

SALT_SUBSET = 0x9B0  # generator salt of the prototype subset


@dataclass
class PMROptions(MethodOptions):
    """Options of ``pmr``.

    Attributes:
        alpha: weight of the weak modality's prototype cross-entropy (official 1.0).
        momentum: prototype momentum ``momentum_coef`` (official 0.2).
        proto_ratio: share of the training set in each prototype pass (official 0.1).
        modulation_starts: first epoch with the prototype loss (0-based, official 0).
        modulation_ends: last epoch with it (inclusive, official 100); ``null`` = no end.
    """

    alpha: float = 1.0
    momentum: float = 0.2
    proto_ratio: float = 0.1
    modulation_starts: int = 0
    modulation_ends: int | None = 100

    def __post_init__(self) -> None:
        self.alpha = check_number("alpha", self.alpha, low=0.0)
        self.momentum = check_number("momentum", self.momentum, low=0.0, high=1.0)
        self.proto_ratio = check_number("proto_ratio", self.proto_ratio, low=0.0, high=1.0, low_open=True)
        check_window(self.modulation_starts, self.modulation_ends)


@METHODS.register("pmr")
class PMR(Method):
    """PMR (Fan et al., CVPR 2023): pull the weak modality's features towards class prototypes.

    Official code: fanyunfeng-bit/Modal-Imbalance-PMR ``main_Prototype_grad.py``
    (``calculate_prototype``, ``train_epoch``). Defaults, deliberate differences and ``M > 2`` (every
    modality below its others' mean score): see the module docstring. Logs per epoch
    ``proto_weight_<modality>`` (mean weight of its prototype loss) and ``proto_acc_<modality>``
    (training accuracy of its prototype classifier)."""

    Options = PMROptions
    options: PMROptions

    def noop_reason(self, epochs: int) -> str | None:
        """A window after the run, or ``alpha = 0`` (the prototype loss weighs nothing)."""
        if self.options.alpha == 0.0:
            return "method_options.alpha=0 gives the prototype cross-entropy no weight"
        return window_noop(self.options.modulation_starts, epochs, "the prototype loss")

    def setup(self, ctx: MethodContext) -> None:
        self.modalities = list(ctx.model.modalities)
        self.num_classes = int(ctx.train_data.num_classes)
        #: class prototypes ``[M, C, D]`` (``None`` before the first pass)
        self.prototypes: Tensor | None = None
        #: prototype passes done so far (the official blend starts with the third)
        self.passes = 0
        self.stats = EpochMeans()

    # -- prototypes ----------------------------------------------------------------------
    def prototype_subset(self, ctx: MethodContext) -> Any:
        """The training rows of this epoch's prototype pass (a dataset view)."""
        data = ctx.train_data
        n = len(data)
        k = max(1, int(round(self.options.proto_ratio * n)))
        pos = torch.randperm(n, generator=ctx.generator(SALT_SUBSET))[:k].sort().values
        pos = pos.to(data.rows.device)
        return data.view(data.rows[pos], data.keep[pos])

    def compute_prototypes(self, ctx: MethodContext) -> Tensor:
        """Class prototypes ``[M, C, D]`` from an inference pass, blended with the previous ones."""
        feats, labels = [], []
        for batch, f in ctx.inference(self.prototype_subset(ctx)):
            feats.append(f.float())
            labels.append(batch["label"])
        x = all_gather_rows(torch.cat(feats))  # [N, M, D], every rank the same rows
        y = all_gather_rows(torch.cat(labels))
        # the official blend starts with the third pass; before it, momentum 0 still lets a
        # class absent from the subset keep its previous prototype
        momentum = self.options.momentum if self.passes >= 2 else 0.0
        protos = []
        for m in range(x.shape[1]):
            prev = self.prototypes[m].to(x.device) if self.prototypes is not None else None
            protos.append(pmr_update_prototypes(x[:, m], y, self.num_classes, prev, momentum))
        self.passes += 1
        return torch.stack(protos)

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()
        self.prototypes = self.compute_prototypes(ctx)

    # -- loss ------------------------------------------------------------------------------
    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        o = self.options
        labels = batch["label"]
        if not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends) or self.prototypes is None:
            return F.cross_entropy(logits.float(), labels)
        protos = self.prototypes.to(feats.device)
        proto_logits = torch.stack(
            [pmr_prototype_logits(feats[:, m].float(), protos[m]) for m in range(feats.shape[1])]
        )  # [M, B, C]
        scores = sum_over_ranks(true_class_scores(proto_logits.detach(), labels))
        weights = pmr_loss_weights(scores, o.alpha)
        self.stats.add_per_modality("proto_weight", self.modalities, weights)
        acc = (proto_logits.detach().argmax(-1) == labels.unsqueeze(0)).float().mean(-1)
        self.stats.add_per_modality("proto_acc", self.modalities, acc)
        return pmr_loss(logits.float(), proto_logits, labels, weights.to(feats.device))

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "prototypes": None if self.prototypes is None else self.prototypes.detach().cpu().clone(),
            "passes": self.passes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prototypes = state.get("prototypes")
        self.passes = int(state.get("passes", 0))
