"""Baselines: ``joint`` (cross-entropy on fused logits) and ``unimodal`` (one modality alone)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmcoop.data.base import MultimodalDataset
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions


@METHODS.register("joint")
class Joint(Method):
    """Joint training: all modalities fused, one cross-entropy (the paper's baseline)."""


@dataclass
class UnimodalOptions(MethodOptions):
    """Options of ``unimodal``.

    Attributes:
        modality: the modality trained alone (empty: the first one).
    """

    modality: str = ""  # empty = the first modality


@METHODS.register("unimodal")
class Unimodal(Method):
    """Train with one modality only (others removed by the keep-mask): a unimodal reference."""

    Options = UnimodalOptions
    all_needs_option = "modality"
    options: UnimodalOptions

    def skips_encoders(self) -> bool:
        """The other modalities' encoders never run."""
        return True

    def setup(self, ctx: MethodContext) -> None:
        mods = list(ctx.model.modalities)
        want = self.options.modality or mods[0]
        if want not in mods:
            raise ConfigError(
                f"method_options.modality={want!r} is not a modality of this dataset; valid: {', '.join(mods)}"
            )
        self.k = mods.index(want)

    def train_set(self, ctx: MethodContext) -> MultimodalDataset:
        keep = torch.zeros(len(ctx.train_data), ctx.train_data.num_modalities, dtype=torch.bool)
        keep[:, self.k] = True  # other encoders are never run
        return ctx.train_data.view(ctx.train_data.rows, keep)
