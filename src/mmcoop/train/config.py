"""Settings of the training loop."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from mmcoop.errors import ConfigError


#: the most epochs a run may ask for: far beyond any real schedule, so a larger number is a typo
MAX_EPOCHS = 100_000


@dataclass
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: number of epochs.
        batch_size: training batch size (per process under DDP).
        eval_batch_size: batch size for evaluation (default 128: on CPU the avmnist CNNs
            infer about 2x faster in batches of 64-128 than of 512; raise it on a GPU).
        optimizer: ``adam``, ``adamw`` (decoupled weight decay, BalanceBenchmark's) or ``sgd``.
        lr: learning rate.
        lr_groups: learning-rate multipliers by parameter-name prefix, e.g.
            ``{"encoders.text": 0.1}``: the text encoder's parameters form their own optimizer
            group with ``lr * 0.1`` (the longest matching prefix wins; the rest keep ``lr``).
            A run config fills it from each encoder's ``lr_mult`` option
            (``model.options.encoder_options.text.lr_mult``), so the groups are recorded here.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        step_size: StepLR period in epochs (0 disables the scheduler).
        gamma: StepLR decay factor.
        amp: autocast precision: ``none``, ``bf16`` or ``fp16`` (fp16 only on CUDA).
        device: ``auto`` (CUDA if available), ``cpu``, ``cuda``, ``cuda:1``...
        progress: print one line per epoch (loss, val acc, each modality alone, valuation seconds)
            and draw progress bars when stderr is a terminal.
        data_on_device: move the whole (in-memory) dataset to the device once.
        num_workers: DataLoader worker processes (for lazily decoded sources; 0 = in the main
            process, right for in-memory data).
        pin_memory: pinned host memory for faster host-to-GPU copies (CUDA only).
        fold_batchnorm: evaluate and value with an inference copy of the model whose
            BatchNorm layers are folded into the preceding convolution
            (`mmcoop.models.fold_batchnorm`; same function, 1.4-2x faster avmnist
            inference on CPU, float rounding differs at the 1e-7 level).
        patience: early stopping: stop when the validation accuracy has not improved for
            this many epochs (0 = off, train all ``epochs``). The test split is still
            evaluated once, at the end, on the best-validation model.
        compile: run the training forward pass through ``torch.compile`` (worth it for large
            models on a GPU; the first epoch pays the compilation, tens of seconds).
        divergence_factor: stop with an error when a training loss exceeds this many times
            the run's first loss (see `mmcoop.train.divergence.DivergenceGuard`);
            ``null`` disables the check (a non-finite loss always stops training).
        loggers: where each epoch is also logged, by name (`mmcoop.integrations.loggers`):
            ``jsonl`` (``metrics.jsonl``, always written by a run), ``tensorboard``, ``wandb``
            (offline unless ``WANDB_MODE`` says otherwise), ``mlflow``, ``csv``; the optional
            ones need their extra (``pip install 'mmcoop[tensorboard]'``...).
        find_unused_parameters: DDP's unused-parameter detection under ``torchrun``: ``null``
            (default) = on only for a method that can skip an encoder in a training step
            (`mmcoop.methods.Method.skips_encoders`: ``unimodal``, ``duplicate``
            re-sampling, ``greedy``); ``true`` for a model with parameters its forward does
            not always use; ``false`` to force it off.
        count_flops: count the FLOPs of every training epoch (method hooks such as a
            valuation pass included) and of every evaluation pass with PyTorch's
            ``FlopCounterMode`` (``train_flops``, ``step_flops_per_unit``,
            ``train_flops_total``, ``val_flops_per_sample`` in ``metrics.jsonl``). The counter
            slows the Python side of each operation (about +25% per epoch for the avmnist
            CNNs on CPU), so ``seconds`` then include it.
    """

    epochs: int = 10
    batch_size: int = 64
    eval_batch_size: int = 128
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    lr_groups: dict[str, float] = field(default_factory=dict)
    momentum: float = 0.9
    weight_decay: float = 0.0
    step_size: int = 0
    gamma: float = 0.1
    amp: Literal["none", "bf16", "fp16"] = "none"
    device: str = "auto"
    progress: bool = True
    data_on_device: bool = True
    fold_batchnorm: bool = True
    num_workers: int = 0
    pin_memory: bool = False
    patience: int = 0
    compile: bool = False
    divergence_factor: float | None = 1e4
    loggers: list[str] = field(default_factory=lambda: ["jsonl"])
    find_unused_parameters: bool | None = None
    count_flops: bool = False

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size", "eval_batch_size"):
            if getattr(self, key) < 1:
                raise ConfigError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if self.epochs > MAX_EPOCHS:
            raise ConfigError(
                f"train.epochs must be at most {MAX_EPOCHS}, got {self.epochs}; give the number of epochs to train"
            )
        if self.patience < 0:
            raise ConfigError(f"train.patience must be >= 0 (0 = no early stopping), got {self.patience}")
        if self.num_workers < 0:
            raise ConfigError(f"train.num_workers must be >= 0, got {self.num_workers}")
        if self.step_size < 0:
            raise ConfigError(f"train.step_size must be >= 0 (0 disables the scheduler), got {self.step_size}")
        checks = {
            "lr": (self.lr > 0, "> 0"),
            "momentum": (self.momentum >= 0, ">= 0"),
            "weight_decay": (self.weight_decay >= 0, ">= 0"),
            "gamma": (self.gamma > 0, "> 0"),
        }
        for key, (ok, rule) in checks.items():
            value = getattr(self, key)
            if not (math.isfinite(value) and ok):
                raise ConfigError(f"train.{key} must be a finite number {rule}, got {value}")
        if not isinstance(self.lr_groups, dict):
            raise ConfigError(
                f"train.lr_groups must map parameter-name prefixes to multipliers, got {self.lr_groups!r}"
            )
        for key, mult in self.lr_groups.items():
            if isinstance(mult, bool) or not isinstance(mult, (int, float)) or not (math.isfinite(mult) and mult > 0):
                raise ConfigError(
                    f"train.lr_groups[{key!r}] must be a finite number > 0 (a multiplier of lr), got {mult!r}"
                )
        self.lr_groups = {str(k): float(v) for k, v in self.lr_groups.items()}
        if self.find_unused_parameters is not None and not isinstance(self.find_unused_parameters, bool):
            raise ConfigError(
                "train.find_unused_parameters must be true, false or null (automatic), got "
                f"{self.find_unused_parameters!r}"
            )
        f = self.divergence_factor
        if f is not None and not (math.isfinite(f) and f > 1):
            raise ConfigError(f"train.divergence_factor must be a number > 1, or null to disable the check, got {f}")
        check_device_name(self.device)
        if isinstance(self.loggers, str):  # --set train.loggers=tensorboard
            self.loggers = [self.loggers]
        if not isinstance(self.loggers, (list, tuple)) or not all(isinstance(x, str) for x in self.loggers):
            raise ConfigError(
                f"train.loggers must be a list of logger names, e.g. [jsonl, tensorboard]; got {self.loggers!r}"
            )
        if len(set(self.loggers)) != len(self.loggers):
            raise ConfigError(f"train.loggers names a logger twice: {list(self.loggers)}")
        self.loggers = list(self.loggers)


def check_device_name(name: str) -> None:
    """Raise `ConfigError` unless ``name`` is ``auto`` or a device string torch understands.

    Only the spelling is checked here (a config written on a GPU machine stays loadable
    on a CPU one); whether the device exists is checked when training starts.
    """
    if name == "auto":
        return
    import torch

    try:
        torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(
            f"train.device={name!r} is not a device; use auto, cpu, cuda, cuda:N (or another torch device type)"
        ) from None
