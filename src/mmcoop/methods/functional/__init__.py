"""Peer methods' arithmetic as pure functions of tensors.

Each module holds one method's core (coefficients, weights, losses, updates) with no
``nn.Module``, optimizer, training loop or data; the method classes in `mmcoop.methods`
wire these into the training step. Every module docstring cites the paper and the official
repository (file, function) read for the arithmetic, its defaults, and each place where we
deliberately differ. Stacked per-modality logits are ``[M, B, C]``; per-modality scalars
are ``[M]``.

Every public function of every module here is also reachable as
``mmcoop.methods.functional.<name>`` (collected on import: a new core is one new file).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

__all__: list[str] = []


def _export_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, obj in vars(module).items():
            if not name.startswith("_") and callable(obj) and getattr(obj, "__module__", None) == module.__name__:
                if name in globals():
                    raise ImportError(f"{name!r} is defined in two modules of {__name__}")
                globals()[name] = obj
                __all__.append(name)
    __all__.sort()


_export_all()


def __getattr__(name: str) -> Any:  # for type checkers; every public name is set above
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
