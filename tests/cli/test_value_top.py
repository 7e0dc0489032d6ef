"""`mmcoop value --top K`: the samples each modality contributes least to, by their stable ids.

A Kinetics-Sounds-layout fixture (real MNIST frames and FSDD spectrograms) is trained for
one epoch; `value --top 5` must list clip ids that exist in the split file, in phi order,
and write them to valuation/test_lowest.csv.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from _helpers import skip_real_data
from typer.testing import CliRunner

from mmcoop.cli.app import app
from mmcoop.valuation import ValuationTable

READERS_TESTS = Path(__file__).resolve().parents[1] / "data" / "readers"
DATA = Path(os.environ.get("MMCOOP_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
pytestmark = pytest.mark.skipif(skip_real_data("mnist"), reason=f"real data folder {DATA} absent (set MMCOOP_DATA)")


@pytest.fixture(scope="module")
def ks_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(READERS_TESTS))
    import av_fixtures

    tmp = tmp_path_factory.mktemp("ks_top")
    root = tmp / "data"
    root.mkdir()
    av_fixtures.build_kinetics_sounds(root, av_fixtures.Content(DATA))
    args = [
        "train",
        "--dataset",
        "kinetics-sounds",
        "--method",
        "joint",
        "--name",
        "ks",
        "--out-dir",
        str(tmp / "runs"),
        "--device",
        "cpu",
    ]
    for s in (
        "dataset_options.root=" + str(root),
        "dataset_options.image_size=16",
        "train.epochs=1",
        "train.batch_size=4",
        "train.progress=false",
        "model.dim=8",
    ):
        args += ["--set", s]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return tmp / "runs" / "ks"


def test_value_top_lists_clip_ids_of_the_split_file(ks_run: Path) -> None:
    res = CliRunner().invoke(app, ["value", str(ks_run), "--split", "test", "--top", "5"])
    assert res.exit_code == 0, res.output
    listed = {
        line.split()[0].rsplit("/", 1)[-1]
        for line in (ks_run.parents[1] / "data" / "test_1fps_path.txt").read_text().splitlines()
        if line.strip()
    }
    table = ValuationTable.from_parquet(ks_run / "valuation" / "test.parquet")
    assert set(table.sample_id) == listed  # every row carries its clip id
    df = pd.read_csv(ks_run / "valuation" / "test_lowest.csv", dtype={"sample_id": str})
    assert set(df["lowest_for"]) == {"audio", "visual"}
    from mmcoop.utils.runfiles import is_mmcoop_derived, split_run_entries

    assert is_mmcoop_derived(ks_run / "valuation" / "test_lowest.csv")  # recorded: mmcoop's, with its checkpoint
    assert split_run_entries(ks_run)[1] == []  # so --overwrite does not refuse it as a user file
    for m in ("audio", "visual"):
        part = df[df["lowest_for"] == m]
        assert len(part) == min(5, len(listed)) and set(part["sample_id"]) <= listed
        assert list(part["phi_" + m]) == sorted(part["phi_" + m])  # lowest first
        want = table.lowest(m, 5)
        assert list(part["sample_id"]) == want.sample_id
        for sid in part["sample_id"]:
            assert sid in res.output  # printed too
        row = table.sample(part["sample_id"].iloc[0])
        assert row["phi"][m] == pytest.approx(float(part["phi_" + m].iloc[0]))
        assert int(part["pred_" + m].iloc[0]) == row["pred"][m]


def test_value_top_one_modality_and_bad_modality(ks_run: Path) -> None:
    res = CliRunner().invoke(app, ["value", str(ks_run), "--split", "test", "--top", "2", "--modality", "visual"])
    assert res.exit_code == 0, res.output
    df = pd.read_csv(ks_run / "valuation" / "test_lowest.csv")
    assert set(df["lowest_for"]) == {"visual"} and len(df) == 2
    bad = CliRunner().invoke(app, ["value", str(ks_run), "--top", "2", "--modality", "text"])
    assert bad.exit_code == 2 and "text" in bad.output and "audio, visual" in bad.output
    assert "Traceback" not in bad.output
