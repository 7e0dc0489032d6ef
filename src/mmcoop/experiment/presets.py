"""Presets: the published training settings per dataset, as RunConfig-shaped dicts.

A preset holds the dataset (and its reader options), the model (ResNet-18 encoders,
512-d features, concat fusion), the optimiser and schedule, and per-method options.
:func:`preset_config` picks the options of one method and returns a plain dict in
:class:`~mmcoop.experiment.config.RunConfig` shape; :func:`apply_preset` lays a user's
config dict over it (the user's keys win), so ``--preset NAME`` plus overrides gives a
config that records every number in ``config.yaml``.

Where the numbers come from (each preset's ``source`` says the same):

- **CVPR 2024 paper's code** (GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation,
  ``code/baseline.py``, ``code/sample_level.py``, ``code/modality_level.py``
  ``get_arguments`` defaults and ``main``): Adam (betas 0.9/0.999, eps 1e-8,
  ``weight_decay=1e-4``), ``--learning_rate 5e-05``, ``StepLR(--lr_decay_step 30,
  --lr_decay_ratio 0.1)``, ``--epochs 60``, ``--batch_size 64``, ``--warmup 5``,
  modality-level ``--part_ratio 0.2 --alpha 1`` with the linear ratio, ``--n_classes 31``
  (Kinetics-Sounds); ResNet-18 audio (1-channel stem) and visual encoders with BatchNorm
  weights ``N(1, 0.02)`` (``code/models/backbone.py``), concat fusion of 512 + 512.
  The released code covers Kinetics-Sounds only; MM-Debiased and UCF-101 reuse its
  settings (the README sends MM-Debiased users to the same pipeline); the paper's text
  was not available to check other numbers for them.
- **OGM-GE** (GeWu-Lab/OGM-GE_CVPR2022 ``main.py`` defaults and ``README.md``): SGD
  (momentum 0.9, ``weight_decay=1e-4``), ``--learning_rate 0.001``,
  ``StepLR(--lr_decay_step 70, 0.1)``, ``--epochs 100``, ``--batch_size 64``,
  ``--fps 1`` (CREMA-D: 1 frame), ``--use_video_frames 3`` (VGGSound), OGM-GE modulation
  epochs 0-50, recommended ``alpha`` 0.8 (CREMA-D) and 0.1 (VGGSound); ``weight_init``:
  BatchNorm weight 1.
- **PMR** (fanyunfeng-bit/Modal-Imbalance-PMR ``main_CE_test_grad.py`` defaults and
  ``bash.sh`` AVE runs): SGD (momentum 0.9, ``weight_decay=1e-4``), ``--learning_rate
  0.001`` (bash), ``StepLR(70, 0.1)``, ``--epochs 100``, ``--batch_size 64``,
  ``--num_frame 4`` (the AVE prototype runs; other AVE runs use 3 frames and 130-150 epochs).

A method's options per preset live beside the method (:meth:`mmcoop.methods.Method.preset_options`):
the CVPR 2024 options (``warmup`` 5, ``part_ratio`` 0.2, ``alpha`` 1) for the paper's two methods
on every dataset, OGM-GE's ``alpha`` per dataset.
"""

from __future__ import annotations

import copy
from typing import Any

from mmcoop.errors import ConfigError
from mmcoop.methods import METHODS
from mmcoop.utils.registry import Registry

PRESETS: Registry[dict[str, Any]] = Registry("preset")

_PAPER_SOURCE = ("GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation code/sample_level.py, "
                 "code/modality_level.py, code/baseline.py argument defaults; code/models/backbone.py")
_OGMGE_SOURCE = "GeWu-Lab/OGM-GE_CVPR2022 main.py argument defaults and README.md (alpha), utils/utils.py weight_init"
_PMR_SOURCE = "fanyunfeng-bit/Modal-Imbalance-PMR main_CE_test_grad.py argument defaults and bash.sh (AVE runs)"

#: The CVPR 2024 code's optimiser and schedule (Adam 5e-5, weight decay 1e-4, StepLR 30 x 0.1, 60 epochs, batch 64).
PAPER_TRAIN = {"optimizer": "adam", "lr": 5e-5, "weight_decay": 1e-4, "step_size": 30, "gamma": 0.1,
               "epochs": 60, "batch_size": 64}
