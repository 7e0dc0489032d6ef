"""Lightning callbacks: a tiny LightningModule trains 3 epochs on CPU with valuation and re-sampling;
the callback's plans equal mmcoop's own for the same weights."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

pl = pytest.importorskip("pytorch_lightning")  # the [lightning] extra; part of the dev extra CI installs

from mmcoop.data.base import MultimodalDataset  # noqa: E402
from mmcoop.data.dict_source import DictDatasetSource  # noqa: E402
from mmcoop.errors import ConfigError  # noqa: E402
from mmcoop.integrations.lightning import (  # noqa: E402
    ModalityLevelResampling,
    ModalityValuation,
    SampleLevelResampling,
    contract_model,
    resampling_loss,
)
from mmcoop.methods import MethodContext, build_method  # noqa: E402

from _lightning import Head, Items  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")


class Tiny(pl.LightningModule):
    """Encoders + a head, no mmcoop contract written by hand."""

    def __init__(self, train: Dataset, val: Dataset) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({"a": nn.Linear(3, 8), "b": nn.Linear(5, 8)})
        self.head = Head()
        self.train_set, self.val_set = train, val
        self.seen_keep = self.seen_copies = 0
        self.batches_per_epoch: list[int] = []
        self._count = 0

    def training_step(self, batch, batch_idx):
        net = contract_model(self)
        keep = batch.get("keep")
        self.seen_keep += int(keep is not None and not bool(keep.all()))
        self.seen_copies += int("copies" in batch)
        self._count += 1
        feats = net.encode(batch["inputs"], keep)
        return resampling_loss(net, feats, net.fuse(feats, keep), batch, log=self)

    def on_train_epoch_end(self):
        self.batches_per_epoch.append(self._count)
        self._count = 0

    def validation_step(self, batch, batch_idx):
        net = contract_model(self)
        self.log("val_acc", (net.fuse(net.encode(batch["inputs"])).argmax(-1) == batch["label"]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=16, shuffle=True)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=32)


class Weights(pl.Callback):
    """The weights each plan is built from (put before the re-sampling callback: same moment)."""

    def __init__(self) -> None:
        self.states: dict[int, dict] = {}

    def on_fit_start(self, trainer, pl_module):
        self.states[trainer.current_epoch] = copy.deepcopy(pl_module.state_dict())

    def on_train_epoch_end(self, trainer, pl_module):
        self.states[trainer.current_epoch + 1] = copy.deepcopy(pl_module.state_dict())


def fit(module, callbacks, tmp_path: Path, epochs: int = 3):
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=callbacks,
        num_sanity_val_steps=0,
    )
    trainer.fit(module)
    return trainer


def test_three_epochs_with_valuation_and_resampling(tmp_path: Path) -> None:
    torch.manual_seed(0)
    train, val = Items(96), Items(48, seed=1)
    module = Tiny(train, val)
    weights, resampling = Weights(), SampleLevelResampling(warmup=1)
    valuation = ModalityValuation(split="val", dirpath=tmp_path / "valuation")
    trainer = fit(module, [weights, resampling, valuation], tmp_path)
    # re-sampling: epoch 0 warm-up on the originals, then originals + units with keep-masks
    assert resampling.plans[0] is None and len(resampling.plans[1]) > 0 and len(resampling.plans[2]) > 0
    assert module.batches_per_epoch[0] == 6  # 96 / 16
    for e in (1, 2):
        assert module.batches_per_epoch[e] == -(-(96 + len(resampling.plans[e])) // 16)
    assert module.seen_keep > 0 and module.seen_copies == 0
    # valuation: logged through the module's logger machinery, parquet per epoch
    for key in (
        "contribution_val/a",
        "contribution_val/b",
        "acc_alone_val/a",
        "time/valuation_val_s",
        "contribution/a",
        "copies/b",
        "time/valuation_s",
    ):  # val valuation; train (re-sampling)
        assert key in trainer.callback_metrics, key
    assert float(trainer.callback_metrics["contribution_val/a"]) == pytest.approx(
        valuation.tables[3].mean_contribution()["a"], rel=1e-6
    )
    assert float(trainer.callback_metrics["contribution/a"]) == pytest.approx(
        resampling.resampler.last_table.mean_contribution()["a"], rel=1e-6
    )
    files = sorted(p.name for p in (tmp_path / "valuation").glob("*.parquet"))
    assert files == ["val_epoch_001.parquet", "val_epoch_002.parquet", "val_epoch_003.parquet"]
    assert len(pd.read_parquet(tmp_path / "valuation" / files[-1])) == 48
    # the callback's plans equal mmcoop's own (the sample-level method) for the same weights
    data = MultimodalDataset.from_source(DictDatasetSource(train))
    for epoch in (1, 2):
        net = Tiny(train, val)
        net.load_state_dict(weights.states[epoch])
        method = build_method("sample-level", {"warmup": 1})
        ctx = MethodContext(model=contract_model(net), train_data=data, device=torch.device("cpu"), epoch=epoch)
        method.setup(ctx)
        method.on_epoch_start(ctx)
        assert torch.equal(method.plan.rows, resampling.plans[epoch].rows)
        assert torch.equal(method.plan.keep, resampling.plans[epoch].keep)


def test_weighted_execution_through_the_loss_hook(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = Tiny(Items(64), Items(32, seed=1))
    resampling = ModalityLevelResampling(execution="weighted", warmup=0, alpha=3.0, seed=3)
    trainer = fit(module, [resampling], tmp_path, epochs=2)
    assert len(resampling.plans[0]) > 0
    assert module.batches_per_epoch == [4, 4]  # the originals only
    assert module.seen_copies == 8 and module.seen_keep == 0
    # the total holds the units' terms; the fused CE beside it is the curve of plain training
    total, fused = (float(trainer.callback_metrics[k]) for k in ("loss/total", "loss/fused_ce"))
    assert total > fused > 0


def test_weighted_warmup_batches_carry_zero_copies(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = Tiny(Items(32), Items(16, seed=1))
    resampling = SampleLevelResampling(execution="weighted", warmup=5)  # no epoch re-samples
    trainer = fit(module, [resampling], tmp_path, epochs=1)
    assert resampling.plans[0] is None and module.seen_copies == 2  # copies (zeros) in every batch
    assert float(trainer.callback_metrics["loss/total"]) == pytest.approx(
        float(trainer.callback_metrics["loss/fused_ce"])
    )


def test_module_without_a_model_gets_one_clear_message() -> None:
    with pytest.raises(ConfigError, match="self.encoders"):
        contract_model(nn.Linear(2, 2))
    module = Tiny(Items(8), Items(8))
    net = contract_model(module)
    assert net.modalities == ["a", "b"] and contract_model(module) is net
    assert {id(p) for p in net.parameters()} == {id(p) for p in module.parameters()}  # shared, not copied
