"""The debiasing wrapper on a small synthetic dataset."""

from __future__ import annotations

import pytest
import torch

from mmcoop.data import debias
from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.errors import ConfigError

SPLITS = ("train", "val", "test")
MODS = ("a", "b", "c")


@pytest.fixture
def base() -> DatasetSplits:
    g = torch.Generator().manual_seed(0)
    specs = [
        ModalitySpec("a", "vector", (5,)),
        ModalitySpec("b", "image", (1, 4, 4)),
        ModalitySpec("c", "vector", (2,)),
    ]

    def ds(n: int) -> MultimodalDataset:
        inputs = {s.name: 2.0 * torch.randn((n, *s.shape), generator=g) + 1.0 for s in specs}
        return MultimodalDataset(inputs, torch.arange(n) % 4, 4, specs, {"take": torch.arange(n)})

    return DatasetSplits("toy", ds(300), ds(61), ds(90), {"source": "synthetic"})


def _changed(orig: MultimodalDataset, new: MultimodalDataset) -> torch.Tensor:
    """bool [N, M]: which modality of each sample differs."""
    return torch.stack([(orig.inputs[m] != new.inputs[m]).flatten(1).any(1) for m in orig.modalities], 1)


def test_recorded_balanced_and_only_chosen_changed(base: DatasetSplits) -> None:
    out = debias(base, strength=0.8, mode="noise", seed=0)
    assert out.name == "toy-debiased" and out.info["debias"]["mode"] == "noise" and out.info["source"] == "synthetic"
    for k in SPLITS:
        o, n = base.split(k), out.split(k)
        deg = n.extras["degraded"]
        assert deg.dtype == torch.int64 and deg.shape == (o.num_samples,)
        counts = torch.bincount(deg, minlength=3)
        assert counts.max() - counts.min() <= 1  # globally balanced
        assert torch.equal(_changed(o, n), torch.nn.functional.one_hot(deg, 3).bool())
        assert torch.equal(n.extras["take"], o.extras["take"]) and torch.equal(n.labels, o.labels)
    assert not torch.equal(out.train.extras["degraded"][:30], out.val.extras["degraded"][:30])


def test_noise_statistics(base: DatasetSplits) -> None:
    s = 0.7
    out = debias(base, strength=s, mode="noise", seed=1)
    sigma = out.info["debias"]["noise_std"]["a"]
    assert abs(sigma - base.train.inputs["a"].std().item()) < 1e-6
    mask = out.train.extras["degraded"] == 0
    eps = (out.train.inputs["a"][mask] - (1 - s) * base.train.inputs["a"][mask]) / (s * sigma)
    assert abs(eps.std().item() - 1) < 0.15 and abs(eps.mean().item()) < 0.15


def test_strength_zero_is_identity_and_blank_one_zeros(base: DatasetSplits) -> None:
    same = debias(base, strength=0.0, seed=0)
    for k in SPLITS:
        for m in MODS:
            assert torch.equal(same.split(k).inputs[m], base.split(k).inputs[m])
    blank = debias(base, strength=1.0, mode="blank", seed=0)
    for i, m in enumerate(MODS):
        mask = blank.test.extras["degraded"] == i
        assert (blank.test.inputs[m][mask] == 0).all() and (blank.test.inputs[m][~mask] != 0).all()


def test_seeded_and_input_untouched(base: DatasetSplits) -> None:
    before = base.train.inputs["b"].clone()
    a, b = debias(base, seed=5), debias(base, seed=5)
    assert torch.equal(a.train.inputs["b"], b.train.inputs["b"])
    assert torch.equal(a.train.extras["degraded"], b.train.extras["degraded"])
    assert not torch.equal(debias(base, seed=6).train.extras["degraded"], a.train.extras["degraded"])
    assert torch.equal(base.train.inputs["b"], before) and "degraded" not in base.train.extras


def test_modalities_subset(base: DatasetSplits) -> None:
    out = debias(base, modalities=["c", "a"], seed=0)
    assert set(out.train.extras["degraded"].tolist()) == {0, 2}
    assert torch.equal(out.train.inputs["b"], base.train.inputs["b"])


def test_views_preserved(base: DatasetSplits) -> None:
    rows = torch.tensor([3, 1, 1])
    keep = torch.tensor([[True, False, True]] * 3)
    view = DatasetSplits("v", base.train.view(rows, keep), base.val, base.test, {})
    out = debias(view, seed=0)
    assert torch.equal(out.train.rows, rows) and torch.equal(out.train.keep, keep)
    assert out.train[1]["degraded"] == out.train.extras["degraded"][1]


def test_validation(base: DatasetSplits) -> None:
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        debias(base, strength=1.5)
    with pytest.raises(ConfigError, match="noise, blank"):
        debias(base, mode="mask")
    with pytest.raises(ConfigError, match="a, b, c"):
        debias(base, modalities=["z"])
    with pytest.raises(ConfigError, match="already debiased"):
        debias(debias(base))
