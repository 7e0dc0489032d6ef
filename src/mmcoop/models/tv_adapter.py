"""``tv:<name>``: a torchvision model by name, weights from a local ``.pth``, as an image/frames encoder.

``model.options.encoders.visual: tv:resnet18`` with ``encoder_options.visual.weights:
/models/resnet18-f37072fd.pth`` builds ``torchvision.models.get_model("resnet18",
weights=None)``, loads that file (the state_dict torchvision's own weights download
writes, or a checkpoint holding it), and drops the classifier: the last ``nn.Linear``
of the model (``fc`` of a ResNet, ``heads.head`` of a ViT, ``classifier[-1]`` of an
EfficientNet/ConvNeXt/MobileNet) becomes ``Identity``, so the encoder returns the pooled
features in front of it. Without ``weights`` the backbone starts from random weights.
"""

from __future__ import annotations

from torch import nn

from mmcoop.errors import ConfigError
from mmcoop.models.encoders import ENCODERS
from mmcoop.models.pretrained import ImageBackbone, building_on_meta, load_weights, local_path, read_state_dict


def last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The dotted name and module of the last ``nn.Linear`` registered in ``model`` (its classifier).

    Raises:
        ConfigError: the model has no ``nn.Linear``.
    """
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ConfigError(f"{type(model).__name__} has no nn.Linear classifier to remove; use timm: or a target")
    return found[-1]


@ENCODERS.register("tv")
class TorchvisionEncoder(ImageBackbone):
    """``torchvision.models.get_model(source)`` without its classifier -> ``[B, dim]``.

    Args:
        shape: per-sample shape ``[C, H, W]`` (``C`` = 3, or 1 repeated) or ``[T, C, H, W]``.
        dim: output width (a projection follows unless it equals the feature width).
        source: the torchvision model name (``tv:<name>``).
        weights: local ``.pth`` with the model's state_dict (``None``: random initialisation).
    """

    def __init__(self, shape: tuple[int, ...], dim: int = 64, *, source: str, weights: str | None = None) -> None:
        import torchvision

        what = f"encoder 'tv:{source}'"
        try:
            model = torchvision.models.get_model(source, weights=None)
        except ValueError:
            raise ConfigError(
                f"{what}: torchvision has no model {source!r}; names: torchvision.models.list_models()"
            ) from None
        head_name, head = last_linear(model)
        if weights is not None and not building_on_meta():
            path = local_path(weights, f"{what} weights")
            load_weights(model, read_state_dict(path, what), path, what, ignore=[head_name])
        model.set_submodule(head_name, nn.Identity())
        super().__init__(model, head.in_features, 3, tuple(shape), dim, what)
