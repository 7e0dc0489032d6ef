"""No silent no-op: options that make a method train exactly like ``joint`` are refused before training.

Each refusal is checked twice: the reason names the option, its value and the epochs, and (with
``allow_noop``) the run really is joint training, weight for weight.
"""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, run_experiment
from mmcoop.methods import METHODS, build_method, check_not_noop

pytestmark = pytest.mark.usefixtures("one_thread")

# (method, options, epochs, words the reason must contain)
NOOPS = [
    ("sample-level", {"warmup": 5}, 5, ["method_options.warmup=5", "train.epochs=5"]),
    ("sample-level", {"warmup": 7}, 3, ["method_options.warmup=7", "train.epochs=3"]),
    ("sample-level", {"warmup": 0, "thresholds": [[1.0, 0], [0.4, 0]], "max_copies": 0}, 5, ["max_copies=0"]),
    ("modality-level", {"warmup": 5}, 2, ["method_options.warmup=5", "train.epochs=2"]),
    ("modality-level", {"warmup": 0, "alpha": 0.0}, 5, ["method_options.alpha=0"]),
    ("ogm-ge", {"modulation_starts": 4}, 4, ["method_options.modulation_starts=4", "train.epochs=4"]),
    ("ogm-ge", {"alpha": 0.0, "noise": False}, 4, ["method_options.alpha=0", "noise=false"]),
    ("opm", {}, 6, ["method_options.modulation_starts=6", "train.epochs=6"]),
    ("opm", {"modulation_starts": 0, "p_exe": 0.0}, 6, ["method_options.p_exe=0"]),
    ("opm", {"modulation_starts": 0, "q_base": 0.0}, 6, ["method_options.q_base=0"]),
    ("pmr", {"modulation_starts": 3}, 2, ["method_options.modulation_starts=3", "train.epochs=2"]),
    ("pmr", {"alpha": 0.0}, 2, ["method_options.alpha=0"]),
    ("greedy", {}, 1, ["method_options.starting_epoch=1", "train.epochs=1"]),  # 0-based: the official 2nd epoch
    ("relearning", {}, 21, ["method_options.reinit_epoch=20", "train.epochs=21"]),
    ("relearning", {"reinit_epoch": 1, "reinit_num": 0}, 10, ["method_options.reinit_num=0"]),
    # BalanceBenchmark's six (issue 25)
    ("mmcosine", {"modulation_starts": 3}, 3, ["method_options.modulation_starts=3", "train.epochs=3"]),
    ("cml", {"modulation_starts": 2}, 2, ["method_options.modulation_starts=2", "train.epochs=2"]),
    ("umt", {"modulation_starts": 2}, 2, ["method_options.modulation_starts=2", "train.epochs=2"]),
    ("umt", {"scaling": 0}, 5, ["method_options.scaling=0"]),
    ("mbsd", {"modulation_starts": 2}, 2, ["method_options.modulation_starts=2", "train.epochs=2"]),
]

# the same methods one step inside: they do act
ACTIVE = [
    ("sample-level", {"warmup": 4}, 5),
    ("modality-level", {"warmup": 1, "alpha": 0.5}, 2),
    ("ogm-ge", {"modulation_starts": 3}, 4),
    ("ogm-ge", {"alpha": 0.0, "noise": True}, 4),
    ("opm", {}, 7),
    ("pmr", {"modulation_starts": 1}, 2),
    ("greedy", {}, 2),
    ("relearning", {}, 22),
    ("relearning", {"reinit_epoch": 1}, 3),
    ("mmcosine", {"modulation_starts": 2}, 3),
    ("cml", {"modulation_starts": 1}, 2),
    ("umt", {"modulation_starts": 1}, 2),
    ("lfm", {}, 1),
    ("amco", {"modulation_starts": 5}, 2),  # outside the window the extra C -> C layer still trains
    ("mbsd", {"modulation_starts": 1}, 2),
]


@pytest.mark.parametrize("name,options,epochs,words", NOOPS)
def test_noop_is_refused_naming_the_option_and_epochs(name, options, epochs, words) -> None:
    method = build_method(name, options)
    with pytest.raises(ConfigError) as err:
        check_not_noop(method, epochs)
    msg = str(err.value)
    assert all(w in msg for w in words), msg
    assert "allow_noop" in msg and "joint" in msg
    check_not_noop(build_method(name, {**options, "allow_noop": True}), epochs)  # the explicit opt-in


@pytest.mark.parametrize("name,options,epochs", ACTIVE)
def test_active_settings_pass(name, options, epochs) -> None:
    assert build_method(name, options).noop_reason(epochs) is None


