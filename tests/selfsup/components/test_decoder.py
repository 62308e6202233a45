"""The decoder brings every backbone stage's map back to the input's shape."""

import pytest
import torch

from selfsup.backbones import build_backbone
from selfsup.components.decoder import ConvDecoder, upsampling_steps

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("image_size", [16, 24])
@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_the_decoder_of_each_stage_returns_the_input_shape(image_size, stage):
    torch.manual_seed(0)
    backbone = build_backbone("small_conv", width=8)
    images = torch.randn(2, 3, image_size, image_size)
    stage_map = backbone.forward_stages(images)[stage]
    steps = upsampling_steps(stage_map.shape[-1], image_size)
    assert steps == stage  # small_conv halves the resolution after stage 0: 2^stage times smaller
    decoder = ConvDecoder(backbone.stage_dims[stage], steps, width=backbone.stage_dims[stage])
    reconstruction = decoder(stage_map, images.shape[-2:])
    assert reconstruction.shape == images.shape
    reconstruction.sum().backward()
    assert all(parameter.grad is not None for parameter in decoder.parameters())


def test_a_resnet_stage_and_an_uneven_ratio_still_give_the_input_shape():
    backbone = build_backbone("resnet18").eval()
    images = torch.randn(1, 3, 24, 24)
    stage_map = backbone.forward_stages(images)[3]  # 1 x 1: a 24-fold reduction, not a power of 2
    steps = upsampling_steps(stage_map.shape[-1], 24)
    assert steps == 5
    decoder = ConvDecoder(backbone.stage_dims[3], steps, width=32).eval()
    assert decoder(stage_map, (24, 24)).shape == (1, 3, 24, 24)


def test_channels_halve_down_to_the_minimum_width():
    decoder = ConvDecoder(64, 3, width=32, out_channels=1, min_width=12)
    widths = [block[1].out_channels for block in decoder.blocks]
    assert widths == [16, 12, 12] and decoder.predict.out_channels == 1
    with pytest.raises(ValueError):
        ConvDecoder(0, 1, width=8)
    with pytest.raises(ValueError):
        upsampling_steps(0, 16)
