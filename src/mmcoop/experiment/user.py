"""User data through a config target: ``data: {target: "pkg.module:callable", options: {...}}``."""

from __future__ import annotations

from typing import Any, Mapping

from torch.utils.data import Dataset as TorchDataset

from mmcoop.data import DatasetSplits, DictDatasetSource, MultimodalDataset, Source
from mmcoop.errors import ConfigError, DataError, MMCoopError
from mmcoop.utils.targets import call_with_supported, resolve_target

SPLITS = ("train", "val", "test")


def _as_view(obj: Any, split: str, key: str, reference: MultimodalDataset | None) -> MultimodalDataset:
    """A split returned by user code as a dataset view: views pass, sources are viewed, plain
    ``Dataset``s of dict items are wrapped (specs and classes from ``reference`` when given)."""
    if isinstance(obj, MultimodalDataset):
        return obj
    try:
        if isinstance(obj, Source):
            return MultimodalDataset.from_source(obj)
        if isinstance(obj, TorchDataset):
            kw: dict[str, Any] = {"name": f"{split} split of {key}"}
            if reference is not None:
                kw.update(num_classes=reference.num_classes, specs=reference.specs)
            return MultimodalDataset.from_source(DictDatasetSource(obj, **kw))
    except MMCoopError as e:
        raise DataError(f"{key}: {split} split: {e}") from None
    raise ConfigError(
        f"{key}: the {split} split is a {type(obj).__name__}; return a torch Dataset of "
        '{"inputs": {name: Tensor}, "label": int} items, an mmcoop source or dataset'
    )


def user_splits(target: str, options: Mapping[str, Any], seed: int, name: str = "custom") -> DatasetSplits:
    """Call the user's data target and check what it returns.

    The callable gets ``**options`` (and ``seed=`` when it accepts it) and returns a
    :class:`~mmcoop.data.DatasetSplits`, a mapping with keys ``train``, ``val``, ``test``, or
    a ``(train, val, test)`` tuple; each split is an mmcoop dataset or source, or a
    ``torch.utils.data.Dataset`` whose items are ``{"inputs": {name: Tensor}, "label": int}``.
    The three splits must have the same modalities (in order) and classes.
    """
    key = f"data.target={target!r}"
    fn = resolve_target(target, "data.target")
    out = call_with_supported(fn, (), {"seed": seed}, dict(options), key)
    if isinstance(out, DatasetSplits):
        parts = {s: out.split(s) for s in SPLITS}
        info = dict(out.info)
    elif isinstance(out, Mapping):
        missing = [s for s in SPLITS if s not in out]
        if missing:
            raise ConfigError(f"{key} returned a mapping without {missing}; return keys train, val, test")
        parts, info = {s: out[s] for s in SPLITS}, {}
    elif isinstance(out, (tuple, list)) and len(out) == 3:
        parts, info = dict(zip(SPLITS, out)), {}
    else:
        raise ConfigError(
            f"{key} returned {type(out).__name__}; return (train, val, test) datasets, a dict with those keys, "
            "or mmcoop.data.DatasetSplits"
        )
    ref = _as_view(parts["train"], "train", key, None)
    views = {"train": ref}
    views.update({s: _as_view(parts[s], s, key, ref) for s in SPLITS[1:]})
    for s in SPLITS[1:]:
        v = views[s]
        if v.modalities != ref.modalities:
            raise DataError(f"{key}: the {s} split has modalities {v.modalities} but train has {ref.modalities}")
        if v.num_classes != ref.num_classes:
            raise DataError(f"{key}: the {s} split has {v.num_classes} classes but train has {ref.num_classes}")
    info.setdefault("source", target)
    return DatasetSplits(name, views["train"], views["val"], views["test"], info)
