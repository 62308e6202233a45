"""Any torchvision classification model as a backbone: ``build_backbone("convnext_tiny")``.

The model is built by ``torchvision.models.get_model`` (random weights; load a file
through the checkpoint entry), its classifier left out, and its stage outputs read with
``torchvision.models.feature_extraction.create_feature_extractor``, so no convolutional
network's forward pass is rewritten by hand. Parameter and buffer names are torchvision's (a torchvision state dict
loads, minus its classifier).

Stages by family (:data:`STAGE_NODES`): the four ``layerN`` of ResNets, Wide ResNets and
ResNeXts; the four stage blocks of ConvNeXt (``features.1/3/5/7``); every encoder block
of a Vision Transformer, whose patch tokens are laid out as a map. A ViT's feature is its
class token after the final norm (``pool: mean``: its patch tokens' mean); the others average
the last map. A ViT runs torchvision's modules block by block instead (no extractor), so that
an image of any multiple of its patch size gets the position embedding resized to its patch
grid. Vision Transformers of other sizes: :mod:`selfsup.backbones.vit`.
"""

import re

import torch
import torch.nn.functional as F
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
        if not self.is_vit:  # a ViT runs its blocks itself, to interpolate its position embedding
            # Not a submodule: it shares this module's parameters, which keep torchvision's names.
            self.__dict__["extractor"] = create_feature_extractor(model, return_nodes=self.stage_nodes)
        size = getattr(model, "image_size", 64)
        with torch.no_grad():
            maps = self.eval().forward_stages(torch.zeros(1, 3, size, size))
        self.train()
        self.stage_dims = tuple(stage.shape[1] for stage in maps)
        self.feature_dim = self.stage_dims[-1]

    def train(self, mode: bool = True) -> "TorchvisionAdapter":
        """Also the extractor's mode, which picks its traced graph (torchvision traces one per mode)."""
        super().train(mode)
        if not self.is_vit:
            self.extractor.train(mode)
        return self

    def __setstate__(self, state: dict) -> None:
        """After a copy: copying the extractor put the shared modules in training mode; restore this one's."""
        super().__setstate__(state)
        self.train(self.training)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        if self.is_vit:
            return self._vit_blocks(images)[1]
        return [self.extractor(images)[node] for node in self.stage_nodes]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_with_stages(images)[0]

    def forward_with_stages(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not self.is_vit:
            maps = self.forward_stages(images)
            return maps[-1].mean(dim=(2, 3)), maps
        tokens, maps = self._vit_blocks(images)
        tokens = self.encoder.ln(tokens)
        return (tokens[:, 0] if self.pool == "cls" else tokens[:, 1:].mean(dim=1)), maps

    def _vit_blocks(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The last block's tokens and every block's patch tokens as a map: torchvision's ViT before its final norm.

        The same modules in the same order as torchvision's ``_process_input`` and ``Encoder``
        (equal to them at the trained size), block by block, at any multiple of the patch size:
        the position embedding fits the image's patch grid (:meth:`position_embedding`), so DINO's
        96 px local crops pass a ViT built for 224 px.
        """
        self.check_patch_grid(images)
        tokens = self.conv_proj(images)
        rows, columns = tokens.shape[-2:]
        tokens = tokens.flatten(2).transpose(1, 2)
        tokens = torch.cat([self.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)
        tokens = self.encoder.dropout(tokens + self.position_embedding(rows, columns))
        maps = []
        for block in self.encoder.layers:
            tokens = block(tokens)
            maps.append(tokens[:, 1:].transpose(1, 2).reshape(tokens.shape[0], -1, rows, columns))
        return tokens, maps

    def position_embedding(self, rows: int, columns: int) -> torch.Tensor:
        """The ``(1, 1 + rows * columns, D)`` position embedding of a ``rows x columns`` patch grid.

        The trained one at the trained grid; at another grid its patch part is resized bicubically
        as a ``D``-channel image and the class token's entry kept (Dosovitskiy et al. 2021, §3.2;
        DINO's ``interpolate_pos_encoding``).
        """
        embedding = self.encoder.pos_embedding
        side = self.image_size // self.conv_proj.kernel_size[0]
        if (rows, columns) == (side, side):
            return embedding
        grid = embedding[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(rows, columns), mode="bicubic", align_corners=False)
        return torch.cat([embedding[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)

    def check_patch_grid(self, images: torch.Tensor) -> None:
        """Refuse, in one line, images whose sides are not a multiple of a ViT's patch size."""
        patch = self.conv_proj.kernel_size[0]
        height, width = images.shape[-2:]
        if images.ndim != 4 or height % patch or width % patch or not height or not width:
            raise ConfigurationError(
                f"the ViT backbone cuts {patch}x{patch} patches, so it takes images whose sides are multiples of "
                f"{patch}, got {tuple(images.shape)}: resize the views (data.init_args.image_size, a view group's "
                "image_size, a method's tile or patch size) or build the ViT with another patch_size."
            )

    def check_input_size(self, images: torch.Tensor) -> None:
        """Refuse images of another size than the position embedding's (a method that uses it as it is: MAE)."""
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ConfigurationError(
                f"the ViT backbone takes {self.image_size}x{self.image_size} images, got {images.shape[-2]}x"
                f"{images.shape[-1]}: set model.init_args.backbone_kwargs.image_size to the size it is fed "
                "(the data's image_size)."
            )

    def stage_modules(self) -> list[nn.Module]:
        return [self.get_submodule(node) for node in self.stage_nodes]


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
