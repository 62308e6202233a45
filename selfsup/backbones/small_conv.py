"""A four-stage convolutional network small enough to train on a CPU."""

import torch
from torch import nn

from selfsup.backbones.base import Backbone


class SmallConvNet(Backbone):
    """Four conv3x3-BN-ReLU stages of ``width``, 2x, 4x and 8x channels.

    The first stage keeps the resolution, the others halve it: at 16x16 input the
    maps are 16, 8, 4 and 2 pixels wide. ``width=32`` has about 0.4M parameters.
    """

    def __init__(self, width: int = 32, in_channels: int = 3) -> None:
        super().__init__()
        self.stage_dims = tuple(width * 2**i for i in range(4))
        self.feature_dim = self.stage_dims[-1]
        stages = []
        channels = in_channels
        for index, out_channels in enumerate(self.stage_dims):
            stages.append(
                nn.Sequential(
                    nn.Conv2d(channels, out_channels, 3, stride=1 if index == 0 else 2, padding=1, bias=False),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=True),
                )
            )
            channels = out_channels
        self.stages = nn.ModuleList(stages)

    def stage_modules(self) -> list[nn.Module]:
        return list(self.stages)

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        maps = []
        x = images
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps
