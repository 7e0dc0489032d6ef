"""The hostile cases of issue 23 for ``fault_campaign.py --cases``: each one a real ``mmcoop``
process in a fresh empty folder, checked for "refused with one message, nothing changed" (or,
where the command must work, that it did).

Each case returns ``(passed, detail)``. Faults that need an injection inside the process (a disk
that fills up) run ``mmcoop`` through a two-line ``python -c`` wrapper that installs it first.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"  # user_project.py: a user's data and model targets
sys.path.insert(0, str(ROOT / "tests"))
from _runs import TINY_ARGS  # noqa: E402 - the tests' tiny synthetic run, as CLI options

TINY = [*TINY_ARGS, "--epochs", "1", "--out-dir", "runs"]
#: a disk that fills up: every write through mmcoop.utils.io above LIMIT bytes fails with ENOSPC
_FULL_DISK = (
    "import errno, os, sys\n"
    "import mmcoop.utils.io as io\n"
    "class Full:\n"
    "    def __getattr__(self, n): return getattr(os, n)\n"
    "    def fdopen(self, fd, mode='r', *a, **k):\n"
    "        fh = os.fdopen(fd, mode, *a, **k); w = fh.write\n"
    "        def write(b):\n"
    "            if len(b) > int(os.environ['LIMIT']): raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))\n"
    "            return w(b)\n"
    "        fh.write = write; return fh\n"
    "io.os = Full()\n"
    "from mmcoop.cli.app import main; sys.argv[0] = 'mmcoop'; main()\n"
)

Result = tuple[bool, str]


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "src"), str(FIXTURES), os.environ.get("PYTHONPATH", "")])
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path, COLUMNS="200")


def mmcoop(cwd: Path, *args: str, wrapper: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """``python -m mmcoop ARGS`` in ``cwd`` (or through ``python -c wrapper``)."""
    head = [sys.executable, "-c", wrapper] if wrapper else [sys.executable, "-m", "mmcoop"]
    return subprocess.run([*head, *args], cwd=cwd, env={**_env(), **env}, capture_output=True, text=True)


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every entry below ``folder`` (file bytes; ``None`` for folders and links), the lock file aside."""
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() and not p.is_symlink() else None)
        for p in sorted(folder.rglob("*"))
        if p.name != ".mmcoop.lock"
    }


def _refused_untouched(proc: subprocess.CompletedProcess, folder: Path, before: dict, needle: str) -> Result:
    out = " ".join((proc.stdout + proc.stderr).split())
    ok = proc.returncode == 2 and needle in out and "Traceback" not in out and tree(folder) == before
    return ok, f"rc {proc.returncode}: {out[:160]}"


def _train(cwd: Path, name: str, *extra: str) -> Path:
    proc = mmcoop(cwd, "train", *TINY, "--name", name, *extra)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return cwd / "runs" / name


def resume_never_a_run(cwd: Path) -> Result:
    exp = cwd / "myexp"
    exp.mkdir()
    (exp / "config.yaml").write_text("# mine\ndataset: synthetic\ntrain: {epochs: 1, device: cpu}\n")
    (exp / "metrics.jsonl").write_text('{"epoch": 1, "my_loss": 0.5}\n')
    before = tree(exp)
    return _refused_untouched(mmcoop(cwd, "train", "--resume", "myexp"), exp, before, "not a run directory")


def resume_copied_config(cwd: Path) -> Result:
    real = _train(cwd, "real")
    exp = cwd / "copy"
    exp.mkdir()
    shutil.copy(real / "config.yaml", exp / "config.yaml")
    (exp / "metrics.jsonl").write_text('{"epoch": 3}\n')
    before = tree(exp)
    proc = mmcoop(cwd, "train", "--resume", "copy")
    ok, detail = _refused_untouched(proc, exp, before, "not a run directory")
    return ok and "repaired" not in proc.stderr, detail


def overwrite_wandb_user_files(cwd: Path) -> Result:
    run = _train(cwd, "w", "--set", "train.loggers=[jsonl,wandb]")
    (offline,) = (run / "wandb").glob("offline-run-*")
    (offline / "files" / "mine").mkdir()
    (offline / "files" / "mine" / "keep.txt").write_text("mine")
    (offline / "analysis.md").write_text("mine")
    before = tree(run)
    proc = mmcoop(cwd, "train", *TINY, "--name", "w", "--set", "train.loggers=[jsonl,wandb]", "--overwrite")
    return _refused_untouched(proc, run, before, "analysis.md")


