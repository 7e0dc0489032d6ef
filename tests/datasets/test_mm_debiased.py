"""MM-Debiased reader: the real split json over a few KS-layout clips; absent clips are reported, not fatal."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest
import torch
from av_fixtures import Built, Content, build_mm_debiased, reference_eval_frames

from mmcoop.datasets.mm_debiased import load_mm_debiased_sources
from mmcoop.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def split_json(data_root: Path) -> Path:
    return data_root / "mm-debiased" / "MM-Debiased.json"


@pytest.fixture(scope="module")
def mmd(data_root: Path, split_json: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_mm_debiased(tmp_path_factory.mktemp("mmd"), Content(data_root), split_json)


def test_reads_the_real_json_and_reports_absent_clips(mmd: Built, split_json: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        src = load_mm_debiased_sources(mmd.root, split_json=split_json, image_size=12)
    assert mmd.extra["listed"] == {"train": 11368, "val": 1185, "test": 1472}  # the official split sizes
    messages = [str(w.message) for w in caught]
    for split in ("train", "val", "test"):
        s = src[split]
        listed = mmd.extra["listed"][split]
        assert (s.info["listed"], s.info["present"], s.info["missing"]) == (listed, 2, listed - 2)
        assert len(s.info["missing_ids"]) == 10 and set(s.info["missing_ids"]).isdisjoint(s.ids)
        assert any(f"{listed - 2} of {listed} clips" in m for m in messages)
        assert s.ids == [cid for cid, _ in mmd.clips[split]]
        assert s.labels().tolist() == [lab for _, lab in mmd.clips[split]]
        assert s.num_classes == 10 and s.classes == mmd.extra["classes"]
    out = src["val"].fetch(torch.tensor([0, 1]), train=False)
    assert out["inputs"]["audio"].shape == (2, 1, 20, 16) and out["inputs"]["visual"].shape == (2, 3, 3, 12, 12)
    folder = mmd.root / "visual" / "val" / src["val"].ids[1]
    files = [folder / f"frame_{k:05d}.jpg" for k in (1, 4, 7)]  # official: 1-based i*3 + max(3 // 2, 1)
    assert torch.equal(out["inputs"]["visual"][1], reference_eval_frames(files, 12))


def test_json_in_root_by_default_and_errors(mmd: Built, split_json: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing split file .*MM-Debiased.json\. Expected layout"):
        load_mm_debiased_sources(tmp_path)
    root = tmp_path / "m"
    shutil.copytree(mmd.root, root)
    small = {
        cid: {"subset": s, "label": "bowling"}
        for cid, s in [
            (mmd.clips["train"][0][0], "training"),
            (mmd.clips["val"][0][0], "validation"),
            (mmd.clips["test"][0][0], "testing"),
        ]
    }
    (root / "MM-Debiased.json").write_text(json.dumps(small))
    src = load_mm_debiased_sources(root, image_size=12)
    assert [len(src[s]) for s in ("train", "val", "test")] == [1, 1, 1] and src["test"].num_classes == 1
    (root / "MM-Debiased.json").write_text(json.dumps({"x": {"subset": "train", "label": "a"}}))
    with pytest.raises(DataError, match=r"malformed entry 'x'"):
        load_mm_debiased_sources(root)
    (root / "MM-Debiased.json").write_text("{not json")
    with pytest.raises(DataError, match=r"is not valid JSON"):
        load_mm_debiased_sources(root)


def test_no_media_at_all_is_an_error(split_json: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"none of the 11368 clips listed in .*MM-Debiased.json is present"):
        load_mm_debiased_sources(tmp_path, split_json=split_json)
