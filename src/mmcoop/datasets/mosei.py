"""CMU-MOSEI and CMU-MOSI in the aligned / unaligned feature pickles (``mosei`` and ``mosi``).

Source of the facts: GeWu-Lab/BalanceBenchmark (commit 4c1482f),
``balancemm/datasets/Mosei_dataset.py`` (class ``CMUMOSEIDataset``) and
``configs/dataset_config.yaml`` (``CMUMOSEI``: ``data: mosei_senti``, ``if_align: false``,
``classes: 2``, ``validation: True``), with ``balancemm/utils/data_utils.py``:

- the file is ``<data>_data.pkl`` when aligned, ``<data>_data_noalign.pkl`` when not
  (``data`` = ``mosei_senti`` or ``mosi``), one pickle holding ``{"train", "valid",
  "test"}``, each a dict of arrays ``vision`` ``[N, T, Dv]``, ``audio`` ``[N, T, Da]``,
  ``text`` ``[N, T, Dt]``, ``labels`` ``[N, 1, 1]`` (the sentiment score in [-3, 3]) and,
  optionally, ``id`` (per sample a video id and segment fields; bytes in the MOSI file);
- every array is cast to float32; audio values equal to ``-inf`` become 0 (nothing else is
  changed: a NaN or +inf is reported by mmcoop's input check, naming split and modality);
- binary label ``acc2``: score < 0 -> 0, else 1 (0 counts as positive); the benchmark also
  defines the 7-class ``acc7``: < -2 -> 0, [-2, -1) -> 1, [-1, 0) -> 2, exactly 0 -> 3,
  (0, 1] -> 4, (1, 2] -> 5, > 2 -> 6 (``labels: 7class``);
- the splits are the pickle's ``train`` / ``valid`` / ``test`` (``validation: True``).

Three ``sequence`` modalities (M = 3), in the benchmark's order: ``text``, ``audio``,
``visual`` (``vision``), each ``[T, D]``. Sample ids: the ``id`` fields joined by ``/``
(``-3g5yACwYnA/82.88/100.64``; a repeated id gets ``#2``, ``#3``...), else
``<split>_<row>``.

**A pickle runs code when it is loaded.** mmcoop unpickles the file its ``root`` option
points at because this is the format these datasets are distributed in; use files you
obtained yourself, and never a pickle lying inside an mmcoop run folder (refused).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from mmcoop.data.base import ModalitySpec
from mmcoop.data.presets import BALANCE_TRAIN, register_preset
from mmcoop.data.storage import load_dataset_pickle
from mmcoop.data.tensor_source import TensorSource
from mmcoop.datasets.paper import paper_dataset
from mmcoop.errors import DataError
from mmcoop.media.clips import layout_error

#: modality name -> key in the pickle, in the benchmark's order (text, audio, visual)
MODALITIES = {"text": "text", "audio": "audio", "visual": "vision"}
#: mmcoop split -> the pickle's split key
SPLIT_KEYS = {"train": "train", "val": "valid", "test": "test"}
LabelKind = Literal["binary", "7class"]
NUM_CLASSES = {"binary": 2, "7class": 7}
LAYOUT = """
<root>/                                  (dataset_options.root; default <data root>/mosei or /mosi)
  mosei_senti_data_noalign.pkl           unaligned (default; aligned: true -> mosei_senti_data.pkl)
  mosi_data_noalign.pkl                  (mosi: mosi_data.pkl when aligned)
    one pickle: {"train", "valid", "test"} -> {"text" [N, T, Dt], "audio" [N, T, Da],
    "vision" [N, T, Dv], "labels" [N, 1, 1] (sentiment in [-3, 3]), "id" (optional)}
    (a pickle runs code when loaded: use your own copy; pickles inside mmcoop run folders are refused)
