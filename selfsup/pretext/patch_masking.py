"""MAE's random masking of patch tokens: keep a random subset of each image's patches.

He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022, §3: a random
subset of the patches is kept (sampled without replacement, uniformly), the rest are
masked. Per image, the patches are shuffled by the argsort of uniform noise; the first
``round(L (1 - ratio))`` are kept. The encoder sees the kept tokens only; the decoder puts
them back in place with a mask token everywhere else.
"""

import torch


def random_patch_mask(
    batch_size: int, num_patches: int, mask_ratio: float, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which patches each image keeps, and the mask.

    Args:
        batch_size: images in the batch.
        num_patches: L, patches per image.
        mask_ratio: the fraction masked, in [0, 1); at least one patch is always kept.
        device: where the indices and mask live.
    Returns:
        ``kept`` ``(B, K)``: the indices of the kept patches, in ascending order, and ``mask``
        ``(B, L)``: 1.0 where a patch is masked, 0.0 where it is kept. K = L - round(L ratio),
        at least 1. Draws from torch's global generator (saved in checkpoints with the others).
    """
    if not 0 <= mask_ratio < 1:
        raise ValueError(f"the mask ratio must be in [0, 1), got {mask_ratio}")
    keep = max(1, num_patches - round(num_patches * mask_ratio))
    noise = torch.rand(batch_size, num_patches, device=device)
    kept = noise.argsort(dim=1)[:, :keep].sort(dim=1).values
    mask = torch.ones(batch_size, num_patches, device=device)
    mask.scatter_(1, kept, 0.0)
    return kept, mask
