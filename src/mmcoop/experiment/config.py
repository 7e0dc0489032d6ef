"""The validated run configuration (YAML <-> dataclasses)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from mmcoop.data.registry import DATASETS, dataset_options
from mmcoop.errors import ConfigError
from mmcoop.methods.base import METHODS, build_method, variant_of
from mmcoop.models.fusion import FUSIONS
from mmcoop.models.registry import MODELS
from mmcoop.train.config import TrainConfig
from mmcoop.utils.configs import from_dict, to_dict
from mmcoop.utils.targets import resolve_target


MAX_SEED = 2**32 - 1  # NumPy's legacy seeding and every torch generator accept it


@dataclass
class ModelConfig:
    """Which model to build (see `mmcoop.models.create_model`).

    Attributes:
        name: a registered model (default ``late-fusion``: the paper's, one encoder per
            modality by its kind, then ``fusion``).
        target: ``"pkg.module:callable"``, a user builder called as
            ``fn(modalities, num_classes, **options)``; overrides ``name``.
        dim: feature width of the built-in encoders (``late-fusion`` only).
        fusion: fusion head of ``late-fusion``: ``concat``, ``sum``, ``film``, ``gated``.
        options: further keyword arguments of the builder (e.g. ``encoders: {audio:
            resnet18-spectrogram}`` for ``late-fusion``, anything for a target).
    """

    name: str = "late-fusion"
    target: Optional[str] = None
    dim: int = 64
    fusion: str = "concat"
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target:
            resolve_target(self.target, "model.target")
            return
        MODELS.get(self.name)  # raises ConfigError listing the valid models
        FUSIONS.get(self.fusion)  # raises ConfigError listing the valid heads
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ConfigError(f"model.dim must be >= 1 (the feature width of every encoder), got {self.dim!r}")

    def builder_options(self) -> dict[str, Any]:
        """Keyword arguments for the builder: ``options`` (+ ``dim``/``fusion`` for built-ins)."""
        if self.target:
            return dict(self.options)
        return {"dim": self.dim, "fusion": self.fusion, **self.options}


@dataclass
class DataConfig:
    """User data: ``target`` (``"pkg.module:callable"``) called with ``seed=`` (when accepted)
    and ``**options``; it returns the train/val/test splits (see `mmcoop.experiment.user_splits`)."""

    target: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        resolve_target(self.target, "data.target")


@dataclass
class DebiasConfig:
    """Degrade one random modality per sample (see `mmcoop.data.debias`)."""

    strength: float = 0.8
    mode: Literal["noise", "blank"] = "noise"

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0:
            raise ConfigError(f"debiased.strength must be in [0, 1], got {self.strength}")


@dataclass
class RunConfig:
    """Everything that defines a run; written resolved to ``runs/<name>/config.yaml``.

    Example YAML::

        dataset: avmnist
        method: sample-level
        method_options: {execution: weighted}
        train: {epochs: 10, lr: 0.001}
        debiased: {strength: 0.8}
    """

    name: str = ""
    dataset: str = "avmnist"
    dataset_options: dict[str, Any] = field(default_factory=dict)
    data: Optional[DataConfig] = None
    debiased: DebiasConfig | None = None
    method: str = "joint"
    method_options: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0
    data_root: str | None = None
    out_dir: str = "runs"
    preset: Optional[str] = None  # the preset the values were taken from (informational)

    def __post_init__(self) -> None:
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be an integer in [0, {MAX_SEED}], got {self.seed}")
        if self.data is not None:  # user data: ``dataset`` is only its name in run names
            if self.dataset_options:
                raise ConfigError("dataset_options apply to registered datasets; with data.target use data.options")
            if self.dataset == "avmnist":
                self.dataset = "custom"
        else:
            self._check_dataset()
        METHODS.get(self.method)
        build_method(self.method, self.method_options)  # validates method_options
        self._lift_lr_mult()
        if not self.name:
            self.name = default_run_name(self)

    def _lift_lr_mult(self) -> None:
        """Move each built-in encoder's ``lr_mult`` option to ``train.lr_groups["encoders.<m>"]``,
        so the resolved config records the optimizer's learning-rate groups in one place."""
        per = self.model.options.get("encoder_options") if not self.model.target else None
        if not isinstance(per, dict) or not any(isinstance(o, dict) and "lr_mult" in o for o in per.values()):
            return
        per = {m: dict(o) if isinstance(o, dict) else o for m, o in per.items()}
        groups = dict(self.train.lr_groups)
        for m, opts in per.items():
            if not isinstance(opts, dict) or "lr_mult" not in opts:
                continue
            mult, key = opts.pop("lr_mult"), f"encoders.{m}"
            if key in groups and groups[key] != mult:
                raise ConfigError(
                    f"model.options.encoder_options.{m}.lr_mult={mult} contradicts train.lr_groups[{key!r}]="
                    f"{groups[key]}; give one of them"
                )
            groups[key] = mult
        self.model.options = {**self.model.options, "encoder_options": per}
        self.train = dataclasses.replace(self.train, lr_groups=groups)  # validated by TrainConfig

    def _check_dataset(self) -> None:
        DATASETS.get(self.dataset)
        valid = dataset_options(self.dataset)
        unknown = sorted(set(self.dataset_options) - set(valid))
        if unknown:
            raise ConfigError(
                f"unknown dataset_options {unknown} for dataset {self.dataset!r}; valid: {', '.join(sorted(valid)) or '(none)'}"
            )

    # -- conversion -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "RunConfig":
        return from_dict(cls, data)

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(load_yaml_mapping(path))

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with top-level fields changed and the name re-derived unless given."""
        d = self.to_dict()
        d.update(changes)
        if "name" not in changes:
            d["name"] = ""
        return RunConfig.from_dict(d)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name


def default_run_name(cfg: RunConfig) -> str:
    ds = cfg.dataset + ("-debiased" if cfg.debiased else "")
    variant = variant_of(cfg.method, cfg.method_options)
    method = cfg.method + (f"-{variant}" if variant else "")
    return f"{ds}_{method}_seed{cfg.seed}"


def load_yaml_mapping(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; every way it can be wrong is one `ConfigError`.

    Args:
        path: the file.
        what: how to call it in messages.

    Returns:
        The mapping (empty for an empty file).
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; pass a YAML file (e.g. {path / 'config.yaml'})")
    if not path.is_file():
        raise ConfigError(f"{what} {path} does not exist; pass an existing YAML file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text file (not UTF-8); pass a YAML file") from None
    except OSError as e:
        raise ConfigError(f"{what} {path} cannot be read ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {' '.join(str(e).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of keys (key: value lines), got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a config dict."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.sub=value (e.g. train.epochs=5)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(
                f"override {item!r}: the value {raw!r} is not valid YAML (quote strings, write lists as [1, 2])"
            ) from None
        parts = key.split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r} has an empty key part; write e.g. train.epochs=5")
        node = data
        for p in parts[:-1]:
            if node.get(p) is None:  # absent, or an empty / disabled section (debiased: null)
                node[p] = {}
            node = node[p]
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section")
        node[parts[-1]] = value
    return data


__all__ = [
    "RunConfig",
    "ModelConfig",
    "DataConfig",
    "DebiasConfig",
    "TrainConfig",
    "apply_overrides",
    "load_yaml_mapping",
    "MAX_SEED",
    "dataclasses",
]
