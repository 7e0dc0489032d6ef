"""Run by tests/enhance/test_online.py under torchrun (2 processes, gloo on CPU): re-sampling
methods with ``valuation: online`` and a learning rate of 0 on the tiny problem; each rank
saves, per epoch, the plan it executed and the committed online records."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: _helpers
from _helpers import tiny_data
from _online import CASES, frozen_trainer

from mmcoop.train.distributed import init_from_env, shutdown
from mmcoop.utils.dist import rank

out = Path(sys.argv[1])
init_from_env()
data = tiny_data(61)  # odd: the distributed sampler pads one rank with a duplicate row
for case, (name, options) in CASES.items():
    trainer = frozen_trainer(name, options, data)
    saved = []

    def keep(record, t, saved=saved):
        m = t.method
        saved.append(
            {
                "plan_rows": m.plan.rows.clone() if m.plan is not None else None,
                "plan_keep": m.plan.keep.clone() if m.plan is not None else None,
                "online": m._online.state_dict(),
            }
        )

    trainer.fit(keep)
    torch.save(saved, out / f"{case}_rank{rank()}.pt")
shutdown()  # every rank done: barrier, then leave the group (no exit-time race of the Gloo threads)
