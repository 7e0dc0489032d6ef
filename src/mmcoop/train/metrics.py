"""Classification metrics kept as sums and counts (sync under DDP, torchmetrics style).

`MultimodalMeter` accumulates a confusion matrix of the fused prediction and
the correct counts of every single modality alone (via the keep-mask), so accuracy,
macro-F1 and unimodal accuracies are exact over the split, not averages of batch
averages. From the same evaluation pass it keeps the sums behind the imbalance
measures (docs/guides/diagnostics.md): each modality's summed Shapley value
(``phi_<m>``, ``share_<m>``), its summed true-class probability alone (OGM-GE's
discrepancy ratio ``ratio_<m>``), and the best-minus-worst unimodal accuracy ``uni_gap``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mmcoop.methods.functional._common import one_vs_others_ratio
from mmcoop.train.distributed import all_reduce_sum
from mmcoop.utils.metric_keys import PHI, RATIO, SHARE, UNI_GAP, modality_key

_SUMS = ("confusion", "uni_correct", "loss_sum", "count", "true_prob_sum", "phi_sum", "phi_count")


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
        self.true_prob_sum = torch.zeros(m, dtype=torch.float64)  # sum_i softmax(unimodal logits)_i[y_i]
        self.phi_sum = torch.zeros(m, dtype=torch.float64)  # sum_i phi_i,m
        self.phi_count = torch.zeros((), dtype=torch.long)  # samples with Shapley values
        self._device: torch.device | None = None

    def _to(self, device: torch.device) -> None:
        if self._device != device:
            for k in _SUMS:
                setattr(self, k, getattr(self, k).to(device))
            self._device = device

    @torch.no_grad()
    def update(
        self,
        logits: Tensor,
        labels: Tensor,
        unimodal_logits: Tensor | None = None,
        loss_sum: Tensor | float = 0.0,
        phi: Tensor | None = None,
    ) -> None:
        """Add a batch: fused ``logits [B, C]``, ``labels [B]``, optional ``unimodal_logits [B, M, C]``,
        the batch's summed loss and optional per-sample Shapley values ``phi [B, M]``."""
        self._to(logits.device)
        self.confusion += confusion_matrix(logits.argmax(-1), labels, self.num_classes)
        if unimodal_logits is not None:
            self.uni_correct += (unimodal_logits.argmax(-1) == labels.unsqueeze(1)).sum(0)
            probs = unimodal_logits.double().softmax(-1)  # [B, M, C]
            index = labels.long().view(-1, 1, 1).expand(-1, probs.shape[1], 1)
            self.true_prob_sum += probs.gather(-1, index).squeeze(-1).sum(0)
        if phi is not None:
            self.phi_sum += phi.double().sum(0)
            self.phi_count += phi.shape[0]
        self.loss_sum += torch.as_tensor(loss_sum, dtype=torch.float64, device=logits.device)
        self.count += labels.shape[0]

    def sync(self) -> None:
        """Sum the states over DDP ranks."""
        for k in _SUMS:
            all_reduce_sum(getattr(self, k))

    def compute(self) -> dict[str, float]:
        """``acc``, ``f1`` (macro), ``loss`` (mean), ``acc_<modality>`` for each modality, and the
        imbalance measures: ``uni_gap`` (best minus worst ``acc_<m>``, ``M >= 2``), ``ratio_<m>``
        (OGM-GE's discrepancy ratio, ``M >= 2``, when unimodal logits were given) and, when
        Shapley values were given, ``phi_<m>`` (mean) and ``share_<m>`` (the modality's part of
        the summed Shapley values; NaN when they sum to 0)."""
        n = max(int(self.count), 1)
        out = {
            "acc": float(self.confusion.diag().sum()) / n,
            "f1": macro_f1_from_confusion(self.confusion.cpu()),
            "loss": float(self.loss_sum) / n,
        }
        for k, name in enumerate(self.modalities):
            out[f"acc_{name}"] = float(self.uni_correct[k]) / n
        m = len(self.modalities)
        if m >= 2 and int(self.count) > 0:
            uni = [out[f"acc_{name}"] for name in self.modalities]
            out[UNI_GAP] = max(uni) - min(uni)
            if float(self.true_prob_sum.sum()) > 0:
                ratio = one_vs_others_ratio(self.true_prob_sum.cpu().double())
                out.update({modality_key(RATIO, name): float(ratio[k]) for k, name in enumerate(self.modalities)})
        if int(self.phi_count) > 0:
            total = float(self.phi_sum.sum())
            for k, name in enumerate(self.modalities):
                out[modality_key(PHI, name)] = float(self.phi_sum[k]) / int(self.phi_count)
                out[modality_key(SHARE, name)] = float(self.phi_sum[k]) / total if total != 0 else math.nan
        return out
