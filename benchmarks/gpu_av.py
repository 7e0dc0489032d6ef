"""GPU benchmark: ResNet-18 audio-visual training and valuation on Kinetics-Sounds-shaped data.

One command on a GPU machine (about 2-4 minutes on one H100; the budget is 8)::

    PYTHONPATH=src python3 benchmarks/gpu_av.py --device cuda --out gpu_av.md

CPU smoke check of the script itself (tiny sizes, numbers meaningless)::

    .venv/bin/python benchmarks/gpu_av.py --device cpu --quick --out /tmp/gpu_av_smoke.md

What it measures (issue 10, "Must show", GPU):

- **Model**: the ``kinetics-sounds`` preset's model: ``late-fusion`` with
  ``resnet18-spectrogram`` (audio, 1-channel stem) and ``resnet18-frames`` (visual,
  per frame + temporal mean) encoders, 512-d features, concat fusion, BatchNorm
  weights ``N(1, 0.02)``; Adam 5e-5, weight decay 1e-4; 31 classes; batch 64.
- **Data**: synthetic, shaped as the KS reader produces: ``audio`` float32
  ``[1, 1024, 128]`` (the official fbank ``.npy``), ``visual`` 3 frames stored as uint8
  ``[3, 3, 224, 224]`` in a cache-like tensor held on the device
  (:class:`~mmcoop.data.tensor_source.TensorSource`, ``train.data_on_device``), augmented
  on the device per batch by :func:`mmcoop.media.frame_cache.uint8_frame_transforms`
  (train: :func:`mmcoop.media.frames.random_resized_crop_batch`: RandomResizedCrop 224 +
  flip + ImageNet normalisation; eval: ``normalize_frames``).
- **Training samples/s, end to end**: the real :class:`mmcoop.train.Trainer`
  (``train_epoch``: loader, device augmentation, forward/backward/step, method hooks,
  and for the re-sampling methods the valuation and plan at the epoch start), for
  ``joint`` and ``sample-level`` (``warmup 0``: valuation + re-sampling every epoch)
  with ``execution: duplicate`` and ``weighted``. ``--warmup-epochs`` untimed epochs
  first (cuDNN autotuning, allocator), then the median of ``--epochs`` timed epochs,
  each synchronised. ``samples/s`` = training clips / epoch seconds (the re-sampled
  units of ``duplicate`` are extra work inside the epoch, counted in ``units/s``).
  ``ratio`` = epoch seconds / joint's epoch seconds at the same precision and layout.
  Both valuation modes (issue 19): ``pass`` (the paper's eval-mode pass at each epoch
  start, ``warmup 0``) and ``online`` (coalition values recorded from the training pass's
  features; ``warmup 1`` so that every timed epoch executes a plan from the previous
  epoch's records); ``val. in epoch (s)`` is then the host time spent recording.
- **Valuation samples/s**: :func:`mmcoop.valuation.valuate_dataset` over the training
  clips (eval transforms, BatchNorm folded, exact Shapley over the 4 coalitions), batch
  ``--valuation-batch``, median of 3 calls after one warm-up; bf16 rows run it under
  ``torch.autocast``. Inside the sample-level epochs the method values in fp32 (it
  calls ``valuate_dataset`` without autocast), shown as ``val. in epoch (s)``.
- **Peak GPU memory**: ``torch.cuda.max_memory_allocated`` over the timed epochs
  (the device-held data included).
- **Precision and layout**: fp32 vs bf16 (``train.amp``); the ResNets always run
  channels-last (``mmcoop.models.resnet``); the ``NCHW`` rows disable that with a
  benchmark-only patch of the two encoders' ``forward`` (weights and activations in
  the default layout) to show what channels-last buys.

Goals on one H100: >= 1,500 training samples/s end to end (best setting), >= 5,000
valuation samples/s, sample-level epoch <= 1.3x the joint epoch. The table states
each goal's result, the device name and the torch version; it is printed and
written to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import _common  # noqa: E402

from mmcoop.data.base import DatasetSplits, MultimodalDataset  # noqa: E402
from mmcoop.media.frame_cache import uint8_frame_transforms  # noqa: E402
from mmcoop.data.protocol import ModalitySpec  # noqa: E402
from mmcoop.data.tensor_source import TensorSource  # noqa: E402
from mmcoop.methods import build_method  # noqa: E402
from mmcoop.models import create_model  # noqa: E402
from mmcoop.models import resnet as resnet_module  # noqa: E402
from mmcoop.train import TrainConfig, Trainer  # noqa: E402
from mmcoop.valuation import valuate_dataset  # noqa: E402

GOAL_TRAIN = 1500.0
GOAL_VALUATION = 5000.0
GOAL_RATIO = 1.3
NUM_CLASSES = 31


# -- data and model ------------------------------------------------------------------------
def ks_shaped_splits(
    n_train: int, n_val: int, image: int, spec: tuple[int, int], frames: int, device: torch.device, seed: int = 0
) -> DatasetSplits:
    """Synthetic KS-shaped splits held on ``device``: uint8 frames ``[N, T, 3, S, S]``, float audio ``[N, 1, F, T]``."""
    g = torch.Generator(device=device).manual_seed(seed)
    specs = [
        ModalitySpec("audio", "spectrogram", (1, *spec)),
        ModalitySpec("visual", "frames", (frames, 3, image, image)),
    ]
    tf = uint8_frame_transforms(["visual"], size=image)

    def split(n: int) -> MultimodalDataset:
        inputs = {
            "audio": torch.randn(n, 1, *spec, generator=g, device=device),
            "visual": torch.randint(
                0, 256, (n, frames, 3, image, image), generator=g, device=device, dtype=torch.uint8
            ),
        }
        labels = torch.randint(0, NUM_CLASSES, (n,), generator=g, device=device)
        return MultimodalDataset.from_source(TensorSource(inputs, labels, NUM_CLASSES, specs, transforms=tf))

    return DatasetSplits("ks-synthetic", split(n_train), split(n_val), split(n_val), {"synthetic": True})


def ks_model(splits: DatasetSplits, seed: int) -> torch.nn.Module:
    """The kinetics-sounds preset's model (ResNet-18 audio + frames encoders, 512-d, concat)."""
    torch.manual_seed(seed)
    enc = {"audio": "resnet18-spectrogram", "visual": "resnet18-frames"}
    return create_model(
        "late-fusion",
        splits.specs,
        splits.num_classes,
        dim=512,
        fusion="concat",
        encoders=enc,
        encoder_options={m: {"bn_weight_std": 0.02} for m in enc},
    )


