"""Hostile-input campaign (issue 23): names, plugins and values a careless or hostile user gives mmcoop.

Every case is a real ``python -m mmcoop`` process in an empty folder; it passes when the exit
status is the expected one, every expected piece of text is printed (or written) and nothing that
must not appear does (a traceback, Python's warning source line, "This is a bug", a progress bar in
piped output). Classes:

- sample ids read as rich markup (``value --top``) and as HTML (``report``: the explorer's JSON);
- plugins: one raising at import, entry points naming ``5`` / ``None`` in every group, one named
  like a built-in;
- values: NaN/inf in the test split, a stray label 9 and a label -1 in 4-class train data, a
  huge ``--epochs``;
- console: piped ``value`` (no bar), a repaired run's warning (one line), ``report`` when the
  run's data cannot be loaded (a warning line).

Usage (from the project root)::

    python benchmarks/fault_campaign.py hostile      # or: python benchmarks/hostile_inputs.py [--out DIR]

Prints one line per case and a JSON summary (cases, passed, failed names); exit status 1 when any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
NEVER = ("Traceback", "This is a bug", "warnings.warn(", "UserWarning:", "RuntimeWarning:")
TINY = [
    "--dataset",
    "synthetic",
    "--set",
    "dataset_options.sizes=[48,24,24]",
    "--set",
    "model.dim=8",
    "--set",
    "train.progress=false",
    "--device",
    "cpu",
    "--epochs",
    "1",
]
HOSTILE_RUN = ["--set", "data.target=hostile_ids:load", "--set", "model.dim=8", "--set", "train.progress=false"]
HOSTILE_RUN += ["--device", "cpu", "--epochs", "1"]


@dataclass
class Case:
    name: str
    args: list[str]
    code: int = 0
    needles: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    warnings: int | None = None  # exact number of `warning:` lines, when given
    plugin: str | None = None  # a site folder with a plugin, put on PYTHONPATH
    fixtures: bool = True  # tests/fixtures (the hostile_ids data target) importable
    check: list[str] = field(default_factory=list)  # reasons it failed


SRC = [ROOT / "src"]  # the mmcoop sources under test (--src)


def _env(plugin: Path | None, fixtures: bool) -> dict[str, str]:
    path = [str(plugin)] if plugin else []
    path += [str(FIXTURES)] if fixtures else []
    path += [str(SRC[0]), os.environ.get("PYTHONPATH", "")]
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(p for p in path if p))


def _plugin(site: Path, name: str, files: dict[str, str], entry_points: str) -> Path:
    """A package installed into ``site`` as pip lays it out (a ``*.dist-info`` with ``entry_points.txt``)."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text("")
    for fname, text in files.items():
        (site / name / fname).write_text(textwrap.dedent(text))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return site


