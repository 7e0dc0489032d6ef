import pytest
import torch

from mmcoop.data import ModalitySpec
from mmcoop.models import build_model

SPECS = [ModalitySpec("a", "vector", (5,)), ModalitySpec("b", "vector", (3,)), ModalitySpec("c", "image", (1, 8, 8))]


def _inputs(b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "a": torch.randn(b, 5, generator=g),
        "b": torch.randn(b, 3, generator=g),
        "c": torch.randn(b, 1, 8, 8, generator=g),
    }


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_keep_mask_zeroes_removed_features(fusion):
    torch.manual_seed(0)
    model = build_model(SPECS, 4, dim=6, fusion=fusion).eval()
    x = _inputs()
    feats = model.encode(x)
    assert feats.shape == (6, 3, 6)
    keep = torch.tensor([True, False, True])
    by_mask = model.fuse(feats, keep)
    manual = feats.clone()
    manual[:, 1] = 0
    assert torch.allclose(by_mask, model.head.fuse(manual), atol=1e-6)
    # all kept == no mask
    assert torch.allclose(model.fuse(feats, torch.ones(3, dtype=torch.bool)), model.fuse(feats))


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_coalition_logits_fast_path_matches_generic(fusion):
    torch.manual_seed(1)
    model = build_model(SPECS, 4, dim=6, fusion=fusion).eval()
    feats = model.encode(_inputs())
    masks = torch.tensor([[(c >> k) & 1 for k in range(3)] for c in range(8)], dtype=torch.bool)
    fast = model.head.coalition_logits(feats, masks)
    slow = torch.stack([model.fuse(feats, masks[c]) for c in range(8)], dim=1)
    assert torch.allclose(fast, slow, atol=1e-5)
    fill = torch.randn(3, 6)
    fast = model.head.coalition_logits(feats, masks, fill)
    slow = torch.stack([model.head(feats, masks[c], fill) for c in range(8)], dim=1)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_encode_skips_encoders_of_removed_modalities():
    torch.manual_seed(2)
    model = build_model(SPECS, 4, dim=6).eval()
    calls = {}
    for name, enc in model.encoders.items():
        enc.register_forward_hook(lambda m, i, o, n=name: calls.setdefault(n, []).append(i[0].shape[0]))
    x = _inputs(b=5)
    keep = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]], dtype=torch.bool)
    feats = model.encode(x, keep)
    assert calls == {"a": [3], "b": [2], "c": [2]}
    full = model.encode(x)
    assert torch.allclose(feats[keep], full[keep], atol=1e-6)
    assert torch.all(feats[~keep] == 0)


def test_encode_single_training_row_with_batchnorm():
    torch.manual_seed(3)
    model = build_model(SPECS, 4, dim=6).train()
    keep = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 0, 1]], dtype=torch.bool)
    feats = model.encode(_inputs(b=3), keep)
    assert torch.isfinite(feats).all() and feats.shape == (3, 3, 6)


def test_unknown_fusion_lists_valid():
    with pytest.raises(Exception, match="valid fusions: concat, film, gated, sum"):
        build_model(SPECS, 4, fusion="attention")


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_coalition_logits_per_sample_masks(fusion):
    torch.manual_seed(4)
    model = build_model(SPECS, 4, dim=6, fusion=fusion).eval()
    feats = model.encode(_inputs(b=5))
    masks = torch.rand(5, 7, 3, generator=torch.Generator().manual_seed(0)) < 0.5  # [B, K, M]
    fill = torch.randn(3, 6)
    for f in (None, fill):
        got = model.head.coalition_logits(feats, masks, f)
        want = torch.stack(
            [torch.stack([model.head(feats[i : i + 1], masks[i, j], f)[0] for j in range(7)]) for i in range(5)]
        )
        assert torch.allclose(got, want, atol=1e-5)


def test_encode_with_nothing_kept_uses_model_dtype():
    model = build_model(SPECS[:2], 3, dim=4).double().eval()
    x = {k: v.double() for k, v in _inputs(b=2).items() if k in ("a", "b")}
    feats = model.encode(x, torch.zeros(2, 2, dtype=torch.bool))
    assert feats.dtype == torch.float64 and torch.all(feats == 0)