def _nchw_spectrogram_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    return self.proj(self.trunk(x.contiguous()).mean(dim=(2, 3)))


def _nchw_frames_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    b, t = x.shape[:2]
    f = self.trunk(x.flatten(0, 1).contiguous())
    return self.proj(f.unflatten(0, (b, t)).mean(dim=(1, 3, 4)))


@contextlib.contextmanager
def layout(channels_last: bool, model: torch.nn.Module | None = None) -> Iterator[None]:
    """Channels-last as built (``True``), or the encoders patched to run NCHW (benchmark only)."""
    if channels_last:
        yield
        return
    if model is not None:
        model.to(memory_format=torch.contiguous_format)
    saved = (resnet_module.ResNet18Spectrogram.forward, resnet_module.ResNet18Frames.forward)
    resnet_module.ResNet18Spectrogram.forward = _nchw_spectrogram_forward  # type: ignore[method-assign]
    resnet_module.ResNet18Frames.forward = _nchw_frames_forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        resnet_module.ResNet18Spectrogram.forward, resnet_module.ResNet18Frames.forward = saved  # type: ignore[method-assign]


# -- measurements ------------------------------------------------------------------------------
@dataclass
class Row:
    setting: str
    amp: str
    channels_last: bool
    epoch_s: float
    samples_s: float
    units_s: float
    valuation_in_epoch_s: float
    peak_gib: float
    ratio: float = float("nan")


def peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")


