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

    def parameter_groups(self) -> tuple[list[nn.Parameter], list[list[nn.Parameter]]]:
        """The stem's parameters and each stage's: every parameter in exactly one group.

        A parameter outside every stage module joins the stage that follows it in
        registration order: before the first stage it is the stem's (a ViT's class token,
        patch projection and position embedding), between two stages the next one's
        (ConvNeXt's downsampling layers), after the last stage the last one's (a ViT's
        final norm). Fine-tuning freezes and decays the learning rate by these groups.
        """
        owner = {id(p): index for index, stage in enumerate(self.stage_modules()) for p in stage.parameters()}
        stem: list[nn.Parameter] = []
        stages: list[list[nn.Parameter]] = [[] for _ in self.stage_modules()]
        waiting: list[nn.Parameter] = []
        for parameter in self.parameters():
            index = owner.get(id(parameter))
            if index is None:
                waiting.append(parameter)
                continue
            (stem if not any(stages) else stages[index]).extend(waiting)
            waiting = []
            stages[index].append(parameter)
        stages[-1].extend(waiting)
        return stem, stages

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_stages(images)[-1].mean(dim=(2, 3))

    def forward_with_stages(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``forward``'s feature and ``forward_stages``'s maps from one pass (a ViT's feature is not a pooled map)."""
        maps = self.forward_stages(images)
        return maps[-1].mean(dim=(2, 3)), maps
