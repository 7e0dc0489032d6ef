"""Cost of live logging (TensorBoard) and the callback machinery per avmnist epoch, in one process.

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/logging_cost.py [--epochs 2] [--repeats 1]

Two run settings of ``sample-level`` (weighted execution, ``warmup`` 0: every epoch values
the training set, so each epoch also logs the phi histograms), alternated ``--repeats``
times in one process after a discarded warm-up run:

* ``plain``: ``train.loggers=[jsonl]`` (the run's own ``metrics.jsonl``), no console line;
* ``logged``: ``train.loggers=[jsonl,tensorboard]``, the console line, and 5 no-op user
  callbacks (every event dispatched to each).

Reported: the median wall and process-CPU seconds per epoch of each setting (from the
epoch's start event to the end of its last handler, so the loggers' end-of-epoch writes
count) and their ratios (goal <= 1.02), and -- least exposed to other jobs on the machine --
the seconds spent inside the TensorBoard logger's and console line's event handlers per
epoch, as a fraction of the plain epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine  # noqa: E402

from mmcoop.experiment import RunConfig, run_experiment  # noqa: E402
from mmcoop.train.callbacks import EVENTS, Callback  # noqa: E402
from mmcoop.utils.memory import tune_malloc  # noqa: E402


class Stopwatch(Callback):
    """Times every event of the callbacks that follow it in the list (the run's loggers and console line)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._wrapped = False

    def on_fit_start(self, trainer: Any) -> None:
        if self._wrapped:
            return
        self._wrapped = True
        cbs = trainer.callbacks.callbacks
        for cb in cbs:
            name = type(cb).__name__
            if name in ("TensorBoardLogger", "ConsoleLine"):
                for event in EVENTS:
                    fn = getattr(cb, event, None)
                    if fn is not None:
                        setattr(cb, event, self._timed(fn))

    def _timed(self, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args)
            finally:
                self.seconds += time.perf_counter() - t0

        return call


class EpochClock(Callback):
    """Wall and process-CPU seconds of each epoch, from its start event to the end of its last
    ``on_epoch_end`` handler (put it last: the loggers' end-of-epoch work is counted). CPU time
    is robust to other jobs sharing the machine."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self._t = (0.0, 0.0)

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        self._t = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self.wall.append(time.perf_counter() - self._t[0])
        self.cpu.append(time.process_time() - self._t[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="avmnist")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    tune_malloc()
    out = tempfile.mkdtemp(prefix="mmcoop-logging-")

    def run(label: str, logged: bool, epochs: int) -> tuple[EpochClock, float]:
        cfg = RunConfig.from_dict(
            {
                "dataset": args.dataset,
                "method": "sample-level",
                "method_options": {"execution": "weighted", "warmup": 0},
                "name": label,
                "out_dir": out,
                "train": {
                    "epochs": epochs,
                    "progress": logged,
                    "device": args.device,
                    "loggers": ["jsonl", "tensorboard"] if logged else ["jsonl"],
                },
            }
        )
        watch, clock = Stopwatch(), EpochClock()
        callbacks = [watch, *[Callback() for _ in range(5)], clock] if logged else [clock]
        run_experiment(cfg, callbacks=callbacks)
        return clock, watch.seconds

    run("warm-up", False, 1)  # discarded: first-call costs
    plain, logged = EpochClock(), EpochClock()
    inside = 0.0
    for i in range(args.repeats):
        c = run(f"plain{i}", False, args.epochs)[0]
        plain.wall += c.wall
        plain.cpu += c.cpu
        c, handler = run(f"logged{i}", True, args.epochs)
        logged.wall += c.wall
        logged.cpu += c.cpu
        inside += handler
    med = statistics.median
    per_epoch_inside = inside / len(logged.wall)
    print(f"machine: {machine(args.device)}")
    print(f"command: {command_line()}")
    print(f"epochs per setting: {len(plain.wall)} (sample-level weighted, warmup 0, {args.dataset})")
    for name, c in (
        ("plain  (loggers [jsonl])", plain),
        ("logged (jsonl + tensorboard + console + 5 callbacks)", logged),
    ):
        print(
            f"{name:55s} wall median {med(c.wall):8.2f} s/epoch {[round(x, 2) for x in c.wall]}; "
            f"CPU median {med(c.cpu):8.2f} s/epoch {[round(x, 2) for x in c.cpu]}"
        )
    print(
        f"ratio logged / plain: wall {med(logged.wall) / med(plain.wall):.3f}, "
        f"process CPU {med(logged.cpu) / med(plain.cpu):.3f} (goal <= 1.02)"
    )
    print(
        f"inside the TensorBoard logger and console line: {per_epoch_inside * 1000:.1f} ms/epoch "
        f"= {per_epoch_inside / med(plain.wall):.4f} of a plain epoch (wall)"
    )


if __name__ == "__main__":
    main()
