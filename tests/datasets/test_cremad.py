"""CREMA-D reader: wav -> OGM-GE log-STFT at load (FSDD recordings), 1 fps frames (MNIST)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from av_fixtures import Built, Content, build_cremad, reference_eval_frames

from mmcoop.datasets.cremad import load_cremad_sources
from mmcoop.errors import DataError
from mmcoop.media.audio import log_stft, read_wav, resample

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cremad(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_cremad(tmp_path_factory.mktemp("cremad"), Content(data_root))


def test_splits_labels_and_the_ogmge_spectrogram(cremad: Built) -> None:
    src = load_cremad_sources(cremad.root, image_size=12, val_fraction=0.5, seed=1)
    assert src["test"].ids == [cid for cid, _ in cremad.clips["test"]]
    assert src["test"].labels().tolist() == [0, 1, 2, 3, 4, 5]  # NEU HAP SAD FEA DIS ANG
    assert sorted(src["val"].labels().tolist()) == [0, 1, 2, 3, 4, 5]  # 1 of 2 per class carved
    assert sorted(src["train"].ids + src["val"].ids) == sorted(cid for cid, _ in cremad.clips["train"])
    assert [(m.name, m.shape) for m in src["test"].specs] == [("audio", (1, 257, 188)), ("visual", (1, 3, 12, 12))]
    out = src["test"].fetch(torch.tensor([4]), train=False)
    # by hand: 8 kHz FSDD wav -> 22,050 Hz, tiled to 3 s, clipped, STFT(512, 353), log(|S| + 1e-7)
    x, rate = read_wav(cremad.root / "AudioWAV" / f"{src['test'].ids[4]}.wav")
    y = resample(x, rate, 22050)
    y = np.clip(np.tile(y, math.ceil(66150 / len(y)))[:66150], -1, 1)
    assert torch.equal(out["inputs"]["audio"][0], log_stft(y, 512, 353).unsqueeze(0))
    # no audio augmentation: train audio = eval audio
    tr = src["test"].fetch(torch.tensor([4]), True, torch.Generator().manual_seed(0))
    assert torch.equal(tr["inputs"]["audio"], out["inputs"]["audio"])
    folder = cremad.root / "Image-01-FPS" / src["test"].ids[4]
    assert torch.equal(out["inputs"]["visual"][0], reference_eval_frames([folder / "00001.jpg"], 12))  # middle of 3


def test_bad_label_and_missing_csv(cremad: Built, tmp_path: Path) -> None:
    root = tmp_path / "c"
    shutil.copytree(cremad.root, root)
    (root / "test.csv").write_text("1001_DFA_ANG_XX,ANGRY\n")
    with pytest.raises(DataError, match=r"unknown label 'ANGRY' on line 1 of .*test.csv"):
        load_cremad_sources(root)
    (root / "test.csv").unlink()
    with pytest.raises(DataError, match=r"missing split file .*test.csv\. Expected layout:\n<root>/"):
        load_cremad_sources(root)
