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


def _in_timm_names(state_dict: dict) -> dict:
    """torchvision's ViT-B/16 names as timm (and DINO, MoCo v3) write them, spelled out by hand."""
    renamed = {}
    for name, value in state_dict.items():
        if name.startswith("heads."):
            continue
        layer = name.split(".")[2].removeprefix("encoder_layer_") if name.startswith("encoder.layers.") else None
        rest = name.split(".", 3)[3] if layer is not None else None
        table = {
            "class_token": "cls_token",
            "encoder.pos_embedding": "pos_embed",
            "conv_proj.weight": "patch_embed.proj.weight",
            "conv_proj.bias": "patch_embed.proj.bias",
            "encoder.ln.weight": "norm.weight",
            "encoder.ln.bias": "norm.bias",
        }
        blocks = {
            "ln_1.weight": "norm1.weight", "ln_1.bias": "norm1.bias", "ln_2.weight": "norm2.weight",
            "ln_2.bias": "norm2.bias", "self_attention.in_proj_weight": "attn.qkv.weight",
            "self_attention.in_proj_bias": "attn.qkv.bias", "self_attention.out_proj.weight": "attn.proj.weight",
            "self_attention.out_proj.bias": "attn.proj.bias", "mlp.0.weight": "mlp.fc1.weight",
            "mlp.0.bias": "mlp.fc1.bias", "mlp.3.weight": "mlp.fc2.weight", "mlp.3.bias": "mlp.fc2.bias",
        }  # fmt: skip
        renamed[table[name] if layer is None else f"blocks.{layer}.{blocks[rest]}"] = value
    return renamed


@pytest.mark.parametrize("layout", ["timm", "DINO teacher", "MoCo v3 base encoder"])
def test_a_vit_in_timm_naming_loads_into_torchvisions_vit(tmp_path, layout):
    torch.manual_seed(2)
    source = torchvision.models.get_model("vit_b_16", weights=None, image_size=32).eval()
    timm = _in_timm_names(source.state_dict()) | {"head.weight": torch.randn(10, 768), "head.bias": torch.randn(10)}
    payload = {
        "timm": timm,
        "DINO teacher": {"teacher": {f"backbone.{k}": v for k, v in timm.items()}, "student": {}},
        "MoCo v3 base encoder": {"state_dict": {f"module.base_encoder.{k}": v for k, v in timm.items()}},
    }[layout]
    torch.save(payload, tmp_path / "vit.pth")
    backbone, metadata = load_backbone(tmp_path / "vit.pth", backbone="vit_b_16", backbone_kwargs={"image_size": 32})
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(backbone.eval()(images), _headless(source, images))
    assert "head.*" in metadata["source"]
