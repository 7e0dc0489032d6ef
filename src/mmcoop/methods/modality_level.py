"""``modality-level``: the paper's cheaper variant, valuing only a random subset Z.

From epoch ``warmup`` on, every epoch: draw Z (``part_ratio`` of the training samples,
seeded by run seed and epoch), value only Z, take the mean contribution per modality,
and copy ``round(p * N)`` distinct training samples once keeping only the modality with
the larger gap ``1 - mean phi`` (ratio ``p`` in `mmcoop.enhance.modality_level_ratio`;
M > 2: every modality whose gap exceeds the smallest one gets its own ratio).

Paper: Wei, Feng, Wang, Hu, "Enhancing Multimodal Cooperation via Sample-level Modality
Valuation", CVPR 2024. Code: GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation
``code/modality_level.py`` (``--part_ratio``, ``--alpha``, ``--func``). Arithmetic:
`mmcoop.enhance.modality_level_ratio` and `mmcoop.enhance.modality_level_plan`.

Deliberate differences:

* Valuation of Z in eval mode with the eval transforms (the official code values with the
  training augmentation).
* ``M > 2`` (one ratio per modality whose gap exceeds the smallest) extends the paper's
  two-modality rule; the official ``square`` function is ``pow1.5`` here (its arithmetic).
* ``round(p * N)`` distinct samples drawn with a seeded generator; the official code draws
  ``int(p * N)`` with replacement (``np.random.choice``).
* ``execution: weighted`` is ours; ``duplicate`` is the official execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mmcoop.enhance.plans import RATIO_FUNCS
from mmcoop.enhance.resampler import SALT_DRAW, SALT_SUBSET, ModalityLevelResampler
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, MethodContext
from mmcoop.methods.resampling import ResamplingMethod, ResamplingOptions, check_choice

__all__ = ["ModalityLevel", "ModalityLevelOptions", "SALT_DRAW", "SALT_SUBSET"]


@dataclass
class ModalityLevelOptions(ResamplingOptions):
    """Options of ``modality-level`` (plus `ResamplingOptions`).

    Attributes:
        part_ratio: fraction of training samples in the valued subset Z (official 0.2).
        alpha: scale of the re-sampling ratio (official 1.0).
        func: ``linear`` | ``tanh`` | ``pow1.5`` (official ``linear``; its ``square`` is ``pow1.5``).
    """

    part_ratio: float = 0.2
    alpha: float = 1.0
    func: str = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("func", self.func, RATIO_FUNCS)
        if not 0.0 < float(self.part_ratio) <= 1.0:
            raise ConfigError(f"method_options.part_ratio must be in (0, 1]; got {self.part_ratio!r}")
        if float(self.alpha) < 0.0:
            raise ConfigError(f"method_options.alpha must be >= 0; got {self.alpha!r}")
        self.part_ratio, self.alpha = float(self.part_ratio), float(self.alpha)


@METHODS.register("modality-level")
class ModalityLevel(ResamplingMethod):
    """Modality-level re-sampling: one global ratio from the subset Z, the weaker modality kept."""

    Options = ModalityLevelOptions
    #: the CVPR 2024 code's --warmup 5 --part_ratio 0.2 --alpha 1, linear ratio, every preset
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "*": {"warmup": 5, "part_ratio": 0.2, "alpha": 1.0, "func": "linear"},
    }
    options: ModalityLevelOptions

    def noop_reason(self, epochs: int) -> str | None:
        """The warm-up (see `ResamplingMethod`), or ``alpha = 0`` (ratio 0: no sample copied)."""
        if self.options.alpha == 0.0:
            return "method_options.alpha=0 makes the re-sampling ratio 0: no sample is ever copied"
        return super().noop_reason(epochs)

    def make_resampler(self, ctx: MethodContext, **common: Any) -> ModalityLevelResampler:
        o = self.options
        return ModalityLevelResampler(o.part_ratio, o.alpha, o.func, **common)
