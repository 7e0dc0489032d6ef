"""Data core: sources (in-memory, arrays, dict datasets, files), dataset views, loaders, the registry.

A `Source` holds one split's samples and fetches rows as batches; a
`MultimodalDataset` is a view over a source (rows, keep-masks, train/eval
mode) and is what the rest of mmcoop trains, evaluates and values on.
"""

from mmcoop.data.protocol import (
    KIND_NDIM,
    ModalitySpec,
    Source,
    Transforms,
    infer_kind,
    input_baselines,
    sample_ids,
    sample_waveforms,
)
from mmcoop.data.tensor_source import TensorSource
from mmcoop.data.array_source import ArraySource
from mmcoop.data.dict_source import DictDatasetSource, as_multimodal
from mmcoop.data.file_source import FileSource
from mmcoop.data.degraded_source import DegradedSource
from mmcoop.data.base import Batch, DatasetSplits, MultimodalDataset, batch_to
from mmcoop.data.loader import make_loader
from mmcoop.data.registry import DATASETS, check_finite, dataset_options, load_dataset, resolve_data_root

from mmcoop.data.debiased import debias

# Built-in datasets live in mmcoop.datasets and register themselves when DATASETS is first
# read; installed packages add theirs through the ``mmcoop.datasets`` entry-point group.

__all__ = [
    "Batch",
    "DatasetSplits",
    "ModalitySpec",
    "MultimodalDataset",
    "batch_to",
    "make_loader",
    "Source",
    "TensorSource",
    "ArraySource",
    "DictDatasetSource",
    "as_multimodal",
    "FileSource",
    "DegradedSource",
    "Transforms",
    "KIND_NDIM",
    "infer_kind",
    "input_baselines",
    "sample_ids",
    "sample_waveforms",
    "DATASETS",
    "check_finite",
    "dataset_options",
    "load_dataset",
    "resolve_data_root",
    "debias",
]
