"""``amss`` and ``amss-plus``: adaptive masking of sub-networks by importance sampling (TPAMI 2025).

Paper: Yang et al., "Learning to Rebalance Multi-Modal Optimization by Adaptively Masking
Subnetworks", IEEE TPAMI 2025. Code read: njustkmg/TPAMI-AMSS at 3161ecc
(``AMSS/train_test.py``: ``modal_caculate_MI``, ``calculate_outputs``, the masking loop in
``train_epoch``; README commands). BalanceBenchmark (4c1482f) has no AMSS trainer.
Arithmetic: `mmcoop.methods.functional.amss`.

Per batch, as the official ``train_epoch``: one forward, ``loss = CE(fused)``, backward; each
modality's logits ``o_m`` (the fusion head's slice with the bias share,
`modality_logits`: exactly the official ``concat``
``calculate_outputs``), its score ``-CE(o_m, y)``, its feature entropy, the label term and the
keep ratios ``coeff_m``; then for every weight of encoder ``m`` a mask over its output units
drawn by importance sampling (``ceil(N coeff_m)`` units with probabilities proportional to
their squared gradient norms, without replacement), multiplied into the gradient -- AMSS+
(``amss-plus``, ``unbiased: true``) rescales each kept unit by ``1 / (q_i + 1 / N)``; then the
optimizer step.

Defaults (parser and README): ``temperature = 0.2``, ``gn_mode = gn``, ``sample_mode =
Adaptive`` (the only mode offered), ``unbiased`` false for ``amss``, true for ``amss-plus``.

Deliberate differences:

* Which weights: the official code masks the 4-D convolution weights of the ResNet layers
  (``'layer' in name and 'conv' in name``; not the stem ``conv1``). With vector / sequence
  encoders that filter would mask nothing, so ``params: all`` (default) masks every weight of
  rank >= 2 of the encoder over its output units (dim 0: filters, neurons); ``params: conv``
  keeps only 4-D weights. Biases and norms are never masked (as there).
* The fusion head: the official loop also draws a mask for ``fc_out.weight``
  (``mask_ffn``) but never multiplies it into the gradient; here, too, the head is not masked.
* ``M > 2``: ``coeff_m = M / (2 (M - 1)) (1 - softmax(t)_m)`` (exactly the official
  coefficients for ``M = 2``), see the functional core.
* Randomness: the draws use a generator seeded by (seed, optimizer step), the same on every
  rank and after a resume (the official code uses the global RNG).
* DDP: scores and entropies are averaged over ranks, label counts summed, and the gradients
  are already averaged, so every rank draws and applies the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.functional._common import stacked_cross_entropy
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.amss import (
    amss_coefficients,
    amss_feature_entropy,
    amss_label_term,
    amss_mask,
    amss_unit_importance,
)
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_bool,
    check_number,
    encoder_groups,
    feature_widths,
    mean_over_ranks,
    modality_logits,
    require_modalities,
    step_generator,
    sum_over_ranks,
)

SALT_MASK = 0xA55
PARAM_SCOPES = ("all", "conv")


@dataclass
class AMSSOptions(MethodOptions):
    """Options of ``amss`` / ``amss-plus``.

    Attributes:
        temperature: ``T`` of the keep-ratio softmax (official 0.2), ``> 0``.
        unbiased: AMSS+ rescaling ``1 / (q_i + 1 / N)`` of the kept units (``amss-plus``: true).
        params: ``all`` weights of rank >= 2 (default) or ``conv`` (4-D only, official).
    """

    temperature: float = 0.2
    unbiased: bool = False
    params: str = "all"

    def __post_init__(self) -> None:
        self.temperature = check_number("temperature", self.temperature, low=0.0, low_open=True)
        check_bool("unbiased", self.unbiased)
        if self.params not in PARAM_SCOPES:
            raise ConfigError(
                f"method_options.params={self.params!r} is not valid; valid values: {', '.join(PARAM_SCOPES)}"
            )


@METHODS.register("amss")
class AMSS(Method):
    """AMSS (TPAMI 2025): mask each encoder's gradient over units drawn by importance, keeping a share set by its score.

    Official code: njustkmg/TPAMI-AMSS at 3161ecc ``AMSS/train_test.py``. Defaults, deliberate
    differences and ``M > 2``: see the module docstring. Logs per epoch ``keep_<modality>`` (mean
    keep ratio ``coeff_m``)."""

    Options = AMSSOptions
    options: AMSSOptions

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        self.modalities = list(ctx.model.modalities)
        self.groups = encoder_groups(ctx.model, self.name)
        self.widths = feature_widths(ctx)
        self.num_classes = int(ctx.train_data.num_classes)
        self.stats = EpochMeans()
        #: keep ratios ``[M]`` of the last step (tests and diagnostics)
        self.last_coeffs: Tensor | None = None

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def coefficients(self, ctx: MethodContext, batch: Batch, feats: Tensor) -> Tensor:
        """Keep ratios ``[M]`` of this batch (statistics of the whole distributed batch)."""
        labels = batch["label"]
        with torch.no_grad():
            uni = modality_logits(ctx.model, feats.detach().float())  # [M, B, C]
            m = uni.shape[0]
            ce = stacked_cross_entropy(uni, labels)
            ent = torch.stack([amss_feature_entropy(feats[:, k, :w]) for k, w in enumerate(self.widths)])
            means = mean_over_ranks(torch.cat([-ce.double(), ent.to(ce.device)]))
            counts = sum_over_ranks(torch.bincount(labels.long(), minlength=self.num_classes).double())
        return amss_coefficients(
            means[:m].cpu(), amss_label_term(counts.cpu()), means[m:].cpu(), self.options.temperature
        )

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        coeffs = self.coefficients(ctx, batch, feats)
        gen = step_generator(ctx, SALT_MASK)
        for m, params in enumerate(self.groups):
            keep = float(coeffs[m])
            for p in params:
                g = p.grad
                if g is None or g.dim() < 2 or (self.options.params == "conv" and g.dim() != 4):
                    continue
                mask = amss_mask(amss_unit_importance(g), keep, gen, self.options.unbiased)
                g.mul_(mask.to(device=g.device, dtype=g.dtype).view(-1, *([1] * (g.dim() - 1))))
        self.last_coeffs = coeffs
        self.stats.add_per_modality("keep", self.modalities, coeffs)

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)


@dataclass
class AMSSPlusOptions(AMSSOptions):
    """Options of ``amss-plus``: those of ``amss`` with ``unbiased`` true."""

    unbiased: bool = True


@METHODS.register("amss-plus")
class AMSSPlus(AMSS):
    """AMSS+ (TPAMI 2025): AMSS with the kept units rescaled by ``1 / (q_i + 1 / N)`` (official ``isbias=1``).

    See `AMSS` and the module docstring of `mmcoop.methods.peers.amss`."""

    Options = AMSSPlusOptions
