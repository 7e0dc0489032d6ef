"""``mmcoop data ...``: prepare paper datasets from raw videos.

``data_app`` is a Typer sub-app mounted by :mod:`mmcoop.cli.app`
(``app.add_typer(data_app, name="data")``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from mmcoop.cli.info import RegistryHelp
from mmcoop.errors import MMCoopError

data_app = typer.Typer(add_completion=False, no_args_is_help=True,
                       help="Prepare paper datasets from raw videos (`mmcoop data prepare --help` lists them).")
console = Console()


@data_app.callback()
def _group() -> None:
    """Prepare paper datasets from raw videos."""


@data_app.command("prepare", cls=RegistryHelp)
def prepare(
    dataset: str = typer.Option(..., "--dataset", help="Dataset to prepare: {PREPARE}."),
    videos: Path = typer.Option(..., "--videos", help="Folder of raw videos (searched recursively; the first "
                                "sub-folder, e.g. train/ or test/, becomes the split)."),
    out: Path = typer.Option(..., "--out", help="Output root; the dataset's layout is written below it."),
    workers: int = typer.Option(1, "--workers", min=1, help="Worker processes."),
    fps: float = typer.Option(1.0, "--fps", help="Frames kept per second of video (the official layouts use 1)."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate",
                                              help="Audio rate in Hz (default: the dataset's, e.g. 16000 for KS)."),
    num_frames: int = typer.Option(-1, "--num-frames", help="Frames per clip at 1 fps: -1 the dataset's default "
                                   "(10 for KS/AVE), 0 one per second of video."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
) -> None:
    """Raw videos -> JPEG frames at 1 fps + the dataset's audio spectrogram (resumable, parallel, atomic per clip).

    Videos that cannot be read are listed in OUT/prepare_report.json and skipped;
    clips whose outputs exist are skipped, so a killed run can simply be rerun.
    """
    from mmcoop.media.prepare import REPORT_FILE, prepare_videos

    try:
        report = prepare_videos(dataset, videos, out, workers=workers, fps=fps, sample_rate=sample_rate,
                                num_frames=num_frames, progress=progress)
    except MMCoopError as e:
        console.print(f"[bold red]error:[/] {e}", highlight=False)
        raise typer.Exit(code=2) from None
    console.print(
        f"{dataset}: {report.prepared} clip(s) prepared, {report.skipped} already done, {report.failed} failed "
        f"of {report.total} in {report.seconds:.1f} s ({report.clips_per_s:.2f} clips/s); "
        f"report: {Path(out) / REPORT_FILE}", highlight=False)
    for f in report.failures[:10]:
        console.print(f"  [yellow]skipped[/] {f['video']}: {f['error']}", highlight=False)
    if report.failed > 10:
        console.print(f"  ... and {report.failed - 10} more (see the report)", highlight=False)


__all__ = ["data_app"]
