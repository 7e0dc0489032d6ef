"""The batched valuator against re-running the model once per coalition."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from mmcoop.data.base import ModalitySpec, MultimodalDataset, make_loader
from mmcoop.errors import ConfigError
from mmcoop.models import FusionHead, build_model
from mmcoop.valuation import (
    ModalityValuator,
    coalition_masks,
    coalition_values,
    mean_features,
    valuate_dataset,
)

from _helpers import brute_force_shapley

pytestmark = pytest.mark.usefixtures("one_thread")


SPECS = [ModalitySpec("a", "vector", (5,)), ModalitySpec("b", "vector", (3,)), ModalitySpec("c", "image", (1, 8, 8))]
N, C = 24, 3


def make_data(seed: int = 0) -> MultimodalDataset:
    g = torch.Generator().manual_seed(seed)
    inputs = {s.name: torch.randn(N, *s.shape, generator=g, dtype=torch.float64) for s in SPECS}
    labels = torch.randint(0, C, (N,), generator=g)
    degraded = torch.randint(0, 3, (N,), generator=g)
    return MultimodalDataset(inputs, labels, C, SPECS, extras={"degraded": degraded})


def make_model(fusion: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(SPECS, C, dim=8, fusion=fusion).double()
    # non-trivial BatchNorm statistics, then eval
    model.train()
    with torch.no_grad():
        data = make_data(seed + 100)
        model(data.inputs)
    return model.eval()


def reference(model: nn.Module, inputs: dict[str, Tensor], fill: Tensor | None) -> Tensor:
    """Logits [B, 2**M, C]: the whole model run once per coalition (encoders only on kept modalities)."""
    b, m = next(iter(inputs.values())).shape[0], model.num_modalities
    model.fill = fill
    try:
        with torch.no_grad():
            out = []
            for row in coalition_masks(m):
                keep = row.expand(b, m)
                if row.any():
                    out.append(model(inputs, keep=keep))
                else:  # nothing to encode (encode() would return float32 zeros for a float64 model)
                    out.append(model.fuse(torch.zeros(b, m, model.head.dim, dtype=torch.float64), keep))
    finally:
        model.fill = None
    return torch.stack(out, 1)


@pytest.mark.parametrize("fusion", ["concat", "sum"])
@pytest.mark.parametrize("removal", ["zero", "mean"])
@pytest.mark.parametrize("value", ["paper", "prob"])
def test_matches_one_run_per_coalition(fusion: str, removal: str, value: str) -> None:
    model, data = make_model(fusion), make_data()
    fill = mean_features(model, data, batch_size=10) if removal == "mean" else None
    batch = data.__getitems__(list(range(N)))
    res = ModalityValuator(model, value=value, removal=removal, fill=fill).attribute(batch["inputs"], batch["label"])
    logits = reference(model, batch["inputs"], fill)
    masks = coalition_masks(3)
    ref_values = coalition_values(logits, batch["label"], masks, value)
    assert torch.equal(res.masks, masks) and res.method == "exact" and res.stderr is None
    assert torch.equal(res.coalition_preds, logits.argmax(-1))
    torch.testing.assert_close(res.values, ref_values)
    torch.testing.assert_close(res.phi, brute_force_shapley(ref_values, 3))
    assert torch.equal(res.fused_pred, res.coalition_preds[:, -1])
    if value == "paper":
        assert set(res.values[:, 7].tolist()) <= {0.0, 3.0} and bool((res.values[:, 0] == 0).all())


def test_mean_features_and_fit_fill() -> None:
    model, data = make_model("concat"), make_data()
    with torch.no_grad():
        direct = model.encode(data.inputs).mean(0).float()
    fill = mean_features(model, data, batch_size=7)
    assert fill.shape == (3, 8)
    torch.testing.assert_close(fill, direct)
    v = ModalityValuator(model, removal="mean").fit_fill(make_loader(data, 5))
    torch.testing.assert_close(v.fill, direct)
    with pytest.raises(ConfigError):
        ModalityValuator(model).fit_fill(make_loader(data, 5))
    with pytest.raises(ConfigError, match="fill"):
        ModalityValuator(model, removal="mean").attribute(data.inputs, data.labels)
    with pytest.raises(ConfigError):
        ModalityValuator(model, removal="zero", fill=fill)
    with pytest.raises(ConfigError):
        ModalityValuator(model, removal="mean", fill=torch.zeros(3, 4))
    with pytest.raises(ConfigError):
        ModalityValuator(model, removal="noise")
    with pytest.raises(ConfigError):
        ModalityValuator(model, value="accuracy")


def test_restores_modes() -> None:
    model, data = make_model("concat"), make_data()
    model.train()
    model.encoders["a"].eval()  # a mixed state must survive, not just the top-level flag
    before = {name: mod.training for name, mod in model.named_modules()}
    bn = model.encoders["b"].net[1]
    stats = bn.running_mean.clone()
    ModalityValuator(model).attribute(data.inputs, data.labels)
    valuate_dataset(model, data, batch_size=10)
    assert {name: mod.training for name, mod in model.named_modules()} == before
    assert torch.equal(bn.running_mean, stats)  # evaluated in eval mode: BN statistics untouched
    model.eval()
    ModalityValuator(model).attribute(data.inputs, data.labels)
    assert not any(mod.training for mod in model.modules())


def test_encodes_once_per_batch() -> None:
    model, data = make_model("sum"), make_data()
    calls = []
    for name, enc in model.encoders.items():
        enc.register_forward_hook(lambda mod, inp, out, name=name: calls.append(name))
    ModalityValuator(model).attribute(data.inputs, data.labels)
    assert sorted(calls) == ["a", "b", "c"]


def test_valuate_dataset_rows_and_extras() -> None:
    model, data = make_model("concat"), make_data()
    full = valuate_dataset(model, data, batch_size=7, split="train")
    assert full.index.tolist() == list(range(N)) and full.split == "train"
    assert full.phi.device.type == "cpu" and full.phi.shape == (N, 3) and full.values.shape == (N, 8)
    assert torch.equal(full.extras["degraded"], data.extras["degraded"])
    assert torch.equal(full.label, data.labels)
    res = ModalityValuator(model).attribute(data.inputs, data.labels)
    torch.testing.assert_close(full.phi, res.phi)
    assert torch.equal(full.coalition_preds, res.coalition_preds)

    rows = torch.tensor([20, 3, 7, 11])
    sub = valuate_dataset(model, data, batch_size=3, rows=rows)
    assert sub.index.tolist() == rows.tolist()
    assert torch.equal(sub.extras["degraded"], data.extras["degraded"][rows])
    torch.testing.assert_close(sub.phi, full.phi[rows])
    # resampled views (duplicated rows with keep-masks) are still valued with all modalities
    view = data.view(torch.tensor([1, 1, 2]), torch.tensor([[True, False, False], [False, True, True], [True] * 3]))
    dup = valuate_dataset(model, view, batch_size=2)
    torch.testing.assert_close(dup.phi, full.phi[[1, 1, 2]])

    wrapped = valuate_dataset(nn.DataParallel(model), data, batch_size=7)
    assert torch.equal(wrapped.phi, full.phi)

    fill = mean_features(model, data)
    mean_tab = valuate_dataset(model, data, removal="mean", fill=fill, value="logprob")
    assert mean_tab.removal == "mean" and mean_tab.value == "logprob" and mean_tab.empty == "model"
    with pytest.raises(ConfigError):
        valuate_dataset(model, data, removal="mean")
    empty = valuate_dataset(model, data, rows=torch.zeros(0, dtype=torch.long))
    assert len(empty) == 0 and empty.values.shape == (0, 8)


class MLPHead(FusionHead):
    """A non-linear head (no partial_logits): exercises the generic coalition path."""

    def __init__(self, num_modalities: int, dim: int, num_classes: int) -> None:
        super().__init__(num_modalities, dim, num_classes)
        self.net = nn.Sequential(nn.Linear(num_modalities * dim, 16), nn.Tanh(), nn.Linear(16, num_classes))

    def fuse(self, feats: Tensor) -> Tensor:
        return self.net(feats.flatten(1))


@pytest.mark.parametrize("head", ["concat", "sum", "mlp"])
def test_permutation_paths_agree(head: str) -> None:
    model, data = make_model("concat" if head == "mlp" else head), make_data()
    if head == "mlp":
        model.head = MLPHead(3, 8, C).double()
    fill = mean_features(model, data)
    exact = ModalityValuator(model, value="prob", removal="mean", fill=fill).attribute(data.inputs, data.labels)
    kw = dict(value="prob", removal="mean", fill=fill, method="permutation", num_permutations=64)
    # on the coalition table (M <= max_exact) and on per-sample coalitions (M > max_exact): same draws, same phi
    table = ModalityValuator(model, generator=torch.Generator().manual_seed(0), **kw).attribute(
        data.inputs, data.labels
    )
    lazy = ModalityValuator(model, generator=torch.Generator().manual_seed(0), max_exact=2, **kw).attribute(
        data.inputs, data.labels
    )
    assert table.method == lazy.method == "permutation"
    assert table.values.shape == (N, 8) and lazy.values.shape == (N, 5) and lazy.masks.shape == (5, 3)
    torch.testing.assert_close(table.phi, lazy.phi)
    torch.testing.assert_close(table.stderr, lazy.stderr)
    assert float(((table.phi - exact.phi).abs() / table.stderr.clamp_min(1e-12)).max()) < 5
    torch.testing.assert_close(lazy.phi.sum(1), exact.values[:, -1] - exact.values[:, 0])
    # the reported coalitions (empty, singletons, full) agree with the exact table
    for j, c in enumerate([0, 1, 2, 4, 7]):
        torch.testing.assert_close(lazy.values[:, j], exact.values[:, c])
        assert torch.equal(lazy.coalition_preds[:, j], exact.coalition_preds[:, c])


def many_modality_model(m: int) -> tuple[nn.Module, dict[str, Tensor], Tensor]:
    specs = [ModalitySpec(f"m{k}", "vector", (2,)) for k in range(m)]
    torch.manual_seed(m)
    model = build_model(specs, 3, dim=4, fusion="sum").eval()
    g = torch.Generator().manual_seed(m)
    inputs = {s.name: torch.randn(6, 2, generator=g) for s in specs}
    return model, inputs, torch.randint(0, 3, (6,), generator=g)


def test_twelve_modalities_exact() -> None:
    model, inputs, y = many_modality_model(12)
    res = ModalityValuator(model).attribute(inputs, y)
    assert res.method == "exact" and res.values.shape == (6, 4096) and res.phi.shape == (6, 12)
    torch.testing.assert_close(res.phi.sum(1), res.values[:, -1] - res.values[:, 0])


def test_thirteen_modalities_stay_exact_and_estimates_are_announced() -> None:
    model, inputs, y = many_modality_model(13)
    res = ModalityValuator(model, value="prob").attribute(inputs, y)
    # exact beyond the full-table layout: all 2**13 coalitions valued, 15 reported columns kept
    assert res.method == "exact" and res.stderr is None
    assert res.masks.shape == (15, 13) and res.values.shape == (6, 15)
    torch.testing.assert_close(res.phi.sum(1), res.values[:, -1] - res.values[:, 0])
    full = ModalityValuator(model, value="prob", max_exact=13).attribute(inputs, y)  # the whole table, one pass
    torch.testing.assert_close(res.phi, full.phi)
    tiny = ModalityValuator(model, value="prob", max_exact=2, memory_budget=3 * (1 << 13) * 20).attribute(inputs, y)
    torch.testing.assert_close(tiny.phi, full.phi)  # rows in chunks of 3: same values
    # when the table does not fit, auto switches to an estimate, says so, and gives its standard error
    with pytest.warns(UserWarning, match="permutation estimate"):
        est = ModalityValuator(
            model, value="prob", num_permutations=16, memory_budget=1000, generator=torch.Generator().manual_seed(0)
        )
    res = est.attribute(inputs, y)
    assert res.method == "permutation" and res.stderr is not None
    assert res.masks.shape == (15, 13) and res.values.shape == (6, 15)
    torch.testing.assert_close(res.phi.sum(1), res.values[:, -1] - res.values[:, 0])
    assert torch.equal(res.fused_pred, res.coalition_preds[:, -1])
