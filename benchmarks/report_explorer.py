"""Benchmark: size and time of ``report.html`` with the per-sample explorer, and its screenshot.

    export MMCOOP_DATA=../shared/data
    .venv/bin/python benchmarks/report_explorer.py [--out-dir runs/bench] [--k 8] [--repeats 3]
        [--screenshot docs/figures/explorer_avmnist.png]

Trains (once, reused afterwards) a joint model on debiased avmnist (``--epochs``, CPU),
values its test split (``mmcoop value --split test``: 300 samples), then writes the run's
report ``--repeats`` times with ``mmcoop.report.write_report`` and prints the median
wall time and the size of ``report.html``, split into the explorer's part (its JSON
block: values of every sample, thumbnails and audio of the gallery samples) and the
rest (plots, tables). The time includes rebuilding the dataset from config.yaml (the
preprocessed-tensor cache is warm after the first call) and drawing the samples.

``--screenshot PATH`` opens the report in headless Chromium (the Debian package, driven
by Selenium from the dev extra) and saves a picture of the explorer: this is how
``docs/figures/explorer_avmnist.png`` is made.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _mmcoop(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "mmcoop", *args], check=True)


def ensure_run(out_dir: Path, epochs: int) -> Path:
    """The benchmark's avmnist run (joint, debiased), with the test split valued."""
    run = out_dir / "explorer_avmnist_joint"
    if not (run / "results.json").is_file():
        _mmcoop(
            "train",
            "--dataset",
            "avmnist",
            "--method",
            "joint",
            "--name",
            run.name,
            "--out-dir",
            str(out_dir),
            "--device",
            "cpu",
            "--set",
            f"train.epochs={epochs}",
            "--set",
            "debiased.strength=0.8",
            "--set",
            "train.progress=false",
            "--overwrite",
        )
    if not (run / "valuation" / "test.parquet").is_file():
        _mmcoop("value", str(run), "--split", "test")
    return run


def screenshot(report: Path, path: Path, height: int = 1500) -> None:
    """A picture of the explorer section of ``report`` (headless Chromium, 1280 px wide, the top ``height`` px)."""
    import io

    from PIL import Image
    from selenium import webdriver

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from _browser import HEADLESS_FLAGS
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        for flag in (*HEADLESS_FLAGS, "--hide-scrollbars", "--window-size=1280,2400", f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        try:
            driver.get(report.resolve().as_uri())
            png = driver.find_element(By.ID, "mmx").screenshot_as_png
        finally:
            driver.quit()
    img = Image.open(io.BytesIO(png))
    img = img.crop((0, 0, img.width, min(img.height, height)))  # the audio galleries and the first visual one
    path.parent.mkdir(parents=True, exist_ok=True)
    img.convert("P", palette=Image.ADAPTIVE, colors=128).save(path, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", default="runs/bench")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--screenshot", default=None)
    args = ap.parse_args()

    from mmcoop.report import write_report

    run = ensure_run(Path(args.out_dir), args.epochs)
    times, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        report = write_report(run, top_k=args.k)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    text = report.read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="mmx-data">(.*?)</script>', text, re.DOTALL)
    explorer = len(blob.group(1).encode()) if blob else 0
    data = json.loads(blob.group(1).replace("<\\/", "</")) if blob else {}
    media = len(json.dumps(data.get("media", {})).encode())
    total = len(text.encode())
    print(
        f"run: {run} (valued: test split, {sum(v['n'] for v in data.get('views', []))} samples; "
        f"K={args.k}; CPU threads {os.cpu_count()})"
    )
    print(
        f"write_report: median {statistics.median(times):.2f} s over {len(times)} calls "
        f"({', '.join(f'{t:.2f}' for t in times)}); CPU time median {statistics.median(cpu):.2f} s"
    )
    print(
        f"report.html: {total / 1e6:.2f} MB; explorer data {explorer / 1e6:.2f} MB "
        f"(gallery media {media / 1e6:.2f} MB for {sum(len(v) for v in data.get('media', {}).values())} samples); "
        f"rest {(total - explorer) / 1e6:.2f} MB"
    )
    if args.screenshot:
        screenshot(report, Path(args.screenshot))
        print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
