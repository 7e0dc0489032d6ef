"""Tiny audio-visual datasets in the paper layouts, built from real content in the shared data folder.

Frames are MNIST test digits (``mnist/t10k-images-idx3-ubyte.gz``) upscaled to a
non-square JPEG and coloured per channel (R = digit, G = inverted digit, B = half
digit) so that channel order and resizing are visible; audio is Free Spoken Digit
recordings (``fsdd/recordings/*.wav``) as wav files, or their log spectrogram as
``.npy`` / pickled ``.pkl``. Every clip gets distinct digits and a distinct recording.

Each ``build_*`` writes one layout under ``root`` and returns what a test needs to
check the reader: clip ids per split and their labels.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

FRAME_SIZE = (36, 30)  # width, height of the written JPEGs (non-square on purpose)
SPEC_SHAPE = (20, 16)  # stored spectrogram arrays (time frames x frequency bins)


def read_mnist_images(data_root: Path, count: int) -> np.ndarray:
    """The first ``count`` MNIST test images, uint8 ``[count, 28, 28]`` (IDX format, magic 2051)."""
    raw = gzip.decompress((data_root / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert int.from_bytes(raw[:4], "big") == 2051
    n, h, w = (int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(3))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w)[:count]


@dataclass
class Content:
    """Hands out distinct MNIST digits and FSDD recordings, in order."""

    data_root: Path
    digits: np.ndarray = field(init=False)
    wavs: list[Path] = field(init=False)
    _d: int = 0
    _w: int = 0

    def __post_init__(self) -> None:
        self.digits = read_mnist_images(self.data_root, 2000)
        self.wavs = sorted((self.data_root / "fsdd" / "recordings").glob("*.wav"))

    def digit(self) -> np.ndarray:
        self._d += 1
        return self.digits[self._d - 1]

    def wav(self) -> Path:
        self._w += 1
        return self.wavs[self._w - 1]


def frame_image(digit: np.ndarray, mode: str = "RGB") -> Image.Image:
    """A digit as a ``FRAME_SIZE`` image: RGB (digit, inverted, half) or greyscale ``L``."""
    d = np.asarray(Image.fromarray(digit).resize(FRAME_SIZE, Image.BILINEAR))
    if mode == "L":
        return Image.fromarray(d)
    return Image.fromarray(np.stack([d, 255 - d, d // 2], axis=2))


def write_frames(
    folder: Path, content: Content, count: int, pattern: str = "frame_{:05d}.jpg", start: int = 1, mode: str = "RGB"
) -> list[Path]:
    """``count`` JPEG frames named ``pattern.format(start + i)`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = folder / pattern.format(start + i)
        frame_image(content.digit(), mode).save(p, quality=95)
        paths.append(p)
    return paths


def fsdd_spectrogram(wav: Path, shape: tuple[int, int] = SPEC_SHAPE) -> np.ndarray:
    """``log(1 + |rfft|)`` of 128-sample frames (hop 64) of a recording, cropped/padded to ``shape``."""
    from mmcoop.media.audio import read_wav

    x, _ = read_wav(wav)
    x = np.pad(x, (0, max(0, 128 + 64 * shape[0] - len(x))))
    frames = np.stack([x[i * 64 : i * 64 + 128] * np.hanning(128) for i in range(shape[0])])
    return np.log1p(np.abs(np.fft.rfft(frames, axis=1)))[:, : shape[1]].astype(np.float32)


def write_spectrogram(path: Path, content: Content) -> np.ndarray:
    """A recording's spectrogram saved as ``.npy`` or pickled ``.pkl`` (by suffix); returns the array."""
    arr = fsdd_spectrogram(content.wav())
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, arr)
    else:
        with open(path, "wb") as fh:
            pickle.dump(arr, fh)
    return arr


def copy_wav(path: Path, content: Content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(content.wav(), path)
    return path


@dataclass
class Built:
    """What a fixture holds: per split, ``[(clip id, label)]`` written, plus extra notes."""

    root: Path
    clips: dict[str, list[tuple[str, int]]]
    extra: dict = field(default_factory=dict)


def ks_media(root: Path, content: Content, split: str, clip_id: str, frames: int, audio_ext: str = ".npy") -> None:
    """KS-layout media of one clip: ``audio/<split>/<id>.npy`` and ``visual/<split>/<id>/frame_0000N.jpg``."""
    write_spectrogram(root / "audio" / split / f"{clip_id}{audio_ext}", content)
    write_frames(root / "visual" / split / clip_id, content, frames)


def build_kinetics_sounds(root: Path, content: Content, frames: int = 10) -> Built:
    """3 classes; train 2 clips/class, val and test 1 clip/class; plus 1 listed-but-absent train clip."""
    clips: dict[str, list[tuple[str, int]]] = {}
    for split, per_class in (("train", 2), ("val", 1), ("test", 1)):
        rows = [(f"ks{split}{c}{k}", c) for c in range(3) for k in range(per_class)]
        lines = [f"/data/ks/{split}/{cid} {frames} {lab}" for cid, lab in rows]
        for cid, _ in rows:
            ks_media(root, content, split, cid, frames)
        if split == "train":
            lines.append(f"/data/ks/train/absent_clip {frames} 1")
        (root / f"{split}_1fps_path.txt").write_text("\n".join(lines) + "\n")
        clips[split] = rows
    return Built(root, clips)


def build_mm_debiased(root: Path, content: Content, split_json: Path, per_split: int = 2, frames: int = 10) -> Built:
    """KS-layout media for the first ``per_split`` ids of each subset of the real MM-Debiased json."""
    data = json.loads(split_json.read_text())
    classes = sorted({v["label"] for v in data.values()})
    names = {"training": "train", "validation": "val", "testing": "test"}
    clips: dict[str, list[tuple[str, int]]] = {s: [] for s in names.values()}
    for cid, entry in data.items():
        split = names[entry["subset"]]
        if len(clips[split]) < per_split:
            ks_media(root, content, split, cid, frames)
            clips[split].append((cid, classes.index(entry["label"])))
    return Built(
        root,
        clips,
        {"listed": {s: sum(names[v["subset"]] == s for v in data.values()) for s in clips}, "classes": classes},
    )


CREMAD_LABELS = ("NEU", "HAP", "SAD", "FEA", "DIS", "ANG")


def build_cremad(root: Path, content: Content, frames: int = 3) -> Built:
    """6 classes x (train 2, test 1) clips with FSDD wavs (8 kHz) and 1 fps frames."""
    clips = {"train": [], "test": []}
    for split, per_class in (("train", 2), ("test", 1)):
        rows = []
        for c, lab in enumerate(CREMAD_LABELS):
            for k in range(per_class):
                cid = f"10{c}{k}_{split[:2].upper()}_{lab}_XX"
                copy_wav(root / "AudioWAV" / f"{cid}.wav", content)
                write_frames(root / "Image-01-FPS" / cid, content, frames, pattern="{:05d}.jpg", start=0)
                rows.append((cid, c))
                clips[split].append((cid, c))
        text = "".join(f"{cid},{CREMAD_LABELS[c]}\n" for cid, c in rows)
        (root / f"{split}.csv").write_text("\ufeff" + text)  # the official csv starts with a BOM
    return Built(root, clips)


AVE_CLASSES = ("Church bell", "Male speech, man speaking", "Dog")


def build_ave_ogmge(root: Path, content: Content, frames: int = 9) -> Built:
    """OGM-GE ``AVDataset`` layout: stat.txt, my_train/my_test csv, audio_spec pkl, visual frames."""
    (root / "stat.txt").write_text("".join(f'"{c}"\n' for c in AVE_CLASSES))
    order = sorted(AVE_CLASSES)
    clips = {"train": [], "test": []}
    for split, per_class in (("train", 3), ("test", 1)):
        lines = []
        for cls in AVE_CLASSES:
            for k in range(per_class):
                cid = f"ave{split}{AVE_CLASSES.index(cls)}{k}"
                write_spectrogram(root / "audio_spec" / f"{cid}.pkl", content)
                write_frames(root / "visual" / cid, content, frames)
                lines.append(f'"{cls}",{cid}')
                clips[split].append((cid, order.index(cls)))
        (root / f"my_{split}.txt").write_text("\n".join(lines) + "\n")
    return Built(root, clips, {"classes": order})


def build_ave_pmr(root: Path, content: Content, frames: int = 10) -> Built:
    """PMR / DI-MML layout: ``&`` split files, Audio-1004-SE pkl, Image-01-FPS-SE frames (``00000.jpg``)."""
    test_order = [AVE_CLASSES[2], AVE_CLASSES[0], AVE_CLASSES[1]]  # class index = first appearance in testSet
    clips: dict[str, list[tuple[str, int]]] = {}
    for split, per_class, fname in (("train", 2, "trainSet.txt"), ("val", 1, "valSet.txt"), ("test", 1, "testSet.txt")):
        lines, rows = [], []
        for cls in test_order:
            for k in range(per_class):
                cid = f"pmr{split}{AVE_CLASSES.index(cls)}{k}"
                write_spectrogram(root / "Audio-1004-SE" / f"{cid}.pkl", content)
                write_frames(root / "Image-01-FPS-SE" / cid, content, frames, pattern="{:05d}.jpg", start=0)
                lines.append(f"{cls}&{cid}&good&0&10")
                rows.append((cid, test_order.index(cls)))
        if split == "train":
            lines.append(lines[0])  # a repeated row: kept once
        (root / fname).write_text("\n".join(lines) + "\n")
        clips[split] = rows
    return Built(root, clips, {"classes": test_order})


def build_vggsound(root: Path, content: Content, frames: int = 10) -> Built:
    """Official-csv layout with wav audio: 2 classes x (train 3, test 1) + one absent test clip."""
    labels = ("playing cello", "dog barking")
    clips = {"train": [], "test": []}
    lines = []
    for split, per_class in (("train", 3), ("test", 1)):
        for c, lab in enumerate(labels):
            for k in range(per_class):
                ytid, start = f"yt{split}{c}{k}", 10 * k + 30
                cid = f"{ytid}_{start}"
                copy_wav(root / "audio" / split / f"{cid}.wav", content)
                write_frames(root / "visual" / split / cid, content, frames)
                lines.append(f"{ytid},{start},{lab},{split}")
                clips[split].append((cid, c))
    lines.append(f"gone,0,{labels[0]},test")
    (root / "vggsound.csv").write_text("\n".join(lines) + "\n")
    return Built(root, clips, {"classes": labels})


UCF_CLASSES = ("ApplyEyeMakeup", "Archery", "HandstandPushups")


def build_ucf101(root: Path, content: Content, frames: int = 7) -> Built:
    """Two-stream layout: classInd, trainlist01/testlist01, jpegs_256, tvl1_flow/u and v."""
    (root / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES)))
    clips = {"train": [], "test": []}
    for split, per_class in (("train", 3), ("test", 1)):
        lines = []
        for c, cls in enumerate(UCF_CLASSES):
            for k in range(per_class):
                name = cls.replace("Handstand", "HandStand")  # the official video names differ in case
                vid = f"v_{name}_g{k + 1:02d}_c0{1 if split == 'train' else 2}"
                write_frames(root / "jpegs_256" / vid, content, frames, pattern="frame{:06d}.jpg")
                write_frames(root / "tvl1_flow" / "u" / vid, content, frames - 1, pattern="frame{:06d}.jpg", mode="L")
                write_frames(root / "tvl1_flow" / "v" / vid, content, frames - 1, pattern="frame{:06d}.jpg", mode="L")
                lines.append(f"{cls}/{vid}.avi" + (f" {c + 1}" if split == "train" else ""))
                clips[split].append((vid, c))
        (root / f"{split}list01.txt").write_text("\n".join(lines) + "\n")
    return Built(root, clips, {"classes": UCF_CLASSES})


# -- references for the tests: torchvision's own pipelines -------------------------------------------
def reference_eval_frames(files: list[Path], size: int) -> "torch.Tensor":
    """``[T, 3, S, S]``: ``Resize((S, S))``, ``ToTensor``, ImageNet ``Normalize`` of each file (official eval)."""
    import torch
    from torchvision import transforms as T

    tf = T.Compose([T.Resize((size, size)), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    return torch.stack([tf(Image.open(f).convert("RGB")) for f in files])


def reference_train_frames(folder: Path, size: int, num: int, seed: int) -> "torch.Tensor":
    """The official training frames drawn from torch's global generator seeded with ``seed``.

    Frame offset per segment ``randint(0, seg)`` for all segments first (as the reader
    draws them), then per frame ``RandomResizedCrop(S)``, ``RandomHorizontalFlip``,
    ``ToTensor``, ``Normalize`` (official train transforms).
    """
    import torch
    from torchvision import transforms as T

    files = sorted(folder.glob("*.jpg"))
    seg = len(files) // num
    tf = T.Compose(
        [
            T.RandomResizedCrop(size),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
        ]
    )
    torch.manual_seed(seed)
    offsets = torch.randint(0, seg, (num,)).tolist()
    return torch.stack([tf(Image.open(files[i * seg + o]).convert("RGB")) for i, o in enumerate(offsets)])


BALANCED_CLASSES = ("playing piano", "singing", "bowling")


def build_balancedav(root: Path, content: Content, frames: int = 8) -> Built:
    """BalanceBenchmark's BalancedAV layout: annotations.json, audio/<id>.pkl, visual/<id>.hdf5 (JPEG bytes).

    3 classes x (training 3, testing 1) clips and one testing clip listed but absent;
    ``extra["frames"][id]`` holds each clip's encoded frames.
    """
    import io

    import h5py

    database, encoded = {}, {}
    clips: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    (root / "visual").mkdir(parents=True, exist_ok=True)
    for subset, split, per_class in (("training", "train", 3), ("testing", "test", 1)):
        for c, cls in enumerate(BALANCED_CLASSES):
            for k in range(per_class):
                cid = f"bav_{split}_{c}{k}"
                database[cid] = {"subset": subset, "label": cls}
                write_spectrogram(root / "audio" / f"{cid}.pkl", content)
                blobs = []
                for _ in range(frames):
                    buf = io.BytesIO()
                    frame_image(content.digit()).save(buf, format="JPEG", quality=95)
                    blobs.append(buf.getvalue())
                with h5py.File(root / "visual" / f"{cid}.hdf5", "w") as f:
                    ds = f.create_dataset("video", (frames,), dtype=h5py.vlen_dtype(np.uint8))
                    for i, b in enumerate(blobs):
                        ds[i] = np.frombuffer(b, np.uint8)
                encoded[cid] = blobs
                clips[split].append((cid, c))
    database["bav_test_absent"] = {"subset": "testing", "label": BALANCED_CLASSES[0]}
    (root / "annotations.json").write_text(json.dumps({"labels": list(BALANCED_CLASSES), "database": database}))
    return Built(root, clips, {"frames": encoded})


FOOD_CLASSES = ("apple_pie", "sushi", "tacos")


def build_food101(root: Path, content: Content) -> Built:
    """UPMC Food-101 layout: images/<split>/<class>/<file>.jpg and texts/<split>_titles.csv (with header).

    3 classes x (train 3, test 1) images; one test row's image is absent. Titles carry what
    the benchmark's ``clean_text`` removes (a leading ``RT``, ``#``, a URL).
    """
    import csv

    clips: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    titles: dict[str, str] = {}
    (root / "texts").mkdir(parents=True, exist_ok=True)
    for split, per_class in (("train", 3), ("test", 1)):
        rows = []
        for c, cls in enumerate(FOOD_CLASSES):
            folder = root / "images" / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                image = f"{cls}_{split}{k}.jpg"
                frame_image(content.digit()).save(folder / image, quality=95)
                text = f"RT #Best {cls.replace('_', ' ')} recipe number {k}, easy! https://example.org/{cls}/{k}"
                rows.append((image, text, cls))
                clips[split].append((f"{cls}/{image}", c))
                titles[f"{cls}/{image}"] = text
        if split == "test":
            rows.append(("sushi_missing.jpg", "Absent sushi", "sushi"))
        with open(root / "texts" / f"{split}_titles.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["Image_path", "text", "label"])
            w.writerows(rows)
    return Built(root, clips, {"titles": titles})
