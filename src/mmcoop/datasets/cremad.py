"""CREMA-D in the OGM-GE layout: wav files turned into log-STFT spectrograms at load.

Source of the facts: GeWu-Lab/OGM-GE_CVPR2022, ``dataset/CramedDataset.py``, class
``CramedDataset``, with ``data/CREMAD/train.csv`` (6,698 rows) / ``test.csv`` (744 rows)
and ``main.py`` (``--fps 1``):

- split csv rows ``<clip>,<label>`` (read with encoding ``UTF-8-sig``), classes
  ``NEU HAP SAD FEA DIS ANG`` -> 0..5; a clip is kept only if ``<audio_path>/<clip>.wav``
  and ``<visual_path>/Image-01-FPS/<clip>`` exist;
- audio: ``librosa.load(sr=22050)``, ``np.tile(x, 3)[:22050 * 3]``, clip to ``[-1, 1]``,
  ``librosa.stft(n_fft=512, hop_length=353)``, ``log(|S| + 1e-7)`` -> ``[257, 188]``,
  unsqueezed to ``[1, 257, 188]`` in ``main.py``; no augmentation;
- visual: ``args.fps`` (1) frames of ``Image-01-FPS/<clip>/`` (frames extracted at 1 fps
  by ``data/CREMAD/video_preprocessing.py``), train ``RandomResizedCrop(224)`` + flip,
  eval ``Resize((224, 224))``, ImageNet normalisation;
- no validation split (OGM-GE selects on test).

Differences: the official loader takes the *first* ``fps`` files in ``os.listdir``
order (its random ``select_index`` is unused); here frames follow
`frame_indices` on the sorted files (train random
per segment, eval middle). Clips shorter than 1 s are tiled to 3 s (``np.tile(x, 3)``
would leave them short). PMR (fanyunfeng-bit/Modal-Imbalance-PMR ``bash.sh``) trains
with ``--num_frame 3``; BalanceBenchmark (``configs/dataset_config.yaml``) with 2 frames:
set ``num_frames``. Val: a seeded, class-stratified ``val_fraction`` (default 0.1) of
train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    fill,
    keep_present,
    read_csv_rows,
    split_sources,
)
from mmcoop.datasets.paper import paper_dataset
from mmcoop.media.clips import Clip, ClipSource, ModalityLoader, layout_error
from mmcoop.media.frame_folders import FrameFolder
from mmcoop.media.frames import EvalChoice, TrainChoice
from mmcoop.media.prepare_spec import PrepareSpec, register_prepare_spec
from mmcoop.media.spectrograms import WavSpectrogram
from mmcoop.media.transforms import Crop

NAME = "cremad"
CLASSES = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")
LAYOUT = """
<root>/
  train.csv, test.csv         rows "<clip>,<label>" with <label> in NEU HAP SAD FEA DIS ANG
                              (val: a seeded, stratified val_fraction of train)
  AudioWAV/<clip>.wav         the CREMA-D recordings (PCM wav, any rate: resampled to 22,050 Hz)
  Image-01-FPS/<clip>/*.jpg   frames at 1 fps, sorted by name
"""
AUDIO = "AudioWAV/{id}.wav"
VISUAL = "Image-01-FPS/{id}"
VAL_TAG = 0xC4E3
#: OGM-GE CramedDataset: 22,050 Hz, 3 s (tile x3), n_fft 512, hop 353 -> [1, 257, 188].
WAV: dict[str, Any] = {"sample_rate": 22050, "window_s": 3.0, "tile_s": 3.0, "n_fft": 512, "hop_length": 353}


@paper_dataset(NAME)
def load_cremad_sources(
    root: Path | str,
    *,
    num_frames: int = 1,
    image_size: int = 224,
    train_frames: TrainChoice = "random",
    eval_frames: EvalChoice = "centre",
    train_crop: Crop = "random-resized",
    train_csv: str = "train.csv",
    test_csv: str = "test.csv",
    audio: str = AUDIO,
    visual: str = VISUAL,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """CREMA-D train/val/test sources (layout: `LAYOUT`).

    Args:
        root: dataset folder.
        num_frames: frames per clip (OGM-GE 1, PMR 3).
        image_size / train_frames / eval_frames / train_crop: frame options (see
            `FrameFolder`).
        train_csv / test_csv / audio / visual: paths relative to ``root`` (``{id}`` = clip).
        val_fraction / seed: the carved validation split.
        on_missing: ``skip`` (warn and count) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` with ``audio`` ``[1, 257, 188]``
            and ``visual`` ``[T, 3, S, S]``.
    """
    root = Path(root)
    to_index = {c: i for i, c in enumerate(CLASSES)}
    parts, infos = {}, {}
    for split, name in (("train", train_csv), ("test", test_csv)):
        path = root / name
        clips = []
        for lineno, (clip_id, label, *_) in read_csv_rows(path, LAYOUT, 2):
            if label not in to_index:
                raise layout_error(f"unknown label {label!r} on line {lineno} of {path}", LAYOUT)
            clips.append(
                Clip(
                    clip_id,
                    to_index[label],
                    {"audio": root / fill(audio, id=clip_id), "visual": root / fill(visual, id=clip_id)},
                )
            )
        parts[split], infos[split] = keep_present(NAME, split, clips, path, LAYOUT, on_missing)
    parts["train"], parts["val"] = carve_val(parts["train"], val_fraction, seed, VAL_TAG)
    infos["val"] = {"carved_from": "train", "val_fraction": val_fraction, "seed": seed}
    loaders: dict[str, ModalityLoader] = {
        "audio": WavSpectrogram("audio", LAYOUT, **WAV),
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
    return split_sources(NAME, parts, infos, len(CLASSES), loaders, CLASSES, common)


register_preset(
    NAME, num_frames=1, num_classes=6, train=PEER_TRAIN, model=resnet18_model(AUDIO_VISUAL, 0.0), source=OGMGE_SOURCE
)
register_prepare_spec(
    PrepareSpec(
        NAME,
        "Image-01-FPS",
        "AudioWAV",
        "wav",
        16000,
        None,
        "start",
        None,
        95,
        "mean",
        "frames: OGM-GE data/CREMAD/video_preprocessing.py; audio: 16 kHz mono wav as CREMA-D's AudioWAV, "
        "log-STFT at load (dataset/CramedDataset.py; SPECTROGRAMS['cremad-stft'])",
    )
)
