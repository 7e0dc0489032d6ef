"""Per-epoch cost of every registered method relative to joint training, in one process.

    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/method_cost.py [--dataset avmnist] [--epochs 8]
    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/method_cost.py --methods joint,sample-level,modality-level
    MMCOOP_DATA=../shared/data .venv/bin/python benchmarks/method_cost.py --dataset ks-fixture --methods joint,sample-level

Every method trains the same model on the same data (debiased avmnist, strength 0.8,
seed 0) for ``--epochs`` epochs with ``warmup`` 2 (so the median epoch of the re-sampling
methods includes their per-epoch valuation; the other schedules open by epoch 2 too:
:data:`SCHEDULE_STARTS`); the re-sampling methods run in both
executions and both valuation modes (``pass``: the paper's eval-mode pass at each epoch
start; ``online``: coalition values recorded from the training pass's features, issue 19).
``--methods`` keeps only the named methods (all of their variants). ``--dataset ks-fixture``
builds a Kinetics-Sounds-layout folder from real content of the data root (MNIST digits as
JPEG frames, FSDD spectrograms as ``.npy``; the builder of
``tests/av_fixtures.py``) with ``--ks-clips`` training clips, and trains on it
through the ``kinetics-sounds`` reader: every epoch decodes every JPEG again (no frame cache),
as the paper's loader does, so a valuation pass re-reads and re-decodes the training set.
The allocator is tuned as the ``mmcoop`` command does (:func:`mmcoop.utils.memory.tune_malloc`:
without it, runs in one process differed by up to 1.6x per epoch for the same work) and a
discarded warm-up run comes first. Reported: the median
seconds per epoch (training, the method's hooks incl. valuation, validation) and its ratio
to joint's, training units and optimizer steps of the last epoch. With ``--repeats N`` every
method runs N times in rotated order; the ratio is the median over rounds of each round's
ratio to that round's joint run (paired), with its range.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, machine  # noqa: E402

from mmcoop.errors import ConfigError  # noqa: E402
from mmcoop.experiment import RunConfig, run_experiment  # noqa: E402
from mmcoop.methods import METHODS, variant_options  # noqa: E402
from mmcoop.utils.memory import tune_malloc  # noqa: E402


#: Schedule options set for every method that has them, so that the timed epochs (from
#: ``--timed-from 2`` on) run each method's distinctive step: re-sampling / Remix warm-up, ARL's
#: asymmetric step (official ``epoch > start``), DI-MML's contrastive term.
SCHEDULE_STARTS = {"warmup": 2, "start": 1, "duc_starts": 2}


def build_ks_fixture(root: Path, train_clips: int, classes: int = 10, frames: int = 10) -> Path:
    """A Kinetics-Sounds-layout folder (split files, ``audio/<split>/<id>.npy``, 1 fps JPEG
    frames) of ``train_clips`` training clips and ``classes`` clips per class in val and
    test, with real content: MNIST digits as frames, FSDD recordings as spectrograms
    (the fixture builder of the reader tests, at a larger size). Returns ``root``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import av_fixtures  # the reader tests' fixture builder (real MNIST / FSDD content)

    data_root = Path(os.environ.get("MMCOOP_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    content = av_fixtures.Content(data_root)
    content.digits = av_fixtures.read_mnist_images(data_root, 10_000)
    per_split = {"train": train_clips, "val": 2 * classes, "test": 2 * classes}
    for split, n in per_split.items():
        lines = []
        for i in range(n):
            cid, label = f"ks{split}{i:05d}", i % classes
            av_fixtures.ks_media(root, content, split, cid, frames)
            lines.append(f"/data/ks/{split}/{cid} {frames} {label}")
            content._d %= len(content.digits) - frames  # reuse digits and recordings cyclically
            content._w %= len(content.wavs)
        (root / f"{split}_1fps_path.txt").write_text("\n".join(lines) + "\n")
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="avmnist")
    ap.add_argument("--strength", type=float, default=0.8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--timed-from",
        type=int,
        default=0,
        help="median over epochs from this 0-based index on (e.g. 2 = the warm-up's end: only re-sampled "
        "epochs of the re-sampling methods; every method timed over the same epochs)",
    )
    ap.add_argument(
        "--methods",
        default="",
        help="comma list of methods (all their variants) or variant labels such as "
        "sample-level:weighted+online to measure (default: all)",
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every method this many times, the order rotated each round; reported: the median "
        "over runs and the spread of the per-round ratios to joint (runs of the same work differ by "
        "10-15%% on a 2-core machine, so one run cannot show a 5%% goal)",
    )
    ap.add_argument("--ks-clips", type=int, default=600, help="training clips of --dataset ks-fixture")
    ap.add_argument("--image-size", type=int, default=64, help="frame side of --dataset ks-fixture")
    ap.add_argument(
        "--clock",
        default="wall",
        choices=["wall", "cpu"],
        help="epoch seconds as wall time (default) or this process's CPU time (robust to other jobs "
        "on a shared machine; meaningful with one torch thread and num_workers 0)",
    )
    args = ap.parse_args()
    if args.clock == "cpu":  # the loop times epochs with time.perf_counter: give it the process CPU clock
        import types

        import mmcoop.train.loop as loop_mod

        loop_mod.time = types.SimpleNamespace(perf_counter=time.process_time)  # type: ignore[attr-defined]
    tune_malloc()  # as the mmcoop command does: without it run-to-run allocator effects reach 1.6x
    specs = []
    only = {m.strip() for m in args.methods.split(",") if m.strip()}
    for name in sorted(METHODS.names(), key=lambda n: (n != "joint", n)):
        if name == "unimodal":
            continue
        labels = [name]
        if METHODS.get(name).variant_option == "execution":
            labels = [f"{name}:{v}" for v in ("duplicate", "weighted", "duplicate+online", "weighted+online")]
        for label in labels:
            if not only or name in only or label in only:
                specs.append((label, name, variant_options(name, label.partition(":")[2]) if ":" in label else {}))
    if not any(label == "joint" for label, _, _ in specs):
        specs.insert(0, ("joint", "joint", {}))  # the reference of every ratio
    out = tempfile.mkdtemp(prefix="mmcoop-cost-")
    dataset: dict = {"dataset": args.dataset, "debiased": {"strength": args.strength} if args.strength else None}
    if args.dataset == "ks-fixture":
        root = build_ks_fixture(Path(out) / "ks", args.ks_clips)
        dataset = {
            "dataset": "kinetics-sounds",
            "debiased": None,
            "dataset_options": {"root": str(root), "image_size": args.image_size},
        }

    def run(label: str, name: str, opts: dict, epochs: int, rnd: int = 0) -> list[dict]:
        fields = set(METHODS.get(name).Options.__dataclass_fields__)
        opts = {**opts, **{k: v for k, v in SCHEDULE_STARTS.items() if k in fields}}
        cfg = RunConfig.from_dict(
            {
                **dataset,
                "method": name,
                "method_options": opts,
                "name": label.replace(":", "-") + (f"-round{rnd + 1}" if rnd else ""),
                "out_dir": out,
                "train": {"epochs": epochs, "progress": False, "device": args.device},
            }
        )
        return run_experiment(cfg).history

    run("warm-up", "joint", {}, 1 if args.timed_from else 2)  # discarded
    per_run: dict[str, list[float]] = {label: [] for label, _, _ in specs}
    skipped: dict[str, str] = {}
    last: dict[str, tuple[int, int, list[float]]] = {}
    for rnd in range(args.repeats):
        shift = rnd % len(specs)  # rotate the order: no method always runs first or after a heavy one
        for label, name, opts in specs[shift:] + specs[:shift]:
            try:
                hist = run(label, name, opts, args.epochs, rnd)
            except ConfigError as e:  # e.g. a schedule that would not act within --epochs: nothing to time
                skipped[label] = str(e).split(". ")[0]
                continue
            timed = hist[args.timed_from :] or hist  # every method over the same epochs (--timed-from on)
            per_run[label].append(statistics.median(h["seconds"] for h in timed))
            val = [h["time_valuation_s"] for h in timed if "time_valuation_s" in h]
            prev = last.get(label, (0, 0, []))[2]
            last[label] = (hist[-1]["train_units"], hist[-1]["epoch_steps"], prev + val)
            print(f"  round {rnd + 1}: {label}: {per_run[label][-1]:.2f} s/epoch", flush=True)
    rows = []
    for label, _, _ in specs:
        if label in skipped:
            continue
        units, steps, val = last[label]
        ratios = [s / j for s, j in zip(per_run[label], per_run["joint"])]  # same round: paired
        rows.append(
            (
                label,
                statistics.median(per_run[label]),
                statistics.median(ratios),
                (min(ratios), max(ratios)),
                units,
                steps,
                statistics.median(val) if val else float("nan"),
            )
        )
    print(
        f"\n{machine()}; epoch clock: {args.clock}; load average at the end {os.getloadavg()[0]:.1f}\n\n"
        f"Command: `{command_line()}`\n"
    )
    print(
        f"| method | s/epoch (median{' of run medians' if args.repeats > 1 else ''}) | ×joint "
        f"{'(median of the rounds, [min, max])' if args.repeats > 1 else ''}| training units (last epoch) "
        "| optimizer steps (last epoch) | valuation or recording s/epoch (wall, median) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, s, ratio, (lo, hi), units, steps, val in sorted(rows, key=lambda r: r[2]):
        spread = f" [{lo:.2f}, {hi:.2f}]" if args.repeats > 1 else ""
        print(
            f"| {label} | {s:.2f} | {ratio:.2f}{spread} | {units} | {steps} "
            f"| {'' if math.isnan(val) else f'{val:.2f}'} |"
        )
    for label, why in skipped.items():
        print(f"\nnot timed: {label}: {why}")


if __name__ == "__main__":
    main()
