"""mosei / mosi: tiny pickles in the BalanceBenchmark layout (per split text, audio, vision, labels, id)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from _readers import train_and_value
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.data import load_dataset
from mmcoop.datasets.mosei import binary_labels, load_mosei_sources, load_mosi_sources, seven_class_labels
from mmcoop.errors import DataError
from mmcoop.experiment.presets import preset_config

pytestmark = pytest.mark.usefixtures("one_thread")
SIZES = {"train": 12, "valid": 6, "test": 7}
SCORES = [-2.6, -2.0, -1.5, -1.0, -0.4, 0.0, 0.3, 1.0, 1.2, 2.0, 2.8, -0.01]  # every 7-class bin, and 0
SHAPES = {"text": (6, 5), "audio": (8, 4), "vision": (7, 3)}  # unaligned: each its own length


def _split(n: int, seed: int, mosi: bool) -> dict[str, np.ndarray]:
    g = np.random.default_rng(seed)
    score = np.array([SCORES[i % len(SCORES)] for i in range(n)], dtype=np.float64)
    part: dict[str, np.ndarray] = {k: g.normal(size=(n, *s)) for k, s in SHAPES.items()}
    part["text"] += score[:, None, None]  # some signal, so a trained model is not degenerate
    part["audio"][0, 1, 2] = -np.inf
    part["audio"][1, 3, :] = -np.inf
    part["labels"] = score.reshape(n, 1, 1)
    vids = [f"vid{i // 2}" for i in range(n)]
    rows = [(v, f"{i * 1.5:.2f}", f"{i * 1.5 + 3:.2f}") for i, v in enumerate(vids)]
    part["id"] = np.array([[f.encode() for f in r] for r in rows], dtype=object) if mosi else np.array(rows)
    return part


def write_pickle(path: Path, mosi: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """A MOSEI/MOSI pickle of the benchmark's layout; returns what it holds."""
    data = {k: _split(n, seed, mosi) for seed, (k, n) in enumerate(SIZES.items())}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(data))
    return data


@pytest.fixture(scope="module")
def mosei(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("mosei")
    return root, write_pickle(root / "mosei_senti_data_noalign.pkl")


def test_splits_shapes_labels_ids_and_minus_inf(mosei) -> None:
    root, data = mosei
    src = load_mosei_sources(root)
    assert {s: len(v) for s, v in src.items()} == {"train": 12, "val": 6, "test": 7}
    assert [(s.name, s.kind, s.shape) for s in src["test"].specs] == [
        ("text", "sequence", (6, 5)),
        ("audio", "sequence", (8, 4)),
        ("visual", "sequence", (7, 3)),
    ]
    for split, key in (("train", "train"), ("val", "valid"), ("test", "test")):
        part, s = data[key], src[split]
        audio = part["audio"].astype(np.float32)
        audio[audio == -np.inf] = 0  # the benchmark's handling, by hand
        assert torch.equal(s.inputs["audio"], torch.from_numpy(audio))
        assert torch.equal(s.inputs["visual"], torch.from_numpy(part["vision"].astype(np.float32)))
        assert s.labels().tolist() == [0 if v < 0 else 1 for v in part["labels"][:, 0, 0]]
        assert s.info["audio_neg_inf_zeroed"] == 5 and s.info["split_key"] == key
    assert src["test"].ids[:3] == ["vid0/0.00/3.00", "vid0/1.50/4.50", "vid1/3.00/6.00"]
    assert torch.isfinite(src["train"].inputs["audio"]).all()


def test_the_benchmarks_label_rules() -> None:
    assert binary_labels(np.array(SCORES)).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0]
    # acc7: < -2 | [-2, -1) | [-1, 0) | 0 | (0, 1] | (1, 2] | > 2
    assert seven_class_labels(np.array(SCORES)).tolist() == [0, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6, 2]


