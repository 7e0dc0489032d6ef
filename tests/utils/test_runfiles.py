"""What mmcoop wrote in a run folder (ownership) and which checkpoint derived files came from."""

from __future__ import annotations

import torch

from _helpers import write_png

from mmcoop.utils.runfiles import (
    checkpoint_fingerprint,
    file_sha256,
    is_mmcoop_csv,
    is_mmcoop_plot,
    report_source_comment,
    split_run_entries,
)
from mmcoop.valuation import ValuationTable


def _table() -> ValuationTable:
    n = 3
    return ValuationTable(
        modalities=["a", "b"],
        index=torch.arange(n),
        label=torch.zeros(n, dtype=torch.long),
        phi=torch.zeros(n, 2),
        values=torch.zeros(n, 4),
        coalition_preds=torch.zeros(n, 4, dtype=torch.long),
    )


def test_owned_and_foreign_entries(tmp_path):
    for name in (
        ".mmcoop-run",
        ".mmcoop.lock",
        "config.yaml",
        "metrics.jsonl",
        "results.json",
        "report.html",
        ".config.yaml.x1.mmcoop.tmp",
    ):
        (tmp_path / name).write_text("x")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"x")
    write_png(tmp_path / "plots" / "phi.png", mmcoop_plot=True)
    _table().to_parquet(tmp_path / "valuation" / "test.parquet")
    owned, foreign = split_run_entries(tmp_path)
    assert foreign == []
    assert {p.name for p in owned} == {
        ".mmcoop-run",
        ".mmcoop.lock",
        "config.yaml",
        "metrics.jsonl",
        "results.json",
        "report.html",
        ".config.yaml.x1.mmcoop.tmp",
        "checkpoints",
        "plots",
        "valuation",
    }
    (tmp_path / "valuation" / "mine.parquet").write_bytes(b"not mmcoop's table")
    (tmp_path / "checkpoints" / "epoch5.pt").write_bytes(b"x")
    (tmp_path / "plots" / "notes.txt").write_text("x")
    (tmp_path / "NOTES.md").write_text("x")
    (tmp_path / ".notes.tmp").write_text("x")
    (tmp_path / "analysis").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "NOTES.md")
    owned, foreign = split_run_entries(tmp_path)
    assert foreign == [
        ".notes.tmp",
        "NOTES.md",
        "analysis/",
        "checkpoints/epoch5.pt",
        "link",
        "plots/notes.txt",
        "valuation/mine.parquet",
    ]
    assert {p.name for p in owned} == {
        ".mmcoop-run",
        ".mmcoop.lock",
        "config.yaml",
        "metrics.jsonl",
        "results.json",
        "report.html",
        ".config.yaml.x1.mmcoop.tmp",
    }


