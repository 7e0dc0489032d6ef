"""AVE readers, both layouts: OGM-GE ``AVDataset`` and PMR / DI-MML (pickled spectrograms, frame folders)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch
from av_fixtures import (
    Built,
    Content,
    build_ave_ogmge,
    build_ave_pmr,
    reference_eval_frames,
)

from mmcoop.datasets.ave_ogmge import load_ave_ogmge_sources
from mmcoop.datasets.ave_pmr import load_ave_pmr_sources
from mmcoop.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ogm(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_ave_ogmge(tmp_path_factory.mktemp("ave_ogm"), Content(data_root))


@pytest.fixture(scope="module")
def pmr(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_ave_pmr(tmp_path_factory.mktemp("ave_pmr"), Content(data_root))


def test_ogmge_layout_classes_frames_and_pickles(ogm: Built) -> None:
    src = load_ave_ogmge_sources(ogm.root, image_size=12, val_fraction=1 / 3, seed=0)
    assert src["test"].classes == ogm.extra["classes"]  # sorted stat.txt names
    assert src["test"].labels().tolist() == [lab for _, lab in ogm.clips["test"]]
    assert sorted(src["val"].labels().tolist()) == [0, 1, 2]
    out = src["test"].fetch(torch.tensor([1]), train=False)
    cid = src["test"].ids[1]
    with open(ogm.root / "audio_spec" / f"{cid}.pkl", "rb") as fh:
        assert torch.equal(out["inputs"]["audio"][0, 0], torch.from_numpy(pickle.load(fh)))
    files = [ogm.root / "visual" / cid / f"frame_{k:05d}.jpg" for k in (1, 4, 7)]  # 9 frames: seg*i + 1
    assert torch.equal(out["inputs"]["visual"][0], reference_eval_frames(files, 12))
    # OGM-GE uses the same frames in training (only the crop/flip is random)
    a = src["test"].fetch(torch.tensor([1]), True, torch.Generator().manual_seed(0))["inputs"]["visual"][0]
    b = src["test"].fetch(torch.tensor([1]), True, torch.Generator().manual_seed(1))["inputs"]["visual"][0]
    assert a.shape == (3, 3, 12, 12) and not torch.equal(a, b)


def test_ogmge_repeated_id_keeps_the_last_label(ogm: Built, tmp_path: Path) -> None:
    root = tmp_path / "o"
    shutil.copytree(ogm.root, root)
    first = ogm.clips["test"][0][0]
    with open(root / "my_test.txt", "a") as fh:
        fh.write(f'"Dog",{first}\n')
    src = load_ave_ogmge_sources(root)["test"]
    assert src.ids[-1] == first and src.labels()[-1].item() == ogm.extra["classes"].index("Dog")
    assert src.ids.count(first) == 1 and src.info["duplicates"] == 1
    (root / "my_test.txt").write_text('"Cat",x\n')
    with pytest.raises(DataError, match=r"label 'Cat' on line 1 of .*my_test.txt is not in .*stat.txt"):
        load_ave_ogmge_sources(root)


def test_pmr_layout_class_order_duplicates_and_val(pmr: Built) -> None:
    src = load_ave_pmr_sources(pmr.root, image_size=10)
    assert src["test"].classes == pmr.extra["classes"]  # first appearance in testSet.txt
    for split in ("train", "val", "test"):
        assert src[split].ids == [cid for cid, _ in pmr.clips[split]]
        assert src[split].labels().tolist() == [lab for _, lab in pmr.clips[split]]
    assert src["train"].info["duplicates"] == 1
    out = src["val"].fetch(torch.tensor([2]), train=False)
    assert out["inputs"]["visual"].shape == (1, 4, 3, 10, 10)  # PMR: 4 frames for AVE
    cid = src["val"].ids[2]
    files = [pmr.root / "Image-01-FPS-SE" / cid / f"{k:05d}.jpg" for k in (1, 3, 5, 7)]  # 10 frames, seg 2
    assert torch.equal(out["inputs"]["visual"][0], reference_eval_frames(files, 10))
    with open(pmr.root / "Audio-1004-SE" / f"{cid}.pkl", "rb") as fh:
        assert torch.equal(out["inputs"]["audio"][0, 0], torch.from_numpy(pickle.load(fh)))


def test_pmr_malformed_split_line_and_corrupt_pickle(pmr: Built, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(pmr.root, root)
    cid = pmr.clips["test"][0][0]
    (root / "Audio-1004-SE" / f"{cid}.pkl").write_bytes(b"garbage")
    src = load_ave_pmr_sources(root)
    with pytest.raises(DataError, match=r"corrupt spectrogram file .*" + cid):
        src["test"].fetch(torch.tensor([0]), train=False)
    (root / "valSet.txt").write_text("Church bell\n")
    with pytest.raises(DataError, match=r"malformed line 1 of .*valSet.txt"):
        load_ave_pmr_sources(root)
