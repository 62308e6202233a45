"""torchvision classification models as backbones: torchvision's weights in, torchvision's features out."""

import copy

import pytest
import torch
import torchvision
from torch import nn

from selfsup.backbones import build_backbone
from selfsup.checkpoints import load_backbone
from selfsup.errors import ConfigurationError


def _convnext_features(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """ConvNeXt's pooled last stage, before the classifier's LayerNorm (which is part of the head)."""
    return model.avgpool(model.features(images)).flatten(1)


def _headless(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    for head in ("fc", "heads"):
        if hasattr(model, head):
            setattr(model, head, nn.Identity())
    return model(images)


CASES = [
    ("resnext50_32x4d", {}, 32, _headless, 4),
    ("convnext_tiny", {}, 32, _convnext_features, 4),
    ("vit_b_16", {"image_size": 32}, 32, _headless, 12),
]


@pytest.mark.parametrize(("name", "kwargs", "size", "features", "stages"), CASES, ids=[case[0] for case in CASES])
def test_a_torchvision_state_dict_loads_and_gives_torchvisions_features(tmp_path, name, kwargs, size, features, stages):
    torch.manual_seed(0)
    source = torchvision.models.get_model(name, weights=None, **kwargs).eval()
    torch.save(source.state_dict(), tmp_path / f"{name}.pth")
    backbone, metadata = load_backbone(tmp_path / f"{name}.pth", backbone=name, backbone_kwargs=kwargs)
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = features(source, images)
        assert torch.allclose(backbone.eval()(images), expected, atol=1e-5)
        maps = backbone.forward_stages(images)
    assert len(maps) == len(backbone.stage_dims) == len(backbone.stage_modules()) == stages
    assert [stage.shape[1] for stage in maps] == list(backbone.stage_dims) and backbone.feature_dim == expected.shape[1]
    assert any(f"{head}.*" in metadata["source"] for head in ("fc", "heads", "classifier"))


def test_a_copy_keeps_its_mode_and_reads_its_own_weights():
    """The evaluation protocols copy backbones: the copy is in the same mode, and its forward reads its weights."""
    backbone = build_backbone("convnext_tiny").eval()
    images = torch.randn(1, 3, 32, 32)
    copied = copy.deepcopy(backbone)
    assert not any(module.training for module in copied.modules())
    with torch.no_grad():
        assert torch.equal(copied(images), backbone(images))
        copied.features[0][0].weight.add_(1.0)
        assert not torch.equal(copied(images), backbone(images))


def test_unknown_names_and_refused_arguments_are_one_message():
    with pytest.raises(ConfigurationError, match=r"unknown backbone 'convnext_giant'.*or a torchvision model"):
        build_backbone("convnext_giant")
    with pytest.raises(ConfigurationError, match="torchvision model 'vit_b_16' refuses"):
        build_backbone("vit_b_16", patch_size=8)
