"""Peer methods of issue 11, registered in ``METHODS`` on import.

Each module wires one method's pure core (:mod:`mmcoop.methods.functional`) into the training
step; its docstring cites the paper and the official code, lists the defaults, every
deliberate difference and how the method handles ``M > 2`` modalities.

- ``ogm-ge`` (:mod:`.ogm_ge`): OGM-GE, CVPR 2022 -- gradient modulation of the dominant encoder.
- ``opm`` (:mod:`.opm`): OPM, TPAMI 2024 -- dropping the dominant modality's features.
- ``pmr`` (:mod:`.pmr`): PMR, CVPR 2023 -- prototype loss for the weak modality.
- ``agm`` (:mod:`.agm`): AGM, ICCV 2023 -- Shapley mono-modal responses, adaptive gradient scale.
- ``mla`` (:mod:`.mla`): MLA, CVPR 2024 -- alternating unimodal steps through a shared head.
- ``mmpareto`` (:mod:`.mmpareto`): MMPareto, ICML 2024 -- Pareto combination of multimodal and
  unimodal gradients.
- The other peers (G-Blending, ReconBoost, Diagnosing & Re-learning, CGGM, InfoReg, Greedy):
  see their modules.
"""

from mmcoop.methods.peers import ogm_ge as _ogm_ge  # noqa: F401
from mmcoop.methods.peers import opm as _opm  # noqa: F401
from mmcoop.methods.peers import pmr as _pmr  # noqa: F401
from mmcoop.methods.peers import agm as _agm  # noqa: F401
from mmcoop.methods.peers import mla as _mla  # noqa: F401
from mmcoop.methods.peers import mmpareto as _mmpareto  # noqa: F401
from mmcoop.methods.peers import gblending as _gblending  # noqa: F401
from mmcoop.methods.peers import reconboost as _reconboost  # noqa: F401
from mmcoop.methods.peers import relearning as _relearning  # noqa: F401
from mmcoop.methods.peers import cggm as _cggm  # noqa: F401
from mmcoop.methods.peers import inforeg as _inforeg  # noqa: F401
from mmcoop.methods.peers import greedy as _greedy  # noqa: F401
