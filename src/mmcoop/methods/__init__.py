"""Training strategies registered by name (``METHODS``)."""

from mmcoop.methods.base import (
    METHODS, Method, MethodContext, MethodOptions, build_method, check_not_noop, noop_problem, variant_of, variant_options,
)
from mmcoop.methods import joint as _joint  # noqa: F401,E402
from mmcoop.methods import sample_level as _sample_level  # noqa: F401,E402
from mmcoop.methods import modality_level as _modality_level  # noqa: F401,E402
from mmcoop.methods import peers as _peers  # noqa: F401,E402 (OGM-GE, PMR, AGM, MLA, ... registered)

__all__ = ["METHODS", "Method", "MethodContext", "MethodOptions", "build_method", "check_not_noop", "noop_problem", "variant_of", "variant_options"]
