"""AVE in the OGM-GE ``AVDataset`` layout (pickled spectrograms + frame folders + csv splits).

Source of the facts: GeWu-Lab/OGM-GE_CVPR2022, ``dataset/dataset.py``, class
``AVDataset`` (used for ``--dataset AVE`` in ``main.py``, 28 classes):

- ``stat.txt``: class names (first CSV field of each row); class index = position in
  the *sorted* names;
- ``my_train.txt`` / ``my_test.txt``: CSV rows ``<class>,<clip id>``; a clip is kept
  only if ``audio_spec/<id>.pkl`` and ``visual/<id>`` exist; for AVE a repeated id
  replaces the earlier row (the last label wins, the clip moves to the end);
- audio: ``pickle.load`` of ``audio_spec/<id>.pkl`` (a 2-D array, used as stored and
  unsqueezed to ``[1, F, T]`` in ``main.py``);
- visual: 3 frames ``visual/<id>/frame_0000{seg*i + 1}.jpg`` (``seg = n // 3``), i.e.
  the first frame of each third, in *both* train and eval; train
  ``RandomResizedCrop(224)`` + flip, eval ``Resize((224, 224))``, ImageNet normalisation;
- no validation split.

Defaults reproduce that frame choice (``train_frames="fixed"``, ``eval_frames="start"``).
Val: a seeded, class-stratified ``val_fraction`` (default 0.1) of train.
"""

from __future__ import annotations

from pathlib import Path

from mmcoop.datasets._layout import (
    OnMissing,
    carve_val,
    fill,
    keep_present,
    read_csv_rows,
    split_sources,
)
from mmcoop.datasets.paper import paper_dataset
from mmcoop.media.clips import Clip, ClipSource, layout_error
from mmcoop.media.frame_folders import FrameFolder
from mmcoop.media.frames import EvalChoice, TrainChoice
from mmcoop.media.prepare_spec import PrepareSpec, register_prepare_spec
from mmcoop.media.spectrograms import audio_loader
from mmcoop.media.transforms import Crop

NAME = "ave-ogmge"
LAYOUT = """
<root>/
  stat.txt                  class names, one per line (first comma-separated field); index = sorted order
  my_train.txt, my_test.txt rows "<class>,<clip id>" (val: a seeded, stratified val_fraction of train)
  audio_spec/<id>.pkl       pickled 2-D spectrogram array per clip
  visual/<id>/frame_00001.jpg ...   frames, sorted by name
"""
AUDIO = "audio_spec/{id}.pkl"
VISUAL = "visual/{id}"
VAL_TAG = 0xA7E0


@paper_dataset(NAME)
def load_ave_ogmge_sources(
    root: Path | str,
    *,
    num_frames: int = 3,
    image_size: int = 224,
    train_frames: TrainChoice = "fixed",
    eval_frames: EvalChoice = "start",
    train_crop: Crop = "random-resized",
    stat_file: str = "stat.txt",
    train_file: str = "my_train.txt",
    test_file: str = "my_test.txt",
    audio: str = AUDIO,
    visual: str = VISUAL,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """AVE train/val/test sources in the OGM-GE layout (`LAYOUT`).

    Args:
        root: dataset folder.
        num_frames / image_size / train_frames / eval_frames / train_crop: frame options
            (defaults: OGM-GE's 3 frames, first of each third in train and eval).
        stat_file / train_file / test_file / audio / visual: paths relative to ``root``.
        val_fraction / seed: the carved validation split.
        on_missing: ``skip`` (warn and count) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` (``audio`` ``[1, F, T]``, ``visual``).
    """
    root = Path(root)
    classes = sorted({fields[0] for _, fields in read_csv_rows(root / stat_file, LAYOUT, 1, "class list")})
    to_index = {c: i for i, c in enumerate(classes)}
    parts, infos = {}, {}
    for split, name in (("train", train_file), ("test", test_file)):
        path = root / name
        rows: dict[str, str] = {}
        duplicates = 0
        for lineno, (label, clip_id, *_) in read_csv_rows(path, LAYOUT, 2):
            if label not in to_index:
                raise layout_error(f"label {label!r} on line {lineno} of {path} is not in {root / stat_file}", LAYOUT)
            if clip_id in rows:
                duplicates += 1
                del rows[clip_id]  # OGM-GE: a repeated id replaces the earlier row
            rows[clip_id] = label
        clips = [
            Clip(cid, to_index[lab], {"audio": root / fill(audio, id=cid), "visual": root / fill(visual, id=cid)})
            for cid, lab in rows.items()
        ]
        parts[split], infos[split] = keep_present(NAME, split, clips, path, LAYOUT, on_missing)
        infos[split]["duplicates"] = duplicates
    parts["train"], parts["val"] = carve_val(parts["train"], val_fraction, seed, VAL_TAG)
    infos["val"] = {"carved_from": "train", "val_fraction": val_fraction, "seed": seed}
    loaders = {
        "audio": audio_loader("audio", audio, LAYOUT, parts["train"] + parts["val"] + parts["test"]),
        "visual": FrameFolder("visual", LAYOUT, num_frames, image_size, train_frames, eval_frames, train_crop),
    }
    common = {
        "dataset": NAME,
        "root": str(root),
        "num_frames": num_frames,
        "image_size": image_size,
        "train_frames": train_frames,
        "eval_frames": eval_frames,
    }
    return split_sources(NAME, parts, infos, len(classes), loaders, classes, common)


# ``mmcoop data prepare --dataset ave`` writes this (OGM-GE) layout: the official AVE preprocessing is OGM-GE's.
register_prepare_spec(
    PrepareSpec(
        "ave",
        "visual",
        "audio_spec",
        "pkl",
        22050,
        "ave-psd",
        "centre",
        10,
        75,
        "mean",
        "frames: OGM-GE pre-processing/AVE&CREMAD/video2frame-1fps.py; audio: preprocess_audio.py + "
        "pre-processing/obtain_audio_spectrogram.py; layout: OGM-GE dataset/dataset.py AVDataset",
    )
)
