"""Vision Transformers of any size: torchvision's module and features, the pooled feature, the stages, bad sizes."""

import pytest
import torch
import torchvision

from selfsup.backbones import build_backbone
from selfsup.backbones.vit import VIT_SIZES
from selfsup.checkpoints import export_backbone, load_backbone
from selfsup.errors import ConfigurationError


def _torchvision_vit(**size) -> torchvision.models.VisionTransformer:
    torch.manual_seed(0)
    return torchvision.models.VisionTransformer(**size).eval()


def _images(side: int, count: int = 3) -> torch.Tensor:
    return torch.randn(count, 3, side, side, generator=torch.Generator().manual_seed(1))


def test_vit_small_is_vit_s16_and_vit_base_is_torchvisions_vit_b16():
    small = build_backbone("vit_small")
    assert (len(small.stage_dims), small.feature_dim) == (12, 384)
    assert sum(p.numel() for p in small.parameters()) == 21_665_664  # ViT-S/16 without a head (DeiT-S: 22M)
    base, reference = build_backbone("vit_base"), build_backbone("vit_b_16")
    assert {k: v.shape for k, v in base.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_the_feature_is_torchvisions_class_token_or_the_patch_tokens_mean(pool):
    size = VIT_SIZES["vit_micro"]
    source = _torchvision_vit(**size)
    backbone = build_backbone("vit_micro", pool=pool)
    backbone.load_state_dict({k: v for k, v in source.state_dict().items() if not k.startswith("heads.")})
    images = _images(16)
    with torch.no_grad():
        tokens = source.encoder(_tokens(source, images))
        expected = tokens[:, 0] if pool == "cls" else tokens[:, 1:].mean(dim=1)
        assert torch.allclose(backbone.eval()(images), expected, atol=1e-6)


def _tokens(model: torchvision.models.VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """torchvision's forward up to the heads: patches, class token, encoder (with its final norm)."""
    patches = model._process_input(images)
    return torch.cat([model.class_token.expand(len(images), -1, -1), patches], dim=1)


def test_each_block_is_a_stage_whose_patch_tokens_form_the_map():
    source = _torchvision_vit(**VIT_SIZES["vit_micro"])
    backbone = build_backbone("vit_micro").eval()
    backbone.load_state_dict({k: v for k, v in source.state_dict().items() if not k.startswith("heads.")})
    images = _images(16)
    with torch.no_grad():
        maps = backbone.forward_stages(images)
        tokens = _tokens(source, images) + source.encoder.pos_embedding
        for block, stage_map in zip(source.encoder.layers, maps, strict=True):
            tokens = block(tokens)
            patches = tokens[:, 1:].reshape(3, 4, 4, 64).permute(0, 3, 1, 2)  # row-major 4x4 grid of 4-px patches
            assert torch.allclose(stage_map, patches, atol=1e-6)
    assert len(backbone.stage_modules()) == 6 and backbone.stage_dims == (64,) * 6


def test_a_saved_vit_loads_with_its_size_and_pool_and_gives_the_same_features(tmp_path):
    backbone = build_backbone("vit_micro", pool="mean", num_layers=2).eval()
    export_backbone(tmp_path / "backbone.pt", backbone, "vit_micro", {"pool": "mean", "num_layers": 2})
    loaded, metadata = load_backbone(tmp_path / "backbone.pt")
    images = _images(16)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(images), backbone(images))
    assert metadata["backbone_kwargs"] == {"pool": "mean", "num_layers": 2} and len(loaded.stage_dims) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"patch_size": 5}, "image_size 16 is not a multiple of its patch_size 5"),
        ({"num_heads": 3}, "hidden_dim 64 is not a multiple of its num_heads 3"),
        ({"num_layers": 0}, "num_layers must be an integer >= 1, got 0"),
        ({"hidden_dim": -64}, "hidden_dim must be an integer >= 1, got -64"),
        ({"image_size": 16.0}, "image_size must be an integer >= 1, got 16.0"),
        ({"patch_size": True}, "patch_size must be an integer >= 1, got True"),
        ({"dropout": 1.0}, "dropout must be a number in \\[0, 1\\), got 1.0"),
        ({"attention_dropout": float("nan")}, "attention_dropout must be a number in \\[0, 1\\), got nan"),
        ({"pool": "max"}, "pools its feature by one of \\['cls', 'mean'\\], not 'max'"),
        ({"depth": 3}, "backbone 'vit_micro' takes no argument\\(s\\) \\['depth'\\]"),
    ],
)
def test_bad_sizes_are_one_line_configuration_errors(kwargs, message):
    with pytest.raises(ConfigurationError, match=message) as error:
        build_backbone("vit_micro", **kwargs)
    assert "\n" not in str(error.value)


def test_a_convolutional_network_refuses_the_class_token():
    with pytest.raises(ConfigurationError, match="backbone 'convnext_tiny' pools its feature by one of \\['mean'\\]"):
        build_backbone("convnext_tiny", pool="cls")


def test_another_patch_grid_gets_the_bicubically_resized_position_embedding():
    backbone = build_backbone("vit_micro").eval()
    trained = backbone.encoder.pos_embedding
    assert backbone.position_embedding(4, 4) is trained
    resized = backbone.position_embedding(6, 5)
    grid = trained[:, 1:].reshape(1, 4, 4, 64).permute(0, 3, 1, 2)  # the 4x4 patch grid as a 64-channel image
    by_hand = torch.nn.functional.interpolate(grid, size=(6, 5), mode="bicubic", align_corners=False)
    assert resized.shape == (1, 1 + 30, 64)
    assert torch.equal(resized[:, 0], trained[:, 0])  # the class token's entry is kept
    assert torch.equal(resized[0, 1:].reshape(6, 5, 64), by_hand[0].permute(1, 2, 0))
    with torch.no_grad():
        backbone.encoder.pos_embedding[:, 1:] = 0.5  # a constant grid stays constant on any other grid
    assert torch.allclose(backbone.position_embedding(6, 5)[:, 1:], torch.full((1, 30, 64), 0.5))


def test_a_vit_encodes_any_multiple_of_its_patch_size_and_trains_its_embedding_there():
    backbone = build_backbone("vit_micro")
    feature, maps = backbone.forward_with_stages(_images(24)[:, :, :, :20])
    assert feature.shape == (3, 64) and all(stage.shape == (3, 64, 6, 5) for stage in maps)
    feature.sum().backward()
    assert backbone.encoder.pos_embedding.grad.abs().sum() > 0


def test_an_image_off_the_patch_grid_is_refused_with_what_to_change():
    backbone = build_backbone("vit_micro")
    expected = "the ViT backbone cuts 4x4 patches, so it takes images whose sides are multiples of 4, got"
    for forward in (backbone, backbone.forward_stages):
        with pytest.raises(ConfigurationError, match=expected) as error:
            forward(torch.randn(1, 3, 18, 18))
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigurationError, match="takes 16x16 images, got 24x24"):
        backbone.check_input_size(torch.randn(1, 3, 24, 24))  # what MAE, which keeps the embedding as it is, asks
