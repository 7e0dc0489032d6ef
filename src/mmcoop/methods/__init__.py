"""Training strategies registered by name (``METHODS``).

Each method is one module (under `mmcoop.methods`, peers under `mmcoop.methods.peers`
with their pure cores in `mmcoop.methods.functional`) whose class registers itself with
``@METHODS.register(name)``; the registry imports them on first read (no list to keep here).
"""

from mmcoop.methods.base import (
    METHODS,
    Method,
    MethodContext,
    MethodOptions,
    build_method,
    check_not_noop,
    noop_problem,
    variant_of,
    variant_options,
)

__all__ = [
    "METHODS",
    "Method",
    "MethodContext",
    "MethodOptions",
    "build_method",
    "check_not_noop",
    "noop_problem",
    "variant_of",
    "variant_options",
]
