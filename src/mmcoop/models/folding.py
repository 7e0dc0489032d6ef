"""Inference copies with BatchNorm folded into the preceding convolution or linear layer.

In eval mode a BatchNorm is a fixed per-channel affine map, so ``BN(conv(x))`` is
itself a convolution with rescaled weights and a shifted bias. Folding removes one
full pass over every activation tensor: on the CPU the avmnist CNN encoders inferred
1.4-2x faster folded (``benchmarks/valuation.py``). The folded copy computes the
same function; only float rounding differs (features agree to about 1e-7).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

_CONV_PAIRS: tuple[tuple[type[nn.Module], type[nn.Module]], ...] = (
    (nn.Conv1d, nn.BatchNorm1d),
    (nn.Conv2d, nn.BatchNorm2d),
    (nn.Conv3d, nn.BatchNorm3d),
)
_LINEAR_PAIR = (nn.Linear, nn.BatchNorm1d)


def _foldable(layer: nn.Module, norm: nn.Module, linear: bool) -> bool:
    pairs = _CONV_PAIRS + ((_LINEAR_PAIR,) if linear else ())
    if not any(type(layer) is a and type(norm) is b for a, b in pairs):
        return False
    return bool(norm.track_running_stats and norm.running_mean is not None and norm.running_var is not None)


def _pairs(model: nn.Module, linear: bool) -> list[tuple[nn.Sequential, int]]:
    """``(sequential, i)`` for every foldable ``seq[i], seq[i + 1]`` pair in ``model``."""
    return [
        (seq, i)
        for seq in model.modules()
        if isinstance(seq, nn.Sequential)
        for i in range(len(seq) - 1)
        if _foldable(seq[i], seq[i + 1], linear)
    ]


def inference_model(model: nn.Module, fold: bool = True, linear: bool = False) -> nn.Module:
    """What evaluation and valuation run: `fold_batchnorm`'s copy when ``fold`` and
    ``model`` has something to fold, else ``model`` itself (the caller sets eval mode)."""
    return fold_batchnorm(model, linear=linear) if fold and _pairs(model, linear) else model


def _shallow_clone(module: nn.Module) -> nn.Module:
    """A copy of the module tree whose modules are new objects (own ``training`` flags,
    own child/parameter tables) that share every parameter and buffer tensor."""
    clone = type(module).__new__(type(module))
    clone.__dict__.update(module.__dict__)  # attributes (training flag, hyper-parameters) by value
    clone._parameters = dict(module._parameters)  # type: ignore[assignment]
    clone._buffers = dict(module._buffers)  # type: ignore[assignment]
    clone._modules = {k: None if v is None else _shallow_clone(v) for k, v in module._modules.items()}  # type: ignore[assignment]
    return clone


def fold_batchnorm(model: nn.Module, linear: bool = False) -> nn.Module:
    """An eval-mode copy of ``model`` with each BatchNorm that directly follows a
    ``Conv{1,2,3}d`` (and, with ``linear=True``, a ``Linear``) inside an
    ``nn.Sequential`` folded into that layer.

    ``Linear`` + ``BatchNorm1d`` is left alone by default: for the mfeat MLPs (batches of
    ``[512, 128]``) folding saved about as much per pass as building the copy cost.

    The BatchNorm is replaced by ``nn.Identity`` (indices stay valid) and folded
    convolutions keep the original weights' memory format. The copy's modules are new
    objects, but every layer that is not folded shares its parameter tensors with
    ``model`` (nothing is copied but the folded layers: building it takes well under a
    millisecond for the built-in models), so use it under ``torch.no_grad()`` and rebuild
    it whenever the weights or running statistics change. ``model`` itself, including
    its train/eval modes, is not modified.

    Args:
        model: any module (usually a `MultimodalClassifier`).
        linear: also fold ``Linear`` + ``BatchNorm1d`` pairs.

    Returns:
        The folded copy, in eval mode, on the same device.

    Example:
        >>> fast = fold_batchnorm(model)
        >>> with torch.no_grad():
        ...     feats = fast.encode(batch["inputs"])     # same features, fewer passes
    """
    net = _shallow_clone(model)
    with torch.no_grad():
        for seq, i in _pairs(net, linear):
            layer, norm = seq[i], seq[i + 1]
            fuse = fuse_linear_bn_weights if isinstance(layer, nn.Linear) else fuse_conv_bn_weights
            w, b = fuse(
                layer.weight,
                layer.bias,
                norm.running_mean,
                norm.running_var,
                norm.eps,  # type: ignore[operator]
                norm.weight,
                norm.bias,
            )
            # `layer` is the clone's own object with its own parameter table, so this does
            # not touch ``model``; the elementwise product keeps channels-last weights
            layer.weight = nn.Parameter(w.detach(), requires_grad=False)
            layer.bias = nn.Parameter(b.detach(), requires_grad=False)
            seq[i + 1] = nn.Identity()
    return net.eval()
