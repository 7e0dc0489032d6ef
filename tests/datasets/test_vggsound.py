"""VGGSound reader: official csv, wav audio -> OGM-GE spectrogram (random window in train), frames."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
import torch
from av_fixtures import Built, Content, build_vggsound

from mmcoop.datasets.vggsound import load_vggsound_sources
from mmcoop.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def vgg(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_vggsound(tmp_path_factory.mktemp("vgg"), Content(data_root))


def test_csv_splits_labels_absent_clip_and_shapes(vgg: Built) -> None:
    with pytest.warns(UserWarning, match=r"vggsound test: 1 of 3 clips .* absent and skipped \(first: gone_0"):
        src = load_vggsound_sources(vgg.root, image_size=8, val_fraction=1 / 3, seed=0)
    assert src["test"].ids == [cid for cid, _ in vgg.clips["test"]]
    assert src["test"].labels().tolist() == [0, 1] and src["test"].classes == list(vgg.extra["classes"])
    assert sorted(src["val"].labels().tolist()) == [0, 1]
    assert [(m.name, m.shape) for m in src["train"].specs] == [("audio", (1, 129, 626)), ("visual", (3, 3, 8, 8))]
    ev = src["test"].fetch(torch.tensor([0, 1]), train=False)
    assert torch.equal(ev["inputs"]["audio"], src["test"].fetch(torch.tensor([0, 1]), False)["inputs"]["audio"])
    assert torch.isfinite(ev["inputs"]["audio"]).all()
    t1 = src["test"].fetch(torch.tensor([0]), True, torch.Generator().manual_seed(1))["inputs"]["audio"]
    t2 = src["test"].fetch(torch.tensor([0]), True, torch.Generator().manual_seed(1))["inputs"]["audio"]
    t3 = src["test"].fetch(torch.tensor([0]), True, torch.Generator().manual_seed(2))["inputs"]["audio"]
    assert torch.equal(t1, t2) and not torch.equal(t1, t3)  # the 5 s window starts at a random sample


def test_id_format_header_row_and_bad_split(vgg: Built, tmp_path: Path) -> None:
    root = tmp_path / "v"
    shutil.copytree(vgg.root, root)
    lines = (root / "vggsound.csv").read_text().splitlines()
    (root / "vggsound.csv").write_text("ytid,start,label,split\n" + "\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(load_vggsound_sources(root)["test"]) == 2  # header skipped
        with pytest.raises(DataError, match=r"none of the 6 clips"):
            load_vggsound_sources(root, id_format="{ytid}_{start:06d}")  # files are named <ytid>_<start>
    (root / "vggsound.csv").write_text("a,1,dog,validation\n")
    with pytest.raises(DataError, match=r"line 1 of .*vggsound.csv has split 'validation'"):
        load_vggsound_sources(root)
