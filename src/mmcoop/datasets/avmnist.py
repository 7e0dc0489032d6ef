"""``avmnist``: real audio-visual digits (spoken digit + MNIST image of the same digit).

Modalities (in order):

- ``"audio"``: a Free Spoken Digit Dataset (FSDD) recording, 8 kHz mono, scaled to
  ``[-1, 1]``, zero-padded at the end or centre-cropped to ``duration_s`` (default 1 s
  = 8,000 samples; >99% of clips are shorter), then ``log(1 + |STFT|)`` with a Hann
  window, ``n_fft=256``, ``hop_length=128`` (``center=True``): 129 bins x 63 frames,
  average-pooled over frequency to ``freq_bins=64`` -> image ``[1, 64, 63]``.
- ``"visual"``: an MNIST t10k image ``[1, 28, 28]`` scaled to ``[0, 1]``.

With ``normalize=True`` (default) each modality is standardised by one scalar
mean/std computed on the training split only (stored in ``info["normalization"]``).

Splits: test = takes 0-4 of every digit and speaker (the FSDD convention; 300
clips); validation = a seeded ``val_fraction`` of the remaining clips, stratified by
digit (default 10%: 27 per digit = 270); train = the rest (2,430).

Pairing: the MNIST images of each digit are shuffled (seeded) and partitioned into
three disjoint pools, one per split, sized in proportion to the split's clips of
that digit; each clip gets a distinct image from its split's pool. So no image is in
two splits and no image is used twice. Extras per sample: ``image_index`` (row in
the MNIST t10k files), ``take``, ``speaker`` (index into ``info["speakers"]``),
``clip`` (index into the sorted recordings list).

Data is found by `mmcoop.data.storage` (data root, cache, download) and the
processed tensors are cached, so a second load takes about a second.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from mmcoop.media.audio import fit_length, log_spectrogram, read_wav
from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.data.registry import DATASETS
from mmcoop.data.tensor_source import TensorSource
from mmcoop.data.storage import (
    Component,
    cache_key,
    check_sha256,
    fetch,
    fingerprint,
    load_processed,
    locate,
    processed_cache_enabled,
    processed_path,
    rng,
    save_processed,
    stratified_split,
)
from mmcoop.errors import ConfigError, DataError
from mmcoop.utils.io import atomic_write_bytes

CODE_VERSION = 1  # bump when preprocessing changes, to invalidate cached tensors
SAMPLE_RATE = 8000
TEST_TAKES = 5  # takes 0-4 form the test set

FSDD_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/26eb9aaf.zip"
#: SHA-256 over the sorted recordings: for each file, ``name + b"\0" + sha256(bytes)`` (commit 26eb9aaf).
FSDD_DIGEST = "a2e8a660492f28d9eed6270b290d26cbc5c81d6077ce87d3c0ad5adf4d4ee696"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
#: file name -> SHA-256 of the *decompressed* bytes.
MNIST_FILES = {
    "images": ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "labels": ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
HINT = (
    "Set MMCOOP_DATA (or pass --data-root) to a folder with fsdd/recordings/{digit}_{speaker}_{take}.wav "
    "and mnist/t10k-{images-idx3,labels-idx1}-ubyte.gz, or run once online to download them into the cache."
)
WAV_HINT = "Delete or replace it, or point MMCOOP_DATA/--data-root at a clean copy of the Free Spoken Digit Dataset"
MNIST_HINT = "Replace it with the official MNIST t10k file, or point MMCOOP_DATA/--data-root at a clean copy"
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


# -- downloads (never called when the data is present or MMCOOP_OFFLINE=1) -------------------------
def recordings_digest(files: dict[str, bytes]) -> str:
    """Content digest of a recordings folder (file name -> bytes), compared with `FSDD_DIGEST`."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def _download_fsdd(root: Path) -> None:
    """Download the pinned FSDD archive, verify its recordings, and move them to ``root/fsdd/recordings``."""
    with zipfile.ZipFile(io.BytesIO(fetch(FSDD_URL, timeout=120))) as zf:
        files = {
            Path(n).name: zf.read(n)
            for n in zf.namelist()
            if Path(n).parent.name == "recordings" and n.endswith(".wav")
        }
    if recordings_digest(files) != FSDD_DIGEST:
        raise DataError(f"checksum mismatch for the FSDD recordings downloaded from {FSDD_URL}. {HINT}")
    dest = root / "fsdd" / "recordings"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".recordings.", dir=dest.parent))
    try:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download_mnist(root: Path) -> None:
    """Download the MNIST t10k files, verify the decompressed SHA-256, write them atomically."""
    for name, sha in MNIST_FILES.values():
        data = fetch(MNIST_URL + name, timeout=60)
        check_sha256(gzip.decompress(data), sha, MNIST_URL + name)
        atomic_write_bytes(root / "mnist" / name, data)


