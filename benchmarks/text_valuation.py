"""Benchmark: exact Shapley valuation vs one inference pass on the image + text fixture.

    .venv/bin/python benchmarks/text_valuation.py [--device cpu|cuda] [--repeats 5] [--train 2000]

The fixture is the tests' ``_text_fixtures.image_text`` (image ``[3, 16, 16]`` + a caption of
``--length`` token ids, three classes) at ``--train`` training samples. Two models are trained
for ``--epochs`` epochs (joint) into a temporary folder and timed on the training split:

- ``scratch``: the built-in image CNN + the from-scratch ``tokens`` Transformer (width 64,
  2 layers), the captions tokenized with a vocabulary file (no transformers);
- ``pretrained``: ``timm:test_resnet`` (a saved random checkpoint) + ``hf:`` a random tiny BERT
  (hidden 32, 2 layers, from ``BertConfig``, saved with ``save_pretrained``), the captions
  tokenized with its saved tokenizer.

Timed as in ``benchmarks/valuation.py`` (whose ``inference_pass`` is reused; warm-up call first,
then the median of ``--repeats`` round-robin rounds, ``torch.no_grad``, eval mode, the same
batches): ``t_infer`` = encode + fused logits per batch on the BatchNorm-folded model;
``t_ours`` = ``valuate_dataset(model, split)`` with its defaults (all ``2**M`` coalitions on
cached features). Goal: ``t_ours / t_infer <= 1.2`` (M = 2, as for avmnist). The fused
predictions of the valuation must equal the inference argmax (checked).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' fixture builders
import _common  # noqa: E402

GOAL = 1.2


def _train(tmp: Path, name: str, args: argparse.Namespace, data_options: dict[str, Any], model: dict[str, Any]):
    from mmcoop.experiment import RunConfig, load_run, run_experiment

    cfg = RunConfig.from_dict(
        {
            "name": name,
            "out_dir": str(tmp / "runs"),
            "data": {"target": "_text_fixtures:image_text", "options": data_options},
            "model": {"dim": 64, **model},
            "train": {"epochs": args.epochs, "batch_size": 64, "progress": False, "device": "cpu"},
        }
    )
    res = run_experiment(cfg)
    _, net, splits = load_run(res.run_dir)
    return net, splits, res.test


def bench(name: str, net: Any, splits: Any, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    from valuation import inference_pass

    from mmcoop.models import fold_batchnorm
    from mmcoop.valuation import valuate_dataset

    net = net.to(device).eval()
    data = splits.train.to(device) if device.type == "cuda" else splits.train
    folded = fold_batchnorm(net)
    bs = args.batch_size
    fns = {
        "infer": lambda: inference_pass(folded, data, bs, device),
        "ours": lambda: valuate_dataset(net, data, batch_size=bs),
    }
    t = _common.bench_interleaved(fns, repeats=args.repeats, warmup=1, device=device, min_sample_s=args.min_sample)
    same = torch.equal(t["ours"].result.fused_pred, t["infer"].result.argmax(-1))
    row = {
        "setup": name,
        "encoders": ", ".join(f"{m}: {type(e).__name__}" for m, e in net.encoders.items()),
        "samples": len(data),
        "infer": t["infer"].median,
        "ours": t["ours"].median,
        "same_pred": same,
    }
    print(
        f"== {name}: {row['encoders']}; {len(data)} samples, batch {bs}: t_infer {row['infer']:.4f} s, "
        f"t_ours {row['ours']:.4f} s, ratio {row['ours'] / row['infer']:.3f}; fused pred == inference argmax: {same}"
    )
    assert same, "valuation's fused prediction differs from plain inference"
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default cpu)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    p.add_argument("--batch-size", type=int, default=256, help="batch size of both timed paths (default 256)")
    p.add_argument("--train", type=int, default=2000, help="training samples (the timed split; default 2000)")
    p.add_argument("--length", type=int, default=24, help="caption length L in tokens (<= 32; default 24)")
    p.add_argument("--epochs", type=int, default=2, help="training epochs of each model (default 2)")
    p.add_argument("--min-sample", type=float, default=0.25, help="see benchmarks/valuation.py (default 0.25)")
    args = p.parse_args(argv)
    from _text_fixtures import save_tiny_bert, save_tiny_timm

    device = _common.resolve_device(args.device)
    machine, command = _common.machine(device), _common.command_line()
    print(f"machine: {machine}\ncommand: {command}")
    sizes = [args.train, 200, 200]
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        net, splits, _ = _train(tmp, "scratch", args, {"sizes": sizes, "max_length": args.length}, {})
        rows.append(bench("scratch", net, splits, args, device))
        bert, ckpt = save_tiny_bert(tmp / "bert"), save_tiny_timm(tmp / "timm.pth")
        model = {
            "options": {
                "encoders": {"image": "timm:test_resnet", "text": f"hf:{bert}"},
                "encoder_options": {"image": {"checkpoint": str(ckpt)}, "text": {"pooling": "mean"}},
            }
        }
        data = {"sizes": sizes, "max_length": args.length, "tokenizer": str(bert)}
        net, splits, _ = _train(tmp, "pretrained", args, data, model)
        rows.append(bench("pretrained", net, splits, args, device))
    lines = [
        "| setup | encoders | samples | t_infer (s) | t_ours (s) | ours/infer | goal |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = r["ours"] / r["infer"]
        lines.append(
            f"| {r['setup']} | {r['encoders']} | {r['samples']:,} | {r['infer']:.4f} | {r['ours']:.4f} "
            f"| {ratio:.2f} | <= {GOAL} {'PASS' if ratio <= GOAL else 'MISS'} |"
        )
    lines += ["", f"Machine: {machine}", "", f"Command: `{command}`"]
    print("\n" + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
