"""What every backbone offers the methods and the downstream evaluations."""

import abc

import torch
from torch import nn


class Backbone(nn.Module, abc.ABC):
    """An image encoder made of sequential stages.

    ``forward`` returns the globally average-pooled output of the last stage, a
    ``(B, feature_dim)`` vector; ``forward_stages`` returns every stage's feature map,
    for methods that need a local map (Deep InfoMax, jigsaw) and layer-wise probes.
    """

    feature_dim: int
    stage_dims: tuple[int, ...]

    @abc.abstractmethod
    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps ``(B, stage_dims[s], H_s, W_s)`` after each stage ``s``."""

    @abc.abstractmethod
    def stage_modules(self) -> list[nn.Module]:
        """The module of each stage, in order (fine-tuning freezes or decays them by stage)."""

    def stem_modules(self) -> list[nn.Module]:
        """The children that run before the first stage (ResNet's ``conv1``, ``bn1``, ...)."""
        inside = {id(module) for stage in self.stage_modules() for module in stage.modules()}
        return [child for child in self.children() if not any(id(module) in inside for module in child.modules())]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(images)[-1].mean(dim=(2, 3))

    def forward_with_stages(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``forward``'s feature and ``forward_stages``'s maps from one pass (a ViT's feature is not a pooled map)."""
        maps = self.forward_stages(images)
        return maps[-1].mean(dim=(2, 3)), maps
