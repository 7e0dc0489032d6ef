"""UCF-101 as two modalities: RGB frames and TV-L1 optical flow (u/v greyscale frames).

Sources of the facts: GeWu-Lab/BalanceBenchmark ``balancemm/datasets/ucf101_dataset.py``
class ``UCF101Dataset`` (ResNet-18 RGB + flow, 3 frames, the GeWu-Lab benchmark of the
paper's group) and fanyunfeng-bit/DI-MML ``dataset/UCFDataset.py`` with
``data/UCF/{classInd,trainlist01,testlist01}.txt`` (the widely shared two-stream layout
``jpegs_256/<video>/frame000001.jpg``, ``tvl1_flow/{u,v}/<video>/frame000001.jpg``):

- ``classInd.txt`` lines ``<index> <ClassName>`` (1-based); ``trainlist0K.txt`` lines
  ``<ClassName>/<video>.avi <index>``, ``testlist0K.txt`` lines ``<ClassName>/<video>.avi``;
  the video id is the file name without extension; label = class index - 1;
- RGB: 3 frames, one per third (train random, eval ``i*seg + max(seg//2, 1)``, 1-based),
  train ``Resize((224, 224))`` + ``RandomHorizontalFlip``, eval ``Resize((224, 224))``,
  ImageNet normalisation -> ``[3, T, 224, 224]`` there;
- flow: the same frame choice on the u folder's count; u and v greyscale images each
  ``Resize((224, 224))`` (+ flip in train), ``ToTensor`` (no normalisation by default),
  concatenated to 2 channels -> ``[T, 2, 224, 224]``;
- no validation split (``validation: false`` in ``configs/dataset_config.yaml``).

Differences: BalanceBenchmark draws the RGB frames from the first 6 files only and flips
u, v and RGB independently; here each modality's frames span its whole folder
(sorted), eval takes the middle of each third, and the u and v images of one frame
share their flip. Val: a seeded, class-stratified ``val_fraction`` (default 0.1) of
train.
"""

from __future__ import annotations

from pathlib import Path

from mmcoop.data.presets import (
    PAPER_SOURCE,
    PAPER_TRAIN,
    register_preset,
    resnet18_model,
)
from mmcoop.datasets._layout import (
    OnMissing,
    carve_val,
    fill,
    keep_present,
    read_lines,
    split_sources,
)
from mmcoop.datasets.paper import paper_dataset
from mmcoop.media.clips import Clip, ClipSource, ModalityLoader, layout_error
from mmcoop.media.frame_folders import FlowFolders, FrameFolder
from mmcoop.media.frames import EvalChoice, TrainChoice
from mmcoop.media.transforms import IMAGENET_MEAN, IMAGENET_STD, Crop

NAME = "ucf101"
LAYOUT = """
<root>/
  classInd.txt                         lines "<index> <ClassName>" (1-based)
  trainlist01.txt, testlist01.txt      lines "<ClassName>/<video>.avi [<index>]" (fold 1; also 02, 03)
                                       (val: a seeded, stratified val_fraction of train)
  jpegs_256/<video>/frame000001.jpg ...          RGB frames, sorted by name
  tvl1_flow/u/<video>/frame000001.jpg ...        horizontal flow as greyscale JPEG
  tvl1_flow/v/<video>/frame000001.jpg ...        vertical flow as greyscale JPEG
"""
RGB = "jpegs_256/{id}"
FLOW_U = "tvl1_flow/u/{id}"
FLOW_V = "tvl1_flow/v/{id}"
VAL_TAG = 0x0CF1


def read_class_index(path: Path) -> dict[str, int]:
    """Class name -> 0-based index from ``classInd.txt``.

    Raises:
        DataError: missing file or a line that is not ``<int> <name>``.
    """
    out = {}
    for lineno, line in enumerate(read_lines(path, LAYOUT, "class index file"), start=1):
        fields = line.split()
        if len(fields) != 2 or not fields[0].isdigit():
            raise layout_error(f"malformed line {lineno} of {path}: {line!r}; expected '<index> <ClassName>'", LAYOUT)
        out[fields[1]] = int(fields[0]) - 1
    return out


