"""Kinetics-Sounds in the layout of the paper's official code (CVPR 2024, Wei et al.).

Source of the facts: GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation,
``code/datasets/dataloader.py``, class ``AV_KS_Dataset``:

- split files ``{train,val,test}_1fps_path.txt``; each line is split on spaces, the clip
  id is the last ``/`` component of the first field and the label is ``int`` of the last
  field; a clip is kept only if its spectrogram exists (others are skipped silently);
- audio: ``<audio dir>/<split>/<id>.npy``, a 2-D array used as stored with a leading
  channel axis (``np.expand_dims(..., 0)``). The OGM-GE recipe
  (GeWu-Lab/OGM-GE_CVPR2022 ``data/KineticSound/process_audio.py``) stores a Kaldi
  fbank of 1,024 frames x 128 mel bins normalised with mean -4.503877, std 2 x 5.141276,
  i.e. ``[1, 1024, 128]`` per clip;
- visual: ``<visual dir>/<split>/<id>/frame_0000N.jpg`` (1 fps, 1-based N), 3 frames:
  train ``random.randint(i*seg + 1, i*seg + seg)``, eval ``i*seg + max(seg//2, 1)``
  with ``seg = n_frames // 3``; train ``RandomResizedCrop(224)`` + ``RandomHorizontalFlip``,
  eval ``Resize((224, 224))``, then ImageNet normalisation; output ``[3, T, 224, 224]``
  there, ``[T, 3, 224, 224]`` here;
- 31 classes (``--n_classes 31`` in ``code/sample_level.py``).

By default the frames are the official ones exactly (``train_frames`` /
``eval_frames="ks-official"``: incl. frame 1 for clips of <= 6 frames and train frame
numbers >= 10 clamped to 9), indexed in the sorted file list, the same choice as the
frame cache (`mmcoop.media.frames.segment_frames`). For ``seg = 3`` the
official eval frame is the *first* of each third; ``eval_frames="centre"`` takes the
middle one and ``train_frames="random"`` drops the quirks (see
`frame_indices`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mmcoop.data.presets import (
    AUDIO_VISUAL,
    PAPER_SOURCE,
    PAPER_TRAIN,
    register_preset,
    resnet18_model,
)
from mmcoop.datasets._layout import (
    SPLITS,
    OnMissing,
    carve_val,
    fill,
    keep_present,
    read_lines,
    split_sources,
)
from mmcoop.datasets.paper import paper_dataset
from mmcoop.errors import DataError
from mmcoop.media.clips import Clip, ClipSource, layout_error
from mmcoop.media.frame_folders import FrameFolder
from mmcoop.media.frames import EvalChoice, TrainChoice
from mmcoop.media.prepare_index import CLASSES_FILE
from mmcoop.media.prepare_spec import PrepareSpec, register_prepare_spec
from mmcoop.media.spectrograms import audio_loader
from mmcoop.media.transforms import Crop

NAME = "kinetics-sounds"
LAYOUT = """
<root>/
  {split}_1fps_path.txt            split files for split in train, val, test (val optional: if
                                   absent, a stratified val_fraction of train is carved, seeded);
                                   one clip per line: "<path> ... <label>" separated by spaces,
                                   clip id = last '/' component of <path>, <label> an int
  audio/<split>/<id>.npy           2-D spectrogram per clip (official: fbank 1024 x 128)
  visual/<split>/<id>/frame_00001.jpg, frame_00002.jpg, ...   frames at 1 fps, sorted by name
  classes.json                     optional, beside the split files: {"classes": [name of label 0, ...]}
                                   (written by `mmcoop data prepare`)
or the official names, detected when <root>/ks_audio/train_1fps_path.txt exists (layout="official"):
  ks_audio/{split}_1fps_path.txt, ks_audio/<split>/<id>.npy, ks_visual/<split>/<id>/frame_00001.jpg ...
