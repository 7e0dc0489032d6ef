"""``mmcosine``: modality-wise cosine logits, summed, cross-entropy on the sum.

Paper: Xu, Wei, Hu, "MMCosine: Multi-Modal Cosine Loss Towards Balanced Audio-Visual
Fine-Grained Learning", ICASSP 2023. Code: GeWu-Lab/MMCosine_ICASSP23 at commit 00ba0a9
``main_CD.py`` (``train_epoch``, ``valid``) and GeWu-Lab/BalanceBenchmark at commit 4c1482f
``balancemm/trainer/MMCosine_trainer.py`` (``training_step``, ``validation_step``). Arithmetic:
`mmcoop.methods.functional.mmcosine_logits`.

Per batch inside the window: one forward; each modality's logits ``s * cos(h_m, W_m[c])`` from
its feature and its slice of the fusion head's weight (``concat``: its columns of
``fc.weight``; ``sum``: its own matrix), no bias; loss ``CE(sum_m s cos_m)``. Outside the window
(BalanceBenchmark's ``modulation_starts/ends``) plain ``CE(fused logits)``. Evaluation predicts
with the cosine sum (as BalanceBenchmark's ``validation_step``), and each modality's accuracy is
that of its own cosine logits.

Defaults: ``scaling = 10`` (official ``--scaling`` default and README; BalanceBenchmark 15),
window every epoch (official: always; BalanceBenchmark 0..80 of 30 epochs).

Deliberate differences:

* Evaluation: the official ``valid`` predicts with the model's plain linear output (with bias,
  unnormalised) although training only ever saw the cosine sum; we predict with the cosine sum,
  as BalanceBenchmark does (``predict_with: linear`` gives the official ``valid``).
* Heads: only the built-in linear heads (``concat``, ``sum``) split per modality; any other head
  is refused with a message (the method is defined on a linear head).
* Zero-padded features (modalities of different widths): the padding columns of a weight slice
  are left out of its norm.
* ``M > 2``: native (one cosine block per modality, summed; BalanceBenchmark's 3-modality branch).
* DDP: no cross-sample statistic; every rank computes its own batch's loss and DDP averages. The
  fusion head's bias is left out of the cosine loss (as official), so the method turns on DDP's
  unused-parameter detection (`MMCosine.skips_encoders`).
"""

from __future__ import annotations

from dataclasses import dataclass
from torch import Tensor, nn
from torch.nn import functional as F

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional.mmcosine import mmcosine_logits
from mmcoop.methods.peers._wiring import (
    check_number,
    check_window,
    feature_widths,
    in_window,
    linear_head_slices,
    require_modalities,
)

PREDICT_WITH = ("cosine", "linear")


@dataclass
class MMCosineOptions(MethodOptions):
    """Options of ``mmcosine``.

    Attributes:
        scaling: the scale ``s`` of the cosine logits (official 10; BalanceBenchmark 15), ``> 0``.
        modulation_starts: first epoch trained on the cosine logits (0-based; official 0).
        modulation_ends: last such epoch (inclusive); ``null`` = no end (official).
        predict_with: ``cosine`` (the cosine sum, BalanceBenchmark) or ``linear`` (the plain
            fusion head, the official ``valid``) at evaluation.
    """

    scaling: float = 10.0
    modulation_starts: int = 0
    modulation_ends: int | None = None
    predict_with: str = "cosine"

    def __post_init__(self) -> None:
        self.scaling = check_number("scaling", self.scaling, low=0.0, low_open=True)
        check_window(self.modulation_starts, self.modulation_ends)
        if self.predict_with not in PREDICT_WITH:
            raise ConfigError(
                f"method_options.predict_with={self.predict_with!r} is not valid; valid values: {', '.join(PREDICT_WITH)}"
            )


@METHODS.register("mmcosine")
class MMCosine(Method):
    """MMCosine (Xu et al., ICASSP 2023): cross-entropy on summed, scaled per-modality cosine logits.

    Official code: GeWu-Lab/MMCosine_ICASSP23 ``main_CD.py`` ``train_epoch``. Defaults, deliberate
    differences and ``M > 2`` (native): see the module docstring."""

    Options = MMCosineOptions
    options: MMCosineOptions

    def noop_reason(self, epochs: int) -> str | None:
        """A window after the run: the weights are trained exactly as ``joint`` (only evaluation differs)."""
        return window_noop(self.options.modulation_starts, epochs, "training on the cosine logits")

    def skips_encoders(self) -> bool:
        """The cosine logits leave the fusion head's bias out of the loss: under DDP the bias is an
        unused parameter, so PyTorch's unused-parameter detection is needed."""
        return True

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        if linear_head_slices(ctx.model) is None:
            raise ConfigError(
                "method 'mmcosine' splits the fusion head's weight per modality, so it needs a linear head: "
                "set model.fusion to concat or sum"
            )
        self.widths = feature_widths(ctx)

    def cosine_logits(self, model: nn.Module, feats: Tensor) -> Tensor:
        """Scaled cosine logits ``[M, B, C]`` of ``feats [B, M, D]`` against ``model``'s head."""
        sliced = linear_head_slices(model)
        assert sliced is not None  # checked in setup
        weight, per_modality = sliced
        w = per_modality(weight)  # [M, C, D]
        return mmcosine_logits(feats, w.to(feats.dtype), self.options.scaling, self.widths)

    def loss(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> Tensor:
        o = self.options
        if not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            return F.cross_entropy(logits.float(), batch["label"])
        return F.cross_entropy(self.cosine_logits(ctx.model, feats).sum(0).float(), batch["label"])

    def predict(self, model: nn.Module, feats: Tensor, batch: Batch) -> Tensor:
        if self.options.predict_with == "linear":
            return super().predict(model, feats, batch)
        return self.cosine_logits(model, feats).sum(0)

    def unimodal_logits(self, model: nn.Module, feats: Tensor) -> Tensor:
        if self.options.predict_with == "linear":
            return super().unimodal_logits(model, feats)
        return self.cosine_logits(model, feats).transpose(0, 1)
