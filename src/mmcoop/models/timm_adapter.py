"""``timm:<name>``: ``timm.create_model(name, pretrained=False, num_classes=0)`` + a local checkpoint.

``encoders.visual: timm:resnet18`` with ``encoder_options.visual.checkpoint:
/models/resnet18.pth`` loads the file through timm's own pretrained loader
(``pretrained_cfg_overlay={"file": path}``: the classifier is dropped and the stem adapted
to the modality's channel count, as ``timm.create_model(..., pretrained=True)`` does for
the hub weights), so nothing is downloaded. ``num_classes=0`` makes the model return its
pooled features ``[N, model.num_features]``. Without ``checkpoint``: random weights.
Extra ``model_kwargs`` go to ``create_model`` (e.g. ``{drop_path_rate: 0.1}``).
Needs ``pip install 'mmcoop[timm]'``.
"""

from __future__ import annotations

from typing import Any

from mmcoop.errors import ConfigError
from mmcoop.models.encoders import ENCODERS
from mmcoop.models.pretrained import ImageBackbone, building_on_meta, local_path
from mmcoop.utils.optional import import_optional


@ENCODERS.register("timm")
class TimmEncoder(ImageBackbone):
    """A timm model's pooled features -> ``[B, dim]``.

    Args:
        shape: per-sample shape ``[C, H, W]`` or ``[T, C, H, W]`` (any ``C``: timm adapts the stem).
        dim: output width (a projection follows unless it equals ``num_features``).
        source: the timm model name (``timm:<name>``).
        checkpoint: local weights file (``None``: random initialisation).
        model_kwargs: further ``timm.create_model`` keyword arguments.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        dim: int = 64,
        *,
        source: str,
        checkpoint: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        what = f"encoder 'timm:{source}'"
        timm = import_optional("timm", "timm", what)
        if source not in timm.list_models():
            raise ConfigError(f"{what}: timm has no model {source!r}; names: timm.list_models()")
        kwargs: dict[str, Any] = {"num_classes": 0, "in_chans": int(shape[-3]) if len(shape) >= 3 else 3}
        kwargs.update(model_kwargs or {})
        if checkpoint is not None and not building_on_meta():
            path = local_path(checkpoint, f"{what} checkpoint")
            kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(path.resolve())})
        try:
            model = timm.create_model(source, **kwargs)
        except (RuntimeError, KeyError) as e:  # a checkpoint of another architecture
            raise ConfigError(f"{what}: cannot load {checkpoint} into the model ({str(e)[:400]})") from None
        super().__init__(model, int(model.num_features), kwargs["in_chans"], tuple(shape), dim, what)
