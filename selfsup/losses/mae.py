"""MAE's reconstruction loss: mean squared error on the masked patches, of per-patch normalised pixels.

He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, §3 ("Reconstruction
target") and Table 1(c): the image is cut into non-overlapping p x p patches; each patch's
pixels (all channels) are the regression target, normalised by that patch's own mean and
variance when ``normalize_target`` (the paper's default, which improves the representation):

    t = (x - mean(x)) / sqrt(var(x) + 1e-6)          per patch, over its p * p * C values
    loss = sum_patches mask * mean((prediction - t)^2) / sum_patches mask

so the loss is computed on the masked patches only: what the decoder predicts for a visible
patch never counts. The variance is the unbiased one, as in the public code.
"""

import torch


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, L, p * p * C)``: row-major patches, each flattened as (row, column, channel)."""
    batch, channels, height, width = images.shape
    if height % patch_size or width % patch_size:
        raise ValueError(f"images of {height}x{width} are not tiled by patches of {patch_size}")
    rows, columns = height // patch_size, width // patch_size
    patches = images.reshape(batch, channels, rows, patch_size, columns, patch_size)
    return patches.permute(0, 2, 4, 3, 5, 1).reshape(batch, rows * columns, patch_size * patch_size * channels)


def masked_patch_mse(
    predictions: torch.Tensor, images: torch.Tensor, mask: torch.Tensor, patch_size: int, normalize_target: bool = True
) -> torch.Tensor:
    """The mean squared error over the masked patches.

    Args:
        predictions: ``(B, L, p * p * C)``, the decoder's pixels for every patch.
        images: ``(B, C, H, W)``, the uncorrupted images.
        mask: ``(B, L)``, 1 where a patch was masked (counted), 0 where it was visible.
        patch_size: p.
        normalize_target: normalise each target patch by its mean and variance.
    """
    target = patchify(images, patch_size).float()
    if normalize_target:
        target = (target - target.mean(dim=-1, keepdim=True)) / (target.var(dim=-1, keepdim=True) + 1e-6).sqrt()
    if predictions.shape != target.shape or mask.shape != target.shape[:2]:
        raise ValueError(
            f"predictions {tuple(predictions.shape)} and mask {tuple(mask.shape)} do not match the "
            f"{tuple(target.shape)} patches of the images"
        )
    per_patch = (predictions.float() - target).square().mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)