def parse_list(path: Path, classes: dict[str, int]) -> list[tuple[str, int]]:
    """``(video id, label)`` of a train/test list; the label comes from the class folder name."""
    lower = {k.lower(): v for k, v in classes.items()}
    out = []
    for lineno, line in enumerate(read_lines(path, LAYOUT), start=1):
        rel = line.split()[0]
        if "/" not in rel:
            raise layout_error(
                f"malformed line {lineno} of {path}: {line!r}; expected '<ClassName>/<video>.avi'", LAYOUT
            )
        cls, name = rel.split("/")[-2], rel.split("/")[-1]
        label = classes.get(cls, lower.get(cls.lower()))
        if label is None:
            raise layout_error(f"class {cls!r} on line {lineno} of {path} is not in the class index file", LAYOUT)
        out.append((name.rsplit(".", 1)[0], label))
    return out


@paper_dataset(NAME)
def load_ucf101_sources(
    root: Path | str,
    *,
    fold: int = 1,
    num_frames: int = 3,
    image_size: int = 224,
    train_frames: TrainChoice = "random",
    eval_frames: EvalChoice = "centre",
    train_crop: Crop = "resize",
    class_file: str = "classInd.txt",
    train_list: str = "trainlist{fold:02d}.txt",
    test_list: str = "testlist{fold:02d}.txt",
    rgb: str = RGB,
    flow_u: str = FLOW_U,
    flow_v: str = FLOW_V,
    flow_mean: tuple[float, float] | None = None,
    flow_std: tuple[float, float] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    on_missing: OnMissing = "skip",
) -> dict[str, ClipSource]:
    """UCF-101 train/val/test sources with modalities ``rgb`` and ``flow`` (`LAYOUT`).

    Args:
        root: dataset folder.
        fold: official split 1, 2 or 3.
        num_frames / image_size / train_frames / eval_frames: frame options (both modalities).
        train_crop: ``resize`` (BalanceBenchmark) or ``random-resized``.
        class_file / train_list / test_list / rgb / flow_u / flow_v: paths relative to
            ``root`` (lists take ``{fold}``, folders ``{id}``).
        flow_mean / flow_std: optional per-channel (u, v) normalisation after ``/ 255``.
        val_fraction / seed: the carved validation split.
        on_missing: ``skip`` (warn and count) or ``error``.

    Returns:
        ``{"train", "val", "test"}`` -> `ClipSource` with ``rgb`` ``[T, 3, S, S]``
            and ``flow`` ``[T, 2, S, S]``.
    """
    root = Path(root)
    if int(fold) not in (1, 2, 3):
        raise layout_error(f"fold must be 1, 2 or 3, got {fold}", LAYOUT)
    classes = read_class_index(root / class_file)
    parts, infos = {}, {}
    for split, template in (("train", train_list), ("test", test_list)):
        path = root / fill(template, fold=int(fold))
        clips = [
            Clip(
                vid,
                lab,
                {"rgb": root / fill(rgb, id=vid), "flow": (root / fill(flow_u, id=vid), root / fill(flow_v, id=vid))},
            )
            for vid, lab in parse_list(path, classes)
        ]
        parts[split], infos[split] = keep_present(NAME, split, clips, path, LAYOUT, on_missing)
    parts["train"], parts["val"] = carve_val(parts["train"], val_fraction, seed, VAL_TAG)
    infos["val"] = {"carved_from": "train", "val_fraction": val_fraction, "seed": seed}
    loaders: dict[str, ModalityLoader] = {
        "rgb": FrameFolder(
            "rgb",
            LAYOUT,
            num_frames,
            image_size,
            train_frames,
            eval_frames,
            train_crop,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        ),
        "flow": FlowFolders(
            "flow", LAYOUT, num_frames, image_size, train_frames, eval_frames, train_crop, mean=flow_mean, std=flow_std
        ),
    }
    names = sorted(classes, key=classes.__getitem__)
    common = {
        "dataset": NAME,
        "root": str(root),
        "fold": int(fold),
        "num_frames": num_frames,
        "image_size": image_size,
        "train_frames": train_frames,
        "eval_frames": eval_frames,
    }
    return split_sources(NAME, parts, infos, max(classes.values()) + 1, loaders, names, common)


register_preset(
    NAME,
    num_frames=3,
    num_classes=101,
    train=PAPER_TRAIN,
    model=resnet18_model({"rgb": "resnet18-frames", "flow": "resnet18-frames"}, 0.02),
    source=PAPER_SOURCE + " (Kinetics-Sounds settings: the released code has no UCF-101 script)",
)
