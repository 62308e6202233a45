"""torchvision ResNets as backbones, with the CIFAR stem of SimCLR's appendix B.9."""

import torch
import torchvision.models.resnet as tv_resnet
from torch import nn

from selfsup.backbones.base import Backbone

_LAYOUTS = {
    18: (tv_resnet.BasicBlock, [2, 2, 2, 2]),
    34: (tv_resnet.BasicBlock, [3, 4, 6, 3]),
    50: (tv_resnet.Bottleneck, [3, 4, 6, 3]),
}


class ResNet(tv_resnet.ResNet, Backbone):
    """ResNet-18/34/50 without its classifier.

    ``cifar_stem`` replaces the 7x7 stride-2 convolution and the max-pool by one 3x3
    stride-1 convolution, which small (32x32) images need to keep spatial detail.
    Parameter names match torchvision's, so its checkpoints load (minus ``fc``).
    The four stages are ``layer1`` to ``layer4``.
    """

    def __init__(self, depth: int = 18, cifar_stem: bool = False, zero_init_residual: bool = False) -> None:
        if depth not in _LAYOUTS:
            raise ValueError(f"ResNet depth must be one of {sorted(_LAYOUTS)}, got {depth}")
        block, layers = _LAYOUTS[depth]
        super().__init__(block, layers, zero_init_residual=zero_init_residual)
        if cifar_stem:
            self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
            self.maxpool = nn.Identity()
        del self.fc
        self.stage_dims = tuple(64 * 2**i * block.expansion for i in range(4))
        self.feature_dim = self.stage_dims[-1]

    def stage_modules(self) -> list[nn.Module]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_stages(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        maps = []
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
            maps.append(x)
        return maps

    forward = Backbone.forward
