"""RotNet's four rotations (Gidaris et al., ICLR 2018), for a whole batch at once."""

import torch


def rotate_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """All four rotations of every image and their labels.

    Returns ``(4B, C, H, W)`` images, ordered ``[rot0 of all, rot90 of all, ...]``, and
    labels ``k`` such that each image equals ``torch.rot90(original, k, dims=(2, 3))``:
    a counter-clockwise turn by ``90 k`` degrees. Images must be square.
    """
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotation prediction needs square images, got {tuple(images.shape[-2:])}")
    rotated = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    labels = torch.arange(4, device=images.device).repeat_interleave(images.shape[0])
    return rotated, labels
