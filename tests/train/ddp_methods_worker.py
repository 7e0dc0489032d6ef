"""Run by tests/train/test_ddp_methods.py under torchrun: every method (and execution) on mfeat
(M = 6) for 2 epochs in one process group, then a sharded valuation of each trained model."""

import sys
from pathlib import Path

import torch

from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.methods import METHODS
from mmcoop.train.distributed import init_from_env, is_main, shutdown
from mmcoop.valuation import valuate_dataset

out = Path(sys.argv[1])
specs = [s.split(":") for s in sys.argv[2].split(",")]
init_from_env()
for spec in specs:
    name, variant = spec[0], (spec[1] if len(spec) > 1 else "")
    opts = {"execution": variant} if variant else {}
    opts["allow_noop"] = True  # 2 epochs: the default windows of opm and relearning open later
    if name == "greedy":
        opts["starting_epoch"] = 0  # curation steps leave the non-caring encoder unused (DDP detection on)
    if name in ("sample-level", "modality-level"):
        opts["warmup"] = 1
    two_only = METHODS.get(name).max_modalities == 2  # 2-modality methods: two of the six views
    cfg = RunConfig.from_dict(
        {
            "dataset": "mfeat",
            "dataset_options": {"views": ["fou", "kar"]} if two_only else {},
            "method": name,
            "method_options": opts,
            "name": f"{name}-{variant or 'default'}",
            "out_dir": str(out),
            "train": {"epochs": 2, "progress": False, "batch_size": 64},
        }
    )
    result = run_experiment(cfg)
    table = valuate_dataset(result.model, result.splits.test, batch_size=50, distributed=True)
    if is_main():
        torch.save({"phi": table.phi, "index": table.index, "preds": table.coalition_preds}, out / f"{cfg.name}.pt")
shutdown()  # every rank done: barrier, then leave the group (no exit-time race of the Gloo threads)
