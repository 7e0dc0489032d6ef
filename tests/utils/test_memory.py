"""tune_malloc applies glibc's settings once (Linux) and training still works afterwards."""

import sys

from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.utils.memory import tune_malloc


def test_tune_malloc_is_idempotent_and_training_runs(tmp_path):
    first = tune_malloc()
    assert tune_malloc() is first
    assert first == sys.platform.startswith("linux")  # glibc on the test machines
    r = run_experiment(
        RunConfig.from_dict(
            {"dataset": "synthetic", "train": {"epochs": 1, "progress": False}, "out_dir": str(tmp_path)}
        )
    )
    assert r.test["acc"] > 0.5
