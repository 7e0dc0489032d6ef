"""Plain helpers shared by several test modules.

Importable as ``_helpers`` because ``tests/conftest.py`` puts the ``tests`` folder on
``sys.path`` (test modules are imported with ``--import-mode=importlib`` and cannot
import each other). Fixtures live in ``conftest.py``; this module holds functions and
constants that are also needed at collection time (e.g. in ``parametrize``).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

from mmcoop.data.base import DatasetSplits, ModalitySpec, MultimodalDataset
from mmcoop.methods import Method, MethodContext
from mmcoop.models import build_model
from mmcoop.train import TrainConfig, Trainer

#: The shared real-data folder: ``$MMCOOP_DATA``, else ``../shared/data`` beside the repository.
REAL_DATA = Path(os.environ.get("MMCOOP_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data")


def skip_real_data(*parts: str) -> bool:
    """Whether a real-data test may skip: ``REAL_DATA/<parts>`` is absent and this is not CI.

    Under CI (``CI`` set, as ``.ci/run`` does) it is never skipped: the test then runs and fails
    naming the missing file, since CI must run the real-data tests.
    """
    return not os.environ.get("CI") and not REAL_DATA.joinpath(*parts).is_dir()


def write_png(path: Path, mmcoop_plot: bool = False) -> Path:
    """A 2x2 PNG at ``path``; ``mmcoop_plot=True`` marks it as the report's plots are marked."""
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    from mmcoop.utils.rundir import PLOT_PNG_KEY, PLOT_PNG_TEXT

    info = PngInfo()
    if mmcoop_plot:
        info.add_text(PLOT_PNG_KEY, PLOT_PNG_TEXT)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (2, 2), 7).save(path, pnginfo=info)
    return path


