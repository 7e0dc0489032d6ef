"""The model contract: FiLM and gated fusions honour the keep-mask, the generic coalition path
equals per-coalition fusion, from_modules wraps heads of different feature widths, the registry
builds and refuses clearly."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmcoop.data import ModalitySpec
from mmcoop.errors import ConfigError
from mmcoop.models import (
    MODELS,
    MultimodalModel,
    build_model,
    check_model,
    coalition_logits,
    create_model,
    from_modules,
    unimodal_logits,
)
from mmcoop.valuation import coalition_masks

SPECS = [ModalitySpec("a", "vector", (5,)), ModalitySpec("b", "vector", (3,))]


def _inputs(b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"a": torch.randn(b, 5, generator=g), "b": torch.randn(b, 3, generator=g)}


@pytest.mark.parametrize("fusion", ["film", "gated"])
def test_pair_fusions_remove_by_zeroing_and_match_the_formula(fusion):
    torch.manual_seed(0)
    model = build_model(SPECS, 4, dim=6, fusion=fusion).eval()
    feats = model.encode(_inputs())
    x, y = feats[:, 0], feats[:, 1]
    h = model.head
    if fusion == "film":
        gamma, beta = h.film(x).chunk(2, dim=-1)
        want = h.out(gamma * y + beta)
        want_no_x = h.out(h.film(torch.zeros_like(x)).chunk(2, -1)[0] * y + h.film(torch.zeros_like(x)).chunk(2, -1)[1])
    else:
        want = h.out(torch.sigmoid(h.fc_x(x)) * h.fc_y(y))
        want_no_x = h.out(torch.sigmoid(h.fc_x(torch.zeros_like(x))) * h.fc_y(y))
    torch.testing.assert_close(model.fuse(feats), want)
    torch.testing.assert_close(model.fuse(feats, torch.tensor([False, True])), want_no_x)
    # all coalitions in one batched call == one fuse per coalition
    masks = coalition_masks(2)
    got = coalition_logits(model, feats, masks)
    slow = torch.stack([model.fuse(feats, masks[c]) for c in range(4)], dim=1)
    torch.testing.assert_close(got, slow)


def test_pair_fusions_refuse_more_than_two_modalities():
    specs = SPECS + [ModalitySpec("c", "vector", (2,))]
    with pytest.raises(ConfigError, match="fuses exactly 2 modalities"):
        build_model(specs, 4, fusion="film")


class ListHead(nn.Module):
    """A MultiBench-style head: a list of features of different widths."""

    def __init__(self, widths, num_classes):
        super().__init__()
        self.widths = widths
        self.fc = nn.Sequential(nn.Linear(sum(widths), 7), nn.Tanh(), nn.Linear(7, num_classes))
        self.calls = []

    def forward(self, feats):
        self.calls.append([tuple(f.shape) for f in feats])
        return self.fc(torch.cat(feats, dim=1))


def test_from_modules_with_different_widths():
    torch.manual_seed(1)
    head = ListHead([4, 9], 3)
    model = from_modules({"a": nn.Linear(5, 4), "b": nn.Linear(3, 9)}, head, num_classes=3).eval()
    assert isinstance(model, MultimodalModel) and model.modalities == ["a", "b"] and model.num_classes == 3
    x = _inputs(b=5)
    feats = model.encode(x)
    assert feats.shape == (5, 2, 9)  # padded to the widest
    assert torch.all(feats[:, 0, 4:] == 0)
    logits = model.fuse(feats)
    assert head.calls[-1] == [(5, 4), (5, 9)]  # the head sees each modality at its own width
    torch.testing.assert_close(
        logits, head.fc(torch.cat([model.encoders["a"](x["a"]), model.encoders["b"](x["b"])], 1))
    )
    # removing "b" zeroes its feature before the head
    no_b = head.fc(torch.cat([model.encoders["a"](x["a"]), torch.zeros(5, 9)], 1))
    torch.testing.assert_close(model.fuse(feats, torch.tensor([True, False])), no_b)
    uni = unimodal_logits(model, feats)
    torch.testing.assert_close(uni[:, 0], no_b)  # "a" alone = "b" removed
    # keep-masks skip encoders on removed rows: same kept features
    keep = torch.tensor([[1, 0], [0, 1], [1, 1], [1, 0], [0, 1]], dtype=torch.bool)
    part = model.encode(x, keep)
    torch.testing.assert_close(part[keep], feats[keep])


def test_registry_and_clear_errors():
    assert "late-fusion" in MODELS
    model = create_model("late-fusion", SPECS, 4, dim=6, fusion="sum")
    check_model(model, ["a", "b"])
    with pytest.raises(ConfigError, match="modalities"):
        check_model(model, ["b", "a"])  # order defines the feature axis
    with pytest.raises(ConfigError, match="valid models"):
        create_model("transformer", SPECS, 4)
    with pytest.raises(ConfigError, match="lacks modalities, encode, fuse"):
        check_model(nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="name modalities"):
        build_model(SPECS, 4, encoders={"c": "vector"})
