"""``mmcoop probe`` and ``mmcoop table``: the diagnostics a paper reports, from finished runs.

Registered on the main app by `register` (called from `mmcoop.cli.app`, which passes its error
guard and table builder: this module does not import the app).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import typer

from mmcoop.cli.output import say, warn
from mmcoop.errors import MMCoopError

#: The app's ``guard(fn)`` (one message, no traceback) and ``table(rows, title)``, set by `register`.
_APP: dict[str, Callable[..., Any]] = {}


def _parse_grid(spec: str) -> list[float]:
    try:
        grid = [float(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise MMCoopError(f"--grid must be comma-separated numbers (L2 penalties), got {spec!r}") from None
    if not grid or any(g < 0 for g in grid):
        raise MMCoopError(f"--grid needs at least one penalty, each >= 0; got {spec!r}")
    return grid


def probe(
    run_dir: Path = typer.Argument(..., help="A run directory made by `mmcoop train` (or a comparison's run)."),
    split: str = typer.Option("test", help="Where accuracy and macro-F1 are reported: train, val or test."),
    checkpoint: str = typer.Option("best", help="best or last."),
    batch_size: int = typer.Option(256, help="Samples per encoder pass."),
    grid: Optional[str] = typer.Option(
        None,
        help="Comma list of L2 penalties tried (mean cross-entropy + l2/2 ||W||²), chosen on the validation "
        "split (default: 0.1 down to 1e-5).",
    ),
    max_train: Optional[int] = typer.Option(
        None, help="Fit on a seeded random subset of this many training samples (default: all)."
    ),
    seed: Optional[int] = typer.Option(None, help="Seed of that subset (default: the run's seed)."),
    device: Optional[str] = typer.Option(None, help="Where to encode and fit (default: cpu)."),
    feature_map: bool = typer.Option(
        True,
        "--map/--no-map",
        help="Also a t-SNE map of each modality's features on the split, drawn by `mmcoop report` "
        "(needs mmcoop[featuremaps]; skipped with a note when it is not installed).",
    ),
    map_points: int = typer.Option(2000, help="Points per feature map at most (a seeded subsample)."),
    trust_run: bool = typer.Option(
        False, "--trust-run", help="Load a checkpoint holding Python objects other than tensors (trusted runs only)."
    ),
) -> None:
    """Linear probe per modality (and on all modalities' features) on the frozen encoders; writes probe.json."""
    from mmcoop.cli.output import console

    def go() -> None:
        from mmcoop.cli.options import check_run_options
        from mmcoop.diagnostics import DEFAULT_GRID
        from mmcoop.experiment.probe import probe_run
        from mmcoop.utils.rundir import RunPaths
        from mmcoop.utils.runfiles import stale_probes

        check_run_options(batch_size, split, checkpoint)
        import importlib.util

        want_map = feature_map and importlib.util.find_spec("sklearn") is not None
        if feature_map and not want_map:
            warn("no feature maps: scikit-learn is not installed (pip install 'mmcoop[featuremaps]')")
        entry = probe_run(
            run_dir,
            split,
            checkpoint=checkpoint,
            batch_size=batch_size,
            grid=_parse_grid(grid) if grid is not None else DEFAULT_GRID,
            max_train=max_train,
            seed=seed,
            device=device,
            trust=trust_run,
            feature_map=want_map,
            map_points=map_points,
        )
        rows = [
            {
                "features": name,
                "dim": p["dim"],
                "l2": f"{p['l2']:g}",
                "val acc": f"{100 * p['val_acc']:.2f}",
                f"{split} acc": f"{100 * p['acc']:.2f}",
                f"{split} macro-F1": f"{100 * p['macro_f1']:.2f}",
            }
            for name, p in entry["probes"].items()
        ]
        console.print(_APP["table"](rows, f"linear probes on frozen features ({entry['n_train']} training samples)"))
        say(f"wrote {RunPaths(run_dir).probe}")  # a path is user text, never markup
        for msg in stale_probes(run_dir):
            warn(msg)

    _APP["guard"](go)


def table(
    paths: list[Path] = typer.Argument(..., help="Comparison folders (compare.csv) and/or run folders (results.json)."),
    out: Path = typer.Option(
        Path("table"), "--out", help="Prefix of the files written: <out>.tex, <out>.md, <out>.csv."
    ),
    modalities: bool = typer.Option(False, "--modalities", help="Add each modality's accuracy alone."),
    probe: bool = typer.Option(
        False, "--probe", help="Add the linear-probe accuracies (compare --probe / mmcoop probe)."
    ),
    diff: str = typer.Option(
        "test_acc",
        help="Comma list of compare.csv columns shown as the paired difference to the baseline with its 95% "
        "interval (e.g. test_acc,probe_acc_audio); none for no such column.",
    ),
    baseline: str = typer.Option("joint", help="The method the differences are taken to."),
) -> None:
    """LaTeX (booktabs), Markdown and CSV tables: methods as rows, datasets as column groups, mean ± std over
    seeds, the best in bold, the paired difference to joint with its interval."""

    def go() -> None:
        from mmcoop.experiment.tables import build_table, collect, metric_columns, to_markdown, write_tables

        rows = collect(paths)
        diffs = [] if diff.strip() == "none" else [d.strip() for d in diff.split(",") if d.strip()]
        unknown = [d for d in diffs if d not in rows.columns]
        if unknown:
            raise MMCoopError(
                f"--diff {', '.join(unknown)}: not a column of the runs given; valid: "
                + ", ".join(c for c in rows.columns if c.startswith(("test_", "probe_")))
            )
        t = build_table(rows, metric_columns(rows, modalities, probe), diffs, baseline)
        written = write_tables(t, out)
        say(to_markdown(t))
        say("wrote " + ", ".join(map(str, written)))

    _APP["guard"](go)


def register(app: typer.Typer, guard: Callable[[Callable[[], Any]], Any], table_of: Callable[..., Any]) -> None:
    """Add ``probe`` and ``table`` to ``app``.

    Args:
        app: the main Typer app.
        guard: runs a command body, turning errors into one message (the app's).
        table_of: ``(rows, title) -> rich Table`` (the app's).
    """
    _APP.update(guard=guard, table=table_of)
    app.command()(probe)
    app.command()(table)


__all__ = ["probe", "register", "table"]
