"""The corruptions of a denoising autoencoder, for a whole batch of normalised images at once.

Each function returns ``(corrupted, mask)``: a new tensor (the input is never modified)
and a boolean ``(B, 1, H, W)`` mask, True at the pixels that were corrupted. A pixel is
a location with all its channels: masking sets every channel of it. The draws come from
``generator`` (a ``torch.Generator``, or an int that seeds a fresh one) or, when it is
``None``, from torch's global generator, which checkpoints restore on resume.

* :func:`masking_noise`, Vincent et al. 2008, sec. 2.3: "a fixed number nu*d of
  components are chosen at random, and their value is forced to 0". Per image, exactly
  ``round(fraction * H * W)`` pixels, drawn without replacement, take the value ``fill``.
  The images here are normalised, so the default ``fill=0`` is the dataset's mean colour.
* :func:`gaussian_noise`, Vincent et al. 2010, sec. 4.2: additive isotropic Gaussian
  noise ``x + N(0, std^2 I)`` on every pixel and channel (``std`` in normalised units);
  the mask is all True.
* :func:`patch_masking`, square blocks as in MAE (He et al. 2022): the image is cut
  into a grid of ``patch_size`` blocks and, per image, ``round(fraction * blocks)`` of
  them, drawn without replacement, take the value ``fill``. When ``patch_size`` does not
  divide the image, the last row and column of blocks are cut off at the border, so
  the masked pixel fraction is then only close to ``fraction``.

Rounding is to the nearest integer, halves upwards.
"""

import math
from typing import Literal

import torch

Corruption = Literal["masking", "gaussian", "patch"]
CORRUPTIONS: tuple[str, ...] = ("masking", "gaussian", "patch")


def masking_noise(
    images: torch.Tensor, fraction: float, fill: float = 0.0, generator: torch.Generator | int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set exactly ``round(fraction * H * W)`` random pixels of each image to ``fill`` (Vincent et al. 2008)."""
    _check_images(images)
    _check_fraction(fraction)
    batch, _, height, width = images.shape
    mask = _random_subset(batch, height * width, fraction, images.device, generator).view(batch, 1, height, width)
    return images.masked_fill(mask, fill), mask


def gaussian_noise(
    images: torch.Tensor, std: float, generator: torch.Generator | int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add ``N(0, std^2)`` noise to every pixel and channel; every pixel counts as corrupted."""
    _check_images(images)
    if not (math.isfinite(std) and std >= 0):
        raise ValueError(f"the noise standard deviation must be a finite number >= 0, got {std!r}")
    generator = _as_generator(generator, images.device)
    device = generator.device if generator is not None else images.device
    noise = torch.randn(images.shape, generator=generator, device=device, dtype=images.dtype).to(images.device)
    mask = torch.ones(images.shape[0], 1, *images.shape[2:], dtype=torch.bool, device=images.device)
    return images + std * noise, mask


def patch_masking(
    images: torch.Tensor,
    fraction: float,
    patch_size: int,
    fill: float = 0.0,
    generator: torch.Generator | int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Set ``round(fraction * blocks)`` random ``patch_size`` blocks of each image to ``fill`` (MAE-like)."""
    _check_images(images)
    _check_fraction(fraction)
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"the patch size must be an integer >= 1, got {patch_size!r}")
    batch, _, height, width = images.shape
    rows, cols = math.ceil(height / patch_size), math.ceil(width / patch_size)
    blocks = _random_subset(batch, rows * cols, fraction, images.device, generator).view(batch, 1, rows, cols)
    mask = blocks.repeat_interleave(patch_size, dim=2).repeat_interleave(patch_size, dim=3)[..., :height, :width]
    return images.masked_fill(mask, fill), mask


def corrupt(
    images: torch.Tensor,
    kind: Corruption,
    fraction: float = 0.25,
    std: float = 0.5,
    patch_size: int = 16,
    fill: float = 0.0,
    generator: torch.Generator | int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the corruption ``kind`` with its own settings (the others are ignored)."""
    if kind == "masking":
        return masking_noise(images, fraction, fill, generator)
    if kind == "gaussian":
        return gaussian_noise(images, std, generator)
    if kind == "patch":
        return patch_masking(images, fraction, patch_size, fill, generator)
    raise ValueError(f"the corruption must be one of {CORRUPTIONS}, got {kind!r}")


def _random_subset(
    batch: int, size: int, fraction: float, device, generator: torch.Generator | int | None
) -> torch.Tensor:
    """A ``(batch, size)`` boolean mask with exactly ``round(fraction * size)`` True entries per row, uniformly."""
    count = math.floor(fraction * size + 0.5)
    generator = _as_generator(generator, device)
    draw_on = generator.device if generator is not None else device
    scores = torch.rand(batch, size, generator=generator, device=draw_on).to(device)
    chosen = scores.topk(count, dim=1).indices
    return torch.zeros(batch, size, dtype=torch.bool, device=device).scatter(1, chosen, True)


def _as_generator(generator: torch.Generator | int | None, device) -> torch.Generator | None:
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {generator!r}")
    return torch.Generator(device=device).manual_seed(generator)


def _check_images(images: torch.Tensor) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"expected a float (B, C, H, W) batch, got {images.dtype} of shape {tuple(images.shape)}")


def _check_fraction(fraction: float) -> None:
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ValueError(f"the corrupted fraction must be a number in [0, 1], got {fraction!r}")
