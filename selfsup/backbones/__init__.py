"""Backbones by name: ``build_backbone("resnet18", cifar_stem=True)``, ``build_backbone("convnext_tiny")``.

The names of ``BACKBONES`` come first; any other name is a torchvision classification
model (:mod:`selfsup.backbones.torchvision_models`: ResNet-101, Wide ResNet, ResNeXt,
ConvNeXt, ViT, ...); ``vit_micro``, ``vit_small`` and ``vit_base`` are Vision Transformers of
those sizes (:mod:`selfsup.backbones.vit`). To add your own, subclass :class:`Backbone` and register a
constructor in ``BACKBONES``; configs and checkpoints refer to backbones by these names.
"""

import functools
import inspect
from collections.abc import Callable

from selfsup.backbones.base import Backbone
from selfsup.backbones.resnet import ResNet
from selfsup.backbones.small_conv import SmallConvNet
from selfsup.backbones.torchvision_models import TorchvisionAdapter, TorchvisionBackbone, torchvision_names
from selfsup.backbones.vit import VIT_SIZES, ViT
from selfsup.errors import ConfigurationError

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "resnet18": functools.partial(ResNet, depth=18),
    "resnet34": functools.partial(ResNet, depth=34),
    "resnet50": functools.partial(ResNet, depth=50),
    "small_conv": SmallConvNet,
    **{name: functools.partial(ViT, **size) for name, size in VIT_SIZES.items()},
}


def backbone_names() -> list[str]:
    """Every name :func:`build_backbone` accepts."""
    return sorted(BACKBONES) + [name for name in torchvision_names() if name not in BACKBONES]


def build_backbone(name: str, **kwargs) -> Backbone:
    """Instantiate the backbone registered as ``name`` (or torchvision's ``name``) with ``kwargs``."""
    if name not in BACKBONES:
        if isinstance(name, str) and name in torchvision_names():
            return TorchvisionBackbone(name, **kwargs)
        raise ConfigurationError(
            f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)} or a torchvision model "
            f"({', '.join(torchvision_names()[:6])}, ...)."
        )
    constructor = BACKBONES[name]
    accepted = inspect.signature(constructor).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        allowed = sorted(key for key in accepted if key != "depth")
        raise ConfigurationError(f"backbone {name!r} takes no argument(s) {unknown}; it accepts {allowed}.")
    return constructor(**kwargs)


__all__ = [
    "BACKBONES",
    "Backbone",
    "ResNet",
    "SmallConvNet",
    "TorchvisionAdapter",
    "TorchvisionBackbone",
    "ViT",
    "backbone_names",
    "build_backbone",
]
