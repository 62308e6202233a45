"""A backbone written for other tools: torchvision, safetensors, detectron2.

* ``torchvision``: the state dict of the torchvision model without its classifier; it
  loads with ``strict=True`` into ``torchvision.models.resnet50()`` whose ``fc`` is
  ``nn.Identity()`` (a CIFAR-stem ResNet into one whose ``conv1`` and ``maxpool`` were
  replaced the same way).
* ``safetensors``: the same tensors in the safetensors format (no pickle; readable by
  any framework), with the architecture and the input format in its metadata, so that
  this project reads it back as it reads ``backbone.pt``.
* ``detectron2``: a ResNet in detectron2's naming (``stem.conv1``, ``res2.0.conv1.norm``,
  ``shortcut``), the pickle of numpy arrays that MoCo's ``convert-pretrain-to-detectron2.py``
  writes, so that detection transfer is one config away (detectron2's ``WEIGHTS``, with
  ``matching_heuristics``).
"""

import json
import pickle
import re
from pathlib import Path

import torch
from safetensors.torch import save

from selfsup.backbones import Backbone, ResNet
from selfsup.checkpoints import EXPORT_FORMAT, atomic_save, atomic_write_bytes
from selfsup.errors import ConfigurationError

FORMATS = ("torchvision", "safetensors", "detectron2")


def torchvision_state_dict(backbone: Backbone) -> dict[str, torch.Tensor]:
    """The backbone's tensors under torchvision's names (a ResNet's are torchvision's already)."""
    if not isinstance(backbone, ResNet):
        raise ConfigurationError(
            f"the torchvision and detectron2 formats hold ResNets; a {type(backbone).__name__} has no torchvision "
            "counterpart: export it as safetensors."
        )
    return {key: value.detach().cpu().contiguous() for key, value in backbone.state_dict().items()}


def detectron2_state_dict(backbone: Backbone) -> dict[str, torch.Tensor]:
    """torchvision ResNet names turned into detectron2's, as MoCo's conversion script does."""
    converted = {}
    for key, value in torchvision_state_dict(backbone).items():
        if key.endswith("num_batches_tracked"):
            continue
        name = key if key.startswith("layer") else f"stem.{key}"
        name = re.sub(r"layer(\d)", lambda match: f"res{int(match.group(1)) + 1}", name)
        name = re.sub(r"bn(\d)", r"conv\1.norm", name)
        name = name.replace("downsample.0", "shortcut").replace("downsample.1", "shortcut.norm")
        converted[name] = value
    return converted


def write(backbone: Backbone, path: Path, to: str, metadata: dict) -> None:
    """Write ``backbone`` to ``path`` in format ``to`` (one of :data:`FORMATS`), atomically."""
    if to == "torchvision":
        atomic_save(torchvision_state_dict(backbone), path)
    elif to == "safetensors":
        tensors = {key: value.detach().cpu().contiguous() for key, value in backbone.state_dict().items()}
        text = {key: json.dumps(value) for key, value in {"format": EXPORT_FORMAT, **metadata}.items()}
        atomic_write_bytes(save(tensors, metadata=text), path)
    elif to == "detectron2":
        model = {key: value.numpy() for key, value in detectron2_state_dict(backbone).items()}
        payload = {"model": model, "__author__": "selfsup", "matching_heuristics": True}
        atomic_write_bytes(pickle.dumps(payload), path)
    else:
        raise ConfigurationError(f"--to must be one of {', '.join(FORMATS)}, got {to!r}.")
