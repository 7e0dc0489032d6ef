"""UMT's feature distillation by hand (a zero-padded narrower modality)."""

from __future__ import annotations

import pytest
import torch

from mmcoop.methods.functional import umt_distillation

pytestmark = pytest.mark.usefixtures("one_thread")


def test_distillation_by_hand() -> None:
    student = torch.tensor([[[1.0, 2.0], [3.0, 0.0]]])  # [B=1, M=2, D=2]; modality 1 has width 1
    teachers = [torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0]])]
    # (1 + 4) / 2 + (3 - 1)^2
    assert float(umt_distillation(student, teachers, [2, 1])) == pytest.approx(6.5)
    assert float(umt_distillation(student, teachers)) == pytest.approx(6.5)  # widths from the teachers
    assert float(umt_distillation(student, [student[:, 0], student[:, 1, :1]])) == 0.0