def test_seven_classes_aligned_file_and_mosi_bytes_ids(mosei, tmp_path: Path) -> None:
    root, data = mosei
    src = load_mosei_sources(root, labels="7class")
    assert (
        src["train"].num_classes == 7
        and src["train"].labels().tolist() == seven_class_labels(data["train"]["labels"][:, 0, 0]).tolist()
    )
    with pytest.raises(DataError, match=r"missing mosei pickle .*mosei_senti_data\.pkl\. Expected layout:\n<root>/"):
        load_mosei_sources(root, aligned=True)
    write_pickle(tmp_path / "mosi_data.pkl", mosi=True)
    mosi = load_mosi_sources(tmp_path, aligned=True)
    assert mosi["val"].ids[1] == "vid0/1.50/4.50"  # bytes decoded as the benchmark does for mosi


def test_bad_pickles_are_named(tmp_path: Path) -> None:
    path = tmp_path / "mosei_senti_data_noalign.pkl"
    data = write_pickle(path)
    del data["valid"]
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=r"has no split 'valid'"):
        load_mosei_sources(tmp_path)
    data = write_pickle(path)
    data["test"]["vision"] = data["test"]["vision"][:3]
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=r"test/vision has shape \[3, 7, 3\]; expected \[7, T, D\]"):
        load_mosei_sources(tmp_path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match=r"cannot unpickle .*mosei_senti_data_noalign.pkl"):
        load_mosei_sources(tmp_path)
    data = write_pickle(path)
    data["train"]["vision"][2, 0, 0] = np.nan  # not the benchmark's -inf case: reported by the input check
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(DataError, match=r"train.*visual"):
        load_dataset("mosei", None, 0, root=str(tmp_path))


class _Plant:
    """Unpickling this writes a file: proof of whether a pickle was loaded."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (self.target, "ran"))


def test_a_pickle_inside_a_run_folder_is_never_loaded(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r"
    (run / "data").mkdir(parents=True)
    (run / ".mmcoop-run").write_text("")
    planted = tmp_path / "planted.txt"
    (run / "data" / "mosei_senti_data_noalign.pkl").write_bytes(pickle.dumps({"train": _Plant(planted)}))
    with pytest.raises(DataError, match=r"refusing to unpickle .* inside the mmcoop run folder .*runs/r"):
        load_mosei_sources(run / "data")
    assert not planted.exists()


def test_trains_one_epoch_and_values_three_modalities_by_sample_id(mosei, tmp_path: Path) -> None:
    root, data = mosei
    table = train_and_value(tmp_path, "mosei", ["dataset_options.root=" + str(root)])
    assert table.modalities == ["text", "audio", "visual"] and table.phi.shape == (7, 3)
    assert table.sample_id == ["/".join(map(str, r)) for r in data["test"]["id"]]
    assert torch.allclose(table.phi.sum(1), table.values[:, -1], atol=1e-6)  # efficiency: sum of phi = v(all)


def test_the_preset_is_balancebenchmarks(mosei, tmp_path: Path) -> None:
    root, _ = mosei
    args = ["train", "--preset", "mosi", "--name", "p", "--out-dir", str(tmp_path), "--device", "cpu"]
    sets = ["dataset_options.root=" + str(root), "dataset_options.data=mosei_senti", "train.epochs=1"]
    sets += ["train.progress=false", "model.dim=8"]
    sets += [
        f"model.options.encoder_options.{m}.{k}" for m in ("text", "audio", "visual") for k in ("width=8", "ff=16")
    ]
    for s in sets:
        args += ["--set", s]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((tmp_path / "p" / "config.yaml").read_text())
    want = preset_config("mosi")
    assert cfg["train"]["optimizer"] == "adamw" and cfg["train"]["weight_decay"] == 0.01
    assert cfg["train"]["step_size"] == 10 and cfg["train"]["batch_size"] == 32 and want["train"]["epochs"] == 30
    assert cfg["model"]["options"]["encoders"] == {m: "transformer-sequence" for m in ("text", "audio", "visual")}
    assert cfg["model"]["options"]["encoder_options"]["audio"] == {
        "width": 8,
        "heads": 4,
        "layers": 2,
        "ff": 16,
        "dropout": 0.1,
    }
    assert want["model"]["dim"] == 1024 and want["model"]["options"]["encoder_options"]["text"]["width"] == 1024
