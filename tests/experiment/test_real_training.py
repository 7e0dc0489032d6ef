"""Short training runs on the real datasets beat chance by a clear margin (10 classes: chance 0.1)."""

import pytest

from mmcoop.experiment import RunConfig, run_experiment


@pytest.mark.parametrize(
    "dataset,method,epochs,floor",
    [
        ("avmnist", "joint", 2, 0.6),
        ("mfeat", "joint", 4, 0.8),
        ("avmnist", "sample-level", 2, 0.5),
    ],
)
def test_short_run_beats_chance(tmp_path, data_root, dataset, method, epochs, floor):
    opts = {"warmup": 1, "execution": "weighted"} if method == "sample-level" else {}
    cfg = RunConfig.from_dict(
        {
            "dataset": dataset,
            "method": method,
            "method_options": opts,
            "data_root": str(data_root),
            "train": {"epochs": epochs, "progress": False},
            "out_dir": str(tmp_path),
        }
    )
    r = run_experiment(cfg)
    assert r.test["acc"] > floor, r.test
    assert set(r.splits.modalities) <= {k[len("acc_") :] for k in r.test if k.startswith("acc_")}
    if method == "sample-level":
        assert (r.run_dir / "valuation" / "epoch_002.parquet").exists()
        assert "contrib_audio" in r.history[-1] and "copies_visual" in r.history[-1]
