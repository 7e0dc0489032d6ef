"""Per-modality encoders: input tensor -> pooled feature ``[B, d]``.

Registered by modality kind (``ENCODERS.get("image")``), so a dataset's
`ModalitySpec` decides which encoder is built.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mmcoop.utils.registry import Registry

#: Per-modality encoders by name (built-ins in any module of `mmcoop.models`, e.g. the
#: ResNet-18s in `mmcoop.models.resnet`, imported on first read).
ENCODERS: Registry[type[nn.Module]] = Registry("encoder", builtins="mmcoop.models")


@ENCODERS.register("image")
@ENCODERS.register("spectrogram")
class CNNEncoder(nn.Module):
    """Small CNN for images and spectrograms ``[B, C, H, W]`` -> ``[B, dim]`` (kinds ``image``,
    ``spectrogram``).

    Conv(3x3)-BN-ReLU-MaxPool blocks of widths ``widths``, global average pooling,
    then a linear projection to ``dim``.

    Convolutions run in the channels-last memory format (weights and activations):
    on CPU (oneDNN) this made training about 1.5x and inference about 2x faster for
    the avmnist encoders (``benchmarks/valuation.py``), and cuDNN prefers it too.
    Results are the same function; only the memory layout differs.
    """

    def __init__(self, shape: tuple[int, ...], dim: int = 64, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        c = shape[0]
        layers: list[nn.Module] = []
        for w in widths:
            layers += [
                nn.Conv2d(c, w, 3, padding=1, bias=False),
                nn.BatchNorm2d(w),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            c = w
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Linear(c, dim)
        self.out_dim = dim
        self.body.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        return self.proj(self.pool(self.body(x)).flatten(1))


@ENCODERS.register("vector")
class MLPEncoder(nn.Module):
    """MLP for feature vectors ``[B, D]`` -> ``[B, dim]`` (Linear-BN-ReLU-Dropout, then Linear)."""

    def __init__(self, shape: tuple[int, ...], dim: int = 64, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(shape[0], hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
        )
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@ENCODERS.register("sequence")
class SequenceEncoder(nn.Module):
    """Sequences ``[B, T, D]`` -> ``[B, dim]``: two 1-D convolutions over time (kernel 3,
    BatchNorm, ReLU), mean over time, then a linear projection."""

    def __init__(self, shape: tuple[int, ...], dim: int = 64, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(shape[1], hidden, 3, padding=1, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 3, padding=1, bias=False),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
        )
        self.proj = nn.Linear(hidden, dim)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(self.net(x.transpose(1, 2)).mean(-1))


@ENCODERS.register("frames")
class FramesEncoder(nn.Module):
    """Frame stacks ``[B, T, C, H, W]`` -> ``[B, dim]``: the `CNNEncoder` body on every
    frame, then the mean over frames and space (OGM-GE's temporal pooling), then a projection."""

    def __init__(self, shape: tuple[int, ...], dim: int = 64, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        self.frame = CNNEncoder(tuple(shape[1:]), dim=dim, widths=widths)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        b, t = x.shape[:2]
        f = self.frame.body(x.flatten(0, 1).contiguous(memory_format=torch.channels_last))  # [B*T, c, h, w]
        pooled = f.unflatten(0, (b, t)).mean(dim=(1, 3, 4))  # mean over frames and space
        return self.frame.proj(pooled)
