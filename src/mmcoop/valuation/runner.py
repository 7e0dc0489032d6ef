"""The dataset runner of valuation: every sample of a split through the per-batch core
(`ModalityValuator`), with sharding over DDP ranks,
a progress bar, and the result as a `ValuationTable`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

import torch
from torch import Tensor

from mmcoop.data.finite import non_finite
from mmcoop.errors import DataError
from mmcoop.models.folding import inference_model
from mmcoop.utils.dist import all_gather_objects, all_gather_rows, rank, world_size
from mmcoop.utils.modes import eval_mode
from mmcoop.utils.progress import progress_bar
from mmcoop.valuation.table import ValuationTable
from mmcoop.valuation.valuator import (
    ModalityValuator,
    encode_batches,
    mean_features_of,
    model_device,
    unwrap_model,
)
from mmcoop.valuation.values import ValueFunction

if TYPE_CHECKING:  # pragma: no cover
    from torch.utils.data import Dataset

    from mmcoop.data.base import MultimodalDataset
    from mmcoop.models.protocol import MultimodalModel

_BATCH_KEYS = ("inputs", "label", "index", "keep")


def _gather_shards(parts: dict[str, Tensor]) -> dict[str, Tensor]:
    """All ranks' interleaved shares (rank r holds positions r, r+W, ...) -> the whole, in position order.

    A rank with no rows may lack a key or have a placeholder shape; the layout of a
    rank that has rows is used for it, so every rank makes the same collective calls.
    """
    layouts = all_gather_objects({k: (v.shape[0], tuple(v.shape[1:]), v.dtype) for k, v in parts.items()})
    spec: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
    for with_rows in (True, False):  # the first rank that has rows decides; else any rank
        for layout in layouts:
            for key, (n, shape, dtype) in layout.items():  # type: ignore[union-attr]
                if key not in spec and (n > 0) == with_rows:
                    spec[key] = (shape, dtype)
    w = world_size()
    dev = next(iter(parts.values())).device if parts else torch.device("cpu")
    out: dict[str, Tensor] = {}
    for key in sorted(spec):
        shape, dtype = spec[key]
        local = parts.get(key)
        if local is None or local.shape[0] == 0:
            local = torch.zeros((0, *shape), dtype=dtype, device=dev)
        whole = all_gather_rows(local)
        n = whole.shape[0]
        order = torch.cat([torch.arange(r, n, w) for r in range(w)]).to(whole.device)
        out[key] = torch.empty_like(whole).index_copy_(0, order, whole)
    return out


def mean_features(
    model: "MultimodalModel",
    dataset: "MultimodalDataset",
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> Tensor:
    """Mean feature per modality over a dataset (the ``fill`` of ``removal="mean"``).

    Encodes every row of the view with all modalities (the view's keep-masks are
    ignored), in eval mode without gradients; pass the plain training split.

    Args:
        model: the classifier.
        dataset: a `MultimodalDataset` (usually the training split).
        batch_size: samples per encoder pass.
        device: where to encode (default: the model's device).

    Returns:
        float32 ``[M, d]`` on ``device``.
    """
    from mmcoop.data.base import make_loader

    return mean_features_of(unwrap_model(model), make_loader(dataset, batch_size), device)


def encode_dataset(
    model: "MultimodalModel",
    dataset: "MultimodalDataset",
    *,
    batch_size: int = 256,
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Every row's features, once (the cache a linear probe or a feature map is fitted on).

    One encoder pass in eval mode without gradients, all modalities kept (the view's
    keep-masks are ignored), in loader order.

    Args:
        model: the classifier.
        dataset: a `MultimodalDataset`.
        batch_size: samples per encoder pass.
        device: where to encode (default: the model's device).

    Returns:
        ``(features, labels, index)`` on the CPU: float32 ``[N, M, D]`` (modality ``k`` in
            ``[:, k, :d_k]``), int64 ``[N]`` and the int64 storage rows ``[N]``.
    """
    from mmcoop.data.base import make_loader

    feats: list[Tensor] = []
    labels: list[Tensor] = []
    index: list[Tensor] = []

    def keep(batch: dict[str, Any], f: Tensor) -> None:
        feats.append(f.float().cpu())
        labels.append(batch["label"].cpu())
        index.append(batch["index"].cpu())

    encode_batches(unwrap_model(model), make_loader(dataset, batch_size), device, keep)
    if not feats:
        m = len(model.modalities)
        return torch.zeros(0, m, 0), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(feats), torch.cat(labels).long(), torch.cat(index).long()


def _check_finite_inputs(dataset: Any, index: Tensor, finite: Tensor, split: str | None, ids: list[str]) -> None:
    """Raise `DataError` naming the split, modality and first sample when non-finite features come from
    NaN/inf inputs (a lazy source is checked only on a sample of rows when it loads)."""
    bad = ~finite.bool()
    if not bool(bad.any()):
        return
    hit = non_finite(dataset, index[bad])
    if hit is not None:
        modality, rows = hit
        raise DataError(
            f"{len(rows)} {split or 'valued'} sample(s) have NaN/inf {modality!r} inputs (first: sample "
            f"{ids[int(rows.min())]!r}); their Shapley values would be meaningless: clean or drop them at the source"
        )


def valuate_dataset(
    model: "MultimodalModel",
    dataset: "MultimodalDataset | Dataset",
    *,
    batch_size: int = 256,
    value: str | ValueFunction = "paper",
    empty: str | None = None,
    removal: str = "zero",
    fill: Tensor | None = None,
    device: torch.device | str | None = None,
    rows: Tensor | None = None,
    progress: bool = False,
    split: str | None = None,
    method: str = "auto",
    max_exact: int = 12,
    num_permutations: int = 128,
    generator: torch.Generator | None = None,
    memory_budget: int = 1 << 30,
    distributed: bool = False,
    fold_bn: bool = True,
) -> ValuationTable:
    """Value every sample of a dataset (eval mode, no augmentation, no gradients).

    Args:
        model: the classifier (its train/eval modes are restored afterwards).
        dataset: a `MultimodalDataset`; every row of the view is
            valued with all modalities (keep-masks of the view are ignored). A plain map-style
            ``Dataset`` of ``{"inputs": {modality: Tensor}, "label": int}`` items is wrapped by
            `mmcoop.data.as_multimodal` (which reads every item's label once; wrap it yourself
            once when valuing the same dataset again and again).
        batch_size: samples per encoder pass.
        value, empty, removal, fill, method, max_exact, num_permutations, generator, memory_budget:
            see `ModalityValuator`. ``removal="mean"`` needs ``fill``
            (`mean_features` of the training split).
        device: where to compute (default: the model's device).
        rows: int64 storage rows to value (e.g. the random subset Z of the
            modality-level method); default: the dataset's rows.
        progress: show a progress bar (tqdm, on stderr, only when it is a terminal).
        split: split name recorded in the table.
        distributed: inside a ``torch.distributed`` process group of ``W > 1`` ranks,
            rank ``r`` values rows ``r, r+W, ...`` only and the shares are gathered, so
            every rank returns the whole table (same rows, same order as in one
            process) for ``1/W`` of the work. Every rank must call it. No-op otherwise.
        fold_bn: value with an inference copy in which BatchNorm is folded into the
            preceding convolution (`mmcoop.models.fold_batchnorm`): the same
            function with fewer passes over the activations (about 2x faster for the
            avmnist CNNs on CPU); float rounding differs from the unfolded model at the
            1e-7 level. ``False`` runs ``model`` itself.

    Returns:
        `ValuationTable` on the CPU, one row per valued sample, in loader order,
            with each sample's stable id (``dataset.sample_ids``).
    """
    from mmcoop.data.base import batch_to, make_loader
    from mmcoop.data.dict_source import as_multimodal

    dataset = as_multimodal(dataset)
    model = unwrap_model(model)
    model = inference_model(model, fold_bn)
    valuator = ModalityValuator(
        model,
        value,
        empty,
        removal,
        fill,
        method=method,
        max_exact=max_exact,
        num_permutations=num_permutations,
        generator=generator,
        memory_budget=memory_budget,
    )
    dev = torch.device(device) if device is not None else model_device(model)
    view = dataset if rows is None else dataset.view(torch.as_tensor(rows, dtype=torch.long).to(dataset.rows.device))
    shard = distributed and world_size() > 1
    if shard:
        view = dataset.view(view.rows[rank() :: world_size()])
    loader: Iterable[dict[str, Any]] = make_loader(view, batch_size)
    loader = progress_bar(loader, f"valuating {split or 'samples'}", enabled=progress)

    parts: dict[str, list[Tensor]] = {
        "index": [],
        "label": [],
        "phi": [],
        "values": [],
        "preds": [],
        "stderr": [],
        "finite": [],  # per sample: its features are finite (NaN/inf inputs give wrong, not NaN, values)
    }
    extras: dict[str, list[Tensor]] = {}
    masks: Tensor | None = None
    result_method = valuator.resolved_method()
    # eval mode and no_grad for the whole loop (attribute_features re-enters them: a flag loop).
    with eval_mode(model), torch.no_grad():
        for batch in loader:
            batch = batch_to(batch, dev)
            feats = model.encode(batch["inputs"])
            parts["finite"].append(torch.isfinite(feats.flatten(1)).all(1))
            res = valuator.attribute_features(feats, batch["label"])
            masks, result_method = res.masks, res.method
            parts["index"].append(batch["index"])
            parts["label"].append(batch["label"])
            parts["phi"].append(res.phi)
            parts["values"].append(res.values)
            parts["preds"].append(res.coalition_preds)
            if res.stderr is not None:
                parts["stderr"].append(res.stderr)
            for key, val in batch.items():
                if key not in _BATCH_KEYS and isinstance(val, Tensor):
                    extras.setdefault(key, []).append(val)

    if masks is None:  # no rows: an empty table with the right shapes
        masks = valuator.coalitions()
        m, k = masks.shape[1], masks.shape[0]
        parts.update(
            index=[torch.zeros(0, dtype=torch.long)],
            label=[torch.zeros(0, dtype=torch.long)],
            phi=[torch.zeros(0, m)],
            values=[torch.zeros(0, k)],
            preds=[torch.zeros(0, k, dtype=torch.long)],
        )
    out = {key: torch.cat(v) for key, v in parts.items() if v}
    extra = {key: torch.cat(v) for key, v in extras.items()}
    if shard:
        out, extra = _gather_shards(out), _gather_shards(extra)
    out = {key: v.cpu() for key, v in out.items()}
    all_ids = dataset.sample_ids  # stable ids of the source's samples (clip id, file path, user id, index)
    if "finite" in out:
        _check_finite_inputs(dataset, out["index"], out.pop("finite"), split, all_ids)
    ids = [all_ids[i] for i in out["index"].tolist()]
    return ValuationTable(
        modalities=list(model.modalities),
        index=out["index"],
        label=out["label"],
        phi=out["phi"],
        values=out["values"],
        coalition_preds=out["preds"],
        masks=masks.cpu(),
        extras={key: v.cpu() for key, v in extra.items()},
        stderr=out.get("stderr"),
        value=valuator.value_name,
        empty=valuator.empty,
        removal=removal,
        split=split,
        method=result_method,
        ids=ids,
    )
