"""Model registry (timm's ``register_model`` style) and `create_model`.

A model builder is called as ``builder(modalities, num_classes, *, specs, **options)``
and returns an object implementing `mmcoop.models.protocol`. Built-ins register
with ``@register_model(name)``; a user's builder is reached through a config target
``"pkg.module:callable"`` with the same call (``specs`` is passed only if the callable
accepts it). Both building a run and reloading it (``load_run``) go through here.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from mmcoop.errors import ConfigError
from mmcoop.models.protocol import check_model
from mmcoop.utils.registry import Registry
from mmcoop.utils.targets import call_with_supported, resolve_target

ModelBuilder = Callable[..., Any]
#: Every model builder, by name: built-ins register with ``@register_model(name)`` in a module of
#: `mmcoop.models` (imported on first read); installed packages through the ``mmcoop.models``
#: entry-point group.
MODELS: Registry[ModelBuilder] = Registry("model", builtins="mmcoop.models", group="mmcoop.models")


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    """Decorator registering a model builder under ``name``."""
    return MODELS.register(name)


def create_model(
    name: str | None,
    specs: Sequence[Any],
    num_classes: int,
    target: str | None = None,
    **options: Any,
) -> Any:
    """Build the model ``name`` (registered) or ``target`` (``"pkg.module:callable"``) for the data.

    Args:
        name: a registered model name (ignored when ``target`` is given).
        specs: the data's `ModalitySpec` list (modality order).
        num_classes: number of classes ``C``.
        target: user builder, called as ``fn(modalities, num_classes, **options)`` (plus
            ``specs=`` when it accepts it).
        **options: builder options (from the config's ``model.options``).

    Returns:
        The model, checked against the contract (modalities equal the data's, in order).
    """
    modalities = [s.name for s in specs]
    if target:
        key = f"model.target={target!r}"
        fn = resolve_target(target, "model.target")
    else:
        key = f"model {name!r}"
        fn = MODELS.get(name or "")
    model = call_with_supported(fn, (modalities, num_classes), {"specs": list(specs)}, dict(options), key)
    if model is None:
        raise ConfigError(f"{key} returned None; it must return the model (an nn.Module)")
    check_model(model, modalities, what=key)
    return model
