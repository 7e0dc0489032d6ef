"""Issue 26.4: FLOPs per sample of a training step and of inference, against a hand count.

The model is a user late-fusion MLP (``from_modules``): per modality ``Linear(d, 8) → ReLU →
Linear(8, 6)``, head ``Linear(12, C)`` on the concatenated features. PyTorch's
FlopCounterMode counts 2 FLOPs per multiply-add of every matrix product:

- inference per sample: ``Σ_m 2(8d + 8·6) + 2·12·C``;
- a training step per sample adds the backward pass: each layer's weight gradient (same
  count as its forward) and its input gradient, except the first encoder layer's (the
  inputs need no gradient): ``Σ_m (32d + 288) + 72C``;
- sample-level re-sampling's valuation pass: one encoder pass over the training set and
  the head on all ``2^M = 4`` coalitions, then Shapley values as one product of the coalition
  values ``[N, 4]`` with the weights ``[4, M]``: ``N (Σ_m 2(8d + 48) + 4·2·12·C + 2·4·M)``; once a plan is
  executed with ``weighted`` units, each step also fuses each modality alone for the units'
  losses: ``M`` more head calls per sample, forward and both gradients: ``M · 3 · 2·12·C``.
"""

from __future__ import annotations

import pytest

from _online import plain_model
from _runs import tiny_cfg
from mmcoop.data.base import DatasetSplits
from mmcoop.experiment import load_splits
from mmcoop.methods import build_method
from mmcoop.train import TrainConfig, Trainer
from mmcoop.train.flops import parameter_count

pytestmark = pytest.mark.usefixtures("one_thread")


def _trainer(tmp_path, method, options):
    splits = load_splits(tiny_cfg(tmp_path))
    model = plain_model(splits.train)
    config = TrainConfig(epochs=2, batch_size=16, eval_batch_size=16, progress=False, device="cpu", count_flops=True)
    return Trainer(
        model, build_method(method, options), DatasetSplits("t", splits.train, splits.val, splits.test), config
    ), splits


@pytest.mark.parametrize("method,options", [("joint", {}), ("sample-level", {"warmup": 1, "execution": "weighted"})])
def test_flops_per_sample_equal_a_hand_count(tmp_path, method, options):
    trainer, splits = _trainer(tmp_path, method, options)
    dims = [s.shape[0] for s in splits.train.specs]
    c = splits.num_classes
    infer = sum(2 * (8 * d + 48) for d in dims) + 2 * 12 * c
    step = sum(32 * d + 288 for d in dims) + 72 * c
    records = []
    trainer.fit(lambda r, t: records.append(r))
    n = len(splits.train)
    weighted = [False, method == "sample-level"]  # the plan (and its weighted loss) starts after the warm-up
    for r, w in zip(records, weighted):
        assert r["step_flops_per_unit"] == step + (len(dims) * 3 * 2 * 12 * c if w else 0)
        assert r["val_flops_per_sample"] == infer
    valuation = n * (sum(2 * (8 * d + 48) for d in dims) + 4 * 2 * 12 * c + 2 * 4 * len(dims))
    hooks = [r["train_flops"] - r["step_flops_per_unit"] * r["train_units"] for r in records]
    if method == "joint":
        assert hooks == [0, 0]
    else:  # warm-up epoch 1 trains like joint; epoch 2 values the training set first
        assert hooks == [0, valuation]
    assert records[-1]["train_flops_total"] == sum(r["train_flops"] for r in records)
    assert (
        records[0]["parameters"]
        == parameter_count(trainer.model)
        == sum(d * 8 + 8 + 8 * 6 + 6 for d in dims) + 12 * c + c
    )
