"""SimCLR's views for a whole batch at once, on the training device (kornia).

The per-sample pipeline (:func:`selfsup.data.augment.view_transform`) runs once per
image in DataLoader workers; on small images its Python overhead, not the arithmetic,
bounds the throughput. Here the batch arrives as one uint8 tensor and every operation
is one batched tensor op with per-sample random parameters drawn by kornia, from the
same distributions as the torchvision pipeline:

* random resized crop (scale ``crop_scale``, aspect ratio 3/4-4/3), in kornia's
  ``resample`` mode (one batched warp; its ``slice`` mode loops over images);
* horizontal flip; colour jitter with torchvision's formulas (``ColorJitter``), applied
  with ``jitter_prob``; random grayscale; Gaussian blur with sigma in ``blur_sigma``;
  solarisation at 0.5 (torchvision's 128 of 255) with ``solarize_prob``;
* normalisation.

Two differences from torchvision, neither changes the distribution of one view:
kornia draws the jitter's order of operations once per batch (torchvision per image),
and it resizes crops without antialiasing (a crop is smaller than the output only when
``image_size`` exceeds the stored image, which the datamodules avoid).
"""

import kornia.augmentation as K
import torch
from torch import nn

from selfsup.data.augment import Augmentation


class BatchViewAugmentation(nn.Module):
    def __init__(self, augmentation: Augmentation, image_size: int, mean, std) -> None:
        super().__init__()
        strength = augmentation.jitter_strength
        hue = 0.2 * strength if augmentation.jitter_hue else 0.0
        blur_kernel = max(3, int(0.1 * image_size) // 2 * 2 + 1)
        steps = [
            K.RandomResizedCrop(
                (image_size, image_size), scale=augmentation.crop_scale, ratio=(3 / 4, 4 / 3), cropping_mode="resample"
            )
        ]
        if augmentation.horizontal_flip_prob > 0:
            steps.append(K.RandomHorizontalFlip(p=augmentation.horizontal_flip_prob))
        if augmentation.jitter_prob > 0 and strength > 0:
            jitter = 0.8 * strength
            steps.append(K.ColorJitter(jitter, jitter, jitter, hue, p=augmentation.jitter_prob))
        if augmentation.grayscale_prob > 0:
            steps.append(K.RandomGrayscale(p=augmentation.grayscale_prob))
        if augmentation.blur_prob > 0:
            steps.append(K.RandomGaussianBlur(blur_kernel, augmentation.blur_sigma, p=augmentation.blur_prob))
        if augmentation.solarize_prob > 0:  # threshold exactly 0.5 (uint8 128), nothing added
            steps.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=augmentation.solarize_prob))
        self.steps = nn.Sequential(*steps)
        self.normalize = K.Normalize(torch.tensor(mean), torch.tensor(std))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One random view of each ``(N, 3, H, W)`` uint8 image, as normalised floats."""
        return self.normalize(self.steps(images.float() / 255.0))
