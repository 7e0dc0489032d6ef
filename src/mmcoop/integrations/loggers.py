"""Live logging of runs: loggers are training-loop callbacks, chosen by name in ``train.loggers``.

=============  ==========================================  =====================================
name           writes                                      needs
=============  ==========================================  =====================================
``jsonl``      ``metrics.jsonl`` (one JSON line per epoch)  nothing (a run always writes it)
``tensorboard`` ``<run>/tensorboard/events.out.tfevents.*`` ``pip install 'mmcoop[tensorboard]'``
``wandb``      ``<run>/wandb/offline-run-*`` (offline       ``pip install 'mmcoop[wandb]'``
               unless ``WANDB_MODE`` is set)
``mlflow``     ``<run>/mlruns`` (a local file store)        ``pip install 'mmcoop[mlflow]'``
``csv``        ``<run>/metrics.csv`` (rewritten atomically) nothing
=============  ==========================================  =====================================

Every logger gets the same scalars per epoch (step = the 1-based epoch), named by
`scalars`:

``loss/train``, ``loss/val``, ``acc/train``, ``acc/val``, ``f1/val``, ``lr``,
``acc_alone/<modality>`` (validation accuracy of each modality alone), the imbalance measures
of the validation pass (docs/guides/diagnostics.md) ``imbalance/unimodal_gap``,
``imbalance/discrepancy_ratio/<modality>`` (OGM-GE), ``imbalance/shapley_share/<modality>`` and
``imbalance/mean_phi/<modality>``,
``contribution/<modality>`` (dataset-level mean Shapley value, re-sampling methods),
``copies/<modality>`` (units planned per modality), ``resample_ratio/<modality>``
(modality-level), ``time/valuation_s``, ``time/train_s``, ``time/epoch_s``;

and, after each valuation, a histogram of the per-sample contributions ``phi/<modality>``
(TensorBoard and W&B). Loggers run on rank 0 only. A plugin adds a logger with
``@LOGGERS.register("name")`` on a `Logger` subclass, or through the entry-point group
``mmcoop.loggers``.
"""

from __future__ import annotations

import csv
import io
import importlib
import math
import os
from pathlib import Path
from typing import Any, ClassVar

from mmcoop.errors import ConfigError
from mmcoop.train.callbacks import Callback
from mmcoop.train.distributed import is_main
from mmcoop.utils.io import atomic_write_text
from mmcoop.utils.registry import Registry
from mmcoop.utils.rundir import METRICS_CSV, TENSORBOARD_DIR, WANDB_DIR, append_metrics

