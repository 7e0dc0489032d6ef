"""Issue 26.1: linear probes on frozen encoders, against scikit-learn's LogisticRegression.

The torch probe minimises mean cross-entropy + l2/2 ||W||² by L-BFGS; scikit-learn's
``LogisticRegression(C=1/(l2*N))`` minimises the same objective times ``C*N``, so on the
same (standardised) features both reach the same classifier: test accuracies agree
within 1 point (the issue's bar) and the weights closely.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from _runs import tiny_cfg
from mmcoop.cli.app import app
from mmcoop.diagnostics import CONCAT, fit_softmax, linear_probe, probe_features
from mmcoop.diagnostics.probe import modality_features, standardize
from mmcoop.experiment import RunConfig, load_run, run_experiment
from mmcoop.experiment.probe import probe_run
from mmcoop.report import write_report
from mmcoop.utils.runfiles import file_sha256, stale_derived
from mmcoop.valuation import encode_dataset

pytestmark = pytest.mark.usefixtures("one_thread")
runner = CliRunner()


def _sklearn_acc(xtr, ytr, xte, yte, l2):
    """Test accuracy of scikit-learn's L2 logistic regression with the probe's penalty."""
    clf = LogisticRegression(C=1.0 / (l2 * len(ytr)), max_iter=5000, tol=1e-10)
    clf.fit(xtr.numpy(), ytr.numpy())
    return float((clf.predict(xte.numpy()) == yte.numpy()).mean()), clf


def _blobs(n, d, c, seed, spread=2.0, scale=1.0):
    g = np.random.default_rng(seed)
    centers = scale * g.normal(size=(c, d))
    y = g.integers(0, c, n)
    x = centers[y] + spread * g.normal(size=(n, d))
    return torch.tensor(x), torch.tensor(y)


@pytest.mark.parametrize("l2", [1e-1, 1e-3])
def test_fit_softmax_is_scikit_learns_logistic_regression(l2):
    x, y = _blobs(400, 6, 4, seed=1)
    xte, yte = _blobs(400, 6, 4, seed=1)  # same centers (same seed), other noise below
    xte = xte + torch.tensor(np.random.default_rng(9).normal(size=xte.shape))
    probe = fit_softmax(x, y, 4, l2)
    acc = float((probe.predict(xte) == yte).double().mean())
    ref, clf = _sklearn_acc(x, y, xte, yte, l2)
    assert abs(acc - ref) <= 0.01
    # the same optimum: probabilities agree (weights are defined up to a shift shared by the classes)
    ours = torch.softmax(probe.logits(xte), 1).numpy()
    assert np.abs(ours - clf.predict_proba(xte.numpy())).max() < 2e-3


def test_penalty_is_chosen_on_validation_and_ties_keep_the_stronger():
    x, y = _blobs(300, 5, 3, seed=2, spread=0.3, scale=10.0)  # separable: every penalty classifies val perfectly
    out = probe_features((x, y), (x, y), (x, y), 3, grid=[1e-4, 1e-1, 1e-2])
    assert out["val_acc"] == 1.0 and out["l2"] == 1e-1
    with pytest.raises(Exception, match="grid is empty"):
        probe_features((x, y), (x, y), (x, y), 3, grid=[])


def test_modality_features_cut_each_modality_to_its_width():
    class M:
        modalities = ["a", "b"]
        feature_dims = [2, 3]

    f = torch.arange(2 * 2 * 3, dtype=torch.float32).view(2, 2, 3)
    out = modality_features(M(), f)
    assert out["a"].shape == (2, 2) and out["b"].shape == (2, 3) and out[CONCAT].shape == (2, 5)
    assert torch.equal(out[CONCAT], torch.cat([f[:, 0, :2], f[:, 1]], 1))


def test_avmnist_probe_is_within_one_point_of_scikit_learn(tmp_path, data_root):
    cfg = RunConfig.from_dict(
        {
            "dataset": "avmnist",
            "dataset_options": {"limit": 400},
            "data_root": str(data_root),
            "train": {"epochs": 1, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
            "name": "av",
        }
    )
    run = run_experiment(cfg).run_dir
    entry = probe_run(run, "test")
    assert entry["checkpoint"]["sha256"] == file_sha256(run / "checkpoints" / "best.pt")
    assert json.loads((run / "probe.json").read_text())["splits"]["test"]["probes"] == entry["probes"]
    _, model, splits = load_run(run)
    feats = {}
    for name in ("train", "val", "test"):
        f, y, _ = encode_dataset(model, splits.split(name).train_mode(False))
        feats[name] = (modality_features(model, f), y)
    assert set(entry["probes"]) == {"audio", "visual", CONCAT}
    for name, p in entry["probes"].items():
        xtr, xte = standardize(feats["train"][0][name], feats["test"][0][name])
        ref, _ = _sklearn_acc(xtr, feats["train"][1], xte, feats["test"][1], p["l2"])
        assert abs(p["acc"] - ref) <= 0.01, (name, p["acc"], ref)
        assert 0.0 <= p["macro_f1"] <= 1.0
    assert entry["probes"][CONCAT]["acc"] > 0.3  # 10 classes: chance 0.1


def test_probe_cli_writes_probe_json_with_provenance_and_refuses_a_foreign_file(tmp_path):
    run = run_experiment(tiny_cfg(tmp_path, "p", dataset_options={"sizes": [96, 48, 48], "dim": 4})).run_dir
    res = runner.invoke(app, ["probe", str(run), "--split", "val"])
    assert res.exit_code == 0, res.output
    assert "concat" in res.output and "probe.json" in res.output
    data = json.loads((run / "probe.json").read_text())
    assert list(data["splits"]) == ["val"] and data["splits"]["val"]["n_eval"] == 48
    res = runner.invoke(app, ["probe", str(run), "--split", "test", "--max-train", "50"])
    assert res.exit_code == 0, res.output
    data = json.loads((run / "probe.json").read_text())
    assert list(data["splits"]) == ["test", "val"] and data["splits"]["test"]["n_train"] == 50
    assert stale_derived(run) == []
    again = linear_probe(*load_run(run)[1:], "test", max_train=50, seed=0)
    assert again["probes"] == data["splits"]["test"]["probes"]  # seeded: the same subset, the same fit
    write_report(run)
    html = (run / "report.html").read_text()
    assert 'id="probe"' in html and ">concat<" in html and "plots/imbalance.png" in html
    assert "plots/feature_maps.png" in html and "--split test` and redraw" in html  # test split mapped, not valued
    assert data["splits"]["test"]["map"]["points"] == 48 and set(data["splits"]["test"]["map"]["coords"]) == {
        "m0",
        "m1",
    }
    (run / "probe.json").write_text('{"mine": 1}')
    res = runner.invoke(app, ["probe", str(run)])
    assert res.exit_code == 2 and "not written by mmcoop probe" in " ".join(res.output.split())
    assert (run / "probe.json").read_text() == '{"mine": 1}'
    write_report(run)  # the report names the foreign file instead of failing
    assert "not written by mmcoop probe" in (run / "report.html").read_text()
    res = runner.invoke(app, ["probe", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a run directory" in res.output
    res = runner.invoke(app, ["probe", str(run), "--grid", "a,b"])
    assert res.exit_code == 2 and "--grid" in res.output
