"""ResNet-18 encoders: shapes, torchvision layout, gradients, channels-last, temporal pooling by hand."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import resnet18

import mmcoop.models.resnet  # noqa: F401 - registers the encoders
from mmcoop.errors import ConfigError
from mmcoop.models import ENCODERS, build_model
from mmcoop.models.resnet import ResNet18Frames, ResNet18Spectrogram

pytestmark = pytest.mark.usefixtures("one_thread")


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registered_and_shaped() -> None:
    assert ENCODERS.get("resnet18-spectrogram") is ResNet18Spectrogram
    assert ENCODERS.get("resnet18-image") is ResNet18Spectrogram
    assert ENCODERS.get("resnet18-frames") is ResNet18Frames
    torch.manual_seed(0)
    assert ResNet18Spectrogram((1, 32, 32))(torch.randn(2, 1, 32, 32)).shape == (2, 512)
    assert ResNet18Spectrogram((1, 32, 40), dim=64)(torch.randn(2, 1, 32, 40)).shape == (2, 64)
    assert ResNet18Frames((2, 3, 32, 32))(torch.randn(2, 2, 3, 32, 32)).shape == (2, 512)
    flow = ResNet18Frames((3, 2, 32, 32), dim=16)
    assert flow.trunk[0].in_channels == 2 and flow(torch.randn(2, 3, 2, 32, 32)).shape == (2, 16)
    with pytest.raises(ConfigError, match=r"\[T, C, H, W\]"):
        ResNet18Frames((3, 32, 32))


def test_torchvision_resnet18_layout_without_pool_and_fc() -> None:
    ref = resnet18(weights=None)
    trunk_params = n_params(ref) - n_params(ref.fc)  # 11,689,512 - 513,000
    assert trunk_params == 11_176_512
    assert n_params(ResNet18Frames((3, 3, 32, 32))) == trunk_params
    assert n_params(ResNet18Spectrogram((1, 32, 32))) == trunk_params - 64 * 2 * 7 * 7  # 1-channel stem
    assert n_params(ResNet18Frames((3, 2, 32, 32))) == trunk_params - 64 * 1 * 7 * 7  # 2-channel stem
    assert n_params(ResNet18Spectrogram((1, 32, 32), dim=64)) == trunk_params - 64 * 2 * 49 + 512 * 64 + 64


def test_stem_init_and_official_batchnorm_init() -> None:
    torch.manual_seed(0)
    enc = ResNet18Spectrogram((1, 32, 32))
    w = enc.trunk[0].weight
    assert w.std().item() == pytest.approx((2.0 / (64 * 7 * 7)) ** 0.5, rel=0.15)  # Kaiming fan_out, ReLU
    assert torch.equal(enc.trunk[1].weight, torch.ones(64))
    official = ResNet18Spectrogram((1, 32, 32), bn_weight_std=0.02)
    bn = torch.cat([m.weight for m in official.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert bn.mean().item() == pytest.approx(1.0, abs=0.005) and bn.std().item() == pytest.approx(0.02, rel=0.1)


def test_gradients_reach_every_parameter() -> None:
    torch.manual_seed(0)
    for enc, x in (
        (ResNet18Spectrogram((1, 32, 32), dim=8), torch.randn(2, 1, 32, 32)),
        (ResNet18Frames((2, 2, 32, 32), dim=8), torch.randn(2, 2, 2, 32, 32)),
    ):
        enc(x).square().sum().backward()
        for name, p in enc.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert enc.trunk[0].weight.grad.abs().sum() > 0


def test_channels_last_is_the_same_function() -> None:
    torch.manual_seed(0)
    enc = ResNet18Frames((2, 3, 32, 32)).eval()
    conv = enc.trunk[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    plain = copy.deepcopy(enc).to(memory_format=torch.contiguous_format)
    assert plain.trunk[0].weight.is_contiguous()
    x = torch.randn(2, 2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(enc(x), plain.trunk(x.flatten(0, 1)).unflatten(0, (2, 2)).mean((1, 3, 4)), atol=1e-5)


def test_temporal_pooling_is_the_mean_of_per_frame_features() -> None:
    torch.manual_seed(0)
    enc = ResNet18Frames((3, 3, 32, 32)).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        out = enc(x)
        per_frame = torch.stack([enc.trunk(x[:, t]).mean(dim=(2, 3)) for t in range(3)], dim=1)  # [B, T, 512]
        assert torch.allclose(out, per_frame.mean(1), atol=1e-5)
        # OGM-GE's formula: [B, 512, T, h, w] -> adaptive_avg_pool3d(1)
        f = enc.trunk(x.flatten(0, 1))
        ogm = F.adaptive_avg_pool3d(f.view(2, 3, *f.shape[1:]).permute(0, 2, 1, 3, 4), 1).flatten(1)
        assert torch.allclose(out, ogm, atol=1e-5)


def test_builds_the_papers_audio_visual_model() -> None:
    from mmcoop.data import ModalitySpec

    specs = [ModalitySpec("audio", "spectrogram", (1, 32, 32)), ModalitySpec("visual", "frames", (2, 3, 32, 32))]
    torch.manual_seed(0)
    model = build_model(specs, 5, dim=512, encoders={"audio": "resnet18-spectrogram", "visual": "resnet18-frames"})
    assert isinstance(model.encoders["audio"], ResNet18Spectrogram) and isinstance(
        model.encoders["visual"], ResNet18Frames
    )
    x = {"audio": torch.randn(2, 1, 32, 32), "visual": torch.randn(2, 2, 3, 32, 32)}
    model.eval()
    with torch.no_grad():
        feats = model.encode(x)  # [B, M, 512]
        assert feats.shape == (2, 2, 512)
        assert torch.allclose(feats[:, 0], model.encoders["audio"](x["audio"]), atol=1e-6)
        assert model(x).shape == (2, 5)