def train_row(
    splits: DatasetSplits,
    method: str,
    options: dict[str, Any],
    amp: str,
    channels_last: bool,
    args: argparse.Namespace,
    device: torch.device,
) -> Row:
    """Epoch time of one setting through the real Trainer (warm-up epochs, then the median of timed ones)."""
    cfg = TrainConfig(
        epochs=args.warmup_epochs + args.epochs,
        batch_size=args.batch_size,
        eval_batch_size=args.valuation_batch,
        optimizer="adam",
        lr=5e-5,
        weight_decay=1e-4,
        amp=amp,
        device=str(device),
        progress=False,
        data_on_device=True,
        num_workers=0,
    )
    model = ks_model(splits, args.seed)
    with layout(channels_last, model):
        trainer = Trainer(model, build_method(method, options), splits, cfg, seed=args.seed)
        times, units, val_s = [], [], []
        for e in range(args.warmup_epochs + args.epochs):
            if e == args.warmup_epochs:
                peak_reset(device)
            _common.sync(device)
            t0 = time.perf_counter()
            record = trainer.train_epoch()
            _common.sync(device)
            dt = time.perf_counter() - t0
            trainer.epoch += 1  # what fit() does after each epoch (the method plans per epoch)
            if e >= args.warmup_epochs:
                times.append(dt)
                units.append(record["train_units"])
                val_s.append(float(record.get("time_valuation_s", 0.0)))
        peak = peak_gib(device)
    epoch_s = statistics.median(times)
    n = len(splits.train)
    mode = [options[k] for k in ("execution", "valuation") if k in options]
    name = method + (f" ({', '.join(mode)})" if mode else "")
    del trainer, model
    return Row(
        name,
        amp,
        channels_last,
        epoch_s,
        n / epoch_s,
        statistics.median(units) / epoch_s,
        statistics.median(val_s),
        peak,
    )


def valuation_rate(
    splits: DatasetSplits, amp: str, args: argparse.Namespace, device: torch.device
) -> tuple[float, float]:
    """Valuation samples/s (median of ``repeats`` calls after a warm-up) and peak GiB."""
    model = ks_model(splits, args.seed).to(device)
    data = splits.train
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if amp == "bf16" else contextlib.nullcontext()
    times = []
    peak_reset(device)
    with ctx:
        for k in range(1 + args.valuation_repeats):
            _common.sync(device)
            t0 = time.perf_counter()
            table = valuate_dataset(model, data, batch_size=args.valuation_batch, device=device)
            _common.sync(device)
            if k:
                times.append(time.perf_counter() - t0)
    assert table.phi.shape == (len(data), 2) and bool(torch.isfinite(table.phi).all())
    return len(data) / statistics.median(times), peak_gib(device)


# -- report ------------------------------------------------------------------------------------
def fmt(x: float, digits: int = 0) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


