"""BalancedAV in BalanceBenchmark's layout: a JSON annotation, pickled spectrograms, HDF5 frame files.

Source of the facts: GeWu-Lab/BalanceBenchmark (commit 4c1482f),
``balancemm/datasets/balance_dataset.py`` (class ``BalanceDataset``) and
``configs/dataset_config.yaml`` (``Balance``: ``classes: 30``, ``validation: false``):

- the annotation file (the config's ``csv_path``, read with ``json.load``) holds
  ``{"labels": [class names], "database": {<clip id>: {"subset": ..., "label": <name>}}}``;
  class index = position in ``labels``; a clip belongs to train when its subset is
  ``training``, to test when ``testing``; a clip is kept only if ``<visual_path><id>.hdf5``
  and ``<audio_path><id>.pkl`` exist;
- audio: ``pickle.load`` of the ``.pkl`` (a 2-D spectrogram), expanded to ``[1, F, T]``;
- visual: 3 frames of ``f["video"]`` (encoded JPEG bytes per frame), ``seg = n // 3``: train
  ``randint(i*seg + 1, i*seg + seg)`` capped at 8, eval ``i*seg + max(seg // 2, 1)``, frame 1
  when ``n <= 6``; ImageNet normalisation; ``Resize((224, 224))``;
- no validation split (``validation: false``: the benchmark validates on test).

Differences: frames follow the ``ks-official`` choice of
`frame_indices` (the Kinetics-Sounds loader's numbers used as
1-based frame numbers); the BalancedAV loader indexes ``f["video"]`` with the same numbers
0-based, one frame later. The official training transform (``RandomResizedCrop(224)`` +
flip) is selected by ``mode == 'training'``, which never matches its ``'train'`` mode, so it
trains on the eval resize; here training crops as intended (``train_crop: resize``
reproduces the official behaviour). Val: the annotation's ``validation`` subset when it has
one, else a seeded, class-stratified ``val_fraction`` (0.1) of train. Needs h5py
(``pip install 'mmcoop[balancedav]'``).

The spectrograms are pickles, and a pickle runs code when loaded: read your own copy;
pickles inside an mmcoop run folder are refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmcoop.data.presets import AUDIO_VISUAL, BALANCE_TRAIN, register_preset, resnet18_model
from mmcoop.datasets._layout import OnMissing, carve_val, fill, keep_present, split_sources
from mmcoop.datasets.paper import paper_dataset
from mmcoop.media.clips import Clip, ClipSource, layout_error
from mmcoop.media.frame_folders import Hdf5Frames
from mmcoop.media.frames import EvalChoice, TrainChoice
from mmcoop.media.spectrograms import audio_loader
from mmcoop.media.transforms import Crop

NAME = "balancedav"
LAYOUT = """
<root>/
  annotations.json          {"labels": [class names], "database": {"<id>": {"subset": "training" | "testing"
                            | "validation", "label": "<class name>"}, ...}} (the benchmark's csv_path)
  audio/<id>.pkl            pickled 2-D spectrogram per clip (a pickle runs code when loaded: your own copy)
  visual/<id>.hdf5          HDF5 file per clip, dataset "video": one encoded JPEG (bytes) per frame
"""
AUDIO = "audio/{id}.pkl"
VISUAL = "visual/{id}.hdf5"
SUBSETS = {"train": "training", "test": "testing", "val": "validation"}
VAL_TAG = 0xBA1A


def read_annotation(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """``(class names, database)`` of the JSON annotation file.

    Raises:
        DataError: missing or unreadable file, or not the benchmark's structure (file named).
    """
    if not path.is_file():
        raise layout_error(f"missing annotation file {path}", LAYOUT)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise layout_error(f"unreadable annotation file {path} ({e})", LAYOUT) from None
    labels, database = (data.get("labels"), data.get("database")) if isinstance(data, dict) else (None, None)
    if not isinstance(labels, list) or not isinstance(database, dict):
        raise layout_error(f'annotation file {path} needs a "labels" list and a "database" mapping', LAYOUT)
    for cid, entry in database.items():
        if not isinstance(entry, dict) or "subset" not in entry or "label" not in entry:
            raise layout_error(f'annotation file {path}: entry {cid!r} needs "subset" and "label"', LAYOUT)
    return [str(c) for c in labels], database


@paper_dataset(NAME)
def load_balancedav_sources(
    root: Path | str,
    *,
    num_frames: int = 3,
    image_size: int = 224,
    train_frames: TrainChoice = "ks-official",
    eval_frames: EvalChoice = "ks-official",
    train_crop: Crop = "random-resized",
    annotation: str = "annotations.json",
    audio: str = AUDIO,
    visual: str = VISUAL,
    frames_key: str = "video",
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """BalancedAV train/val/test sources in BalanceBenchmark's layout (`LAYOUT`).

    Args:
        root: dataset folder.
        num_frames / image_size / train_frames / eval_frames / train_crop: frame options.
        annotation / audio / visual: paths relative to ``root`` (``{id}`` = clip id).
        frames_key: the HDF5 dataset holding the frames.
        val_fraction / seed: the val split carved from train when the annotation has none.
        on_missing: ``skip`` (warn and count, as the benchmark skips silently) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` (``audio`` ``[1, F, T]``, ``visual``
            ``[T, 3, S, S]``).
    """
    root = Path(root)
    path = root / annotation
    classes, database = read_annotation(path)
    to_index = {c: i for i, c in enumerate(classes)}
    by_split: dict[str, list[Clip]] = {s: [] for s in SUBSETS}
    subset_split = {v: k for k, v in SUBSETS.items()}
    for cid, entry in database.items():
        split = subset_split.get(str(entry["subset"]))
        if split is None:
            continue  # the benchmark reads only "training" and "testing"
        if entry["label"] not in to_index:
            raise layout_error(f'clip {cid!r} in {path} has label {entry["label"]!r}, not in its "labels"', LAYOUT)
        paths = {"audio": root / fill(audio, id=cid), "visual": root / fill(visual, id=cid)}
        by_split[split].append(Clip(str(cid), to_index[entry["label"]], paths))
    parts, infos = {}, {}
    for split in ("train", "test", "val"):
        if split == "val" and not by_split["val"]:
            continue
        parts[split], infos[split] = keep_present(NAME, split, by_split[split], path, LAYOUT, on_missing)
    if "val" not in parts:
        parts["train"], parts["val"] = carve_val(parts["train"], val_fraction, seed, VAL_TAG)
        infos["val"] = {"carved_from": "train", "val_fraction": val_fraction, "seed": seed}
    loaders = {
        "audio": audio_loader("audio", audio, LAYOUT, parts["train"] + parts["val"] + parts["test"]),
        "visual": Hdf5Frames(
            "visual", LAYOUT, num_frames, image_size, train_frames, eval_frames, train_crop, key=frames_key
        ),
    }
    common = {"dataset": NAME, "root": str(root), "num_frames": num_frames, "image_size": image_size}
    return split_sources(NAME, parts, infos, len(classes), loaders, classes, common)


# BalanceBenchmark's global settings (AdamW 1e-3, weight decay 0.01, StepLR(10), 30 epochs, batch 32) with
# its audio-visual encoders: ResNet-18 per modality, 512-d, concat (encoder_config.yaml ResNet18, output_dim
# 512, if_pretrain false; the committed model_config.yaml's BaseClassifier names Transformer_, its MOSEI run).
register_preset(
    NAME,
    num_frames=3,
    num_classes=30,
    train=BALANCE_TRAIN,
    model=resnet18_model(AUDIO_VISUAL, 0.0),
    source="GeWu-Lab/BalanceBenchmark 4c1482f configs/global_config.yaml, configs/encoder_config.yaml (ResNet18), "
    "configs/dataset_config.yaml (Balance)",
)
