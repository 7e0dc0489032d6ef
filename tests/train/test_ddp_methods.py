"""Every registered method (and re-sampling execution) completes under 2-process torchrun on
mfeat (M = 6; ranks' units skip different encoders; two views for 2-modality methods) and its
sharded valuation equals the single-process valuation of the same model."""

from __future__ import annotations

from pathlib import Path

import torch

from _helpers import torchrun
from mmcoop.experiment import load_run
from mmcoop.methods import METHODS
from mmcoop.valuation import valuate_dataset

WORKER = Path(__file__).with_name("ddp_methods_worker.py")


def _specs() -> list[str]:
    out = []
    for name in METHODS.names():
        if METHODS.get(name).variant_option == "execution":
            out += [f"{name}:duplicate", f"{name}:weighted"]
        else:
            out.append(name)
    return out


def test_every_method_under_torchrun_on_mfeat(tmp_path):
    specs = _specs()
    proc = torchrun(str(WORKER), str(tmp_path), ",".join(specs), timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for spec in specs:
        name, _, variant = spec.partition(":")
        run = tmp_path / f"{name}-{variant or 'default'}"
        assert (run / "results.json").is_file(), spec
        got = torch.load(tmp_path / f"{run.name}.pt")
        _, model, splits = load_run(run)
        want = valuate_dataset(model, splits.test, batch_size=128)
        assert torch.equal(got["index"], want.index), spec
        assert torch.equal(got["preds"], want.coalition_preds), spec
        assert torch.equal(got["phi"], want.phi), spec
