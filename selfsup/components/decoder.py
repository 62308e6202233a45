"""A light convolutional decoder from one backbone stage's map back to the image.

The decoder mirrors the backbone's downsampling: a stage whose map is ``2^n`` times
smaller than the image gets ``n`` upsampling blocks, each a nearest-neighbour 2x
upsampling followed by a 3x3 convolution, batch norm and ReLU (upsampling before the
convolution avoids the checkerboard artefacts of strided transposed convolutions,
Odena, Dumoulin & Olah, Distill 2016). Channels start at ``width`` after a 1x1
projection of the stage's map and halve in each block, down to ``min_width``; a final
3x3 convolution, with no activation, predicts the (normalised, unbounded) pixels. When
the image is not exactly ``2^n`` times the map, the prediction is resized bilinearly
to the image's size, so the output always has the shape of the input.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def upsampling_steps(map_size: int, image_size: int) -> int:
    """The number of 2x blocks that bring a ``map_size`` map nearest to ``image_size``: round(log2(ratio))."""
    if map_size < 1 or image_size < 1:
        raise ValueError(f"sizes must be >= 1, got map {map_size} and image {image_size}")
    return max(0, round(math.log2(image_size / map_size)))


class ConvDecoder(nn.Module):
    def __init__(self, in_channels: int, steps: int, width: int, out_channels: int = 3, min_width: int = 8) -> None:
        """A decoder of ``steps`` 2x upsampling blocks.

        Args:
            in_channels: channels of the stage's map.
            steps: the number of 2x upsampling blocks (see :func:`upsampling_steps`).
            width: channels after the 1x1 projection; each block halves them, down to ``min_width``.
            out_channels: channels of the reconstructed image.
            min_width: the fewest channels a block keeps.
        """
        super().__init__()
        if min(in_channels, width, out_channels, min_width) < 1 or steps < 0:
            raise ValueError(
                f"a decoder needs channels >= 1 and steps >= 0, got in_channels={in_channels}, width={width}, "
                f"out_channels={out_channels}, min_width={min_width}, steps={steps}"
            )
        self.steps = steps
        self.project = nn.Sequential(
            nn.Conv2d(in_channels, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        blocks, channels = [], width
        for _ in range(steps):
            narrower = max(channels // 2, min_width)
            blocks.append(
                nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(channels, narrower, 3, padding=1, bias=False),
                    nn.BatchNorm2d(narrower),
                    nn.ReLU(inplace=True),
                )
            )
            channels = narrower
        self.blocks = nn.Sequential(*blocks)
        self.predict = nn.Conv2d(channels, out_channels, 3, padding=1)

    def forward(self, maps: torch.Tensor, output_size: tuple[int, int]) -> torch.Tensor:
        """The ``(B, out_channels, *output_size)`` reconstruction from a ``(B, in_channels, h, w)`` map."""
        image = self.predict(self.blocks(self.project(maps)))
        if tuple(image.shape[-2:]) != tuple(output_size):
            image = F.interpolate(image, size=tuple(output_size), mode="bilinear", align_corners=False)
        return image
