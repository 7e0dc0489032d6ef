"""VGGSound in the OGM-GE layout: the official csv, wav (or precomputed) audio and frame folders.

Sources of the facts: GeWu-Lab/OGM-GE_CVPR2022 ``dataset/VGGSoundDataset.py`` class
``VGGSound`` (``main.py``: 309 classes, ``--use_video_frames 3``) and
``data/VGGSound/mp4_to_wav.py``; GeWu-Lab/BalanceBenchmark
``balancemm/datasets/VGG_dataset.py`` class ``VGGSoundDataset`` (same csv, ``.npy``
audio, frame folders without the ``.mp4`` suffix):

- ``vggsound.csv`` rows ``<YouTube id>,<start seconds>,<label>,<train|test>`` (the
  official VGGSound csv); the clip id is ``<YouTube id>_<start>``; class index = order
  of first appearance among the train rows found on disk (here: first appearance among
  all train rows of the csv, so indices do not depend on which clips were downloaded);
- audio: ``<id>.wav`` extracted with ``ffmpeg -acodec pcm_s16le -ar 16000``, loaded with
  ``librosa.load(sr=16000, mono=True)``, tiled (doubling) until >= 10 s, a 5 s window
  from a random start in ``[0, 5 s]`` (``random.randint(0, rate*5)``), clipped to
  ``[-1, 1]``, ``librosa.stft(n_fft=256, hop_length=128)``, ``log(|S| + 1e-7)`` ->
  ``[1, 129, 626]``;
- visual: ``Image-01-FPS/<id>.mp4/`` frames (OGM-GE) or ``<id>/`` (BalanceBenchmark),
  3 frames; BalanceBenchmark picks them per third exactly as the official KS loader
  (``image_samples[t - 1]`` of the sorted files, ``t`` as in ``AV_KS_Dataset``: the
  default ``ks-official`` choice here), OGM-GE the first 3 files in ``os.listdir``
  order; the KS transforms; OGM-GE keeps only clips with more than 3 frames;
- no validation split.

Differences: OGM-GE draws the audio window at random in eval too; here eval takes the
middle window (start 2.5 s), so evaluation is deterministic. Frame folders are not
listed at load (the ``> 3 frames`` filter would read every folder): clips with fewer
frames repeat frames. Val: a seeded, class-stratified ``val_fraction`` (default 0.1)
of train.
"""

from __future__ import annotations

from pathlib import Path

from mmcoop.data.presets import (
    AUDIO_VISUAL,
    OGMGE_SOURCE,
    PEER_TRAIN,
    register_preset,
    resnet18_model,
)
from mmcoop.datasets._layout import (
    OnMissing,
    carve_val,
    class_index,
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

NAME = "vggsound"
LAYOUT = """
<root>/
  vggsound.csv                  rows "<YouTube id>,<start seconds>,<label>,<train|test>" (the official csv;
                                val: a seeded, stratified val_fraction of train)
  audio/<split>/<id>.wav        audio per clip (any PCM rate: resampled to 16 kHz), or precomputed .npy/.pkl
  visual/<split>/<id>/*.jpg     frames at 1 fps, sorted by name
  with <split> = train | test and <id> = "<YouTube id>_<start>" (id_format)
(OGM-GE names: audio="{split}-audios/{split}-set/{id}.wav",
 visual="{split}-videos/{split}-set-img/Image-01-FPS/{id}.mp4")
"""
CSV = "vggsound.csv"
AUDIO = "audio/{split}/{id}.wav"
VISUAL = "visual/{split}/{id}"
ID_FORMAT = "{ytid}_{start}"
VAL_TAG = 0x7665
#: OGM-GE VGGSound: 16 kHz, tile to 10 s, 5 s window, n_fft 256, hop 128 -> [1, 129, 626].
WAV = {"sample_rate": 16000, "window_s": 5.0, "tile_s": 10.0, "n_fft": 256, "hop_length": 128, "random_window": True}


@paper_dataset(NAME)
def load_vggsound_sources(
    root: Path | str,
    *,
    num_frames: int = 3,
    image_size: int = 224,
    train_frames: TrainChoice = "ks-official",
    eval_frames: EvalChoice = "ks-official",
    train_crop: Crop = "random-resized",
    csv_file: str = CSV,
    audio: str = AUDIO,
    visual: str = VISUAL,
    id_format: str = ID_FORMAT,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """VGGSound train/val/test sources (layout: `LAYOUT`).

    Args:
        root: dataset folder.
        num_frames / image_size / train_frames / eval_frames / train_crop: frame options.
        csv_file / audio / visual: paths relative to ``root``; templates take ``{split}``
            (``train`` or ``test``, the csv's split) and ``{id}``. An audio template ending
            in ``.wav`` computes the OGM-GE spectrogram at load; ``.npy``/``.pkl`` read it.
        id_format: clip id from ``{ytid}`` (str) and ``{start}`` (int), e.g.
            ``"{ytid}_{start:06d}"`` for zero-padded file names.
        val_fraction / seed: the carved validation split.
        on_missing: ``skip`` (warn and count, as OGM-GE skips) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` (``audio``, ``visual``).
    """
    root = Path(root)
    path = root / csv_file
    rows = read_csv_rows(path, LAYOUT, 4)
    by_split: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for lineno, (ytid, start, label, split, *_) in rows:
        if split not in by_split:
            if lineno == 1 and not start.lstrip("-").isdigit():
                continue  # a header row
            raise layout_error(f"line {lineno} of {path} has split {split!r}; expected train or test", LAYOUT)
        try:
            clip_id = fill(id_format, ytid=ytid, start=int(start))
        except ValueError:
            raise layout_error(f"line {lineno} of {path}: start {start!r} is not an integer", LAYOUT) from None
        by_split[split].append((clip_id, label))
    to_index = class_index(lab for s in ("train", "test") for _, lab in by_split[s])
    parts, infos = {}, {}
    for split, items in by_split.items():
        clips = [
            Clip(
                cid,
                to_index[lab],
                {"audio": root / fill(audio, split=split, id=cid), "visual": root / fill(visual, split=split, id=cid)},
            )
            for cid, lab in items
        ]
        parts[split], infos[split] = keep_present(NAME, split, clips, path, LAYOUT, on_missing)
    parts["train"], parts["val"] = carve_val(parts["train"], val_fraction, seed, VAL_TAG)
    infos["val"] = {"carved_from": "train", "val_fraction": val_fraction, "seed": seed}
    loaders = {
        "audio": audio_loader("audio", audio, LAYOUT, parts["train"] + parts["val"] + parts["test"], wav=WAV),
        "visual": FrameFolder("visual", LAYOUT, num_frames, image_size, train_frames, eval_frames, train_crop),
    }
    common = {
        "dataset": NAME,
        "root": str(root),
        "num_frames": num_frames,
        "image_size": image_size,
        "train_frames": train_frames,
        "eval_frames": eval_frames,
        "audio_params": dict(WAV),
    }
    return split_sources(NAME, parts, infos, len(to_index), loaders, list(to_index), common)


register_preset(
    NAME, num_frames=3, num_classes=309, train=PEER_TRAIN, model=resnet18_model(AUDIO_VISUAL, 0.0), source=OGMGE_SOURCE
)
register_prepare_spec(
    PrepareSpec(
        NAME,
        "visual",
        "audio",
        "npy",
        16000,
        "vggsound-stft",
        "start",
        None,
        95,
        "mean",
        "frames: OGM-GE data/VGGSound/video_preprocessing.py; audio: data/VGGSound/mp4_to_wav.py + "
        "dataset/VGGSoundDataset.py (5 s window fixed at offset 0)",
    )
)
