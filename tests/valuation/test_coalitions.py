"""Coalition bitmask layout and naming."""

from __future__ import annotations

import pytest
import torch

from mmcoop.valuation import (
    coalition_masks,
    coalition_name,
    coalition_names,
    coalition_sizes,
    find_coalition,
    full_index,
    index_to_masks,
    masks_to_index,
    singleton_index,
)


@pytest.mark.parametrize("m", [1, 2, 3, 5, 12])
def test_masks_layout(m: int) -> None:
    masks = coalition_masks(m)
    assert masks.shape == (2**m, m) and masks.dtype == torch.bool
    assert not masks[0].any() and masks[-1].all()
    for c in [0, 1, 2**m - 1, (2**m) // 3]:
        for k in range(m):
            assert bool(masks[c, k]) == bool((c >> k) & 1)
    for k in range(m):
        assert masks[singleton_index(k)].nonzero().flatten().tolist() == [k]
    assert full_index(m) == 2**m - 1
    assert torch.equal(masks_to_index(masks), torch.arange(2**m))
    assert torch.equal(index_to_masks(torch.arange(2**m), m), masks)
    assert torch.equal(coalition_sizes(m), masks.sum(1))


def test_bad_m() -> None:
    with pytest.raises(ValueError):
        coalition_masks(0)


def test_names() -> None:
    assert coalition_names(["audio", "visual"]) == ["empty", "audio", "visual", "audio+visual"]
    assert coalition_name(torch.tensor([True, False, True]), ["a", "b", "c"]) == "a+c"
    masks = coalition_masks(3)
    assert find_coalition(masks, [0, 2]) == 5
    assert find_coalition(masks, []) == 0
    with pytest.raises(KeyError):
        find_coalition(masks[:4], [2])
