"""UMT: distillation of unimodal teachers' encoder features into the multimodal model.

Paper: Du, Teng, Wang, Zhang, Yuan, Wang, Zhao, "On Uni-Modal Feature Learning in Supervised
Multi-Modal Learning", ICML 2023 (Uni-Modal Teacher). Code read: GeWu-Lab/BalanceBenchmark at
4c1482f ``balancemm/trainer/UMT_trainer.py`` (``UMTTrainer.__init__``: one trained
``unimodalTrainer_<modality>`` checkpoint per modality; ``training_step``;
``configs/trainer_config.yaml``: ``scaling: 10``).

BalanceBenchmark's arithmetic: ``loss = CE(fused) + scaling * sum_m MSE(t_m, h_m)`` inside the
window, with ``t_m`` the teacher's encoder output for modality ``m`` (no gradient) and ``h_m``
the student's; ``MSE`` is the mean over the batch and the feature dimensions.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor
from torch.nn import functional as F


def umt_distillation(student: Tensor, teachers: Sequence[Tensor], widths: Sequence[int] | None = None) -> Tensor:
    """``sum_m MSE(teacher_m, student_m)`` over the modalities.

    Args:
        student: ``[B, M, D]`` the multimodal model's features (modality ``m`` in ``[:, m, :d_m]``).
        teachers: ``M`` tensors ``[B, d_m]``, the teachers' features (detached).
        widths: ``d_m`` per modality (``None``: each teacher's width).

    Returns:
        A scalar: the sum over modalities of the mean squared difference.
    """
    total = student.new_zeros(())
    for m, t in enumerate(teachers):
        d = int(widths[m]) if widths is not None else t.shape[-1]
        total = total + F.mse_loss(student[:, m, :d], t.to(student.dtype))
    return total
