"""Greedy: conditional utilisation rate and conditional learning speed (balanced MMTM).

Paper: Wu, Jastrzebski, Cho, Geras, "Characterizing and Overcoming the Greedy Nature of
Learning in Multi-modal Deep Neural Networks", ICML 2022. Code read:
nyukat/greedy_multimodal_learning ``src/callbacks.py`` ``Bias_Mitigation_Strong``
(``compute_BDR``, ``on_backward_end``), ``src/balanced_mmtm.py`` ``MMTM.forward``,
``configs/training_guided.gin``; GeWu-Lab/BalanceBenchmark ``balancemm/trainer/Greedy_trainer.py``.

Official arithmetic. The model has two branches joined by MMTM layers; in "curation mode"
one modality's MMTM excitation is replaced by its running average, i.e. its cross-modal
flow is cut. After every backward: cumulative learning speeds
``M_main_u += ||g_main_u||^2 / ||w_main_u||^2`` and ``M_bypass_u`` likewise over the MMTM
parameters (shared ones count for both); ``BDR_u = log10(M_bypass_u / M_main_u)``,
``d = BDR_0 - BDR_1``. From ``starting_epoch`` (2): if not curating and ``|d| > epsilon``
(0.01), curate for ``curation_windowsize`` (5) steps with caring modality ``1`` if
``d < 0`` else ``0``. The speeds are not accumulated during curation steps
(``compute_BDR`` runs only when not curating, and every step before ``starting_epoch``).
Conditional utilisation rate (paper, Sec. 3):
``u(m_1 | m_0) = (A(m_0, m_1) - A(m_0)) / A(m_0, m_1)`` where ``A(m_0)`` is the accuracy with
``m_1``'s cross-modal flow replaced by its average.

Deliberate differences: none in the arithmetic. (The official ``MMTM.forward`` updates the
skeleton running average from ``vis_out``, a copy-paste slip the wiring should not copy.)
Greedy needs an MMTM-style bypass and is defined for ``M = 2`` only; other ``M`` raise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mmcoop.errors import ConfigError


def learning_speed(grad_sq_norm: Tensor, weight_sq_norm: Tensor) -> Tensor:
    """``||g||^2 / ||w||^2`` per modality (``[M]`` inputs, summed over the branch's parameters)."""
    return grad_sq_norm.double() / weight_sq_norm.double()


def greedy_bdr_difference(speed_bypass: Tensor, speed_main: Tensor) -> float:
    """``d = BDR_0 - BDR_1`` with ``BDR_u = log10(M_bypass_u / M_main_u)`` (cumulative speeds)."""
    if speed_bypass.shape[0] != 2 or speed_main.shape[0] != 2:
        raise ConfigError("the Greedy method is defined for exactly two modalities (MMTM bypass)")
    bdr = torch.log10(speed_bypass.double() / speed_main.double())
    return float(bdr[0] - bdr[1])


def greedy_curation(d_bdr: float, epsilon: float = 0.01) -> tuple[bool, int]:
    """``(curate, caring_modality)``: curate iff ``|d| > epsilon``; care for 1 if ``d < 0`` else 0."""
    if math.isnan(d_bdr) or abs(d_bdr) <= epsilon:
        return False, 0
    return True, 1 if d_bdr < 0 else 0


def conditional_utilization_rate(acc_both: float, acc_without_flow: float) -> float:
    """``(A(m0, m1) - A(m0)) / A(m0, m1)``; 0 when ``A(m0, m1) = 0``."""
    return 0.0 if acc_both == 0 else (acc_both - acc_without_flow) / acc_both
