"""Events of the training loop and the callbacks that receive them.

`Trainer` (and `mmcoop.experiment.run_experiment`) take
``callbacks=[...]``: any objects with some of these methods (subclass `Callback`
to get no-op defaults). Per run and per epoch, in this order::

    on_fit_start(trainer)                          once per fit() call (also when resuming)
    ┌ on_epoch_start(trainer, epoch)               epoch: 0-based index of the epoch starting
    │ after_valuation(trainer, table, plan)        when the method valued data this epoch:
    │                                              a ValuationTable and a ResamplingPlan (or None)
    │ after_evaluation(trainer, split, metrics)    split "val": acc, f1, loss, acc_<modality>
    └ on_epoch_end(trainer, record)                the epoch's metrics record (what metrics.jsonl gets)
    on_fit_end(trainer)                            once, after the last epoch
    after_evaluation(trainer, "test", metrics)     when the caller evaluates the test split

Under DDP every rank receives every event; write files from rank 0 only
(`mmcoop.train.distributed.is_main`). Loggers (`mmcoop.integrations.loggers`)
and the console line (`ConsoleLine`) are callbacks.

Example:
    >>> class PrintContribution(Callback):
    ...     def after_valuation(self, trainer, table, plan):
    ...         units = 0 if plan is None else len(plan)  # plan: None when the method values without planning
    ...         print(trainer.epoch, table.mean_contribution(), units)
    >>> Trainer(model, method, splits, config, callbacks=[PrintContribution()]).fit()
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable, Iterable, TextIO

EVENTS: tuple[str, ...] = (
    "on_fit_start",
    "on_epoch_start",
    "after_valuation",
    "after_evaluation",
    "on_epoch_end",
    "on_fit_end",
)


class Callback:
    """Base class of loop callbacks: every event is a no-op (see the module docstring for the order)."""

    def on_fit_start(self, trainer: Any) -> None:
        """Training starts (or resumes at ``trainer.epoch``)."""

    def on_epoch_start(self, trainer: Any, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) starts; the model is in train mode."""

    def after_valuation(self, trainer: Any, table: Any, plan: Any) -> None:
        """The method valued data: ``table`` (`ValuationTable`), ``plan``
        (`ResamplingPlan` or ``None``)."""

    def after_evaluation(self, trainer: Any, split: str, metrics: dict[str, float]) -> None:
        """A split was evaluated: ``metrics`` has ``acc``, ``f1``, ``loss`` and ``acc_<modality>``."""

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """The epoch finished; ``record`` is its metrics record (``epoch`` is 1-based there)."""

    def on_fit_end(self, trainer: Any) -> None:
        """Training finished (all epochs, or stopped early)."""


class EpochEndFunction(Callback):
    """Adapter of a plain function ``fn(record, trainer)`` called at every epoch end."""

    def __init__(self, fn: Callable[[dict[str, Any], Any], None]) -> None:
        self.fn = fn

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        self.fn(record, trainer)


class CallbackList:
    """Dispatches each event to every callback in order (callbacks may implement any subset).

    Args:
        callbacks: the callbacks.
        trainer: passed as the first argument of every event.
    """

    def __init__(self, callbacks: Iterable[Any] | None, trainer: Any) -> None:
        self.callbacks = list(callbacks or [])
        self.trainer = trainer

    def append(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def _emit(self, event: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, event, None)
            if fn is not None:
                fn(self.trainer, *args)

    def on_fit_start(self) -> None:
        self._emit("on_fit_start")

    def on_epoch_start(self, epoch: int) -> None:
        self._emit("on_epoch_start", epoch)

    def after_valuation(self, table: Any, plan: Any = None) -> None:
        self._emit("after_valuation", table, plan)

    def after_evaluation(self, split: str, metrics: dict[str, float]) -> None:
        self._emit("after_evaluation", split, metrics)

    def on_epoch_end(self, record: dict[str, Any]) -> None:
        self._emit("on_epoch_end", record)

    def on_fit_end(self) -> None:
        self._emit("on_fit_end")


def _fmt(x: Any) -> str:
    return "nan" if not isinstance(x, (int, float)) or math.isnan(x) else f"{x:.4f}"


class ConsoleLine(Callback):
    """One line per epoch on ``stream`` (default stdout), e.g.::

        epoch 3/10  loss 0.5123  val acc 0.8710  alone: audio 0.6120 visual 0.8010  valuation 1.2s  4.3s

    Args:
        modalities: the modalities whose validation accuracy alone is shown (default: every
            ``val_acc_<modality>`` of the record).
        stream: where to write (default ``sys.stdout`` at call time).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    @staticmethod
    def format(record: dict[str, Any], epochs: int | None = None) -> str:
        """The line for one metrics ``record``."""
        total = f"/{epochs}" if epochs else ""
        parts = [
            f"epoch {record.get('epoch', '?')}{total}",
            f"loss {_fmt(record.get('train_loss'))}",
            f"val acc {_fmt(record.get('val_acc'))}",
        ]
        alone = [(k[len("val_acc_") :], v) for k, v in record.items() if k.startswith("val_acc_")]
        if alone:
            parts.append("alone: " + " ".join(f"{m} {_fmt(v)}" for m, v in alone))
        if record.get("time_valuation_s") is not None:
            parts.append(f"valuation {float(record['time_valuation_s']):.1f}s")
        if record.get("seconds") is not None:
            parts.append(f"{float(record['seconds']):.1f}s")
        return "  ".join(parts)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        from mmcoop.train.distributed import is_main

        if not is_main():
            return
        epochs = getattr(getattr(trainer, "config", None), "epochs", None)
        stream = self.stream or sys.stdout
        print(self.format(record, epochs), file=stream, flush=True)


__all__ = ["EVENTS", "Callback", "CallbackList", "ConsoleLine", "EpochEndFunction"]
