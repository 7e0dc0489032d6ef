"""balancedav: BalanceBenchmark's layout (JSON annotation, pickled spectrograms, HDF5 JPEG frames), real content."""

from __future__ import annotations

import io
import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from _readers import train_and_value
from av_fixtures import Built, Content, build_balancedav, reference_eval_frames

from mmcoop.datasets.balancedav import load_balancedav_sources
from mmcoop.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bav(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_balancedav(tmp_path_factory.mktemp("balancedav"), Content(data_root))


def test_splits_labels_audio_and_the_benchmarks_eval_frames(bav: Built) -> None:
    with pytest.warns(UserWarning, match=r"1 of 4 clips .* absent .*bav_test_absent"):
        src = load_balancedav_sources(bav.root, image_size=12, val_fraction=1 / 3, seed=0)
    assert src["test"].ids == [cid for cid, _ in bav.clips["test"]]
    assert src["test"].labels().tolist() == [0, 1, 2]  # position in the annotation's "labels"
    assert sorted(src["val"].labels().tolist()) == [0, 1, 2]  # carved: 1 of each class's 3
    assert sorted(src["train"].ids + src["val"].ids) == sorted(cid for cid, _ in bav.clips["train"])
    assert [(m.name, m.shape) for m in src["test"].specs] == [("audio", (1, 20, 16)), ("visual", (3, 3, 12, 12))]
    out = src["test"].fetch(torch.tensor([1]), train=False)
    cid = src["test"].ids[1]
    with open(bav.root / "audio" / f"{cid}.pkl", "rb") as fh:
        spec = pickle.load(fh)
    assert torch.equal(out["inputs"]["audio"][0], torch.from_numpy(spec).unsqueeze(0))  # expand_dims(0)
    # eval, 8 frames: seg = 2, frame numbers i*seg + max(seg // 2, 1) = 1, 3, 5 -> indices 0, 2, 4
    blobs = bav.extra["frames"][cid]
    want = reference_eval_frames([io.BytesIO(blobs[i]) for i in (0, 2, 4)], 12)  # type: ignore[misc]
    assert torch.allclose(out["inputs"]["visual"][0], want, atol=1e-6)
    train = src["train"].fetch(torch.tensor([0, 1]), True, torch.Generator().manual_seed(0))
    assert train["inputs"]["visual"].shape == (2, 3, 3, 12, 12)


def test_a_validation_subset_is_used_and_bad_annotations_named(bav: Built, tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(bav.root, root)
    ann = json.loads((root / "annotations.json").read_text())
    ann["database"]["bav_train_00"]["subset"] = "validation"
    (root / "annotations.json").write_text(json.dumps(ann))
    with pytest.warns(UserWarning):
        src = load_balancedav_sources(root, image_size=12)
    assert src["val"].ids == ["bav_train_00"] and len(src["train"]) == 8
    ann["database"]["bav_train_01"]["label"] = "whistling"
    (root / "annotations.json").write_text(json.dumps(ann))
    with pytest.raises(DataError, match=r"clip 'bav_train_01' .* label 'whistling', not in its \"labels\""):
        load_balancedav_sources(root)
    (root / "annotations.json").write_text(json.dumps({"database": {}}))
    with pytest.raises(DataError, match=r'needs a "labels" list and a "database" mapping\. Expected layout'):
        load_balancedav_sources(root)


def test_a_broken_frame_file_is_named(bav: Built, tmp_path: Path) -> None:
    root = tmp_path / "b"
    shutil.copytree(bav.root, root)
    cid = bav.clips["test"][0][0]
    (root / "visual" / f"{cid}.hdf5").write_bytes(b"not hdf5")
    with pytest.warns(UserWarning):
        src = load_balancedav_sources(root, image_size=12)
    with pytest.raises(DataError, match=rf"corrupt HDF5 frame file .*{cid}\.hdf5"):
        src["test"].fetch(torch.tensor([0]), train=False)


def test_trains_one_epoch_and_values_by_clip_id(bav: Built, tmp_path: Path) -> None:
    sets = [
        "dataset_options.root=" + str(bav.root),
        "dataset_options.image_size=16",
        "dataset_options.val_fraction=0.34",
    ]
    table = train_and_value(tmp_path, "balancedav", sets)
    assert table.modalities == ["audio", "visual"]
    assert table.sample_id == [cid for cid, _ in bav.clips["test"]]