#: metrics-record key -> scalar tag; keys ending in ``_`` are prefixes followed by a modality name.
SCALAR_TAGS: tuple[tuple[str, str], ...] = (
    ("train_loss", "loss/train"),
    ("val_loss", "loss/val"),
    ("train_acc", "acc/train"),
    ("val_acc", "acc/val"),
    ("val_f1", "f1/val"),
    ("lr", "lr"),
    ("time_valuation_s", "time/valuation_s"),
    ("time_train_s", "time/train_s"),
    ("seconds", "time/epoch_s"),
    ("val_acc_", "acc_alone/"),
    ("val_uni_gap", "imbalance/unimodal_gap"),
    ("val_ratio_", "imbalance/discrepancy_ratio/"),
    ("val_share_", "imbalance/shapley_share/"),
    ("val_phi_", "imbalance/mean_phi/"),
    ("contrib_", "contribution/"),
    ("copies_", "copies/"),
    ("resample_ratio_", "resample_ratio/"),
)


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The logged scalars of one metrics ``record`` (see the module docstring for the tags).

    Example:
        >>> scalars({"epoch": 1, "train_loss": 0.5, "val_acc_audio": 0.6})
        {'loss/train': 0.5, 'acc_alone/audio': 0.6}
    """
    out: dict[str, float] = {}
    for key, value in record.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            continue
        for src, tag in SCALAR_TAGS:
            if src.endswith("_") and key.startswith(src) and key != src.rstrip("_"):
                out[tag + key[len(src) :]] = float(value)
                break
            if key == src:
                out[tag] = float(value)
                break
    return out


class Logger(Callback):
    """Base of the loggers: a callback writing under ``log_dir`` (the run directory).

    Subclasses set `requires` (the package they import) and `extra` (the
    ``mmcoop[...]`` extra that installs it) and implement `log_scalars` (and
    optionally `log_histogram`, `close`).

    Args:
        log_dir: the run directory.
        config: the run's resolved configuration (recorded by loggers that keep one).
    """

    requires: ClassVar[str | None] = None
    extra: ClassVar[str | None] = None
    #: the run directory already holds this output (``metrics.jsonl``): nothing to add in a run
    written_by_run: ClassVar[bool] = False
    name: ClassVar[str] = "logger"

    def __init__(self, log_dir: str | os.PathLike, config: dict[str, Any] | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.config = dict(config or {})

    @classmethod
    def check_available(cls) -> None:
        """Raise `ConfigError` with the install command when `requires` is missing."""
        if cls.requires is None:
            return
        try:
            importlib.import_module(cls.requires)
        except ImportError:
            raise ConfigError(
                f"train.loggers includes {cls.name!r} but the {cls.requires!r} package is not installed; "
                f"install it with: pip install 'mmcoop[{cls.extra}]' (or remove {cls.name!r} from train.loggers)"
            ) from None

    # -- what subclasses write ----------------------------------------------------------
    def log_scalars(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def log_histogram(self, tag: str, values: Any, step: int) -> None:
        """A histogram of ``values`` (a 1-D tensor); default: not supported, nothing written."""

    def flush(self) -> None:
        """Make what was logged visible to readers (end of each epoch)."""

    def close(self) -> None:
        """Release files and processes (end of training)."""

    # -- events -------------------------------------------------------------------------
    def after_valuation(self, trainer: Any, table: Any, plan: Any) -> None:
        step = int(getattr(trainer, "epoch", 0)) + 1  # the epoch being trained (1-based)
        for k, m in enumerate(table.modalities):
            if len(table):
                self.log_histogram(f"phi/{m}", table.phi[:, k].double(), step)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self.log_scalars(scalars(record), int(record["epoch"]))
        self.flush()

    def on_fit_end(self, trainer: Any) -> None:
        self.close()


LOGGERS: Registry[type[Logger]] = Registry("logger", group="mmcoop.loggers", expects=Logger)


def register_logger(name: str) -> Any:
    """Decorator: register a `Logger` subclass under ``name`` (sets its ``name``)."""

    def deco(cls: type[Logger]) -> type[Logger]:
        cls.name = name
        return LOGGERS.register(name)(cls)

    return deco


@register_logger("jsonl")
class JsonlLogger(Logger):
    """One JSON line per epoch in ``<log_dir>/metrics.jsonl`` (a run writes it at each commit)."""

    written_by_run = True

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        append_metrics(self.log_dir, record)

    def log_scalars(self, values: dict[str, float], step: int) -> None:  # pragma: no cover - on_epoch_end writes
        pass


@register_logger("csv")
class CsvLogger(Logger):
    """``<log_dir>/metrics.csv``: one row per epoch, one column per scalar tag (rewritten atomically,
    so a column that appears later, e.g. ``contribution/audio`` after the warm-up, is never lost)."""

    def __init__(self, log_dir: str | os.PathLike, config: dict[str, Any] | None = None) -> None:
        super().__init__(log_dir, config)
        self.rows: list[dict[str, float]] = []
        self.path = self.log_dir / METRICS_CSV
        if self.path.is_file():  # resumed: keep the epochs already logged
            with self.path.open(newline="", encoding="utf-8") as f:
                self.rows = [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.rows = [r for r in self.rows if int(r.get("epoch", -1)) != step]
        self.rows.append({"epoch": float(step), **values})
        columns = ["epoch"] + sorted({k for r in self.rows for k in r} - {"epoch"})
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for r in self.rows:
            writer.writerow({k: (int(v) if k == "epoch" else v) for k, v in r.items()})
        atomic_write_text(self.path, buf.getvalue())


@register_logger("tensorboard")
class TensorBoardLogger(Logger):
    """TensorBoard event files in ``<log_dir>/tensorboard`` (``tensorboard --logdir runs``)."""

    requires = "tensorboard"
    extra = "tensorboard"

    def __init__(self, log_dir: str | os.PathLike, config: dict[str, Any] | None = None) -> None:
        super().__init__(log_dir, config)
        self.check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.log_dir / TENSORBOARD_DIR))

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        for tag, v in values.items():
            self.writer.add_scalar(tag, v, step)

    def log_histogram(self, tag: str, values: Any, step: int) -> None:
        self.writer.add_histogram(tag, values, step)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


@register_logger("wandb")
class WandbLogger(Logger):
    """Weights & Biases, offline by default: the run lands in ``<log_dir>/wandb`` and can be
    uploaded later with ``wandb sync``; set ``WANDB_MODE=online`` to stream it."""

    requires = "wandb"
    extra = "wandb"

    def __init__(self, log_dir: str | os.PathLike, config: dict[str, Any] | None = None) -> None:
        super().__init__(log_dir, config)
        self.check_available()
        import wandb

        self.wandb = wandb
        (self.log_dir / WANDB_DIR).parent.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            dir=str(self.log_dir),
            project=os.environ.get("WANDB_PROJECT", "mmcoop"),
            name=self.log_dir.name,
            config=self.config,
            mode=os.environ.get("WANDB_MODE", "offline"),  # type: ignore[arg-type]
            reinit="finish_previous",
        )
        self._pending: dict[str, Any] = {}

    def log_histogram(self, tag: str, values: Any, step: int) -> None:
        self._pending[tag] = self.wandb.Histogram(values.numpy())

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.run.log({**values, **self._pending}, step=step)
        self._pending = {}

    def close(self) -> None:
        self.run.finish()


@register_logger("mlflow")
class MlflowLogger(Logger):
    """MLflow metrics in a local file store ``<log_dir>/mlruns`` (``mlflow ui --backend-store-uri``),
    or wherever ``MLFLOW_TRACKING_URI`` points."""

    requires = "mlflow"
    extra = "mlflow"

    def __init__(self, log_dir: str | os.PathLike, config: dict[str, Any] | None = None) -> None:
        super().__init__(log_dir, config)
        self.check_available()
        import mlflow

        self.mlflow = mlflow
        if "MLFLOW_TRACKING_URI" not in os.environ:
            mlflow.set_tracking_uri((self.log_dir / "mlruns").resolve().as_uri())
        self.run = mlflow.start_run(run_name=self.log_dir.name)
        mlflow.log_params({k: str(v)[:250] for k, v in _flat(self.config).items()})

    def log_scalars(self, values: dict[str, float], step: int) -> None:
        self.mlflow.log_metrics({k.replace("/", "."): v for k, v in values.items()}, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_loggers(names: list[str]) -> None:
    """Raise `ConfigError` for an unknown logger name or a missing optional package."""
    for name in names:
        cls = LOGGERS.get(name)  # unknown names: one message listing the valid ones
        cls.check_available()


def build_loggers(names: list[str], log_dir: str | os.PathLike, config: dict[str, Any] | None = None) -> list[Logger]:
    """The logger callbacks of a run (rank 0 only; ``jsonl`` is the run's own ``metrics.jsonl``).

    Args:
        names: ``train.loggers``.
        log_dir: the run directory.
        config: the resolved run config (recorded by W&B and MLflow).

    Returns:
        One `Logger` per name that adds output to the run directory.
    """
    check_loggers(names)
    if not is_main():
        return []
    return [LOGGERS.get(n)(log_dir, config) for n in names if not LOGGERS.get(n).written_by_run]


__all__ = [
    "LOGGERS",
    "Logger",
    "SCALAR_TAGS",
    "scalars",
    "register_logger",
    "check_loggers",
    "build_loggers",
    "JsonlLogger",
    "CsvLogger",
    "TensorBoardLogger",
    "WandbLogger",
    "MlflowLogger",
]