"""
SPLIT_FILE = "{split}_1fps_path.txt"
AUDIO = "audio/{split}/{id}.npy"
VISUAL = "visual/{split}/{id}"
OFFICIAL_AUDIO_DIR, OFFICIAL_VISUAL_DIR = "ks_audio", "ks_visual"
OFFICIAL_SPLIT_FILE = OFFICIAL_AUDIO_DIR + "/" + SPLIT_FILE
#: layout name -> (split_file, audio, visual) templates.
LAYOUTS = {
    "mmcoop": (SPLIT_FILE, AUDIO, VISUAL),
    "official": (OFFICIAL_SPLIT_FILE, OFFICIAL_AUDIO_DIR + "/{split}/{id}.npy", OFFICIAL_VISUAL_DIR + "/{split}/{id}"),
}
VAL_TAG = 0x4B53  # rng stream of the carved val split


def pick_layout(root: Path, layout: str, templates: tuple[str, str, str]) -> tuple[str, tuple[str, str, str]]:
    """The layout name and ``(split_file, audio, visual)`` templates to read ``root`` with.

    Templates other than the default ones are used as given (``custom``); otherwise ``auto``
    picks ``official`` when ``ks_audio/train_1fps_path.txt`` exists and the default split file
    does not.

    Raises:
        DataError: an unknown layout name.
    """
    if templates != LAYOUTS["mmcoop"]:
        return "custom", templates
    if layout == "auto":
        official = (root / fill(OFFICIAL_SPLIT_FILE, split="train")).is_file()
        layout = "official" if official and not (root / fill(SPLIT_FILE, split="train")).is_file() else "mmcoop"
    if layout not in LAYOUTS:
        raise DataError(f"{NAME}: layout must be one of auto, {', '.join(LAYOUTS)}; got {layout!r}")
    return layout, LAYOUTS[layout]


def read_classes(path: Path) -> list[str] | None:
    """Class names of a ``classes.json`` (``{"classes": [...]}``), or ``None`` if there is none.

    Raises:
        DataError: an unreadable file or not a list of names (file named).
    """
    if not path.is_file():
        return None
    import json

    try:
        names = json.loads(path.read_text(encoding="utf-8"))["classes"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f'unreadable class list {path} ({e!r}); expected {{"classes": ["name", ...]}}') from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(f'class list {path}: "classes" must be a list of names')
    return names


def parse_split_file(path: Path, layout: str = LAYOUT) -> list[tuple[str, int]]:
    """``(clip id, label)`` per line of a KS split file (see `LAYOUT`).

    Raises:
        DataError: missing file, or a line without an integer last field (file and line named).
    """
    out = []
    for lineno, line in enumerate(read_lines(path, layout), start=1):
        fields = line.split()
        clip_id = fields[0].rstrip("/").split("/")[-1]
        try:
            label = int(fields[-1])
        except ValueError:
            raise layout_error(
                f"malformed line {lineno} of {path}: {line!r} does not end in an integer label", layout
            ) from None
        if len(fields) < 2 or not clip_id:
            raise layout_error(f"malformed line {lineno} of {path}: {line!r} needs '<path> ... <label>'", layout)
        out.append((clip_id, label))
    return out


def media_sources(
    name: str,
    root: Path,
    index: dict[str, list[tuple[str, int]]],
    index_files: dict[str, Path],
    num_classes: int,
    classes: Sequence[str],
    layout: str,
    *,
    audio: str,
    visual: str,
    split_dirs: dict[str, str],
    num_frames: int,
    image_size: int,
    train_frames: TrainChoice,
    eval_frames: EvalChoice,
    train_crop: Crop,
    on_missing: OnMissing,
    carved: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, ClipSource]:
    """Sources over KS-layout media (spectrogram file + frame folder per clip) for a split index.

    Shared by Kinetics-Sounds and MM-Debiased.

    Args:
        index: split -> ``[(clip id, label)]`` (val may be absent when ``carved`` is given).
        index_files: split -> the file the split was read from (messages, info).
        split_dirs: split -> the ``{split}`` value in the path templates.
        carved: ``{"fraction": f, "seed": s}`` to carve val from train when ``index`` has no val.
    """
    parts: dict[str, list[Clip]] = {}
    infos: dict[str, dict[str, Any]] = {}
    for split, rows in index.items():
        d = split_dirs[split]
        clips = [
            Clip(
                cid, lab, {"audio": root / fill(audio, split=d, id=cid), "visual": root / fill(visual, split=d, id=cid)}
            )
            for cid, lab in rows
        ]
        parts[split], infos[split] = keep_present(name, split, clips, index_files[split], layout, on_missing)
    if "val" not in parts:
        if carved is None:
            raise DataError(f"{name}: no val split and no val carving requested")
        parts["train"], parts["val"] = carve_val(parts["train"], carved["fraction"], carved["seed"], VAL_TAG)
        infos["val"] = {"carved_from": "train", "val_fraction": carved["fraction"], "seed": carved["seed"]}
        infos["train"] = {**infos["train"], "val_carved": len(parts["val"])}
    present = [c for s in SPLITS for c in parts[s]]
    loaders = {
        "audio": audio_loader("audio", audio, layout, present),
        "visual": FrameFolder("visual", layout, num_frames, image_size, train_frames, eval_frames, train_crop),
    }
    common = {"dataset": name, "root": str(root), **(options or {})}
    return split_sources(name, parts, infos, num_classes, loaders, classes, common)


@paper_dataset(NAME)
def load_kinetics_sounds_sources(
    root: Path | str,
    *,
    num_frames: int = 3,
    image_size: int = 224,
    train_frames: TrainChoice = "ks-official",
    eval_frames: EvalChoice = "ks-official",
    train_crop: Crop = "random-resized",
    split_file: str = SPLIT_FILE,
    audio: str = AUDIO,
    visual: str = VISUAL,
    layout: str = "auto",
    num_classes: int | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """Kinetics-Sounds train/val/test sources read from ``root`` (layout: `LAYOUT`).

    Args:
        root: dataset folder.
        num_frames: frames per clip ``T`` (official 3).
        image_size: frame side ``S`` (official 224).
        train_frames: ``ks-official`` (official), ``random`` (a random frame per segment) or
            ``fixed`` (the eval choice).
        eval_frames: ``ks-official`` (official), ``centre`` or ``start``.
        train_crop: ``random-resized`` (official) or ``resize``.
        split_file / audio / visual: path templates relative to ``root`` with ``{split}``
            (and ``{id}``) placeholders.
        layout: ``auto`` (the official names when ``ks_audio/train_1fps_path.txt`` exists and
            ``train_1fps_path.txt`` does not), ``mmcoop`` or ``official`` (ignored when the
            templates are changed).
        num_classes: classes (default: the names in ``classes.json`` beside the split files,
            else the largest label in the split files + 1; official 31).
        val_fraction: fraction of train carved as val (per class, seeded) when the val
            split file is absent.
        seed: seed of that carve.
        on_missing: ``skip`` (warn and count, as the official loader skips) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` with modalities ``audio``
            ``[1, F, T]`` (as stored) and ``visual`` ``[T, 3, S, S]``.

    Raises:
        DataError: missing/malformed split file, no clip present, bad spectrogram/frames.
    """
    root = Path(root)
    layout, (split_file, audio, visual) = pick_layout(root, layout, (split_file, audio, visual))
    index, files = {}, {}
    for split in SPLITS:
        path = root / fill(split_file, split=split)
        if split == "val" and not path.is_file():
            continue
        files[split], index[split] = path, parse_split_file(path)
    labels = [lab for rows in index.values() for _, lab in rows]
    if min(labels, default=0) < 0:
        raise layout_error(f"negative label in the split files under {root}", LAYOUT)
    names = read_classes(files["train"].parent / CLASSES_FILE)
    if num_classes is not None:
        n_classes = int(num_classes)
    else:
        n_classes = len(names) if names else max(labels, default=-1) + 1
    classes = names if names and len(names) == n_classes else [str(i) for i in range(n_classes)]
    options = {
        "num_frames": num_frames,
        "image_size": image_size,
        "train_frames": train_frames,
        "eval_frames": eval_frames,
        "train_crop": train_crop,
        "layout": layout,
    }
    return media_sources(
        NAME,
        root,
        index,
        files,
        n_classes,
        classes,
        LAYOUT,
        audio=audio,
        visual=visual,
        split_dirs={s: s for s in SPLITS},
        num_frames=num_frames,
        image_size=image_size,
        train_frames=train_frames,
        eval_frames=eval_frames,
        train_crop=train_crop,
        on_missing=on_missing,
        carved={"fraction": val_fraction, "seed": seed},
        options=options,
    )


register_preset(
    NAME, num_frames=3, num_classes=31, train=PAPER_TRAIN, model=resnet18_model(AUDIO_VISUAL, 0.02), source=PAPER_SOURCE
)
register_prepare_spec(
    PrepareSpec(
        NAME,
        "visual",
        "audio",
        "npy",
        16000,
        "ks-fbank",
        "centre",
        10,
        75,
        "first",
        "frames: OGM-GE pre-processing/AVE&CREMAD/video2frame-1fps.py; audio: OGM-GE pre-processing/VGG&KS/mp4_to_wav.py "
        "(16 kHz s16) + data/KineticSound/process_audio.py; layout: Valuate-and-Enhance-Multimodal-Cooperation "
        "code/datasets/dataloader.py AV_KS_Dataset",
        index_file=SPLIT_FILE,
        index_line="{split}/{id} {label}",
        layouts={
            "official": {
                "visual_dir": OFFICIAL_VISUAL_DIR,
                "audio_dir": OFFICIAL_AUDIO_DIR,
                "index_file": OFFICIAL_SPLIT_FILE,
            }
        },
    )
)
