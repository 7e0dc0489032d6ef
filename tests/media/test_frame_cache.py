"""The fast frame path as a dataset option (``dataset_options.frame_cache``) on tiny fixtures in the
Kinetics-Sounds / MM-Debiased layouts (real MNIST frames, FSDD spectrograms): cached eval tensors
equal the per-item decode bit for bit, train batches keep the reader's frame choice and
transforms, and a preset-like run trains one epoch on the cached path."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import pytest
import torch
from av_fixtures import Built, Content, build_kinetics_sounds, build_mm_debiased

from mmcoop.data.registry import load_dataset
from mmcoop.datasets.kinetics_sounds import load_kinetics_sounds_sources
from mmcoop.errors import ConfigError
from mmcoop.media.frame_cache import CachedClipSource, cache_sources, frame_cache_path
from mmcoop.media.frames import FrameCache

pytestmark = pytest.mark.usefixtures("one_thread")
S = 16  # frame side in the tests


@pytest.fixture(scope="module")
def ks(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_kinetics_sounds(tmp_path_factory.mktemp("ks"), Content(data_root))


@pytest.fixture()
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MMCOOP_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def load(root: Path, **kw):  # noqa: ANN201
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the fixture's listed-but-absent clip
        return load_kinetics_sounds_sources(root, image_size=S, **kw)


@pytest.mark.parametrize("eval_frames", ["ks-official", "centre"])
def test_cached_eval_tensors_equal_the_per_item_decode(ks: Built, cache_home: Path, eval_frames: str) -> None:
    plain = load(ks.root, eval_frames=eval_frames)
    cached = cache_sources(plain, workers=1, progress=False)
    for split in ("train", "val", "test"):
        src = cached[split]
        assert isinstance(src, CachedClipSource) and src.specs == plain[split].specs and len(src) == len(plain[split])
        rows = torch.arange(len(src)).flip(0)
        got, ref = src.fetch(rows, train=False), plain[split].fetch(rows, train=False)
        for m in ("audio", "visual"):
            assert got["inputs"][m].dtype == ref["inputs"][m].dtype == torch.float32
            assert torch.equal(got["inputs"][m], ref["inputs"][m]), (split, m)
        assert torch.equal(got["label"], ref["label"])
        path = frame_cache_path(plain[split], "visual", S)
        assert path.parent == cache_home / "frames" and (path / FrameCache.DATA_FILE).is_file()
        assert FrameCache(path).shape == (len(src), 10, 3, S, S)  # all 10 frames of each clip, at S x S


def test_cache_is_built_once_and_reused(ks: Built, cache_home: Path) -> None:
    plain = load(ks.root)
    cache_sources(plain, workers=1, progress=False)
    data = frame_cache_path(plain["val"], "visual", S) / FrameCache.DATA_FILE
    stamp = data.stat().st_mtime_ns
    again = cache_sources(load(ks.root), workers=1, progress=False)
    assert data.stat().st_mtime_ns == stamp
    assert frame_cache_path(plain["val"], "visual", S + 2) != frame_cache_path(
        plain["val"], "visual", S
    )  # keyed by size
    clone = pickle.loads(pickle.dumps(again["val"]))  # DataLoader workers map the cache themselves
    assert torch.equal(
        clone.fetch([1, 0], False)["inputs"]["visual"], again["val"].fetch([1, 0], False)["inputs"]["visual"]
    )


def test_train_with_plain_resize_equals_the_reader_draw_for_draw(ks: Built, cache_home: Path) -> None:
    """train_crop=resize: frame choice, flips and normalisation come out exactly as the reader's."""
    plain = load(ks.root, train_crop="resize")
    cached = cache_sources(plain, workers=1, progress=False)
    varied = 0
    for row in range(len(plain["train"])):
        for seed in range(3):
            got = cached["train"].fetch([row], True, torch.Generator().manual_seed(seed))["inputs"]["visual"]
            ref = plain["train"].fetch([row], True, torch.Generator().manual_seed(seed))["inputs"]["visual"]
            assert torch.equal(got, ref), (row, seed)
            varied += int(not torch.equal(got, cached["train"].fetch([row], False)["inputs"]["visual"]))
    assert varied > 0  # random frames / flips did show up (train differs from eval)


