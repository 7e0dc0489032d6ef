"""``sample-level``: options, weighted == duplicate gradients, a short training run, resume."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

import mmcoop.valuation
from mmcoop.enhance import sample_level_plan
from mmcoop.errors import ConfigError
from mmcoop.methods import METHODS, MethodContext, build_method
from mmcoop.methods.resampling import weighted_unit_loss
from mmcoop.methods.sample_level import SampleLevel

from _helpers import run_epochs, tiny_data, tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")


def test_registered_and_options_validated() -> None:
    assert "sample-level" in METHODS.names()
    m = build_method("sample-level", {"warmup": 2, "thresholds": [[1.0, 0], [0.4, 1], [-0.1, 2]]})
    assert m.options.thresholds == ((1.0, 0), (0.4, 1), (-0.1, 2)) and m.options.warmup == 2
    with pytest.raises(ConfigError, match="duplicate, weighted"):
        build_method("sample-level", {"execution": "fast"})
    with pytest.raises(ConfigError, match="batch, units"):
        build_method("sample-level", {"normalize": "mean"})
    with pytest.raises(ConfigError, match="warmup"):
        build_method("sample-level", {"warmup": -1})
    with pytest.raises(ConfigError, match="valid options"):
        build_method("sample-level", {"part_ratio": 0.2})
    with pytest.raises(ConfigError, match="valuation_every"):
        build_method("sample-level", {"valuation_every": 0})


def _grads(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]


@pytest.mark.parametrize("with_fill", [False, True])
@pytest.mark.parametrize("normalize", ["batch", "units"])
def test_weighted_equals_duplicate_gradient(with_fill: bool, normalize: str) -> None:
    data = tiny_data(40)
    model = tiny_model(data).eval()  # BatchNorm frozen, dropout off: the two executions are exact
    if with_fill:
        model.fill = torch.randn(2, 8)
    b = 12
    phi = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5])[
        torch.randint(0, 5, (data.num_samples, 2), generator=torch.Generator().manual_seed(1))
    ]
    plan = sample_level_plan(phi, torch.arange(data.num_samples))
    assert len(plan) > 0
    batch = data.__getitems__(list(range(b)))

    # duplicate: the originals and their units as separate rows, summed CE
    sel = plan.rows < b
    dup = data.view(torch.arange(b)).with_units(plan.rows[sel], plan.keep[sel])
    rows = dup.__getitems__(list(range(len(dup))))
    model.zero_grad()
    F.cross_entropy(model(rows["inputs"], rows["keep"]), rows["label"], reduction="sum").backward()
    want = _grads(model)

    # weighted: one forward pass over the originals, copies as weights (via the method's loss hook)
    method = SampleLevel(SampleLevel.Options(execution="weighted", normalize=normalize, warmup=0))
    method._set_plan(plan, 0, data.num_samples)
    ctx = MethodContext(model=model, train_data=data, device=torch.device("cpu"))
    model.zero_grad()
    feats = model.encode(batch["inputs"])
    loss = method.loss(ctx, batch, feats, model.fuse(feats))
    copies = plan.copies_per_sample(data.num_samples)[:b]
    denom = b if normalize == "batch" else b + int(copies.sum())
    (loss * denom).backward()
    got = _grads(model)
    assert any(g.abs().sum() > 0 for g in want)
    for g_w, g_d in zip(got, want):
        assert torch.allclose(g_w, g_d, atol=1e-5, rtol=1e-4)
    # the loss value is the same sum too
    direct = weighted_unit_loss(model, feats.detach(), model.fuse(feats.detach()), batch["label"], copies, normalize)
    assert direct.item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("execution", ["duplicate", "weighted"])
def test_short_run_builds_plan_after_warmup(execution: str) -> None:
    data = tiny_data(96)
    method = build_method("sample-level", {"warmup": 1, "execution": execution})
    logs, ctx = run_epochs(method, data, epochs=3)
    assert "contrib_a" not in logs[0] and logs[0]["train_size"] == 96 and "valuation_table" not in logs[0]
    for log in logs[1:]:
        for key in (
            "contrib_a",
            "contrib_b",
            "copies_a",
            "copies_b",
            "train_size",
            "valued_samples",
            "time_valuation_s",
        ):
            assert key in log, key
        assert log["valued_samples"] == 96
        assert log["train_size"] == 96 + log["copies_a"] + log["copies_b"]
        assert log["train_units"] == (log["train_size"] if execution == "duplicate" else 96)
        table = log["valuation_table"]
        assert table.phi.shape == (96, 2)
        assert log["contrib_a"] == pytest.approx(float(table.phi[:, 0].double().mean()))
    assert method.plan is not None and method.plan_epoch == 2
    # the plan is the sample-level rule applied to the last valuation
    table = logs[-1]["valuation_table"]
    want = sample_level_plan(table.phi, table.index).copies_per_sample(96)
    assert torch.equal(method.plan.copies_per_sample(96), want)
    if execution == "duplicate":
        assert all("train_fused_ce" not in log for log in logs)
    else:  # the fused CE beside the loss: equal in warm-up, below it once the units' terms join the loss
        assert logs[0]["train_fused_ce"] == pytest.approx(logs[0]["train_loss"], rel=1e-9)
        assert all(log["train_loss"] > log["train_fused_ce"] > 0 for log in logs[1:])


def test_state_dict_resume_keeps_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_data(60)
    method = build_method("sample-level", {"warmup": 0, "execution": "weighted"})
    logs, ctx = run_epochs(method, data, epochs=1)
    state = method.state_dict()
    resumed = build_method("sample-level", {"warmup": 0, "execution": "weighted"})
    resumed.load_state_dict(state)
    assert torch.equal(resumed.plan.rows, method.plan.rows) and torch.equal(resumed._copies, method._copies)

    def boom(*a, **k):  # a restored plan for the same epoch is reused, not re-valued
        raise AssertionError("re-valued after resume")

    monkeypatch.setattr(mmcoop.valuation, "valuate_dataset", boom)
    ctx.epoch, ctx.log = 0, {}
    resumed.on_epoch_start(ctx)
    assert ctx.log["train_size"] == logs[0]["train_size"]
    dup = build_method("sample-level", {"warmup": 0})
    dup.load_state_dict(method.state_dict())
    assert len(dup.train_set(ctx)) == 60 + len(method.plan)


def test_valuation_every_reuses_the_plan_between_valuations() -> None:
    data = tiny_data(96)
    method = build_method("sample-level", {"warmup": 1, "valuation_every": 2, "execution": "duplicate"})
    logs, _ = run_epochs(method, data, epochs=5)
    assert [log.get("valued_samples") for log in logs] == [None, 96, 0, 96, 0]
    assert [log.get("plan_epoch") for log in logs] == [None, 2, 2, 4, 4]
    assert ["valuation_table" in log for log in logs] == [False, True, False, True, False]
    for built, reused in ((logs[1], logs[2]), (logs[3], logs[4])):
        assert reused["time_valuation_s"] == 0.0
        assert reused["train_size"] == built["train_size"] == reused["train_units"]
        assert reused["copies_a"] == built["copies_a"] and reused["contrib_b"] == built["contrib_b"]


def test_ranks_with_different_plans_stop_with_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under DDP a plan that differs between ranks would hang the gradient all-reduce; it must raise instead."""
    import mmcoop.methods.resampling as resampling
    from mmcoop.errors import MMCoopError

    plan = sample_level_plan(torch.tensor([[0.0, 1.5], [1.5, -0.5]]), torch.tensor([0, 1]))
    monkeypatch.setattr(resampling, "world_size", lambda: 2)
    monkeypatch.setattr(resampling, "all_gather_objects", lambda key: [key, key])
    resampling._check_same_plan(plan, epoch=3)  # identical on both ranks: fine
    monkeypatch.setattr(resampling, "all_gather_objects", lambda key: [key, (key[0] + 1, *key[1:])])
    with pytest.raises(MMCoopError, match="epoch 4: the ranks built different re-sampling plans"):
        resampling._check_same_plan(plan, epoch=3)
