"""Data layer: in-memory multimodal datasets, the dataset registry, the debiasing wrapper."""

from mmcoop.data.base import (
    Batch,
    DatasetSplits,
    ModalitySpec,
    MultimodalDataset,
    batch_to,
    make_loader,
)
from mmcoop.data.registry import DATASETS, dataset_options, load_dataset, resolve_data_root

# Register built-in datasets (import for side effects).
from mmcoop.data import avmnist as _avmnist  # noqa: F401,E402
from mmcoop.data import synthetic as _synthetic  # noqa: F401,E402
from mmcoop.data import mfeat as _mfeat  # noqa: F401,E402
from mmcoop.data.debiased import debias  # noqa: E402

__all__ = [
    "Batch", "DatasetSplits", "ModalitySpec", "MultimodalDataset", "batch_to", "make_loader",
    "DATASETS", "dataset_options", "load_dataset", "resolve_data_root", "debias",
]
