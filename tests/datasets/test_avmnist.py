"""avmnist on the real data (FSDD + MNIST t10k): shapes, splits, pairing, cache, errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcoop.data import load_dataset
from mmcoop.media.audio import fit_length, log_spectrogram, read_wav
from mmcoop.datasets.avmnist import FSDD_DIGEST, MNIST_FILES, recordings_digest
from mmcoop.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def av(data_root: Path):
    return load_dataset("avmnist", data_root, seed=0)


@pytest.fixture(scope="module")
def mnist_labels(data_root: Path) -> np.ndarray:
    raw = gzip.decompress((data_root / "mnist" / MNIST_FILES["labels"][0]).read_bytes())
    return np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)


def _mini_root(
    tmp_path: Path, data_root: Path, digits: str = "0", mnist: tuple[str, ...] = ("images", "labels")
) -> Path:
    """A data root in tmp_path: symlinks to the recordings of ``digits`` and to the chosen MNIST files."""
    rec = tmp_path / "root" / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    for p in sorted((data_root / "fsdd" / "recordings").glob("*.wav")):
        if p.name[0] in digits:
            (rec / p.name).symlink_to(p)
    (tmp_path / "root" / "mnist").mkdir()
    for k in mnist:
        name = MNIST_FILES[k][0]
        (tmp_path / "root" / "mnist" / name).symlink_to(data_root / "mnist" / name)
    return tmp_path / "root"


def test_shapes_and_sizes(av) -> None:
    assert av.name == "avmnist" and av.modalities == ["audio", "visual"] and av.num_classes == 10
    sizes = {k: len(av.split(k)) for k in SPLITS}
    assert sizes == {"train": 2430, "val": 270, "test": 300}
    assert [s.kind for s in av.specs] == ["image", "image"]
    assert av.specs[0].shape == (1, 64, 63) and av.specs[1].shape == (1, 28, 28)
    for k in SPLITS:
        ds = av.split(k)
        assert ds.inputs["audio"].shape == (len(ds), 1, 64, 63)
        assert ds.inputs["visual"].shape == (len(ds), 1, 28, 28)
        assert ds.inputs["audio"].dtype == torch.float32 and ds.labels.dtype == torch.int64
        assert all(torch.isfinite(v).all() for v in ds.inputs.values())
    assert av.info["source"] == "data_root" and "fsdd" in av.info["paths"]
    assert av.info["params"]["n_fft"] == 256 and av.info["params"]["hop_length"] == 128


def test_train_normalisation(av) -> None:
    for m in ("audio", "visual"):
        x = av.train.inputs[m]
        assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-3
        assert av.info["normalization"][m]["std"] > 0


def test_pairing_labels_agree(av, mnist_labels: np.ndarray) -> None:
    for k in SPLITS:
        ds = av.split(k)
        assert np.array_equal(mnist_labels[ds.extras["image_index"].numpy()], ds.labels.numpy())


def test_image_pools_disjoint_and_distinct(av) -> None:
    used = np.concatenate([av.split(k).extras["image_index"].numpy() for k in SPLITS])
    assert len(np.unique(used)) == len(used) == 3000


def test_test_split_is_takes_0_to_4(av) -> None:
    assert (av.test.extras["take"] < 5).all()
    assert (av.train.extras["take"] >= 5).all() and (av.val.extras["take"] >= 5).all()
    clips = np.concatenate([av.split(k).extras["clip"].numpy() for k in SPLITS])
    assert sorted(clips) == list(range(3000))
    assert torch.bincount(av.test.labels).tolist() == [30] * 10
    assert torch.bincount(av.val.labels).tolist() == [27] * 10  # stratified by digit


def test_deterministic_and_seed_dependent(av, data_root: Path) -> None:
    again = load_dataset("avmnist", data_root, seed=0, cache=False)
    for k in SPLITS:
        a, b = av.split(k), again.split(k)
        assert torch.equal(a.extras["image_index"], b.extras["image_index"])
        assert torch.equal(a.inputs["audio"], b.inputs["audio"]) and torch.equal(a.inputs["visual"], b.inputs["visual"])
    other = load_dataset("avmnist", data_root, seed=1, cache=False)
    assert torch.equal(other.test.extras["clip"], av.test.extras["clip"])  # test clips fixed ...
    assert not torch.equal(other.test.extras["image_index"], av.test.extras["image_index"])  # ... pairing is not
    assert not torch.equal(other.val.extras["clip"], av.val.extras["clip"])


def test_processed_cache_hit(data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCOOP_CACHE", str(tmp_path / "cache"))
    first = load_dataset("avmnist", data_root, seed=3, limit=40)
    assert first.info["processed_cache"]["hit"] is False
    assert Path(first.info["processed_cache"]["path"]).is_file()
    second = load_dataset("avmnist", data_root, seed=3, limit=40)
    assert second.info["processed_cache"]["hit"] is True
    for k in SPLITS:
        for m in ("audio", "visual"):
            assert torch.equal(first.split(k).inputs[m], second.split(k).inputs[m])
        assert torch.equal(first.split(k).extras["image_index"], second.split(k).extras["image_index"])
    assert len(first.train) == 40
    monkeypatch.setenv("MMCOOP_NO_CACHE", "1")
    assert load_dataset("avmnist", data_root, seed=3, limit=40).info["processed_cache"]["hit"] is False


def test_spectrogram_params(data_root: Path) -> None:
    ds = load_dataset(
        "avmnist", data_root, seed=0, limit=5, n_fft=128, hop_length=64, freq_bins=None, duration_s=0.5, cache=False
    )
    assert ds.specs[0].shape == (1, 65, 1 + 4000 // 64)
    assert ds.info["spectrogram"]["num_samples"] == 4000


def test_options_validated(data_root: Path) -> None:
    with pytest.raises(ConfigError, match="valid options"):
        load_dataset("avmnist", data_root, seed=0, bogus=1)
    with pytest.raises(ConfigError, match="val_fraction"):
        load_dataset("avmnist", data_root, seed=0, val_fraction=1.5)


def test_recordings_digest_constant(data_root: Path) -> None:
    files = {p.name: p.read_bytes() for p in (data_root / "fsdd" / "recordings").glob("*.wav")}
    assert recordings_digest(files) == FSDD_DIGEST


def test_corrupt_wav_names_file(data_root: Path, tmp_path: Path) -> None:
    root = _mini_root(tmp_path, data_root)
    bad = root / "fsdd" / "recordings" / "0_jackson_7.wav"
    bad.unlink()
    bad.write_bytes(b"this is not a wav file" * 10)
    with pytest.raises(DataError, match="corrupt wav file .*0_jackson_7.wav") as e:
        load_dataset("avmnist", root, seed=0)
    assert "Free Spoken Digit Dataset" in str(e.value)


def test_truncated_wav_names_file(data_root: Path, tmp_path: Path) -> None:
    src = (data_root / "fsdd" / "recordings" / "3_theo_12.wav").read_bytes()
    bad = tmp_path / "3_theo_12.wav"
    bad.write_bytes(src[: len(src) // 2])
    with pytest.raises(DataError, match=f"truncated wav file {bad}"):
        read_wav(bad)


def test_missing_mnist_file_names_it(data_root: Path, tmp_path: Path) -> None:
    root = _mini_root(tmp_path, data_root, mnist=("images",))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz") as e:
        load_dataset("avmnist", root, seed=0)
    assert str(root) in str(e.value) and "MMCOOP_DATA" in str(e.value)


def test_mnist_checksum_mismatch(data_root: Path, tmp_path: Path) -> None:
    root = _mini_root(tmp_path, data_root, mnist=("images",))
    raw = bytearray(gzip.decompress((data_root / "mnist" / MNIST_FILES["labels"][0]).read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    path = root / "mnist" / MNIST_FILES["labels"][0]
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=f"checksum mismatch for {path}"):
        load_dataset("avmnist", root, seed=0)


def test_subset_root_loads(data_root: Path, tmp_path: Path) -> None:
    root = _mini_root(tmp_path, data_root, digits="01")
    ds = load_dataset("avmnist", root, seed=0, cache=False)
    assert sum(len(ds.split(k)) for k in SPLITS) == 600 and set(ds.train.labels.tolist()) == {0, 1}


def test_audio_helpers() -> None:
    assert fit_length(np.ones(10, np.float32), 4).shape == (4,)
    assert np.array_equal(fit_length(np.ones(3, np.float32), 5), [1, 1, 1, 0, 0])
    spec = log_spectrogram(torch.zeros(3, 8000), 256, 128, 64)
    assert spec.shape == (3, 1, 64, 63) and spec.abs().max() == 0