"""


def binary_labels(score: np.ndarray) -> np.ndarray:
    """The benchmark's ``acc2``: score < 0 -> 0, else 1.

    Example:
        >>> binary_labels(np.array([-0.2, 0.0, 1.4])).tolist()
        [0, 1, 1]
    """
    return np.where(score < 0, 0, 1).astype(np.int64)


def seven_class_labels(score: np.ndarray) -> np.ndarray:
    """The benchmark's ``acc7``: < -2, [-2, -1), [-1, 0), exactly 0, (0, 1], (1, 2], > 2 -> 0..6.

    Example:
        >>> seven_class_labels(np.array([-2.5, -2.0, -0.5, 0.0, 0.5, 1.0, 2.0, 2.5])).tolist()
        [0, 1, 2, 3, 4, 4, 5, 6]
    """
    neg = np.digitize(score, [-2.0, -1.0, 0.0])  # < -2 -> 0, [-2, -1) -> 1, [-1, 0) -> 2, >= 0 -> 3
    pos = 3 + np.digitize(score, [0.0, 1.0, 2.0], right=True)  # 0 -> 3, (0, 1] -> 4, (1, 2] -> 5, > 2 -> 6
    return np.where(score < 0, neg, pos).astype(np.int64)


LABELS = {"binary": binary_labels, "7class": seven_class_labels}


def _ids(meta: Any, n: int, split: str) -> list[str]:
    """One unique string per sample from the pickle's ``id`` entries (or ``<split>_<row>``)."""
    if meta is None:
        return [f"{split}_{i:05d}" for i in range(n)]

    def text(v: Any) -> str:
        return v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)

    rows = [np.atleast_1d(np.asarray(meta[i], dtype=object)).ravel() for i in range(n)]
    ids = ["/".join(text(v) for v in r) for r in rows]
    seen: Counter[str] = Counter()
    out = []
    for sid in ids:
        seen[sid] += 1
        out.append(sid if seen[sid] == 1 else f"{sid}#{seen[sid]}")
    return out


def _split(path: Path, data: dict[str, Any], split: str, labels: LabelKind) -> TensorSource:
    key = SPLIT_KEYS[split]
    part = data.get(key)
    if not isinstance(part, dict):
        raise layout_error(f"{path} has no split {key!r} (keys: {sorted(map(str, data))})", LAYOUT)
    missing = [k for k in (*MODALITIES.values(), "labels") if k not in part]
    if missing:
        raise layout_error(f"split {key!r} of {path} has no {missing} (keys: {sorted(map(str, part))})", LAYOUT)
    inputs, specs, counts = {}, [], {}
    try:
        score = np.asarray(part["labels"], dtype=np.float32).reshape(len(part["labels"]), -1)[:, 0]
        for name, k in MODALITIES.items():
            arr = np.array(part[k], dtype=np.float32)  # a copy: the pickle's arrays stay as loaded
            if name == "audio":  # the benchmark: audio[audio == -inf] = 0
                counts["audio_neg_inf_zeroed"] = int(np.isneginf(arr).sum())
                arr[np.isneginf(arr)] = 0.0
            inputs[name] = torch.from_numpy(arr)
    except (TypeError, ValueError) as e:
        raise layout_error(f"split {key!r} of {path} holds non-numeric arrays ({e})", LAYOUT) from None
    n = len(score)
    if np.isnan(score).any():
        raise layout_error(f"{path}: {key}/labels has {int(np.isnan(score).sum())} NaN scores", LAYOUT)
    for name, t in inputs.items():
        if t.ndim != 3 or t.shape[0] != n:
            raise layout_error(
                f"{path}: {key}/{MODALITIES[name]} has shape {list(t.shape)}; expected [{n}, T, D] ({n} labels)", LAYOUT
            )
        specs.append(ModalitySpec(name, "sequence", tuple(t.shape[1:])))
    y = torch.from_numpy(LABELS[labels](score))
    ids = _ids(part.get("id"), n, split)
    info = {"file": str(path), "split_key": key, **counts}
    return TensorSource(inputs, y, NUM_CLASSES[labels], specs, ids=ids, info=info)


