"""AVE in the PMR / DI-MML layout (``Audio-1004-SE/*.pkl`` + ``Image-01-FPS-SE/`` + ``&`` split files).

Sources of the facts: fanyunfeng-bit/Modal-Imbalance-PMR ``dataset/AVEDataset.py``
class ``AVEDataset`` and ``data/AVE/video_preprocessing.py`` (``AVE_dataset``), the same
in fanyunfeng-bit/DI-MML ``dataset/AVEDataset.py``:

- split files ``trainSet.txt`` / ``valSet.txt`` / ``testSet.txt`` (3,339 / 402 / 402
  lines in PMR's ``data/AVE/``), lines ``Category&VideoID&Quality&StartTime&EndTime``;
  class index = order of first appearance in ``testSet.txt``; a clip is kept only if its
  pkl and frame folder exist, and a repeated id is skipped (the first row wins);
- audio: ``Audio-1004-SE/<id>.pkl``, a pickled ``[257, 1004]`` array: 16 kHz audio tiled
  to 10 s, clipped to ``[-1, 1]``, ``scipy.signal.spectrogram(nperseg=512,
  noverlap=353)``, ``log(S + 1e-7)``, standardised per clip;
- visual: ``Image-01-FPS-SE/<id>/`` (1 fps frames of the annotated event segment, at
  least 10 per clip, named ``{frame:05d}.jpg``); PMR takes ``--num_frame`` frames (4 for
  AVE in ``bash.sh``), train ``RandomResizedCrop(224)`` + flip, eval
  ``Resize((224, 224))``, ImageNet normalisation.

Differences: PMR takes the first ``num_frame`` files in ``os.listdir`` order (DI-MML a
fixed random subset, ``np.random.seed(999)``); here frames follow
`frame_indices` on the sorted files (train random per
segment, eval middle). Class names absent from ``testSet.txt`` are appended in order
of appearance in train, then val.
"""

from __future__ import annotations

from pathlib import Path

from mmcoop.data.presets import (
    AUDIO_VISUAL,
    PEER_TRAIN,
    PMR_SOURCE,
    register_preset,
    resnet18_model,
)
from mmcoop.datasets._layout import (
    SPLITS,
    OnMissing,
    class_index,
    fill,
    keep_present,
    read_lines,
    split_sources,
)
from mmcoop.datasets.paper import paper_dataset
from mmcoop.media.clips import Clip, ClipSource, layout_error
from mmcoop.media.frame_folders import FrameFolder
from mmcoop.media.frames import EvalChoice, TrainChoice
from mmcoop.media.spectrograms import audio_loader
from mmcoop.media.transforms import Crop

NAME = "ave"
LAYOUT = """
<root>/
  trainSet.txt, valSet.txt, testSet.txt   lines "Category&VideoID&Quality&StartTime&EndTime"
  Audio-1004-SE/<id>.pkl                  pickled 2-D spectrogram per clip (official [257, 1004])
  Image-01-FPS-SE/<id>/*.jpg              1 fps frames of the event segment, sorted by name
"""
AUDIO = "Audio-1004-SE/{id}.pkl"
VISUAL = "Image-01-FPS-SE/{id}"
SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}


def parse_split_file(path: Path) -> list[tuple[str, str]]:
    """``(clip id, category)`` per line of an ``&``-separated AVE split file.

    Raises:
        DataError: missing file or a line with fewer than 2 ``&`` fields (file and line named).
    """
    out = []
    for lineno, line in enumerate(read_lines(path, LAYOUT), start=1):
        fields = [f.strip() for f in line.split("&")]
        if len(fields) < 2 or not fields[0] or not fields[1]:
            raise layout_error(
                f"malformed line {lineno} of {path}: {line!r}; expected 'Category&VideoID&Quality&StartTime&EndTime'",
                LAYOUT,
            )
        out.append((fields[1], fields[0]))
    return out


@paper_dataset(NAME)
def load_ave_pmr_sources(
    root: Path | str,
    *,
    num_frames: int = 4,
    image_size: int = 224,
    train_frames: TrainChoice = "random",
    eval_frames: EvalChoice = "centre",
    train_crop: Crop = "random-resized",
    audio: str = AUDIO,
    visual: str = VISUAL,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """AVE train/val/test sources in the PMR / DI-MML layout (`LAYOUT`).

    Args:
        root: dataset folder.
        num_frames: frames per clip (PMR ``--num_frame 4`` for AVE).
        image_size / train_frames / eval_frames / train_crop: frame options.
        audio / visual: path templates relative to ``root`` (``{id}`` = VideoID).
        on_missing: ``skip`` (warn and count) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` (``audio`` ``[1, F, T]``, ``visual``).
    """
    root = Path(root)
    rows = {s: parse_split_file(root / SPLIT_FILES[s]) for s in SPLITS}
    to_index = class_index(cat for s in ("test", "train", "val") for _, cat in rows[s])
    classes = list(to_index)
    parts, infos = {}, {}
    for split in SPLITS:
        seen: set[str] = set()
        clips = []
        for cid, cat in rows[split]:
            if cid in seen:
                continue  # PMR: `if audio_path not in self.audio` keeps the first row
            seen.add(cid)
            clips.append(
                Clip(cid, to_index[cat], {"audio": root / fill(audio, id=cid), "visual": root / fill(visual, id=cid)})
            )
        parts[split], infos[split] = keep_present(NAME, split, clips, root / SPLIT_FILES[split], LAYOUT, on_missing)
        infos[split]["duplicates"] = len(rows[split]) - len(clips)
    loaders = {
        "audio": audio_loader("audio", audio, LAYOUT, [c for s in SPLITS for c in parts[s]]),
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


register_preset(
    NAME, num_frames=4, num_classes=28, train=PEER_TRAIN, model=resnet18_model(AUDIO_VISUAL, 0.0), source=PMR_SOURCE
)
