"""``mmcosine``: the training loss is cross-entropy on the summed scaled cosines of each modality's
slice of the fusion head (recomputed by hand), evaluation predicts with it, plain CE outside the window."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from mmcoop.errors import ConfigError
from mmcoop.methods import build_method

pytestmark = pytest.mark.usefixtures("one_thread")


def test_options_validated() -> None:
    o = build_method("mmcosine").options
    assert (o.scaling, o.modulation_starts, o.modulation_ends, o.predict_with) == (10.0, 0, None, "cosine")
    for bad in ({"scaling": 0}, {"modulation_starts": -1}, {"predict_with": "both"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            build_method("mmcosine", bad)


def _by_hand(model, feats, scale: float) -> torch.Tensor:
    """``[M, B, C]``: ``scale * cos(h_m, W[:, m-th block])`` with torch's cosine_similarity."""
    w = model.head.fc.weight.detach()
    d = feats.shape[-1]
    out = []
    for m in range(feats.shape[1]):
        wm = w[:, m * d : (m + 1) * d]  # [C, d]
        out.append(scale * F.cosine_similarity(feats[:, m].unsqueeze(1), wm.unsqueeze(0), dim=-1))
    return torch.stack(out)


@pytest.mark.parametrize("m", [2, 3])
def test_loss_predict_and_window(peer_trainer, batch_of, m: int) -> None:
    trainer = peer_trainer("mmcosine", {"scaling": 15.0, "modulation_starts": 1}, num_modalities=m)
    method, ctx, model = trainer.method, trainer.ctx, trainer.model
    batch = batch_of(trainer)
    y = batch["label"]
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    want = _by_hand(model, feats.detach(), 15.0)
    ctx.epoch = 1
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), F.cross_entropy(want.sum(0), y))
    torch.testing.assert_close(method.predict(model, feats, batch), want.sum(0))
    torch.testing.assert_close(method.unimodal_logits(model, feats), want.transpose(0, 1))
    assert not torch.allclose(want.sum(0), logits)  # not the plain head
    ctx.epoch = 0  # before the window: plain cross-entropy on the fused logits
    torch.testing.assert_close(method.loss(ctx, batch, feats, logits), F.cross_entropy(logits, y))


def test_other_heads_are_refused(tmp_path) -> None:
    from mmcoop.experiment import RunConfig, run_experiment

    cfg = RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"sizes": [48, 24, 24]},
            "method": "mmcosine",
            "model": {"dim": 8, "fusion": "gated"},
            "train": {"epochs": 1, "batch_size": 16, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
        }
    )
    with pytest.raises(ConfigError, match="model.fusion to concat or sum"):
        run_experiment(cfg)