#: OGM-GE / PMR: SGD 1e-3, momentum 0.9, weight decay 1e-4, StepLR 70 x 0.1, 100 epochs, batch 64.
PEER_TRAIN = {"optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 1e-4, "step_size": 70, "gamma": 0.1,
              "epochs": 100, "batch_size": 64}


def _model(modalities: dict[str, str], bn_weight_std: float) -> dict[str, Any]:
    """``late-fusion`` with ResNet-18 encoders per modality, 512-d features, concat fusion."""
    options: dict[str, Any] = {"encoders": dict(modalities)}
    if bn_weight_std:
        options["encoder_options"] = {m: {"bn_weight_std": bn_weight_std} for m in modalities}
    return {"name": "late-fusion", "dim": 512, "fusion": "concat", "options": options}


AUDIO_VISUAL = {"audio": "resnet18-spectrogram", "visual": "resnet18-frames"}

def _register(name: str, *, num_frames: int, num_classes: int, train: dict[str, Any], model: dict[str, Any],
              source: str) -> None:
    """One dataset's preset: the dataset with ``num_frames`` frames at 224 px, and the settings."""
    PRESETS.register(name)({
        "dataset": name, "dataset_options": {"num_frames": num_frames, "image_size": 224},
        "num_classes": num_classes, "train": dict(train), "model": model, "source": source,
    })


_register("kinetics-sounds", num_frames=3, num_classes=31, train=PAPER_TRAIN, model=_model(AUDIO_VISUAL, 0.02),
          source=_PAPER_SOURCE)
_register("mm-debiased", num_frames=3, num_classes=10, train=PAPER_TRAIN, model=_model(AUDIO_VISUAL, 0.02),
          source=_PAPER_SOURCE + " (Kinetics-Sounds settings; README.md: MM-Debiased prepared as for OGM-GE)")
_register("ucf101", num_frames=3, num_classes=101, train=PAPER_TRAIN,
          model=_model({"rgb": "resnet18-frames", "flow": "resnet18-frames"}, 0.02),
          source=_PAPER_SOURCE + " (Kinetics-Sounds settings: the released code has no UCF-101 script)")
_register("cremad", num_frames=1, num_classes=6, train=PEER_TRAIN, model=_model(AUDIO_VISUAL, 0.0),
          source=_OGMGE_SOURCE)
_register("vggsound", num_frames=3, num_classes=309, train=PEER_TRAIN, model=_model(AUDIO_VISUAL, 0.0),
          source=_OGMGE_SOURCE)
_register("ave", num_frames=4, num_classes=28, train=PEER_TRAIN, model=_model(AUDIO_VISUAL, 0.0), source=_PMR_SOURCE)

RUN_KEYS = ("dataset", "dataset_options", "train", "model")


def preset_config(name: str, method: str = "joint") -> dict[str, Any]:
    """The preset ``name`` as a RunConfig-shaped dict for ``method``.

    Args:
        name: a registered preset (:data:`PRESETS`).
        method: the method to run; its options for this preset come from the method itself
            (:meth:`mmcoop.methods.Method.preset_options`, ``{}`` if it has none).

    Returns:
        ``{"dataset", "dataset_options", "method", "method_options", "model", "train"}`` (a deep copy).

    Raises:
        ConfigError: unknown preset (lists the valid ones).
    """
    preset = PRESETS.get(name)
    out = {k: copy.deepcopy(preset[k]) for k in RUN_KEYS}
    out["method"] = method
    out["method_options"] = METHODS.get(method).preset_options(name)
    return out


def apply_preset(data: dict[str, Any], name: str) -> dict[str, Any]:
    """``data`` (a user's config dict) laid over preset ``name``: nested dicts merge, the user's keys win.

    The method is ``data["method"]`` (default ``joint``); its preset options are the base of
    ``method_options``.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping to apply preset {name!r}, got {type(data).__name__}")
    return _merge(preset_config(name, data.get("method", "joint")), data)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out
