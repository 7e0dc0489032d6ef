"""``@paper_dataset(name)``: a paper-dataset reader becomes a registered dataset.

A reader is a function ``load_<name>_sources(root, **options) -> {"train", "val", "test"}
-> ClipSource`` in its own module under `mmcoop.datasets` (Kinetics-Sounds, CREMA-D,
AVE, VGGSound, UCF-101, MM-Debiased), decorated with ``@paper_dataset(NAME)``; the decorator
registers it in `DATASETS` (no list to edit). Each is read lazily from ``root`` (``dataset_options.root``; default ``<data root>/<name>``)
in the layout its reader documents (``LAYOUT``); options are the reader's keyword options,
plus ``frame_cache`` (default ``false``): ``true`` decodes the RGB frames of every split
once into a memory-mapped uint8 cache under the mmcoop cache dir and serves batches from
it (eval bit-identical to the per-item decode, train crops from the cached frames; see
`mmcoop.media.frame_cache`).
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path
from typing import Any, Callable

from mmcoop.data.base import DatasetSplits, MultimodalDataset
from mmcoop.data.registry import DATASETS
from mmcoop.errors import ConfigError, DataError, MMCoopWarning

Reader = Callable[..., dict[str, Any]]


def paper_dataset(name: str) -> Callable[[Reader], Reader]:
    """Register the decorated reader as dataset ``name`` (returns the reader unchanged).

    The dataset's options are the reader's keyword options plus ``root`` (default
    ``<data root>/<name>``), ``frame_cache`` and ``expect_classes`` (the class count a
    preset expects: a warning when the data has another).

    Example:
        >>> @paper_dataset("my-clips")  # doctest: +SKIP
        ... def load_my_clips_sources(root, *, num_frames: int = 3): ...
    """

    def deco(reader: Reader) -> Reader:
        _register(name, reader)
        return reader

    return deco


def _register(name: str, reader: Reader) -> None:
    params = inspect.signature(reader).parameters
    takes_seed = "seed" in params

    def load(
        *,
        data_root: Path | None,
        seed: int,
        root: str = "",
        frame_cache: bool = False,
        expect_classes: int | None = None,
        **options: Any,
    ) -> DatasetSplits:
        where = Path(root).expanduser() if root else (data_root / name if data_root is not None else None)
        if where is None:
            raise DataError(
                f"dataset {name!r}: no folder given; set dataset_options.root or a data root (--data-root / "
                f"MMCOOP_DATA) holding {name}/ in the layout of {reader.__module__}.LAYOUT (`mmcoop datasets {name}`)"
            )
        if takes_seed:
            options["seed"] = seed
        if not isinstance(frame_cache, bool):
            raise ConfigError(f"dataset_options.frame_cache must be true or false, got {frame_cache!r}")
        sources = reader(where, **options)
        _check_sources(name, sources, expect_classes)
        if frame_cache:
            from mmcoop.media.frame_cache import cache_sources

            sources = cache_sources(sources)
        views = {k: MultimodalDataset.from_source(v) for k, v in sources.items()}
        info: dict[str, Any] = {"source": str(where), "reader": reader.__name__}
        info.update(
            {k: v for k, v in getattr(sources["train"], "info", {}).items() if isinstance(v, (int, str, float))}
        )
        info["frame_cache"] = frame_cache
        return DatasetSplits(name, views["train"], views["val"], views["test"], info)

    # expose the reader's keyword options (validated by the registry) plus ``root``
    kw = [
        inspect.Parameter("root", inspect.Parameter.KEYWORD_ONLY, default=""),
        inspect.Parameter("frame_cache", inspect.Parameter.KEYWORD_ONLY, default=False),
        inspect.Parameter("expect_classes", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
    kw += [p for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k != "seed"]
    base = [
        inspect.Parameter("data_root", inspect.Parameter.KEYWORD_ONLY),
        inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY),
    ]
    load.__signature__ = inspect.Signature(base + kw)  # type: ignore[attr-defined]
    load.__doc__ = f"{name}: {reader.__doc__.strip().splitlines()[0] if reader.__doc__ else ''}"
    load.reader = reader  # type: ignore[attr-defined]  # `mmcoop datasets NAME` shows its module's LAYOUT
    DATASETS.register(name)(load)


def _check_sources(name: str, sources: dict[str, Any], expect_classes: int | None) -> None:
    """An empty val split names ``val_fraction``; a class count other than ``expect_classes`` warns."""
    val, train = sources["val"], sources["train"]
    info = getattr(val, "info", {})
    if len(val) == 0 and "val_fraction" in info:
        raise DataError(
            f"dataset {name!r}: the val split is empty: val_fraction={info['val_fraction']} of the "
            f"{len(train)} train clip(s) carves no clip of any class; raise dataset_options.val_fraction "
            f"(e.g. --set dataset_options.val_fraction=0.2) or add a val split file"
        )
    where = info.get("root", getattr(train, "info", {}).get("root", "?"))
    warn_class_count(name, expect_classes, int(train.num_classes), where, stacklevel=4)


def warn_class_count(name: str, expect: int | None, got: int, where: Any, stacklevel: int = 3) -> None:
    """Warn when a preset's class count ``expect`` differs from the ``got`` classes of the data at ``where``."""
    if expect is not None and int(expect) != got:
        warnings.warn(
            f"dataset {name!r}: the preset expects {int(expect)} classes but the data at "
            f"{where} has {got}; training with {got} classes "
            f"(set dataset_options.expect_classes={got} to silence this)",
            MMCoopWarning,
            stacklevel=stacklevel,
        )
