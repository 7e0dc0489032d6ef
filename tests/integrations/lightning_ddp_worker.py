"""Worker of ``test_lightning_ddp.py``: the guide's LightningModule under ``Trainer(devices=2,
strategy="ddp", accelerator="cpu")`` (Lightning starts the second process itself), 3 epochs with
``ModalityValuation()`` (default ``dirpath``) and ``SampleLevelResampling(warmup=1)``.

Usage: ``python lightning_ddp_worker.py OUT``: one fit per execution (``duplicate``, then ``weighted``,
the same two processes), each in ``OUT/<execution>``, where each rank writes ``rank<r>.json`` (its
batches per epoch, the plans' sizes, what its steps saw).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from mmcoop.integrations.lightning import ModalityValuation, SampleLevelResampling, contract_model, resampling_loss

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared data and head
from _lightning import Head, Items  # noqa: E402


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.encoders = nn.ModuleDict({"a": nn.Linear(3, 8), "b": nn.Linear(5, 8)})
        self.head = Head()
        self.batches: list[int] = []
        self.units: list[int] = []  # weighted: the copies the epoch's batches carried
        self.dropped = self.with_copies = self._count = self._units = 0

    def training_step(self, batch, batch_idx):
        net = contract_model(self)
        keep = batch.get("keep")
        self.dropped += int(keep is not None and not bool(keep.all()))
        self.with_copies += int("copies" in batch)
        self._units += int(batch["copies"].sum()) if "copies" in batch else 0
        self._count += 1
        feats = net.encode(batch["inputs"], keep)
        return resampling_loss(net, feats, net.fuse(feats, keep), batch, log=self)

    def on_train_epoch_end(self) -> None:
        self.batches.append(self._count)
        self.units.append(self._units)
        self._count = self._units = 0

    def validation_step(self, batch, batch_idx):
        net = contract_model(self)
        acc = (net.fuse(net.encode(batch["inputs"])).argmax(-1) == batch["label"]).float().mean()
        self.log("val_acc", acc, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(Items(64, seed=0), batch_size=4, shuffle=True)

    def val_dataloader(self):
        return DataLoader(Items(24, seed=1), batch_size=8)


def fit(out: Path, execution: str) -> None:
    torch.manual_seed(0)
    resampling = SampleLevelResampling(warmup=1, execution=execution)
    valuation = ModalityValuation()
    module = Net()
    trainer = pl.Trainer(
        devices=2,
        strategy="ddp",
        accelerator="cpu",
        max_epochs=3,
        default_root_dir=str(out),
        callbacks=[resampling, valuation],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module)
    record = {
        "batches": module.batches,
        "dropped": module.dropped,
        "with_copies": module.with_copies,
        "units": module.units,
        "logged": sorted(k for k in trainer.callback_metrics if k.startswith("loss/")),
        "plans": {str(e): None if p is None else len(p) for e, p in resampling.plans.items()},
        "log_dir": trainer.log_dir,
        "tables": sorted(valuation.tables),
    }
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    torch.set_num_threads(1)
    for execution in ("duplicate", "weighted"):
        fit(Path(sys.argv[1]) / execution, execution)
