"""mmcoop: observe and improve multimodal cooperation.

Implements *Enhancing Multimodal Cooperation via Sample-level Modality Valuation*
(Wei, Feng, Wang, Hu, CVPR 2024): per-sample Shapley valuation of modalities and
sample-/modality-level re-sampling, beside peer imbalanced-multimodal methods.
"""

__version__ = "0.1.0"