def report(
    rows: list[Row],
    vals: dict[str, tuple[float, float]],
    args: argparse.Namespace,
    device: torch.device,
    total_s: float,
) -> str:
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    lines = [
        "# GPU benchmark: ResNet-18 audio-visual (Kinetics-Sounds-shaped), end to end through mmcoop",
        "",
        f"- device: **{dev_name}**; torch {torch.__version__} (CUDA {torch.version.cuda}); "
        f"cudnn.benchmark={torch.backends.cudnn.benchmark}",
        f"- machine: {_common.machine(device)}",
        f"- command: `{_common.command_line()}`",
        f"- data: {args.n_train} training clips (+{args.n_val} val), audio [1, {args.spec_frames}, {args.spec_bins}] float32, "
        f"visual {args.frames} x [3, {args.image}, {args.image}] uint8 on the device, augmented there; batch {args.batch_size}; "
        f"{args.warmup_epochs} warm-up epoch(s), median of {args.epochs} timed epoch(s)"
        + ("; **--quick smoke sizes**" if args.quick else ""),
        f"- total runtime of this script: {total_s:,.0f} s",
        "",
        "| setting | amp | channels_last | epoch (s) | samples/s | units/s | ratio vs joint | val. in epoch (s) | peak GPU (GiB) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.setting} | {r.amp} | {'yes' if r.channels_last else 'no (NCHW)'} | {r.epoch_s:.2f} | "
            f"{fmt(r.samples_s)} | {fmt(r.units_s)} | {fmt(r.ratio, 2)} | {r.valuation_in_epoch_s:.2f} | "
            f"{fmt(r.peak_gib, 2)} |"
        )
    lines += [
        "",
        "| valuation (valuate_dataset, batch %d) | samples/s | peak GPU (GiB) |" % args.valuation_batch,
        "|---|---:|---:|",
    ]
    for amp, (rate, peak) in vals.items():
        lines.append(f"| {amp} | {fmt(rate)} | {fmt(peak, 2)} |")
    best = max((r for r in rows if r.setting == "joint"), key=lambda r: r.samples_s)
    sl = [r for r in rows if r.setting.startswith("sample-level") and r.channels_last]
    best_val = max(v[0] for v in vals.values())

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    lines += ["", "Goals (one H100):", ""]
    lines.append(
        f"- training >= {GOAL_TRAIN:,.0f} samples/s end to end: best {fmt(best.samples_s)} "
        f"(joint, {best.amp}, {'channels_last' if best.channels_last else 'NCHW'}): {verdict(best.samples_s >= GOAL_TRAIN)}"
    )
    lines.append(
        f"- valuation >= {GOAL_VALUATION:,.0f} samples/s: best {fmt(best_val)}: {verdict(best_val >= GOAL_VALUATION)}"
    )
    for r in sl:
        lines.append(
            f"- sample-level epoch <= {GOAL_RATIO}x joint: {r.setting}, {r.amp}: {fmt(r.ratio, 2)}x: "
            f"{verdict(r.ratio <= GOAL_RATIO)}"
        )
    if args.quick:
        lines += ["", "(--quick: tiny sizes for a smoke check; the numbers say nothing about the goals.)"]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    p.add_argument("--out", required=True, help="markdown file for the table")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke check of the script (CPU)")
    p.add_argument("--n-train", type=int, default=2048)
    p.add_argument("--n-val", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--image", type=int, default=224)
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--spec-frames", type=int, default=1024)
    p.add_argument("--spec-bins", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2, help="timed epochs per setting")
    p.add_argument("--warmup-epochs", type=int, default=1, help="untimed epochs first")
    p.add_argument("--valuation-batch", type=int, default=512)
    p.add_argument("--valuation-repeats", type=int, default=3)
    p.add_argument("--no-nchw", action="store_true", help="skip the NCHW (channels_last off) joint rows")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.quick:
        args.n_train, args.n_val, args.batch_size, args.image = 16, 8, 8, 32
        args.spec_frames, args.spec_bins, args.epochs, args.warmup_epochs = 64, 32, 1, 1
        args.valuation_batch, args.valuation_repeats = 16, 1
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("CUDA is not available here; run with --device cpu --quick for a smoke check")
        torch.backends.cudnn.benchmark = True
    t_start = time.perf_counter()
    splits = ks_shaped_splits(
        args.n_train, args.n_val, args.image, (args.spec_frames, args.spec_bins), args.frames, device, args.seed
    )
    settings: list[tuple[str, dict[str, Any], bool]] = [("joint", {}, True)]
    if not args.no_nchw:
        settings.append(("joint", {}, False))
    settings += [
        ("sample-level", {"warmup": 0, "execution": "duplicate"}, True),
        ("sample-level", {"warmup": 0, "execution": "weighted"}, True),
    ]
    # online valuation (issue 19): the records of epoch e plan epoch e + 1, so re-sampling starts
    # after the first (untimed) epoch: warmup 1; every timed epoch records and executes a plan
    if args.warmup_epochs < 1:
        sys.exit("--warmup-epochs must be >= 1: the online rows plan from the previous epoch's records")
    settings += [
        ("sample-level", {"warmup": 1, "execution": "duplicate", "valuation": "online"}, True),
        ("sample-level", {"warmup": 1, "execution": "weighted", "valuation": "online"}, True),
    ]
    rows: list[Row] = []
    for amp in ("none", "bf16"):
        joint_s = None
        for method, options, cl in settings:
            row = train_row(splits, method, options, amp, cl, args, device)
            if method == "joint" and cl:
                joint_s = row.epoch_s
            row.ratio = row.epoch_s / joint_s if joint_s else float("nan")
            rows.append(row)
            print(
                f"{row.setting:28s} amp={amp:4s} cl={cl!s:5s} epoch {row.epoch_s:7.2f} s  {row.samples_s:9.1f} samples/s  "
                f"ratio {row.ratio:.2f}  peak {row.peak_gib:.2f} GiB",
                flush=True,
            )
    vals = {}
    for amp in ("none", "bf16"):
        vals[amp] = valuation_rate(splits, amp, args, device)
        print(f"valuation amp={amp}: {vals[amp][0]:,.1f} samples/s", flush=True)
    text = report(rows, vals, args, device, time.perf_counter() - t_start)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
