"""``OnlineRecorder``: records per storage row from training features, equal to valuing the
same features directly; units skipped; extras kept; checkpoint round trip; and under
2-process torchrun (gloo, CPU) the same records and plans as in one process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from _helpers import tiny_data, torchrun
from _online import CASES, frozen_trainer, plain_model

from mmcoop.enhance.online import OnlineRecorder
from mmcoop.valuation import VALUE_FUNCTIONS, ModalityValuator

pytestmark = pytest.mark.usefixtures("one_thread")
WORKER = Path(__file__).with_name("ddp_online_worker.py")


@pytest.mark.parametrize("value", sorted(VALUE_FUNCTIONS.names()))
def test_records_equal_direct_valuation_of_the_same_features(value: str) -> None:
    """Batches in a shuffled order, some rows as duplicated units (skipped), one row never
    seen: the table holds every seen original, ascending, valued as the valuator values
    those features directly; a row seen twice keeps its last record."""
    data = tiny_data(40)
    model = plain_model(data).train()
    g = torch.Generator().manual_seed(0)
    feats_all = torch.randn(40, 2, 6, generator=g)
    labels = data.labels
    rec = OnlineRecorder(value)
    assert not rec.recording
    rec.record(model, feats_all[:4], labels[:4], torch.arange(4))  # not started: ignored
    rec.start(num_samples=40, epoch=7)
    order = torch.randperm(40, generator=g)
    order = order[order != 13]  # row 13 is never seen
    for chunk in order.split(9):
        keep = torch.ones(len(chunk), 2, dtype=torch.bool)
        keep[::3, 1] = False  # every third row of the batch is a unit keeping only modality a ...
        rows = chunk.clone()
        f = feats_all[rows].clone()
        f[::3] = 100.0  # ... whose features must not be recorded
        degraded = rows % 2
        rec.record(model, f, labels[rows], rows, keep, {"degraded": degraded, "inputs": {}, "label": labels[rows]})
        # and the originals of those rows, in a batch of their own
        rec.record(model, feats_all[rows[::3]], labels[rows[::3]], rows[::3], None, {"degraded": degraded[::3]})
    # row 5 seen again with other features: the later record wins
    late = torch.randn(1, 2, 6, generator=g)
    rec.record(model, late, labels[5:6], torch.tensor([5]))
    rec.commit()
    assert not rec.recording and rec.has_records(7) and not rec.has_records(6)
    table = rec.table(modalities=["a", "b"])
    want_rows = torch.tensor([r for r in range(40) if r != 13])
    assert torch.equal(table.index, want_rows)
    feats = feats_all[want_rows].clone()
    feats[want_rows == 5] = late[0]
    direct = ModalityValuator(model, value).attribute_features(feats, labels[want_rows])
    assert torch.equal(table.phi, direct.phi.float()) and torch.equal(table.values, direct.values.float())
    assert torch.equal(table.coalition_preds, direct.coalition_preds)
    assert torch.equal(table.label, labels[want_rows])
    assert torch.equal(table.extras["degraded"], want_rows % 2)
    assert table.value == value and table.info == {"valuation": "online", "recorded_epoch": 7}
    assert model.training  # the head ran in eval mode; modes restored
    # rows in a requested order, unseen rows left out
    sub = rec.table(torch.tensor([30, 13, 2]))
    assert torch.equal(sub.index, torch.tensor([30, 2]))
    assert torch.equal(sub.phi, table.phi[[29, 2]])
    # checkpoint round trip (weights-only loadable)
    blob = Path(os.environ.get("TMPDIR", "/tmp")) / f"online_{os.getpid()}_{value}.pt"
    torch.save(rec.state_dict(), blob)
    again = OnlineRecorder(value)
    again.load_state_dict(torch.load(blob, weights_only=True))
    blob.unlink()
    t2 = again.table()
    assert torch.equal(t2.phi, table.phi) and t2.modalities == ["a", "b"] and t2.empty == table.empty
    assert again.has_records(7)


def test_start_discards_an_uncommitted_epoch_and_stop_keeps_the_committed() -> None:
    data = tiny_data(12)
    model = plain_model(data)
    rec = OnlineRecorder()
    rec.start(12, 0)
    rec.record(model, torch.randn(12, 2, 6), data.labels, torch.arange(12))
    rec.commit()
    rec.start(12, 1)
    rec.record(model, torch.randn(3, 2, 6), data.labels[:3], torch.arange(3))
    rec.stop()  # e.g. killed mid-epoch: nothing of epoch 1 is committed
    assert rec.has_records(0) and len(rec.table()) == 12
    rec.start(12, 2)
    rec.commit()  # an epoch that saw no original sample commits nothing
    assert rec.committed is None


def _torchrun(tmp_path: Path) -> None:
    proc = torchrun(str(WORKER), str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_two_process_plans_and_records_equal_one_process(tmp_path: Path) -> None:
    """Learning rate 0 and no BatchNorm: every row's features are the same whichever rank
    trains on it, so the gathered records and the plans built from them must equal the
    single-process run's exactly, on both ranks."""
    _torchrun(tmp_path)
    data = tiny_data(61)
    for case, (name, options) in CASES.items():
        trainer = frozen_trainer(name, options, data)
        want: list = []
        trainer.fit(lambda r, t, want=want: want.append((t.method.plan, t.method._online.state_dict())))
        ranks = [torch.load(tmp_path / f"{case}_rank{r}.pt", weights_only=True) for r in (0, 1)]
        for epoch, (plan, online) in enumerate(want):
            for got in ranks:
                g = got[epoch]
                assert (plan is None) == (g["plan_rows"] is None), (case, epoch)
                if plan is not None:
                    assert torch.equal(plan.rows, g["plan_rows"]) and torch.equal(plan.keep, g["plan_keep"]), (
                        case,
                        epoch,
                    )
                assert torch.equal(online["index"], g["online"]["index"]), (case, epoch)
                assert len(online["index"]) == 61
                for key in ("phi", "values", "preds", "label"):
                    assert torch.equal(online[key], g["online"][key]), (case, epoch, key)
        assert any(p is not None and len(p) > 0 for p, _ in want), case
