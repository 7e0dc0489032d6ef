"""debias over lazy sources: degradation at fetch time, seeded, same rule as in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmcoop.data import ArraySource, DatasetSplits, ModalitySpec, MultimodalDataset, check_finite, debias
from mmcoop.data.degraded_source import hash32, hashed_normal
from mmcoop.errors import ConfigError, DataError

SPECS = [ModalitySpec("a", "vector", (40,)), ModalitySpec("b", "image", (1, 6, 6))]


def _lowbias32(x: int) -> int:
    """Reference (plain Python, 32-bit wrap-around) of Wellons' lowbias32."""
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    x ^= x >> 16
    return x


def test_hash32_matches_reference() -> None:
    xs = [0, 1, 2, 12345, 0xFFFFFFFF, 0x80000000, 2**40 + 7]
    assert hash32(torch.tensor(xs)).tolist() == [_lowbias32(x) for x in xs]


def test_hashed_normal_is_per_row_and_standard() -> None:
    rows = torch.tensor([5, 9, 5, 2**40])
    z = hashed_normal(7, rows, (3, 4))
    assert z.shape == (4, 3, 4) and z.dtype == torch.float32
    assert torch.equal(z[0], z[2]) and not torch.equal(z[0], z[1])  # depends on the row only
    assert torch.equal(hashed_normal(7, rows[[1]], (3, 4))[0], z[1])  # not on the batch
    assert not torch.equal(hashed_normal(8, rows, (3, 4)), z)
    big = hashed_normal(0, torch.arange(400), (250,)).double()
    assert abs(big.mean().item()) < 0.01 and abs(big.std().item() - 1) < 0.01  # 100k draws: se ~0.003
    assert abs((big > 1.96).double().mean().item() - 0.025) < 0.003


@pytest.fixture
def pair() -> tuple[DatasetSplits, DatasetSplits]:
    """The same data as in-memory splits and as ArraySource splits."""
    g = torch.Generator().manual_seed(0)

    def arrays(n: int):
        x = {s.name: 2.0 * torch.randn((n, *s.shape), generator=g) + 1.0 for s in SPECS}
        return x, torch.arange(n) % 3

    parts = [arrays(n) for n in (300, 40, 50)]
    mem = [MultimodalDataset(x, y, 3, SPECS) for x, y in parts]
    lazy = [
        MultimodalDataset.from_source(ArraySource({k: v.numpy() for k, v in x.items()}, y.numpy(), 3, SPECS))
        for x, y in parts
    ]
    return DatasetSplits("toy", *mem, {}), DatasetSplits("toy", *lazy, {})


def _all(ds: MultimodalDataset) -> dict:
    return ds.__getitems__(torch.arange(ds.num_samples))


def test_lazy_debias_same_assignment_and_rule(pair) -> None:
    mem, lazy = pair
    s = 0.6
    dm, dl = debias(mem, strength=s, seed=4), debias(lazy, strength=s, seed=4, sigma_samples=300)
    assert dl.info["debias"]["noise_std"] == pytest.approx(dm.info["debias"]["noise_std"], rel=1e-6)
    assert dl.info["debias"]["noise_std_samples"] == 300
    for k in ("train", "val", "test"):
        m, l, base = dm.split(k), dl.split(k), lazy.split(k)
        assert torch.equal(l.extras["degraded"], m.extras["degraded"])  # same seeded assignment
        got, orig = _all(l), _all(base)
        assert torch.equal(got["degraded"], m.extras["degraded"])
        for i, spec in enumerate(SPECS):
            hit = got["degraded"] == i
            x, x0 = got["inputs"][spec.name], orig["inputs"][spec.name]
            assert torch.equal(x[~hit], x0[~hit])  # other samples untouched
            eps = (x[hit] - (1 - s) * x0[hit]) / (s * dl.info["debias"]["noise_std"][spec.name])
            assert abs(eps.mean().item()) < 0.1 and abs(eps.std().item() - 1) < 0.1
    # fetched in any order, batch or view: the same values (seeded per sample)
    a = dl.train.__getitems__([7, 3, 250])["inputs"]["a"]
    b = dl.train.view(torch.tensor([250, 3, 7])).__getitems__([2, 1, 0])["inputs"]["a"]
    assert torch.equal(a, b)
    assert torch.equal(
        debias(lazy, strength=s, seed=4).train.__getitems__([7])["inputs"]["b"],
        dl.train.__getitems__([7])["inputs"]["b"],
    )
    assert not torch.equal(
        debias(lazy, strength=s, seed=5).train.__getitems__(list(range(20)))["inputs"]["a"],
        _all(dl.train)["inputs"]["a"][:20],
    )


def test_lazy_debias_blank_and_views(pair) -> None:
    _, lazy = pair
    rows, keep = torch.tensor([4, 4, 1]), torch.tensor([[True, False], [False, True], [True, True]])
    view = DatasetSplits("v", lazy.train.view(rows, keep).train_mode(True), lazy.val, lazy.test, {})
    out = debias(view, strength=1.0, mode="blank", seed=0, modalities=["b"])
    assert torch.equal(out.train.rows, rows) and torch.equal(out.train.keep, keep) and out.train.train
    got = _all(out.test)
    hit = got["degraded"] == 1
    assert set(got["degraded"].tolist()) == {1} and bool(hit.all())
    assert (got["inputs"]["b"] == 0).all() and torch.equal(got["inputs"]["a"], _all(lazy.test)["inputs"]["a"])
    with pytest.raises(ConfigError, match="already debiased"):
        debias(out)


def test_check_finite_samples_lazy_sources(pair) -> None:
    _, lazy = pair
    check_finite(lazy)
    x = {s.name: np.ones((30, *s.shape), np.float32) for s in SPECS}
    x["b"][29, 0, 2, 2] = np.nan  # the last row is always among the evenly spaced samples
    bad = MultimodalDataset.from_source(ArraySource(x, np.zeros(30, np.int64), 2, SPECS))
    splits = DatasetSplits("nan", lazy.train, bad, lazy.test, {"source": "/x"})
    with pytest.raises(
        DataError,
        match=r"1 val sample\(s\) have NaN/inf 'b' inputs \(first: sample 29\) "
        r"\(checked 5 of 30 samples\)",
    ):
        check_finite(splits, lazy_samples=5)
    check_finite(splits, lazy_samples=0)  # skipped