FSDD = Component("fsdd", ("fsdd/recordings",), _download_fsdd, HINT)
MNIST = Component("mnist", tuple(f"mnist/{n}" for n, _ in MNIST_FILES.values()), _download_mnist, HINT)


# -- readers -------------------------------------------------------------------------------
def _read_idx(path: Path, sha: str, magic: int) -> tuple[np.ndarray, tuple[int, ...]]:
    if not path.is_file():
        raise DataError(f"missing MNIST file {path}. {MNIST_HINT}")
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"corrupt MNIST file {path}: not a valid gzip file ({e}). {MNIST_HINT}") from None
    check_sha256(raw, sha, path, MNIST_HINT)
    ndim = raw[3]
    if int.from_bytes(raw[:4], "big") != magic:
        raise DataError(f"corrupt MNIST file {path}: bad IDX magic number. {MNIST_HINT}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims), dims


def read_mnist(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read the MNIST t10k IDX files (checksum-verified).

    Returns:
        ``(images uint8 [N, 28, 28], labels int64 [N])``.
    """
    x, _ = _read_idx(images, MNIST_FILES["images"][1], 2051)
    y, _ = _read_idx(labels, MNIST_FILES["labels"][1], 2049)
    return x, y.astype(np.int64)


def list_recordings(folder: Path) -> list[tuple[Path, int, str, int]]:
    """The FSDD recordings in ``folder``, sorted by name, as ``(path, digit, speaker, take)``."""
    out = []
    for p in sorted(folder.glob("*.wav")):
        m = _NAME.match(p.name)
        if m is None:
            raise DataError(
                f"unexpected file name {p}: expected {{digit}}_{{speaker}}_{{take}}.wav. Rename or remove it"
            )
        out.append((p, int(m[1]), m[2], int(m[3])))
    if not out:
        raise DataError(f"no .wav recordings in {folder}. {HINT}")
    return out


# -- the loader ---------------------------------------------------------------------------
def _check_options(
    duration_s: float, n_fft: int, hop_length: int, freq_bins: int | None, val_fraction: float, limit: int | None
) -> None:
    if not duration_s > 0:
        raise ConfigError(f"avmnist option duration_s must be > 0, got {duration_s}")
    if n_fft < 2 or hop_length < 1:
        raise ConfigError(f"avmnist options need n_fft >= 2 and hop_length >= 1, got {n_fft}, {hop_length}")
    if freq_bins is not None and freq_bins < 1:
        raise ConfigError(f"avmnist option freq_bins must be >= 1 or null, got {freq_bins}")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"avmnist option val_fraction must be in [0, 1), got {val_fraction}")
    if limit is not None and limit < 1:
        raise ConfigError(f"avmnist option limit must be >= 1 or null, got {limit}")


def _pair_images(digits: dict[str, np.ndarray], mnist_labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Per split, one distinct MNIST index per clip with the clip's digit; pools of splits are disjoint."""
    gen = rng(seed, 3)
    out = {k: np.full(len(v), -1, dtype=np.int64) for k, v in digits.items()}
    for d in range(10):
        pool = gen.permutation(np.flatnonzero(mnist_labels == d))
        need = {k: int((v == d).sum()) for k, v in digits.items()}
        total = sum(need.values())
        if total > len(pool):
            raise DataError(f"not enough MNIST images of digit {d}: {len(pool)} for {total} clips")
        start = 0
        for k, n in need.items():  # pool of split k: a share of the digit's images proportional to n
            size = len(pool) * n // total if total else 0
            out[k][digits[k] == d] = pool[start : start + n]
            start += size
    return out


@DATASETS.register("avmnist")
def load_avmnist(
    *,
    data_root: Path | None,
    seed: int,
    duration_s: float = 1.0,
    n_fft: int = 256,
    hop_length: int = 128,
    freq_bins: int | None = 64,
    val_fraction: float = 0.1,
    limit: int | None = None,
    normalize: bool = True,
    cache: bool = True,
) -> DatasetSplits:
    """Load avmnist (see the module docstring).

    Args:
        data_root: folder with ``fsdd/recordings`` and ``mnist/`` (else cache, else download).
        seed: seeds the validation split, ``limit`` subsampling and the image pairing.
        duration_s: audio length after padding/cropping, in seconds.
        n_fft: STFT size (Hann window of the same length).
        hop_length: STFT hop.
        freq_bins: frequency bins after average pooling (``None``: keep ``n_fft // 2 + 1``).
        val_fraction: fraction of the non-test clips of each digit used for validation.
        limit: keep at most this many (seeded random) samples per split, for quick runs.
        normalize: standardise each modality by the training split's scalar mean/std.
        cache: use the preprocessed-tensor cache (also off with ``MMCOOP_NO_CACHE=1``).

    Returns:
        `DatasetSplits` with modalities ``audio`` ``[1, F, T]`` and ``visual`` ``[1, 28, 28]``.
    """
    _check_options(duration_s, n_fft, hop_length, freq_bins, val_fraction, limit)
    fsdd_root, fsdd_src = locate(FSDD, data_root)
    mnist_root, mnist_src = locate(MNIST, data_root)
    rec_dir = fsdd_root / "fsdd" / "recordings"
    img_path, lab_path = (mnist_root / "mnist" / MNIST_FILES[k][0] for k in ("images", "labels"))
    clips = list_recordings(rec_dir)
    params = dict(
        duration_s=duration_s,
        n_fft=n_fft,
        hop_length=hop_length,
        freq_bins=freq_bins,
        val_fraction=val_fraction,
        limit=limit,
        normalize=normalize,
        sample_rate=SAMPLE_RATE,
    )
    paths = {"fsdd": str(rec_dir), "mnist_images": str(img_path), "mnist_labels": str(lab_path)}
    use_cache = processed_cache_enabled(cache)
    cpath = None
    if use_cache:
        fp = fingerprint([c[0] for c in clips] + [img_path, lab_path])
        key = cache_key(dict(dataset="avmnist", version=CODE_VERSION, params=params, seed=seed, paths=paths, fp=fp))
        cpath = processed_path("avmnist", key)
        hit = load_processed(cpath)
        if hit is not None:
            hit.info["processed_cache"] = {"path": str(cpath), "hit": True}
            return _with_identity(hit, clips, duration_s)

    # splits from file names only (no audio read yet)
    digit = np.array([c[1] for c in clips])
    take = np.array([c[3] for c in clips])
    speakers = sorted({c[2] for c in clips})
    test = np.flatnonzero(take < TEST_TAKES)
    rest = np.flatnonzero(take >= TEST_TAKES)
    val_pos, train_pos = stratified_split(digit[rest], [val_fraction], rng(seed, 1))
    idx = {"train": rest[train_pos], "val": rest[val_pos], "test": test}
    empty = [k for k, v in idx.items() if len(v) == 0]
    if empty:
        raise DataError(
            f"avmnist: the {' and '.join(empty)} split would be empty with the {len(clips)} recording(s) in {rec_dir} "
            f"(test = takes 0-{TEST_TAKES - 1}, val = val_fraction {val_fraction} of the other takes of each digit, "
            f"train = the rest). Use the full FSDD recordings (several takes per digit), or raise val_fraction. {HINT}"
        )
    if limit is not None:
        sub = rng(seed, 2)
        idx = {k: np.sort(sub.choice(v, limit, replace=False)) if len(v) > limit else v for k, v in idx.items()}

    mnist_x, mnist_y = read_mnist(img_path, lab_path)
    images = _pair_images({k: digit[v] for k, v in idx.items()}, mnist_y, seed)
    length = int(round(duration_s * SAMPLE_RATE))
    out: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in idx.items():
        waves = (
            np.stack([fit_length(read_wav(clips[i][0], SAMPLE_RATE, WAV_HINT)[0], length) for i in v])
            if len(v)
            else np.zeros((0, length), np.float32)
        )
        out[k] = {
            "audio": log_spectrogram(torch.from_numpy(waves), n_fft, hop_length, freq_bins),
            "visual": torch.from_numpy(mnist_x[images[k]].astype(np.float32) / 255.0).unsqueeze(1),
        }
    norm = {}
    if normalize:
        for m in ("audio", "visual"):
            mean, std = out["train"][m].mean().item(), max(out["train"][m].std().item(), 1e-6)
            norm[m] = {"mean": mean, "std": std}
            for k in out:
                out[k][m] = (out[k][m] - mean) / std
    specs = [ModalitySpec(m, "image", tuple(out["train"][m].shape[1:])) for m in ("audio", "visual")]
    parts = {}
    for k, v in idx.items():
        extras = {
            "image_index": torch.from_numpy(images[k]),
            "take": torch.from_numpy(take[v].astype(np.int64)),
            "speaker": torch.tensor([speakers.index(clips[i][2]) for i in v], dtype=torch.long),
            "clip": torch.from_numpy(v.astype(np.int64)),
        }
        parts[k] = MultimodalDataset(out[k], torch.from_numpy(digit[v].astype(np.int64)), 10, specs, extras)
    sources = {"fsdd": fsdd_src, "mnist": mnist_src}
    info = {
        "source": fsdd_src if fsdd_src == mnist_src else f"fsdd={fsdd_src}, mnist={mnist_src}",
        "sources": sources,
        "paths": paths,
        "params": params,
        "seed": seed,
        "spectrogram": {
            "n_fft": n_fft,
            "hop_length": hop_length,
            "window": "hann",
            "num_samples": length,
            "transform": "log1p(abs(stft))",
            "shape": list(specs[0].shape),
        },
        "split_sizes": {k: len(v) for k, v in idx.items()},
        "speakers": speakers,
        "normalization": norm,
        "processed_cache": {"path": str(cpath) if cpath else None, "hit": False},
    }
    splits = DatasetSplits("avmnist", parts["train"], parts["val"], parts["test"], info)
    if use_cache and cpath is not None:
        save_processed(splits, cpath)
    return _with_identity(splits, clips, duration_s)


class _FsddWaves:
    """The recording behind sample ``row``'s ``audio`` (cropped/padded as the model hears it), picklable."""

    def __init__(self, paths: list[str], length: int) -> None:
        self.paths, self.length = paths, length

    def __call__(self, row: int) -> dict[str, tuple[np.ndarray, int]]:
        wave = fit_length(read_wav(self.paths[row], SAMPLE_RATE, WAV_HINT)[0], self.length)
        return {"audio": (wave.astype(np.float32), SAMPLE_RATE)}


def _with_identity(splits: DatasetSplits, clips: list[tuple[Path, int, str, int]], duration_s: float) -> DatasetSplits:
    """Natural sample ids (``<recording>/mnist_<t10k image index>``, e.g. ``3_jackson_12/mnist_4521``),
    the recordings as waveforms (``clip`` and ``image_index`` extras pick them) and ``info["render"]``."""
    length = int(round(duration_s * SAMPLE_RATE))
    parts = {}
    for k in ("train", "val", "test"):
        ds = splits.split(k)
        src = ds.source
        assert isinstance(src, TensorSource), type(src)  # MultimodalDataset(tensors...) holds a TensorSource
        clip, image = ds.extras["clip"].tolist(), ds.extras["image_index"].tolist()
        ids = [f"{clips[c][0].stem}/mnist_{i}" for c, i in zip(clip, image)]
        waves = _FsddWaves([str(clips[c][0]) for c in clip], length)
        new = TensorSource(
            src.inputs, src.labels(), src.num_classes, src.specs, src.extras, src.transforms, ids=ids, waveforms=waves
        )
        parts[k] = MultimodalDataset.from_source(new, ds.rows, ds.keep, ds.train)
    info = {**splits.info, "render": {"audio": "spectrogram"}}  # the report draws audio [1, F, T] as a spectrogram
    return DatasetSplits(splits.name, parts["train"], parts["val"], parts["test"], info)