def test_cached_train_batches_are_random_resized_crops_of_the_chosen_frames(ks: Built, cache_home: Path) -> None:
    plain = load(ks.root)
    src = cache_sources(plain, workers=1, progress=False)["train"]
    rows = torch.tensor([0, 3, 5, 1])
    a = src.fetch(rows, True, torch.Generator().manual_seed(7))
    b = src.fetch(rows, True, torch.Generator().manual_seed(7))
    c = src.fetch(rows, True, torch.Generator().manual_seed(8))
    v = a["inputs"]["visual"]
    assert v.shape == (4, 3, 3, S, S) and v.dtype == torch.float32
    assert torch.equal(v, b["inputs"]["visual"]) and not torch.equal(v, c["inputs"]["visual"])
    assert torch.equal(
        a["inputs"]["audio"], plain["train"].fetch(rows, False)["inputs"]["audio"]
    )  # stored, no augmentation
    # values stay in the normalised range of [0, 1] pixels
    lo = (0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    hi = (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    per_channel = v.transpose(0, 2).reshape(3, -1)
    assert bool((per_channel.min(1).values >= lo - 1e-5).all() and (per_channel.max(1).values <= hi + 1e-5).all())


def test_mm_debiased_option_through_the_registry(data_root: Path, tmp_path: Path, cache_home: Path) -> None:
    split_json = data_root / "mm-debiased" / "MM-Debiased.json"
    build_mm_debiased(tmp_path / "mmd", Content(data_root), split_json)
    opts = {"root": str(tmp_path / "mmd"), "split_json": str(split_json), "image_size": S}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # most listed clips are absent from the fixture
        plain = load_dataset("mm-debiased", None, 0, **opts)
        cached = load_dataset("mm-debiased", None, 0, frame_cache=True, **opts)
    assert cached.info["frame_cache"] is True and plain.info["frame_cache"] is False
    for split in ("train", "val", "test"):
        got = cached.split(split).__getitems__([1, 0])
        ref = plain.split(split).__getitems__([1, 0])
        assert isinstance(cached.split(split).source, CachedClipSource)
        assert torch.equal(got["inputs"]["visual"], ref["inputs"]["visual"])
        assert torch.equal(got["inputs"]["audio"], ref["inputs"]["audio"])
    with pytest.raises(ConfigError, match="frame_cache must be true or false"):
        load_dataset("mm-debiased", None, 0, frame_cache="yes", **opts)


def test_one_epoch_on_the_cached_path(ks: Built, tmp_path: Path, cache_home: Path) -> None:
    from mmcoop.experiment import run_experiment
    from mmcoop.experiment.config import RunConfig
    from mmcoop.experiment.presets import apply_preset

    cfg = RunConfig.from_dict(
        apply_preset(
            {
                "name": "cached",
                "out_dir": str(tmp_path / "runs"),
                "dataset_options": {"root": str(ks.root), "image_size": 32, "frame_cache": True},
                "train": {"epochs": 1, "batch_size": 4, "eval_batch_size": 8, "progress": False, "device": "cpu"},
                "model": {"dim": 16},
            },
            "kinetics-sounds",
        )
    )
    assert cfg.model.options["encoders"] == {"audio": "resnet18-spectrogram", "visual": "resnet18-frames"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_experiment(cfg)
    assert len(res.history) == 1 and res.history[0]["train_units"] == 6
    assert isinstance(res.splits.train.source, CachedClipSource)
    assert json.loads((tmp_path / "runs" / "cached" / "dataset.json").read_text())["frame_cache"] is True
    built = sorted(p.name for p in (cache_home / "frames").iterdir() if p.is_dir())
    assert [n.split("-visual-32px-")[0] for n in built] == [f"kinetics-sounds-{s}" for s in ("test", "train", "val")]
    assert 0.0 <= res.test["acc"] <= 1.0
