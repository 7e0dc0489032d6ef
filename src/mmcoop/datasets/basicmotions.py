"""``basicmotions``: smartwatch accelerometer + gyroscope, 4 activities (UEA archive, BasicMotions).

Four students wore a smartwatch while standing, walking, running and playing badminton,
five times each; the watch recorded its 3-D accelerometer and 3-D gyroscope at 10 Hz for
10 s. 40 train / 40 test cases, 10 of each class in each file; 6 channels of 100 steps.

Modalities (both ``kind="sequence"``, ``[T, D] = [100, 3]``): ``accelerometer``
(channels 1-3 of the archive's files) and ``gyroscope`` (channels 4-6). Classes, in the
order of the files' ``@classLabel`` line: standing, running, walking, badminton.

Sources, in order:

1. ``<data_root>/BasicMotions/BasicMotions_TRAIN.ts`` and ``_TEST.ts``, if that folder
   exists (the archive's download);
2. the copy bundled in the installed ``aeon`` package (BSD-3,
   ``aeon/datasets/data/BasicMotions/``), located without importing aeon.

Either way the ``.ts`` files are parsed by aeon's ``load_from_ts_file``, so aeon must be
installed: ``pip install 'mmcoop[basicmotions]'``. Nothing is downloaded.

Splits: test is the archive's test file; val is a seeded, class-stratified
``val_fraction`` (default 0.2: 2 per class) of the train file. With ``standardize=True``
each channel is standardised with the training split's mean and std (over cases and
steps; std 0 -> 1). Sample ids: ``train_07`` / ``test_12`` (file and case row, from 0).
Extras: ``row`` (case row in its file).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.data.presets import register_preset
from mmcoop.data.registry import DATASETS
from mmcoop.data.storage import rng, stratified_split
from mmcoop.data.tensor_source import TensorSource
from mmcoop.datasets.paper import warn_class_count
from mmcoop.errors import ConfigError, DataError
from mmcoop.utils.optional import import_optional

NAME = "basicmotions"
PROBLEM = "BasicMotions"
CLASSES = ("standing", "running", "walking", "badminton")
#: modality -> channels of the archive's files
SENSORS: dict[str, slice] = {"accelerometer": slice(0, 3), "gyroscope": slice(3, 6)}
STEPS = 100
PER_FILE = 40
VAL_TAG = 0xB4517
INSTALL = "pip install 'mmcoop[basicmotions]' (it installs aeon, which bundles BasicMotions and reads .ts files)"
LAYOUT = f"""
<data_root>/BasicMotions/       optional (else the copy bundled in the installed aeon package)
  {PROBLEM}_TRAIN.ts      40 cases: 6 channels x 100 steps (accelerometer x y z, gyroscope x y z), class label
  {PROBLEM}_TEST.ts       40 cases, the same
"""


def aeon_dir() -> Path | None:
    """``aeon/datasets/data/BasicMotions`` of the installed aeon (found, not imported), or ``None``."""
    try:
        spec = importlib.util.find_spec("aeon")
    except (ImportError, ValueError):
        return None
    for loc in (spec.submodule_search_locations or []) if spec else []:
        d = Path(loc) / "datasets" / "data" / PROBLEM
        if d.is_dir():
            return d
    return None


def find_files(data_root: Path | None) -> tuple[dict[str, Path], str]:
    """The train and test ``.ts`` files and their source (``"data_root"`` or ``"aeon"``).

    Raises:
        DataError: a file is missing from ``<data_root>/BasicMotions``, or aeon is not installed.
    """
    if data_root is not None and (Path(data_root) / PROBLEM).is_dir():
        folder, source = Path(data_root) / PROBLEM, "data_root"
    else:
        found = aeon_dir()
        if found is None:
            where = f"{Path(data_root) / PROBLEM} (absent)" if data_root is not None else "no data root given"
            raise DataError(
                f"BasicMotions not found: looked in {where} and for the aeon package (not installed). {INSTALL}"
            )
        folder, source = found, "aeon"
    files = {s: folder / f"{PROBLEM}_{s.upper()}.ts" for s in ("train", "test")}
    for path in files.values():
        if not path.is_file():
            raise DataError(f"missing BasicMotions file {path}. Expected layout:{LAYOUT}")
    return files, source


def read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one BasicMotions ``.ts`` file with aeon.

    Returns:
        ``(series float64 [40, 6, 100], labels int64 [40])`` (labels index `CLASSES`).

    Raises:
        ConfigError: aeon is not installed (names the extra).
        DataError: unparsable file, wrong shape, unknown labels or NaN/inf (file named).
    """
    aeon = import_optional("aeon.datasets", "basicmotions", f"reading the BasicMotions file {path}")
    try:
        x, y = aeon.load_from_ts_file(str(path), return_type="numpy3d")
    except Exception as e:  # noqa: BLE001 - any parse failure is reported the same way
        raise DataError(f"cannot parse BasicMotions file {path}: {e}. Replace the file.") from None
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (PER_FILE, 6, STEPS):
        raise DataError(
            f"BasicMotions file {path} holds series of shape {x.shape}; expected ({PER_FILE}, 6, {STEPS}). Replace the file."
        )
    names = [str(v).lower() for v in y]
    unknown = sorted(set(names) - set(CLASSES))
    if unknown:
        raise DataError(f"BasicMotions file {path} has unknown class labels {unknown}; expected {', '.join(CLASSES)}")
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        case, ch, t = bad[0]
        raise DataError(
            f"non-finite value in BasicMotions file {path}: case {case}, channel {ch}, step {t} ({len(bad)} in all)"
        )
    return x, np.array([CLASSES.index(n) for n in names], dtype=np.int64)