def _mmcoop(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mmcoop", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


#: a case still running after this many seconds fails (e.g. a huge --epochs accepted and training)
CASE_TIMEOUT = 180.0


def _run(case: Case, cwd: Path, sites: dict[str, Path]) -> Case:
    try:
        res = _mmcoop(case.args, cwd, _env(sites.get(case.plugin or ""), case.fixtures), CASE_TIMEOUT)
    except subprocess.TimeoutExpired:
        case.check.append(f"still running after {CASE_TIMEOUT:.0f} s (killed)")
        return case
    out = res.stdout + res.stderr
    flat = " ".join(out.split())
    if res.returncode != case.code:
        case.check.append(f"exit {res.returncode}, expected {case.code}")
    case.check += [f"missing {n!r}" for n in case.needles if n not in flat and n not in out]
    case.check += [f"printed {n!r}" for n in (*NEVER, *case.absent) if n in out]
    lines = [line for line in out.splitlines() if line.startswith("warning:")]
    if case.warnings is not None and len(lines) != case.warnings:
        case.check.append(f"{len(lines)} warning lines, expected {case.warnings}")
    return case


def _explorer_ids(html: str) -> list[str]:
    blob = re.search(r'<script type="application/json" id="mmx-data">(.*?)</script>', html, re.DOTALL)
    return json.loads(blob.group(1))["views"][0]["id"] if blob else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a new temporary one)")
    ap.add_argument("--src", type=Path, default=SRC[0], help="mmcoop sources to test (e.g. an older checkout's src)")
    a = ap.parse_args(argv)
    SRC[0] = a.src.resolve()
    out = a.out or Path(tempfile.mkdtemp(prefix="mmcoop-hostile-"))
    out.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(FIXTURES))
    from hostile_ids import HOSTILE

    t0 = time.perf_counter()
    env = _env(None, True)
    for args in (
        ["train", *HOSTILE_RUN, "--name", "ids"],
        ["train", *TINY, "--epochs", "2", "--name", "tiny"],
    ):
        res = _mmcoop(args, out, env)
        if res.returncode != 0:
            print(res.stdout[-2000:], res.stderr[-2000:])
            return 1
    (out / "runs" / "tiny" / "checkpoints" / "best.pt").unlink()  # a resume repairs it, with a warning

    method = "from mmcoop.methods import METHODS, Method\n\nclass Shadow(Method):\n    pass\n"
    odd = "".join(
        f"[{g}]\nodd5 = odd_plug.things:FIVE\noddNone = odd_plug.things:NONE\n"
        for g in ("mmcoop.methods", "mmcoop.datasets", "mmcoop.loggers", "mmcoop.models")
    )
    sites = {
        "broken": _plugin(
            out / "site-broken",
            "broken_plug",
            {"method.py": "raise RuntimeError('half-installed')\n"},
            "[mmcoop.methods]\nbroken = broken_plug.method\n",
        ),
        "odd": _plugin(out / "site-odd", "odd_plug", {"things.py": "FIVE = 5\nNONE = None\n"}, odd),
        "shadow": _plugin(
            out / "site-shadow",
            "shadow_plug",
            {"method.py": method},
            "[mmcoop.methods]\njoint = shadow_plug.method:Shadow\n",
        ),
    }
    ids_run = str(out / "runs" / "ids")
    cases = [
        Case("ids as markup: value --top", ["value", ids_run, "--top", "32"], needles=tuple(HOSTILE)),
        Case("ids as HTML: report", ["report", ids_run], warnings=0),
        Case(
            "plugin raising at import: methods",
            ["methods"],
            needles=("plugin 'broken'", "half-installed"),
            warnings=1,
            plugin="broken",
        ),
        Case("plugin raising at import: built-in run", ["train", *TINY, "--name", "b"], warnings=1, plugin="broken"),
        Case(
            "plugin raising at import: needed",
            ["train", *TINY, "--name", "c", "--method", "broken"],
            code=2,
            needles=("method 'broken' is not available", "half-installed"),
            plugin="broken",
        ),
        Case(
            "entry points to 5 / None in 4 groups",
            ["train", *TINY, "--name", "o"],
            needles=("names 5", "names None"),
            warnings=8,
            plugin="odd",
        ),
        Case(
            "entry point named like a built-in",
            ["methods", "joint"],
            needles=("plugin 'joint'", "is ignored"),
            warnings=1,
            plugin="shadow",
        ),
        Case(
            "NaN in the test split",
            ["train", *HOSTILE_RUN, "--name", "n", "--set", "data.options.bad=test_nan"],
            code=2,
            needles=("test sample(s) have NaN/inf 'b' inputs",),
        ),
        Case(
            "inf in the test split",
            ["train", *HOSTILE_RUN, "--name", "i", "--set", "data.options.bad=test_inf"],
            code=2,
            needles=("test sample(s) have NaN/inf 'b' inputs",),
        ),
        Case(
            "label 9 in 4-class train data",
            ["train", *HOSTILE_RUN, "--name", "l9", "--set", "data.options.bad=train_label_9"],
            code=2,
            needles=("label 9 (sample 3) makes 10 classes",),
        ),
        Case(
            "label -1 in train data",
            ["train", *HOSTILE_RUN, "--name", "lm", "--set", "data.options.bad=train_label_-1"],
            code=2,
            needles=("label -1 (sample 3) is negative",),
            absent=("4611686018427387904",),
        ),
        Case(
            "label -1 in the items of train data",
            ["train", *HOSTILE_RUN, "--name", "li", "--set", "data.options.bad=item_label_-1"],
            code=2,
            needles=("item 3 has label -1",),
            absent=("4611686018427387904",),
        ),
        Case(
            "--epochs 99999999999999999999",
            ["train", *TINY, "--name", "e", "--epochs", "99999999999999999999"],
            code=2,
            needles=("train.epochs must be at most 100000",),
        ),
        Case("value piped: no progress bar", ["value", ids_run, "--split", "val"], absent=("valuating", "it/s")),
        Case(
            "repaired run: one warning line",
            ["train", "--resume", str(out / "runs" / "tiny"), "--epochs", "3"],
            needles=("repaired after an interruption",),
            warnings=1,
        ),
        Case(
            "report without the run's data",
            ["report", ids_run],
            needles=("sample explorer", "could not be loaded"),
            warnings=1,
            fixtures=False,
        ),
    ]
    for case in cases:
        _run(case, out, sites)
        if case.name == "ids as HTML: report":
            html = (out / "runs" / "ids" / "report.html").read_text()
            case.check += [f"id {i!r} not in the explorer" for i in HOSTILE if i not in _explorer_ids(html)]
            if "<!--<script>" in html:
                case.check.append("a raw '<!--<script>' in the page")
        print(
            f"{'ok  ' if not case.check else 'FAIL'} {case.name}" + (f": {'; '.join(case.check)}" if case.check else "")
        )
    failed = [c.name for c in cases if c.check]
    summary = {"cases": len(cases), "passed": len(cases) - len(failed), "failed": failed}
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(summary, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
