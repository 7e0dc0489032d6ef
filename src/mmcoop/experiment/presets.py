"""Presets: the published training settings per dataset, as RunConfig-shaped dicts.

A preset holds the dataset (and its reader options), the model (ResNet-18 encoders,
512-d features, concat fusion), the optimiser and schedule, and per-method options. The
dataset's part is registered beside the dataset (`mmcoop.data.presets.register_preset`
in e.g. `mmcoop.datasets.kinetics_sounds`); the methods' options are added here.
`preset_config` picks the options of one method and returns a plain dict in
`RunConfig` shape; `apply_preset` lays a user's
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

A method's options per preset live beside the method (`mmcoop.methods.Method.preset_options`):
the CVPR 2024 options (``warmup`` 5, ``part_ratio`` 0.2, ``alpha`` 1) for the paper's two methods
on every dataset, OGM-GE's ``alpha`` per dataset.
"""

from __future__ import annotations

import copy
from typing import Any

from mmcoop.data.presets import PRESETS
from mmcoop.errors import ConfigError
from mmcoop.methods import METHODS

RUN_KEYS = ("dataset", "dataset_options", "train", "model")


def preset_config(name: str, method: str = "joint") -> dict[str, Any]:
    """The preset ``name`` as a RunConfig-shaped dict for ``method``.

    Args:
        name: a registered preset (`PRESETS`).
        method: the method to run; its options for this preset come from the method itself
            (`mmcoop.methods.Method.preset_options`, ``{}`` if it has none).

    Returns:
        ``{"dataset", "dataset_options", "method", "method_options", "model", "train"}`` (a deep copy).

    Raises:
        ConfigError: unknown preset (lists the valid ones).
    """
    preset = PRESETS.get(name)
    out = {k: copy.deepcopy(preset[k]) for k in RUN_KEYS}
    out["dataset_options"]["expect_classes"] = preset["num_classes"]  # warns at load if the data has another count
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


def describe_preset(data: dict[str, Any], name: str) -> str:
    """One line saying what preset ``name`` sets for ``data`` (a user's config dict) and which of its values the user overrides.

    Example:
        >>> describe_preset({"train": {"epochs": 2}}, "kinetics-sounds")  # doctest: +SKIP
        'preset kinetics-sounds sets dataset_options.num_frames=3, ...; you override train.epochs (60 -> 2)'
    """
    base = preset_config(name, data.get("method", "joint") if isinstance(data, dict) else "joint")
    given = dict(_flat(data)) if isinstance(data, dict) else {}
    sets, over = [], []
    for key, value in _flat(base):
        if key in given and given[key] != value:
            over.append(f"{key} ({value} -> {given[key]})")
        elif key not in ("dataset", "method"):
            sets.append(f"{key}={value}")
    text = f"preset {name} sets " + ", ".join(sets)
    return text + (f"; you override {', '.join(over)}" if over else "")


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out
