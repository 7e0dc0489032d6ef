"""Classification metrics kept as sums and counts (sync under DDP, torchmetrics style).

:class:`MultimodalMeter` accumulates a confusion matrix of the fused prediction and
the correct counts of every single modality alone (via the keep-mask), so accuracy,
macro-F1 and unimodal accuracies are exact over the split, not averages of batch
averages.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mmcoop.train.distributed import all_reduce_sum


def confusion_matrix(preds: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``[C, C]`` int64 counts, rows = true class, columns = prediction."""
    idx = target.long() * num_classes + preds.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def macro_f1_from_confusion(cm: Tensor) -> float:
    """Macro-averaged F1 over classes that occur (as true or predicted) in ``cm``."""
    cm = cm.double()
    tp = cm.diag()
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    denom = 2 * tp + fp + fn
    present = denom > 0
    if not bool(present.any()):
        return 0.0
    return float((2 * tp[present] / denom[present]).mean())


def macro_f1(preds: Tensor, target: Tensor, num_classes: int) -> float:
    """Functional macro-F1 of predictions ``[N]`` against ``target [N]``."""
    return macro_f1_from_confusion(confusion_matrix(preds, target, num_classes))


class MultimodalMeter:
    """Accumulates fused and per-modality results.

    Args:
        num_classes: ``C``.
        modalities: names of the ``M`` modalities.

    Example:
        >>> meter = MultimodalMeter(10, ["audio", "visual"])
        >>> meter.update(fused_logits, unimodal_logits, labels, loss_sum)  # [B,C], [B,M,C], [B]
        >>> meter.compute()["acc"]
    """

    def __init__(self, num_classes: int, modalities: list[str]) -> None:
        self.num_classes = num_classes
        self.modalities = list(modalities)
        self.reset()

    def reset(self) -> None:
        c, m = self.num_classes, len(self.modalities)
        self.confusion = torch.zeros(c, c, dtype=torch.long)
        self.uni_correct = torch.zeros(m, dtype=torch.long)
        self.loss_sum = torch.zeros((), dtype=torch.float64)
        self.count = torch.zeros((), dtype=torch.long)
        self._device: torch.device | None = None

    def _to(self, device: torch.device) -> None:
        if self._device != device:
            for k in ("confusion", "uni_correct", "loss_sum", "count"):
                setattr(self, k, getattr(self, k).to(device))
            self._device = device

    @torch.no_grad()
    def update(
        self, logits: Tensor, labels: Tensor, unimodal_logits: Tensor | None = None, loss_sum: Tensor | float = 0.0
    ) -> None:
        """Add a batch: fused ``logits [B, C]``, ``labels [B]``, optional ``unimodal_logits [B, M, C]``
        and the batch's summed loss."""
        self._to(logits.device)
        self.confusion += confusion_matrix(logits.argmax(-1), labels, self.num_classes)
        if unimodal_logits is not None:
            self.uni_correct += (unimodal_logits.argmax(-1) == labels.unsqueeze(1)).sum(0)
        self.loss_sum += torch.as_tensor(loss_sum, dtype=torch.float64, device=logits.device)
        self.count += labels.shape[0]

    def sync(self) -> None:
        """Sum the states over DDP ranks."""
        for k in ("confusion", "uni_correct", "loss_sum", "count"):
            all_reduce_sum(getattr(self, k))

    def compute(self) -> dict[str, float]:
        """``acc``, ``f1`` (macro), ``loss`` (mean) and ``acc_<modality>`` for each modality."""
        n = max(int(self.count), 1)
        out = {
            "acc": float(self.confusion.diag().sum()) / n,
            "f1": macro_f1_from_confusion(self.confusion.cpu()),
            "loss": float(self.loss_sum) / n,
        }
        for k, name in enumerate(self.modalities):
            out[f"acc_{name}"] = float(self.uni_correct[k]) / n
        return out
