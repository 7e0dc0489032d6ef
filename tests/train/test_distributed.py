"""Two processes under torchrun (Gloo on CPU): one set of files, metrics summed over ranks."""

import json
import subprocess

from _helpers import torchrun


def test_torchrun_two_processes_write_one_run(tmp_path):
    cmd = [
        "-m",
        "mmcoop",
        "train",
        "--dataset",
        "synthetic",
        "--epochs",
        "3",
        "--out-dir",
        str(tmp_path),
        "--name",
        "ddp",
        "--set",
        "train.progress=false",
    ]
    proc = torchrun(*cmd, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = tmp_path / "ddp"
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 3  # rank 0 writes, rank 1 does not duplicate
    # training units are summed over both ranks (each rank sees half of the 400 samples)
    assert json.loads(lines[0])["train_units"] == 400
    assert json.loads((run / "results.json").read_text())["test_acc"] > 0.8
    assert proc.stdout.count("run directory:") == 1
    _assert_no_ddp_warnings(proc)  # joint: every parameter is used, no detection


def _assert_no_ddp_warnings(proc: subprocess.CompletedProcess, detection: bool = False) -> None:
    """No deprecation of ``broadcast_buffers``; without detection (a method that never skips an encoder)
    no reducer note "did not find any unused parameters" either."""
    out = proc.stdout + proc.stderr
    assert "broadcast_buffers" not in out and "FutureWarning" not in out, out[-3000:]
    if not detection:
        assert "did not find any unused parameters" not in out, out[-3000:]


def test_torchrun_sample_level_values_once_and_agrees(tmp_path):
    """Sample-level (duplicate) under 2 processes: the ranks share the valuation (each values
    half, all get the whole table), build one plan and train through it without hanging."""
    cmd = [
        "-m",
        "mmcoop",
        "train",
        "--dataset",
        "synthetic",
        "--method",
        "sample-level",
        "--epochs",
        "3",
        "--out-dir",
        str(tmp_path),
        "--name",
        "ddp",
        "--set",
        "train.progress=false",
        "--set",
        "method_options.warmup=1",
    ]
    proc = torchrun(*cmd, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    records = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("valued_samples") for r in records] == [None, 400, 400]
    for r in records[1:]:
        # every unit of the (shared) plan is trained exactly once over both ranks; the
        # DistributedSampler pads an odd total by one repeated unit
        assert r["train_units"] in (r["train_size"], r["train_size"] + 1)
        assert r["train_size"] > 400
    # duplicate units can skip an encoder: detection stays on (the reducer's note on warm-up steps is expected)
    _assert_no_ddp_warnings(proc, detection=True)


def test_an_error_on_one_rank_ends_the_job_instead_of_hanging(tmp_path):
    """Rank 1 fails while rank 0 waits in a collective: torchrun must end with an error
    (the exit hook destroys the group without waiting for the other ranks)."""
    script = tmp_path / "fail.py"
    script.write_text(
        "import torch\n"
        "from mmcoop.train.distributed import init_from_env, rank\n"
        "from mmcoop.utils.dist import all_gather_rows\n"
        "init_from_env()\n"
        "if rank() == 1:\n"
        "    raise RuntimeError('rank 1 fails on purpose')\n"
        "all_gather_rows(torch.zeros(3))\n"
    )
    proc = torchrun(str(script), timeout=120)
    assert proc.returncode != 0
    assert "rank 1 fails on purpose" in proc.stdout + proc.stderr


def test_torchrun_compare_writes_one_table(tmp_path):
    """`mmcoop compare` under 2 processes: every rank trains each run, rank 0 writes the tables."""
    cmd = [
        "-m",
        "mmcoop",
        "compare",
        "--dataset",
        "synthetic",
        "--methods",
        "joint,sample-level:weighted",
        "--seeds",
        "0",
        "--epochs",
        "2",
        "--out-dir",
        str(tmp_path),
        "--name",
        "cmp",
        "--set",
        "train.progress=false",
        "--set",
        "method_options.warmup=1",
        "--matched",
        "none",
    ]
    proc = torchrun(*cmd, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = (tmp_path / "cmp" / "compare.csv").read_text().splitlines()
    assert len(rows) == 3 and rows[1].startswith("joint,0") and rows[2].startswith("sample-level:weighted,0")
    _assert_no_ddp_warnings(proc)  # joint and weighted re-sampling use every parameter: no detection, no note
