"""Training layer: the loop, metrics (sum/count, DDP-syncable), DDP helpers."""

from mmcoop.train.config import TrainConfig
from mmcoop.train.loop import Trainer, resolve_device
from mmcoop.train.metrics import MultimodalMeter, confusion_matrix, macro_f1

__all__ = ["TrainConfig", "Trainer", "resolve_device", "MultimodalMeter", "confusion_matrix", "macro_f1"]
