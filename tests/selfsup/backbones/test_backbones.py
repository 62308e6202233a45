import pytest
import torch

from selfsup.backbones import build_backbone
from selfsup.errors import ConfigurationError


def test_small_conv_stages_and_feature_dim():
    backbone = build_backbone("small_conv", width=8)
    maps = backbone.forward_stages(torch.randn(2, 3, 16, 16))
    assert [tuple(m.shape[1:]) for m in maps] == [(8, 16, 16), (16, 8, 8), (32, 4, 4), (64, 2, 2)]
    assert backbone(torch.randn(2, 3, 16, 16)).shape == (2, backbone.feature_dim) == (2, 64)


@pytest.mark.parametrize("cifar_stem, first_map", [(True, 32), (False, 8)])
def test_resnet18_stages_with_and_without_cifar_stem(cifar_stem, first_map):
    backbone = build_backbone("resnet18", cifar_stem=cifar_stem).eval()
    maps = backbone.forward_stages(torch.randn(1, 3, 32, 32))
    assert [m.shape[1] for m in maps] == list(backbone.stage_dims) == [64, 128, 256, 512]
    assert maps[0].shape[-1] == first_map
    assert backbone(torch.randn(1, 3, 32, 32)).shape == (1, 512)
    assert not hasattr(backbone, "fc")


def test_resnet50_feature_dim_is_2048():
    assert build_backbone("resnet50").feature_dim == 2048


def test_resnet_weights_use_torchvision_names():
    import torchvision

    ours = set(build_backbone("resnet18").state_dict())
    theirs = {key for key in torchvision.models.resnet18().state_dict() if not key.startswith("fc.")}
    assert ours == theirs


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(ConfigurationError, match="unknown backbone 'vgg'.*small_conv"):
        build_backbone("vgg")


def test_unknown_backbone_argument_is_named():
    with pytest.raises(ConfigurationError, match=r"takes no argument\(s\) \['depth_multiplier'\]"):
        build_backbone("small_conv", depth_multiplier=2)
