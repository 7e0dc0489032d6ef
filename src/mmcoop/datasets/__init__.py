"""Datasets: the built-ins (avmnist, mfeat, synthetic) and the paper-dataset readers.

Each module registers itself with ``@DATASETS.register(name)``; importing
`mmcoop.data.DATASETS` for the first time imports every module here.
"""
