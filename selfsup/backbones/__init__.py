"""Backbones by name: ``build_backbone("resnet18", cifar_stem=True)``.

To add your own, subclass :class:`Backbone` and register a constructor in
``BACKBONES``; configs and checkpoints refer to backbones by these names.
"""

import functools
import inspect
from collections.abc import Callable

from selfsup.backbones.base import Backbone
from selfsup.backbones.resnet import ResNet
from selfsup.backbones.small_conv import SmallConvNet
from selfsup.errors import ConfigurationError

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "resnet18": functools.partial(ResNet, depth=18),
    "resnet34": functools.partial(ResNet, depth=34),
    "resnet50": functools.partial(ResNet, depth=50),
    "small_conv": SmallConvNet,
}


def build_backbone(name: str, **kwargs) -> Backbone:
    """Instantiate the backbone registered as ``name`` with keyword arguments ``kwargs``."""
    if name not in BACKBONES:
        raise ConfigurationError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}.")
    constructor = BACKBONES[name]
    accepted = inspect.signature(constructor).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        allowed = sorted(key for key in accepted if key != "depth")
        raise ConfigurationError(f"backbone {name!r} takes no argument(s) {unknown}; it accepts {allowed}.")
    return constructor(**kwargs)


__all__ = ["BACKBONES", "Backbone", "ResNet", "SmallConvNet", "build_backbone"]
