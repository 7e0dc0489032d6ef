"""Optional packages: import one, or stop with the ``pip install 'mmcoop[extra]'`` that provides it."""

from __future__ import annotations

import importlib
from types import ModuleType

from mmcoop.errors import ConfigError


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """``importlib.import_module(module)``, or one `ConfigError` naming what to install.

    Args:
        module: the package to import, e.g. ``"transformers"``.
        extra: the mmcoop extra that installs it, e.g. ``"text"``.
        purpose: what needs it, for the message (e.g. ``"encoder 'hf:/models/bert'"``).

    Raises:
        ConfigError: the package is not installed (or fails to import).

    Example:
        >>> import_optional("math", "none", "a doctest").sqrt(4.0)
        2.0
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"{purpose} needs the Python package {module!r}, which is not installed or fails to import ({e}); "
            f"install it with: pip install 'mmcoop[{extra}]'"
        ) from None
