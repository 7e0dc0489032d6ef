"""User code named in configs: ``"pkg.module:callable"`` targets."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from typing import Any, Callable

from mmcoop.errors import ConfigError


def _import(mod_name: str) -> Any:
    """Import ``mod_name``; a module not found on ``sys.path`` is also looked up in the current
    directory (as ``python -m`` does), so a project's own files work with the ``mmcoop`` command."""
    try:
        return importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        if e.name != mod_name.split(".")[0] or cwd in sys.path:
            raise
        sys.path.insert(0, cwd)
        try:
            return importlib.import_module(mod_name)
        except ModuleNotFoundError as e2:
            if e2.name == mod_name.split(".")[0]:
                sys.path.remove(cwd)
            raise


def resolve_target(target: str, key: str) -> Callable[..., Any]:
    """Import ``"pkg.module:callable"`` (``callable`` may be dotted, e.g. ``Class.method``).

    The module is imported from ``sys.path`` (``PYTHONPATH``) or, failing that, the current
    directory.

    Args:
        target: the target string from the config.
        key: the config key it came from (named in errors, e.g. ``model.target``).

    Raises:
        ConfigError: malformed target, module not importable, attribute missing or not callable.
    """
    if not isinstance(target, str) or target.count(":") != 1 or not all(target.split(":")):
        raise ConfigError(f"{key}={target!r} must look like 'package.module:callable' (e.g. mylab.models:build)")
    mod_name, attr = target.split(":")
    try:
        obj: Any = _import(mod_name)
    except Exception as e:  # noqa: BLE001 - any import failure of user code is reported the same way
        raise ConfigError(
            f"{key}={target!r}: cannot import module {mod_name!r} ({type(e).__name__}: {e}); "
            "make sure it is installed or on PYTHONPATH"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{key}={target!r}: module {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"{key}={target!r} is not callable")
    return obj


def call_with_supported(
    fn: Callable[..., Any], args: tuple[Any, ...], optional: dict[str, Any], options: dict[str, Any], key: str
) -> Any:
    """Call ``fn(*args, **options, **optional')`` where ``optional'`` keeps the keywords ``fn`` accepts.

    A ``TypeError`` raised by the call itself because of ``options`` (unexpected or missing
    keywords) becomes a `ConfigError` naming ``key``.
    """
    try:
        sig = inspect.signature(fn)
        params = sig.parameters
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
        extra = {k: v for k, v in optional.items() if takes_kwargs or k in params}
        sig.bind(*args, **options, **extra)
    except TypeError as e:
        raise ConfigError(
            f"{key}: {getattr(fn, '__name__', fn)} cannot be called with options {sorted(options)} ({e})"
        ) from None
    except ValueError:  # no signature (builtins): call as is
        extra = {}
    return fn(*args, **options, **extra)
