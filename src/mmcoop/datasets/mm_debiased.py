"""MM-Debiased (CVPR 2024, Wei et al.): the official split json over KS-layout media.

Source of the facts: GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation, ``README.md``
and ``MM-Debiased/MM-Debiased.json``: 14,025 entries
``{sample_id: {"subset": "training" | "validation" | "testing", "label": <class name>}}``
(11,368 / 1,185 / 1,472), 10 classes; ids are Kinetics-400 clips (``<ytid>_<n>``) or
VGGSound clips (``<ytid>_<start:06d>_<end:06d>``). The README points to OGM-GE for the
preprocessing, i.e. media prepared as for Kinetics-Sounds (see
`mmcoop.datasets.readers.kinetics_sounds`): a spectrogram ``.npy`` and a 1 fps frame
folder per clip, the same 3-frame choice and transforms.

Many clips of the json are no longer downloadable; clips listed but absent are
counted, reported (a warning and ``source.info["missing"]`` / ``["missing_ids"]``) and
skipped, never fatal unless no clip of a split is present. Class indices follow the
sorted class names.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmcoop.data.presets import (
    AUDIO_VISUAL,
    PAPER_SOURCE,
    PAPER_TRAIN,
    register_preset,
    resnet18_model,
)
from mmcoop.datasets._layout import OnMissing
from mmcoop.datasets.kinetics_sounds import AUDIO, VISUAL, media_sources
from mmcoop.datasets.paper import paper_dataset
from mmcoop.media.clips import ClipSource, layout_error
from mmcoop.media.frames import EvalChoice, TrainChoice
from mmcoop.media.transforms import Crop

NAME = "mm-debiased"
JSON_NAME = "MM-Debiased.json"
SUBSETS = {"training": "train", "validation": "val", "testing": "test"}
LAYOUT = """
<root>/
  MM-Debiased.json     {"<clip id>": {"subset": "training" | "validation" | "testing", "label": "<class>"}, ...}
                       (the official split file; or pass split_json=<path>)
  audio/<split>/<id>.npy                    2-D spectrogram per clip, as for Kinetics-Sounds
  visual/<split>/<id>/frame_00001.jpg ...   1 fps frames, sorted by name
  with <split> = train | val | test for subset training | validation | testing
  (clips listed in the json but absent are reported and skipped)
"""


def read_split_json(path: Path) -> dict[str, list[tuple[str, str]]]:
    """split -> ``[(clip id, class name)]`` in file order.

    Raises:
        DataError: missing or invalid json, or an entry without a known subset / a label.
    """
    if not path.is_file():
        raise layout_error(f"missing split file {path}", LAYOUT)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise layout_error(f"split file {path} is not valid JSON ({e})", LAYOUT) from None
    if not isinstance(data, dict):
        raise layout_error(f"split file {path} must hold a JSON object of clip id -> entry", LAYOUT)
    out: dict[str, list[tuple[str, str]]] = {s: [] for s in SUBSETS.values()}
    for clip_id, entry in data.items():
        subset = entry.get("subset") if isinstance(entry, dict) else None
        label = entry.get("label") if isinstance(entry, dict) else None
        if subset not in SUBSETS or not isinstance(label, str):
            raise layout_error(
                f"malformed entry {clip_id!r} in {path}: {entry!r}; expected "
                f'{{"subset": "training" | "validation" | "testing", "label": "<class>"}}',
                LAYOUT,
            )
        out[SUBSETS[subset]].append((clip_id, label))
    return out


@paper_dataset(NAME)
def load_mm_debiased_sources(
    root: Path | str,
    *,
    split_json: str | Path | None = None,
    num_frames: int = 3,
    image_size: int = 224,
    train_frames: TrainChoice = "ks-official",
    eval_frames: EvalChoice = "ks-official",
    train_crop: Crop = "random-resized",
    audio: str = AUDIO,
    visual: str = VISUAL,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """MM-Debiased train/val/test sources (layout: `LAYOUT`).

    Args:
        root: media folder.
        split_json: the split file (default ``<root>/MM-Debiased.json``).
        num_frames / image_size / train_frames / eval_frames / train_crop / audio / visual:
            as for `load_kinetics_sounds_sources`;
            ``{split}`` in the templates is ``train``, ``val`` or ``test``.
        on_missing: ``skip`` (default: report and skip absent clips) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` (``audio``, ``visual``), each with
            ``info["listed"]``, ``["present"]``, ``["missing"]`` and the first ``["missing_ids"]``.
    """
    root = Path(root)
    path = Path(split_json) if split_json is not None else root / JSON_NAME
    named = read_split_json(path)
    classes = sorted({lab for rows in named.values() for _, lab in rows})
    to_index = {c: i for i, c in enumerate(classes)}
    index = {s: [(cid, to_index[lab]) for cid, lab in rows] for s, rows in named.items()}
    options = {
        "split_json": str(path),
        "num_frames": num_frames,
        "image_size": image_size,
        "train_frames": train_frames,
        "eval_frames": eval_frames,
        "train_crop": train_crop,
    }
    return media_sources(
        NAME,
        root,
        index,
        {s: path for s in index},
        len(classes),
        classes,
        LAYOUT,
        audio=audio,
        visual=visual,
        split_dirs={s: s for s in index},
        num_frames=num_frames,
        image_size=image_size,
        train_frames=train_frames,
        eval_frames=eval_frames,
        train_crop=train_crop,
        on_missing=on_missing,
        options=options,
    )


register_preset(
    NAME,
    num_frames=3,
    num_classes=10,
    train=PAPER_TRAIN,
    model=resnet18_model(AUDIO_VISUAL, 0.02),
    source=PAPER_SOURCE + " (Kinetics-Sounds settings; README.md: MM-Debiased prepared as for OGM-GE)",
)
