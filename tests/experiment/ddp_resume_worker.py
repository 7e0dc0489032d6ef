"""Run by tests/experiment/test_ddp_resume.py under 2-process torchrun (gloo, CPU).

``full OUT``: the uninterrupted run (4 epochs), then the same run again with rank 1 killed
by SIGKILL during the bookkeeping of epoch 3 (torchrun then stops rank 0).
``resume OUT``: ``--resume`` of the killed run in a fresh process group.
"""

import os
import signal
import sys
from pathlib import Path

from mmcoop.experiment import RunConfig, resume_experiment, run_experiment
from mmcoop.train import Trainer
from mmcoop.train.distributed import init_from_env, rank, shutdown

mode, out = sys.argv[1], Path(sys.argv[2])
init_from_env()


def cfg(name: str) -> RunConfig:
    # noisy synthetic views: random train-time noise is drawn from each rank's own RNG stream
    return RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"sizes": [96, 48, 48], "dim": 4, "noise": [2.0, 3.0]},
            "model": {"dim": 8},
            "method": "sample-level",
            "method_options": {"warmup": 1},
            "train": {"epochs": 4, "batch_size": 16, "progress": False, "device": "cpu", "lr": 0.003},
            "out_dir": str(out),
            "name": name,
        }
    )


if mode == "full":
    run_experiment(cfg("full"))
    real = Trainer.rank_state

    def rank_state(self):
        if rank() == 1 and self.epoch == 3:  # epoch 3 trained; its commit not yet written
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self)

    Trainer.rank_state = rank_state
    run_experiment(cfg("killed"))
else:
    resume_experiment(out / "killed")
    shutdown()  # every rank done: barrier, then leave the group (no exit-time race of the Gloo threads)
