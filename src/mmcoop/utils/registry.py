"""A name -> object registry with a ``@register`` decorator (timm style), and plugin discovery.

A registry may name the package that holds its built-ins (``builtins``, imported on
first use so that each built-in registers itself with its decorator: no hand-kept
list) and an entry-point group (``group``) through which installed packages add
their own entries, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points."mmcoop.methods"]
    my-method = "my_pkg.method"      # a module whose import registers it

Built-ins and plugins are loaded the first time the registry is read.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from mmcoop.errors import ConfigError

T = TypeVar("T")


def import_submodules(package: str) -> None:
    """Import ``package`` and every module below it (their decorators register them)."""
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(getattr(pkg, "__path__", []), prefix=f"{package}."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)


class Registry(Generic[T]):
    """Registry of named objects.

    Args:
        kind: what is registered ("dataset", "method", ...), used in error messages.
        builtins: package whose modules register the built-ins (imported on first read).
        group: entry-point group of third-party plugins (loaded on first read).
        name_attr: attribute that :meth:`register` sets on the registered object to its name
            (e.g. ``"name"`` for methods: the name is written once, in the decorator).

    Example:
        >>> METHODS = Registry("method")
        >>> @METHODS.register("joint")
        ... class Joint: ...
        >>> METHODS.get("joint") is Joint
        True
    """

    def __init__(
        self, kind: str, builtins: str | None = None, group: str | None = None, name_attr: str | None = None
    ) -> None:
        self.kind = kind
        self.builtins = builtins
        self.group = group
        self.name_attr = name_attr
        self._items: dict[str, T] = {}
        self._discovered = builtins is None and group is None

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            if self.name_attr is not None:
                setattr(obj, self.name_attr, name)
            self._items[name] = obj
            return obj

        return deco

    def discover(self) -> None:
        """Import the built-ins and the installed plugins (once)."""
        if self._discovered:
            return
        self._discovered = True
        if self.builtins:
            import_submodules(self.builtins)
        if self.group:
            for ep in metadata.entry_points(group=self.group):
                try:
                    obj = ep.load()
                except Exception as exc:  # a broken plugin names itself instead of breaking mmcoop
                    raise ConfigError(
                        f"plugin {ep.name!r} ({ep.value}, entry point group {self.group!r}) failed to load: "
                        f"{type(exc).__name__}: {exc}; fix or uninstall the package that provides it"
                    ) from exc
                if not isinstance(obj, type(importlib)) and ep.name not in self._items:
                    self.register(ep.name)(obj)  # an entry point may name the object itself

    def get(self, name: str) -> T:
        self.discover()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        self.discover()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._items[n]) for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self.discover()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