def read_pickle_sources(
    name: str, root: Path, data: str, aligned: bool, labels: LabelKind, file: str
) -> dict[str, TensorSource]:
    """The three splits of one MOSEI/MOSI pickle (see the module docstring).

    Args:
        name: the dataset name (for messages).
        root: the dataset folder.
        data: the file stem (``mosei_senti``, ``mosi``).
        aligned: ``<data>_data.pkl`` if true, else ``<data>_data_noalign.pkl``.
        labels: ``binary`` or ``7class``.
        file: a file name relative to ``root`` that replaces the derived one.

    Returns:
        ``{"train", "val", "test"}`` -> `TensorSource` with ``text``, ``audio``, ``visual``.
    """
    if labels not in LABELS:
        raise DataError(f"dataset {name!r}: labels must be one of {', '.join(LABELS)}, got {labels!r}")
    path = Path(root) / (file or f"{data}_data{'' if aligned else '_noalign'}.pkl")
    if not path.is_file():
        raise layout_error(f"missing {name} pickle {path}", LAYOUT)
    try:
        loaded = load_dataset_pickle(path, f"{name} pickle")
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is reported the same way
        raise layout_error(f"cannot unpickle {path} ({type(e).__name__}: {e})", LAYOUT) from None
    if not isinstance(loaded, dict):
        raise layout_error(f"{path} holds a {type(loaded).__name__}, expected a dict of splits", LAYOUT)
    out = {}
    for split in SPLIT_KEYS:
        src = _split(path, loaded, split, labels)
        src.info.update(dataset=name, root=str(root), aligned=aligned, labels=labels)
        out[split] = src
    shapes = {s: [sp.shape for sp in src.specs] for s, src in out.items()}
    if len({str(v) for v in shapes.values()}) != 1:
        raise layout_error(f"{path}: the splits' feature shapes differ ({shapes})", LAYOUT)
    return out


@paper_dataset("mosei")
def load_mosei_sources(
    root: Path | str, *, aligned: bool = False, labels: LabelKind = "binary", data: str = "mosei_senti", file: str = ""
) -> dict[str, TensorSource]:
    """CMU-MOSEI feature sequences (text, audio, visual) from the benchmark's pickle (layout: `LAYOUT`).

    Args:
        root: dataset folder.
        aligned: the word-aligned pickle (``mosei_senti_data.pkl``) instead of the unaligned one.
        labels: ``binary`` (the benchmark's) or ``7class``.
        data: the file stem.
        file: a file name relative to ``root`` instead of the derived one.

    Returns:
        ``{"train", "val", "test"}`` -> `TensorSource`.
    """
    return read_pickle_sources("mosei", Path(root), data, aligned, labels, file)


@paper_dataset("mosi")
def load_mosi_sources(
    root: Path | str, *, aligned: bool = False, labels: LabelKind = "binary", data: str = "mosi", file: str = ""
) -> dict[str, TensorSource]:
    """CMU-MOSI feature sequences (text, audio, visual) from the benchmark's pickle (layout: `LAYOUT`).

    Args:
        root: dataset folder.
        aligned: the word-aligned pickle (``mosi_data.pkl``) instead of the unaligned one.
        labels: ``binary`` or ``7class``.
        data: the file stem.
        file: a file name relative to ``root`` instead of the derived one.

    Returns:
        ``{"train", "val", "test"}`` -> `TensorSource`.
    """
    return read_pickle_sources("mosi", Path(root), data, aligned, labels, file)


MOSEI_SOURCE = (
    "GeWu-Lab/BalanceBenchmark 4c1482f configs/global_config.yaml (train, dataloader), configs/model_config.yaml "
    "(BaseClassifier), configs/encoder_config.yaml (Transformer_), configs/dataset_config.yaml (CMUMOSEI)"
)
#: BaseClassifier: a Transformer_ encoder per modality (width 1024, 4 heads, 2 layers; torch's default
#: feed-forward 2048 and dropout 0.1), concat fusion of 1024-d features.
SEQUENCE_TRANSFORMER = {"width": 1024, "heads": 4, "layers": 2, "ff": 2048, "dropout": 0.1}
for _name in ("mosei", "mosi"):
    register_preset(
        _name,
        num_classes=2,
        dataset_options={"aligned": False, "labels": "binary"},
        train=BALANCE_TRAIN,
        model={
            "name": "late-fusion",
            "dim": 1024,
            "fusion": "concat",
            "options": {
                "encoders": {m: "transformer-sequence" for m in MODALITIES},
                "encoder_options": {m: dict(SEQUENCE_TRANSFORMER) for m in MODALITIES},
            },
        },
        source=MOSEI_SOURCE
        + (" (MOSI: the same settings, BalanceBenchmark has no MOSI entry)" if _name == "mosi" else ""),
    )
