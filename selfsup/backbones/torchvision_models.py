"""Any torchvision classification model as a backbone: ``build_backbone("convnext_tiny")``.

The model is built by ``torchvision.models.get_model`` (random weights; load a file
through the checkpoint entry), its classifier left out, and its stage outputs read with
``torchvision.models.feature_extraction.create_feature_extractor``, so no forward pass is
rewritten by hand. Parameter and buffer names are torchvision's (a torchvision state dict
loads, minus its classifier).

Stages by family (:data:`STAGE_NODES`): the four ``layerN`` of ResNets, Wide ResNets and
ResNeXts; the four stage blocks of ConvNeXt (``features.1/3/5/7``); every encoder block
of a Vision Transformer, whose patch tokens are laid out as a map. A ViT's feature is its
class token after the final norm (``pool: mean``: its patch tokens' mean); the others average
the last map. Vision Transformers of other sizes: :mod:`selfsup.backbones.vit`.
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


class TorchvisionAdapter(Backbone):
    """A built torchvision classifier, headless, read through its ``stage_nodes`` (the shared base)."""

    def __init__(self, model: nn.Module, name: str, stage_nodes: list[str], pool: str | None = None) -> None:
        """Adopt ``model``'s modules under torchvision's names.

        Args:
            model: a torchvision classification model (its head is left out).
            name: what the model is called in messages.
            stage_nodes: the nodes whose outputs are the stages.
            pool: a ViT's feature, ``cls`` (the class token after the final norm, the default) or
                ``mean`` (the mean of the patch tokens after that norm); the others pool by mean.
        """
        super().__init__()
        self.name, self.is_vit = name, isinstance(model, torchvision.models.VisionTransformer)
        choices = ("cls", "mean") if self.is_vit else ("mean",)
        pool = choices[0] if pool is None else pool
        if pool not in choices:
            raise ConfigurationError(f"backbone {name!r} pools its feature by one of {list(choices)}, not {pool!r}.")
        self.pool, self.stage_nodes = pool, stage_nodes
        self.image_size = getattr(model, "image_size", None)
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

    def train(self, mode: bool = True) -> "TorchvisionAdapter":
        """Also the extractor's mode, which picks its traced graph (torchvision traces one per mode)."""
        super().train(mode)
        self.extractor.train(mode)
        return self

    def __setstate__(self, state: dict) -> None:
        """After a copy: copying the extractor put the shared modules in training mode; restore this one's."""
        super().__setstate__(state)
        self.train(self.training)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_stages(images)[1]  # the extractor computes a ViT's final norm anyway

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_with_stages(images)[0]

    def forward_with_stages(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        self.check_input_size(images)
        outputs = self.extractor(images)
        maps = [self._as_map(outputs[node]) for node in self.stage_nodes]
        if not self.is_vit:
            return maps[-1].mean(dim=(2, 3)), maps
        tokens = outputs["encoder.ln"]
        return (tokens[:, 0] if self.pool == "cls" else tokens[:, 1:].mean(dim=1)), maps

    def check_input_size(self, images: torch.Tensor) -> None:
        """Refuse, in one line, images of another size than a ViT's position embedding was built for."""
        if self.is_vit and tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ConfigurationError(
                f"the ViT backbone takes {self.image_size}x{self.image_size} images, got {images.shape[-2]}x"
                f"{images.shape[-1]}: set model.init_args.backbone_kwargs.image_size to the size it is fed "
                "(the data's image_size, or the tile or patch size of a method that encodes tiles)."
            )

    def stage_modules(self) -> list[nn.Module]:
        return [self.get_submodule(node) for node in self.stage_nodes]

    def _as_map(self, output: torch.Tensor) -> torch.Tensor:
        """A ViT block's ``(B, 1 + h*w, D)`` tokens as a ``(B, D, h, w)`` map of its patch tokens."""
        if not self.is_vit:
            return output
        patches = output[:, 1:]
        side = int(round(patches.shape[1] ** 0.5))
        return patches.transpose(1, 2).reshape(patches.shape[0], patches.shape[2], side, side)


class TorchvisionBackbone(TorchvisionAdapter):
    def __init__(self, name: str, pool: str | None = None, **kwargs) -> None:
        """torchvision's ``name`` without its classifier; ``kwargs`` go to its builder (a ViT's ``image_size``)."""
        stages = next((nodes for pattern, nodes in STAGE_NODES if re.fullmatch(pattern, name)), None)
        if stages is None:
            raise ConfigurationError(
                f"no stage layout for torchvision model {name!r}; choose one of {torchvision_names()}."
            )
        try:
            model = torchvision.models.get_model(name, weights=None, **kwargs)
        except (TypeError, ValueError) as error:
            raise ConfigurationError(f"torchvision model {name!r} refuses {kwargs}: {error}") from None
        super().__init__(model, name, stages(model), pool)