@DATASETS.register(NAME)
def load_basicmotions(
    *,
    data_root: Path | None,
    seed: int,
    val_fraction: float = 0.2,
    standardize: bool = True,
    expect_classes: int | None = None,
) -> DatasetSplits:
    """Load BasicMotions (see the module docstring): ``accelerometer`` and ``gyroscope``, ``[100, 3]`` each.

    Args:
        data_root: folder that may hold ``BasicMotions/``; else aeon's bundled copy is used.
        seed: seeds the val split carved from train.
        val_fraction: fraction of each train class for validation.
        standardize: standardise each channel by the training split's mean/std.
        expect_classes: the class count a preset expects (4).

    Returns:
        `DatasetSplits` with two ``"sequence"`` modalities.
    """
    if not 0 < val_fraction < 1:
        raise ConfigError(f"basicmotions needs 0 < val_fraction < 1, got {val_fraction}")
    files, source = find_files(data_root)
    series = {s: read_ts(p) for s, p in files.items()}
    x_train, y_train = series["train"]
    val, train = stratified_split(y_train, [val_fraction], rng(seed, VAL_TAG), min_count=1)
    parts = {"train": ("train", train), "val": ("train", val), "test": ("test", np.arange(PER_FILE))}
    mean = np.zeros((6, 1))
    std = np.ones((6, 1))
    if standardize:
        fit = x_train[train]
        mean, std = fit.mean(axis=(0, 2))[:, None], fit.std(axis=(0, 2))[:, None]
        std = np.where(std < 1e-8, 1.0, std)
    specs = [ModalitySpec(m, "sequence", (STEPS, ch.stop - ch.start)) for m, ch in SENSORS.items()]
    views = {}
    for split, (file, rows) in parts.items():
        x, y = series[file]
        z = torch.from_numpy((x[rows] - mean) / std).float()  # [n, 6, 100]
        views[split] = MultimodalDataset.from_source(
            TensorSource(
                {m: z[:, ch].transpose(1, 2).contiguous() for m, ch in SENSORS.items()},  # [n, 100, 3]
                torch.from_numpy(y[rows]),
                len(CLASSES),
                specs,
                {"row": torch.from_numpy(rows.astype(np.int64))},
                ids=[f"{file}_{int(r):02d}" for r in rows],
            )
        )
    warn_class_count(NAME, expect_classes, len(CLASSES), files["train"].parent)
    info: dict[str, Any] = {
        "source": source,
        "paths": {s: str(p) for s, p in files.items()},
        "classes": list(CLASSES),
        "params": dict(val_fraction=val_fraction, standardize=standardize),
        "seed": seed,
        "split_sizes": {k: len(v) for k, v in views.items()},
    }
    return DatasetSplits(NAME, views["train"], views["val"], views["test"], info)


# Demo-sized: two small 1-D conv encoders (the `sequence` kind's), seconds per run on a laptop CPU.
register_preset(
    NAME,
    num_classes=len(CLASSES),
    dataset_options={},
    train={"optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-4, "epochs": 30, "batch_size": 8},
    model={
        "name": "late-fusion",
        "dim": 32,
        "fusion": "concat",
        "options": {"encoders": {m: "sequence" for m in SENSORS}},
    },
    source="mmcoop's own demo settings (BasicMotions has no multimodal-learning recipe to follow)",
)
