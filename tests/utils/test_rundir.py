"""The run-directory schema: paths, metrics.jsonl records, valuation parquet layout."""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mmcoop.errors import DataError
from mmcoop.utils import rundir
from mmcoop.utils.rundir import (
    RunPaths,
    append_metrics,
    decode_valuation_meta,
    encode_valuation_meta,
    epoch_valuation_name,
    is_compare_dir,
    is_run_dir,
    jsonable,
    list_valuations,
    modalities_from_columns,
    parse_valuation_name,
    read_metrics,
    read_metrics_file,
    split_valuation_name,
    valuation_columns,
    write_metrics,
)


def test_run_paths(tmp_path: Path) -> None:
    p = RunPaths(tmp_path / "run")
    root = tmp_path / "run"
    assert p.root == root
    assert (p.config, p.dataset, p.metrics, p.results, p.report) == (
        root / "config.yaml",
        root / "dataset.json",
        root / "metrics.jsonl",
        root / "results.json",
        root / "report.html",
    )
    assert (p.last_checkpoint, p.best_checkpoint) == (
        root / "checkpoints" / "last.pt",
        root / "checkpoints" / "best.pt",
    )
    assert p.checkpoint("best") == p.best_checkpoint and p.checkpoint("last") == p.last_checkpoint
    assert p.epoch_valuation(3) == root / "valuation" / "epoch_003.parquet"
    assert p.split_valuation("test") == root / "valuation" / "test.parquet"
    assert RunPaths(str(root)) == p  # str or Path, equal and hashable
    assert not root.exists()  # nothing is created


def test_valuation_names() -> None:
    assert epoch_valuation_name(7) == "epoch_007.parquet" and epoch_valuation_name(1234) == "epoch_1234.parquet"
    assert parse_valuation_name("epoch_007.parquet") == 7 and parse_valuation_name("epoch_1234.parquet") == 1234
    assert parse_valuation_name("test.parquet") == "test" and parse_valuation_name("my.split.parquet") == "my.split"
    assert parse_valuation_name(".epoch_001.parquet.x1.tmp") is None and parse_valuation_name("notes.txt") is None
    assert parse_valuation_name(".test.parquet") is None
    for e in (0, 5, 99, 1000):
        assert parse_valuation_name(epoch_valuation_name(e)) == e
    assert parse_valuation_name(split_valuation_name("val")) == "val"
    for bad in ("", "a/b", ".hidden", "epoch_003"):
        with pytest.raises(ValueError, match="invalid split name"):
            split_valuation_name(bad)


