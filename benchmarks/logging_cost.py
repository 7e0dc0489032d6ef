"""Cost of live logging (TensorBoard) and the callback machinery per avmnist epoch, in one process.

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/logging_cost.py [--epochs 3] [--repeats 2]

Two run settings of ``sample-level`` (weighted execution, ``warmup`` 0: every epoch values
the training set, so each epoch also logs the phi histograms), alternated ``--repeats``
times in one process after a discarded warm-up run:

* ``plain``: ``train.loggers=[jsonl]`` (the run's own ``metrics.jsonl``), no console line;
* ``logged``: ``train.loggers=[jsonl,tensorboard]``, the console line, and 5 no-op user
  callbacks (every event dispatched to each).

Reported: the median seconds per epoch of each setting and their ratio (goal <= 1.02),
and -- less exposed to machine noise -- the seconds spent inside the TensorBoard logger's
and console line's event handlers per epoch, as a fraction of the plain epoch.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="avmnist")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    tune_malloc()
    out = tempfile.mkdtemp(prefix="mmcoop-logging-")

    def run(label: str, logged: bool, epochs: int) -> tuple[list[float], float]:
        cfg = RunConfig.from_dict({
            "dataset": args.dataset, "method": "sample-level",
            "method_options": {"execution": "weighted", "warmup": 0}, "name": label, "out_dir": out,
            "train": {"epochs": epochs, "progress": logged, "device": args.device,
                      "loggers": ["jsonl", "tensorboard"] if logged else ["jsonl"]},
        })
        watch = Stopwatch()
        callbacks = [watch, *[Callback() for _ in range(5)]] if logged else []
        hist = run_experiment(cfg, callbacks=callbacks).history
        return [r["seconds"] for r in hist], watch.seconds

    run("warm-up", False, 1)  # discarded: first-call costs
    plain: list[float] = []
    logged: list[float] = []
    inside = 0.0
    for i in range(args.repeats):
        plain += run(f"plain{i}", False, args.epochs)[0]
        secs, handler = run(f"logged{i}", True, args.epochs)
        logged += secs
        inside += handler
    p, lg = statistics.median(plain), statistics.median(logged)
    per_epoch_inside = inside / len(logged)
    print(f"machine: {machine(args.device)}")
    print(f"command: {command_line()}")
    print(f"epochs per setting: {len(plain)} (sample-level weighted, warmup 0, {args.dataset})")
    print(f"plain  (loggers [jsonl]):                               median {p:.3f} s/epoch  {sorted(plain)}")
    print(f"logged (jsonl + tensorboard + console + 5 callbacks):   median {lg:.3f} s/epoch  {sorted(logged)}")
    print(f"ratio logged / plain: {lg / p:.3f} (goal <= 1.02)")
    print(f"inside the TensorBoard logger and console line: {per_epoch_inside * 1000:.1f} ms/epoch "
          f"= {per_epoch_inside / p:.4f} of a plain epoch")


if __name__ == "__main__":
    main()
