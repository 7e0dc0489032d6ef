"""Re-sampling pieces for any loop: resamplers (value, plan, step), ResampledDataset, collate, weighted loss."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

import mmcoop.valuation
from mmcoop.enhance import (
    ModalityLevelResampler,
    ResampledDataset,
    ResamplingPlan,
    SampleLevelResampler,
    collate_units,
    epoch_generator,
    sample_level_plan,
    weighted_unit_loss,
    weighted_unit_parts,
)
from mmcoop.errors import ConfigError, DataError
from mmcoop.methods import MethodContext, build_method

from _helpers import ContextListener, tiny_data, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


class Items(Dataset):
    """A user's Dataset of dict items over the tensors of ``tiny_data``."""

    def __init__(self, data) -> None:
        self.a, self.b, self.y = data.inputs["a"], data.inputs["b"], data.labels

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        return {"inputs": {"a": self.a[i], "b": self.b[i]}, "label": int(self.y[i]), "note": i * 10}


def a_plan(m: int = 2) -> ResamplingPlan:
    rows = torch.tensor([3, 0, 3, 7])
    keep = torch.tensor([[True, False], [False, True], [False, True], [True, False]])
    return ResamplingPlan(rows, keep, ["a", "b"])


def test_resampled_dataset_items_over_a_plain_dataset() -> None:
    data = tiny_data(10)
    ds = ResampledDataset(Items(data), a_plan())
    assert len(ds) == 14
    first, unit = ds[2], ds[10 + 2]  # an original, then unit 2 = row 3 keeping b
    assert first["keep"].tolist() == [True, True] and int(first["index"]) == 2 and first["note"] == 20
    assert unit["keep"].tolist() == [False, True] and int(unit["index"]) == 3 and unit["label"] == int(data.labels[3])
    assert torch.equal(unit["inputs"]["a"], data.inputs["a"][3])
    batch = collate_units([ds[i] for i in range(14)])
    assert (
        batch["inputs"]["a"].shape == (14, 6) and batch["keep"].shape == (14, 2) and batch["keep"].dtype == torch.bool
    )
    assert batch["label"].dtype == torch.long
    assert batch["index"].tolist() == list(range(10)) + [3, 0, 3, 7]
    assert batch["keep"][10:].tolist() == a_plan().keep.tolist()
    with pytest.raises(IndexError):
        ds[14]
    assert len(ResampledDataset(Items(data), None)) == 10


def test_weighted_execution_carries_copies() -> None:
    data = tiny_data(10)
    ds = ResampledDataset(Items(data), a_plan(), execution="weighted")
    assert len(ds) == 10
    copies = torch.stack([ds[i]["copies"] for i in range(10)])
    expect = torch.zeros(10, 2, dtype=torch.long)
    expect[3] = torch.tensor([1, 1])
    expect[0, 1] = 1
    expect[7, 0] = 1
    assert torch.equal(copies, expect)
    with pytest.raises(ConfigError, match="duplicate, weighted"):
        ResampledDataset(Items(data), a_plan(), execution="fast")
    with pytest.raises(DataError, match="row 7"):
        ResampledDataset(Items(tiny_data(5)), a_plan())


def test_multimodal_dataset_base_gives_the_same_units_as_the_loop() -> None:
    data = tiny_data(10)
    plain, view = ResampledDataset(Items(data), a_plan()), ResampledDataset(data, a_plan())
    assert len(view) == len(plain) == len(data.with_units(a_plan().rows, a_plan().keep))
    for i in range(len(plain)):
        p, v = plain[i], view[i]
        assert (
            torch.equal(p["keep"], v["keep"]) and int(p["index"]) == int(v["index"]) and p["label"] == int(v["label"])
        )
        assert torch.equal(p["inputs"]["b"], v["inputs"]["b"])
    loader = DataLoader(view, batch_size=4, shuffle=True, collate_fn=collate_units)
    seen = torch.cat([b["index"] for b in loader]).sort().values
    assert seen.tolist() == sorted(list(range(10)) + [3, 0, 3, 7])


def test_sample_level_resampler_value_and_plan() -> None:
    data = tiny_data(48)
    model = tiny_model(data)
    r = SampleLevelResampler(warmup=0, batch_size=16)
    table = r.value(model, Items(data))  # a plain Dataset of dict items works
    ref = mmcoop.valuation.valuate_dataset(model, data, batch_size=16)
    assert torch.equal(table.phi, ref.phi) and torch.equal(table.index, ref.index)
    plan = r.plan(table)
    expect = sample_level_plan(ref.phi, ref.index)
    assert torch.equal(plan.rows, expect.rows) and torch.equal(plan.keep, expect.keep)
    assert model.training  # valuation restores the train mode


