"""``valuate_dataset(distributed=True)`` under torchrun (2 Gloo processes on the CPU):
each rank values half the rows, and every rank ends with the single-process table."""

from pathlib import Path

import torch

import _helpers
from mmcoop.valuation import valuate_dataset

WORKER = Path(__file__).with_name("ddp_valuation_worker.py")


def test_sharded_valuation_equals_single_process(tmp_path):
    proc = _helpers.torchrun(str(WORKER), str(tmp_path), timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    data = _helpers.tiny_data(n=45)
    model = _helpers.tiny_model(data)
    expected = {
        "all": valuate_dataset(model, data, batch_size=8),
        "subset": valuate_dataset(model, data, batch_size=4, rows=torch.tensor([40, 3, 17, 8, 29])),
        "one": valuate_dataset(model, data, batch_size=4, rows=torch.tensor([11])),
    }
    for r in (0, 1):
        got = torch.load(tmp_path / f"rank{r}.pt")
        for name, table in expected.items():
            for field in ("index", "label", "phi", "values", "coalition_preds"):
                want = getattr(table, field)
                assert torch.equal(got[name][field], want), (r, name, field)
    # each rank encoded only its share: rows 0, 2, 4, ... on rank 0, 1, 3, ... on rank 1
    counts = [torch.load(tmp_path / f"rank{r}.pt")["encoded_rows"] for r in (0, 1)]
    assert counts == [23 + 3 + 1, 22 + 2 + 0]
    for r in (0, 1):  # average_buffers: running statistics averaged, integer counters untouched
        mean, var, tracked = torch.load(tmp_path / f"rank{r}.pt")["bn"]
        assert torch.allclose(mean, torch.full_like(mean, 0.5)) and torch.allclose(var, torch.full_like(var, 2.0))
        assert tracked == 0
