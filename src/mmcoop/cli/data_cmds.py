"""``mmcoop data ...``: prepare paper datasets from raw videos.

``data_app`` is a Typer sub-app mounted by `mmcoop.cli.app`
(``app.add_typer(data_app, name="data")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from mmcoop.cli.info import RegistryHelp
from mmcoop.cli.output import console, esc, say
from mmcoop.errors import MMCoopError

data_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Prepare paper datasets from raw videos (docs/guides/paper-datasets.md).",
)


@data_app.callback()
def _group() -> None:
    """Prepare paper datasets from raw videos (docs/guides/paper-datasets.md)."""


@data_app.command("prepare", cls=RegistryHelp)
def prepare(
    dataset: str = typer.Option(..., "--dataset", help="Dataset to prepare: {PREPARE}."),
    videos: Path = typer.Option(
        ...,
        "--videos",
        help="Folder of raw videos (searched recursively; the first "
        "sub-folder, e.g. train/ or test/, becomes the split).",
    ),
    out: Path = typer.Option(..., "--out", help="Output root; the dataset's layout is written below it."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    fps: float = typer.Option(1.0, "--fps", help="Frames kept per second of video (the official layouts use 1)."),
    sample_rate: Optional[int] = typer.Option(
        None, "--sample-rate", help="Audio rate in Hz (default: the dataset's, e.g. 16000 for KS)."
    ),
    num_frames: int = typer.Option(
        -1,
        "--num-frames",
        help="Frames per clip at 1 fps: -1 the dataset's default (10 for KS/AVE), 0 one per second of video.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    labels: Optional[Path] = typer.Option(
        None,
        "--labels",
        help="CSV of id,label[,split] rows (default: the class folders of VIDEOS/<split>/<class>/<id>.mp4).",
    ),
    layout: str = typer.Option(
        "default",
        "--layout",
        help="File names to write: default, or official (Kinetics-Sounds: ks_audio/, ks_visual/ as the official code).",
    ),
    val_fraction: float = typer.Option(
        0.1,
        "--val-fraction",
        help="With labels and no val videos: the fraction of train (per class, seeded) moved to val.",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the val carve."),
) -> None:
    """Raw videos -> JPEG frames at 1 fps + the dataset's audio spectrogram (resumable, parallel, atomic per clip),
    plus split files and classes.json when labels are known.

    Videos that cannot be read are listed in OUT/prepare_report.json and skipped;
    clips whose outputs exist are skipped, so a killed run can simply be rerun.
    """
    from mmcoop.media.prepare import REPORT_FILE, prepare_videos

    try:
        report = prepare_videos(
            dataset,
            videos,
            out,
            workers=workers,
            fps=fps,
            sample_rate=sample_rate,
            num_frames=num_frames,
            progress=progress,
            labels=labels,
            layout=layout,
            val_fraction=val_fraction,
            seed=seed,
        )
    except MMCoopError as e:
        console.print(f"[bold red]error:[/] {esc(e)}", highlight=False)
        raise typer.Exit(code=2) from None
    except KeyboardInterrupt:
        say(f"interrupted: finished clips are kept in {out}; run the same command again to resume")
        raise typer.Exit(code=130) from None
    say(
        f"{dataset}: {report.prepared} clip(s) prepared, {report.skipped} already done, {report.failed} failed "
        f"of {report.total} in {report.seconds:.1f} s ({report.clips_per_s:.2f} clips/s); "
        f"report: {Path(out) / REPORT_FILE}"
    )
    for f in report.failures[:10]:
        console.print(f"  [yellow]skipped[/] {esc(f['video'])}: {esc(f['error'])}", highlight=False)
    if report.failed > 10:
        say(f"  ... and {report.failed - 10} more (see the report)")
    for note in report.notes:
        say(f"  note: {note}")
    if report.index_files:
        counts = ", ".join(f"{k} {v}" for k, v in report.splits.items())
        say(f"  split files ({counts}; {len(report.classes)} classes): {', '.join(report.index_files)}")
        say(f"  train with: mmcoop train --dataset {dataset} --set dataset_options.root={out}")


__all__ = ["data_app"]