def run_bounded(cmd: list[str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` (one thread per process, output captured) in a process group of its own; past
    ``timeout`` seconds the whole group is killed (a hung collective ignores SIGTERM, and killing
    only the launcher would leave its workers running) and the test fails with the output."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(
            f"{cmd} did not finish in {timeout:g} s (a hang?); its process group was killed\n{out[-3000:]}\n{err[-3000:]}"
        )
    finally:
        with contextlib.suppress(ProcessLookupError):  # workers left behind by a launcher that ended
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def torchrun(*args: str, timeout: float = 240, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node 2 --master_port <free port> *args`` (Gloo on the CPU, one thread per
    process), output captured, bounded by :func:`run_bounded`; ``args`` is a script with its
    arguments or ``"-m", "mmcoop", ...``."""
    with socket.socket() as sock:  # a free port for the rendezvous
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "--master_port", str(port), *args]
    return run_bounded(cmd, timeout, cwd)


# -- valuation: random games, the Shapley definition, the paper's two-modality cases --

# (fused correct, audio-only correct, visual-only correct) -> (phi_a, phi_v), by hand with the paper's values
# v(a) = 1 if a correct, v(v) = 1 if v correct, v(av) = 2 if fused correct, v(empty) = 0;
# phi_a = (v(a) - v(0) + v(av) - v(v)) / 2.
HAND_TABLE = {
    (1, 1, 1): (1.0, 1.0),
    (1, 1, 0): (1.5, 0.5),
    (1, 0, 1): (0.5, 1.5),
    (1, 0, 0): (1.0, 1.0),
    (0, 1, 1): (0.0, 0.0),
    (0, 1, 0): (0.5, -0.5),
    (0, 0, 1): (-0.5, 0.5),
    (0, 0, 0): (0.0, 0.0),
}


def random_values(m: int, b: int = 4, seed: int = 0) -> Tensor:
    """A random game: float64 coalition values ``[b, 2**m]`` drawn from ``seed``."""
    return torch.randn(b, 2**m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def brute_force_shapley(values: Tensor, m: int) -> Tensor:
    """Average marginal contribution over all M! orderings (the definition), float64 ``[B, M]``."""
    phi = torch.zeros(values.shape[0], m, dtype=torch.float64)
    v = values.double()
    for order in itertools.permutations(range(m)):
        c = 0
        for k in order:
            phi[:, k] += v[:, c | (1 << k)] - v[:, c]
            c |= 1 << k
    return phi / math.factorial(m)


# -- methods: a tiny two-modality problem trained through the real loop --
NUM_CLASSES = 3


def tiny_data(n: int = 96, seed: int = 0) -> MultimodalDataset:
    """Two vector modalities: ``a`` clearly separable, ``b`` mostly noise (so ``b`` under-contributes)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % NUM_CLASSES
    onehot = torch.nn.functional.one_hot(labels, NUM_CLASSES).float()
    a = torch.cat([3.0 * onehot, torch.randn(n, 3, generator=g)], 1) + 0.3 * torch.randn(n, 6, generator=g)
    b = torch.cat([0.4 * onehot[:, :1], torch.randn(n, 3, generator=g)], 1)
    specs = [ModalitySpec("a", "vector", (6,)), ModalitySpec("b", "vector", (4,))]
    return MultimodalDataset({"a": a, "b": b}, labels, NUM_CLASSES, specs)


def tiny_model(data: MultimodalDataset, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(data.specs, NUM_CLASSES, dim=8, fusion="concat")


class ValuationEvents:
    """A loop callback collecting the ``after_valuation`` events: ``tables[epoch (1-based)] = (table, plan)``."""

    def __init__(self) -> None:
        self.tables: dict[int, tuple[Any, Any]] = {}

    def after_valuation(self, trainer: Any, table: Any, plan: Any) -> None:
        self.tables[trainer.epoch + 1] = (table, plan)


class ContextListener:
    """A :class:`MethodContext` listener (``ctx.listener = ContextListener()``): the last ``(table, plan)``."""

    def __init__(self) -> None:
        self.last: tuple[Any, Any] | None = None

    def after_valuation(self, table: Any, plan: Any = None) -> None:
        self.last = (table, plan)


def run_epochs(
    method: Method, data: MultimodalDataset, epochs: int, seed: int = 0, batch_size: int = 32
) -> tuple[list[dict[str, Any]], MethodContext]:
    """Train a fresh :func:`tiny_model` on ``data`` with ``method`` for ``epochs`` via :meth:`Trainer.fit`.

    Returns every epoch's record (the method's ``epoch_log`` merged in; ``train_units`` is
    the number of units the loader yielded from ``method.train_set``) and the method context.
    After each epoch the model must still be in train mode: valuation has to restore it.
    """
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=1e-2, progress=False, device="cpu")
    valuations = ValuationEvents()
    trainer = Trainer(
        tiny_model(data, seed),
        method,
        DatasetSplits("tiny", data, data, data),
        config,
        seed=seed,
        callbacks=[valuations],
    )
    records: list[dict[str, Any]] = []

    def on_epoch_end(record: dict[str, Any], t: Trainer) -> None:
        assert t.model.training, "valuation must restore train mode"
        if t.epoch in valuations.tables:  # the after_valuation event of this epoch (trainer.epoch is 1-based here)
            record["valuation_table"], record["valuation_plan"] = valuations.tables.pop(t.epoch)
        records.append(record)

    trainer.fit(on_epoch_end)
    assert len(records) == epochs
    return records, trainer.ctx


def mbsd_loop_reference(uni: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """MBSD's terms as BalanceBenchmark's per-sample loop (``MBSD_trainer.py``), for every pair, averaged over the pairs."""
    m, b, c = uni.shape
    prob = uni.softmax(-1)
    pred = prob.argmax(-1)
    kls, rss = [], []
    for j in range(m):
        for k in range(j + 1, m):
            kl = rs = 0.0
            for i in range(b):
                pj, pk = float(prob[j, i, y[i]]), float(prob[k, i, y[i]])
                w = max(pj, pk) - min(pj, pk) if (pred[j, i] == y[i] or pred[k, i] == y[i]) else 0.0
                kl += w * min(pj, pk) * (math.log(min(pj, pk)) - max(pj, pk))
                rs += w * float(((uni[j, i] - uni[k, i]) ** 2).sum()) / c
            kls.append(kl / b)
            rss.append(rs / b)
    return sum(kls) / len(kls), sum(rss) / len(rss)