def overwrite_user_metrics_csv(cwd: Path) -> Result:
    run = _train(cwd, "c")
    (run / "metrics.csv").write_text("step,mine\n1,2\n")
    before = tree(run)
    ok1, d1 = _refused_untouched(mmcoop(cwd, "train", *TINY, "--name", "c", "--overwrite"), run, before, "metrics.csv")
    proc = mmcoop(cwd, "train", "--resume", "runs/c", "--epochs", "2", "--set", "train.loggers=[jsonl,csv]")
    ok2, d2 = _refused_untouched(proc, run, before, "metrics.csv")
    return ok1 and ok2, f"{d1} | {d2}"


def report_full_disk(cwd: Path) -> Result:
    run = _train(cwd, "r")
    probe = cwd / "runs" / "probe"
    shutil.copytree(run, probe)
    if mmcoop(cwd, "report", "runs/probe").returncode != 0:
        return False, "the report of an intact copy failed"
    html = (probe / "report.html").stat().st_size
    biggest = max(p.stat().st_size for p in (probe / "plots").glob("*.png"))
    shutil.rmtree(probe)
    before = tree(run)
    limit = str(html - 1024)  # every plot fits, the page (which embeds them all) does not
    proc = mmcoop(cwd, "report", "runs/r", wrapper=_FULL_DISK, LIMIT=limit)
    ok, detail = _refused_untouched(proc, run, before, "disk is full")
    return ok and biggest < html - 1024, detail


def hidden_code(cwd: Path) -> Result:
    flag = cwd / "PWNED"
    (cwd / "evilmod.py").write_text(
        f"import pathlib\npathlib.Path({str(flag)!r}).write_text('x')\n"
        "def load(seed=0):\n    import user_project\n    return user_project.load(seed, 60, 24)\n"
    )
    common = ["--set", "model.target=user_project:build", "--set", "model.options.hidden=8"]
    for name, target in (("evil", "evilmod:load"), ("clean", "user_project:load")):
        proc = mmcoop(cwd, "train", *TINY[-8:], *common, "--set", f"data.target={target}", "--name", name)
        if proc.returncode != 0:
            return False, proc.stderr[-300:]
    shutil.copy(cwd / "runs" / "clean" / "config.yaml", cwd / "runs" / "evil" / "config.yaml")
    flag.unlink()
    before = tree(cwd / "runs" / "evil")
    ok, detail = _refused_untouched(mmcoop(cwd, "value", "runs/evil"), cwd / "runs" / "evil", before, "data.target")
    return ok and not flag.exists(), detail


def top_csv_then_overwrite(cwd: Path) -> Result:
    _train(cwd, "t")
    top = mmcoop(cwd, "value", "runs/t", "--top", "2")
    again = mmcoop(cwd, "train", *TINY, "--name", "t", "--overwrite")
    return top.returncode == 0 and again.returncode == 0, f"value rc {top.returncode}, overwrite rc {again.returncode}"


def damaged_last_value_best(cwd: Path) -> Result:
    run = _train(cwd, "d")
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:100])
    best = mmcoop(cwd, "value", "runs/d", "--checkpoint", "best")
    refused = mmcoop(cwd, "value", "runs/d", "--checkpoint", "last")
    text = " ".join((refused.stdout + refused.stderr).split())
    ok = best.returncode == 0 and refused.returncode == 2 and "--overwrite" not in text and "--checkpoint best" in text
    return ok, f"best rc {best.returncode}; last: {text[:160]}"


def truncated_best_report(cwd: Path) -> Result:
    run = _train(cwd, "b")
    best = run / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:100])
    proc = mmcoop(cwd, "report", "runs/b")
    out = " ".join((proc.stdout + proc.stderr).split())
    html = (run / "report.html").read_text() if (run / "report.html").is_file() else ""
    return "damaged" in out and "epoch None" not in out + html, out[:160]


#: name -> case (each gets a fresh empty folder)
CASES: dict[str, Callable[[Path], Result]] = {
    "resume of a folder that was never a run": resume_never_a_run,
    "resume of a folder with a copied config.yaml": resume_copied_config,
    "--overwrite with user files in wandb/offline-run-*": overwrite_wandb_user_files,
    "user metrics.csv: --overwrite and --resume with csv": overwrite_user_metrics_csv,
    "report on a full disk": report_full_disk,
    "value of a run whose last.pt names hidden code": hidden_code,
    "value --top K, then --overwrite": top_csv_then_overwrite,
    "only last.pt damaged: value --checkpoint best": damaged_last_value_best,
    "truncated best.pt: report": truncated_best_report,
}


def run_cases(out: Path) -> dict[str, Result]:
    """Run every case in its own folder under ``out``; ``{name: (passed, detail)}``."""
    results: dict[str, Result] = {}
    for i, (name, case) in enumerate(CASES.items()):
        folder = out / f"case{i}"
        folder.mkdir(parents=True)
        try:
            results[name] = case(folder)
        except Exception as e:  # noqa: BLE001 - a case that crashed failed
            results[name] = (False, f"{type(e).__name__}: {e}"[:300])
    return results
