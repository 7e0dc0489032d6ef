"""Adapters to where users train and watch runs: loggers (TensorBoard, W&B, MLflow, CSV) and
Lightning callbacks (`mmcoop.integrations.lightning`, imported only on request: it needs
``pip install 'mmcoop[lightning]'``)."""

from mmcoop.integrations.loggers import LOGGERS, Logger, build_loggers, check_loggers, register_logger, scalars

__all__ = ["LOGGERS", "Logger", "build_loggers", "check_loggers", "register_logger", "scalars"]