def test_list_valuations_and_dir_kinds(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert list_valuations(run) == ({}, {}) and not is_run_dir(run)
    p = RunPaths(run)
    p.valuation_dir.mkdir(parents=True)
    for name in (
        "epoch_010.parquet",
        "epoch_002.parquet",
        "zeta.parquet",
        "test.parquet",
        "train.parquet",
        "alpha.parquet",
        ".epoch_011.parquet.abc.tmp",
        "notes.txt",
    ):
        (p.valuation_dir / name).write_bytes(b"")
    epochs, splits = list_valuations(run)
    assert list(epochs.items()) == [(2, p.epoch_valuation(2)), (10, p.epoch_valuation(10))]
    assert list(splits) == ["train", "test", "alpha", "zeta"] and splits["test"] == p.split_valuation("test")
    assert not is_run_dir(run)
    p.results.write_text("{}")
    assert is_run_dir(run) and not is_compare_dir(run)
    (tmp_path / "summary.csv").write_text("method\n")
    assert is_compare_dir(tmp_path)


def test_jsonable() -> None:
    rec = {
        "epoch": 3,
        "acc": torch.tensor(0.5),
        "n": torch.tensor([7]),
        "np": np.float32(0.25),
        "ni": np.int64(4),
        "nan": float("nan"),
        "inf": torch.tensor(float("inf")),
        "name": "x",
        "ok": True,
        "none": None,
        "list": [1, 2],
        "vec": torch.ones(3),
        "dict": {"a": 1},
        "obj": object(),
    }
    out = jsonable(rec)
    assert out == {
        "epoch": 3,
        "acc": 0.5,
        "n": 7,
        "np": 0.25,
        "ni": 4,
        "nan": None,
        "inf": None,
        "name": "x",
        "ok": True,
        "none": None,
        "list": [1, 2],
    }
    assert type(out["n"]) is int and type(out["np"]) is float
    json.loads(json.dumps(out, allow_nan=False))  # strict JSON


def test_metrics_round_trip(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert read_metrics(run) == []
    written = [append_metrics(run, {"epoch": e, "loss": torch.tensor(1.0 / e), "bad": float("nan")}) for e in (1, 2, 3)]
    assert written[1] == {"epoch": 2, "loss": 0.5, "bad": None}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_metrics(run) == written
        assert read_metrics_file(RunPaths(run).metrics) == written
    write_metrics(run, written[:2])
    assert read_metrics(run) == written[:2]
    assert RunPaths(run).metrics.read_text() == "".join(json.dumps(r) + "\n" for r in written[:2])


def test_half_written_last_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for e in (1, 2):
        append_metrics(run, {"epoch": e})
    with open(RunPaths(run).metrics, "a") as fh:
        fh.write('{"epoch": 3, "val_ac')  # killed while appending
    with pytest.warns(RuntimeWarning, match="incomplete last line 3"):
        assert read_metrics(run) == [{"epoch": 1}, {"epoch": 2}]
    # appending drops the broken tail instead of gluing the next record to it
    with pytest.warns(RuntimeWarning, match="dropping an incomplete last line"):
        append_metrics(run, {"epoch": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_metrics(run) == [{"epoch": 1}, {"epoch": 2}, {"epoch": 3}]
    # a terminated but broken last line (and trailing blank lines) is skipped as well
    with open(RunPaths(run).metrics, "a") as fh:
        fh.write("[1, 2]\n\n")
    with pytest.warns(RuntimeWarning, match="incomplete last line 4"):
        assert len(read_metrics(run)) == 3


def test_bad_middle_line(tmp_path: Path) -> None:
    path = RunPaths(tmp_path).metrics
    path.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(DataError, match=r"metrics\.jsonl: line 2 is not a JSON object"):
        read_metrics(tmp_path)
    with pytest.warns(RuntimeWarning, match="skipping line 2"):
        assert read_metrics(tmp_path, strict=False) == [{"epoch": 1}, {"epoch": 3}]
    path.write_bytes(b"\xff\xfe\n")
    with pytest.raises(DataError, match="cannot read"):
        read_metrics(tmp_path)
    with pytest.warns(RuntimeWarning, match="cannot read"):
        assert read_metrics(tmp_path, strict=False) == []


def test_valuation_columns() -> None:
    cols = valuation_columns(["a", "v"], ["empty", "a", "v", "a+v"], ["degraded"], values=True, stderr=True)
    assert cols == {
        "pred": ["pred_empty", "pred_a", "pred_v", "pred_a+v"],
        "phi": ["phi_a", "phi_v"],
        "values": ["value_empty", "value_a", "value_v", "value_a+v"],
        "stderr": ["stderr_a", "stderr_v"],
        "extras": ["degraded"],
    }
    assert valuation_columns(["a"], ["empty", "a"], values=False)["values"] == []
    with pytest.raises(ValueError, match=r"clash.*'label'"):
        valuation_columns(["a"], ["empty", "a"], ["label"])
    with pytest.raises(ValueError, match=r"clash.*'phi_a'"):
        valuation_columns(["a"], ["empty", "a"], ["phi_a"])
    assert modalities_from_columns(["index", "phi_b", "pred_b", "phi_a", "value_a"]) == ["b", "a"]


def test_valuation_meta() -> None:
    meta = {"format": 1, "modalities": ["a", "v"], "info": {"epoch": 2}}
    enc = encode_valuation_meta(meta)
    assert list(enc) == [b"mmcoop.valuation"] and decode_valuation_meta(enc) == meta
    assert decode_valuation_meta(None) is None and decode_valuation_meta({b"other": b"{}"}) is None
    assert decode_valuation_meta({b"mmcoop.valuation": b"{broken"}) is None
    assert decode_valuation_meta({b"mmcoop.valuation": b"[1]"}) is None


def test_table_and_report_use_the_schema(tmp_path: Path) -> None:
    """A table written to RunPaths.epoch_valuation is listed, and its columns/metadata follow the schema."""
    import pyarrow.parquet as pq

    from mmcoop.report.loaders import load_run_dir, read_valuation
    from mmcoop.valuation import ValuationTable

    n = 3
    table = ValuationTable(
        modalities=["audio", "visual"],
        index=torch.arange(n),
        label=torch.tensor([0, 1, 0]),
        phi=torch.tensor([[1.0, 1.0], [1.5, 0.5], [0.0, 0.0]]),
        values=torch.zeros(n, 4),
        coalition_preds=torch.zeros(n, 4, dtype=torch.long),
        extras={"degraded": torch.tensor([0, 1, -1])},
        info={"epoch": 2},
    )
    paths = RunPaths(tmp_path / "run")
    table.to_parquet(paths.epoch_valuation(2))
    table.to_parquet(paths.split_valuation("test"))
    append_metrics(paths.root, {"epoch": 1, "val_acc_audio": 0.5, "val_acc_visual": 0.25})
    epochs, splits = list_valuations(paths.root)
    assert epochs == {2: paths.epoch_valuation(2)} and splits == {"test": paths.split_valuation("test")}
    pf = pq.read_table(epochs[2])
    meta = decode_valuation_meta(pf.schema.metadata)
    assert meta is not None and meta["format"] == rundir.VALUATION_FORMAT and meta["info"] == {"epoch": 2}
    cols = valuation_columns(table.modalities, table.coalitions, ["degraded"], values=True, stderr=False)
    assert meta["columns"] == cols
    identity = [c for c in rundir.IDENTITY_COLUMNS if c in pf.column_names]  # split/degraded only where known
    assert identity[:1] == ["sample_id"]
    assert pf.column_names == list(rundir.FIXED_COLUMNS) + [c for g in cols.values() for c in g] + identity
    df = read_valuation(splits["test"])
    assert df.attrs["modalities"] == ["audio", "visual"] and df.attrs["meta"] == meta
    run = load_run_dir(paths.root)
    assert run.modalities == ["audio", "visual"] and run.epoch_valuations == epochs and len(run.metrics) == 1


def test_rundir_imports_only_the_lowest_layer() -> None:
    """rundir is below valuation, experiment and report: stdlib, mmcoop.errors and mmcoop.utils only."""
    tree = ast.parse(Path(rundir.__file__).read_text())
    mods = [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    mods += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    for m in mods:
        assert (
            m in ("__future__", "json", "math", "os", "re", "sys", "warnings", "dataclasses", "pathlib", "typing")
            or m == "mmcoop.errors"
            or m.startswith("mmcoop.utils.")
        ), m
