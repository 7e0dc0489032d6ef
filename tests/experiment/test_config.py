import pytest

from mmcoop.errors import ConfigError
from mmcoop.experiment import RunConfig, apply_overrides


def test_unknown_top_level_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['epoch'\]; valid keys: .*dataset.*method"):
        RunConfig.from_dict({"epoch": 3})


def test_unknown_nested_key_names_section():
    with pytest.raises(ConfigError, match=r"\['lrate'\] in section 'train'; valid keys: .*lr"):
        RunConfig.from_dict({"train": {"lrate": 0.1}})


def test_unknown_dataset_method_and_options():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'; valid datasets: .*avmnist.*mfeat"):
        RunConfig.from_dict({"dataset": "cifar"})
    with pytest.raises(ConfigError, match="unknown method 'ogm'; valid methods: .*joint"):
        RunConfig.from_dict({"method": "ogm"})
    with pytest.raises(ConfigError, match="for method 'joint'"):
        RunConfig.from_dict({"method": "joint", "method_options": {"alpha": 1}})
    with pytest.raises(ConfigError, match="unknown dataset_options"):
        RunConfig.from_dict({"dataset": "synthetic", "dataset_options": {"colour": 1}})


def test_type_and_choice_errors():
    with pytest.raises(ConfigError, match="train.epochs' must be int"):
        RunConfig.from_dict({"train": {"epochs": "many"}})
    with pytest.raises(ConfigError, match="valid values: adam, adamw, sgd"):
        RunConfig.from_dict({"train": {"optimizer": "lbfgs"}})
    with pytest.raises(ConfigError, match="valid fusions"):
        RunConfig.from_dict({"model": {"fusion": "attention"}})


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = RunConfig.from_dict(
        apply_overrides({"dataset": "synthetic"}, ["train.epochs=3", "debiased.strength=0.5", "seed=7"])
    )
    assert cfg.train.epochs == 3 and cfg.debiased.strength == 0.5 and cfg.seed == 7
    assert cfg.name == "synthetic-debiased_joint_seed7"
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    assert RunConfig.from_yaml(p).to_dict() == cfg.to_dict()
    with pytest.raises(ConfigError, match="does not exist"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.from_yaml(bad)
