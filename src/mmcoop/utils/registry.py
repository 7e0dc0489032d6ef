"""A name -> object registry with a ``@register`` decorator (timm style), and plugin discovery.

A registry may name the package that holds its built-ins (``builtins``, imported on
first use so that each built-in registers itself with its decorator: no hand-kept
list) and an entry-point group (``group``) through which installed packages add
their own entries, e.g. in a plugin's ``pyproject.toml``::

    [project.entry-points."mmcoop.methods"]
    my-method = "my_pkg.method"      # a module whose import registers it

Built-ins and plugins are loaded the first time the registry is read. A plugin that cannot be used
(it raises at import, or names something that is not what the registry holds: ``X = 5``) is named
once in a warning and left out, so every other command still works; a command that asks for it by
its entry-point name gets the same message as an error. An entry point named like a built-in is
ignored, and said so once.
"""

from __future__ import annotations

import importlib
import pkgutil
import warnings
from importlib import metadata
from types import ModuleType
from typing import Callable, Generic, Iterator, TypeVar

from mmcoop.errors import ConfigError, MMCoopWarning

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
        name_attr: attribute that `register` sets on the registered object to its name
            (e.g. ``"name"`` for methods: the name is written once, in the decorator).
        expects: the class every entry must subclass (methods, loggers); without it an entry must
            be callable (dataset loaders, model builders). Checked for plugins' entry points.

    Example:
        >>> METHODS = Registry("method")
        >>> @METHODS.register("joint")
        ... class Joint: ...
        >>> METHODS.get("joint") is Joint
        True
    """

    def __init__(
        self,
        kind: str,
        builtins: str | None = None,
        group: str | None = None,
        name_attr: str | None = None,
        expects: type | None = None,
    ) -> None:
        self.kind = kind
        self.builtins = builtins
        self.group = group
        self.name_attr = name_attr
        self.expects = expects
        self._items: dict[str, T] = {}
        self._broken: dict[str, str] = {}  # entry-point name -> why the plugin is left out
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
                self._load_plugin(ep)

    def _plugin(self, ep: metadata.EntryPoint) -> str:
        return f"plugin {ep.name!r} ({ep.value}, entry point group {self.group!r})"

    def _load_plugin(self, ep: metadata.EntryPoint) -> None:
        """Register the object an entry point names (a module registers itself on import); a plugin that
        cannot be used is left out with one warning, and `get` of its name says why."""
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin names itself instead of breaking mmcoop
            self._leave_out(ep, f"failed to load: {type(exc).__name__}: {exc}")
            return
        if isinstance(obj, ModuleType):
            return
        if ep.name in self._items:
            if self._items[ep.name] is not obj:
                warnings.warn(
                    f"{self._plugin(ep)} is ignored: {self.kind} {ep.name!r} is built in (or came first from "
                    "another plugin); rename the entry point to use it",
                    MMCoopWarning,
                    stacklevel=4,
                )
            return
        problem = self._not_an_entry(obj)
        if problem is None:
            try:
                self.register(ep.name)(obj)
            except (AttributeError, TypeError) as exc:  # the name attribute cannot be set on it
                problem = f"names {obj!r}, which cannot be registered ({exc})"
        if problem is not None:
            self._leave_out(ep, problem)

    def _not_an_entry(self, obj: object) -> str | None:
        """Why ``obj`` cannot be a registered entry (None when it can)."""
        if self.expects is not None:
            if isinstance(obj, type) and issubclass(obj, self.expects):
                return None
            want = f"a subclass of {self.expects.__module__}.{self.expects.__qualname__}"
            return f"names {obj!r}, not {want}"
        return None if callable(obj) else f"names {obj!r}, which is not callable"

    def _leave_out(self, ep: metadata.EntryPoint, problem: str) -> None:
        message = f"{self._plugin(ep)} {problem}; fix or uninstall the package that provides it"
        self._broken[ep.name] = message
        warnings.warn(f"{message} (mmcoop carries on without it)", MMCoopWarning, stacklevel=5)

    def get(self, name: str) -> T:
        self.discover()
        try:
            return self._items[name]
        except KeyError:
            if name in self._broken:
                raise ConfigError(f"{self.kind} {name!r} is not available: {self._broken[name]}") from None
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
