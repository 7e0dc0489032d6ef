"""Any ``torch.utils.data.Dataset`` of dict items as a source.

Items look like ``{"inputs": {modality: Tensor or array}, "label": int}`` (the
convention of the run config's ``data.target``). Specs come from the first item
(kind by number of dimensions: vector ``[D]``, sequence ``[T, D]``, image
``[C, H, W]``, frames ``[T, C, H, W]``; say ``kinds={"audio": "spectrogram"}`` for a
spectrogram). Every fetched item is checked (dict layout, modalities, shapes,
label range); a bad one raises one `DataError` naming the item
index and what to do.

Train vs eval transforms: mmcoop never switches a mode on your dataset. Either give
two datasets holding the same samples in the same order, ``dataset`` (with your
training augmentation) and ``eval_dataset`` (without), or one dataset plus batched
``transforms={"train": fn, "eval": fn}`` (each ``fn({name: Tensor[B, ...]}) -> same``),
applied after the items are stacked; both can be combined. Valuation and evaluation
always fetch in eval mode.

Labels are needed up front (for class counts, stratification, valuation tables).
They are taken, in order, from ``labels=``, a ``dataset.labels`` / ``dataset.targets``
attribute (torchvision's convention), or else by reading every item once at
construction (this decodes the whole dataset: give ``labels`` for big data). Items
read later must carry the same label.

Sample ids (`sample_ids`): ``ids=``, else an ``"id"`` key of
the items (``{"inputs": ..., "label": 3, "id": "clip_0042"}``; read with the labels when
those are read from the items, else once when the ids are first asked for, which reads
every item: give ``ids=`` for big data), else the item index.

A ``"degraded"`` key of the items (when item 0 has one, every item needs it) names the modality
degraded in that sample (its name, its index in modality order, or ``None`` / ``-1`` for none); it
reaches every batch as the int64 ``degraded`` extra ``[B]`` and so the valuation tables' column
``degraded_modality`` (what debiased data records).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset

from mmcoop.data.base import MultimodalDataset
from mmcoop.data.items import as_labels, as_tensor, check_label, check_modalities, resolve_specs, stack_samples
from mmcoop.data.protocol import ModalitySpec, Transforms, check_ids
from mmcoop.errors import DataError, MMCoopError

LAYOUT = '{"inputs": {modality: Tensor}, "label": int}'


class DictDatasetSource:
    """A ``Dataset`` whose items are ``{"inputs": {name: Tensor}, "label": int}`` (see the module docstring).

    Args:
        dataset: the dataset (items used in training mode, and in eval mode unless
            ``eval_dataset`` is given).
        num_classes: number of classes (default: the dataset's ``num_classes`` attribute, else the length of
            its ``classes`` list (torchvision's convention), else ``max(label) + 1``).
        specs: explicit specs (default: inferred from item 0).
        modalities: which input keys to use, in order (default: item 0's keys, in order).
        kinds: modality -> kind overriding the guess by ndim.
        labels: every item's label ``[N]`` (default: see the module docstring).
        eval_dataset: the same samples with eval-time processing (same length and labels).
        transforms: batched train/eval transforms applied after stacking.
        name: how messages name the dataset (default: its class name).
        ids: stable id per item ``[N]`` (default: the items' ``"id"`` key, else the index).

    Raises:
        DataError: an empty dataset, a bad item 0, labels out of range, ``eval_dataset``
            of another length.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_classes: int | None = None,
        specs: Sequence[ModalitySpec] | None = None,
        modalities: Sequence[str] | None = None,
        *,
        kinds: Mapping[str, str] | None = None,
        labels: Any = None,
        eval_dataset: Dataset | None = None,
        transforms: Transforms | Mapping[str, Any] | None = None,
        name: str | None = None,
        ids: Sequence[Any] | None = None,
    ) -> None:
        self.dataset = dataset
        self.eval_dataset = eval_dataset
        self.name = name or type(dataset).__name__
        try:
            n = len(dataset)  # type: ignore[arg-type]
        except TypeError:
            raise DataError(
                f"dataset {self.name!r} has no len(); DictDatasetSource needs a map-style Dataset "
                "(__len__ and __getitem__)"
            ) from None
        if n == 0:
            raise DataError(f"dataset {self.name!r} is empty; it needs at least one item")
        n_eval = n if eval_dataset is None else len(eval_dataset)  # type: ignore[arg-type]
        if n_eval != n:
            raise DataError(
                f"eval_dataset of {self.name!r} has {n_eval} items but the dataset has {n}; "
                "both must hold the same samples in the same order"
            )
        self._n = n
        first = self._item(dataset, 0)
        self.specs = resolve_specs(first["inputs"], specs, modalities, kinds, f"dataset {self.name!r} item 0")
        check_modalities(first["inputs"], self.specs, lambda: f"dataset {self.name!r} item 0")
        if labels is None:
            labels = _label_attribute(dataset)
        if num_classes is None:
            num_classes = _declared_classes(dataset)
        self._labels_given = labels is not None
        self._has_id = "id" in first
        self._has_degraded = "degraded" in first
        self._ids: list[str] | None = None if ids is None else check_ids(ids, n, f"dataset {self.name!r} ids")
        if labels is None:  # read every item's label once (decodes everything)
            items = [self._item(dataset, i) for i in range(n)]
            labels = [check_label(it["label"], None, lambda i=i: self._describe(i)) for i, it in enumerate(items)]
            if self._ids is None and self._has_id:
                self._ids = self._ids_of(items)
        self._labels, self.num_classes = as_labels(labels, num_classes, f"dataset {self.name!r}")
        if len(self._labels) != n:
            raise DataError(f"dataset {self.name!r}: {len(self._labels)} labels for {n} items")
        self.transforms = Transforms.coerce(transforms)
        self.extras: dict[str, Tensor] = {}

    # -- items -------------------------------------------------------------------------
    def _describe(self, i: int) -> str:
        return f"dataset {self.name!r} item {i}"

    def _item(self, dataset: Dataset, i: int) -> dict[str, Any]:
        try:
            item = dataset[i]
        except MMCoopError:
            raise
        except Exception as e:  # noqa: BLE001 - one message naming the item, original chained
            raise DataError(
                f"{self._describe(i)} could not be read ({type(e).__name__}: {e}); "
                "fix the dataset's __getitem__ or that sample"
            ) from e
        if not isinstance(item, Mapping) or not isinstance(item.get("inputs"), Mapping) or "label" not in item:
            got = type(item).__name__ if not isinstance(item, Mapping) else f"a dict with keys {sorted(item)}"
            raise DataError(f"{self._describe(i)} is {got}; items must be {LAYOUT}")
        inputs = {k: as_tensor(v, lambda k=k: f"{self._describe(i)} input {k!r}") for k, v in item["inputs"].items()}
        out = {"inputs": inputs, "label": item["label"]}
        for key in ("id", "degraded"):
            if key in item:
                out[key] = item[key]
        return out

    def _degraded(self, item: Mapping[str, Any], i: int) -> int:
        """Item ``i``'s ``degraded`` as a modality index (``-1``: none); `DataError` naming the item otherwise."""
        if "degraded" not in item:
            raise DataError(
                f"{self._describe(i)} has no 'degraded' key but item 0 has one; give every item a 'degraded' "
                "(None for no degraded modality) or none"
            )
        names = [spec.name for spec in self.specs]
        value = item["degraded"]
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if value is None:
            return -1
        if isinstance(value, str) and value in names:
            return names.index(value)
        if isinstance(value, int) and not isinstance(value, bool) and -1 <= value < len(names):
            return int(value)
        raise DataError(
            f"{self._describe(i)} has degraded={value!r}; it must name a modality ({', '.join(names)}), "
            f"be its index 0..{len(names) - 1}, or None / -1 for none"
        )

    def _ids_of(self, items: Sequence[Mapping[str, Any]]) -> list[str]:
        missing = [i for i, it in enumerate(items) if "id" not in it]
        if missing:
            raise DataError(
                f"{self._describe(missing[0])} has no 'id' key but item 0 has one; give every item an 'id' or none"
            )
        return check_ids([it["id"] for it in items], self._n, f"dataset {self.name!r} item ids")

    def sample_ids(self) -> list[str] | None:
        """``ids=``, else every item's ``"id"`` (read once), else ``None`` (the indices)."""
        if self._ids is None and self._has_id:
            self._ids = self._ids_of([self._item(self.dataset, i) for i in range(self._n)])
        return self._ids

    # -- Source protocol -----------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def labels(self) -> Tensor:
        return self._labels

    def fetch(self, rows: Tensor, train: bool) -> dict[str, Any]:
        """Read, check and stack items ``rows`` ``[B]``; see `Source`."""
        ds = self.eval_dataset if (not train and self.eval_dataset is not None) else self.dataset
        idx = rows.cpu().tolist()
        items = [self._item(ds, i) for i in idx]
        labels = []
        for i, item in zip(idx, items):
            check_modalities(item["inputs"], self.specs, lambda i=i: self._describe(i))
            y = check_label(item["label"], self.num_classes, lambda i=i: self._describe(i))
            if y != int(self._labels[i]):
                src = "the labels given" if self._labels_given else "its label when first read"
                raise DataError(
                    f"{self._describe(i)} has label {y} but {src} says {int(self._labels[i])}; "
                    "items must return the same label every time"
                )
            labels.append(y)
        inputs = stack_samples([x["inputs"] for x in items], self.specs, lambda p: self._describe(idx[p]))
        out = {"inputs": self.transforms(inputs, train), "label": torch.tensor(labels, dtype=torch.long)}
        if self._has_degraded:
            out["degraded"] = torch.tensor([self._degraded(x, i) for i, x in zip(idx, items)], dtype=torch.long)
        return out

    def __repr__(self) -> str:
        return f"DictDatasetSource({self.name!r}, N={self._n}, modalities={[s.name for s in self.specs]})"


def as_multimodal(dataset: Dataset) -> MultimodalDataset:
    """``dataset`` as a `MultimodalDataset`: a ``Dataset`` of dict items (see the module docstring)
    is wrapped by `DictDatasetSource`; a MultimodalDataset is returned as is.

    Raises:
        DataError: not a map-style Dataset of such items (the message names the item and the layout).
    """
    if isinstance(dataset, MultimodalDataset):
        return dataset
    return MultimodalDataset.from_source(DictDatasetSource(dataset))


def _declared_classes(dataset: Dataset) -> int | None:
    """``dataset.num_classes`` (an int), else ``len(dataset.classes)`` (a list or tuple), else ``None``."""
    n = getattr(dataset, "num_classes", None)
    if isinstance(n, int) and not isinstance(n, bool):
        return n
    classes = getattr(dataset, "classes", None)
    return len(classes) if isinstance(classes, (list, tuple)) else None


def _label_attribute(dataset: Dataset) -> Any:
    """``dataset.labels`` (attribute or method) or ``dataset.targets``, else ``None``."""
    for attr in ("labels", "targets"):
        value: Any = getattr(dataset, attr, None)
        if callable(value):
            value = value()
        if value is not None:
            return value
    return None


__all__ = ["DictDatasetSource", "as_multimodal"]