def test_schedule_warmup_and_every(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_data(32)
    model = tiny_model(data)
    calls = []
    real = mmcoop.valuation.valuate_dataset
    monkeypatch.setattr(mmcoop.valuation, "valuate_dataset", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = SampleLevelResampler(warmup=2, every=2)
    plans = [r.step(e, model, data) for e in range(6)]
    assert plans[0] is None and plans[1] is None
    assert plans[3] is plans[2] and plans[5] is plans[4] and plans[4] is not plans[2]
    assert len(calls) == 2  # epochs 2 and 4 only
    assert [r.due(e) for e in range(6)] == [False, False, True, False, True, False]
    with pytest.raises(ConfigError, match="every"):
        SampleLevelResampler(every=0)
    with pytest.raises(ConfigError, match="value function"):
        SampleLevelResampler(value="nope")


def test_generator_formula_is_the_method_context_one() -> None:
    ctx = MethodContext(
        model=torch.nn.Linear(1, 1), train_data=tiny_data(4), device=torch.device("cpu"), seed=5, epoch=7
    )
    assert torch.equal(
        torch.randperm(50, generator=ctx.generator(3)), torch.randperm(50, generator=epoch_generator(5, 7, 3))
    )


@pytest.mark.parametrize("name", ["sample-level", "modality-level"])
def test_method_and_resampler_build_the_same_plan(name: str) -> None:
    data = tiny_data(60)
    model = tiny_model(data)
    opts = {"warmup": 0, "alpha": 3.0, "part_ratio": 0.5} if name == "modality-level" else {"warmup": 0}
    method = build_method(name, opts)
    ctx = MethodContext(model=model, train_data=data, device=torch.device("cpu"), seed=7, epoch=3)
    ctx.listener = ContextListener()
    method.setup(ctx)
    method.on_epoch_start(ctx)
    table, plan = ctx.listener.last
    if name == "modality-level":
        r = ModalityLevelResampler(part_ratio=0.5, alpha=3.0, warmup=0, seed=7)
    else:
        r = SampleLevelResampler(warmup=0)
    mine = r.step(3, model, Items(data))
    assert len(plan) > 0
    assert torch.equal(mine.rows, plan.rows) and torch.equal(mine.keep, plan.keep)
    assert torch.equal(r.last_table.index, table.index)


def test_weighted_loss_equals_summed_ce_of_duplicated_units() -> None:
    data = tiny_data(12)
    model = tiny_model(data).eval()
    plan = a_plan()
    batch = collate_units([ResampledDataset(data, plan, execution="weighted")[i] for i in range(12)])
    feats = model.encode(batch["inputs"])
    loss = weighted_unit_loss(model, feats, model.fuse(feats), batch["label"], batch["copies"])
    dup = collate_units([ResampledDataset(data, plan)[i] for i in range(16)])
    f2 = model.encode(dup["inputs"], dup["keep"])
    summed = F.cross_entropy(model.fuse(f2, dup["keep"]), dup["label"], reduction="sum")
    torch.testing.assert_close(loss * 12, summed, rtol=1e-5, atol=1e-5)
    units = weighted_unit_loss(model, feats, model.fuse(feats), batch["label"], batch["copies"], normalize="units")
    torch.testing.assert_close(units * 16, summed, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("plain", [True, False])
def test_weighted_without_a_plan_carries_zero_copies(plain: bool) -> None:
    """Warm-up (plan None): the weighted items still carry copies, all zeros, so one training step
    (``weighted_unit_loss(..., batch["copies"])``) fits every epoch; the loss is then the plain CE."""
    data = tiny_data(10)
    ds = ResampledDataset(Items(data) if plain else data, None, execution="weighted")
    batch = collate_units([ds[i] for i in range(10)])
    assert torch.equal(batch["copies"], torch.zeros(10, 2, dtype=torch.long))
    model = tiny_model(data).eval()
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    loss = weighted_unit_loss(model, feats, logits, batch["label"], batch["copies"])
    torch.testing.assert_close(loss, F.cross_entropy(logits, batch["label"]))
    assert "copies" not in ResampledDataset(Items(data), None)[0]  # duplicate: no copies key


def test_weighted_unit_parts_give_the_fused_ce_beside_the_total() -> None:
    data = tiny_data(12)
    model = tiny_model(data).eval()
    batch = collate_units([ResampledDataset(data, a_plan(), execution="weighted")[i] for i in range(12)])
    feats = model.encode(batch["inputs"])
    logits = model.fuse(feats)
    parts = weighted_unit_parts(model, feats, logits, batch["label"], batch["copies"])
    torch.testing.assert_close(parts.total, weighted_unit_loss(model, feats, logits, batch["label"], batch["copies"]))
    torch.testing.assert_close(parts.fused_ce, F.cross_entropy(logits, batch["label"]))
    assert not parts.fused_ce.requires_grad and parts.total.requires_grad
    # the units' terms by hand: each modality alone (the other's feature zeroed), weighted by its copies
    uni = torch.stack([model.fuse(feats, torch.tensor([k == 0, k == 1]).expand(12, 2)) for k in range(2)], 1)
    ce_uni = F.cross_entropy(uni.reshape(24, -1), batch["label"].repeat_interleave(2), reduction="none").view(12, 2)
    by_hand = (F.cross_entropy(logits, batch["label"], reduction="sum") + (batch["copies"] * ce_uni).sum()) / 12
    torch.testing.assert_close(parts.total, by_hand)
    assert float(parts.total) > float(parts.fused_ce)  # the step up a log of the total shows after warm-up
