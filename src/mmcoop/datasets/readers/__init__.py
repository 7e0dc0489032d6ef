"""Readers for the paper datasets in the on-disk layouts researchers already have.

One module per layout; each exposes ``LAYOUT`` (the expected files) and
``load_<name>_sources(root, **options) -> {"train", "val", "test"} -> ClipSource``
(a lazily decoding data source: ``specs``, ``num_classes``, ``len``, ``labels()``,
``fetch(rows, train)``). :data:`READERS` maps a dataset name to its loader function.
"""

from __future__ import annotations

from typing import Any, Callable

from mmcoop.datasets.readers.ave_ogmge import load_ave_ogmge_sources
from mmcoop.datasets.readers.ave_pmr import load_ave_pmr_sources
from mmcoop.media.clips import ClipSource
from mmcoop.datasets.readers.cremad import load_cremad_sources
from mmcoop.datasets.readers.kinetics_sounds import load_kinetics_sounds_sources
from mmcoop.datasets.readers.mm_debiased import load_mm_debiased_sources
from mmcoop.datasets.readers.ucf101 import load_ucf101_sources
from mmcoop.datasets.readers.vggsound import load_vggsound_sources

#: dataset name -> ``load_<name>_sources(root, **options)``.
READERS: dict[str, Callable[..., dict[str, Any]]] = {
    "kinetics-sounds": load_kinetics_sounds_sources,
    "cremad": load_cremad_sources,
    "ave": load_ave_pmr_sources,
    "ave-ogmge": load_ave_ogmge_sources,
    "vggsound": load_vggsound_sources,
    "ucf101": load_ucf101_sources,
    "mm-debiased": load_mm_debiased_sources,
}

__all__ = [
    "READERS", "ClipSource", "load_ave_ogmge_sources", "load_ave_pmr_sources", "load_cremad_sources",
    "load_kinetics_sounds_sources", "load_mm_debiased_sources", "load_ucf101_sources", "load_vggsound_sources",
]
