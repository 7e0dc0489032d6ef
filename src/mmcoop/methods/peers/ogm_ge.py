"""``ogm-ge``: on-the-fly gradient modulation with generalisation enhancement.

Paper: Peng, Wei, Deng, Wang, Hu, "Balanced Multimodal Learning via On-the-fly Gradient
Modulation", CVPR 2022 (Eq. 8-10). Code: GeWu-Lab/OGM-GE_CVPR2022 ``main.py`` ``train_epoch``
(also the OGM of GeWu-Lab/BML_TPAMI2024 ``code/main.py`` ``train``). Arithmetic:
`mmcoop.methods.functional.ogm_ge_coefficients` and `ogm_ge_modulate`.

Per batch, as the official code: one forward, ``loss = CE(fused)``, backward; the scores
``s_m`` (batch sum of true-class probabilities of each modality's own logits, with the
official bias share: `modality_logits`) give coefficients
``k_m``; inside the modulation window each encoder's gradients become
``g * k_m + N(0, std(g) + 1e-8)``; then the optimizer step.

Defaults (CVPR ``main.py`` / README): ``alpha = 0.8`` (README, CREMA-D; the CVPR script
requires it, the TPAMI script defaults to 1.0), ``modulation_starts = 0``,
``modulation_ends = 50`` (0-based epochs, inclusive), GE noise on.

Deliberate differences:

* Which parameters: the official code modulates only 4-D gradients (conv weights) because
  its encoders are ResNet-18s, where those are nearly all the parameters. With vector /
  sequence encoders (mfeat, MLPs, LSTMs) that filter would modulate nothing, so the default
  ``params: all`` modulates every parameter of the encoder; ``params: conv`` is the
  official filter.
* Bias share (as the official ``train_epoch``, which is what trains; its ``valid`` differs):
  ``concat`` fusion adds ``b / 2`` to each modality's half of the layer (``b / M`` for ``M``
  modalities); ``sum`` fusion adds each modality's own full bias ``b_m`` (``fc_x.bias``,
  ``fc_y.bias``; only the official ``valid`` halves it); other heads get
  ``f({m}) - (1 - 1/M) f({})``. See `modality_logits`.
* ``M > 2``: one-vs-others ratios averaged pairwise (the maintainers' suggestion,
  GeWu-Lab/OGM-GE_CVPR2022 issue #16), see `one_vs_others_ratio`;
  ``eps = 1e-5`` guards a zero score (a tie then modulates no one; the CVPR code modulates
  audio on a tie).
* DDP: scores are summed over ranks (the whole distributed batch) and the GE noise is drawn
  from a generator seeded by (seed, step), so every rank applies the same update; gradients
  are already averaged when `OGMGE.after_backward` runs.
* The noise uses its own generator (seeded per step: exact resume), not the global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from mmcoop.data.base import Batch
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions, window_noop
from mmcoop.methods.functional._common import one_vs_others_ratio, true_class_scores
from mmcoop.methods.functional.ogm_ge import ogm_ge_coefficients, ogm_ge_modulate
from mmcoop.methods.peers._wiring import (
    EpochMeans,
    check_bool,
    check_number,
    check_window,
    encoder_groups,
    in_window,
    modality_logits,
    step_generator,
    sum_over_ranks,
)

SALT_NOISE = 0x06E  # generator salt of the GE noise
PARAM_SCOPES = ("all", "conv")


@dataclass
class OGMGEOptions(MethodOptions):
    """Options of ``ogm-ge``.

    Attributes:
        alpha: modulation strength (official 0.8 for CREMA-D, 0.1 for VGGSound), ``>= 0``.
        modulation_starts: first modulated epoch (0-based, official 0).
        modulation_ends: last modulated epoch (inclusive, official 50); ``null`` = no end.
        noise: add the GE noise (``false`` = plain OGM).
        offset: ``0`` = official ``1 - tanh(alpha * rho)``; ``1`` = continuous ``1 - tanh(alpha (rho - 1))``.
        params: ``all`` encoder parameters (default) or ``conv`` (4-D weights only, official).
    """

    alpha: float = 0.8
    modulation_starts: int = 0
    modulation_ends: int | None = 50
    noise: bool = True
    offset: float = 0.0
    params: str = "all"

    def __post_init__(self) -> None:
        self.alpha = check_number("alpha", self.alpha, low=0.0)
        self.offset = check_number("offset", self.offset, low=0.0, high=1.0)
        check_window(self.modulation_starts, self.modulation_ends)
        check_bool("noise", self.noise)
        if self.params not in PARAM_SCOPES:
            raise ConfigError(
                f"method_options.params={self.params!r} is not valid; valid values: {', '.join(PARAM_SCOPES)}"
            )


@METHODS.register("ogm-ge")
class OGMGE(Method):
    """OGM-GE (Peng et al., CVPR 2022): damp the dominant encoder's gradients by ``k_m = 1 - tanh(alpha rho_m)``.

    Official code: GeWu-Lab/OGM-GE_CVPR2022 ``main.py`` ``train_epoch``. Defaults, deliberate
    differences and ``M > 2`` (pairwise one-vs-others ratios): see the module docstring. Logs per epoch
    ``coeff_<modality>`` (mean applied coefficient, 1 outside the window) and ``ratio_<modality>`` (mean
    discrepancy ratio, inside the window)."""

    Options = OGMGEOptions
    options: OGMGEOptions
    #: README: alpha 0.8 on CREMA-D, 0.1 on VGGSound; ``main.py`` modulates epochs 0-50.
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "cremad": {"alpha": 0.8, "modulation_starts": 0, "modulation_ends": 50},
        "vggsound": {"alpha": 0.1, "modulation_starts": 0, "modulation_ends": 50},
    }

    def noop_reason(self, epochs: int) -> str | None:
        """A window after the run, or ``alpha = 0`` without GE noise (every coefficient 1)."""
        o = self.options
        if o.alpha == 0.0 and not o.noise:
            return "method_options.alpha=0 with noise=false leaves every gradient unchanged (coefficients 1)"
        return window_noop(o.modulation_starts, epochs)

    def setup(self, ctx: MethodContext) -> None:
        self.modalities = list(ctx.model.modalities)
        self.groups = encoder_groups(ctx.model, self.name)
        self.stats = EpochMeans()
        #: coefficients ``[M]`` applied at the last step (tests and diagnostics)
        self.last_coeffs: Tensor | None = None

    def on_epoch_start(self, ctx: MethodContext) -> None:
        self.stats.reset()

    def scores(self, ctx: MethodContext, batch: Batch, feats: Tensor) -> Tensor:
        """Scores ``s_m`` ``[M]`` of this batch (summed over the whole distributed batch)."""
        with torch.no_grad():
            uni = modality_logits(ctx.model, feats.detach().float())  # [M, B, C]
            return sum_over_ranks(true_class_scores(uni, batch["label"]))

    def after_backward(self, ctx: MethodContext, batch: Batch, feats: Tensor, logits: Tensor) -> None:
        o = self.options
        if not in_window(ctx.epoch, o.modulation_starts, o.modulation_ends):
            self.stats.add_per_modality("coeff", self.modalities, torch.ones(len(self.modalities)))
            return
        scores = self.scores(ctx, batch, feats)
        coeffs = ogm_ge_coefficients(scores, o.alpha, o.offset)
        gen = None
        for m, params in enumerate(self.groups):
            k = float(coeffs[m])
            for p in params:
                if p.grad is None or (o.params == "conv" and p.grad.dim() != 4):
                    continue
                if gen is None and o.noise:
                    gen = step_generator(ctx, SALT_NOISE, p.grad.device)
                p.grad = ogm_ge_modulate(p.grad, k, noise=o.noise, generator=gen)
        self.last_coeffs = coeffs
        self.stats.add_per_modality("coeff", self.modalities, coeffs)
        self.stats.add_per_modality("ratio", self.modalities, one_vs_others_ratio(scores))

    def on_epoch_end(self, ctx: MethodContext) -> None:
        self.stats.write(ctx.log)
