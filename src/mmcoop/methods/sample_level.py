"""``sample-level``: the paper's sample-level modality valuation and re-sampling.

From epoch ``warmup`` on, every epoch: value the whole training split in eval mode
(per-sample Shapley contribution ``phi [N, M]``), then for each sample and modality k
add ``copies(phi[i, k])`` units of the sample keeping only k (bands in
`mmcoop.enhance.sample_copies`). Execution: see `mmcoop.methods.resampling`.

Paper: Wei, Feng, Wang, Hu, "Enhancing Multimodal Cooperation via Sample-level Modality
Valuation", CVPR 2024. Code: GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation
``code/sample_level.py`` (``--warmup``) and ``code/datasets/dataloader.py`` (the bands). Arithmetic:
`mmcoop.valuation.valuate_dataset` and `mmcoop.enhance.sample_level_plan`.

Deliberate differences:

* Valuation runs in eval mode with the eval transforms; the official code values with the
  training augmentation.
* The official band edge is 0.9 at the top (phi >= 0.9 -> 0 copies) where the paper says 1;
  with the paper's discrete values for M = 2 this changes nothing (``thresholds`` sets it).
* ``execution: weighted`` (units as weighted unimodal loss terms on the batch's one forward
  pass) is ours; ``duplicate`` is the official execution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from mmcoop.enhance.plans import DEFAULT_MAX_COPIES, DEFAULT_THRESHOLDS, check_thresholds
from mmcoop.enhance.resampler import SampleLevelResampler
from mmcoop.methods.base import METHODS, MethodContext
from mmcoop.methods.resampling import ResamplingMethod, ResamplingOptions


@dataclass
class SampleLevelOptions(ResamplingOptions):
    """Options of ``sample-level`` (plus `ResamplingOptions`).

    Attributes:
        thresholds: bands ``[lower bound, copies]``, highest first (official: phi >= 1 -> 0,
            (0.4, 1) -> 1, (-0.1, 0.4] -> 2; the official code's top edge is 0.9, which
            makes no difference for the paper's discrete values).
        max_copies: copies below the lowest bound (official: 3).
    """

    thresholds: tuple[tuple[float, int], ...] = DEFAULT_THRESHOLDS
    max_copies: int = DEFAULT_MAX_COPIES

    def __post_init__(self) -> None:
        super().__post_init__()
        self.thresholds = check_thresholds(self.thresholds, self.max_copies)
        self.max_copies = int(self.max_copies)


@METHODS.register("sample-level")
class SampleLevel(ResamplingMethod):
    """Sample-level re-sampling: per sample, extra unimodal units for low-contributing modalities."""

    Options = SampleLevelOptions
    #: the CVPR 2024 code's --warmup 5, every preset
    presets: ClassVar[dict[str, dict[str, Any]]] = {"*": {"warmup": 5}}
    options: SampleLevelOptions

    def noop_reason(self, epochs: int) -> str | None:
        """The warm-up (see `ResamplingMethod`), or bands that never add a copy."""
        o = self.options
        if o.max_copies == 0 and all(int(c) == 0 for _, c in o.thresholds):
            return "method_options.thresholds and max_copies=0 give 0 copies for every value: no unit is ever added"
        return super().noop_reason(epochs)

    def make_resampler(self, ctx: MethodContext, **common: Any) -> SampleLevelResampler:
        return SampleLevelResampler(self.options.thresholds, self.options.max_copies, **common)
