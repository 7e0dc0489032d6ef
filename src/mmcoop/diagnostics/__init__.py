"""Diagnostics layer: what a paper reports beside fused accuracy, computed from a trained model.

- `linear_probe`: a linear classifier per modality (and on all modalities' features
  concatenated) on the frozen encoders' cached features (`mmcoop.diagnostics.probe`).
"""

from mmcoop.diagnostics.probe import CONCAT, DEFAULT_GRID, SoftmaxProbe, fit_softmax, linear_probe, probe_features

__all__ = ["CONCAT", "DEFAULT_GRID", "SoftmaxProbe", "fit_softmax", "linear_probe", "probe_features"]
