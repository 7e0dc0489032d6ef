"""Linear probes on frozen encoders: how good each modality's features became.

The encoders are frozen and run once over each split (`mmcoop.valuation.encode_dataset`,
the feature cache the valuation uses); on the cached features one multinomial logistic
regression (softmax classifier with an L2 penalty) is fitted per modality and one on the
concatenation of all modalities, on the training split, its penalty chosen on the validation
split; accuracy and macro-F1 are reported on the split asked for. The evaluation of
BalanceBenchmark (``balancemm/trainer/LinearProbe_trainer.py`` at GeWu-Lab/BalanceBenchmark
4c1482f trains a new linear head on frozen encoders), MMPareto, Diagnosing & Re-learning and
PMR reports such probes.

Fitting is in torch, full-batch L-BFGS in float64 on standardised features (mean and
standard deviation of the training split), from zeros, warm-started along the penalty path
(strongest first): a convex problem solved to tolerance, so the result is deterministic and
matches scikit-learn's ``LogisticRegression(C=1 / (l2 * N))`` on the same features (the
test's reference); torch keeps it on the model's device and adds no dependency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import Tensor

from mmcoop.diagnostics.feature_map import MAX_POINTS, tsne_maps
from mmcoop.errors import ConfigError, DataError
from mmcoop.train.metrics import macro_f1
from mmcoop.valuation import encode_dataset, unwrap_model
from mmcoop.valuation.valuator import model_device

if TYPE_CHECKING:  # pragma: no cover
    from mmcoop.data.base import DatasetSplits, MultimodalDataset

#: L2 penalties tried (strongest first; the objective is mean cross-entropy + l2/2 * ||W||^2).
DEFAULT_GRID: tuple[float, ...] = (1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 1e-5)
#: The name of the probe on all modalities' features side by side.
CONCAT = "concat"


@dataclass
class SoftmaxProbe:
    """A fitted linear classifier: logits ``= x @ weight + bias`` (``weight [d, C]``, ``bias [C]``)."""

    weight: Tensor
    bias: Tensor
    l2: float

    def logits(self, x: Tensor) -> Tensor:
        """Logits ``[N, C]`` of features ``[N, d]``."""
        return x.to(self.weight.dtype) @ self.weight + self.bias

    def predict(self, x: Tensor) -> Tensor:
        """int64 ``[N]``: the first class of largest logit."""
        return self.logits(x).argmax(1)


def fit_softmax(
    x: Tensor,
    y: Tensor,
    num_classes: int,
    l2: float,
    *,
    init: SoftmaxProbe | None = None,
    max_iter: int = 200,
    tol: float = 1e-6,
) -> SoftmaxProbe:
    """Multinomial logistic regression by full-batch L-BFGS (float64).

    Minimises ``mean_i CE(x_i @ W + b, y_i) + l2 / 2 * ||W||²`` (the bias unpenalised), the
    objective of scikit-learn's ``LogisticRegression(C=1 / (l2 * N))`` divided by ``C * N``.

    Args:
        x: features ``[N, d]``.
        y: int64 labels ``[N]`` in ``[0, C)``.
        num_classes: ``C``.
        l2: penalty (``>= 0``).
        init: a probe to start from (warm start); zeros otherwise.
        max_iter: L-BFGS iterations at most.
        tol: stop when the largest gradient entry is below this.

    Returns:
        The fitted `SoftmaxProbe` (float64, on ``x``'s device).
    """
    if l2 < 0:
        raise ConfigError(f"l2 must be >= 0, got {l2}")
    x = x.double()
    y = y.long().to(x.device)
    d = x.shape[1]
    w = torch.zeros(d, num_classes, dtype=torch.float64, device=x.device)
    b = torch.zeros(num_classes, dtype=torch.float64, device=x.device)
    if init is not None:
        w.copy_(init.weight)
        b.copy_(init.bias)
    w.requires_grad_(True)
    b.requires_grad_(True)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-10,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return SoftmaxProbe(w.detach(), b.detach(), float(l2))


def standardize(train: Tensor, *others: Tensor) -> list[Tensor]:
    """``train`` and ``others`` (float64) minus the training mean, over the training std (1 where it is 0)."""
    train = train.double()
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True, unbiased=False) if train.shape[0] > 1 else torch.ones_like(mean)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return [(t.double().to(train.device) - mean) / std for t in (train, *others)]


def _accuracy(pred: Tensor, y: Tensor) -> float:
    return float((pred == y.to(pred.device)).double().mean()) if y.numel() else float("nan")


def probe_features(
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    num_classes: int,
    grid: Sequence[float] = DEFAULT_GRID,
    max_iter: int = 200,
) -> dict[str, Any]:
    """Fit on ``train``, choose the penalty on ``val`` (accuracy; ties: the stronger penalty), score ``test``.

    Args:
        train, val, test: ``(features [N, d], labels [N])`` each (standardised here with
            the training statistics).
        num_classes: ``C``.
        grid: penalties to try, strongest first.
        max_iter: L-BFGS iterations per penalty.

    Returns:
        ``{"l2", "train_acc", "val_acc", "acc", "macro_f1", "dim"}`` for the chosen penalty
            (``acc``/``macro_f1`` on ``test``).
    """
    if not grid:
        raise ConfigError("the probe's penalty grid is empty; give at least one l2 value")
    if train[0].shape[0] == 0 or val[0].shape[0] == 0:
        raise DataError("a linear probe needs samples in the training and the validation split")
    xtr, xva, xte = standardize(train[0], val[0], test[0])
    best: tuple[float, SoftmaxProbe] | None = None
    prev: SoftmaxProbe | None = None
    for l2 in sorted(grid, reverse=True):
        prev = fit_softmax(xtr, train[1], num_classes, l2, init=prev, max_iter=max_iter)
        acc = _accuracy(prev.predict(xva), val[1])
        if best is None or acc > best[0]:
            best = (acc, prev)
    assert best is not None
    val_acc, probe = best
    pred = probe.predict(xte)
    return {
        "l2": probe.l2,
        "dim": int(xtr.shape[1]),
        "train_acc": _accuracy(probe.predict(xtr), train[1]),
        "val_acc": val_acc,
        "acc": _accuracy(pred, test[1]),
        "macro_f1": macro_f1(pred.cpu(), test[1].cpu(), num_classes) if test[1].numel() else float("nan"),
    }


def modality_features(model: Any, feats: Tensor) -> dict[str, Tensor]:
    """``modality -> [N, d_k]`` from features ``[N, M, D]`` (each cut to its width when the model
    says it: ``feature_dims``), plus `CONCAT` ``[N, sum d_k]``."""
    widths = getattr(model, "feature_dims", None)
    out: dict[str, Tensor] = {}
    for k, m in enumerate(model.modalities):
        w = widths[k] if widths and widths[k] is not None else feats.shape[2]
        out[m] = feats[:, k, :w]
    out[CONCAT] = torch.cat(list(out.values()), 1)
    return out


def linear_probe(
    model: Any,
    splits: "DatasetSplits",
    split: str = "test",
    *,
    batch_size: int = 256,
    grid: Sequence[float] = DEFAULT_GRID,
    max_train: int | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
    max_iter: int = 200,
    feature_map: bool = False,
    map_points: int = MAX_POINTS,
) -> dict[str, Any]:
    """Linear probe of each modality's frozen features, and of all of them concatenated.

    Args:
        model: the trained classifier (not changed: eval mode, no gradients to it).
        splits: its data; fitted on ``train`` (eval transforms), penalty chosen on ``val``.
        split: where accuracy and macro-F1 are reported (``train``, ``val`` or ``test``).
        batch_size: samples per encoder pass.
        grid: L2 penalties tried (see `DEFAULT_GRID`).
        max_train: fit on a seeded random subset of this many training samples (``None``: all).
        seed: seed of that subset.
        device: where to encode and fit (default: the model's device).
        max_iter: L-BFGS iterations per penalty.

    Returns:
        ``{"split", "seed", "grid", "n_train", "n_val", "n_eval", "num_classes", "probes":
            {modality or "concat": {"l2", "dim", "train_acc", "val_acc", "acc", "macro_f1"}}}``.

    Example:
        >>> out = linear_probe(model, splits, "test")  # doctest: +SKIP
        >>> probes = out["probes"]  # modality or "concat" -> its scores
        >>> sorted(probes)  # ['audio', 'concat', 'visual']
    """
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split must be train, val or test, got {split!r}")
    model = unwrap_model(model)
    if max_train is not None and max_train < 1:
        raise ConfigError(f"max_train must be >= 1, got {max_train}")

    rows: dict[int, Tensor] = {}  # id(features) -> their storage rows

    def encode(ds: "MultimodalDataset") -> tuple[dict[str, Tensor], Tensor]:
        f, y, index = encode_dataset(model, ds.train_mode(False), batch_size=batch_size, device=device)
        feats = modality_features(model, f)
        rows[id(feats)] = index
        return feats, y

    train_ds = splits.train
    if max_train is not None and len(train_ds) > max_train:
        g = torch.Generator().manual_seed(int(seed))
        pick = torch.randperm(len(train_ds), generator=g)[:max_train].sort().values
        train_ds = train_ds.view(train_ds.rows[pick.to(train_ds.rows.device)])
    ftr, ytr = encode(train_ds)
    fva, yva = encode(splits.val)
    if split == "val":
        fte, yte = fva, yva
    elif split == "train" and train_ds is splits.train:
        fte, yte = ftr, ytr
    else:
        fte, yte = encode(splits.split(split))
    c = splits.num_classes
    dev = torch.device(device) if device is not None else model_device(model)
    probes = {
        name: probe_features(
            (ftr[name].to(dev), ytr), (fva[name].to(dev), yva), (fte[name].to(dev), yte), c, grid, max_iter
        )
        for name in ftr
    }
    out: dict[str, Any] = {
        "split": split,
        "seed": int(seed),
        "grid": [float(g) for g in sorted(grid, reverse=True)],
        "n_train": int(ytr.numel()),
        "n_val": int(yva.numel()),
        "n_eval": int(yte.numel()),
        "num_classes": int(c),
        "probes": probes,
    }
    if feature_map:
        maps = {name: f for name, f in fte.items() if name != CONCAT}
        out["map"] = tsne_maps(maps, yte, rows[id(fte)], max_points=map_points, seed=seed)
    return out
