"""The ``mmcoop`` command line: train, value, compare, report, demo, datasets."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from mmcoop.errors import MMCoopError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Observe and improve multimodal cooperation.")
console = Console()


def _fail(msg: str) -> None:
    console.print(f"[bold red]error:[/] {msg}", highlight=False)
    raise typer.Exit(code=2)


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except MMCoopError as e:
        _fail(str(e))


def _table(rows: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title)
    if not rows:
        return t
    for col in rows[0]:
        t.add_column(str(col), justify="right" if col != "method" else "left")
    for r in rows:
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r.values()])
    return t


def build_config(
    config: Optional[Path], overrides: list[str], **flags: Any
) -> "Any":
    """Merge a YAML file, explicit flags and ``--set key=value`` overrides into a RunConfig."""
    import yaml

    from mmcoop.experiment import RunConfig, apply_overrides

    data: dict[str, Any] = {}
    if config is not None:
        if not config.is_file():
            raise MMCoopError(f"config file {config} does not exist; pass an existing YAML file")
        data = yaml.safe_load(config.read_text()) or {}
        if not isinstance(data, dict):
            raise MMCoopError(f"config file {config} must hold a mapping of keys")
    sections = {"epochs": "train", "lr": "train", "batch_size": "train", "device": "train", "amp": "train",
                "optimizer": "train", "progress": "train"}
    for key, value in flags.items():
        if value is None:
            continue
        if key == "debiased_strength":
            data.setdefault("debiased", {})
            data["debiased"] = dict(data["debiased"] or {}, strength=value)
        elif key == "execution":
            data.setdefault("method_options", {})["execution"] = value
        elif key in sections:
            data.setdefault(sections[key], {})[key] = value
        else:
            data[key] = value
    apply_overrides(data, overrides)
    return RunConfig.from_dict(data)


def _print_results(result: Any) -> None:
    test = result.test
    rows = [{"split": "test", **{k: v for k, v in test.items()}}]
    console.print(_table(rows, f"{result.config.name}: best-validation model (epoch chosen on val)"))
    console.print(f"run directory: {result.run_dir}")


@app.command()
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    dataset: Optional[str] = typer.Option(None, help="Dataset name (see `mmcoop datasets`)."),
    method: Optional[str] = typer.Option(None, help="Method name: joint, unimodal, sample-level, modality-level."),
    execution: Optional[str] = typer.Option(None, help="Re-sampling execution: duplicate or weighted."),
    epochs: Optional[int] = typer.Option(None, help="Number of epochs."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size."),
    seed: Optional[int] = typer.Option(None, help="Seed (splits, init, shuffles, re-sampling)."),
    name: Optional[str] = typer.Option(None, help="Run name (default: dataset_method_seedN)."),
    out_dir: Optional[str] = typer.Option(None, help="Folder for run directories (default runs)."),
    data_root: Optional[str] = typer.Option(None, help="Data root (default $MMCOOP_DATA)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda, cuda:1 ..."),
    amp: Optional[str] = typer.Option(None, help="Autocast: none, bf16, fp16."),
    debiased_strength: Optional[float] = typer.Option(None, help="Degrade one random modality per sample."),
    set_: list[str] = typer.Option([], "--set", help="Override any key: --set train.step_size=5"),
    resume: Optional[Path] = typer.Option(None, help="Continue the run in this directory from last.pt."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory of the same name."),
) -> None:
    """Train one model; writes runs/<name>/ (config.yaml, metrics.jsonl, checkpoints/, results.json)."""
    from mmcoop.experiment import RunConfig, run_experiment

    def go() -> None:
        if resume is not None:
            cfg = RunConfig.from_yaml(resume / "config.yaml")
            cfg = cfg.replace(name=resume.name, out_dir=str(resume.parent))
            result = run_experiment(cfg, resume=True)
        else:
            cfg = build_config(config, set_, dataset=dataset, method=method, execution=execution, epochs=epochs,
                               lr=lr, batch_size=batch_size, seed=seed, name=name, out_dir=out_dir,
                               data_root=data_root, device=device, amp=amp, debiased_strength=debiased_strength)
            result = run_experiment(cfg, overwrite=overwrite)
        _print_results(result)

    _guard(go)


@app.command()
def compare(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config for the shared settings."),
    dataset: Optional[str] = typer.Option(None, help="Dataset name."),
    methods: str = typer.Option("joint,sample-level,modality-level", help="Comma list of method[:execution]."),
    seeds: str = typer.Option("0,1,2", help="Comma list of seeds."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per run."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size."),
    name: Optional[str] = typer.Option(None, help="Comparison folder name (default compare_<dataset>)."),
    out_dir: Optional[str] = typer.Option(None, help="Parent folder (default runs)."),
    data_root: Optional[str] = typer.Option(None, help="Data root (default $MMCOOP_DATA)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda ..."),
    debiased_strength: Optional[float] = typer.Option(None, help="Degrade one random modality per sample."),
    set_: list[str] = typer.Option([], "--set", help="Override any key: --set train.step_size=5"),
    overwrite: bool = typer.Option(False, help="Replace existing runs of the same names."),
) -> None:
    """Run every (method, seed) pair; print mean ± std over seeds; write compare.csv and summary.csv."""
    from mmcoop.experiment import format_summary, parse_methods, parse_seeds, run_compare

    def go() -> None:
        base = build_config(config, set_, dataset=dataset, epochs=epochs, lr=lr, batch_size=batch_size,
                            out_dir=out_dir, data_root=data_root, device=device, debiased_strength=debiased_strength)
        specs, seed_list = parse_methods(methods), parse_seeds(seeds)
        cdir, _, summary = run_compare(
            base, specs, seed_list, name=name, overwrite=overwrite,
            on_run=lambda row: console.print(
                f"  {row['method']} seed {row['seed']}: test acc {100 * row['test_acc']:.2f}%", highlight=False),
        )
        console.print(_table(format_summary(summary).to_dict("records"), f"{base.dataset}: test metrics (%), mean ± std over seeds"))
        console.print(f"comparison directory: {cdir} (compare.csv, summary.csv)")

    _guard(go)


@app.command()
def datasets(data_root: Optional[str] = typer.Option(None, help="Data root (default $MMCOOP_DATA).")) -> None:
    """List the datasets, their options, and where each one's data was found."""
    from mmcoop.data import DATASETS, dataset_options, load_dataset, resolve_data_root

    root = resolve_data_root(data_root)
    console.print(f"data root: {root or '(not set: use --data-root or MMCOOP_DATA)'}")
    t = Table(title="datasets")
    for col in ("name", "modalities", "train/val/test", "found at", "options"):
        t.add_column(col)
    for n in DATASETS.names():
        opts = ", ".join(f"{k}={v}" for k, v in dataset_options(n).items())
        try:
            s = load_dataset(n, root, 0)
            t.add_row(n, ", ".join(s.modalities), f"{len(s.train)}/{len(s.val)}/{len(s.test)}",
                      str(s.info.get("source", "")), opts)
        except MMCoopError as e:
            t.add_row(n, "-", "-", f"[red]unavailable[/]: {e}", opts)
    console.print(t)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
