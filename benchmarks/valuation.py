"""Benchmark: exact Shapley valuation of every training sample vs one inference pass.

    export MMCOOP_DATA=../shared/data
    .venv/bin/python benchmarks/valuation.py [--device cpu|cuda] [--repeats 5] [--out-dir runs/bench]

For each dataset (avmnist, M=2; mfeat, all 6 views, M=6), on the same trained joint
model (trained once into ``--out-dir``, reused afterwards) and the same training
split, it times (warm-up call first, then the median of ``--repeats`` rounds, the
functions timed round-robin so machine noise hits all alike; same device, same batch
size, ``torch.no_grad`` and eval mode everywhere, batches from
``mmcoop.data.make_loader``):

- ``t_infer``: one plain inference pass: encode + fused logits per batch, logits
  gathered on the CPU, on the BatchNorm-folded model (``fold_batchnorm``, built once
  outside the timing): the fastest plain forward pass of this model we have.
- ``t_ours``: ``valuate_dataset(model, split, batch_size=...)`` with its defaults:
  exact Shapley values over all ``2**M`` coalitions (one encoder pass, coalitions on
  cached features), folding a fresh copy of the model inside every timed call.
- ``t_infer_unfolded`` / ``t_ours_unfolded``: the same two on the model as trained
  (``fold_bn=False``), to show what folding buys.
- ``t_naive``: NAIVE REFERENCE written for this benchmark (not copied) after the
  structure of the official GeWu-Lab code (``code/sample_level.py``,
  ``execute_modulation``): one encoder pass per batch, the fusion head once per
  coalition with the absent modalities' *features* zeroed (the official
  ``exec_drop`` zeroes the pooled features, not the inputs), a softmax, then a
  Python loop over samples that pulls every probability row to numpy
  (``.cpu().numpy()``), takes ``np.argmax``, sets ``v(S) = |S|`` if correct and applies
  the Shapley formula (the official 2-modality formula for M=2, the subset-weight
  formula ``sum_S |S|!(M-|S|-1)!/M! (v(S+k) - v(S))`` with integer weights otherwise).
- ``t_reencode``: the same naive loop, but every coalition re-runs the whole model
  ``model(inputs, keep=mask)`` (re-encodes the present modalities; absent ones get
  zero features, exactly as above, so the values are identical).

The naive references run the unfolded model (as research code would); their phi must
equal ``ours_unfolded`` exactly (asserted); how many samples' folded phi equal the
unfolded ones is printed (float rounding differs at the 1e-7 level). Goals: ``t_ours / t_infer <= 1.2``
for M=2 (avmnist) and ``<= 1.5`` for M=6 (mfeat).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mmcoop.data.base import batch_to, make_loader  # noqa: E402
from mmcoop.models import fold_batchnorm, inference_model  # noqa: E402
from mmcoop.valuation import valuate_dataset  # noqa: E402
from mmcoop.valuation.coalitions import coalition_masks  # noqa: E402

GOALS = {"avmnist": 1.2, "mfeat": 1.5}


# -- the reference forward pass ----------------------------------------------------------
def inference_pass(model: nn.Module, data: Any, batch_size: int, device: torch.device) -> torch.Tensor:
    """Plain inference: encode + fused logits per batch (eval mode, no grad); logits on the CPU."""
    out = []
    with torch.no_grad():
        for batch in make_loader(data, batch_size):
            batch = batch_to(batch, device)
            feats = model.encode(batch["inputs"])
            out.append(model.fuse(feats))
    return torch.cat(out).cpu()


# -- naive reference (written for this benchmark, after the official code's structure) ------
def _shapley_weights(m: int) -> list[int]:
    """Integer weights ``|S|! (M-|S|-1)!`` by coalition size ``|S|`` (divide by ``M!``)."""
    f = math.factorial
    return [f(s) * f(m - s - 1) for s in range(m)]


def _naive_phi(values: list[float], m: int, weights: list[int]) -> list[float]:
    """Shapley values of one sample from its coalition values (index = bitmask)."""
    if m == 2:  # the official formula: a = bit 0, v = bit 1, all = 3
        value_a, value_v, value_all = values[1], values[2], values[3]
        return [(value_a + value_all - value_v) / 2.0, (value_v + value_all - value_a) / 2.0]
    phi = []
    for k in range(m):
        bit = 1 << k
        acc = 0.0  # integer-valued: exact in float64
        for s in range(1 << m):
            if not s & bit:
                acc += weights[bin(s).count("1")] * (values[s | bit] - values[s])
        phi.append(acc / math.factorial(m))
    return phi


def _naive_per_sample(
    probs: dict[int, torch.Tensor], label: torch.Tensor, m: int, sizes: list[int], weights: list[int]
) -> list[list[float]]:
    """The official per-sample loop: every row to numpy, argmax, v(S) = |S| if correct."""
    out = []
    for i in range(len(label)):
        values = [0.0] * (1 << m)  # v(empty) = 0 (paper)
        for c, p in probs.items():
            row = p[i].cpu().data.numpy()
            if np.argmax(row) == label[i]:
                values[c] = float(sizes[c])
        out.append(_naive_phi(values, m, weights))
    return out


def naive_valuation(model: nn.Module, data: Any, batch_size: int, device: torch.device, reencode: bool) -> np.ndarray:
    """NAIVE REFERENCE: ``[N, M]`` Shapley values (paper value function, zero removal).

    ``reencode=False``: one encoder pass per batch, the head once per coalition on
    features with the absent modalities zeroed (official structure).
    ``reencode=True``: ``model(inputs, keep=mask)`` per coalition (re-encodes).
    """
    m = model.num_modalities
    masks = coalition_masks(m)
    sizes = masks.sum(1).tolist()
    weights = _shapley_weights(m)
    softmax = nn.Softmax(dim=1)
    rows: list[list[float]] = []
    with torch.no_grad():
        model.eval()
        for batch in make_loader(data, batch_size):
            inputs = {k: v.to(device) for k, v in batch["inputs"].items()}
            label = batch["label"].cpu()  # on the CPU, as in the official code
            b = label.shape[0]
            feats = None if reencode else model.encode(inputs)
            probs = {}
            for c in range(1, 1 << m):  # the empty coalition is worth 0 by convention
                keep = masks[c].to(device)
                if reencode:
                    logits = model(inputs, keep.unsqueeze(0).expand(b, m))
                else:
                    logits = model.head(feats, keep)  # absent features * 0
                probs[c] = softmax(logits)
            rows.extend(_naive_per_sample(probs, label, m, sizes, weights))
    return np.asarray(rows, dtype=np.float64)


# -- one dataset ---------------------------------------------------------------------------
@dataclass
class Row:
    dataset: str
    m: int
    samples: int
    timings: dict[str, _common.Timing]
    goal: float
    agree: bool

    def t(self, name: str) -> float:
        return self.timings[name].median

    @property
    def ratio(self) -> float:
        return self.t("ours") / self.t("infer")

    @property
    def passed(self) -> bool:
        return self.ratio <= self.goal


def bench_dataset(dataset: str, epochs: int, args: argparse.Namespace, device: torch.device) -> Row:
    _, model, splits = _common.trained_run(dataset, epochs, args.out_dir)
    model = model.to(device).eval()
    data = splits.train.to(device) if device.type == "cuda" else splits.train
    m, n, bs = model.num_modalities, len(data), args.batch_size
    print(
        f"\n== {dataset}: M={m} ({', '.join(model.modalities)}), train split {n} samples, batch size {bs}, "
        f"{2**m} coalitions, device {device}",
        flush=True,
    )

    folded = fold_batchnorm(model)  # the fastest plain inference of this model
    fns: dict[str, Callable[[], Any]] = {
        "infer": lambda: inference_pass(folded, data, bs, device),
        "ours": lambda: valuate_dataset(model, data, batch_size=bs),  # default: folds a fresh copy per call
        "infer_unfolded": lambda: inference_pass(model, data, bs, device),
        "ours_unfolded": lambda: valuate_dataset(model, data, batch_size=bs, fold_bn=False),
        "naive": lambda: naive_valuation(model, data, bs, device, reencode=False),
        "reencode": lambda: naive_valuation(model, data, bs, device, reencode=True),
    }
    # One warm-up call of each (its result is checked below), then --repeats rounds.
    timings = _common.bench_interleaved(
        fns, repeats=args.repeats, warmup=1, device=device, min_sample_s=args.min_sample
    )

    table, plain = timings["ours"].result, timings["ours_unfolded"].result
    naive, reenc = timings["naive"].result, timings["reencode"].result
    plain_phi, ours_phi = plain.phi.numpy(), table.phi.numpy()
    fused_ok = torch.equal(table.fused_pred, timings["infer"].result.argmax(-1)) and torch.equal(
        plain.fused_pred, timings["infer_unfolded"].result.argmax(-1)
    )
    # the naive references run the unfolded model, as research code does: exact agreement
    agree = np.array_equal(naive.astype(plain_phi.dtype), plain_phi) and np.array_equal(
        reenc.astype(plain_phi.dtype), plain_phi
    )
    if not agree:
        bad = np.flatnonzero(~np.all(naive.astype(plain_phi.dtype) == plain_phi, axis=1))
        print(
            f"   MISMATCH at {bad.size} samples, e.g. rows {bad[:5].tolist()}: "
            f"ours {plain_phi[bad[:3]].tolist()} naive {naive[bad[:3]].tolist()}"
        )
    same_folded = int(np.all(ours_phi == plain_phi, axis=1).sum())
    print(
        f"   agree: {agree} (naive and re-encoding naive phi == ours unfolded, exactly, {n}x{m}); "
        f"fused prediction == inference argmax: {fused_ok}; folded phi == unfolded phi for "
        f"{same_folded}/{n} samples"
    )
    print(
        f"   mean phi: {dict(zip(model.modalities, np.round(ours_phi.mean(0), 4).tolist()))}, "
        f"fused train accuracy {table.accuracy():.4f}"
    )
    assert agree, "naive reference and valuate_dataset disagree"
    for t in timings.values():
        print(f"   {t}")
    print(
        f"   ours/infer (both folded): median {timings['ours'].median / timings['infer'].median:.3f}, "
        f"min {timings['ours'].min / timings['infer'].min:.3f}; unfolded: median "
        f"{timings['ours_unfolded'].median / timings['infer_unfolded'].median:.3f}"
    )
    for t in timings.values():
        t.result = None
    if args.breakdown:
        breakdown(model, data, bs, device, args)
    return Row(dataset, m, n, timings, GOALS[dataset], agree)


def breakdown(model: nn.Module, data: Any, bs: int, device: torch.device, args: argparse.Namespace) -> None:
    """Where the time of ``valuate_dataset`` goes: each stage it runs, over the whole split.

    Every stage is timed alone on precomputed inputs, making the calls valuate_dataset
    makes per batch (on the same folded inference copy, one argmax over ``[B, K, C]``
    whose result gives both the predictions and the ``paper`` values), so the stages add
    up to about ``t_ours``; ``infer`` = load + encode + fuse.
    """
    from mmcoop.valuation import ModalityValuator
    from mmcoop.valuation.shapley import shapley_from_coalitions
    from mmcoop.valuation.table import ValuationTable

    net = inference_model(model).eval()
    val = ModalityValuator(net)
    masks = val.coalitions(device)
    batches = [batch_to(b, device) for b in make_loader(data, bs)]
    with torch.no_grad():
        feats = [net.encode(b["inputs"]) for b in batches]
        logits = [net.head.coalition_logits(f, masks) for f in feats]
        preds = [lg.max(-1).indices for lg in logits]
        values = [val.value_fn.values_from_preds(p, b["label"], masks, val.empty) for p, b in zip(preds, batches)]
        phis = [shapley_from_coalitions(v) for v in values]

    def load() -> None:
        for b in make_loader(data, bs):
            batch_to(b, device)

    def encode() -> None:
        with torch.no_grad():
            for b in batches:
                net.encode(b["inputs"])

    def fuse() -> None:
        with torch.no_grad():
            for f in feats:
                net.fuse(f)

    def fold() -> None:  # once per valuate_dataset call
        inference_model(model)

    def coalition_logits() -> None:
        with torch.no_grad():
            for f in feats:
                net.head.coalition_logits(f, masks)

    def argmax() -> None:
        for lg in logits:
            lg.max(-1).indices

    def values_from_preds() -> None:
        for p, b in zip(preds, batches):
            val.value_fn.values_from_preds(p, b["label"], masks, val.empty)

    def shapley() -> None:
        for v in values:
            shapley_from_coalitions(v)

    def table() -> None:
        cat = lambda xs: torch.cat(xs).cpu()  # noqa: E731
        extras = {k: cat([b[k] for b in batches]) for k in batches[0] if k not in ("inputs", "label", "index", "keep")}
        ValuationTable(
            modalities=list(model.modalities),
            index=cat([b["index"] for b in batches]),
            label=cat([b["label"] for b in batches]),
            phi=cat(phis),
            values=cat(values),
            coalition_preds=cat(preds),
            masks=masks.cpu(),
            extras=extras,
        )

    stages = {
        "load": load,
        "encode": encode,
        "fuse": fuse,
        "fold BatchNorm (per call)": fold,
        "coalition_logits": coalition_logits,
        "argmax over classes": argmax,
        "values_from_preds": values_from_preds,
        "shapley_from_coalitions": shapley,
        "table assembly": table,
    }
    t = _common.bench_interleaved(
        stages, repeats=max(args.repeats, 7), warmup=1, device=device, min_sample_s=max(args.min_sample, 0.1)
    )
    infer = t["load"].median + t["encode"].median + t["fuse"].median
    print(f"   breakdown over the split ({len(batches)} batches; median / min ms, share of load+encode+fuse):")
    for name, tt in t.items():
        print(f"     {name:26s} {tt.median * 1e3:9.3f} / {tt.min * 1e3:9.3f} ms  {tt.median / infer:6.1%}")


def markdown(rows: list[Row], machine: str, command: str) -> str:
    head = (
        "| dataset | M | samples | t_infer (s) | t_ours (s) | ours/infer | goal | unfolded: t_infer / t_ours "
        "| t_naive (s) | naive/ours | t_reencode (s) | reencode/ours |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r.dataset} | {r.m} | {r.samples:,} | {r.t('infer'):.4f} | {r.t('ours'):.4f} | {r.ratio:.2f} "
            f"| <= {r.goal} {'PASS' if r.passed else 'MISS'} "
            f"| {r.t('infer_unfolded'):.4f} / {r.t('ours_unfolded'):.4f} "
            f"| {r.t('naive'):.4f} | {r.t('naive') / r.t('ours'):.1f}x "
            f"| {r.t('reencode'):.4f} | {r.t('reencode') / r.t('ours'):.1f}x |"
        )
    lines += ["", f"Machine: {machine}", "", f"Command: `{command}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    p.add_argument("--batch-size", type=int, default=512, help="batch size of every timed path (default 512)")
    p.add_argument("--out-dir", default="runs/bench", help="where the trained models live (default runs/bench)")
    p.add_argument("--avmnist-epochs", type=int, default=8)
    p.add_argument("--mfeat-epochs", type=int, default=30)
    p.add_argument("--datasets", default="avmnist,mfeat", help="comma-separated subset of avmnist,mfeat")
    p.add_argument(
        "--min-sample",
        type=float,
        default=0.25,
        help="a function faster than this (s) is called back to back per timed sample, the per-call "
        "average recorded (default 0.25; 0 = one call per sample)",
    )
    p.add_argument("--breakdown", action="store_true", help="also time every stage of valuate_dataset separately")
    args = p.parse_args(argv)
    if not os.environ.get("MMCOOP_DATA"):
        print("note: MMCOOP_DATA is not set; avmnist is looked up in the user cache", file=sys.stderr)
    device = _common.resolve_device(args.device)
    epochs = {"avmnist": args.avmnist_epochs, "mfeat": args.mfeat_epochs}
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(names) - set(epochs))
    if unknown:
        p.error(f"unknown datasets {unknown}; valid: avmnist, mfeat")

    machine, command = _common.machine(device), _common.command_line()
    print(f"machine: {machine}\ncommand: {command}")
    rows = [bench_dataset(d, epochs[d], args, device) for d in names]

    print("\n== goals (median t_ours / median t_infer)")
    for r in rows:
        print(
            f"   {r.dataset} M={r.m}: {r.ratio:.3f} <= {r.goal}: {'PASS' if r.passed else 'MISS'}   "
            f"speed-up over naive: {r.t('naive') / r.t('ours'):.1f}x (re-encoding naive: "
            f"{r.t('reencode') / r.t('ours'):.1f}x)"
        )
    print("\n" + markdown(rows, machine, command))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
