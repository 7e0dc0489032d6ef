"""Where the paper's per-epoch valuation pass spends its time, on a lazily decoded source.

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/pass_profile.py [--ks-clips 600] [--epochs 5]
    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/pass_profile.py --dataset avmnist

Trains sample-level re-sampling (``weighted`` execution, ``valuation: pass``, warm-up 2)
through :func:`mmcoop.experiment.run_experiment` and times the parts of every valuation
pass in place (the library's own functions wrapped, nothing re-implemented):

- **input**: waiting for the pass's loader (``make_loader``: storage reads, JPEG decode,
  resize and normalisation, spectrogram load, collation);
- **transfer**: ``batch_to`` (host to device; a no-op copy on the CPU);
- **encoders**: ``model.encode`` of the inference copy (BatchNorm folded);
- **coalitions + Shapley**: ``ModalityValuator.attribute_features`` (the 2^M coalition
  logits through the fusion head, the value function, the Shapley weights);
- **other**: the rest of the pass (the folded inference copy, table assembly).

``--dataset ks-fixture`` (default) builds the Kinetics-Sounds-layout folder of
``benchmarks/method_cost.py`` (real MNIST digits as JPEG frames, FSDD spectrograms) and reads
it through the ``kinetics-sounds`` reader without a frame cache, as the paper's loader does:
every pass decodes every training clip again. ``--dataset avmnist`` profiles the in-memory
case. Printed: seconds per pass (median over the passes) and shares, beside the median
re-sampled training epoch. CUDA work is synchronised around each timed part.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine, sync  # noqa: E402
from method_cost import build_ks_fixture  # noqa: E402

import mmcoop.data.base as data_base  # noqa: E402
import mmcoop.valuation as valuation  # noqa: E402
import mmcoop.valuation.runner as runner  # noqa: E402
from mmcoop.experiment import RunConfig, run_experiment  # noqa: E402
from mmcoop.utils.memory import tune_malloc  # noqa: E402
from mmcoop.valuation.valuator import ModalityValuator  # noqa: E402

PARTS = ("input", "transfer", "encoders", "coalitions + Shapley")


class PassTimer:
    """Seconds per part of every valuation pass, collected while the pass runs."""

    def __init__(self) -> None:
        self.passes: list[dict[str, float]] = []
        self.current: dict[str, float] | None = None

    def add(self, part: str, seconds: float) -> None:
        if self.current is not None:
            self.current[part] += seconds

    def timed(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.current is None:  # outside a pass (the training loop, the online recorder)
                return fn(*args, **kwargs)
            sync()
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            sync()
            self.add(part, time.perf_counter() - t0)
            return out

        return wrapper

    def timed_iter(self, loader: Any) -> Any:
        it = iter(loader)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                return
            self.add("input", time.perf_counter() - t0)
            yield batch

    def install(self) -> None:
        """Wrap the library's pass functions (module attributes: the pass looks them up at call time)."""
        whole = valuation.valuate_dataset
        make_loader, inference_model = data_base.make_loader, runner.inference_model

        @functools.wraps(whole)
        def pass_(*args: Any, **kwargs: Any) -> Any:
            self.current = defaultdict(float)
            sync()
            t0 = time.perf_counter()
            try:
                return whole(*args, **kwargs)
            finally:
                sync()
                self.current["total"] = time.perf_counter() - t0
                self.passes.append(dict(self.current))
                self.current = None

        def loader_(*args: Any, **kwargs: Any) -> Any:
            loader = make_loader(*args, **kwargs)
            return loader if self.current is None else self.timed_iter(loader)

        def inference_(*args: Any, **kwargs: Any) -> Any:
            model = inference_model(*args, **kwargs)
            model.encode = self.timed("encoders", model.encode)  # this copy only
            return model

        valuation.valuate_dataset = pass_  # type: ignore[assignment]
        data_base.make_loader = loader_  # type: ignore[assignment]
        data_base.batch_to = self.timed("transfer", data_base.batch_to)  # type: ignore[assignment]
        runner.inference_model = inference_  # type: ignore[assignment]
        ModalityValuator.attribute_features = self.timed(  # type: ignore[method-assign]
            "coalitions + Shapley", ModalityValuator.attribute_features
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ks-fixture", choices=["ks-fixture", "avmnist"])
    ap.add_argument("--ks-clips", type=int, default=600)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    tune_malloc()
    out = tempfile.mkdtemp(prefix="mmcoop-pass-profile-")
    if args.dataset == "ks-fixture":
        root = build_ks_fixture(Path(out) / "ks", args.ks_clips)
        dataset: dict = {
            "dataset": "kinetics-sounds",
            "debiased": None,
            "dataset_options": {"root": str(root), "image_size": args.image_size},
        }
    else:
        dataset = {"dataset": "avmnist", "debiased": {"strength": 0.8}}
    cfg = RunConfig.from_dict(
        {
            **dataset,
            "method": "sample-level",
            "method_options": {"execution": "weighted", "warmup": 2},
            "out_dir": out,
            "name": "profile",
            "train": {"epochs": args.epochs, "progress": False, "device": args.device},
        }
    )
    timer = PassTimer()
    timer.install()
    history = run_experiment(cfg).history
    if not timer.passes:
        sys.exit("no valuation pass ran: raise --epochs above the warm-up (2)")
    resampled = [h["seconds"] for h in history if "time_valuation_s" in h]
    joint_like = [h["seconds"] for h in history if "time_valuation_s" not in h]
    total = statistics.median(p["total"] for p in timer.passes)
    print(f"\n{machine()}\n\nCommand: `{command_line()}`\n")
    print(
        f"{len(timer.passes)} passes over {history[-1]['train_units']} training samples; median epoch "
        f"{statistics.median(resampled):.2f} s with the pass, {statistics.median(joint_like):.2f} s before "
        f"the warm-up ended (joint training only)\n"
    )
    print("| part of the pass | s per pass (median) | share of the pass |")
    print("|---|---:|---:|")
    shown = 0.0
    for part in PARTS:
        s = statistics.median(p.get(part, 0.0) for p in timer.passes)
        shown += s
        print(f"| {part} | {s:.3f} | {s / total:.0%} |")
    print(f"| other (inference copy, table) | {max(total - shown, 0.0):.3f} | {max(total - shown, 0.0) / total:.0%} |")
    print(f"| **whole pass** | **{total:.3f}** | 100% |")


if __name__ == "__main__":
    main()
