"""Helpers for code that runs on every rank of a process group.

They work the same with or without ``torch.distributed`` initialised, so a loss
written with them needs no special case for a single device.
"""

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, in rank order.

    Gradients flow back to the rank that produced each slice (the backward pass sums
    the gradients every rank computed for it), so a loss over the gathered tensor
    trains every rank's encoder. Every rank must pass a tensor of the same shape.
    """
    if not is_distributed():
        return tensor
    return torch.cat(dist_fn.all_gather(tensor), dim=0)


@torch.no_grad()
def gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from all ranks along dim 0, in rank order, without gradient."""
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts, dim=0)
