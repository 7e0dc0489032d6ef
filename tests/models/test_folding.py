"""BatchNorm folding: the folded inference copy computes the same function, faster, and
leaves the trained model alone."""

import torch
from torch import nn

from mmcoop.data.base import ModalitySpec, MultimodalDataset
from mmcoop.models import build_model, fold_batchnorm, inference_model
from mmcoop.valuation import valuate_dataset

import _helpers


def _trained_bn_model() -> nn.Module:
    """A CNN + MLP model whose BatchNorm layers hold non-trivial running statistics and affine weights."""
    torch.manual_seed(0)
    specs = [ModalitySpec("img", "image", (1, 12, 10)), ModalitySpec("vec", "vector", (7,))]
    model = build_model(specs, num_classes=4, dim=8)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
    model.train()
    for _ in range(3):  # running statistics from real forward passes, with an offset and scale
        model({"img": 2.0 + 3.0 * torch.randn(16, 1, 12, 10), "vec": -1.0 + 0.5 * torch.randn(16, 7)})
    return model


def test_folded_copy_matches_the_model_in_eval_mode():
    model = _trained_bn_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model, linear=True)
    assert all(not m.training for m in folded.modules()) and all(m.training for m in model.modules())
    x = {"img": 2.0 + 3.0 * torch.randn(5, 1, 12, 10), "vec": -1.0 + 0.5 * torch.randn(5, 7)}
    model.eval()
    with torch.no_grad():
        want, got = model.encode(x), folded.encode(x)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-5)
    assert torch.allclose(folded.fuse(got), model.fuse(want), atol=1e-5, rtol=1e-5)
    # every BatchNorm was folded away; conv weights keep the channels-last layout
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    convs = [m for m in folded.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    # unfolded layers share their tensors with the model (nothing copied); folded ones are new
    assert folded.encoders["vec"].net[4].weight is model.encoders["vec"].net[4].weight
    assert folded.encoders["img"].body[0].weight is not model.encoders["img"].body[0].weight
    # the trained model is untouched
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_only_batchnorm_right_after_conv_or_linear_is_folded():
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2), nn.BatchNorm1d(2))
    net.eval()
    for bn in (net[2], net[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
    assert isinstance(fold_batchnorm(net)[4], nn.BatchNorm1d)  # Linear + BN1d only when asked
    folded = fold_batchnorm(net, linear=True)
    assert isinstance(folded[2], nn.BatchNorm1d)  # follows a ReLU: kept
    assert isinstance(folded[4], nn.Identity)  # follows a Linear: folded
    x = torch.randn(6, 3)
    with torch.no_grad():
        assert torch.allclose(folded(x), net(x), atol=1e-6)


def test_valuation_is_the_same_with_and_without_folding():
    model = _trained_bn_model()
    g = torch.Generator().manual_seed(1)
    inputs = {"img": 2.0 + 3.0 * torch.randn(40, 1, 12, 10, generator=g), "vec": torch.randn(40, 7, generator=g)}
    specs = [ModalitySpec("img", "image", (1, 12, 10)), ModalitySpec("vec", "vector", (7,))]
    data = MultimodalDataset(inputs, torch.randint(0, 4, (40,), generator=g), 4, specs)
    plain = valuate_dataset(model, data, batch_size=16, fold_bn=False)
    folded = valuate_dataset(model, data, batch_size=16)  # default: folded copy
    assert torch.equal(plain.coalition_preds, folded.coalition_preds)
    assert torch.equal(plain.phi, folded.phi)
    assert all(m.training for m in model.modules())  # the caller's model and modes are untouched


def test_inference_model_folds_convolutions_only_when_there_are_some():
    model = _trained_bn_model()
    net = inference_model(model)
    assert net is not model and isinstance(net.encoders["img"].body[1], nn.Identity)
    assert isinstance(net.encoders["vec"].net[1], nn.BatchNorm1d)  # default: Linear + BN1d kept
    assert inference_model(model, fold=False) is model
    mlp_only = _helpers.tiny_model(_helpers.tiny_data(n=12))
    assert inference_model(mlp_only) is mlp_only  # nothing to fold: no copy
