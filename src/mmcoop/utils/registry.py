"""A name -> object registry with a ``@register`` decorator (timm style)."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from mmcoop.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Registry of named objects.

    Args:
        kind: what is registered ("dataset", "method", ...), used in error messages.

    Example:
        >>> METHODS = Registry("method")
        >>> @METHODS.register("joint")
        ... class Joint: ...
        >>> METHODS.get("joint") is Joint
        True
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
