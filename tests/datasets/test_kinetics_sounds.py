"""Kinetics-Sounds reader on a tiny fixture in the official layout (MNIST frames, FSDD spectrograms)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from av_fixtures import (
    Built,
    Content,
    build_kinetics_sounds,
    reference_eval_frames,
    reference_train_frames,
)

from mmcoop.datasets.kinetics_sounds import load_kinetics_sounds_sources
from mmcoop.errors import DataError

pytestmark = pytest.mark.usefixtures("one_thread")
S = 16  # frame side in the tests


@pytest.fixture(scope="module")
def ks(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_kinetics_sounds(tmp_path_factory.mktemp("ks"), Content(data_root))


def load(root: Path, **kw):  # noqa: ANN201
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_kinetics_sounds_sources(root, image_size=S, **kw)


def test_splits_shapes_labels_and_absent_clip_report(ks: Built) -> None:
    with pytest.warns(UserWarning, match=r"1 of 7 clips .* absent and skipped \(first: absent_clip"):
        src = load_kinetics_sounds_sources(ks.root, image_size=S)
    assert src["train"].info["missing"] == 1 and src["train"].info["missing_ids"] == ["absent_clip"]
    for split in ("train", "val", "test"):
        s = src[split]
        assert s.ids == [cid for cid, _ in ks.clips[split]]
        assert s.labels().tolist() == [lab for _, lab in ks.clips[split]]
        assert s.num_classes == 3 and len(s) == len(ks.clips[split])
        assert [(m.name, m.kind, m.shape) for m in s.specs] == [
            ("audio", "spectrogram", (1, 20, 16)),
            ("visual", "frames", (3, 3, S, S)),
        ]
        out = s.fetch(torch.arange(len(s)), train=False)
        assert out["inputs"]["audio"].shape == (len(s), 1, 20, 16)
        assert out["inputs"]["visual"].shape == (len(s), 3, 3, S, S) and out["inputs"]["visual"].dtype == torch.float32
        assert torch.equal(out["label"], s.labels())


def test_audio_is_the_stored_array(ks: Built) -> None:
    src = load(ks.root)["test"]
    out = src.fetch(torch.tensor([2, 0]), train=True)
    for pos, row in enumerate((2, 0)):
        stored = np.load(ks.root / "audio" / "test" / f"{src.ids[row]}.npy")
        assert torch.equal(out["inputs"]["audio"][pos, 0], torch.from_numpy(stored))


def test_eval_centre_of_each_third_with_official_transforms(ks: Built) -> None:
    src = load(ks.root, eval_frames="centre")["val"]
    out = src.fetch(torch.tensor([1]), train=False)["inputs"]["visual"][0]
    folder = ks.root / "visual" / "val" / src.ids[1]
    files = [folder / f"frame_{k:05d}.jpg" for k in (2, 5, 8)]  # 10 frames, seg 3 -> 0-based 1, 4, 7
    assert torch.equal(out, reference_eval_frames(files, S))
    again = src.fetch(torch.tensor([1]), train=False)["inputs"]["visual"][0]
    assert torch.equal(out, again)  # eval is deterministic


def test_default_eval_choice_is_the_official_one(ks: Built) -> None:
    src = load(ks.root)["val"]
    out = src.fetch(torch.tensor([0]), train=False)["inputs"]["visual"][0]
    folder = ks.root / "visual" / "val" / src.ids[0]
    files = [folder / f"frame_{k:05d}.jpg" for k in (1, 4, 7)]  # 1-based i*3 + max(3 // 2, 1)
    assert torch.equal(out, reference_eval_frames(files, S))


def test_train_frames_equal_torchvision_with_the_same_seed_and_vary_with_it(ks: Built) -> None:
    src = load(ks.root)["train"]
    folder = ks.root / "visual" / "train" / src.ids[3]
    a = src.fetch(torch.tensor([3]), True, torch.Generator().manual_seed(11))["inputs"]["visual"][0]
    assert torch.equal(a, reference_train_frames(folder, S, 3, 11))
    b = src.fetch(torch.tensor([3]), True, torch.Generator().manual_seed(11))["inputs"]["visual"][0]
    c = src.fetch(torch.tensor([3]), True, torch.Generator().manual_seed(12))["inputs"]["visual"][0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(11)  # no generator: torch's global generator (what DataLoader workers seed)
    d = src.fetch(torch.tensor([3]), True)["inputs"]["visual"][0]
    assert torch.equal(a, d)


def test_carves_a_stratified_seeded_val_when_the_val_file_is_absent(ks: Built, tmp_path: Path) -> None:
    root = tmp_path / "ks"
    shutil.copytree(ks.root, root)
    (root / "val_1fps_path.txt").unlink()
    src = load(root, val_fraction=0.5, seed=3)
    assert len(src["val"]) == 3 and sorted(src["val"].labels().tolist()) == [0, 1, 2]  # 1 of 2 per class
    assert sorted(src["train"].ids + src["val"].ids) == sorted(cid for cid, _ in ks.clips["train"])
    assert load(root, val_fraction=0.5, seed=3)["val"].ids == src["val"].ids
    assert src["val"].info["carved_from"] == "train"


def test_missing_and_malformed_files_name_the_file_and_the_layout(ks: Built, tmp_path: Path) -> None:
    root = tmp_path / "ks"
    shutil.copytree(ks.root, root)
    (root / "test_1fps_path.txt").unlink()
    with pytest.raises(DataError, match=r"missing split file .*test_1fps_path.txt\. Expected layout:\n<root>/"):
        load(root)
    (root / "test_1fps_path.txt").write_text("/x/clip 10 notanint\n")
    with pytest.raises(DataError, match=r"malformed line 1 of .*test_1fps_path.txt"):
        load(root)


def test_no_clip_present_is_an_error(ks: Built, tmp_path: Path) -> None:
    root = tmp_path / "ks"
    shutil.copytree(ks.root, root)
    shutil.rmtree(root / "audio" / "test")
    with pytest.raises(DataError, match=r"none of the 3 clips listed in .*test_1fps_path.txt is present"):
        load(root)
    with pytest.raises(DataError, match=r"clip 'absent_clip' listed in .*train_1fps_path.txt has no"):
        load_kinetics_sounds_sources(ks.root, on_missing="error")


def test_broken_media_at_fetch_name_the_file(ks: Built, tmp_path: Path) -> None:
    root = tmp_path / "ks"
    shutil.copytree(ks.root, root)
    src = load(root)["test"]
    folder = root / "visual" / "test" / src.ids[0]
    (folder / "frame_00004.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match=r"corrupt image .*frame_00004.jpg"):
        src.fetch(torch.tensor([0]), train=False)
    shutil.rmtree(root / "visual" / "test" / src.ids[1])
    with pytest.raises(DataError, match=r"missing frame folder .*" + src.ids[1]):
        src.fetch(torch.tensor([1]), train=False)
    np.save(root / "audio" / "test" / f"{src.ids[2]}.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(DataError, match=r"has shape \(3, 3\) but the dataset's first clip has \(20, 16\)"):
        src.fetch(torch.tensor([2]), train=False)


def test_source_pickles_for_dataloader_workers(ks: Built) -> None:
    import pickle

    src = load(ks.root)["test"]
    clone = pickle.loads(pickle.dumps(src))
    assert torch.equal(clone.fetch([0, 1], False)["inputs"]["visual"], src.fetch([0, 1], False)["inputs"]["visual"])


def _official_copy(ks: Built, dst: Path) -> Path:
    """The fixture rearranged into the official names (ks_audio/, ks_visual/)."""
    (dst / "ks_audio").mkdir(parents=True)
    for split in ("train", "val", "test"):
        shutil.copy(ks.root / f"{split}_1fps_path.txt", dst / "ks_audio" / f"{split}_1fps_path.txt")
        shutil.copytree(ks.root / "audio" / split, dst / "ks_audio" / split)
    shutil.copytree(ks.root / "visual", dst / "ks_visual")
    return dst


def test_official_names_are_detected_without_options(ks: Built, tmp_path: Path) -> None:
    root = _official_copy(ks, tmp_path / "official")
    ours, official = load(ks.root), load(root)
    assert official["train"].info["layout"] == "official" and ours["train"].info["layout"] == "mmcoop"
    for split in ("train", "val", "test"):
        assert official[split].ids == ours[split].ids
        assert torch.equal(official[split].labels(), ours[split].labels())
        a = official[split].fetch(torch.arange(len(official[split])), train=False)["inputs"]
        b = ours[split].fetch(torch.arange(len(ours[split])), train=False)["inputs"]
        assert all(torch.equal(a[m], b[m]) for m in a)
    with pytest.raises(DataError, match="missing split file"):
        load(root, layout="mmcoop")


def test_classes_json_names_the_classes(ks: Built, tmp_path: Path) -> None:
    root = tmp_path / "named"
    shutil.copytree(ks.root, root)
    (root / "classes.json").write_text('{"classes": ["zero", "one", "two", "three"]}')
    src = load(root)
    assert src["train"].classes == ["zero", "one", "two", "three"] and src["train"].num_classes == 4
    (root / "classes.json").write_text('{"classes": "zero"}')
    with pytest.raises(DataError, match="classes.json"):
        load(root)


def test_empty_carved_val_names_val_fraction_and_preset_class_count_warns(ks: Built, tmp_path: Path) -> None:
    from mmcoop.data.registry import load_dataset

    root = tmp_path / "noval"
    shutil.copytree(ks.root, root)
    (root / "val_1fps_path.txt").unlink()
    opts = {"root": str(root), "image_size": S}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(DataError, match=r"val split is empty: val_fraction=0.0 .*dataset_options.val_fraction"):
            load_dataset("kinetics-sounds", val_fraction=0.0, **opts)
    with pytest.warns(UserWarning, match="the preset expects 31 classes but the data at .* has 3"):
        splits = load_dataset("kinetics-sounds", val_fraction=0.5, expect_classes=31, **opts)
    assert splits.train.num_classes == 3 and len(splits.val) == 3  # one carved clip per class
