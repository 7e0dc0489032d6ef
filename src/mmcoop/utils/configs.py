"""Strict dataclass <-> dict conversion for configs: unknown keys are errors listing valid ones."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar, Union

from mmcoop.errors import ConfigError

T = TypeVar("T")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def from_dict(cls: type[T], data: dict[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, recursively; ``path`` prefixes keys in errors.

    Raises:
        ConfigError: on an unknown key (listing the valid keys) or a value of the wrong type.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config section {path or '<root>'!r} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in section {path!r}" if path else ""
        raise ConfigError(f"unknown config key(s) {unknown}{where}; valid keys: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        key = f"{path}.{name}" if path else name
        tp, optional = _unwrap_optional(hints[name])
        if value is None and optional:
            kwargs[name] = None
        elif _is_dataclass_type(tp):
            kwargs[name] = from_dict(tp, value, key)
        else:
            kwargs[name] = _coerce(value, tp, key)
    return cls(**kwargs)


def _to_float(value: Any, key: str) -> float:
    """A finite float from a number or a numeric string (YAML reads ``1e-3`` as a string)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"config key {key!r} must be a number, got {value!r}")
    try:
        out = float(value)
    except (ValueError, OverflowError):
        raise ConfigError(f"config key {key!r} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"config key {key!r} must be a finite number, got {value!r}")
    return out


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or origin is typing.Literal:
        if origin is typing.Literal and value not in typing.get_args(tp):
            valid = ", ".join(map(str, typing.get_args(tp)))
            raise ConfigError(f"config key {key!r} = {value!r} is invalid; valid values: {valid}")
        return value
    if tp is float:
        return _to_float(value, key)
    if tp in (int, str, bool) and not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"config key {key!r} must be {tp.__name__}, got {value!r}")
    if origin is dict and not isinstance(value, dict):
        raise ConfigError(f"config key {key!r} must be a mapping, got {value!r}")
    if origin in (list, tuple) and isinstance(value, (list, tuple)):
        return list(value) if origin is list else tuple(value)
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-dict form of a (nested) dataclass, tuples as lists (YAML friendly)."""

    def conv(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        return v

    return conv(obj)
