"""Data pipeline speed on a Kinetics-Sounds-layout fixture: per-epoch JPEG decode vs the frame cache.

Builds ``visual/train/<clip>/frame_0000N.jpg`` from real MNIST digits (320 x 240 JPEG
frames, quality 75 as the official 1 fps extraction writes them; ``--frames`` per clip)
and measures, with batches of 64 clips and 3 frames per sample:

1. the official per-item path (``AV_KS_Dataset.__getitem__``: PIL decode +
   RandomResizedCrop/flip or Resize + ToTensor + Normalize, per frame, every epoch)
   and a ``torchvision.io.decode_jpeg`` variant, in samples/s;
2. the cached path (:class:`mmcoop.media.frames.FrameCache`: decode once, then
   gather + batched augmentation on ``--device``), in samples/s, and its one-off build;
3. ``mmcoop data prepare`` (Kinetics-Sounds) on 10 s 340 x 256 25 fps videos with
   AAC stereo audio, in clips/s, with 1 and 2 workers;
4. the peak RSS of a fresh process iterating one train + one eval epoch of the cache
   at ``--clips`` vs ``--big`` clips (it must stay flat: the cache is memory-mapped and
   its pages are released after every gather), and without the release for contrast.

Run: ``.venv/bin/python benchmarks/data_pipeline.py`` (about 2-3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from mmcoop.media.frames import FrameCache, segment_frame_numbers  # noqa: E402
from mmcoop.media.prepare import prepare_videos  # noqa: E402
from mmcoop.media.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _video import mux_video  # noqa: E402  (the tests' video writer: mmcoop itself never writes videos)

BATCH = 64


def mnist_digits(data_root: Path, n: int) -> np.ndarray:
    raw = gzip.decompress((data_root / "mnist" / "t10k-images-idx3-ubyte.gz").read_bytes())
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)[:n]


def ks_frame(digit: np.ndarray, k: int) -> np.ndarray:
    """240 x 320 RGB: the digit at 8x on a colour gradient."""
    yy, xx = np.mgrid[0:240, 0:320]
    f = np.stack([xx * 255 // 320, yy * 255 // 240, np.full_like(xx, (k * 37) % 256)], -1).astype(np.uint8) // 2
    big = np.kron(digit, np.ones((8, 8), np.uint8))
    f[8:232, 48:272] = np.maximum(f[8:232, 48:272], big[..., None])
    return f


def build_fixture(root: Path, digits: np.ndarray, clips: int, frames: int) -> list[str]:
    from PIL import Image

    ids = []
    for c in range(clips):
        cid = f"clip{c:05d}"
        d = root / cid
        d.mkdir(parents=True, exist_ok=True)
        for k in range(1, frames + 1):
            p = d / f"frame_{k:05d}.jpg"
            if not p.exists():
                Image.fromarray(ks_frame(digits[(c * frames + k) % len(digits)], k)).save(p, quality=75)
        ids.append(cid)
    return ids


class OfficialKS(torch.utils.data.Dataset):
    """The official per-item visual path (frame choice + per-frame PIL transforms)."""

    def __init__(self, root: Path, ids: list[str], train: bool, use_decode_jpeg: bool = False) -> None:
        from torchvision import transforms

        self.root, self.ids, self.train, self.dj = root, ids, train, use_decode_jpeg
        norm = transforms.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))
        self.tf = transforms.Compose(
            [transforms.RandomResizedCrop(224), transforms.RandomHorizontalFlip(), transforms.ToTensor(), norm]
            if train
            else [transforms.Resize(size=(224, 224)), transforms.ToTensor(), norm]
        )
        from torchvision.transforms import v2

        self.tf_tensor = v2.Compose(
            (
                [v2.RandomResizedCrop(224, antialias=True), v2.RandomHorizontalFlip()]
                if train
                else [v2.Resize((224, 224), antialias=True)]
            )
            + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(IMAGENET_MEAN), list(IMAGENET_STD))]
        )

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> torch.Tensor:
        from PIL import Image
        from torchvision.io import decode_jpeg, read_file

        folder = self.root / self.ids[i]
        n = len(os.listdir(folder))
        ts = segment_frame_numbers(torch.tensor([n]), 3, self.train)[0].tolist()
        out = []
        for t in ts:
            p = folder / f"frame_{t:05d}.jpg"
            if self.dj:
                out.append(self.tf_tensor(decode_jpeg(read_file(str(p)))))
            else:
                out.append(self.tf(Image.open(p).convert("RGB")))
        return torch.stack(out)


def epoch_rate(fn, n_samples: int, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_samples / best


def loader_epoch(ds: torch.utils.data.Dataset) -> None:
    for _ in torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=0):
        pass


def cache_epoch(cache: FrameCache, train: bool, device: str, seed: int = 0, gather_only: bool = False) -> None:
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(cache), generator=g)
    for s in range(0, len(order), BATCH):
        if gather_only:  # the loader's share when the transform runs on the GPU
            idx = order[s : s + BATCH]
            x = cache.gather(idx, segment_frame_numbers(cache.num_files[idx], 3, train, g))
        else:
            x = cache.batch(order[s : s + BATCH], train=train, generator=g, device=device)
        del x  # a training step would consume the batch here
    _common.sync(device)


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(cache_dir: str, release: bool, device: str) -> None:
    """In a fresh process: one train + one eval epoch over the cache; print RSS figures (MiB) as JSON.

    The high-water mark is reset after imports and a one-batch warm-up (``/proc/self/clear_refs``),
    so the reported peak is that of iterating the cache, not of importing torch.
    """
    torch.set_num_threads(1)
    cache = FrameCache(cache_dir, release_pages=release)
    cache.batch(
        torch.arange(min(BATCH, len(cache))), train=True, generator=torch.Generator().manual_seed(9), device=device
    )
    start = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    cache_epoch(cache, True, device)
    cache_epoch(cache, False, device)
    print(
        json.dumps(
            {
                "clips": len(cache),
                "start_mib": round(start, 1),
                "peak_mib": round(_status_mib("VmHWM"), 1),
                "end_mib": round(_status_mib("VmRSS"), 1),
            }
        )
    )


def measure_rss(cache_dir: Path, release: bool, device: str) -> dict:
    cmd = [sys.executable, __file__, "--rss-child", str(cache_dir), "--device", device] + (
        [] if release else ["--no-release"]
    )
    out = subprocess.run(
        cmd, check=True, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def make_videos(folder: Path, digits: np.ndarray, n: int, seconds: int = 10, fps: int = 25) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for v in range(n):
        p = folder / f"vid{v:03d}.mp4"
        if p.exists():
            continue
        base = [np.pad(ks_frame(digits[v * seconds + s], s), ((8, 8), (10, 10), (0, 0))) for s in range(seconds)]
        frames = np.stack(
            [
                np.clip(base[k // fps].astype(np.int16) + rng.integers(-6, 7, base[0].shape), 0, 255).astype(np.uint8)
                for k in range(seconds * fps)
            ]
        )  # 256 x 340, a little noise per frame
        t = np.arange(seconds * 44100) / 44100
        audio = (np.stack([np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 660 * t)]) * 8000).astype(np.int16)
        mux_video(p, frames, fps, audio, 44100, "h264", "aac")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--big", type=int, default=2000, help="clips of the second cache for the RSS check")
    ap.add_argument("--frames", type=int, default=3)
    ap.add_argument("--videos", type=int, default=8, help="raw videos for the prepare timing")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--workdir", default=None, help="keep fixtures here (default: a temporary folder)")
    ap.add_argument(
        "--data-root",
        default=os.environ.get("MMCOOP_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")),
    )
    ap.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--no-release", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, not args.no_release, args.device)
        return
    torch.set_num_threads(1)
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="mmcoop-bench-data-"))
    digits = mnist_digits(Path(args.data_root), 10000)
    print(f"# {_common.machine(args.device)}")
    print(f"# {_common.command_line()}")
    t0 = time.perf_counter()
    root = work / "ks" / "visual" / "train"
    ids_big = build_fixture(root, digits, args.big, args.frames)
    ids = ids_big[: args.clips]
    print(f"fixture: {args.big} clips x {args.frames} JPEG frames (320x240, q75) in {time.perf_counter() - t0:.1f} s")

    # 1. per-epoch decode (the official path), one process
    n = len(ids)
    rows = {}
    rows["per-item PIL, train transform"] = epoch_rate(lambda: loader_epoch(OfficialKS(root, ids, True)), n)
    rows["per-item PIL, eval transform"] = epoch_rate(lambda: loader_epoch(OfficialKS(root, ids, False)), n)
    rows["per-item decode_jpeg + v2, train"] = epoch_rate(lambda: loader_epoch(OfficialKS(root, ids, True, True)), n)

    # 2. the cache
    shutil.rmtree(work / f"cache{n}", ignore_errors=True)
    t0 = time.perf_counter()
    cache = FrameCache.build(root, ids, work / f"cache{n}", workers=2)
    build_s = time.perf_counter() - t0
    rows["cache, train (gather + batched crop/flip)"] = epoch_rate(lambda: cache_epoch(cache, True, args.device), n, 2)
    rows["cache, eval (gather + normalise)"] = epoch_rate(lambda: cache_epoch(cache, False, args.device), n, 2)
    rows["cache, train: gather only (CPU share, GPU aug)"] = epoch_rate(
        lambda: cache_epoch(cache, True, args.device, gather_only=True), n, 2
    )
    print(f"\n## visual pipeline, {n} clips, batch {BATCH}, 3 frames/sample, 1 thread, device {args.device}")
    print(f"cache build (one-off): {build_s:.2f} s = {n * args.frames / build_s:.0f} frames/s (2 threads)")
    base_train, base_eval = rows["per-item PIL, train transform"], rows["per-item PIL, eval transform"]
    for k, v in rows.items():
        ref = base_train if "train" in k else base_eval
        print(f"{k:45s} {v:9.1f} samples/s  ({v / ref:5.2f}x per-item PIL)")

    # 3. prepare
    vids = work / "videos"
    t0 = time.perf_counter()
    make_videos(vids / "train", digits, args.videos)
    print(
        f"\n## prepare (kinetics-sounds), {args.videos} videos of 10 s 340x256 25 fps H.264 + AAC stereo 44.1 kHz "
        f"(made in {time.perf_counter() - t0:.1f} s)"
    )
    for workers in (1, 2):
        out = work / f"prepared{workers}"
        shutil.rmtree(out, ignore_errors=True)
        rep = prepare_videos("kinetics-sounds", vids, out, workers=workers, progress=False)
        assert rep.failed == 0, rep.failures
        print(
            f"workers={workers}: {rep.prepared} clips in {rep.seconds:.2f} s = {rep.clips_per_s:.2f} clips/s"
            + (" (includes starting the spawned workers)" if workers > 1 else "")
        )

    # 4. RSS, fresh processes
    shutil.rmtree(work / f"cache{args.big}", ignore_errors=True)
    t0 = time.perf_counter()
    big = FrameCache.build(root, ids_big, work / f"cache{args.big}", workers=2)
    print(
        f"\n## peak RSS of one train + one eval epoch over the cache (fresh process; big cache built in "
        f"{time.perf_counter() - t0:.1f} s)"
    )
    res = {}
    for c in (cache, big):
        size = (c.path / FrameCache.DATA_FILE).stat().st_size / 2**20
        r = measure_rss(c.path, True, args.device)
        res[len(c)] = r["peak_mib"]
        print(
            f"{len(c):5d} clips (cache {size:7.1f} MiB): peak RSS {r['peak_mib']:7.1f} MiB "
            f"(after imports + warm-up batch {r['start_mib']:.1f}, at the end {r['end_mib']:.1f})"
        )
    r = measure_rss(big.path, False, args.device)
    print(
        f"{len(big):5d} clips without releasing mapped pages: peak RSS {r['peak_mib']:7.1f} MiB "
        f"(start {r['start_mib']:.1f}; for contrast)"
    )
    print(
        f"peak RSS ratio {len(big)} / {len(cache)} clips: {res[len(big)] / res[len(cache)]:.3f} "
        f"(data ratio {len(big) / len(cache):.0f}x)"
    )
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
