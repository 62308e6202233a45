"""Any torchvision classification model as a backbone: ``build_backbone("convnext_tiny")``.

The model is built by ``torchvision.models.get_model`` (random weights; load a file
through the checkpoint entry), its classifier left out, and its stage outputs read with
``torchvision.models.feature_extraction.create_feature_extractor``, so no forward pass is
rewritten by hand. Parameter and buffer names are torchvision's (a torchvision state dict
loads, minus its classifier).

Stages by family (:data:`STAGE_NODES`): the four ``layerN`` of ResNets, Wide ResNets and
ResNeXts; the four stage blocks of ConvNeXt (``features.1/3/5/7``); every encoder block
of a Vision Transformer, whose patch tokens are laid out as a map. A ViT's feature is its
class token after the final norm; the others average the last map.
"""

import re

import torch
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

from selfsup.backbones.base import Backbone
from selfsup.errors import ConfigurationError

#: (model-name pattern, the nodes whose outputs are the stages).
STAGE_NODES = (
    (r"(resnet|wide_resnet|resnext)\d.*", lambda model: [f"layer{index}" for index in range(1, 5)]),
    (r"convnext_.*", lambda model: [f"features.{index}" for index in (1, 3, 5, 7)]),
    (r"vit_.*", lambda model: [f"encoder.layers.encoder_layer_{i}" for i in range(len(model.encoder.layers))]),
)
_HEADS = ("fc", "classifier", "heads")


def torchvision_names() -> list[str]:
    """The torchvision classification models that :class:`TorchvisionBackbone` can build."""
    return [
        name
        for name in torchvision.models.list_models(module=torchvision.models)
        if any(re.fullmatch(pattern, name) for pattern, _ in STAGE_NODES)
    ]


class TorchvisionBackbone(Backbone):
    def __init__(self, name: str, **kwargs) -> None:
        """torchvision's ``name`` without its classifier; ``kwargs`` go to its builder (a ViT's ``image_size``)."""
        super().__init__()
        stages = next((nodes for pattern, nodes in STAGE_NODES if re.fullmatch(pattern, name)), None)
        if stages is None:
            raise ConfigurationError(
                f"no stage layout for torchvision model {name!r}; choose one of {torchvision_names()}."
            )
        try:
            model = torchvision.models.get_model(name, weights=None, **kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"torchvision model {name!r} refuses {kwargs}: {error}") from None
        self.name, self.is_vit = name, name.startswith("vit_")
        self.stage_nodes = stages(model)
        for child, module in model.named_children():
            if child not in _HEADS:
                self.add_module(child, module)
        for parameter_name, parameter in model.named_parameters(recurse=False):
            self.register_parameter(parameter_name, parameter)
        nodes = self.stage_nodes + (["encoder.ln"] if self.is_vit else [])
        # Not a submodule: it shares this module's parameters, which keep torchvision's names.
        self.__dict__["extractor"] = create_feature_extractor(model, return_nodes=nodes)
        size = getattr(model, "image_size", 64)
        with torch.no_grad():
            maps = self.eval().forward_stages(torch.zeros(1, 3, size, size))
        self.train()
        self.stage_dims = tuple(stage.shape[1] for stage in maps)
        self.feature_dim = self.stage_dims[-1]

    def train(self, mode: bool = True) -> "TorchvisionBackbone":
        """Also the extractor's mode, which picks its traced graph (torchvision traces one per mode)."""
        super().train(mode)
        self.extractor.train(mode)
        return self

    def __setstate__(self, state: dict) -> None:
        """After a copy: copying the extractor put the shared modules in training mode; restore this one's."""
        super().__setstate__(state)
        self.train(self.training)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        outputs = self.extractor(images)
        return [self._as_map(outputs[node]) for node in self.stage_nodes]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.is_vit:
            return self.extractor(images)["encoder.ln"][:, 0]
        return self.forward_stages(images)[-1].mean(dim=(2, 3))

    def stage_modules(self) -> list[nn.Module]:
        return [self.get_submodule(node) for node in self.stage_nodes]

    def _as_map(self, output: torch.Tensor) -> torch.Tensor:
        """A ViT block's ``(B, 1 + h*w, D)`` tokens as a ``(B, D, h, w)`` map of its patch tokens."""
        if not self.is_vit:
            return output
        patches = output[:, 1:]
        side = int(round(patches.shape[1] ** 0.5))
        return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], side, side)
