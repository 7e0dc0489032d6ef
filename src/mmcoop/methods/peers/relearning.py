"""``relearning``: Diagnosing & Re-learning, soft re-initialisation of over-fitted encoders.

Paper: Wei, Li, Hu, "Diagnosing and Re-learning for Balanced Multimodal Learning", ECCV 2024.
Official code: GeWu-Lab/Diagnosing_Relearning_ECCV2024 ``code/ours.py`` (``main``: the
re-init schedule, ``get_feature``, ``reinit_score``, ``purity_score``, ``reinit``; arguments
``--reinit_epoch 20 --reinit_num 3 --move_lambda 3``); BalanceBenchmark
``balancemm/trainer/ReLearning_trainer.py`` uses 15 / 2 / 3. The arithmetic is
`mmcoop.methods.functional.relearning` (`learning_state_purity`,
`relearning_strength`, `relearn_blend`; its docstring explains the seeded torch
k-means that replaces scikit-learn's).

Wiring. `Relearning.setup` saves every encoder's initial parameters (the official
``init_para.pkl``); they are part of `Relearning.state_dict`, so a resumed run blends
towards the same initial weights. The official loop trains epoch ``e`` (0-based), validates,
and then, if ``e > 0`` and ``e % reinit_epoch == 0`` and fewer than ``reinit_num``
re-initialisations happened, diagnoses and re-initialises. Here that happens at the start of
epoch ``e + 1`` (`Relearning.on_epoch_start`), i.e. after epoch ``e`` was validated and
checkpointed, exactly where the official code does it. Diagnosis: every modality's features
on the whole training split and on ``ctx.val_data`` (``ctx.inference``, eval mode) ->
k-means purity on each split -> strength ``w_m = tanh(move_lambda * |purity_train -
purity_val|)``; then every parameter of encoder ``m`` becomes ``w_m * theta_init + (1 - w_m) *
theta_now`` in place (the optimizer state is kept, as the official ``param.data = ...``).
BatchNorm running statistics are buffers, not parameters: not blended (as official).

Deliberate differences: k-means (see the functional module). ``diagnose_every_epoch`` adds
the learning-state estimates to every epoch's log (extra inference passes and k-means) for
monitoring; it never changes when re-initialisation happens. k-means draws come from
``ctx.generator`` (seed, epoch, modality), so every DDP rank and a resumed run agree; under
DDP the features of all ranks are gathered first.

``M >= 2``: native (one purity pair and one strength per modality, as the official two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mmcoop.data.base import MultimodalDataset
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, Method, MethodContext, MethodOptions
from mmcoop.methods.functional.relearning import learning_state_purity, relearn_blend, relearning_strength
from mmcoop.methods.peers._wiring import check_bool, check_int, check_number, encoder_groups, require_modalities
from mmcoop.utils.dist import all_gather_rows

SALT_KMEANS = 0x4E1  # generator salt of the k-means draws (plus 2 * modality + split)


@dataclass
class RelearningOptions(MethodOptions):
    """Options of ``relearning`` (defaults: the official ``ours.py`` arguments).

    Attributes:
        reinit_epoch: re-initialise after every ``reinit_epoch``-th epoch (official 20;
            BalanceBenchmark 15).
        reinit_num: at most this many re-initialisations (official 3; BalanceBenchmark 2).
        move_lambda: strength scale ``lambda`` in ``tanh(lambda * |purity gap|)`` (official 3).
        diagnose_every_epoch: also log the purities of every epoch (monitoring only).
    """

    reinit_epoch: int = 20
    reinit_num: int = 3
    move_lambda: float = 3.0
    diagnose_every_epoch: bool = False

    def __post_init__(self) -> None:
        self.reinit_epoch = check_int("reinit_epoch", self.reinit_epoch, 1)
        self.reinit_num = check_int("reinit_num", self.reinit_num, 0)
        self.move_lambda = check_number("move_lambda", self.move_lambda, 0.0)
        self.diagnose_every_epoch = check_bool("diagnose_every_epoch", self.diagnose_every_epoch)


@METHODS.register("relearning")
class Relearning(Method):
    """Diagnosing & Re-learning (ECCV 2024): encoders pulled back towards their initial weights."""

    Options = RelearningOptions
    options: RelearningOptions

    def __init__(self, options: RelearningOptions | None = None) -> None:
        super().__init__(options)
        self.initial: list[list[Tensor]] = []  # per modality: initial values of its encoder's parameters
        self.reinits = 0

    def noop_reason(self, epochs: int) -> str | None:
        """No re-initialisation in the run: ``reinit_num = 0``, or the first one (at the start of
        0-based epoch ``reinit_epoch + 1``, see `due`) falls after the last epoch."""
        o = self.options
        if o.reinit_num == 0:
            return "method_options.reinit_num=0: no encoder is ever re-initialised"
        if o.reinit_epoch + 1 >= epochs:
            return (
                f"method_options.reinit_epoch={o.reinit_epoch}: the first re-initialisation runs at the start of "
                f"(0-based) epoch {o.reinit_epoch + 1}, and train.epochs={epochs} ends before it"
            )
        return None

    def setup(self, ctx: MethodContext) -> None:
        require_modalities(ctx.model, self.name)
        self.initial = [[p.detach().clone() for p in ps] for ps in encoder_groups(ctx.model, self.name)]
        self.reinits = 0

    def due(self, epoch: int) -> bool:
        """Whether the re-initialisation after epoch ``epoch - 1`` (official schedule) runs now."""
        prev = epoch - 1
        o = self.options
        return prev > 0 and prev % o.reinit_epoch == 0 and self.reinits < o.reinit_num

    def on_epoch_start(self, ctx: MethodContext) -> None:
        due = self.due(ctx.epoch)
        if due or (self.options.diagnose_every_epoch and ctx.epoch > 0):
            purities = self.diagnose(ctx)
            names = ctx.model.modalities
            strengths = [relearning_strength(pt, pv, self.options.move_lambda) for pt, pv in purities]
            for name, (pt, pv), w in zip(names, purities, strengths):
                ctx.log[f"purity_train_{name}"] = pt
                ctx.log[f"purity_val_{name}"] = pv
                ctx.log[f"reinit_strength_{name}"] = w if due else 0.0
            if due:
                self.reinitialise(ctx, strengths)
        ctx.log["reinits"] = self.reinits

    @torch.no_grad()
    def reinitialise(self, ctx: MethodContext, strengths: list[float]) -> None:
        """Blend every encoder parameter towards its initial value by its modality's strength."""
        for ps, init, w in zip(encoder_groups(ctx.model, self.name), self.initial, strengths):
            for p, p0 in zip(ps, init):
                p.copy_(relearn_blend(p0.to(p.device, p.dtype), p, w))
        self.reinits += 1

    def diagnose(self, ctx: MethodContext) -> list[tuple[float, float]]:
        """``(purity_train, purity_val)`` per modality from k-means on the encoders' features."""
        if ctx.val_data is None:
            raise ConfigError("method 'relearning' diagnoses on a validation split; the run has none")
        c = ctx.train_data.num_classes
        widths = getattr(ctx.model, "feature_dims", None)
        splits = [self._features(ctx, data) for data in (ctx.train_data, ctx.val_data)]
        out = []
        for m in range(len(ctx.model.modalities)):
            w = widths[m] if widths and widths[m] is not None else None
            pair = []
            for s, (feats, labels) in enumerate(splits):
                x = feats[:, m] if w is None else feats[:, m, :w]
                pair.append(learning_state_purity(x, labels, c, generator=ctx.generator(SALT_KMEANS + 2 * m + s)))
            out.append((pair[0], pair[1]))
        return out

    @staticmethod
    def _features(ctx: MethodContext, data: MultimodalDataset) -> tuple[Tensor, Tensor]:
        """Features ``[N, M, D]`` (float, CPU) and labels ``[N]`` of ``data``, all ranks gathered."""
        feats, labels = [], []
        for batch, f in ctx.inference(data):
            feats.append(f.float())
            labels.append(batch["label"])
        return all_gather_rows(torch.cat(feats)).cpu(), all_gather_rows(torch.cat(labels)).cpu()

    def state_dict(self) -> dict[str, Any]:
        return {"initial": [[t.clone() for t in ts] for ts in self.initial], "reinits": self.reinits}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "initial" in state:
            self.initial = [[t.detach().clone() for t in ts] for ts in state["initial"]]
        self.reinits = int(state.get("reinits", 0))
