"""What the pretrained-backbone adapters (``tv:``, ``timm:``, ``hf:``) share.

- local files only: a weights file or model folder that is missing stops with one
  `ConfigError` saying where it was looked for (nothing is downloaded);
- checkpoints as people save them: a bare ``state_dict``, or a dict holding it under
  ``state_dict`` / ``model``, keys optionally prefixed ``module.`` (DDP);
- `ImageBackbone`: a backbone mapping ``[N, 3, H, W]`` (or its own channel count)
  to pooled features ``[N, W]``, run on images / spectrograms ``[B, C, H, W]`` and on
  frame stacks ``[B, T, C, H, W]`` (mean over frames), a 1-channel input repeated to the
  backbone's 3 channels, then projected to ``dim`` (none when ``W == dim``).

The backbone sits in the ``backbone`` attribute, which is what ``freeze`` freezes
(`freeze_encoder`); the projection stays trainable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import Tensor, nn

from mmcoop.errors import ConfigError


def projection(width: int, dim: int) -> nn.Module:
    """``Identity`` when ``width == dim``, else ``Linear(width, dim)``.

    Raises:
        ConfigError: ``dim`` is not a positive integer.
    """
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ConfigError(f"encoder dim must be a positive integer, got {dim!r}")
    return nn.Identity() if int(width) == dim else nn.Linear(int(width), dim)


def building_on_meta() -> bool:
    """True while modules are built on the meta device (the model-size estimate): adapters
    then build the architecture only and read no weights file."""
    return bool(torch.empty(0).is_meta)


def local_path(path: str | os.PathLike, what: str, folder: bool = False) -> Path:
    """``path`` (``~`` expanded) if that file (or, with ``folder``, directory) exists.

    Args:
        path: where the user said the weights are.
        what: who needs it, for the message (e.g. ``"encoder 'tv:resnet18' weights"``).
        folder: a directory is expected instead of a file.

    Raises:
        ConfigError: nothing there, naming the absolute path looked at.
    """
    p = Path(path).expanduser()
    ok = p.is_dir() if folder else p.is_file()
    if not ok:
        kind = "folder" if folder else "file"
        raise ConfigError(
            f"{what}: {kind} not found (looked for {p.resolve()}); mmcoop never downloads weights at run time: "
            f"put the {kind} there or fix the path"
        )
    return p


def read_state_dict(path: Path, what: str) -> dict[str, Tensor]:
    """The tensors of checkpoint ``path`` (``torch.load(weights_only=True)``), unwrapped.

    A dict holding a dict under ``state_dict`` or ``model`` is unwrapped; a leading
    ``module.`` on every key (a DDP save) is dropped.

    Raises:
        ConfigError: unreadable, or not a mapping of tensors.
    """
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets one message naming it
        raise ConfigError(f"{what}: cannot read weights file {path} ({type(e).__name__}: {e})") from None
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{what}: {path} holds no state_dict (a mapping of parameter names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_weights(module: nn.Module, state: dict[str, Tensor], path: Path, what: str, ignore: Iterable[str]) -> None:
    """Load ``state`` into ``module``; keys under the prefixes ``ignore`` (a classifier) may be absent or extra.

    Raises:
        ConfigError: other missing or unexpected keys, or shapes that differ (a few named).
    """
    skip = tuple(f"{p}." for p in ignore)
    state = {k: v for k, v in state.items() if not k.startswith(skip)}
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ConfigError(f"{what}: weights in {path} do not fit the model ({str(e)[:400]})") from None
    missing = [k for k in result.missing_keys if not k.startswith(skip)]
    if missing or result.unexpected_keys:
        raise ConfigError(
            f"{what}: weights in {path} do not fit the model: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
            f"unexpected {result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}; "
            "save the state_dict of the same architecture"
        )


class ImageBackbone(nn.Module):
    """A pooled image backbone on images/spectrograms ``[B, C, H, W]`` or frames ``[B, T, C, H, W]`` -> ``[B, dim]``.

    Args:
        backbone: ``[N, in_chans, H, W] -> [N, width]``.
        width: the backbone's feature width.
        in_chans: channels the backbone takes.
        shape: the modality's per-sample shape (3 dims: image/spectrogram, 4: frames).
        dim: output width.
        what: the encoder's name, for messages.

    Raises:
        ConfigError: a shape of another rank, or channels that are neither ``in_chans`` nor 1.
    """

    def __init__(self, backbone: nn.Module, width: int, in_chans: int, shape: tuple[int, ...], dim: int, what: str):
        super().__init__()
        if len(shape) not in (3, 4):
            raise ConfigError(
                f"{what} encodes images [C, H, W] or frames [T, C, H, W]; got a per-sample shape {list(shape)}"
            )
        c = int(shape[-3])
        if c not in (in_chans, 1):
            raise ConfigError(f"{what} takes {in_chans} input channels (or 1, repeated); the modality has {c}")
        self.backbone = backbone
        self.repeat = in_chans if c == 1 and in_chans != 1 else 1
        self.frames = len(shape) == 4
        self.proj = projection(width, dim)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        if self.frames:
            x = x.flatten(0, 1)  # [B*T, C, H, W]
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, -1, -1)
        f = self.backbone(x)  # [N, width]
        if self.frames:
            f = f.unflatten(0, (b, -1)).mean(1)  # mean over frames
        return self.proj(f)