def test_every_method_accepts_allow_noop_and_defaults_act_on_long_runs() -> None:
    for name in METHODS.names():
        assert build_method(name).options.allow_noop is False
        assert build_method(name, {"allow_noop": True}).options.allow_noop is True
        assert build_method(name).noop_reason(100) is None, name  # the defaults do something on a long run
    with pytest.raises(ConfigError, match="allow_noop must be true or false"):
        build_method("joint", {"allow_noop": "yes"})


def _train(tmp_path, name: str, method: str, options: dict, epochs: int = 2):
    cfg = RunConfig.from_dict(
        {
            "dataset": "synthetic",
            "dataset_options": {"num_modalities": 2, "sizes": [96, 32, 32]},
            "method": method,
            "method_options": options,
            "model": {"dim": 8},
            "train": {"epochs": epochs, "batch_size": 32, "progress": False, "device": "cpu"},
            "out_dir": str(tmp_path),
            "name": name,
        }
    )
    return run_experiment(cfg)


@pytest.mark.parametrize(
    "name,options",
    [
        ("sample-level", {"warmup": 2}),
        ("ogm-ge", {"alpha": 0.0, "noise": False}),
        ("opm", {}),
        ("greedy", {"log_utilization": False, "starting_epoch": 2}),  # its monitoring pass draws from the global RNG
    ],
)
def test_a_reported_noop_trains_exactly_like_joint(tmp_path, name, options) -> None:
    """The reason is true: with the opt-in, the run's weights equal joint training's bit for bit."""
    with pytest.raises(ConfigError, match="would train exactly like joint"):
        _train(tmp_path, "refused", name, options)
    assert not (tmp_path / "refused").exists()  # refused before the run directory is created
    joint = _train(tmp_path, "joint", "joint", {}).model.state_dict()
    noop = _train(tmp_path, "noop", name, {**options, "allow_noop": True}).model.state_dict()
    assert joint.keys() == noop.keys()
    for k, v in joint.items():
        assert torch.equal(v, noop[k]), k


def test_modality_level_alpha_zero_adds_no_unit(tmp_path) -> None:
    """Valued every epoch (its passes draw from the global RNG, so the shuffles differ from joint's), but no
    sample is ever copied: the epoch trains on the 96 originals only."""
    from mmcoop.experiment import read_metrics

    run = _train(tmp_path, "ml", "modality-level", {"warmup": 0, "alpha": 0.0, "allow_noop": True})
    records = read_metrics(run.run_dir)
    assert [r["train_units"] for r in records] == [96, 96]
    active = read_metrics(_train(tmp_path, "ml3", "modality-level", {"warmup": 0, "alpha": 3.0}).run_dir)
    assert max(r["train_units"] for r in active) > 96  # the counter does move when alpha > 0


def test_cli_train_and_compare_refuse(tmp_path) -> None:
    from mmcoop.cli.app import app

    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "train",
            "--dataset",
            "synthetic",
            "--method",
            "sample-level",
            "--epochs",
            "3",
            "--out-dir",
            str(tmp_path),
            "--set",
            "train.progress=false",
        ],
    )
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.split())
    assert "method_options.warmup=5" in flat and "train.epochs=3" in flat and "allow_noop" in flat
    res = runner.invoke(
        app,
        [
            "compare",
            "--dataset",
            "synthetic",
            "--methods",
            "joint,sample-level",
            "--seeds",
            "0",
            "--epochs",
            "2",
            "--out-dir",
            str(tmp_path),
            "--name",
            "c",
            "--matched",
            "none",
        ],
    )
    assert res.exit_code == 2 and "method_options.warmup=5" in " ".join(res.output.split()), res.output
    assert not (tmp_path / "c").exists()  # refused before the first run (joint) trained


def test_compare_names_every_noop_method_at_once(tmp_path) -> None:
    from mmcoop.experiment import parse_methods, run_compare

    base = RunConfig.from_dict(
        {"dataset": "synthetic", "train": {"epochs": 2, "progress": False}, "out_dir": str(tmp_path)}
    )
    specs = parse_methods("joint,sample-level:weighted,opm,relearning,ogm-ge")
    with pytest.raises(ConfigError) as err:
        run_compare(base, specs, [0, 1], name="c", matched=())
    msg = str(err.value)
    for words in (
        "'sample-level:weighted'",
        "warmup=5",
        "'opm'",
        "modulation_starts=6",
        "'relearning'",
        "reinit_epoch=20",
        "train.epochs=2",
        "allow_noop=true",
    ):
        assert words in msg, msg
    assert "ogm-ge" not in msg and msg.count("would train exactly like joint") == 3  # once per method, not per seed
    assert not (tmp_path / "c").exists()
    # the opt-in shared by every method lets the comparison start (only checked here, not trained)
    _, df, _ = run_compare(
        base.replace(train={"epochs": 1, "progress": False}),
        parse_methods("joint,opm"),
        [0],
        name="d",
        matched=(),
        shared_options={"allow_noop": True},
    )
    assert list(df["method"]) == ["joint", "opm"]
