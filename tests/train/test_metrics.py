import torch
from sklearn.metrics import f1_score

from mmcoop.train.metrics import MultimodalMeter, confusion_matrix, macro_f1


def test_macro_f1_matches_sklearn():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        y = torch.randint(0, 5, (200,), generator=g)
        p = torch.where(torch.rand(200, generator=g) < 0.6, y, torch.randint(0, 5, (200,), generator=g))
        assert abs(macro_f1(p, y, 5) - f1_score(y.numpy(), p.numpy(), average="macro")) < 1e-9


def test_confusion_matrix_hand_case():
    cm = confusion_matrix(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 2, 2]), 3)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]


def test_meter_accumulates_sums_not_batch_averages():
    meter = MultimodalMeter(3, ["a", "b"])
    # batch 1: 1 sample, correct; batch 2: 3 samples, 1 correct -> 2/4, not mean(1, 1/3)
    eye = torch.eye(3)
    meter.update(eye[[0]], torch.tensor([0]), torch.stack([eye[[0]], eye[[1]]], 1), 0.5)
    meter.update(eye[[1, 0, 0]], torch.tensor([1, 2, 2]), torch.stack([eye[[1, 2, 2]], eye[[0, 0, 0]]], 1), 1.5)
    out = meter.compute()
    assert out["acc"] == 0.5
    assert out["acc_a"] == 1.0 and out["acc_b"] == 0.0
    assert out["loss"] == 0.5
