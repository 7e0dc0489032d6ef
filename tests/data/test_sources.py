"""Finding data (data root, cache, download), checksums, the processed cache and split helpers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.data.storage import (
    Component,
    cache_dir,
    cache_key,
    check_sha256,
    downloads_allowed,
    fingerprint,
    load_processed,
    locate,
    processed_cache_enabled,
    processed_path,
    rng,
    save_processed,
    sha256_hex,
    stratified_split,
)
from mmcoop.errors import DataError


def _write(root: Path) -> None:
    (root / "thing").mkdir(parents=True, exist_ok=True)
    (root / "thing" / "a.bin").write_bytes(b"abc")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMCOOP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_env_switches(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MMCOOP_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path
    monkeypatch.delenv("MMCOOP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "mmcoop"
    assert not downloads_allowed()  # the test session is offline (conftest)
    monkeypatch.setenv("MMCOOP_OFFLINE", "0")
    assert downloads_allowed()
    assert processed_cache_enabled() and not processed_cache_enabled(False)
    monkeypatch.setenv("MMCOOP_NO_CACHE", "1")
    assert not processed_cache_enabled()


def test_locate_order(tmp_path: Path, cache: Path) -> None:
    comp = Component("thing", ("thing/a.bin",))
    _write(cache / "data")
    assert locate(comp, tmp_path / "nowhere") == (cache / "data", "cache")
    _write(tmp_path / "root")
    assert locate(comp, tmp_path / "root") == (tmp_path / "root", "data_root")


def test_locate_missing_offline_says_where(tmp_path: Path, cache: Path) -> None:
    called = []
    comp = Component("thing", ("thing/a.bin",), lambda root: called.append(root), hint="Set MMCOOP_DATA.")
    with pytest.raises(DataError) as e:
        locate(comp, tmp_path / "root")
    msg = str(e.value)
    assert str(tmp_path / "root" / "thing" / "a.bin") in msg and str(cache / "data") in msg
    assert "MMCOOP_OFFLINE" in msg and msg.endswith("Set MMCOOP_DATA.") and not called


def test_locate_downloads_when_online(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMCOOP_OFFLINE", "0")
    assert locate(Component("thing", ("thing/a.bin",), _write), None) == (cache / "data", "download")

    def fail(root: Path) -> None:
        raise OSError("network unreachable")

    with pytest.raises(DataError, match="download .* failed .*network unreachable"):
        locate(Component("other", ("other/x",), fail), None)


def test_check_sha256_names_file() -> None:
    check_sha256(b"abc", sha256_hex(b"abc"), "f")
    with pytest.raises(DataError, match="checksum mismatch for /x/f.gz"):
        check_sha256(b"abd", sha256_hex(b"abc"), "/x/f.gz")


def test_fingerprint_and_key(tmp_path: Path) -> None:
    f = tmp_path / "a"
    f.write_bytes(b"1")
    fp = fingerprint([f])
    f.write_bytes(b"22")
    assert fingerprint([f]) != fp
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1}) != cache_key({"a": 2})


def _toy_splits() -> DatasetSplits:
    specs = [ModalitySpec("a", "vector", (3,)), ModalitySpec("b", "image", (1, 2, 2))]

    def ds(n: int) -> MultimodalDataset:
        return MultimodalDataset(
            {"a": torch.randn(n, 3), "b": torch.randn(n, 1, 2, 2)},
            torch.arange(n) % 2,
            2,
            specs,
            {"take": torch.arange(n)},
        )

    return DatasetSplits("toy", ds(6), ds(2), ds(3), {"source": "here", "params": {"x": (1, 2)}})


def test_processed_roundtrip_and_corrupt(cache: Path) -> None:
    splits = _toy_splits()
    path = processed_path("toy", "k")
    assert path.parent == cache / "processed" and load_processed(path) is None
    assert save_processed(splits, path)
    back = load_processed(path)
    assert back is not None and back.name == "toy" and back.specs == splits.specs
    assert torch.equal(back.val.inputs["b"], splits.val.inputs["b"])
    assert torch.equal(back.test.extras["take"], splits.test.extras["take"])
    assert back.info["params"] == {"x": [1, 2]}
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable"):
        assert load_processed(path) is None


def test_stratified_split() -> None:
    labels = np.repeat(np.arange(3), 20)
    a, b, rest = stratified_split(labels, [0.1, 0.25], rng(0, 1))
    assert [np.bincount(labels[g], minlength=3).tolist() for g in (a, b, rest)] == [[2] * 3, [5] * 3, [13] * 3]
    assert sorted(np.concatenate([a, b, rest]).tolist()) == list(range(60))
    again = stratified_split(labels, [0.1, 0.25], rng(0, 1))
    assert all(np.array_equal(x, y) for x, y in zip((a, b, rest), again))
    other = stratified_split(labels, [0.1, 0.25], rng(1, 1))
    assert not np.array_equal(a, other[0])
    assert os.environ["MMCOOP_OFFLINE"] == "1"