def test_only_the_reports_marked_pngs_are_owned(tmp_path):
    """A PNG in plots/ is mmcoop's only when its text chunk says so: a user's figure (even one named
    like a report plot), a non-PNG with the suffix and a link are not."""
    ours = write_png(tmp_path / "plots" / "accuracy.png", mmcoop_plot=True)
    assert is_mmcoop_plot(ours)
    assert [p.name for p in split_run_entries(tmp_path)[0]] == ["plots"]
    user = write_png(tmp_path / "plots" / "phi_hist_epochs.png")
    (tmp_path / "plots" / "fake.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "plots" / "link.png").symlink_to(ours)
    assert not any(is_mmcoop_plot(p) for p in (user, tmp_path / "plots" / "fake.png", tmp_path / "plots" / "link.png"))
    owned, foreign = split_run_entries(tmp_path)
    assert owned == []  # the folder holds a user's files: not deleted by --overwrite
    assert set(foreign) == {"plots/fake.png", "plots/link.png", "plots/phi_hist_epochs.png"}


def test_logger_outputs_are_owned_but_user_files_beside_them_are_not(tmp_path):
    """train.loggers write metrics.csv, tensorboard/ event files and wandb/ run folders: --overwrite
    may replace them; a user's file among them makes the folder foreign."""
    (tmp_path / "config.yaml").write_text("train: {loggers: [jsonl, csv]}\n")  # the csv logger's metrics.csv
    (tmp_path / "metrics.csv").write_text("epoch,acc/val,lr\n1,0.5,0.1\n")
    (tmp_path / "tensorboard").mkdir()
    (tmp_path / "tensorboard" / "events.out.tfevents.1.host.1.0").write_bytes(b"x")
    run = tmp_path / "wandb" / "offline-run-20261202_120000-abc"
    run.mkdir(parents=True)
    (run / "run-abc.wandb").write_bytes(b"x")
    (tmp_path / "wandb" / "latest-run").symlink_to(run)
    (tmp_path / "wandb" / "debug.log").write_text("x")
    owned, foreign = split_run_entries(tmp_path)
    assert foreign == [] and {p.name for p in owned} == {"config.yaml", "metrics.csv", "tensorboard", "wandb"}
    (tmp_path / "tensorboard" / "my_plot.png").write_bytes(b"x")
    (tmp_path / "wandb" / "notes.md").write_text("x")
    owned, foreign = split_run_entries(tmp_path)
    assert foreign == ["tensorboard/my_plot.png", "wandb/notes.md"]
    assert {p.name for p in owned} == {"config.yaml", "metrics.csv"}


def test_checkpoint_fingerprint(tmp_path):
    assert checkpoint_fingerprint(tmp_path) is None
    path = tmp_path / "checkpoints" / "best.pt"
    path.parent.mkdir()
    torch.save({"epoch": 4, "model": {}}, path)
    fp = checkpoint_fingerprint(tmp_path)
    assert fp == {"checkpoint": "best", "epoch": 4, "sha256": file_sha256(path)}
    import hashlib

    assert fp["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert '"epoch": 4' in report_source_comment(fp) and report_source_comment(None).endswith("null -->")


def test_wandb_run_folders_hold_only_wandbs_files(tmp_path):
    """Issue 23.2: inside wandb/offline-run-*/ only the files wandb writes are mmcoop's to delete; a user's
    file or folder at any depth (and a link other than wandb's) is named as foreign."""
    run = tmp_path / "wandb" / "offline-run-20261204_200857-xyucgpz1"
    for rel in ("run-xyucgpz1.wandb", "files/requirements.txt", "files/wandb-summary.json", "logs/debug.log"):
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text("x")
    (run / "tmp" / "code").mkdir(parents=True)
    (run / "logs" / "debug-core.log").symlink_to(tmp_path / "elsewhere.log")  # wandb's link into its cache
    (tmp_path / "wandb" / "latest-run").symlink_to(run.name)
    (tmp_path / "wandb" / "debug.log").symlink_to(f"{run.name}/logs/debug.log")
    assert split_run_entries(tmp_path) == ([tmp_path / "wandb"], [])
    (run / "analysis.md").write_text("mine")
    (run / "files" / "mine").mkdir()
    (run / "files" / "mine" / "keep.txt").write_text("mine")
    (run / "files" / "empty").mkdir()
    (run / "files" / "link.txt").symlink_to(tmp_path / "elsewhere.log")
    (tmp_path / "wandb" / "latest-run").unlink()
    (tmp_path / "wandb" / "latest-run").symlink_to(tmp_path)  # a link out of wandb/: not wandb's
    prefix = f"wandb/{run.name}/"
    assert split_run_entries(tmp_path) == (
        [],
        ["wandb/latest-run"]
        + [prefix + "analysis.md", prefix + "files/empty/", prefix + "files/link.txt", prefix + "files/mine/keep.txt"],
    )


def test_a_metrics_csv_is_mmcoops_only_in_a_run_that_logs_csv(tmp_path):
    """Issue 23.3: metrics.csv is the csv logger's only when the run's config lists csv and its header is
    the logger's; a user's file of that name is foreign."""
    csv = tmp_path / "metrics.csv"
    csv.write_text("epoch,acc/val,lr\n1,0.5,0.1\n")
    assert not is_mmcoop_csv(tmp_path)  # no config
    (tmp_path / "config.yaml").write_text("train: {loggers: [jsonl]}\n")
    assert not is_mmcoop_csv(tmp_path) and split_run_entries(tmp_path)[1] == ["metrics.csv"]
    assert is_mmcoop_csv(tmp_path, [{"train": {"loggers": ["csv"]}}])  # the commit's config lists it
    (tmp_path / "config.yaml").write_text("train: {loggers: [jsonl, csv]}\n")
    assert is_mmcoop_csv(tmp_path)
    for header in ("step,acc/val\n", "epoch,lr,acc/val\n", "epoch,my metric\n"):  # not the logger's header
        csv.write_text(header)
        assert not is_mmcoop_csv(tmp_path), header
