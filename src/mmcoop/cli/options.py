"""Checks of command-line options shared by several commands (one message each, naming the option)."""

from __future__ import annotations

from mmcoop.errors import MMCoopError


def check_run_options(batch_size: int, split: str, checkpoint: str) -> None:
    """``--batch-size``, ``--split`` and ``--checkpoint`` of the commands that read a run's model
    (``value``, ``probe``).

    Raises:
        MMCoopError: naming the option and the valid values.
    """
    if batch_size < 1:
        raise MMCoopError(f"--batch-size must be >= 1, got {batch_size}")
    if split not in ("train", "val", "test"):
        raise MMCoopError(f"--split must be train, val or test, got {split!r}")
    if checkpoint not in ("best", "last"):
        raise MMCoopError(f"--checkpoint must be best or last, got {checkpoint!r}")
