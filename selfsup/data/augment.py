"""Image transforms: the random views of SimCLR and the deterministic evaluation view.

Chen et al. 2020, appendix A: random resized crop with flip, colour distortion
(jitter with strength ``s`` applied with p = 0.8, then grayscale with p = 0.2) and
Gaussian blur (kernel 10% of the image side, sigma in [0.1, 2.0]); BYOL's solarisation
(Grill et al. 2020, appendix B: pixels of 128 and above inverted) with ``solarize_prob``.
:class:`ViewGroup` gives groups of views their own count, size and pipeline: BYOL's two
asymmetric views, DINO's global and local crops.
"""

from dataclasses import dataclass

import torch
from torchvision.transforms import v2

from selfsup.errors import is_finite, is_integer, require


@dataclass(frozen=True)
class Augmentation:
    """The knobs of the view pipeline; every field is a YAML key under ``data.augmentation``.

    Colour jitter changes brightness, contrast and saturation by up to 0.8 s and hue
    by up to 0.2 s (s = ``jitter_strength``). ``jitter_hue=False`` leaves hue alone:
    on grayscale data hue changes nothing and costs most of the jitter's time.
    """

    crop_scale: tuple[float, float] = (0.08, 1.0)
    horizontal_flip_prob: float = 0.5
    jitter_strength: float = 1.0
    jitter_prob: float = 0.8
    jitter_hue: bool = True
    grayscale_prob: float = 0.2
    blur_prob: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_prob: float = 0.0

    def __post_init__(self) -> None:
        key = "data.init_args.augmentation."
        for name in ("horizontal_flip_prob", "jitter_prob", "grayscale_prob", "blur_prob", "solarize_prob"):
            value = getattr(self, name)
            require(is_finite(value) and 0 <= value <= 1, key + name, value, "a probability in [0, 1]")
        low, high = self.crop_scale
        require(
            is_finite(low) and is_finite(high) and 0 < low <= high <= 1,
            key + "crop_scale",
            self.crop_scale,
            "[low, high] with 0 < low <= high <= 1 (fractions of the image area)",
        )
        require(
            is_finite(self.jitter_strength) and self.jitter_strength >= 0,
            key + "jitter_strength",
            self.jitter_strength,
            "a finite number >= 0",
        )
        low, high = self.blur_sigma
        require(
            is_finite(low) and is_finite(high) and 0 < low <= high,
            key + "blur_sigma",
            self.blur_sigma,
            "[low, high] with 0 < low <= high (pixels)",
        )


@dataclass(frozen=True)
class ViewGroup:
    """``count`` views of each image at ``image_size`` through ``augmentation``; unset: the datamodule's.

    A YAML key under ``data.init_args.view_groups``, e.g. BYOL's views: blur 1.0 and no
    solarisation, then blur 0.1 and solarisation 0.2; DINO's: 2 global crops of 224 px and
    10 local ones of 96 px. The views of a batch come in group order.
    """

    count: int = 1
    image_size: int | None = None
    augmentation: Augmentation | None = None

    def __post_init__(self) -> None:
        key = "data.init_args.view_groups."
        require(is_integer(self.count) and self.count >= 1, key + "count", self.count, "an integer >= 1")
        require(
            self.image_size is None or (is_integer(self.image_size) and self.image_size >= 1),
            key + "image_size",
            self.image_size,
            "null (the datamodule's) or an integer >= 1 (pixels)",
        )


def view_transform(augmentation: Augmentation, image_size: int, mean, std) -> v2.Compose:
    """One random view of an image (PIL or uint8 tensor) as a normalised float tensor."""
    strength = augmentation.jitter_strength
    hue = 0.2 * strength if augmentation.jitter_hue else 0.0
    blur_kernel = max(3, int(0.1 * image_size) // 2 * 2 + 1)
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(image_size, scale=augmentation.crop_scale, antialias=True),
            v2.RandomHorizontalFlip(augmentation.horizontal_flip_prob),
            v2.RandomApply(
                [v2.ColorJitter(0.8 * strength, 0.8 * strength, 0.8 * strength, hue)],
                p=augmentation.jitter_prob,
            ),
            v2.RandomGrayscale(augmentation.grayscale_prob),
            v2.RandomApply([v2.GaussianBlur(blur_kernel, sigma=augmentation.blur_sigma)], p=augmentation.blur_prob),
            # Only when asked for: a step with p = 0 would still draw, and change every later view.
            *([v2.RandomSolarize(128, p=augmentation.solarize_prob)] if augmentation.solarize_prob > 0 else []),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )


def eval_transform(image_size: int, mean, std, crop_fraction: float = 1.0) -> v2.Compose:
    """Resize the short side to ``image_size / crop_fraction``, centre-crop, normalise."""
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(round(image_size / crop_fraction), antialias=True),
            v2.CenterCrop(image_size),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
        ]
    )
