"""The denoising autoencoder's corruptions: fractions, fills, untouched pixels, seeds, noise level."""

import math

import pytest
import torch

from selfsup.pretext.corruption import corrupt, gaussian_noise, masking_noise, patch_masking


def large_batch() -> torch.Tensor:
    """64 images of 3 x 32 x 32 whose pixels are never 0 or -1.5, so a masked pixel is unmistakable."""
    return torch.rand(64, 3, 32, 32, generator=torch.Generator().manual_seed(0)) + 1.0


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 0.77, 1.0])
def test_masking_noise_masks_exactly_the_rounded_fraction_of_every_image(fraction):
    images = large_batch()
    before = images.clone()
    corrupted, mask = masking_noise(images, fraction, generator=0)
    assert torch.equal(images, before)  # the input is unchanged
    assert mask.shape == (64, 1, 32, 32) and mask.dtype == torch.bool
    pixels = 32 * 32
    per_image = mask.flatten(1).sum(dim=1)
    # Exactly round(fraction * H * W) pixels per image: within half a pixel of the fraction.
    assert (per_image == math.floor(fraction * pixels + 0.5)).all()
    assert ((per_image.float() / pixels - fraction).abs() <= 0.5 / pixels).all()
    full_mask = mask.expand_as(images)
    assert (corrupted[full_mask] == 0).all()  # every channel of a masked pixel is the fill
    assert torch.equal(corrupted[~full_mask], images[~full_mask])  # the others bit-identical


def test_masking_noise_uses_the_stated_fill_and_spreads_over_the_image():
    images = large_batch()
    corrupted, mask = masking_noise(images, 0.3, fill=-1.5, generator=1)
    assert (corrupted[mask.expand_as(images)] == -1.5).all()
    # Uniform over positions: every pixel position is masked in about 30% of the 64 images.
    assert abs(mask.float().mean(dim=0).mean().item() - 0.3) < 0.01
    assert mask.float().mean(dim=(0, 1)).max() < 0.6


@pytest.mark.parametrize(
    "function", [lambda x, g: masking_noise(x, 0.4, generator=g), lambda x, g: patch_masking(x, 0.4, 4, generator=g)]
)
def test_a_fixed_seed_reproduces_the_corruption_and_another_seed_differs(function):
    images = large_batch()
    first, mask_first = function(images, torch.Generator().manual_seed(7))
    again, mask_again = function(images, 7)  # an int seeds a fresh generator the same way
    other, mask_other = function(images, 8)
    assert torch.equal(first, again) and torch.equal(mask_first, mask_again)
    assert not torch.equal(mask_first, mask_other)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.75, 1.0])
def test_patch_masking_masks_whole_blocks_in_the_stated_fraction(fraction):
    images = large_batch()
    before = images.clone()
    corrupted, mask = patch_masking(images, fraction, patch_size=8, generator=3)
    assert torch.equal(images, before)
    blocks = mask.view(64, 1, 4, 8, 4, 8)
    # Each 8 x 8 block is wholly masked or wholly kept ...
    assert torch.equal(blocks.all(dim=(3, 5)), blocks.any(dim=(3, 5)))
    # ... and exactly round(fraction * 16) of the 16 blocks are masked in each image.
    assert (blocks.all(dim=(3, 5)).flatten(1).sum(dim=1) == math.floor(fraction * 16 + 0.5)).all()
    full_mask = mask.expand_as(images)
    assert (corrupted[full_mask] == 0).all()
    assert torch.equal(corrupted[~full_mask], images[~full_mask])


def test_patch_masking_crops_the_border_blocks_when_the_size_does_not_divide():
    images = torch.ones(4, 3, 10, 10)
    corrupted, mask = patch_masking(images, 1.0, patch_size=4, generator=0)
    assert mask.shape == (4, 1, 10, 10) and mask.all() and (corrupted == 0).all()


def test_gaussian_noise_has_the_stated_standard_deviation_and_leaves_the_input_alone():
    images = large_batch()
    before = images.clone()
    corrupted, mask = gaussian_noise(images, 0.3, generator=0)
    assert torch.equal(images, before)
    noise = corrupted - images
    # 196,608 draws: the sample std is within 1% of 0.3 and the mean within 0.003 of 0.
    assert abs(noise.std().item() - 0.3) < 0.003
    assert abs(noise.mean().item()) < 0.003
    assert mask.shape == (64, 1, 32, 32) and mask.all()
    assert torch.equal(gaussian_noise(images, 0.3, generator=0)[0], corrupted)
    assert torch.equal(gaussian_noise(images, 0.0, generator=0)[0], images)


def test_corrupt_dispatches_and_refuses_bad_settings():
    images = large_batch()[:2]
    assert torch.equal(corrupt(images, "masking", fraction=0.5, generator=0)[0], masking_noise(images, 0.5, 0.0, 0)[0])
    assert torch.equal(corrupt(images, "gaussian", std=0.2, generator=0)[0], gaussian_noise(images, 0.2, 0)[0])
    assert torch.equal(
        corrupt(images, "patch", 0.5, patch_size=4, generator=0)[0], patch_masking(images, 0.5, 4, 0.0, 0)[0]
    )
    for call in (
        lambda: corrupt(images, "salt"),
        lambda: masking_noise(images, 1.5),
        lambda: masking_noise(images, float("nan")),
        lambda: gaussian_noise(images, -0.1),
        lambda: patch_masking(images, 0.5, 0),
        lambda: masking_noise(images[0], 0.5),
        lambda: masking_noise(images.long(), 0.5),
    ):
        with pytest.raises(ValueError):
            call()
