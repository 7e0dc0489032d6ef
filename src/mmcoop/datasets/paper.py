"""The paper datasets (Kinetics-Sounds, CREMA-D, AVE, VGGSound, UCF-101, MM-Debiased) as
registered datasets over the readers in :mod:`mmcoop.datasets.readers`.

Each is read lazily from ``root`` (``dataset_options.root``; default ``<data root>/<name>``)
in the layout its reader documents (``LAYOUT``); options are the reader's keyword options,
plus ``frame_cache`` (default ``false``): ``true`` decodes the RGB frames of every split
once into a memory-mapped uint8 cache under the mmcoop cache dir and serves batches from
it (eval bit-identical to the per-item decode, train crops from the cached frames; see
:mod:`mmcoop.media.frame_cache`).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Callable

from mmcoop.data.base import DatasetSplits, MultimodalDataset
from mmcoop.datasets.readers import READERS
from mmcoop.data.registry import DATASETS
from mmcoop.errors import ConfigError, DataError


def _register(name: str, reader: Callable[..., dict[str, Any]]) -> None:
    params = inspect.signature(reader).parameters
    takes_seed = "seed" in params

    def load(*, data_root: Path | None, seed: int, root: str = "", frame_cache: bool = False,
             **options: Any) -> DatasetSplits:
        where = Path(root).expanduser() if root else (data_root / name if data_root is not None else None)
        if where is None:
            raise DataError(
                f"dataset {name!r}: no folder given; set dataset_options.root or a data root (--data-root / "
                f"MMCOOP_DATA) holding {name}/ in the layout of mmcoop.datasets.readers ({reader.__module__}.LAYOUT)"
            )
        if takes_seed:
            options["seed"] = seed
        if not isinstance(frame_cache, bool):
            raise ConfigError(f"dataset_options.frame_cache must be true or false, got {frame_cache!r}")
        sources = reader(where, **options)
        if frame_cache:
            from mmcoop.media.frame_cache import cache_sources

            sources = cache_sources(sources)
        views = {k: MultimodalDataset.from_source(v) for k, v in sources.items()}
        info = {"source": str(where), "reader": reader.__name__}
        info.update({k: v for k, v in getattr(sources["train"], "info", {}).items() if isinstance(v, (int, str, float))})
        info["frame_cache"] = frame_cache
        return DatasetSplits(name, views["train"], views["val"], views["test"], info)

    # expose the reader's keyword options (validated by the registry) plus ``root``
    kw = [inspect.Parameter("root", inspect.Parameter.KEYWORD_ONLY, default=""),
          inspect.Parameter("frame_cache", inspect.Parameter.KEYWORD_ONLY, default=False)]
    kw += [p for k, p in params.items() if p.kind is p.KEYWORD_ONLY and k != "seed"]
    base = [inspect.Parameter("data_root", inspect.Parameter.KEYWORD_ONLY),
            inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY)]
    load.__signature__ = inspect.Signature(base + kw)  # type: ignore[attr-defined]
    load.__doc__ = f"{name}: {reader.__doc__.strip().splitlines()[0] if reader.__doc__ else ''}"
    load.reader = reader  # type: ignore[attr-defined]  # `mmcoop datasets NAME` shows its module's LAYOUT
    DATASETS.register(name)(load)


for _name, _reader in READERS.items():
    _register(_name, _reader)
