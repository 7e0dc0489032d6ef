"""ResNet-18 encoders of the paper: spectrogram (1-channel stem), frames (per frame + temporal pooling), flow.

The paper (CVPR 2024, Wei et al.) and its peers use ResNet-18 trained from scratch
for every modality (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation
``code/models/backbone.py`` ``resnet18(modality=...)`` and ``code/models/models.py``
``AVClassifier``; the same in GeWu-Lab/OGM-GE_CVPR2022 ``models/backbone.py`` /
``models/basic_model.py``):

- the torchvision ResNet-18 layout (7x7/2 stem, max-pool, 4 stages of 2 basic blocks,
  widths 64-128-256-512) without its average pool and classifier; the stem takes 1
  channel for ``audio``, 3 for ``visual`` and 2 for ``flow``;
- audio ``[B, 1, F, T]`` -> ``[B, 512, f, t]`` -> ``adaptive_avg_pool2d(1)`` -> ``[B, 512]``;
- visual ``[B, T, C, H, W]``: the official model permutes its ``[B, C, T, H, W]`` input to
  ``[B, T, C, H, W]`` and the backbone runs on the ``B*T`` frames as a batch ->
  ``[B*T, 512, h, w]``, viewed ``[B, T, 512, h, w]``, permuted to ``[B, 512, T, h, w]``,
  then ``adaptive_avg_pool3d(1)``: the mean over frames and space -> ``[B, 512]``;
- the fusion head sees the 512-d features (concat -> ``Linear(1024, C)``).

Initialisation: torchvision's (Kaiming-normal ``fan_out`` convolutions, BatchNorm
weight 1 and bias 0; OGM-GE's ``weight_init`` does the same). The CVPR 2024 backbone
draws BatchNorm weights from ``N(1, 0.02)`` instead: ``bn_weight_std=0.02``.

Convolutions run channels-last (weights and activations), which cuDNN and oneDNN
prefer; the function is the same. With ``dim != 512`` a linear projection follows the
pooling (``dim == 512``, the paper's width, has none).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.models import resnet18

from mmcoop.errors import ConfigError
from mmcoop.models.encoders import ENCODERS
from mmcoop.models.pretrained import projection

WIDTH = 512  # ResNet-18 feature width


def resnet18_trunk(in_channels: int, bn_weight_std: float = 0.0) -> nn.Sequential:
    """torchvision ResNet-18 (``weights=None``) up to ``layer4``, with an ``in_channels`` stem.

    Args:
        in_channels: input channels of the 7x7/2 stem (1 spectrogram, 3 RGB, 2 flow).
        bn_weight_std: if > 0, BatchNorm weights ~ ``N(1, bn_weight_std)`` (official CVPR 2024
            backbone: 0.02) instead of 1.

    Returns:
        ``nn.Sequential(conv1, bn1, relu, maxpool, layer1, ..., layer4)``: ``[N, C, H, W] -> [N, 512, H/32, W/32]``.
    """
    net = resnet18(weights=None)
    if in_channels != 3:
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    if bn_weight_std > 0:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, mean=1.0, std=bn_weight_std)
                nn.init.zeros_(m.bias)
    trunk = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool, net.layer1, net.layer2, net.layer3, net.layer4)
    return trunk.to(memory_format=torch.channels_last)


@ENCODERS.register("resnet18-spectrogram")
@ENCODERS.register("resnet18-image")
class ResNet18Spectrogram(nn.Module):
    """ResNet-18 on a spectrogram or image ``[B, C, H, W]`` -> ``[B, dim]`` (spatial mean, optional projection).

    Args:
        shape: per-sample shape ``[C, H, W]`` (``C = 1`` for the paper's spectrograms).
        dim: output width (512: no projection).
        bn_weight_std: see `resnet18_trunk`.
    """

    def __init__(self, shape: tuple[int, ...], dim: int = WIDTH, bn_weight_std: float = 0.0) -> None:
        super().__init__()
        if len(shape) != 3:
            raise ConfigError(f"resnet18-spectrogram expects a per-sample shape [C, H, W], got {list(shape)}")
        self.trunk = resnet18_trunk(int(shape[0]), bn_weight_std)
        self.proj = projection(WIDTH, dim)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        f = self.trunk(x.contiguous(memory_format=torch.channels_last))  # [B, 512, h, w]
        return self.proj(f.mean(dim=(2, 3)))


@ENCODERS.register("resnet18-frames")
class ResNet18Frames(nn.Module):
    """ResNet-18 on every frame of ``[B, T, C, H, W]``, mean over frames and space -> ``[B, dim]``.

    ``C = 3`` for RGB frames, ``C = 2`` for optical flow (u, v): the stem follows the shape.

    Args:
        shape: per-sample shape ``[T, C, H, W]``.
        dim: output width (512: no projection).
        bn_weight_std: see `resnet18_trunk`.
    """

    def __init__(self, shape: tuple[int, ...], dim: int = WIDTH, bn_weight_std: float = 0.0) -> None:
        super().__init__()
        if len(shape) != 4:
            raise ConfigError(f"resnet18-frames expects a per-sample shape [T, C, H, W], got {list(shape)}")
        self.trunk = resnet18_trunk(int(shape[1]), bn_weight_std)
        self.proj = projection(WIDTH, dim)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        b, t = x.shape[:2]
        f = self.trunk(x.flatten(0, 1).contiguous(memory_format=torch.channels_last))  # [B*T, 512, h, w]
        pooled = f.unflatten(0, (b, t)).mean(dim=(1, 3, 4))  # = adaptive_avg_pool3d over (T, h, w)
        return self.proj(pooled)
