"""UCF-101 reader: RGB frames and u/v optical-flow frames as two modalities."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from av_fixtures import Built, Content, build_ucf101, reference_eval_frames
from PIL import Image
from torchvision import transforms as T

from mmcoop.datasets.ucf101 import load_ucf101_sources
from mmcoop.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ucf(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_ucf101(tmp_path_factory.mktemp("ucf"), Content(data_root))


def test_labels_from_class_index_and_shapes(ucf: Built) -> None:
    src = load_ucf101_sources(ucf.root, image_size=10, val_fraction=1 / 3, seed=2)
    assert src["test"].ids == [v for v, _ in ucf.clips["test"]]  # incl. HandStand vs Handstand names
    assert src["test"].labels().tolist() == [0, 1, 2] and src["test"].classes == list(ucf.extra["classes"])
    assert sorted(src["val"].labels().tolist()) == [0, 1, 2]
    assert [(m.name, m.kind, m.shape) for m in src["train"].specs] == [
        ("rgb", "frames", (3, 3, 10, 10)),
        ("flow", "frames", (3, 2, 10, 10)),
    ]


def test_eval_rgb_and_flow_frames(ucf: Built) -> None:
    src = load_ucf101_sources(ucf.root, image_size=10)["test"]
    out = src.fetch(torch.tensor([2]), train=False)["inputs"]
    vid = src.ids[2]
    rgb_files = [ucf.root / "jpegs_256" / vid / f"frame{k:06d}.jpg" for k in (2, 4, 6)]  # 7 frames, seg 2
    assert torch.equal(out["rgb"][0], reference_eval_frames(rgb_files, 10))
    tf = T.Compose([T.Resize((10, 10)), T.ToTensor()])  # flow: no normalisation
    for t, k in enumerate((2, 4, 6)):  # 6 flow frames, seg 2
        u = tf(Image.open(ucf.root / "tvl1_flow" / "u" / vid / f"frame{k:06d}.jpg"))
        v = tf(Image.open(ucf.root / "tvl1_flow" / "v" / vid / f"frame{k:06d}.jpg"))
        assert torch.equal(out["flow"][0, t], torch.cat([u, v]))


def test_train_flow_is_seeded_and_normalisable(ucf: Built) -> None:
    src = load_ucf101_sources(ucf.root, image_size=10, flow_mean=(0.5, 0.5), flow_std=(0.25, 0.25))["train"]
    a = src.fetch(torch.tensor([0, 4]), True, torch.Generator().manual_seed(4))["inputs"]
    b = src.fetch(torch.tensor([0, 4]), True, torch.Generator().manual_seed(4))["inputs"]
    assert torch.equal(a["flow"], b["flow"]) and torch.equal(a["rgb"], b["rgb"])
    assert a["flow"].min() >= (0 - 0.5) / 0.25 and a["flow"].max() <= (1 - 0.5) / 0.25
    assert a["flow"].min() < 0  # normalised, not [0, 1]


def test_bad_fold_and_unknown_class(ucf: Built, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"fold must be 1, 2 or 3"):
        load_ucf101_sources(ucf.root, fold=4)
    with pytest.raises(DataError, match=r"missing split file .*trainlist02.txt"):
        load_ucf101_sources(ucf.root, fold=2)
    root = tmp_path / "u"
    shutil.copytree(ucf.root, root)
    (root / "testlist01.txt").write_text("Surfing/v_Surfing_g01_c01.avi\n")
    with pytest.raises(DataError, match=r"class 'Surfing' on line 1 of .*testlist01.txt is not in the class index"):
        load_ucf101_sources(root)
