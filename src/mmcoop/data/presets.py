"""Presets: the published training settings of a dataset, registered beside the dataset.

A dataset module calls `register_preset` with the dataset's part of the published
recipe (reader options, class count, model, optimiser and schedule, the source cited);
`mmcoop.experiment.presets` adds the methods' options and lays a user's config over it
(``mmcoop train --preset NAME``). `PRESETS` imports the dataset modules on first
read, so a new dataset brings its preset with it (no list to edit).

The shared recipes are here so that every dataset cites the same numbers:
`PAPER_TRAIN` (the CVPR 2024 code), `PEER_TRAIN` (OGM-GE / PMR) and
`BALANCE_TRAIN` (BalanceBenchmark), and
`resnet18_model` (ResNet-18 encoders per modality, 512-d features, concat fusion).
"""

from __future__ import annotations

import copy
from typing import Any

from mmcoop.utils.registry import Registry

#: preset name -> ``{"dataset", "dataset_options", "num_classes", "train", "model", "source"}``.
PRESETS: Registry[dict[str, Any]] = Registry("preset", builtins="mmcoop.datasets")

PAPER_SOURCE = (
    "GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation code/sample_level.py, "
    "code/modality_level.py, code/baseline.py argument defaults; code/models/backbone.py"
)
OGMGE_SOURCE = "GeWu-Lab/OGM-GE_CVPR2022 main.py argument defaults and README.md (alpha), utils/utils.py weight_init"
PMR_SOURCE = "fanyunfeng-bit/Modal-Imbalance-PMR main_CE_test_grad.py argument defaults and bash.sh (AVE runs)"

#: The CVPR 2024 code's optimiser and schedule (Adam 5e-5, weight decay 1e-4, StepLR 30 x 0.1, 60 epochs, batch 64).
PAPER_TRAIN = {
    "optimizer": "adam",
    "lr": 5e-5,
    "weight_decay": 1e-4,
    "step_size": 30,
    "gamma": 0.1,
    "epochs": 60,
    "batch_size": 64,
}
#: OGM-GE / PMR: SGD 1e-3, momentum 0.9, weight decay 1e-4, StepLR 70 x 0.1, 100 epochs, batch 64.
PEER_TRAIN = {
    "optimizer": "sgd",
    "lr": 1e-3,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "step_size": 70,
    "gamma": 0.1,
    "epochs": 100,
    "batch_size": 64,
}
#: BalanceBenchmark (GeWu-Lab/BalanceBenchmark 4c1482f, configs/global_config.yaml, every dataset): AdamW 1e-3,
#: weight decay 0.01, StepLR 10 x 0.1, 30 epochs, effective batch 32.
BALANCE_TRAIN = {
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 0.01,
    "step_size": 10,
    "gamma": 0.1,
    "epochs": 30,
    "batch_size": 32,
}
#: audio spectrogram + RGB frames, the encoders of the audio-visual datasets.
AUDIO_VISUAL = {"audio": "resnet18-spectrogram", "visual": "resnet18-frames"}


def resnet18_model(modalities: dict[str, str], bn_weight_std: float) -> dict[str, Any]:
    """``late-fusion`` with ResNet-18 encoders per modality, 512-d features, concat fusion.

    Args:
        modalities: modality -> encoder name.
        bn_weight_std: BatchNorm weights ``N(1, std)`` (the CVPR 2024 code: 0.02; 0: weight 1).

    Returns:
        a RunConfig ``model`` dict.
    """
    options: dict[str, Any] = {"encoders": dict(modalities)}
    if bn_weight_std:
        options["encoder_options"] = {m: {"bn_weight_std": bn_weight_std} for m in modalities}
    return {"name": "late-fusion", "dim": 512, "fusion": "concat", "options": options}


def register_preset(
    dataset: str,
    *,
    num_classes: int,
    train: dict[str, Any],
    model: dict[str, Any],
    source: str,
    num_frames: int | None = None,
    dataset_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register the preset of ``dataset`` (same name): its reader options and the published settings.

    Args:
        dataset: the dataset's registered name (also the preset's).
        num_frames: frames per clip of a video dataset (sets ``num_frames`` and ``image_size: 224``).
        dataset_options: further reader options (e.g. of a dataset without frames).
        num_classes: the class count of the published split (a warning at load when the data has another).
        train: optimiser and schedule (``PAPER_TRAIN``, ``PEER_TRAIN``).
        model: a RunConfig ``model`` dict (`resnet18_model`).
        source: where the numbers come from.

    Returns:
        the registered preset.

    Example:
        >>> register_preset("my-clips", num_frames=3, num_classes=10, train=PAPER_TRAIN,  # doctest: +SKIP
        ...                 model=resnet18_model(AUDIO_VISUAL, 0.02), source="my paper")
    """
    preset = {
        "dataset": dataset,
        "dataset_options": {
            **({"num_frames": num_frames, "image_size": 224} if num_frames is not None else {}),
            **copy.deepcopy(dataset_options or {}),
        },
        "num_classes": num_classes,
        "train": copy.deepcopy(train),
        "model": copy.deepcopy(model),
        "source": source,
    }
    return PRESETS.register(dataset)(preset)
